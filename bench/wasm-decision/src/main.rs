//! Times `decision::decide` per algorithm, without a cache and with a warm
//! one, in a loop: the filter's own work with no proxy around it.
//!
//! `make bench-wasm` builds this for wasm32-wasip1 with the shipped module's
//! profile and runs it in V8 (Node, optimizing compiler only, as Envoy runs
//! its VMs), then natively. Inside Envoy the same work costs more (each
//! request meets the code cold, after the proxy's own work) and the proxy's
//! share is far larger, so these figures rank changes to the decision code;
//! `make bench` is the end-to-end comparison.
//!
//!     jwt-auth-wasm-decision [ITERATIONS [BATCHES]]
//!
//! Prints one line per case: the best and the median batch, in µs per
//! decision. The best batch is the steadiest figure on a shared machine.

use std::time::Instant;

use jwt_auth_core::cache::TokenCaches;
use jwt_auth_core::config::Policy;
use jwt_auth_core::decision::{decide, Decision, Env};
use jwt_auth_core::request::{header_refs, Request};
use testkit::bench::{decision_case, NOW};

const ALGS: [&str; 6] = ["HS256", "EdDSA", "PS256", "RS256", "ES384", "ES512"];

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u32>());
    let iterations = match args.next() {
        Some(Ok(n)) if n > 0 => n,
        None => 2000,
        _ => return usage(),
    };
    let batches = match args.next() {
        Some(Ok(n)) if n > 0 => n,
        None => 30,
        _ => return usage(),
    };
    println!(
        "{:<8} {:<9} {:>10} {:>10}",
        "alg", "cache", "best µs", "median µs"
    );
    let only: Option<String> = std::env::args().nth(3);
    for alg in ALGS.into_iter().filter(|a| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|x| x == *a))
    }) {
        let case = decision_case(alg);
        let policy = match Policy::from_json(case.config.to_string().as_bytes()) {
            Ok(policy) => policy,
            Err(e) => {
                eprintln!("jwt-auth-wasm-decision: {alg}: bad configuration: {e}");
                std::process::exit(2);
            }
        };
        let headers = header_refs(&case.headers);
        let request = Request {
            method: "GET",
            path: "/resource",
            headers: &headers,
        };
        let caches = TokenCaches::new([1000]);
        for (label, env) in [
            ("none", Env::basic(NOW)),
            (
                "warm",
                Env {
                    cache: Some(&caches),
                    ..Env::basic(NOW)
                },
            ),
        ] {
            if !matches!(decide(&policy, &request, &env), Decision::Allow(_)) {
                eprintln!("jwt-auth-wasm-decision: {alg}: the benchmark token was refused");
                std::process::exit(1);
            }
            // Slow algorithms get fewer iterations per batch, so every case
            // takes a similar time.
            let n = if alg == "HS256" || label == "warm" {
                iterations
            } else {
                (iterations / 20).max(1)
            };
            let mut per_batch: Vec<f64> = (0..batches)
                .map(|_| {
                    let start = Instant::now();
                    for _ in 0..n {
                        std::hint::black_box(decide(&policy, &request, &env));
                    }
                    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
                })
                .collect();
            per_batch.sort_by(f64::total_cmp);
            let best = per_batch.first().copied().unwrap_or(0.0);
            let median = per_batch.get(per_batch.len() / 2).copied().unwrap_or(0.0);
            println!("{alg:<8} {label:<9} {best:>10.2} {median:>10.2}");
        }
    }
}

fn usage() {
    eprintln!("usage: jwt-auth-wasm-decision [ITERATIONS [BATCHES]]");
    std::process::exit(2);
}
