//! A worker over an in-memory host: requests waiting for a provider's first
//! key set, the unknown-`kid` signal, and callout answers reaching the loop
//! that asked.

use super::*;
use crate::host::memory::{MemoryHost, MemoryStore};
use crate::host::Answer;
use crate::request::header_refs;
use serde_json::json;
use testkit::{jwks_json, mint, Key};

const NOW_MS: u64 = 1_800_000_000_000;

fn policy() -> Policy {
    let config = json!({
        "providers": [{
            "name": "idp",
            "issuer": "https://idp.example.com",
            "remote_jwks": {"cluster": "idp", "timeout_ms": 1500},
            "claim_to_headers": [{"claim": "sub", "header": "x-user-id"}]
        }]
    });
    Policy::from_json(config.to_string().as_bytes()).unwrap()
}

fn key() -> Key {
    Key::ed25519().with_kid("k1")
}

fn token(key: &Key) -> String {
    let now = NOW_MS as i64 / 1000;
    mint(
        "EdDSA",
        key,
        &json!({}),
        &json!({"iss": "https://idp.example.com", "sub": "alice", "exp": now + 600}),
    )
}

fn decide_with(
    worker: &Worker,
    host: &MemoryHost<'_>,
    id: u32,
    token: &str,
    since: Option<u64>,
) -> Step {
    let owned = vec![(
        "authorization".to_string(),
        format!("Bearer {token}").into_bytes(),
    )];
    let headers = header_refs(&owned);
    let request = Request {
        method: "GET",
        path: "/x",
        headers: &headers,
    };
    worker.decide(host, host.now_ms(), id, &request, since)
}

/// Lets the worker's key loop take its lease and start the fetch, then
/// answers it with `keys`.
/// A worker whose remote keys arrived, one tick later.
fn worker_with_keys(host: &MemoryHost<'_>) -> Worker {
    let worker = Worker::new(policy(), 1, NOW_MS, None);
    serve_keys(&worker, host, &[&key()]);
    host.advance_ms(100);
    worker.on_tick(host);
    worker
}

fn serve_keys(worker: &Worker, host: &MemoryHost<'_>, keys: &[&Key]) -> Vec<Waiting> {
    let mut woken = Vec::new();
    for _ in 0..3 {
        woken.extend(worker.on_tick(host));
        if let Some(call) = host.take_calls().pop() {
            assert_eq!(worker.body_limit(call.token), Some(1 << 20));
            let body = jwks_json(keys.iter().map(|k| k.jwk(Some("EdDSA"))));
            let reply = Reply::Answer(Answer {
                status: Some(200),
                headers: Vec::new(),
                body: body.into_bytes(),
            });
            worker.on_response(host, call.token, reply);
            return woken;
        }
        host.advance_ms(100);
    }
    panic!("no key fetch started");
}

#[test]
fn a_request_before_the_first_keys_waits_and_then_proceeds() {
    let store = MemoryStore::default();
    let host = MemoryHost::vm(&store, NOW_MS);
    let worker = Worker::new(policy(), 1, NOW_MS, None);
    assert_eq!(worker.tick_period_ms(), 100);
    let key = key();
    let token = token(&key);
    assert_eq!(decide_with(&worker, &host, 7, &token, None), Step::Wait);
    assert_eq!(
        host.counter("denied.keys_unavailable"),
        0,
        "not decided yet"
    );

    // Each tick hands the request back, as the glue re-decides it; until
    // the keys arrive it goes on waiting.
    for (id, since) in serve_keys(&worker, &host, &[&key]) {
        assert_eq!(
            decide_with(&worker, &host, id, &token, Some(since)),
            Step::Wait
        );
    }
    host.advance_ms(100);
    let woken = worker.on_tick(&host);
    assert_eq!(woken, vec![(7, NOW_MS)]);
    let step = decide_with(&worker, &host, 7, &token, Some(NOW_MS));
    let Step::Apply(Decision::Allow(allow)) = step else {
        panic!("{step:?}")
    };
    assert_eq!(
        allow.identity_headers(),
        [("x-user-id".into(), "alice".into())]
    );
    assert_eq!(host.counter("allowed"), 0, "counted in the VM");
    worker.on_tick(&host);
    assert_eq!(host.counter("allowed"), 1, "flushed on the tick");
}

#[test]
fn a_request_waits_no_longer_than_the_timeout() {
    let store = MemoryStore::default();
    let host = MemoryHost::vm(&store, NOW_MS);
    let worker = Worker::new(policy(), 1, NOW_MS, None);
    let token = token(&key());
    assert_eq!(decide_with(&worker, &host, 7, &token, None), Step::Wait);
    host.advance_ms(1_000);
    assert_eq!(worker.on_tick(&host), vec![(7, NOW_MS)]);
    assert_eq!(
        decide_with(&worker, &host, 7, &token, Some(NOW_MS)),
        Step::Wait,
        "within timeout_ms"
    );
    host.advance_ms(600);
    assert_eq!(worker.on_tick(&host), vec![(7, NOW_MS)]);
    let step = decide_with(&worker, &host, 7, &token, Some(NOW_MS));
    let Step::Apply(Decision::Deny(deny)) = step else {
        panic!("{step:?}")
    };
    assert_eq!((deny.status(), deny.label()), (401, "keys_unavailable"));
    worker.flush_counts(&host);
    assert_eq!(host.counter("denied.keys_unavailable"), 1);
}

#[test]
fn a_request_that_ends_leaves_the_queue() {
    let store = MemoryStore::default();
    let host = MemoryHost::vm(&store, NOW_MS);
    let worker = Worker::new(policy(), 1, NOW_MS, None);
    let token = token(&key());
    assert_eq!(decide_with(&worker, &host, 7, &token, None), Step::Wait);
    assert_eq!(decide_with(&worker, &host, 8, &token, None), Step::Wait);
    worker.forget(7);
    assert_eq!(worker.on_tick(&host), vec![(8, NOW_MS)]);
}

#[test]
fn an_unknown_kid_is_refused_and_makes_the_fetcher_refetch() {
    let store = MemoryStore::default();
    let host = MemoryHost::vm(&store, NOW_MS);
    let worker = worker_with_keys(&host);

    let rotated = Key::ed25519().with_kid("k2");
    let step = decide_with(&worker, &host, 9, &token(&rotated), None);
    let Step::Apply(Decision::Deny(deny)) = step else {
        panic!("{step:?}")
    };
    assert_eq!(deny.label(), "unknown_kid");
    // The fetcher refetches on its next tick, not in refresh_seconds.
    host.advance_ms(100);
    worker.on_tick(&host);
    let calls = host.take_calls();
    assert_eq!(calls.len(), 1, "early refetch");
    assert_eq!(calls[0].path(), "/.well-known/jwks.json");
    assert_eq!(worker.body_limit(calls[0].token + 1), None, "not ours");
}

#[test]
fn decisions_are_also_counted_per_provider() {
    let store = MemoryStore::default();
    let host = MemoryHost::vm(&store, NOW_MS);
    let worker = worker_with_keys(&host);
    let good = token(&key());
    let unknown = token(&Key::ed25519().with_kid("k2"));
    for (id, t) in [
        (1, good.as_str()),
        (2, good.as_str()),
        (3, unknown.as_str()),
    ] {
        assert!(matches!(
            decide_with(&worker, &host, id, t, None),
            Step::Apply(_)
        ));
    }
    // Not attributable to any provider: the token is not even parsed.
    assert!(matches!(
        decide_with(&worker, &host, 4, "not-a-token", None),
        Step::Apply(Decision::Deny(_))
    ));
    worker.on_tick(&host);
    assert_eq!(host.counter("allowed"), 2);
    assert_eq!(host.counter("allowed.idp"), 2);
    assert_eq!(host.counter("denied.unknown_kid"), 1);
    assert_eq!(host.counter("denied.idp.unknown_kid"), 1);
    assert_eq!(host.counter("denied.malformed"), 1);
    assert_eq!(host.counter("denied.idp.malformed"), 0);
    let declared = worker.decision_metric_names();
    let loops = ["jwks.", "revocation."];
    for name in host.counters.borrow().keys() {
        if loops.iter().any(|l| name.starts_with(l)) {
            continue;
        }
        assert!(declared.contains(name), "{name} not in {declared:?}");
    }
    assert!(declared.contains(&"denied.idp.revocation_stale".to_string()));
    assert!(declared.contains(&"bypassed.cors_preflight".to_string()));
}
