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
        max_pending_entries: 10,
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

fn page(cursor: &str, reset: bool, more: bool, jtis: &[&str]) -> FeedResponse {
    FeedResponse {
        cursor: cursor.into(),
        reset,
        revoked: jtis
            .iter()
            .map(|j| revocation_protocol::RevokedToken {
                jti: (*j).into(),
                exp: 100,
            })
            .collect(),
        revoked_subjects: vec![],
        more,
    }
}

fn ids(c: &Completed) -> Vec<Entry> {
    c.entries.clone()
}

fn tokens(jtis: &[&str]) -> Vec<Entry> {
    jtis.iter()
        .map(|j| Entry::Token {
            id: digest(j),
            exp: 100,
        })
        .collect()
}

#[test]
fn a_single_page_completes_at_once() {
    let mut p = Pages::default();
    let step = p.accept(&page("e1-5", false, false, &["a"]), 10).unwrap();
    assert_eq!(
        step,
        PageStep::Complete(Completed {
            reset: false,
            entries: tokens(&["a"]),
            cursor: "e1-5".into()
        })
    );
    assert!(!p.in_progress());
    assert_eq!(p.cursor("e1-4"), "e1-4");
}

#[test]
fn snapshot_pages_complete_only_at_the_last_page() {
    let mut p = Pages::default();
    assert_eq!(
        p.accept(&page("e1-9~2", true, true, &["a", "b"]), 10),
        Ok(PageStep::Continue)
    );
    assert!(p.in_progress());
    assert_eq!(p.cursor("e1-3"), "e1-9~2", "continue from the page");
    assert_eq!(
        p.accept(&page("e1-9~4", false, true, &["c", "d"]), 10),
        Ok(PageStep::Continue)
    );
    assert_eq!(p.pages(), 2);
    let PageStep::Complete(done) = p.accept(&page("e1-9", false, false, &["e"]), 10).unwrap()
    else {
        panic!("the last page completes the snapshot");
    };
    assert!(done.reset, "a snapshot stays a snapshot");
    assert_eq!(ids(&done), tokens(&["a", "b", "c", "d", "e"]));
    assert_eq!(done.cursor, "e1-9");
    assert!(!p.in_progress());
    assert_eq!(p.cursor("e1-9"), "e1-9");
}

#[test]
fn delta_pages_add_up_to_one_delta() {
    let mut p = Pages::default();
    assert_eq!(
        p.accept(&page("e1-6", false, true, &["a"]), 10),
        Ok(PageStep::Continue)
    );
    let PageStep::Complete(done) = p.accept(&page("e1-7", false, false, &["b"]), 10).unwrap()
    else {
        panic!("complete");
    };
    assert!(!done.reset);
    assert_eq!(ids(&done), tokens(&["a", "b"]));
}

#[test]
fn a_reset_page_restarts_the_answer() {
    let mut p = Pages::default();
    p.accept(&page("e1-9~2", true, true, &["a", "b"]), 10)
        .unwrap();
    // The feed could not continue and starts over with a new snapshot.
    p.accept(&page("e2-3~1", true, true, &["x"]), 10).unwrap();
    let PageStep::Complete(done) = p.accept(&page("e2-3", false, false, &["y"]), 10).unwrap()
    else {
        panic!("complete");
    };
    assert!(done.reset);
    assert_eq!(ids(&done), tokens(&["x", "y"]));
}

#[test]
fn abandon_drops_the_pages_and_polls_from_the_published_cursor() {
    let mut p = Pages::default();
    p.accept(&page("e1-9~2", true, true, &["a", "b"]), 10)
        .unwrap();
    p.abandon();
    assert!(!p.in_progress());
    assert_eq!(p.cursor("e1-3"), "e1-3");
    // The next attempt is a fresh answer, nothing of the old one in it.
    let PageStep::Complete(done) = p.accept(&page("e1-9", true, false, &["c"]), 10).unwrap() else {
        panic!("complete");
    };
    assert_eq!(ids(&done), tokens(&["c"]));
}

#[test]
fn pending_entries_are_capped() {
    let mut p = Pages::default();
    let six = ["a", "b", "c", "d", "e", "f"];
    p.accept(&page("e1-9~6", true, true, &six), 10).unwrap();
    let err = p.accept(&page("e1-9~12", false, true, &six), 10);
    assert_eq!(
        err,
        Err(FeedError::TooManyEntries {
            held: 12,
            limit: 10
        })
    );
    assert!(!p.in_progress(), "a refused answer is dropped whole");
    assert!(err
        .unwrap_err()
        .to_string()
        .contains("revocation.max_pending_entries"));
}

#[test]
fn continuation_cursors_are_ordered_by_their_base() {
    assert!(!cursor_regressed("e1-5", "e1-9~3"));
    assert!(!cursor_regressed("e1-9~3", "e1-9~7"));
    assert!(!cursor_regressed("e1-9~7", "e1-9"));
    assert!(cursor_regressed("e1-9", "e1-5~3"), "an old snapshot page");
    assert!(cursor_regressed("e1-9~3", "e1-8"));
}
