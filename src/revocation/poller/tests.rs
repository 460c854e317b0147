use super::*;

fn config() -> FeedConfig {
    FeedConfig {
        cluster: "revocation_feed".into(),
        authority: "revocation-feed".into(),
        path: "/v1/revocations".into(),
        poll_interval_ms: 1000,
        timeout_ms: 500,
        bearer_token: Some("read".into()),
        hmac_secret: Some(b"s3cret".to_vec()),
        max_staleness_seconds: 30,
        on_stale: OnStale::Serve,
        namespace: "jwt_auth".into(),
        max_body_bytes: 1024,
        sync_interval_ms: 100,
        max_backoff_ms: 8000,
        clock_skew_seconds: 60,
    }
}

const BODY: &[u8] = br#"{"cursor":"e1-5","reset":false,"revoked":[{"jti":"a","exp":100}],"revoked_subjects":[{"sub":"s","before":5,"exp":200}]}"#;

fn sig(body: &[u8]) -> String {
    revocation_protocol::sign(b"s3cret", body)
}

#[test]
fn good_signed_response() {
    let r = check_response(&config(), Some(200), Some(&sig(BODY)), BODY, "e1-4").unwrap();
    assert_eq!(r.cursor, "e1-5");
    let e = entries(&r);
    assert_eq!(e.len(), 2);
    assert_eq!(
        e[0],
        Entry::Token {
            id: digest("a"),
            exp: 100
        }
    );
    assert_eq!(
        e[1],
        Entry::Subject {
            id: digest("s"),
            before: 5,
            exp: 200
        }
    );
}

#[test]
fn every_fault_is_refused() {
    let c = config();
    let good = sig(BODY);
    assert_eq!(
        check_response(&c, None, Some(&good), BODY, ""),
        Err(FeedError::Timeout)
    );
    assert_eq!(
        check_response(&c, Some(503), Some(&good), BODY, ""),
        Err(FeedError::Status(503))
    );
    assert_eq!(
        check_response(&c, Some(200), None, BODY, ""),
        Err(FeedError::MissingSignature)
    );
    assert_eq!(
        check_response(&c, Some(200), Some(&sig(b"other")), BODY, ""),
        Err(FeedError::BadSignature)
    );
    assert_eq!(
        check_response(&c, Some(200), Some("sha256=zz"), BODY, ""),
        Err(FeedError::BadSignature)
    );
    let big = vec![b' '; 2000];
    assert_eq!(
        check_response(&c, Some(200), Some(&sig(&big)), &big, ""),
        Err(FeedError::TooLarge(2000))
    );
    for garbage in [
        &b"not json"[..],
        b"{}",
        br#"{"cursor":"x","revoked":[{"jti":"","exp":1}]}"#,
        br#"{"cursor":"x","revoked":[{"jti":"a","exp":-1}]}"#,
    ] {
        let r = check_response(&c, Some(200), Some(&sig(garbage)), garbage, "");
        assert!(
            matches!(r, Err(FeedError::Invalid(_))),
            "{:?}",
            String::from_utf8_lossy(garbage)
        );
    }
    assert_eq!(
        check_response(&c, Some(200), Some(&good), BODY, "e1-6"),
        Err(FeedError::CursorRegression)
    );
    let mut unsigned = config();
    unsigned.hmac_secret = None;
    assert!(check_response(&unsigned, Some(200), None, BODY, "").is_ok());
}

#[test]
fn cursor_order() {
    assert!(!cursor_regressed("", "1"));
    assert!(!cursor_regressed("5", "5"));
    assert!(!cursor_regressed("5", "6"));
    assert!(cursor_regressed("6", "5"));
    assert!(cursor_regressed("e1-10", "e1-9"));
    assert!(
        !cursor_regressed("e1-10", "e2-1"),
        "a new epoch is not a regression"
    );
    assert!(cursor_regressed("1700000000001-0", "1700000000000-5"));
    assert!(!cursor_regressed("1700000000000-5", "1700000000001-0"));
    assert!(!cursor_regressed("abc", "abd"));
    assert!(!cursor_regressed("a-1", "a-1-2"));
}

#[test]
fn staleness_counts_from_start_before_the_first_sync() {
    let c = config();
    assert!(!is_stale(&c, 30_000, 0, 0));
    assert!(is_stale(&c, 30_001, 0, 0));
    assert!(!is_stale(&c, 50_000, 40_000, 0));
    assert!(is_stale(&c, 70_001, 40_000, 0));
}

#[test]
fn request_carries_pseudo_headers_and_token() {
    let h = config().request_headers("/v1/revocations?since=e1-5");
    assert!(h.contains(&(":authority".into(), "revocation-feed".into())));
    assert!(h.contains(&(":path".into(), "/v1/revocations?since=e1-5".into())));
    assert!(h.contains(&("authorization".into(), "Bearer read".into())));
}

#[test]
fn deny_refuses_before_the_first_sync_and_when_stale() {
    let mut c = config();
    assert_eq!(refuse_stale(&c, 1000, 0, 0), None, "serve never refuses");
    assert_eq!(refuse_stale(&c, 40_000, 1000, 0), None);
    c.on_stale = OnStale::Deny;
    assert_eq!(
        refuse_stale(&c, 1, 0, 0),
        Some(1),
        "never synced: refuse at once"
    );
    assert_eq!(refuse_stale(&c, 30_000, 1000, 0), None);
    assert_eq!(refuse_stale(&c, 31_001, 1000, 0), Some(1));
    c.poll_interval_ms = 5000;
    assert_eq!(
        refuse_stale(&c, 31_001, 1000, 0),
        Some(5),
        "retry-after follows the poll interval"
    );
}
