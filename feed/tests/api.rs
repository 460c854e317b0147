//! The API test suite, run once against the embedded store and once against
//! a real Redis (see `suite!` at the bottom).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{binding, epoch_of, error_field, jtis, nonce, now, Backend, Harness, Opts, ADMIN};
use hyper::Method;
use revocation_feed::client::HttpResponse;
use revocation_feed::FeedLimits;
use revocation_protocol::{
    verify_signature, BindingError, FeedResponse, BINDING_HEADER, SIGNATURE_HEADER,
};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn tok(jti: &str, exp: u64) -> String {
    format!(r#"{{"jti":"{jti}","exp":{exp}}}"#)
}

pub async fn first_poll_is_an_empty_reset(b: Backend) {
    let h = Harness::start(b, Opts::default()).await;
    let r = h.feed(None).await;
    assert!(r.reset);
    assert!(r.revoked.is_empty() && r.revoked_subjects.is_empty());
    assert!(!r.cursor.is_empty());
    // Polling again from that cursor is an empty delta with the same cursor.
    let again = h.feed(Some(&r.cursor)).await;
    assert!(!again.reset);
    assert_eq!(again.cursor, r.cursor);
    assert!(again.revoked.is_empty());
}

pub async fn deltas_carry_only_what_came_after_the_cursor(b: Backend) {
    let h = Harness::start(b, Opts::default()).await;
    let exp = now() + 3600;
    let c0 = h.feed(None).await.cursor;
    let c1 = h.revoke(&tok("a", exp)).await;
    let c2 = h
        .revoke(&format!(
            r#"[{},{{"sub":"user-1","before":{},"exp":{exp}}}]"#,
            tok("b", exp),
            now()
        ))
        .await;
    assert_ne!(c1, c2);

    let d = h.feed(Some(&c0)).await;
    assert!(!d.reset);
    assert_eq!(jtis(&d), ["a", "b"]);
    assert_eq!(d.revoked_subjects.len(), 1);
    assert_eq!(d.revoked_subjects[0].sub, "user-1");
    assert_eq!(d.cursor, c2);

    let d = h.feed(Some(&c1)).await;
    assert!(!d.reset);
    assert_eq!(jtis(&d), ["b"]);
    assert_eq!(d.revoked_subjects.len(), 1);

    let d = h.feed(Some(&c2)).await;
    assert!(!d.reset && d.revoked.is_empty() && d.revoked_subjects.is_empty());
    assert_eq!(d.cursor, c2);

    let snap = h.feed(None).await;
    assert!(snap.reset);
    assert_eq!(jtis(&snap), ["a", "b"]);
    assert_eq!(snap.cursor, c2);
}

pub async fn admin_accepts_one_entry_a_list_and_a_wrapped_list(b: Backend) {
    let h = Harness::start(b, Opts::default()).await;
    let exp = now() + 3600;
    for (body, n) in [
        (tok("one", exp), 1),
        (format!("[{},{}]", tok("l1", exp), tok("l2", exp)), 2),
        (format!(r#"{{"revocations":[{}]}}"#, tok("w1", exp)), 1),
        (
            format!(r#"{{"sub":"s","before":{},"exp":{exp}}}"#, now()),
            1,
        ),
    ] {
        let resp = h.post(&body).await;
        assert_eq!(resp.status, 201);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(v["accepted"], n);
        assert!(v["cursor"].as_str().is_some_and(|c| !c.is_empty()));
    }
    let snap = h.feed(None).await;
    assert_eq!(jtis(&snap), ["l1", "l2", "one", "w1"]);
    assert_eq!(snap.revoked_subjects.len(), 1);
}

pub async fn bad_input_is_400_naming_the_field(b: Backend) {
    let h = Harness::start(b, Opts::default()).await;
    let exp = now() + 3600;
    let t = now();
    let cases: Vec<(String, Option<&str>)> = vec![
        ("not json".into(), None),
        ("".into(), None),
        ("42".into(), None),
        ("[]".into(), Some("revocations")),
        (r#"{"exp":5}"#.into(), Some("jti")),
        (r#"{"jti":"a"}"#.into(), Some("exp")),
        (r#"{"jti":"a","exp":0}"#.into(), Some("exp")),
        (r#"{"jti":"a","exp":-1}"#.into(), Some("exp")),
        (r#"{"jti":"a","exp":1.5}"#.into(), Some("exp")),
        (r#"{"jti":"a","exp":"1"}"#.into(), Some("exp")),
        (r#"{"jti":"","exp":5}"#.into(), Some("jti")),
        (r#"{"jti":null,"exp":5}"#.into(), Some("jti")),
        (r#"{"jti":"a","exp":5,"reason":"x"}"#.into(), Some("reason")),
        (r#"{"jti":"a","sub":"b","exp":5}"#.into(), Some("sub")),
        (format!(r#"{{"sub":"u","exp":{exp}}}"#), Some("before")),
        (
            format!(r#"{{"sub":"u","before":-1,"exp":{exp}}}"#),
            Some("before"),
        ),
        (
            format!(r#"{{"sub":"","before":{t},"exp":{exp}}}"#),
            Some("sub"),
        ),
        (
            format!(r#"{{"jti":"{}","exp":{exp}}}"#, "x".repeat(1025)),
            Some("jti"),
        ),
        (
            format!(
                "[{},{},{},{}]",
                tok("a", exp),
                tok("b", exp),
                tok("c", exp),
                r#"{"jti":"d","exp":-7}"#
            ),
            Some("revocations[3].exp"),
        ),
        (format!("[{},7]", tok("a", exp)), Some("revocations[1]")),
        (r#"{"revocations":"x"}"#.into(), Some("revocations")),
        (r#"{"jti":"a","iss":"","exp":5}"#.into(), Some("iss")),
        (r#"{"jti":"a","iss":null,"exp":5}"#.into(), Some("iss")),
        (
            format!(r#"{{"sub":"u","iss":7,"before":{t},"exp":{exp}}}"#),
            Some("iss"),
        ),
        (
            format!(r#"{{"jti":"a","iss":"{}","exp":{exp}}}"#, "i".repeat(1025)),
            Some("iss"),
        ),
        (
            format!(r#"[{},{{"jti":"b","iss":[],"exp":{exp}}}]"#, tok("a", exp)),
            Some("revocations[1].iss"),
        ),
        (r#"{"jti":"a","issuer":"A","exp":5}"#.into(), Some("issuer")),
    ];
    for (body, field) in cases {
        let resp = h.post(&body).await;
        assert_eq!(resp.status, 400, "body {body}");
        assert_eq!(resp.header("content-type"), Some("application/json"));
        assert_eq!(error_field(&resp).as_deref(), field, "body {body}");
    }
    let v: serde_json::Value = serde_json::from_slice(
        &h.post(&format!(
            "[{},{}]",
            tok("a", exp),
            r#"{"jti":"d","exp":-7}"#
        ))
        .await
        .body,
    )
    .unwrap();
    assert_eq!(v["error"], "revocations[1].exp: must be a positive integer");
    // None of it was written.
    let snap = h.feed(None).await;
    assert!(snap.revoked.is_empty() && snap.revoked_subjects.is_empty());
}

pub async fn a_list_with_one_bad_entry_writes_nothing(b: Backend) {
    let h = Harness::start(b, Opts::default()).await;
    let exp = now() + 3600;
    let c = h.revoke(&tok("kept", exp)).await;
    let mut list: Vec<String> = (0..50).map(|i| tok(&format!("n{i}"), exp)).collect();
    list.insert(37, r#"{"jti":"bad","exp":"soon"}"#.into());
    let resp = h.post(&format!("[{}]", list.join(","))).await;
    assert_eq!(resp.status, 400);
    assert_eq!(error_field(&resp).as_deref(), Some("revocations[37].exp"));
    let snap = h.feed(None).await;
    assert_eq!(jtis(&snap), ["kept"]);
    assert_eq!(snap.cursor, c, "the cursor must not move either");
    let d = h.feed(Some(&c)).await;
    assert!(d.revoked.is_empty());
}

pub async fn admin_token_is_required(b: Backend) {
    let h = Harness::start(
        b,
        Opts {
            read_token: Some("reader".into()),
            ..Opts::default()
        },
    )
    .await;
    let body = tok("x", now() + 60);
    for auth in [
        None,
        Some("Bearer wrong".to_string()),
        Some(format!("Basic {ADMIN}")),
        Some(ADMIN.to_string()),
        Some("Bearer reader".to_string()),
        Some(format!("Bearer {ADMIN}x")),
        Some("Bearer ".to_string()),
    ] {
        let resp = h.post_with(&body, auth.as_deref()).await;
        assert_eq!(resp.status, 401, "auth {auth:?}");
        assert_eq!(resp.header("www-authenticate"), Some("Bearer"));
        assert!(error_field(&resp).is_none());
    }
    // 401 comes before looking at the body.
    let resp = h.post_with("garbage", Some("Bearer wrong")).await;
    assert_eq!(resp.status, 401);
    let resp = h.post_with(&body, Some(&format!("bearer {ADMIN}"))).await;
    assert_eq!(resp.status, 201);
}

pub async fn admin_api_is_disabled_without_a_token(b: Backend) {
    let h = Harness::start(
        b,
        Opts {
            admin_token: None,
            ..Opts::default()
        },
    )
    .await;
    let resp = h
        .post_with(&tok("x", now() + 60), Some("Bearer anything"))
        .await;
    assert_eq!(resp.status, 403);
    assert!(h.feed(None).await.revoked.is_empty());
}

pub async fn oversized_body_is_413(b: Backend) {
    let h = Harness::start(
        b,
        Opts {
            max_body: 1000,
            ..Opts::default()
        },
    )
    .await;
    let exp = now() + 3600;
    let list: Vec<String> = (0..40).map(|i| tok(&format!("big-{i:04}"), exp)).collect();
    let body = format!("[{}]", list.join(","));
    assert!(body.len() > 1000);
    let resp = h.post(&body).await;
    assert_eq!(resp.status, 413);
    assert!(error_field(&resp).is_none());
    // Without Content-Length (chunked), the cap is enforced while reading.
    let addr = h.base.trim_start_matches("http://").to_string();
    let status = raw_chunked_post(&addr, &body, ADMIN);
    assert_eq!(status, 413);
    // Just under the cap goes through.
    let small = format!("[{}]", list[..10].join(","));
    assert!(small.len() < 1000);
    assert_eq!(h.post(&small).await.status, 201);
    assert_eq!(h.feed(None).await.revoked.len(), 10);
}

/// Sends a chunked POST by hand (the client always sets Content-Length) and
/// returns the status code.
fn raw_chunked_post(addr: &str, body: &str, token: &str) -> u16 {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut req = format!(
        "POST /v1/revocations HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    for chunk in body.as_bytes().chunks(100) {
        req.push_str(&format!(
            "{:x}\r\n{}\r\n",
            chunk.len(),
            std::str::from_utf8(chunk).unwrap()
        ));
    }
    req.push_str("0\r\n\r\n");
    // The server may answer and close before reading it all.
    let _ = s.write_all(req.as_bytes());
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

pub async fn responses_are_signed_when_a_secret_is_set(b: Backend) {
    let secret = b"feed-signing-secret".to_vec();
    let h = Harness::start(
        b,
        Opts {
            hmac: Some(secret.clone()),
            ..Opts::default()
        },
    )
    .await;
    let exp = now() + 3600;
    let c = h.revoke(&tok("signed", exp)).await;
    for since in [None, Some(c.as_str()), Some("garbage")] {
        let resp = h.get_with(since, None).await;
        assert_eq!(resp.status, 200);
        let sig = resp.header(SIGNATURE_HEADER).expect("signature header");
        assert!(sig.starts_with("sha256="));
        let hex = &sig["sha256=".len()..];
        assert_eq!(hex.len(), 64);
        assert!(hex
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert!(verify_signature(&secret, &resp.body, sig));
        assert!(!verify_signature(b"another secret", &resp.body, sig));
        let mut tampered = resp.body.to_vec();
        tampered.push(b' ');
        assert!(!verify_signature(&secret, &tampered, sig));
    }
    // Large snapshots come from a cache, and so does their signature; a
    // write in between must change both.
    let list: Vec<String> = (0..2500)
        .map(|i| tok(&format!("bulk-{i:05}"), exp))
        .collect();
    h.revoke(&format!("[{}]", list.join(","))).await;
    let mut seen = Vec::new();
    for round in 0..3 {
        if round == 2 {
            h.revoke(&tok("one-more", exp)).await;
        }
        let resp = h.get_with(None, None).await;
        assert!(resp.body.len() > 64 * 1024);
        let sig = resp.header(SIGNATURE_HEADER).unwrap().to_string();
        assert!(verify_signature(&secret, &resp.body, &sig), "round {round}");
        seen.push(sig);
    }
    assert_eq!(seen[0], seen[1]);
    assert_ne!(seen[1], seen[2]);
    // No secret, no header.
    let plain = Harness::start(b, Opts::default()).await;
    assert!(plain
        .get_with(None, None)
        .await
        .header(SIGNATURE_HEADER)
        .is_none());
}

/// A secret as long as the server requires of real ones.
const SECRET: &[u8] = b"a feed signing key of 32+ bytes!";

fn signed(opts: Opts) -> Opts {
    Opts {
        hmac: Some(SECRET.to_vec()),
        ..opts
    }
}

/// Every kind of answer carries a binding that verifies for its own poll
/// (and no other), beside the body signature that older filters check.
pub async fn answers_are_bound_to_their_poll(b: Backend) {
    let h = Harness::start(b, signed(capped(2))).await;
    let bound = |resp: &HttpResponse, since: Option<&str>, nonce: &str| {
        assert_eq!(resp.status, 200, "{:?}", resp.body);
        let got = binding(resp, SECRET, since, nonce).unwrap();
        let r = FeedResponse::parse(&resp.body).unwrap();
        assert_eq!(
            got.epoch,
            epoch_of(&r.cursor),
            "the binding carries the epoch"
        );
        assert!(
            got.time.abs_diff(now()) <= 5,
            "the feed's clock: {}",
            got.time
        );
        let v1 = resp.header(SIGNATURE_HEADER).expect("body signature too");
        assert!(verify_signature(SECRET, &resp.body, v1));
        r
    };
    // First poll (an empty snapshot): since is bound as empty.
    let n1 = nonce();
    let first = h.poll(None, &n1, None).await;
    let c0 = bound(&first, None, &n1).cursor;
    // The same answer to another poll: a fresh nonce, a new binding.
    let n2 = nonce();
    let again = h.poll(None, &n2, None).await;
    bound(&again, None, &n2);
    assert_eq!(again.body, first.body);
    assert_ne!(again.header(BINDING_HEADER), first.header(BINDING_HEADER));
    assert_eq!(
        binding(&first, SECRET, None, &n2),
        Err(BindingError::Mismatch)
    );
    assert_eq!(
        binding(&first, SECRET, Some(&c0), &n1),
        Err(BindingError::Mismatch)
    );
    // An empty answer for the current cursor: the one a replay would use.
    let n = nonce();
    let empty = h.poll(Some(&c0), &n, None).await;
    assert!(bound(&empty, Some(&c0), &n).revoked.is_empty());
    assert_eq!(
        binding(&empty, SECRET, None, &n),
        Err(BindingError::Mismatch)
    );
    assert_eq!(
        binding(&empty, SECRET, Some(&c0), &nonce()),
        Err(BindingError::Mismatch)
    );
    // A delta, cut into pages, each bound to the cursor it continues from.
    let exp = now() + 3600;
    let list: Vec<String> = (0..5).map(|i| tok(&format!("b{i}"), exp)).collect();
    h.revoke(&format!("[{}]", list.join(","))).await;
    let mut since = c0.clone();
    let mut pages = 0;
    loop {
        let n = nonce();
        let r = bound(&h.poll(Some(&since), &n, None).await, Some(&since), &n);
        pages += 1;
        since = r.cursor.clone();
        if !r.more {
            break;
        }
    }
    assert_eq!(pages, 3);
    // A paged snapshot: every page bound, continuation cursors included.
    let mut since: Option<String> = None;
    let mut resets = 0;
    loop {
        let n = nonce();
        let r = bound(
            &h.poll(since.as_deref(), &n, None).await,
            since.as_deref(),
            &n,
        );
        resets += usize::from(r.reset);
        since = Some(r.cursor.clone());
        if !r.more {
            break;
        }
    }
    assert_eq!(resets, 1);
    // A poll without a nonce (a filter that predates bindings) still gets
    // one, bound to the empty nonce.
    let old = h.get_with(Some(&c0), None).await;
    assert!(binding(&old, SECRET, Some(&c0), "").is_ok());
    // No secret, no binding.
    let plain = Harness::start(b, Opts::default()).await;
    let resp = plain.poll(None, &nonce(), None).await;
    assert_eq!(resp.status, 200);
    assert!(resp.header(BINDING_HEADER).is_none());
}

/// A malformed nonce or wait is a 400 naming the parameter; unknown
/// parameters are ignored.
pub async fn bad_poll_parameters_are_400_naming_them(b: Backend) {
    let h = Harness::start(b, Opts::default()).await;
    let path = revocation_protocol::REVOCATIONS_PATH;
    let good = nonce();
    for (query, field) in [
        ("nonce=".to_string(), "nonce"),
        ("nonce=abc".to_string(), "nonce"),
        (format!("nonce={}", good.to_uppercase()), "nonce"),
        (format!("nonce={good}x"), "nonce"),
        (format!("nonce={}", "a".repeat(65)), "nonce"),
        (format!("nonce={good}&nonce={good}"), "nonce"),
        ("wait_ms=soon".to_string(), "wait_ms"),
        ("wait_ms=-5".to_string(), "wait_ms"),
        ("wait_ms=2.5".to_string(), "wait_ms"),
        ("wait_ms=".to_string(), "wait_ms"),
        ("wait_ms=1&wait_ms=2".to_string(), "wait_ms"),
        ("wait_ms=184467440737095516160".to_string(), "wait_ms"),
        ("since=a&since=b".to_string(), "since"),
    ] {
        let resp = h.get_path(&format!("{path}?{query}")).await;
        assert_eq!(resp.status, 400, "{query}");
        assert_eq!(error_field(&resp).as_deref(), Some(field), "{query}");
    }
    let resp = h
        .get_path(&format!("{path}?nonce={good}&wait_ms=0&future=1&paged=1"))
        .await;
    assert_eq!(resp.status, 200);
    let m = h.path(Method::GET, "/metrics").await;
    let text = String::from_utf8(m.body.to_vec()).unwrap();
    assert!(
        text.contains(
            "revocation_feed_requests_total{endpoint=\"feed\",outcome=\"bad_request\"} 13\n"
        ),
        "{text}"
    );
}

/// A poll started in the background; yields the answer and when it came.
fn poll_in_background(
    h: &Arc<Harness>,
    since: Option<&str>,
    nonce: &str,
    wait_ms: Option<u64>,
) -> tokio::task::JoinHandle<(HttpResponse, Instant)> {
    let (h, since, nonce) = (h.clone(), since.map(str::to_string), nonce.to_string());
    tokio::spawn(async move {
        let resp = h.poll(since.as_deref(), &nonce, wait_ms).await;
        (resp, Instant::now())
    })
}

/// A poll answered and how long it took.
async fn timed_poll(
    h: &Harness,
    since: Option<&str>,
    wait_ms: Option<u64>,
) -> (FeedResponse, Duration) {
    let started = Instant::now();
    let resp = h.poll(since, &nonce(), wait_ms).await;
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    (FeedResponse::parse(&resp.body).unwrap(), started.elapsed())
}

async fn metrics_text(h: &Harness) -> String {
    let m = h.path(Method::GET, "/metrics").await;
    String::from_utf8(m.body.to_vec()).unwrap()
}

fn has_line(text: &str, line: &str) {
    assert!(
        text.contains(&format!("{line}\n")),
        "missing {line:?} in\n{text}"
    );
}

/// Held while nothing is new; answered within moments of an append.
pub async fn a_long_poll_is_woken_by_an_append(b: Backend) {
    let h = Arc::new(Harness::start(b, signed(Opts::default())).await);
    let c0 = h.feed(None).await.cursor;
    let n = nonce();
    let started = Instant::now();
    let held = poll_in_background(&h, Some(&c0), &n, Some(20_000));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!held.is_finished(), "answered though nothing was new");
    has_line(&metrics_text(&h).await, "revocation_feed_waiting_polls 1");
    let writing = Instant::now();
    let c1 = h.revoke(&tok("wakes-it", now() + 3600)).await;
    let (resp, answered) = held.await.unwrap();
    let after_write = answered - writing;
    eprintln!("{b:?}: long poll answered {after_write:?} after the write was sent");
    assert!(
        after_write < Duration::from_secs(1),
        "answered {after_write:?} after the write"
    );
    assert!(answered - started >= Duration::from_millis(400));
    binding(&resp, SECRET, Some(&c0), &n).unwrap();
    let r = FeedResponse::parse(&resp.body).unwrap();
    assert!(!r.reset);
    assert_eq!(jtis(&r), ["wakes-it"]);
    assert_eq!(r.cursor, c1);
    let text = metrics_text(&h).await;
    has_line(
        &text,
        "revocation_feed_long_polls_total{outcome=\"woken\"} 1",
    );
    has_line(&text, "revocation_feed_waiting_polls 0");
    has_line(
        &text,
        &format!(
            "revocation_feed_wakeups_up{{store=\"{}\"}} 1",
            h.store().kind()
        ),
    );
}

/// Nothing written: the poll is held for its whole wait, then gets the
/// empty answer with its own cursor, bound like any other.
pub async fn a_long_poll_waits_out_its_time_then_answers_empty(b: Backend) {
    let h = Harness::start(b, signed(Opts::default())).await;
    let c0 = h.revoke(&tok("old", now() + 3600)).await;
    let n = nonce();
    let started = Instant::now();
    let resp = h.poll(Some(&c0), &n, Some(700)).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700),
        "answered after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    binding(&resp, SECRET, Some(&c0), &n).unwrap();
    let r = FeedResponse::parse(&resp.body).unwrap();
    assert!(!r.reset && r.revoked.is_empty());
    assert_eq!(r.cursor, c0);
    has_line(
        &metrics_text(&h).await,
        "revocation_feed_long_polls_total{outcome=\"timeout\"} 1",
    );
}

/// Polls that need no waiting, or did not ask, are answered at once.
pub async fn polls_with_news_or_without_wait_are_answered_at_once(b: Backend) {
    let h = Harness::start(b, Opts::default()).await;
    let exp = now() + 3600;
    let c0 = h.feed(None).await.cursor;
    let c1 = h.revoke(&tok("new", exp)).await;
    let (epoch, _) = c1.split_once('-').unwrap();
    let future = match b {
        Backend::Embedded => format!("{epoch}-999999"),
        Backend::Redis => format!("{epoch}-99999999999999-0"),
    };
    let at_once = Duration::from_secs(1);
    // Caught up, but no wait asked (a filter that predates long polls), or
    // a wait of 0.
    for wait in [None, Some(0)] {
        let (r, took) = timed_poll(&h, Some(&c1), wait).await;
        assert!(took < at_once, "{wait:?}: {took:?}");
        assert!(!r.reset && r.revoked.is_empty());
    }
    // Behind the head: the news at once.
    let (r, took) = timed_poll(&h, Some(&c0), Some(20_000)).await;
    assert!(took < at_once, "{took:?}");
    assert_eq!(jtis(&r), ["new"]);
    // A snapshot is due (first poll, or a cursor this store cannot
    // continue, such as one from the future): at once.
    for since in [None, Some(future.as_str()), Some("garbage")] {
        let (r, took) = timed_poll(&h, since, Some(20_000)).await;
        assert!(took < at_once, "{since:?}: {took:?}");
        assert!(r.reset, "{since:?}");
        assert_eq!(r.cursor, c1);
    }
}

/// A wait longer than the server's maximum is cut to it.
pub async fn waits_are_capped_at_the_server_maximum(b: Backend) {
    let h = Harness::start(
        b,
        Opts {
            max_wait_ms: 500,
            ..Opts::default()
        },
    )
    .await;
    let c0 = h.feed(None).await.cursor;
    let (r, took) = timed_poll(&h, Some(&c0), Some(3_600_000)).await;
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(r.cursor, c0);
}

/// Beyond the most polls held at once, a poll is answered at once.
pub async fn held_polls_are_bounded(b: Backend) {
    let h = Arc::new(
        Harness::start(
            b,
            Opts {
                max_waiting_polls: 1,
                ..Opts::default()
            },
        )
        .await,
    );
    let c0 = h.feed(None).await.cursor;
    let held = poll_in_background(&h, Some(&c0), &nonce(), Some(20_000));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished());
    let (r, took) = timed_poll(&h, Some(&c0), Some(20_000)).await;
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(r.cursor, c0);
    let text = metrics_text(&h).await;
    has_line(&text, "revocation_feed_waiting_polls 1");
    has_line(
        &text,
        "revocation_feed_long_polls_total{outcome=\"full\"} 1",
    );
    h.revoke(&tok("frees-it", now() + 3600)).await;
    let (resp, _) = held.await.unwrap();
    assert_eq!(
        jtis(&FeedResponse::parse(&resp.body).unwrap()),
        ["frees-it"]
    );
}

/// Stopping the server answers held polls instead of waiting them out.
pub async fn stopping_answers_held_polls(b: Backend) {
    let mut h = Harness::start(b, Opts::default()).await;
    let c0 = h.feed(None).await.cursor;
    let url = format!(
        "{}{}",
        h.base,
        revocation_protocol::poll_request_path(
            revocation_protocol::REVOCATIONS_PATH,
            Some(&c0),
            &nonce(),
            Some(25_000)
        )
    );
    let client = h.client.clone();
    let held = tokio::spawn(async move { client.request(Method::GET, &url, &[], None).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished());
    let stopping = Instant::now();
    h.shutdown().await;
    let resp = held.await.unwrap().unwrap();
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(2), "stop took {took:?}");
    assert_eq!(resp.status, 200);
    let r = FeedResponse::parse(&resp.body).unwrap();
    assert_eq!(r.cursor, c0);
}

pub async fn read_token_is_required_when_set(b: Backend) {
    let h = Harness::start(
        b,
        Opts {
            read_token: Some("reader-token".into()),
            ..Opts::default()
        },
    )
    .await;
    for token in [None, Some("wrong"), Some(ADMIN), Some("reader-token ")] {
        let resp = h.get_with(None, token).await;
        if token == Some("reader-token ") {
            // Surrounding whitespace is not part of the token.
            assert_eq!(resp.status, 200);
            continue;
        }
        assert_eq!(resp.status, 401, "token {token:?}");
        assert_eq!(resp.header("www-authenticate"), Some("Bearer"));
    }
    assert_eq!(h.get_with(None, Some("reader-token")).await.status, 200);
    // Without a read token the feed is open.
    let open = Harness::start(b, Opts::default()).await;
    assert_eq!(open.get_with(None, None).await.status, 200);
}

pub async fn unknown_or_foreign_cursors_get_a_reset(b: Backend) {
    let h = Harness::start(b, Opts::default()).await;
    let exp = now() + 3600;
    let c = h.revoke(&tok("x", exp)).await;
    let (epoch, pos) = c.split_once('-').unwrap();
    let other_epoch = if epoch.starts_with('0') { "1" } else { "0" }.repeat(epoch.len());
    let future = if b == Backend::Embedded {
        format!("{epoch}-{}", pos.parse::<u64>().unwrap() + 1000)
    } else {
        format!("{epoch}-99999999999999-0")
    };
    for cursor in [
        format!("{other_epoch}-{pos}"),
        "garbage".to_string(),
        format!("{epoch}-"),
        format!("{epoch}-abc"),
        format!("-{pos}"),
        future,
    ] {
        let r = h.feed(Some(&cursor)).await;
        assert!(r.reset, "cursor {cursor} must give a reset");
        assert_eq!(jtis(&r), ["x"]);
        assert_eq!(r.cursor, c);
    }
    // A cursor from another store instance (fresh directory or Redis).
    let other = Harness::start(b, Opts::default()).await;
    let foreign = other.revoke(&tok("elsewhere", exp)).await;
    let r = h.feed(Some(&foreign)).await;
    assert!(r.reset);
    assert_eq!(jtis(&r), ["x"]);
}

pub async fn expired_entries_are_not_sent(b: Backend) {
    let h = Harness::start(
        b,
        with_limits(FeedLimits {
            grace_seconds: 60,
            ..FeedLimits::default()
        }),
    )
    .await;
    let t = now();
    let c0 = h.feed(None).await.cursor;
    let (gone, here) = (t - 3600, t + 3600);
    h.revoke(&format!(
        r#"[{},{},{},{{"sub":"gone","before":1,"exp":{gone}}},{{"sub":"here","before":1,"exp":{here}}}]"#,
        tok("long-gone", t - 3600),
        tok("in-grace", t - 10),
        tok("live", t + 3600),
    ))
    .await;
    for r in [h.feed(None).await, h.feed(Some(&c0)).await] {
        assert_eq!(jtis(&r), ["in-grace", "live"]);
        let subs: Vec<&str> = r.revoked_subjects.iter().map(|s| s.sub.as_str()).collect();
        assert_eq!(subs, ["here"]);
    }
    // Maintenance drops them for good and changes nothing that is served.
    h.store().maintain(now()).await.unwrap();
    let r = h.feed(Some(&c0)).await;
    assert!(!r.reset);
    assert_eq!(jtis(&r), ["in-grace", "live"]);
}

pub async fn deltas_are_capped_and_continue_from_the_returned_cursor(b: Backend) {
    let h = Harness::start(
        b,
        with_limits(FeedLimits {
            max_entries_per_response: 3,
            ..FeedLimits::default()
        }),
    )
    .await;
    let exp = now() + 3600;
    let c0 = h.feed(None).await.cursor;
    let list: Vec<String> = (0..8).map(|i| tok(&format!("e{i}"), exp)).collect();
    let last = h.revoke(&format!("[{}]", list.join(","))).await;
    let mut cursor = c0;
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    for _ in 0..10 {
        let r = h.feed(Some(&cursor)).await;
        assert!(!r.reset);
        pages.push(r.revoked.len());
        seen.extend(r.revoked.iter().map(|t| t.jti.clone()));
        if r.cursor == cursor {
            break;
        }
        cursor = r.cursor;
    }
    assert_eq!(cursor, last);
    assert_eq!(pages, [3, 3, 2, 0]);
    let want: Vec<String> = (0..8).map(|i| format!("e{i}")).collect();
    assert_eq!(seen, want);
    // Snapshots are never cut.
    assert_eq!(h.feed(None).await.revoked.len(), 8);
}

pub async fn restart_keeps_entries_and_cursors(b: Backend) {
    let mut h = Harness::start(b, Opts::default()).await;
    let exp = now() + 3600;
    let c1 = h.revoke(&tok("before-restart", exp)).await;
    h.restart().await;
    let r = h.feed(Some(&c1)).await;
    assert!(!r.reset, "a cursor from before the restart stays valid");
    assert!(r.revoked.is_empty());
    assert_eq!(r.cursor, c1);
    let c2 = h.revoke(&tok("after-restart", exp)).await;
    assert_ne!(c2, c1);
    let r = h.feed(Some(&c1)).await;
    assert_eq!(jtis(&r), ["after-restart"]);
    assert_eq!(
        jtis(&h.feed(None).await),
        ["after-restart", "before-restart"]
    );
}

pub async fn concurrent_writers_all_land(b: Backend) {
    let h = std::sync::Arc::new(Harness::start(b, Opts::default()).await);
    let exp = now() + 3600;
    let mut tasks = Vec::new();
    for w in 0..8 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let mut cursors = Vec::new();
            for i in 0..20 {
                cursors.push(h.revoke(&tok(&format!("w{w}-{i}"), exp)).await);
            }
            cursors
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 160, "every write gets its own cursor");
    assert_eq!(h.feed(None).await.revoked.len(), 160);
}

pub async fn health_metrics_and_routing(b: Backend) {
    let h = Harness::start(b, Opts::default()).await;
    let exp = now() + 3600;
    h.revoke(&format!("[{},{}]", tok("m1", exp), tok("m2", exp)))
        .await;
    assert_eq!(h.post("nope").await.status, 400);
    h.feed(None).await;
    let health = h.path(Method::GET, "/healthz").await;
    assert_eq!(health.status, 200);
    let m = h.path(Method::GET, "/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    let text = String::from_utf8(m.body.to_vec()).unwrap();
    for line in [
        "revocation_feed_revocations_held{store=",
        "} 2\n",
        "revocation_feed_requests_total{endpoint=\"admin\",outcome=\"ok\"} 1\n",
        "revocation_feed_requests_total{endpoint=\"admin\",outcome=\"bad_request\"} 1\n",
        "revocation_feed_requests_total{endpoint=\"feed\",outcome=\"reset\"} 1\n",
        "revocation_feed_requests_total{endpoint=\"healthz\",outcome=\"ok\"} 1\n",
        "revocation_feed_entries_written_total 2\n",
        "# TYPE revocation_feed_requests_total counter\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert_eq!(h.path(Method::GET, "/nope").await.status, 404);
    assert_eq!(h.path(Method::DELETE, "/v1/revocations").await.status, 405);
}

pub async fn feed_body_is_what_the_filter_parses(b: Backend) {
    let h = Harness::start(b, Opts::default()).await;
    let exp = now() + 3600;
    // Ids with characters that need JSON escaping survive the round trip.
    let odd = "quote\\\" slash\\\\ tab\\t é ü";
    h.revoke(&format!(r#"{{"jti":"{odd}","exp":{exp}}}"#)).await;
    h.revoke(&format!(
        r#"{{"sub":"space in sub","before":{},"exp":{exp}}}"#,
        now()
    ))
    .await;
    let resp = h.get_with(None, None).await;
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let r = FeedResponse::parse(&resp.body).unwrap();
    assert_eq!(r.revoked[0].jti, "quote\" slash\\ tab\t é ü");
    assert_eq!(r.revoked_subjects[0].sub, "space in sub");
    assert_eq!(r.revoked_subjects[0].exp, exp);
}

pub async fn snapshots_follow_writes_and_expiry(b: Backend) {
    let h = Harness::start(
        b,
        with_limits(FeedLimits {
            grace_seconds: 0,
            ..FeedLimits::default()
        }),
    )
    .await;
    let t = now();
    h.revoke(&format!(
        "[{},{}]",
        tok("short", t + 100),
        tok("long", t + 1000)
    ))
    .await;
    let at = |when: u64| {
        let store = h.store().clone();
        async move {
            let p = store.poll(None, when, false).await.unwrap();
            assert!(p.reset);
            jtis(&FeedResponse::parse(&p.body).unwrap())
        }
    };
    assert_eq!(at(t).await, ["long", "short"]);
    assert_eq!(at(t + 100).await, ["long", "short"]);
    // Served from the same snapshot a moment ago, yet "short" is gone now.
    assert_eq!(at(t + 101).await, ["long"]);
    h.revoke(&tok("newer", t + 1000)).await;
    assert_eq!(at(t + 101).await, ["long", "newer"]);
    assert!(at(t + 1001).await.is_empty());
}

fn with_limits(limits: FeedLimits) -> Opts {
    Opts {
        limits,
        ..Opts::default()
    }
}

fn capped(n: usize) -> Opts {
    with_limits(FeedLimits {
        max_entries_per_response: n,
        ..FeedLimits::default()
    })
}

/// Every jti of a list of pages, sorted and without repeats (a page may
/// repeat an entry; the client takes the union).
fn union(pages: &[FeedResponse]) -> Vec<String> {
    let mut all: Vec<String> = pages
        .iter()
        .flat_map(|p| p.revoked.iter().map(|t| t.jti.clone()))
        .collect();
    all.sort();
    all.dedup();
    all
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n).map(|i| format!("{prefix}{i:02}")).collect();
    v.sort();
    v
}

pub async fn snapshots_are_paged_only_for_paged_clients(b: Backend) {
    let h = Harness::start(b, capped(3)).await;
    let exp = now() + 3600;
    // Some entries share an exp, so pages also split groups of equal scores.
    let list: Vec<String> = (0..8)
        .map(|i| tok(&format!("p{i:02}"), exp + (i % 3) as u64))
        .collect();
    let last = h.revoke(&format!("[{}]", list.join(","))).await;
    let pages = h.feed_pages(None).await;
    let sizes: Vec<usize> = pages.iter().map(|p| p.revoked.len()).collect();
    assert!(pages.len() >= 3, "{sizes:?}");
    assert!(sizes.iter().all(|n| *n <= 3), "{sizes:?}");
    assert!(pages[0].reset && pages[1..].iter().all(|p| !p.reset));
    assert!(pages[..pages.len() - 1].iter().all(|p| p.more));
    assert_eq!(union(&pages), names("p", 8));
    assert_eq!(
        pages.last().unwrap().cursor,
        last,
        "the last page ends at the head"
    );
    let d = h.feed_paged(Some(&last)).await;
    assert!(!d.reset && !d.more && d.revoked.is_empty());
    // A client that did not ask for pages gets the snapshot whole.
    let whole = h.feed(None).await;
    assert!(whole.reset && !whole.more);
    assert_eq!(jtis(&whole), names("p", 8));
    let raw = h.get_with(None, None).await;
    assert!(!String::from_utf8_lossy(&raw.body).contains("\"more\""));
}

pub async fn big_deltas_are_paged_with_more(b: Backend) {
    let h = Harness::start(b, capped(3)).await;
    let exp = now() + 3600;
    let c0 = h.feed_paged(None).await.cursor;
    let list: Vec<String> = (0..8).map(|i| tok(&format!("d{i:02}"), exp)).collect();
    let last = h.revoke(&format!("[{}]", list.join(","))).await;
    let pages = h.feed_pages(Some(&c0)).await;
    let sizes: Vec<usize> = pages.iter().map(|p| p.revoked.len()).collect();
    assert_eq!(sizes, [3, 3, 2]);
    assert!(pages.iter().all(|p| !p.reset));
    assert_eq!(
        pages.iter().map(|p| p.more).collect::<Vec<_>>(),
        [true, true, false]
    );
    assert_eq!(union(&pages), names("d", 8));
    assert_eq!(pages[2].cursor, last);
}

pub async fn snapshot_pages_continue_while_writes_happen(b: Backend) {
    let h = Harness::start(b, capped(3)).await;
    let exp = now() + 3600;
    let first: Vec<String> = (0..7)
        .map(|i| tok(&format!("a{i:02}"), exp + (i % 2) as u64))
        .collect();
    let pinned = h.revoke(&format!("[{}]", first.join(","))).await;
    let mut pages = vec![h.feed_paged(None).await];
    assert!(pages[0].reset && pages[0].more);
    let mut n = 0;
    while pages.last().unwrap().more {
        // Writes between pages, with exps that sort before, among and after
        // the entries of the snapshot.
        let e = [exp - 10, exp, exp + 1, exp + 100][n % 4];
        h.revoke(&tok(&format!("b{n:02}"), e)).await;
        h.store().maintain(now()).await.unwrap();
        n += 1;
        let cursor = pages.last().unwrap().cursor.clone();
        let page = h.feed_paged(Some(&cursor)).await;
        assert!(!page.reset, "the snapshot continues");
        pages.push(page);
    }
    assert!(n >= 2);
    assert_eq!(union(&pages), names("a", 7), "exactly the pinned snapshot");
    let end = pages.last().unwrap().cursor.clone();
    assert_eq!(end, pinned);
    // The entries written meanwhile come as the delta after the snapshot.
    let delta = h.feed_pages(Some(&end)).await;
    assert!(!delta[0].reset);
    assert_eq!(union(&delta), names("b", n));
}

pub async fn stale_snapshot_continuation_gets_a_fresh_reset(b: Backend) {
    let h = Harness::start(b, capped(2)).await;
    let exp = now() + 3600;
    h.revoke(&format!(
        "[{},{},{}]",
        tok("x", exp),
        tok("y", exp),
        tok("z", exp)
    ))
    .await;
    let page = h.feed_paged(None).await;
    assert!(page.more);
    let (base, pos) = page.cursor.split_once('~').unwrap();
    let other = Harness::start(b, Opts::default()).await;
    let foreign_base = other.revoke(&tok("elsewhere", exp)).await;
    for stale in [
        format!("{foreign_base}~{pos}"),
        format!("{base}~not-a-position"),
        format!("{base}9~{pos}"),
    ] {
        let r = h.feed_paged(Some(&stale)).await;
        assert!(r.reset, "{stale}: a fresh snapshot");
        let mut pages = vec![r];
        while pages.last().unwrap().more {
            let c = pages.last().unwrap().cursor.clone();
            pages.push(h.feed_paged(Some(&c)).await);
        }
        assert_eq!(union(&pages), ["x", "y", "z"]);
    }
    // A client that does not page never continues a paged snapshot.
    let r = h.feed(Some(&page.cursor)).await;
    assert!(r.reset && !r.more);
    assert_eq!(jtis(&r), ["x", "y", "z"]);
}

/// Entries of a response as `(kind:id, iss)`, sorted.
fn scoped(r: &FeedResponse) -> Vec<(String, Option<String>)> {
    let mut v: Vec<(String, Option<String>)> = r
        .revoked
        .iter()
        .map(|t| (format!("jti:{}", t.jti), t.iss.clone()))
        .chain(
            r.revoked_subjects
                .iter()
                .map(|s| (format!("sub:{}", s.sub), s.iss.clone())),
        )
        .collect();
    v.sort();
    v
}

/// The entries of several pages (a page may repeat one: the union counts).
fn scoped_union(pages: &[FeedResponse]) -> Vec<(String, Option<String>)> {
    let mut all: Vec<_> = pages.iter().flat_map(scoped).collect();
    all.sort();
    all.dedup();
    all
}

/// One jti and one sub revoked for two issuers and for every issuer: six
/// entries that the admin API, both stores, every kind of answer and a
/// restart keep apart, with the issuer in every answer and bound answers
/// still verifying.
pub async fn entries_scoped_by_issuer_stay_apart(b: Backend) {
    let secret = b"feed-signing-secret".to_vec();
    let mut h = Harness::start(
        b,
        Opts {
            hmac: Some(secret.clone()),
            ..capped(2)
        },
    )
    .await;
    let exp = now() + 3600;
    let t = now();
    let c0 = h.feed_paged(None).await.cursor;
    let odd = "https://idp.example.com/tenant one/é";
    let body = format!(
        r#"[{{"jti":"1","iss":"A","exp":{exp}}},{{"jti":"1","iss":"{odd}","exp":{exp}}},
            {{"jti":"1","exp":{exp}}},
            {{"sub":"alice","iss":"A","before":{t},"exp":{exp}}},
            {{"sub":"alice","iss":"B","before":{t},"exp":{exp}}},
            {{"sub":"alice","before":{t},"exp":{exp}}}]"#
    );
    let resp = h.post(&body).await;
    assert_eq!(resp.status, 201, "{}", String::from_utf8_lossy(&resp.body));
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(v["accepted"], 6);
    let head = v["cursor"].as_str().unwrap().to_string();
    let want = vec![
        ("jti:1".to_string(), None),
        ("jti:1".to_string(), Some("A".to_string())),
        ("jti:1".to_string(), Some(odd.to_string())),
        ("sub:alice".to_string(), None),
        ("sub:alice".to_string(), Some("A".to_string())),
        ("sub:alice".to_string(), Some("B".to_string())),
    ];
    for round in ["written", "after a restart"] {
        // Whole snapshot (unpaged), paged snapshot and paged delta.
        let whole = h.feed(None).await;
        assert_eq!(scoped(&whole), want, "snapshot {round}");
        assert_eq!(whole.cursor, head);
        let pages = h.feed_pages(None).await;
        assert!(pages.len() >= 3, "{round}: {} pages", pages.len());
        assert_eq!(scoped_union(&pages), want, "snapshot pages {round}");
        let delta = h.feed_pages(Some(&c0)).await;
        assert!(!delta[0].reset);
        assert_eq!(scoped_union(&delta), want, "delta pages {round}");
        // A bound answer carrying issuers verifies; an unscoped entry keeps
        // its bytes (no "iss" at all).
        let n = nonce();
        let resp = h.poll(None, &n, None).await;
        assert!(binding(&resp, &secret, None, &n).is_ok(), "{round}");
        let n = nonce();
        let resp = h.poll(Some(&c0), &n, None).await;
        assert!(binding(&resp, &secret, Some(&c0), &n).is_ok(), "{round}");
        let text = String::from_utf8_lossy(&h.get_with(None, None).await.body).into_owned();
        for piece in [
            format!(r#"{{"jti":"1","exp":{exp}}}"#),
            format!(r#"{{"jti":"1","iss":"A","exp":{exp}}}"#),
            format!(r#"{{"sub":"alice","before":{t},"exp":{exp}}}"#),
            format!(r#"{{"sub":"alice","iss":"B","before":{t},"exp":{exp}}}"#),
        ] {
            assert!(text.contains(&piece), "{round}: {piece} in {text}");
        }
        assert!(!text.contains("null"), "{text}");
        h.restart().await;
    }
}

macro_rules! suite {
    ($backend:ident, $b:expr) => {
        mod $backend {
            use super::*;
            suite!(@tests $b;
                first_poll_is_an_empty_reset,
                deltas_carry_only_what_came_after_the_cursor,
                admin_accepts_one_entry_a_list_and_a_wrapped_list,
                bad_input_is_400_naming_the_field,
                a_list_with_one_bad_entry_writes_nothing,
                admin_token_is_required,
                admin_api_is_disabled_without_a_token,
                oversized_body_is_413,
                responses_are_signed_when_a_secret_is_set,
                answers_are_bound_to_their_poll,
                bad_poll_parameters_are_400_naming_them,
                a_long_poll_is_woken_by_an_append,
                a_long_poll_waits_out_its_time_then_answers_empty,
                polls_with_news_or_without_wait_are_answered_at_once,
                waits_are_capped_at_the_server_maximum,
                held_polls_are_bounded,
                stopping_answers_held_polls,
                read_token_is_required_when_set,
                unknown_or_foreign_cursors_get_a_reset,
                expired_entries_are_not_sent,
                deltas_are_capped_and_continue_from_the_returned_cursor,
                restart_keeps_entries_and_cursors,
                concurrent_writers_all_land,
                health_metrics_and_routing,
                feed_body_is_what_the_filter_parses,
                snapshots_follow_writes_and_expiry,
                snapshots_are_paged_only_for_paged_clients,
                big_deltas_are_paged_with_more,
                snapshot_pages_continue_while_writes_happen,
                stale_snapshot_continuation_gets_a_fresh_reset,
                entries_scoped_by_issuer_stay_apart,
            );
        }
    };
    (@tests $b:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name($b).await;
            }
        )*
    };
}

suite!(embedded, Backend::Embedded);
suite!(redis, Backend::Redis);

/// Redis only: a cursor older than the retained stream history gets a reset,
/// one at the head of the stream does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cursor_older_than_history_gets_a_reset() {
    let h = Harness::start(
        Backend::Redis,
        Opts {
            redis_history_seconds: 0,
            ..Opts::default()
        },
    )
    .await;
    let exp = now() + 3600;
    let c1 = h.revoke(&tok("a", exp)).await;
    let c2 = h.revoke(&tok("b", exp)).await;
    // With no history kept, trimming 2 s from now drops every stream entry.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    h.store().maintain(now() + 2).await.unwrap();
    let r = h.feed(Some(&c1)).await;
    assert!(r.reset, "entries after c1 were trimmed: reset");
    assert_eq!(jtis(&r), ["a", "b"], "the snapshot still has them");
    let r = h.feed(Some(&c2)).await;
    assert!(!r.reset, "nothing after the newest entry was lost");
    assert_eq!(r.cursor, c2);
}

/// Embedded only: compaction keeps every cursor of the store valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_compaction_keeps_cursors_valid() {
    let h = Harness::start(Backend::Embedded, Opts::default()).await;
    let t = now();
    let c0 = h.feed(None).await.cursor;
    h.revoke(&format!(
        "[{},{}]",
        tok("dead", t - 7200),
        tok("alive", t + 3600)
    ))
    .await;
    let c1 = h.revoke(&tok("later", t + 3600)).await;
    let revocation_feed::Store::Embedded(e) = h.store() else {
        unreachable!()
    };
    let stats = e.maintain(now(), true).await.unwrap().unwrap();
    assert_eq!((stats.kept, stats.dropped), (2, 1));
    let r = h.feed(Some(&c0)).await;
    assert!(!r.reset);
    assert_eq!(jtis(&r), ["alive", "later"]);
    assert_eq!(r.cursor, c1);
}

/// Redis only: a snapshot continuation whose pinned position fell out of the
/// retained stream history restarts with a fresh reset (the delta after the
/// last page could not be served).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_snapshot_continuation_older_than_history_gets_a_reset() {
    let h = Harness::start(
        Backend::Redis,
        Opts {
            redis_history_seconds: 0,
            ..capped(2)
        },
    )
    .await;
    let exp = now() + 3600;
    h.revoke(&format!(
        "[{},{},{}]",
        tok("x", exp),
        tok("y", exp),
        tok("z", exp)
    ))
    .await;
    let page = h.feed_paged(None).await;
    assert!(page.reset && page.more);
    h.revoke(&tok("w", exp)).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    h.store().maintain(now() + 2).await.unwrap();
    let r = h.feed_paged(Some(&page.cursor)).await;
    assert!(r.reset, "pinned position trimmed: a fresh snapshot");
    let mut pages = vec![r];
    while pages.last().unwrap().more {
        let c = pages.last().unwrap().cursor.clone();
        pages.push(h.feed_paged(Some(&c)).await);
    }
    assert_eq!(union(&pages), ["w", "x", "y", "z"]);
}

/// Redis only: when the score group a continuation stops in has been
/// trimmed, the next page starts after that score, skipping nothing alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_snapshot_pages_survive_trimming_of_their_score() {
    let h = Harness::start(
        Backend::Redis,
        with_limits(FeedLimits {
            max_entries_per_response: 2,
            grace_seconds: 0,
        }),
    )
    .await;
    let t = now();
    let soon = t + 3;
    let later = t + 3600;
    h.revoke(&format!(
        "[{},{},{},{},{}]",
        tok("s1", soon),
        tok("s2", soon),
        tok("s3", soon),
        tok("l1", later),
        tok("l2", later)
    ))
    .await;
    let page = h.feed_paged(None).await;
    assert!(page.more);
    assert_eq!(jtis(&page), ["s1", "s2"]);
    // The group at `soon` is trimmed away (s3 with it, now expired).
    h.store().maintain(soon + 1).await.unwrap();
    let store = h.store().clone();
    let mut pages = Vec::new();
    let mut cursor = page.cursor.clone();
    loop {
        let p = store.poll(Some(&cursor), soon + 1, true).await.unwrap();
        let r = FeedResponse::parse(&p.body).unwrap();
        assert!(!r.reset);
        cursor = r.cursor.clone();
        let more = r.more;
        pages.push(r);
        if !more {
            break;
        }
    }
    assert_eq!(union(&pages), ["l1", "l2"]);
}

/// Redis only: stream entries and live-set members written before issuer
/// scopes existed (kinds `t` and `s`, made here by hand rather than by the
/// store) read as unscoped entries in deltas and snapshots, beside scoped
/// entries written afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_entries_written_before_issuers_read_as_unscoped() {
    let h = Harness::start(Backend::Redis, Opts::default()).await;
    let exp = now() + 3600;
    let before = now() - 10;
    let mut con = ::redis::Client::open(h.redis.as_ref().unwrap().url())
        .unwrap()
        .get_connection()
        .unwrap();
    let _: Option<String> = ::redis::cmd("SET")
        .arg("{test}:epoch")
        .arg("0123456789abcdef")
        .arg("NX")
        .query(&mut con)
        .unwrap();
    let mut last = String::new();
    for (kind, b, id) in [("t", 0, "old jti with spaces"), ("s", before, "old-sub")] {
        let field = format!("{kind} {exp} {b} {id}");
        last = ::redis::cmd("XADD")
            .arg("{test}:stream")
            .arg("*")
            .arg("r")
            .arg(&field)
            .query(&mut con)
            .unwrap();
        let member = format!("{kind} {exp} {b} {last} {id}");
        let _: i64 = ::redis::cmd("ZADD")
            .arg("{test}:live")
            .arg(exp)
            .arg(&member)
            .query(&mut con)
            .unwrap();
    }
    let _: () = ::redis::cmd("SET")
        .arg("{test}:last")
        .arg(&last)
        .query(&mut con)
        .unwrap();
    let old = vec![
        ("jti:old jti with spaces".to_string(), None),
        ("sub:old-sub".to_string(), None),
    ];
    let snap = h.feed(None).await;
    assert_eq!(scoped(&snap), old);
    assert_eq!(snap.revoked_subjects[0].before, before);
    assert_eq!(snap.cursor, format!("0123456789abcdef-{last}"));
    let start = "0123456789abcdef-0-0";
    assert_eq!(scoped(&h.feed(Some(start)).await), old, "delta");

    h.revoke(&format!(
        r#"{{"jti":"old jti with spaces","iss":"A B","exp":{exp}}}"#
    ))
    .await;
    let mut both = old.clone();
    both.insert(
        1,
        (
            "jti:old jti with spaces".to_string(),
            Some("A B".to_string()),
        ),
    );
    assert_eq!(scoped(&h.feed(None).await), both);
    assert_eq!(scoped_union(&h.feed_pages(None).await), both);
    assert_eq!(scoped(&h.feed(Some(start)).await), both, "delta");
    assert_eq!(
        scoped(&h.feed(Some(&snap.cursor)).await),
        [(
            "jti:old jti with spaces".to_string(),
            Some("A B".to_string())
        )]
    );
}
