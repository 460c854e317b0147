//! A remote JWKS never supplies an HMAC secret: `remote_keys::parse_jwks`
//! (the fetch path, the shared-data sync and `jwt-auth-check --jwks-file`)
//! skips `oct` keys with the reason the fetcher logs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwt_auth_core::jwt::REMOTE_OCT_REFUSED;
use jwt_auth_core::remote_keys::parse_jwks;
use serde_json::json;

const OCT: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYnl0ZXM";
const ED25519_X: &str = "_pX3yiaoBvY7LHEZG-41JL8pCUgK_XAfsxybLEZDy38";

#[test]
fn oct_keys_are_skipped_with_a_reason() {
    let body = json!({"keys": [
        {"kty": "oct", "kid": "h", "alg": "HS256", "k": OCT},
        {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": ED25519_X}
    ]})
    .to_string();
    let (keys, problems) = parse_jwks(body.as_bytes()).unwrap();
    assert_eq!(keys.kids().collect::<Vec<_>>(), ["ed"]);
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].to_string(),
        format!("keys[0] (kid \"h\"): {REMOTE_OCT_REFUSED}")
    );
}

#[test]
fn a_set_of_oct_keys_only_is_refused_whole() {
    let body = json!({"keys": [{"kty": "oct", "kid": "h", "alg": "HS256", "k": OCT}]}).to_string();
    let err = parse_jwks(body.as_bytes()).unwrap_err();
    assert!(err.contains("no usable key"), "{err}");
    assert!(err.contains(REMOTE_OCT_REFUSED), "{err}");
}
