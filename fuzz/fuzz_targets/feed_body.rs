//! Revocation feed responses: `revocation_protocol::FeedResponse::parse`,
//! `revocation::feed::check_response` (status, size, the binding to the
//! poll, schema, epoch and cursor order) and `cursor_regressed`.
//!
//! The input is the response body. Oracles: a parsed body round-trips
//! through `to_json` and `encode_feed` (the bytes the server signs); with a
//! secret configured, a body is accepted only with its own binding to this
//! very poll (a binding of another body, another poll's nonce or cursor,
//! another secret, or none is refused before parsing); the body-only
//! signature is accepted only where unbound answers are; a cursor never
//! regressed from itself; `cursor_regressed` is never true both ways.
#![no_main]

use jwt_auth_core::revocation::feed::{
    check_response, cursor_regressed, entries, Checked, FeedConfig, FeedError, FeedState, OnStale,
    SentPoll, Signatures,
};
use libfuzzer_sys::fuzz_target;
use revocation_protocol::{
    body_digest, bound_signature, encode_feed, sign, FeedResponse, Revocation,
};

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
        wait_ms: 0,
        accept_unbound_answers: false,
    }
}

const NOW: u64 = 1_800_000_000;
const NONCE: &str = "0123456789abcdef0123456789abcdef";

fn poll(since: &str) -> SentPoll {
    SentPoll {
        since: since.into(),
        nonce: NONCE.into(),
        basis: since.into(),
        sent_ms: NOW * 1000,
    }
}

/// The binding of `body` to a poll from `since` with `nonce`.
fn bind(secret: &[u8], since: &str, nonce: &str, body: &[u8]) -> String {
    bound_signature(secret, since, nonce, "e1", NOW, &body_digest(body)).unwrap_or_default()
}

fn check(
    config: &FeedConfig,
    status: Option<u16>,
    binding: Option<&str>,
    body: &[u8],
    since: &str,
) -> Result<Checked, FeedError> {
    let signatures = Signatures {
        body: None,
        binding,
    };
    check_response(
        config,
        status,
        signatures,
        body,
        &poll(since),
        FeedState::default(),
        NOW,
    )
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
    for previous in ["", "0", "5", "1-3", "9999999999999-0"] {
        let good = bind(SECRET, previous, NONCE, body);
        let checked = check(&signed, Some(200), Some(&good), body, previous);
        match (&parsed, &checked) {
            (Ok(resp), Ok(accepted)) => {
                assert_eq!(resp, &accepted.response);
                assert!(!cursor_regressed(previous, &accepted.response.cursor));
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
        // The same answer to another poll from this cursor: a replay.
        let replayed = bind(SECRET, previous, "ffffffffffffffffffffffffffffffff", body);
        assert_eq!(
            check(&signed, Some(200), Some(&replayed), body, previous)
                .err()
                .map(|e| e.label()),
            Some("replayed")
        );
    }
    // Unbound, bound with another secret, bound to another body or another
    // cursor: refused whatever the body.
    assert_eq!(
        check(&signed, Some(200), None, body, "")
            .err()
            .map(|e| e.label()),
        Some("unbound")
    );
    let other_secret = bind(b"another-secret", "", NONCE, body);
    assert_eq!(
        check(&signed, Some(200), Some(&other_secret), body, "")
            .err()
            .map(|e| e.label()),
        Some("replayed")
    );
    let mut longer = body.to_vec();
    longer.push(b' ');
    let good = bind(SECRET, "", NONCE, body);
    assert_eq!(
        check(&signed, Some(200), Some(&good), &longer, "")
            .err()
            .map(|e| e.label()),
        Some("replayed"),
        "binding of one body accepted for another"
    );
    let other_cursor = bind(SECRET, "7", NONCE, body);
    assert_eq!(
        check(&signed, Some(200), Some(&other_cursor), body, "")
            .err()
            .map(|e| e.label()),
        Some("replayed")
    );
    assert_eq!(
        check(&signed, Some(503), Some(&good), body, "").err(),
        Some(FeedError::Status(503))
    );
    assert_eq!(
        check(&signed, None, Some(&good), body, "").err(),
        Some(FeedError::Timeout)
    );
    // Where unbound answers are accepted, the body signature decides.
    let lenient = FeedConfig {
        accept_unbound_answers: true,
        ..config(true)
    };
    let body_only = |signature: Option<&str>| {
        let signatures = Signatures {
            body: signature,
            binding: None,
        };
        check_response(
            &lenient,
            Some(200),
            signatures,
            body,
            &poll(""),
            FeedState::default(),
            NOW,
        )
    };
    assert_eq!(body_only(Some(&sign(SECRET, body))).is_ok(), parsed.is_ok());
    assert_eq!(
        body_only(Some(&sign(b"another-secret", body))).err(),
        Some(FeedError::BadSignature)
    );
    assert_eq!(body_only(None).err(), Some(FeedError::MissingSignature));
    // Without a secret the body alone decides.
    let unsigned = check(&config(false), Some(200), None, body, "");
    assert_eq!(unsigned.is_ok(), parsed.is_ok());

    // cursor_regressed on pairs taken from the body text itself.
    if let Ok(text) = std::str::from_utf8(body) {
        if let Some((a, b)) = text.split_once('\n') {
            check_cursor_pair(a, b);
        }
    }
});
