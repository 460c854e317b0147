//! Why a JWK or a JWKS could not be used, in words safe to log.

use std::fmt;

/// Why one JWKS entry (or the whole document) could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwkError {
    /// Position in `keys`, or [`JwkError::WHOLE_SET`] when the document itself is wrong.
    pub index: usize,
    pub kid: Option<String>,
    pub message: String,
}

impl JwkError {
    /// `index` of an error about the JWKS document rather than one key.
    pub const WHOLE_SET: usize = usize::MAX;

    pub(super) fn whole_set(message: &str) -> JwkError {
        JwkError {
            index: JwkError::WHOLE_SET,
            kid: None,
            message: message.to_string(),
        }
    }
}

impl fmt::Display for JwkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.index == JwkError::WHOLE_SET {
            return write!(f, "jwks: {}", self.message);
        }
        write!(f, "keys[{}]", self.index)?;
        if let Some(kid) = &self.kid {
            write!(f, " (kid {})", quoted(kid))?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for JwkError {}

/// Quotes a value from the JWKS for a message, keeping it short and on one
/// line so a hostile JWKS cannot forge log lines.
pub(super) fn quoted(s: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut out: String = s.chars().take(MAX_CHARS).collect();
    if s.chars().count() > MAX_CHARS {
        out.push('…');
    }
    format!("{out:?}")
}
