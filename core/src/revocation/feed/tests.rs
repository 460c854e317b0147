use super::*;

fn config() -> FeedConfig {
    FeedConfig {
        cluster: "revocation_feed".into(),
        authority: "revocation-feed".into(),
        path: "/v1/revocations".into(),
        poll_interval_ms: 1000,
        timeout_ms: 500,
        bearer_token: Some("read".into()),
        hmac_secret: Some(SECRET.to_vec()),
        max_staleness_seconds: 30,
        on_stale: OnStale::Serve,
        namespace: "jwt_auth".into(),
        max_body_bytes: 1024,
        sync_interval_ms: 100,
        max_backoff_ms: 8000,
        clock_skew_seconds: 60,
        max_pending_entries: 10,
        wait_ms: 0,
        accept_unbound_answers: false,
    }
}

const SECRET: &[u8] = b"s3cret";
const NOW: u64 = 1_800_000_000;
const BODY: &[u8] = br#"{"cursor":"e1-5","reset":false,"revoked":[{"jti":"a","exp":100}],"revoked_subjects":[{"sub":"s","before":5,"exp":200}]}"#;

fn sig(body: &[u8]) -> String {
    revocation_protocol::sign(SECRET, body)
}

fn poll(since: &str) -> SentPoll {
    SentPoll {
        since: since.into(),
        nonce: "00112233445566778899aabbccddeeff".into(),
        basis: since.into(),
        sent_ms: NOW * 1000,
    }
}

/// The binding a feed of `epoch` sends for `body` answering `poll` at `time`.
fn bind(poll: &SentPoll, epoch: &str, time: u64, body: &[u8]) -> String {
    let digest = revocation_protocol::body_digest(body);
    revocation_protocol::bound_signature(SECRET, &poll.since, &poll.nonce, epoch, time, &digest)
        .unwrap()
}

/// Checks `body` answering a poll from `since`, bound by epoch `e1` now.
fn check(
    c: &FeedConfig,
    status: Option<u16>,
    body: &[u8],
    since: &str,
) -> Result<Checked, FeedError> {
    let poll = poll(since);
    let binding = bind(&poll, "e1", NOW, body);
    let signatures = Signatures {
        body: None,
        binding: Some(&binding),
    };
    check_response(
        c,
        status,
        signatures,
        body,
        &poll,
        FeedState::default(),
        NOW,
    )
}

fn error(r: Result<Checked, FeedError>) -> FeedError {
    r.expect_err("refused")
}

#[test]
fn good_bound_response() {
    let r = check(&config(), Some(200), BODY, "e1-4").unwrap();
    assert_eq!(r.response.cursor, "e1-5");
    assert_eq!(
        r.binding.as_ref().map(|b| (b.epoch.as_str(), b.time)),
        Some(("e1", NOW))
    );
    let e = entries(&r.response);
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
    assert_eq!(error(check(&c, None, BODY, "")), FeedError::Timeout);
    assert_eq!(
        error(check(&c, Some(503), BODY, "")),
        FeedError::Status(503)
    );
    let big = vec![b' '; 2000];
    assert_eq!(
        error(check(&c, Some(200), &big, "")),
        FeedError::TooLarge(2000)
    );
    for garbage in [
        &b"not json"[..],
        b"{}",
        br#"{"cursor":"x","revoked":[{"jti":"","exp":1}]}"#,
        br#"{"cursor":"x","revoked":[{"jti":"a","exp":-1}]}"#,
    ] {
        let r = check(&c, Some(200), garbage, "");
        assert!(
            matches!(r, Err(FeedError::Invalid(_))),
            "{:?}",
            String::from_utf8_lossy(garbage)
        );
    }
    assert_eq!(
        error(check(&c, Some(200), BODY, "e1-6")),
        FeedError::CursorRegression
    );
    let mut unsigned = config();
    unsigned.hmac_secret = None;
    let no_signature = Signatures::default();
    let poll = poll("");
    assert!(check_response(
        &unsigned,
        Some(200),
        no_signature,
        BODY,
        &poll,
        FeedState::default(),
        NOW
    )
    .is_ok());
}

#[test]
fn an_answer_bound_to_another_poll_is_a_replay() {
    let c = config();
    let ours = poll("e1-4");
    // The feed's signed answer to an earlier poll with the same cursor.
    let earlier = SentPoll {
        nonce: "ffeeddccbbaa99887766554433221100".into(),
        ..poll("e1-4")
    };
    let replayed = bind(&earlier, "e1", NOW, BODY);
    let run = |binding: Option<&str>, poll: &SentPoll, state| {
        let signatures = Signatures {
            body: Some(""),
            binding,
        };
        check_response(&c, Some(200), signatures, BODY, poll, state, NOW)
    };
    let r = run(Some(&replayed), &ours, FeedState::default());
    assert_eq!(error(r).label(), "replayed");
    // Another cursor, another body, another epoch in the header: the same.
    let other_since = bind(&poll("e1-3"), "e1", NOW, BODY);
    assert_eq!(
        error(run(Some(&other_since), &ours, FeedState::default())).label(),
        "replayed"
    );
    let other_body = bind(&ours, "e1", NOW, b"{}");
    assert_eq!(
        error(run(Some(&other_body), &ours, FeedState::default())).label(),
        "replayed"
    );
    let forged_epoch = bind(&ours, "e1", NOW, BODY).replace("epoch=e1", "epoch=e2");
    assert_eq!(
        error(run(Some(&forged_epoch), &ours, FeedState::default())).label(),
        "replayed"
    );
    // An answer held back longer than the clock skew allows.
    let old = bind(&ours, "e1", NOW - 61, BODY);
    let e = error(run(Some(&old), &ours, FeedState::default()));
    assert_eq!(
        (e.label(), e.to_string().contains("61 s")),
        ("replayed", true),
        "{e}"
    );
    assert!(run(
        Some(&bind(&ours, "e1", NOW - 59, BODY)),
        &ours,
        FeedState::default()
    )
    .is_ok());
    // No binding: a feed that predates them, or a stripped header.
    assert_eq!(
        error(run(None, &ours, FeedState::default())).label(),
        "unbound"
    );
    assert_eq!(
        error(run(Some("v=2,t=x"), &ours, FeedState::default())).label(),
        "malformed_binding"
    );
}

#[test]
fn unbound_answers_only_where_accepted() {
    let mut c = config();
    c.accept_unbound_answers = true;
    let poll = poll("e1-4");
    let body_only = |signature: Option<&str>| {
        let signatures = Signatures {
            body: signature,
            binding: None,
        };
        check_response(
            &c,
            Some(200),
            signatures,
            BODY,
            &poll,
            FeedState::default(),
            NOW,
        )
    };
    let good = sig(BODY);
    let r = body_only(Some(&good)).unwrap();
    assert!(r.binding.is_none());
    assert_eq!(error(body_only(None)), FeedError::MissingSignature);
    assert_eq!(
        error(body_only(Some(&sig(b"other")))),
        FeedError::BadSignature
    );
    assert_eq!(error(body_only(Some("sha256=zz"))), FeedError::BadSignature);
}

#[test]
fn a_new_epoch_only_through_a_newer_reset() {
    let c = config();
    let held = FeedState {
        epoch: "e1",
        reset_time: NOW - 100,
    };
    let ours = poll("e1-5");
    let run = |body: &[u8], epoch: &str, time: u64| {
        let binding = bind(&ours, epoch, time, body);
        let signatures = Signatures {
            body: None,
            binding: Some(&binding),
        };
        check_response(&c, Some(200), signatures, body, &ours, held, NOW)
    };
    let reset = br#"{"cursor":"e2-1","reset":true}"#;
    let delta = br#"{"cursor":"e2-1","reset":false}"#;
    assert!(
        run(reset, "e2", NOW).is_ok(),
        "a newer reset of a new data set"
    );
    assert_eq!(error(run(delta, "e2", NOW)), FeedError::EpochRollback);
    // A reset made before the last one applied: an older data set.
    let feed_clock = NOW - 101;
    let mut lenient = config();
    lenient.clock_skew_seconds = 3600;
    let binding = bind(&ours, "e0", feed_clock, reset);
    let signatures = Signatures {
        body: None,
        binding: Some(&binding),
    };
    let r = check_response(&lenient, Some(200), signatures, reset, &ours, held, NOW);
    assert_eq!(error(r), FeedError::EpochRollback);
    assert_eq!(FeedError::EpochRollback.label(), "epoch_rollback");
    // Within the epoch a reset is fine and cursors are ordered as before.
    assert!(run(br#"{"cursor":"e1-6","reset":true}"#, "e1", NOW).is_ok());
}

#[test]
fn polls_carry_the_nonce_and_the_wait() {
    let mut c = config();
    assert_eq!(
        c.poll_path("e1-5", "00ff00ff00ff00ff"),
        "/v1/revocations?since=e1-5&paged=1&nonce=00ff00ff00ff00ff"
    );
    c.wait_ms = 20_000;
    assert_eq!(
        c.poll_path("", "00ff00ff00ff00ff"),
        "/v1/revocations?paged=1&nonce=00ff00ff00ff00ff&wait_ms=20000"
    );
    assert_eq!(c.call_timeout_ms(), 20_500, "the wait plus timeout_ms");
    assert_eq!(c.timing().timeout_ms, 20_500);
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

fn page(cursor: &str, reset: bool, more: bool, jtis: &[&str]) -> Checked {
    Checked {
        response: page_body(cursor, reset, more, jtis),
        binding: None,
    }
}

fn page_body(cursor: &str, reset: bool, more: bool, jtis: &[&str]) -> FeedResponse {
    FeedResponse {
        cursor: cursor.into(),
        reset,
        revoked: jtis
            .iter()
            .map(|j| revocation_protocol::RevokedToken {
                jti: (*j).into(),
                iss: None,
                exp: 100,
            })
            .collect(),
        revoked_subjects: vec![],
        more,
    }
}

fn ids(c: &Completed) -> Vec<Entry> {
    c.all_entries()
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
            tokens: PendingTokens::default(),
            cursor: "e1-5".into(),
            bound: None,
            scoped: false,
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

#[test]
fn the_pages_of_one_answer_come_from_one_epoch() {
    let bound = |epoch: &str, cursor: &str, reset: bool, more: bool| Checked {
        response: page_body(cursor, reset, more, &["a"]),
        binding: Some(revocation_protocol::Binding {
            time: NOW,
            epoch: epoch.into(),
        }),
    };
    let mut p = Pages::default();
    p.accept(&bound("e2", "e2-9~1", true, true), 10).unwrap();
    let held = FeedState {
        epoch: "e1",
        reset_time: 5,
    };
    assert_eq!(
        p.state(held),
        FeedState {
            epoch: "e2",
            reset_time: NOW
        },
        "the next page is checked against the pending epoch"
    );
    assert_eq!(
        p.accept(&bound("e3", "e3-9~2", false, true), 10),
        Err(FeedError::EpochRollback)
    );
    assert!(!p.in_progress());
    assert_eq!(p.state(held), held);
}

#[test]
fn each_feed_has_its_own_keys_in_shared_data() {
    let a = config();
    let prefix = a.shared_prefix();
    assert!(prefix.starts_with("jwt_auth.rev."), "{prefix}");
    assert_eq!(prefix.len(), "jwt_auth.rev.".len() + 16);
    assert_eq!(
        config().shared_prefix(),
        prefix,
        "the same feed, the same set"
    );
    for other in [
        FeedConfig {
            cluster: "other_feed".into(),
            ..config()
        },
        FeedConfig {
            path: "/v2/revocations".into(),
            ..config()
        },
        FeedConfig {
            namespace: "edge".into(),
            ..config()
        },
    ] {
        assert_ne!(other.shared_prefix(), prefix);
    }
}
