//! Revocation feed responses: `revocation_protocol::FeedResponse::parse`,
//! `revocation::feed::check_response` (status, size, HMAC signature,
//! schema, cursor order) and `cursor_regressed`.
//!
//! The input is the response body. Oracles: a parsed body round-trips
//! through `to_json` and `encode_feed` (the bytes the server signs); with a
//! secret configured, a body is accepted only with its own signature (a
//! signature of another body, of another secret, or none is refused before
//! parsing); a cursor never regressed from itself; `cursor_regressed` is
//! never true both ways.
#![no_main]

use jwt_auth_core::revocation::feed::{
    check_response, cursor_regressed, entries, FeedConfig, FeedError, OnStale,
};
use libfuzzer_sys::fuzz_target;
use revocation_protocol::{encode_feed, sign, FeedResponse, Revocation};

const SECRET: &[u8] = b"feed-secret-for-fuzzing-only-32b";

fn config(hmac: bool) -> FeedConfig {
    FeedConfig {
        cluster: "feed".into(),
        authority: "feed".into(),
        path: "/v1/revocations".into(),
        poll_interval_ms: 1000,
        timeout_ms: 500,
        bearer_token: None,
        hmac_secret: hmac.then(|| SECRET.to_vec()),
        max_staleness_seconds: 30,
        on_stale: OnStale::Serve,
        namespace: "jwt_auth".into(),
        max_body_bytes: 1 << 20,
        sync_interval_ms: 100,
        max_backoff_ms: 30_000,
        clock_skew_seconds: 60,
        max_pending_entries: 5_000_000,
    }
}

fn check_cursor_pair(a: &str, b: &str) {
    assert!(!cursor_regressed(a, a), "{a:?} regressed from itself");
    assert!(
        !(cursor_regressed(a, b) && cursor_regressed(b, a)),
        "{a:?} and {b:?} each regressed from the other"
    );
}

fuzz_target!(|body: &[u8]| {
    let parsed = FeedResponse::parse(body);
    if let Ok(resp) = &parsed {
        assert!(!resp.cursor.is_empty());
        let json = resp.to_json();
        assert_eq!(
            FeedResponse::parse(&json).as_ref(),
            Ok(resp),
            "to_json round trip"
        );
        let all: Vec<Revocation> = resp
            .revoked
            .iter()
            .cloned()
            .map(Revocation::Token)
            .chain(
                resp.revoked_subjects
                    .iter()
                    .cloned()
                    .map(Revocation::Subject),
            )
            .collect();
        assert_eq!(encode_feed(&resp.cursor, resp.reset, all.iter()), json);
        assert_eq!(
            entries(resp).len(),
            resp.revoked.len() + resp.revoked_subjects.len()
        );
    }

    let signed = config(true);
    let good = sign(SECRET, body);
    for previous in ["", "0", "5", "1-3", "9999999999999-0"] {
        let checked = check_response(&signed, Some(200), Some(&good), body, previous);
        match (&parsed, &checked) {
            (Ok(resp), Ok(accepted)) => {
                assert_eq!(resp, accepted);
                assert!(!cursor_regressed(previous, &accepted.cursor));
            }
            (Ok(resp), Err(FeedError::CursorRegression)) => {
                assert!(cursor_regressed(previous, &resp.cursor))
            }
            (Err(_), Err(FeedError::Invalid(msg))) => assert!(!msg.is_empty()),
            (p, c) => panic!("parse {p:?} but check_response {c:?}"),
        }
        if let Ok(resp) = &parsed {
            check_cursor_pair(previous, &resp.cursor);
        }
    }
    // Unsigned, wrongly signed, signed for another body: refused whatever the body.
    assert_eq!(
        check_response(&signed, Some(200), None, body, "").err(),
        Some(FeedError::MissingSignature)
    );
    let other_secret = sign(b"another-secret", body);
    assert_eq!(
        check_response(&signed, Some(200), Some(&other_secret), body, "").err(),
        Some(FeedError::BadSignature)
    );
    let mut longer = body.to_vec();
    longer.push(b' ');
    assert_eq!(
        check_response(&signed, Some(200), Some(&good), &longer, "").err(),
        Some(FeedError::BadSignature),
        "signature of one body accepted for another"
    );
    assert_eq!(
        check_response(&signed, Some(503), Some(&good), body, "").err(),
        Some(FeedError::Status(503))
    );
    assert_eq!(
        check_response(&signed, None, Some(&good), body, "").err(),
        Some(FeedError::Timeout)
    );
    // Without a secret the body alone decides.
    let unsigned = check_response(&config(false), Some(200), None, body, "");
    assert_eq!(unsigned.is_ok(), parsed.is_ok());

    // cursor_regressed on pairs taken from the body text itself.
    if let Ok(text) = std::str::from_utf8(body) {
        if let Some((a, b)) = text.split_once('\n') {
            check_cursor_pair(a, b);
        }
    }
});
