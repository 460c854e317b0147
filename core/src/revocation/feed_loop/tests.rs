//! The revocation loop over an in-memory host: polls, pages, faults, and
//! what the other VMs of the proxy see.

use super::*;
use crate::host::memory::{Call, MemoryHost, MemoryStore};
use crate::host::Answer;
use crate::revocation::feed::OnStale;

const SECRET: &[u8] = b"feed-secret";

fn config() -> FeedConfig {
    FeedConfig {
        cluster: "feed".into(),
        authority: "revocation-feed".into(),
        path: "/v1/revocations".into(),
        poll_interval_ms: 1000,
        timeout_ms: 500,
        bearer_token: Some("read".into()),
        hmac_secret: Some(SECRET.to_vec()),
        max_staleness_seconds: 30,
        on_stale: OnStale::Serve,
        namespace: "ns".into(),
        max_body_bytes: 1 << 20,
        sync_interval_ms: 100,
        max_backoff_ms: 8000,
        clock_skew_seconds: 60,
        max_pending_entries: 100,
        wait_ms: 0,
        accept_unbound_answers: false,
    }
}

/// A query parameter of a poll.
fn param<'c>(call: &'c Call, name: &str) -> &'c str {
    let query = call.path().split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or("")
}

/// The answer of a feed of epoch `e` to `call`, bound to it, made at
/// `host`'s time.
fn answer(host: &MemoryHost<'_>, call: &Call, body: &str) -> Reply {
    answer_of_epoch(host, call, "e", body)
}

fn answer_of_epoch(host: &MemoryHost<'_>, call: &Call, epoch: &str, body: &str) -> Reply {
    let digest = revocation_protocol::body_digest(body.as_bytes());
    let (since, nonce) = (param(call, "since"), param(call, "nonce"));
    let time = host.now_ms() / 1000;
    let binding =
        revocation_protocol::bound_signature(SECRET, since, nonce, epoch, time, &digest).unwrap();
    Reply::Answer(Answer {
        status: Some(200),
        headers: vec![(BINDING_HEADER.to_string(), binding.into_bytes())],
        body: body.as_bytes().to_vec(),
    })
}

fn tokens(cursor: &str, reset: bool, more: bool, jtis: &[&str]) -> String {
    let revoked: Vec<String> = jtis
        .iter()
        .map(|j| format!("{{\"jti\":\"{j}\",\"exp\":99999999999}}"))
        .collect();
    format!(
        "{{\"cursor\":\"{cursor}\",\"reset\":{reset},\"more\":{more},\"revoked\":[{}]}}",
        revoked.join(",")
    )
}

/// Ticks (100 ms apart) until a poll starts.
fn tick_until_call(l: &mut RevocationLoop, host: &MemoryHost<'_>) -> Call {
    for _ in 0..40 {
        l.on_tick(host);
        if let Some(call) = host.take_calls().pop() {
            return call;
        }
        host.advance_ms(100);
    }
    panic!("no poll started");
}

fn revoked(l: &RevocationLoop, jti: &str) -> bool {
    l.view
        .replica
        .borrow()
        .set
        .is_revoked(Some(jti), None, None)
}

#[test]
fn a_poll_is_published_to_every_vm() {
    let store = MemoryStore::default();
    let host = MemoryHost::vm(&store, 1_000_000);
    let mut fetcher = RevocationLoop::new(config(), 1, host.now_ms());
    let call = tick_until_call(&mut fetcher, &host);
    assert_eq!(call.cluster, "feed");
    assert!(call.path().starts_with("/v1/revocations?paged=1&nonce="));
    assert_eq!(param(&call, "nonce").len(), 32);
    assert_eq!(call.header("authorization"), Some("Bearer read"));
    assert_eq!(call.timeout_ms, 500);
    fetcher.on_response(
        &host,
        answer(&host, &call, &tokens("e-1", true, false, &["a", "b"])),
    );
    assert_eq!(host.counter("revocation.fetch_ok"), 1);
    assert!(revoked(&fetcher, "a"));

    let worker_host = MemoryHost::vm(&store, host.now_ms() + 50);
    let mut worker = RevocationLoop::new(config(), 2, worker_host.now_ms());
    worker.on_tick(&worker_host);
    assert!(revoked(&worker, "a") && revoked(&worker, "b"));
    assert_eq!(worker_host.gauge("revocation.entries"), Some(2));
    assert!(worker_host.take_calls().is_empty(), "one poller per proxy");

    // The next poll carries the cursor, one interval later.
    host.advance_ms(500);
    fetcher.on_tick(&host);
    assert!(host.take_calls().is_empty(), "not before the interval");
    host.advance_ms(600);
    fetcher.on_tick(&host);
    let call = host.take_calls().pop().expect("next poll");
    assert_eq!(param(&call, "since"), "e-1");
    fetcher.on_response(
        &host,
        answer(&host, &call, &tokens("e-2", false, false, &["c"])),
    );
    worker.on_tick(&worker_host);
    assert!(revoked(&worker, "c"), "the delta reached the worker");
}

#[test]
fn a_paged_answer_is_applied_whole_or_not_at_all() {
    let store = MemoryStore::default();
    let host = MemoryHost::vm(&store, 1_000_000);
    let mut fetcher = RevocationLoop::new(config(), 1, host.now_ms());
    let call = tick_until_call(&mut fetcher, &host);
    fetcher.on_response(
        &host,
        answer(&host, &call, &tokens("e-1", true, false, &["old"])),
    );

    host.advance_ms(1_100);
    let call = tick_until_call(&mut fetcher, &host);
    fetcher.on_response(
        &host,
        answer(&host, &call, &tokens("e-9~1", true, true, &["p1"])),
    );
    assert_eq!(host.counter("revocation.fetch_page"), 1);
    assert!(
        revoked(&fetcher, "old"),
        "nothing applied before the last page"
    );
    // The continuation is asked for at once, with the page cursor.
    host.advance_ms(100);
    let call = tick_until_call(&mut fetcher, &host);
    assert_eq!(param(&call, "since"), "e-9~1");
    // The second page fails: every page gathered so far is dropped.
    fetcher.on_response(
        &host,
        Reply::Answer(Answer {
            status: Some(502),
            ..Answer::default()
        }),
    );
    assert_eq!(host.counter("revocation.fetch_failed.status"), 1);
    assert!(revoked(&fetcher, "old") && !revoked(&fetcher, "p1"));
    // After the backoff the poll starts over from the published cursor.
    host.advance_ms(1_100);
    let call = tick_until_call(&mut fetcher, &host);
    assert_eq!(param(&call, "since"), "e-1");
    fetcher.on_response(
        &host,
        answer(&host, &call, &tokens("e-9~1", true, true, &["p1"])),
    );
    host.advance_ms(100);
    let call = tick_until_call(&mut fetcher, &host);
    fetcher.on_response(
        &host,
        answer(&host, &call, &tokens("e-9", false, false, &["p2"])),
    );
    assert!(revoked(&fetcher, "p1") && revoked(&fetcher, "p2"));
    assert!(!revoked(&fetcher, "old"), "the snapshot replaced the set");
}

#[test]
fn losing_the_lease_abandons_gathered_pages() {
    let store = MemoryStore::default();
    let a = MemoryHost::vm(&store, 1_000_000);
    let mut first = RevocationLoop::new(config(), 1, a.now_ms());
    let call = tick_until_call(&mut first, &a);
    first.on_response(&a, answer(&a, &call, &tokens("e-5~1", true, true, &["p1"])));
    // The next page is asked for at once, from the answer's callback.
    let next = a.take_calls();
    assert_eq!(next.len(), 1);
    assert_eq!(param(&next[0], "since"), "e-5~1");
    // Another VM takes the lease while the first stalls past its TTL.
    let b = MemoryHost::vm(&store, a.now_ms() + 2_500);
    let mut second = RevocationLoop::new(config(), 2, b.now_ms());
    let call = tick_until_call(&mut second, &b);
    assert_eq!(param(&call, "since"), "", "a fresh poll");
    a.set_now_ms(b.now_ms() + 100);
    first.on_tick(&a);
    assert!(a.take_calls().is_empty(), "the first VM no longer polls");
    second.on_response(&b, answer(&b, &call, &tokens("e-6", true, false, &["x"])));
    first.on_tick(&a);
    assert!(revoked(&first, "x") && !revoked(&first, "p1"));
}

#[test]
fn faults_are_counted_and_back_off_with_the_set_kept() {
    let store = MemoryStore::default();
    let host = MemoryHost::vm(&store, 1_000_000);
    let mut fetcher = RevocationLoop::new(config(), 1, host.now_ms());
    let call = tick_until_call(&mut fetcher, &host);
    fetcher.on_response(
        &host,
        answer(&host, &call, &tokens("e-1", true, false, &["a"])),
    );
    type Fault = Box<dyn Fn(&MemoryHost<'_>, &Call) -> Reply>;
    let faults: Vec<(Fault, &str)> = vec![
        (Box::new(|_, _| Reply::TooLarge(2 << 20)), "too_large"),
        (
            Box::new(|_, _| {
                Reply::Answer(Answer {
                    status: None,
                    ..Answer::default()
                })
            }),
            "timeout",
        ),
        (
            Box::new(|_, _| {
                Reply::Answer(Answer {
                    status: Some(200),
                    headers: Vec::new(),
                    body: tokens("e-2", true, false, &[]).into_bytes(),
                })
            }),
            "unbound",
        ),
        (
            Box::new(|host, _| {
                // The signed answer to an earlier poll, replayed.
                let earlier = Call {
                    token: 0,
                    cluster: "feed".into(),
                    headers: vec![(
                        ":path".into(),
                        "/v1/revocations?since=e-1&paged=1&nonce=0123456789abcdef0123456789abcdef"
                            .into(),
                    )],
                    timeout_ms: 500,
                };
                answer(host, &earlier, &tokens("e-1", false, false, &[]))
            }),
            "replayed",
        ),
        (
            Box::new(|host, call| answer(host, call, "{\"cursor\": 5}")),
            "invalid",
        ),
        (
            Box::new(|host, call| answer(host, call, &tokens("e-0", false, false, &[]))),
            "cursor_regression",
        ),
        (
            Box::new(|host, call| {
                answer_of_epoch(host, call, "older", &tokens("o-1", false, false, &[]))
            }),
            "epoch_rollback",
        ),
    ];
    let mut delay = 1_000;
    for (reply, label) in faults {
        host.advance_ms(delay + 100);
        let call = tick_until_call(&mut fetcher, &host);
        fetcher.on_response(&host, reply(&host, &call));
        assert_eq!(
            host.counter(&format!("revocation.fetch_failed.{label}")),
            1,
            "{label}"
        );
        assert!(revoked(&fetcher, "a"), "{label}: the last good set stays");
        // The delay doubles per consecutive failure, up to the cap.
        host.advance_ms(delay / 2);
        fetcher.on_tick(&host);
        assert!(host.take_calls().is_empty(), "{label}: backing off");
        delay = (delay * 2).min(8_000);
    }
    assert_eq!(host.counter("revocation.fetch_failed"), 7);
}

#[test]
fn a_vm_that_cannot_call_out_leaves_polling_to_another() {
    let store = MemoryStore::default();
    let a = MemoryHost::vm(&store, 1_000_000);
    *a.refuse_calls.borrow_mut() = Some("BadArgument".into());
    let mut first = RevocationLoop::new(config(), 1, a.now_ms());
    for _ in 0..3 {
        first.on_tick(&a);
        a.advance_ms(100);
    }
    assert_eq!(a.counter("revocation.fetch_failed.dispatch"), 1);
    let b = MemoryHost::vm(&store, a.now_ms());
    let mut second = RevocationLoop::new(config(), 2, b.now_ms());
    tick_until_call(&mut second, &b);
    // The first VM stays out of the election for 30 s.
    *a.refuse_calls.borrow_mut() = None;
    for _ in 0..20 {
        a.advance_ms(1_000);
        first.on_tick(&a);
    }
    assert!(a.take_calls().is_empty());
}

#[test]
fn deny_on_stale_refuses_until_the_first_sync_and_after_staleness() {
    let store = MemoryStore::default();
    let host = MemoryHost::vm(&store, 1_000_000);
    let mut fetcher = RevocationLoop::new(
        FeedConfig {
            on_stale: OnStale::Deny,
            ..config()
        },
        1,
        host.now_ms(),
    );
    fetcher.prime(&host);
    assert_eq!(fetcher.view.refuse_stale.get(), Some(1), "never synced");
    let call = tick_until_call(&mut fetcher, &host);
    fetcher.on_response(
        &host,
        answer(&host, &call, &tokens("e-1", true, false, &[])),
    );
    fetcher.on_tick(&host);
    assert_eq!(fetcher.view.refuse_stale.get(), None);
    // The feed goes away for longer than max_staleness_seconds.
    for _ in 0..35 {
        host.advance_ms(1_000);
        fetcher.on_tick(&host);
        for call in host.take_calls() {
            let _ = call;
            fetcher.on_response(
                &host,
                Reply::Answer(Answer {
                    status: None,
                    ..Answer::default()
                }),
            );
        }
    }
    assert_eq!(fetcher.view.refuse_stale.get(), Some(1));
    assert_eq!(host.gauge("revocation.seconds_since_sync"), Some(35));
}

/// Lets `ms` pass with the VM ticking, as its timer does while a poll is
/// held; asserts no other poll starts meanwhile.
fn hold(l: &mut RevocationLoop, host: &MemoryHost<'_>, ms: u64) {
    for _ in 0..ms / 100 {
        host.advance_ms(100);
        l.on_tick(host);
    }
    assert!(host.take_calls().is_empty(), "one poll at a time");
}

#[test]
fn long_polls_follow_each_other_at_once_and_an_early_empty_answer_waits() {
    let store = MemoryStore::default();
    let host = MemoryHost::vm(&store, 1_000_000);
    let long = FeedConfig {
        wait_ms: 20_000,
        ..config()
    };
    let mut fetcher = RevocationLoop::new(long, 1, host.now_ms());
    let call = tick_until_call(&mut fetcher, &host);
    assert_eq!(param(&call, "wait_ms"), "20000");
    assert_eq!(call.timeout_ms, 20_500, "the wait plus timeout_ms");
    fetcher.on_response(
        &host,
        answer(&host, &call, &tokens("e-1", true, false, &[])),
    );
    // The snapshot came at once: the next (held) poll goes out at once,
    // from the answer's callback, not a tick later.
    let call = host.take_calls().pop().expect("next poll at once");
    // The feed held it 12 s and answered with news: poll again at once.
    hold(&mut fetcher, &host, 12_000);
    fetcher.on_response(
        &host,
        answer(&host, &call, &tokens("e-2", false, false, &["x"])),
    );
    let call = host.take_calls().pop().expect("next poll after news");
    // Held the whole wait, nothing new: at once again.
    hold(&mut fetcher, &host, 20_000);
    fetcher.on_response(
        &host,
        answer(&host, &call, &tokens("e-2", false, false, &[])),
    );
    let call = host
        .take_calls()
        .pop()
        .expect("next poll after a held empty answer");
    // An early empty answer (a feed that does not hold polls): the interval.
    host.advance_ms(50);
    fetcher.on_response(
        &host,
        answer(&host, &call, &tokens("e-2", false, false, &[])),
    );
    host.advance_ms(500);
    fetcher.on_tick(&host);
    assert!(host.take_calls().is_empty(), "no polling in a loop");
    host.advance_ms(600);
    fetcher.on_tick(&host);
    assert_eq!(host.take_calls().len(), 1);
    assert_eq!(host.counter("revocation.fetch_ok"), 4);
}

#[test]
fn a_fetcher_whose_lease_lapsed_does_not_publish() {
    let store = MemoryStore::default();
    let a = MemoryHost::vm(&store, 1_000_000);
    let mut first = RevocationLoop::new(config(), 1, a.now_ms());
    let call = tick_until_call(&mut first, &a);
    first.on_response(&a, answer(&a, &call, &tokens("e-1", true, false, &["a"])));
    a.advance_ms(1_100);
    let slow = tick_until_call(&mut first, &a);
    // The first VM stalls (a long apply) past its lease; the second takes
    // over and publishes.
    let b = MemoryHost::vm(&store, a.now_ms() + 2_500);
    let mut second = RevocationLoop::new(config(), 2, b.now_ms());
    second.on_tick(&b);
    let call = tick_until_call(&mut second, &b);
    second.on_response(&b, answer(&b, &call, &tokens("e-2", false, false, &["b"])));
    a.set_now_ms(b.now_ms() + 10);
    first.on_response(
        &a,
        answer(&a, &slow, &tokens("e-2x", false, false, &["stale"])),
    );
    assert_eq!(a.counter("revocation.publish_conflict"), 1);
    assert_eq!(a.counter("revocation.fetch_ok"), 1);
    let mut worker = RevocationLoop::new(config(), 3, b.now_ms());
    worker.on_tick(&b);
    assert!(revoked(&worker, "b") && !revoked(&worker, "stale"));
    assert_eq!(worker.view.replica.borrow().meta.cursor, "e-2");
}

#[test]
fn entries_scoped_to_an_issuer_refuse_only_that_issuers_tokens() {
    let store = MemoryStore::default();
    let host = MemoryHost::vm(&store, 1_000_000);
    let mut fetcher = RevocationLoop::new(config(), 1, host.now_ms());
    let call = tick_until_call(&mut fetcher, &host);
    let body = r#"{"cursor":"e-1","reset":true,
        "revoked":[{"jti":"shared","iss":"https://a","exp":99999999999},
                   {"jti":"everywhere","exp":99999999999}],
        "revoked_subjects":[{"sub":"sam","iss":"https://a","before":100,"exp":99999999999}]}"#;
    fetcher.on_response(&host, answer(&host, &call, body));
    let worker_host = MemoryHost::vm(&store, host.now_ms());
    let mut worker = RevocationLoop::new(config(), 2, worker_host.now_ms());
    worker.on_tick(&worker_host);
    let replica = worker.view.replica.borrow();
    let set = &replica.set;
    assert!(set.scoped, "the worker knows the set holds scoped entries");
    let revoked = |iss: &str, jti: &str| set.is_revoked_for(Some(iss), Some(jti), None, None);
    assert!(revoked("https://a", "shared"));
    assert!(
        !revoked("https://b", "shared"),
        "another issuer's jti of the same name"
    );
    assert!(
        !set.is_revoked_for(None, Some("shared"), None, None),
        "no issuer"
    );
    assert!(revoked("https://a", "everywhere") && revoked("https://b", "everywhere"));
    let sam = |iss: &str| set.is_revoked_for(Some(iss), None, Some("sam"), Some(50));
    assert!(sam("https://a") && !sam("https://b"));
}
