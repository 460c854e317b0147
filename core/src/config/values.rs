//! Checks on single values an operator writes: names that end up in keys,
//! metric names and headers, secrets pasted from other tools.

use serde_json::Value;

use super::error::ConfigError;

/// Names that end up in shared-data keys and metric names.
pub(super) fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

pub(super) fn checked_namespace(ns: String, field: &str) -> Result<String, ConfigError> {
    if is_identifier(&ns) {
        Ok(ns)
    } else {
        Err(ConfigError::new(
            field,
            "must be non-empty and use only letters, digits, '-', '_' and '.'",
        ))
    }
}

/// `<REPLACE with ...>` and the like.
pub(super) fn is_placeholder(value: &str) -> bool {
    value.contains(['<', '>']) || value.to_ascii_lowercase().contains("replace")
}

/// Standard or URL-safe alphabet, padded or not: operators paste secrets
/// from many tools.
pub(super) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let trimmed = text.trim();
    STANDARD
        .decode(trimmed)
        .ok()
        .or_else(|| URL_SAFE_NO_PAD.decode(trimmed.trim_end_matches('=')).ok())
}

pub(super) fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// A value that can sit inside a quoted-string of `WWW-Authenticate` as is.
pub(super) fn is_quotable(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// Validates an HTTP header name (RFC 9110 token) and lowercases it.
pub(super) fn header_name(name: &str, field: &str) -> Result<String, ConfigError> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(ConfigError::new(field, "not a valid HTTP header name"));
    }
    Ok(name.to_ascii_lowercase())
}

/// Headers that carry routing or framing; the filter never writes these.
pub(super) fn is_reserved_header(name: &str) -> bool {
    name.starts_with(':')
        || matches!(
            name,
            "host" | "content-length" | "transfer-encoding" | "connection" | "te" | "upgrade"
        )
}
