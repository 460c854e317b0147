//! The request the decision benchmarks measure, per algorithm: natively
//! (`benches/decision.rs`, criterion) and inside V8 (`bench/wasm-decision`,
//! `make bench-wasm`). One provider with inline keys and an identity header,
//! a token with the usual claims, and the headers Envoy hands a filter for a
//! plain GET.

use serde_json::{json, Value};

use crate::jwt::{mint, Key};

/// The clock the token is valid at.
pub const NOW: u64 = 1_900_000_000;

pub struct DecisionCase {
    /// The filter configuration (JSON).
    pub config: Value,
    /// Lowercase names, raw values, pseudo-headers first.
    pub headers: Vec<(String, Vec<u8>)>,
}

pub fn decision_case(alg: &str) -> DecisionCase {
    let key = Key::for_alg(alg).with_kid("bench");
    let config = json!({
        "providers": [{"name": "bench", "issuer": "https://bench.test", "audiences": ["api"],
                       "jwks": {"keys": [key.jwk(Some(alg))]},
                       "claim_to_headers": [{"claim": "sub", "header": "x-user-id"}]}]
    });
    let claims = json!({"iss": "https://bench.test", "aud": "api", "sub": "user-1234", "jti": "j-1",
                        "iat": NOW - 10, "exp": NOW + 3600, "scope": "read write"});
    let token = mint(alg, &key, &json!({}), &claims);
    let headers = [
        (":authority", "127.0.0.1:10000".to_string()),
        (":path", "/resource".to_string()),
        (":method", "GET".to_string()),
        (":scheme", "http".to_string()),
        ("authorization", format!("Bearer {token}")),
        ("user-agent", "bench".to_string()),
        ("x-forwarded-proto", "http".to_string()),
        (
            "x-request-id",
            "0b4cc0a3-0e0e-4a6a-9f39-7d5b0c5d5d2a".to_string(),
        ),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v.into_bytes()))
    .collect();
    DecisionCase { config, headers }
}
