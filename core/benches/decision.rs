//! The core decision per algorithm, natively: a full verification (no
//! cache) and a cache hit. These figures bound what the filter can do per
//! request before the proxy and the wasm runtime add their share; the
//! end-to-end comparison is `make bench`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{criterion_group, criterion_main, Criterion};
use jwt_auth_core::cache::TokenCaches;
use jwt_auth_core::config::Policy;
use jwt_auth_core::decision::{decide, Decision, Env};
use jwt_auth_core::request::{header_refs, Request};
use testkit::bench::{decision_case, NOW};

fn setup(alg: &str) -> (Policy, Vec<(String, Vec<u8>)>) {
    let case = decision_case(alg);
    let policy = Policy::from_json(case.config.to_string().as_bytes()).unwrap();
    (policy, case.headers)
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
