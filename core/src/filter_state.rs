//! Claims to Envoy filter state: which verified claim becomes which filter
//! state object, for the filters after this one (RBAC's `filter_state`
//! principal, `%FILTER_STATE(...)%` in access logs).
//!
//! Written through Envoy's `set_envoy_filter_state` foreign function, whose
//! argument is the protobuf `SetEnvoyFilterStateArguments { string path = 1;
//! string value = 2; LifeSpan span = 3; }`. Envoy builds the object with the
//! `StreamInfo::FilterState::ObjectFactory` registered under the key itself
//! (`Context::setEnvoyFilterState` in source/extensions/common/wasm/context.cc)
//! and answers NotFound for a key without one, so only the keys of Envoy's
//! generic string factories can carry a claim: [`GENERIC_STRING_KEYS`].

use crate::claim_path::ClaimPath;
use crate::identity;
use crate::jwt::JsonObject;
use crate::protobuf::{put_bytes, put_varint};

/// The filter state keys whose factory takes any string (Envoy 1.40:
/// `envoy.string` and `envoy.hashable_string`, registered by the
/// set_filter_state extension). Every other registered key changes what
/// Envoy does (the upstream cluster, SNI, ALPN, ...) and parses its own
/// format; an unregistered key cannot be set at all.
pub const GENERIC_STRING_KEYS: [&str; 2] = ["envoy.string", "envoy.hashable_string"];

/// The longest value written to filter state. A claim longer than this
/// (a token may be 64 KiB) is not written: the filters that read filter
/// state (RBAC, access logs) match names and short values, and an object
/// kept for the whole request should not carry a page of text.
pub const MAX_VALUE_BYTES: usize = 4096;

/// `LifeSpan.DownstreamRequest`: the object lives as long as the request,
/// across internal redirects, and the access log reads it at the end.
const SPAN_DOWNSTREAM_REQUEST: u64 = 1;

/// One `claims_to_filter_state` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimFilterState {
    pub claim: ClaimPath,
    pub name: String,
}

impl ClaimFilterState {
    pub fn new(claim: &str, name: String) -> Self {
        ClaimFilterState {
            claim: ClaimPath::new(claim),
            name,
        }
    }

    /// The value for these claims, written as an identity header would be:
    /// none for a claim that is absent, could be read two ways, or is longer
    /// than [`MAX_VALUE_BYTES`].
    pub fn value(&self, claims: &JsonObject) -> Option<String> {
        identity::render(&self.claim.get(claims)?).filter(|v| v.len() <= MAX_VALUE_BYTES)
    }
}

/// The argument of `set_envoy_filter_state` for one object.
pub fn encode_arguments(path: &str, value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + value.len() + 8);
    put_bytes(&mut out, 0x0a, path.as_bytes());
    put_bytes(&mut out, 0x12, value.as_bytes());
    out.push(0x18);
    put_varint(&mut out, SPAN_DOWNSTREAM_REQUEST);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_arguments_are_the_protobuf_message() {
        assert_eq!(
            encode_arguments("envoy.string", "alice"),
            b"\x0a\x0cenvoy.string\x12\x05alice\x18\x01".to_vec()
        );
        let long = "a".repeat(200);
        let bytes = encode_arguments("k", &long);
        assert_eq!(&bytes[..5], b"\x0a\x01k\x12\xc8");
        assert_eq!(bytes[5], 0x01, "200 as a two-byte varint");
        assert_eq!(&bytes[bytes.len() - 2..], b"\x18\x01");
    }

    #[test]
    fn values_follow_the_identity_header_rules() {
        let c = JsonObject::of(&json!({"sub": "alice", "roles": ["a", "b"], "bad": "x\ny"}));
        let get = |claim: &str| ClaimFilterState::new(claim, "envoy.string".into()).value(&c);
        assert_eq!(get("sub").as_deref(), Some("alice"));
        assert_eq!(get("roles").as_deref(), Some("a,b"));
        assert_eq!(get("bad"), None);
        assert_eq!(get("missing"), None);
    }

    #[test]
    fn a_claim_too_long_for_filter_state_is_not_written() {
        let c = JsonObject::of(&json!({
            "fits": "a".repeat(MAX_VALUE_BYTES),
            "long": "a".repeat(MAX_VALUE_BYTES + 1),
        }));
        let get = |claim: &str| ClaimFilterState::new(claim, "envoy.string".into()).value(&c);
        assert_eq!(get("fits").map(|v| v.len()), Some(MAX_VALUE_BYTES));
        assert_eq!(get("long"), None);
    }
}
