//! The key-fetch loop over an in-memory host: what it calls, when, and what
//! the other VMs of the proxy see.

use super::*;
use crate::host::memory::{MemoryHost, MemoryStore};
use crate::host::Answer;

// Public keys: a remote JWKS never carries an HMAC secret.
const KEY_1: &str =
    r#"{"kty":"OKP","kid":"h1","crv":"Ed25519","x":"_pX3yiaoBvY7LHEZG-41JL8pCUgK_XAfsxybLEZDy38"}"#;
const KEY_2: &str =
    r#"{"kty":"OKP","kid":"h2","crv":"Ed25519","x":"4rPl48oS6PwQRfR9SD9uZTP_q3wV8fyiZ4buQBWGKMA"}"#;

fn config(discovery: bool) -> RemoteJwksConfig {
    RemoteJwksConfig {
        cluster: "idp".into(),
        authority: "idp.example.com".into(),
        path: "/.well-known/jwks.json".into(),
        refresh_seconds: 600,
        timeout_ms: 2000,
        min_refresh_seconds: 30,
        max_refresh_seconds: 86400,
        unknown_kid_refetch_seconds: 30,
        max_body_bytes: 1 << 20,
        max_backoff_ms: 8000,
        discovery,
    }
}

fn key_loop(discovery: bool, owner: u64) -> KeyFetchLoop {
    KeyFetchLoop::new(
        0,
        "idp",
        Some("https://idp.example.com/realms/x".into()),
        config(discovery),
        "ns",
        owner,
    )
}

fn ok(body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![(":status".to_string(), b"200".to_vec())];
    all.extend(
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
    );
    Reply::Answer(Answer {
        status: Some(200),
        headers: all,
        body: body.as_bytes().to_vec(),
    })
}

fn jwks(keys: &[&str]) -> String {
    format!("{{\"keys\":[{}]}}", keys.join(","))
}

/// Ticks until the loop holds its lease and starts a call (a new holder
/// counts from the tick after its write).
fn tick_until_call(l: &mut KeyFetchLoop, host: &MemoryHost<'_>) -> crate::host::memory::Call {
    for _ in 0..3 {
        l.maybe_fetch(host);
        if let Some(call) = host.take_calls().pop() {
            return call;
        }
        host.advance_ms(100);
    }
    panic!("no call started");
}

#[test]
fn discovery_then_keys_then_every_vm_sees_them() {
    let store = MemoryStore::default();
    let host = MemoryHost::vm(&store, 1_000_000);
    let mut fetcher = key_loop(true, 1);
    let call = tick_until_call(&mut fetcher, &host);
    assert_eq!(call.cluster, "idp");
    assert_eq!(call.path(), "/realms/x/.well-known/openid-configuration");
    assert_eq!(call.header(":authority"), Some("idp.example.com"));
    assert!(fetcher.owns_call(call.token));
    fetcher.on_response(
        &host,
        ok(
            r#"{"jwks_uri":"https://idp.example.com/realms/x/certs"}"#,
            &[],
        ),
    );
    let call = tick_until_call(&mut fetcher, &host);
    assert_eq!(call.path(), "/realms/x/certs", "discovered path");
    fetcher.on_response(
        &host,
        ok(&jwks(&[KEY_1]), &[("cache-control", "max-age=120")]),
    );
    assert_eq!(host.counter("jwks.idp.fetch_ok"), 1);

    // Another VM of the proxy picks the set up from shared data.
    let worker_host = MemoryHost::vm(&store, 1_000_500);
    let mut worker = key_loop(true, 2);
    let keys = worker.sync(&worker_host).expect("published set");
    assert_eq!(keys.len(), 1);
    assert_eq!(worker_host.gauge("jwks.idp.keys"), Some(1));
    assert!(
        worker.sync(&worker_host).is_none(),
        "unchanged set not re-read"
    );
    worker.maybe_fetch(&worker_host);
    worker_host.advance_ms(100);
    worker.maybe_fetch(&worker_host);
    assert!(worker_host.take_calls().is_empty(), "one fetcher per proxy");

    // The server's max-age sets the next refresh.
    host.advance_ms(119_000);
    fetcher.maybe_fetch(&host);
    assert!(host.take_calls().is_empty(), "before max-age");
    host.advance_ms(1_500);
    fetcher.maybe_fetch(&host);
    assert_eq!(host.take_calls().len(), 1, "refresh at max-age");
}

#[test]
fn unknown_kid_refetches_early_at_most_once_per_interval() {
    let store = MemoryStore::default();
    let host = MemoryHost::vm(&store, 1_000_000);
    let mut fetcher = key_loop(false, 1);
    tick_until_call(&mut fetcher, &host);
    fetcher.on_response(&host, ok(&jwks(&[KEY_1]), &[]));

    // A worker sees a token with an unknown kid and signals; the fetcher
    // refetches on its next tick instead of in 600 s.
    let worker_host = MemoryHost::vm(&store, 1_001_000);
    let worker = key_loop(false, 2);
    worker.signal_unknown_kid(&worker_host);
    host.set_now_ms(1_001_100);
    fetcher.maybe_fetch(&host);
    assert_eq!(host.take_calls().len(), 1, "early refetch");
    fetcher.on_response(&host, ok(&jwks(&[KEY_1, KEY_2]), &[]));

    // A flood of unknown kids: at most one early fetch per 30 s.
    for step in 1..=20u64 {
        worker_host.set_now_ms(1_001_100 + step * 1_000);
        worker.signal_unknown_kid(&worker_host);
        host.set_now_ms(1_001_200 + step * 1_000);
        fetcher.maybe_fetch(&host);
    }
    assert!(
        host.take_calls().is_empty(),
        "within 30 s of the last early fetch"
    );
    worker_host.set_now_ms(1_031_500);
    worker.signal_unknown_kid(&worker_host);
    host.set_now_ms(1_031_600);
    fetcher.maybe_fetch(&host);
    assert_eq!(host.take_calls().len(), 1);
}

#[test]
fn a_silent_fetcher_is_replaced_and_failures_back_off() {
    let store = MemoryStore::default();
    let a = MemoryHost::vm(&store, 1_000_000);
    let b = MemoryHost::vm(&store, 1_000_000);
    let mut first = key_loop(false, 1);
    let mut second = key_loop(false, 2);
    tick_until_call(&mut first, &a);
    second.maybe_fetch(&b);
    assert!(b.take_calls().is_empty(), "lease held by the first VM");

    // The first VM goes silent; after the lease's 2 s the second takes over.
    b.advance_ms(2_500);
    let call = tick_until_call(&mut second, &b);
    assert!(second.owns_call(call.token));

    // Failures are counted, keep nothing, and back off: 1 s, 2 s, 4 s.
    let failure = Reply::Answer(Answer {
        status: Some(503),
        ..Answer::default()
    });
    second.on_response(&b, failure.clone());
    assert_eq!(b.counter("jwks.idp.fetch_failed"), 1);
    assert!(second.sync(&b).is_none(), "nothing published");
    b.advance_ms(900);
    second.maybe_fetch(&b);
    assert!(b.take_calls().is_empty(), "backing off");
    b.advance_ms(200);
    second.maybe_fetch(&b);
    assert_eq!(b.take_calls().len(), 1, "retry after 1 s");
    second.on_response(&b, failure);
    b.advance_ms(1_500);
    second.maybe_fetch(&b);
    assert!(b.take_calls().is_empty(), "the delay doubled");
    b.advance_ms(600);
    second.maybe_fetch(&b);
    assert_eq!(b.take_calls().len(), 1);

    // A body over the limit and a set without usable keys fail the same way.
    second.on_response(&b, Reply::TooLarge(2 << 20));
    assert_eq!(b.counter("jwks.idp.fetch_failed"), 3);
}

#[test]
fn a_refused_call_gives_the_lease_up() {
    let store = MemoryStore::default();
    let a = MemoryHost::vm(&store, 1_000_000);
    let b = MemoryHost::vm(&store, 1_000_000);
    let mut first = key_loop(false, 1);
    let mut second = key_loop(false, 2);
    *a.refuse_calls.borrow_mut() = Some("BadArgument".into());
    for _ in 0..3 {
        first.maybe_fetch(&a);
        a.advance_ms(100);
    }
    assert_eq!(a.counter("jwks.idp.fetch_failed"), 1);
    // The lease is free at once: the other VM fetches on its next ticks.
    b.set_now_ms(a.now_ms());
    let call = tick_until_call(&mut second, &b);
    assert_eq!(call.path(), "/.well-known/jwks.json");
}

#[test]
fn a_bad_set_keeps_the_last_good_keys() {
    let store = MemoryStore::default();
    let host = MemoryHost::vm(&store, 1_000_000);
    let mut fetcher = key_loop(false, 1);
    tick_until_call(&mut fetcher, &host);
    fetcher.on_response(&host, ok(&jwks(&[KEY_1]), &[]));
    let mut worker = key_loop(false, 2);
    assert!(worker.sync(&host).is_some());
    host.advance_ms(600_000);
    tick_until_call(&mut fetcher, &host);
    fetcher.on_response(&host, ok("{\"keys\": []}", &[]));
    assert_eq!(host.counter("jwks.idp.fetch_failed"), 1);
    assert!(worker.sync(&host).is_none(), "the good set stays");
}
