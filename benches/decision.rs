//! The core decision per algorithm, natively: a full verification (no
//! cache) and a cache hit. These figures bound what the filter can do per
//! request before the proxy and the wasm runtime add their share; the
//! end-to-end comparison is `make bench`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{criterion_group, criterion_main, Criterion};
use jwt_auth_wasm::cache::TokenCaches;
use jwt_auth_wasm::config::Policy;
use jwt_auth_wasm::decision::{decide, header_refs, Decision, Env, Request};
use serde_json::json;
use testkit::{mint, Key};

const NOW: u64 = 1_900_000_000;

fn setup(alg: &str) -> (Policy, Vec<(String, Vec<u8>)>) {
    let key = Key::for_alg(alg).with_kid("bench");
    let config = json!({
        "providers": [{"name": "bench", "issuer": "https://bench.test", "audiences": ["api"],
                       "jwks": {"keys": [key.jwk(Some(alg))]},
                       "claim_to_headers": [{"claim": "sub", "header": "x-user-id"}]}]
    });
    let policy = Policy::from_json(config.to_string().as_bytes()).unwrap();
    let claims = json!({"iss": "https://bench.test", "aud": "api", "sub": "user-1234", "jti": "j-1",
                        "iat": NOW - 10, "exp": NOW + 3600, "scope": "read write"});
    let token = mint(alg, &key, &json!({}), &claims);
    let headers = vec![
        (":method".to_string(), b"GET".to_vec()),
        (":path".to_string(), b"/resource".to_vec()),
        (
            "authorization".to_string(),
            format!("Bearer {token}").into_bytes(),
        ),
        ("user-agent".to_string(), b"bench".to_vec()),
    ];
    (policy, headers)
}

fn bench(c: &mut Criterion) {
    for alg in ["HS256", "RS256", "PS256", "ES256", "ES384", "EdDSA"] {
        let (policy, headers) = setup(alg);
        let request = Request {
            method: "GET",
            path: "/resource",
            headers: &header_refs(&headers),
        };
        let uncached = Env::basic(NOW);
        assert!(matches!(
            decide(&policy, &request, &uncached),
            Decision::Allow(_)
        ));
        c.bench_function(&format!("decide {alg} uncached"), |b| {
            b.iter(|| decide(&policy, &request, &uncached))
        });
        let caches = TokenCaches::new([1000]);
        let cached = Env {
            cache: Some(&caches),
            ..Env::basic(NOW)
        };
        assert!(matches!(
            decide(&policy, &request, &cached),
            Decision::Allow(_)
        ));
        c.bench_function(&format!("decide {alg} cached"), |b| {
            b.iter(|| decide(&policy, &request, &cached))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
