//! End-to-end revocation: the real Envoy with the filter polls a feed server
//! written here, and every worker refuses a revoked token within one poll
//! interval. Assertions are on what the client gets and on what the feed
//! server and the upstream saw.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::*;

const SECRET: &[u8] = b"feed-signing-secret";
const READ_TOKEN: &str = "feed-read-token";
const POLL_MS: u64 = 1000;

fn key() -> Key {
    Key::hs(256)
}

fn config(on_stale: &str, max_staleness: u64) -> Value {
    json!({
        "realm": "api",
        "providers": [{
            "name": "main",
            "issuer": "https://issuer.test",
            "audiences": ["api"],
            "jwks": {"keys": [key().jwk(Some("HS256"))]},
            "claim_to_headers": [{"claim": "sub", "header": "x-user-id"}]
        }],
        "rules": [
            {"match": {"prefix": "/healthz"}, "requires": "none"},
            {"match": {"prefix": "/"}, "requires": {"providers": ["main"]}}
        ],
        "revocation": {
            "cluster": "revocation_feed", "authority": "revocation-feed", "path": "/v1/revocations",
            "poll_interval_ms": POLL_MS, "timeout_ms": 500, "bearer_token": READ_TOKEN,
            "hmac_secret_base64": b64std(SECRET), "max_staleness_seconds": max_staleness, "on_stale": on_stale,
            "max_backoff_ms": 2000, "wait_ms": 0
        }
    })
}

/// The feed's poll targets, each nonce (different every time) as `*`.
fn poll_paths(feed: &FakeFeed) -> Vec<String> {
    let paths: Vec<String> = feed.requests().iter().map(|r| r.path.clone()).collect();
    let mut nonces = std::collections::HashSet::new();
    paths
        .into_iter()
        .map(|p| match p.split_once("&nonce=") {
            Some((head, nonce)) => {
                assert_eq!(nonce.len(), 32, "{p}");
                assert!(nonces.insert(nonce.to_string()), "a nonce sent twice: {p}");
                format!("{head}&nonce=*")
            }
            None => p,
        })
        .collect()
}

fn b64std(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn token(sub: &str, jti: &str, iat: i64) -> String {
    let now = now();
    mint(
        "HS256",
        &key(),
        &json!({}),
        &json!({"iss": "https://issuer.test", "aud": "api", "sub": sub, "jti": jti,
                "iat": iat, "exp": now + 3600}),
    )
}

fn start(feed: &FakeFeed, on_stale: &str, max_staleness: u64) -> Envoy {
    start_with(feed, &config(on_stale, max_staleness))
}

fn start_with(feed: &FakeFeed, config: &Value) -> Envoy {
    Envoy::builder()
        .plugin_config_json(config)
        .concurrency(4)
        .cluster("revocation_feed", feed.port())
        .start()
}

/// Status of one request on a fresh connection (fresh connections spread
/// over Envoy's workers).
fn status(envoy: &Envoy, token: &str) -> (u16, String) {
    let auth = format!("Bearer {token}");
    let r = envoy.get(
        "/resource",
        &[("authorization", &auth), ("connection", "close")],
    );
    (
        r.status,
        r.header("www-authenticate").unwrap_or("").to_string(),
    )
}

/// Statuses of `n` parallel requests, each on its own connection.
fn statuses(envoy: &Envoy, token: &str, n: usize) -> Vec<(u16, String)> {
    thread::scope(|s| {
        let handles: Vec<_> = (0..n).map(|_| s.spawn(|| status(envoy, token))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Whether `n` requests with `token` (fresh connections) all got `status`.
fn all_answered(envoy: &Envoy, token: &str, n: usize, status: u16) -> bool {
    statuses(envoy, token, n).iter().all(|(s, _)| *s == status)
}

/// A feed holding `jtis` and a proxy (`on_stale: serve`) that has synced it.
fn synced_proxy(jtis: &[&str]) -> (FakeFeed, Envoy) {
    let feed = FakeFeed::start(SECRET, READ_TOKEN);
    for jti in jtis {
        feed.revoke_jti(jti);
    }
    let envoy = start(&feed, "serve", 30);
    wait_first_sync(&envoy);
    (feed, envoy)
}

fn wait_first_sync(envoy: &Envoy) {
    assert!(
        wait_until(Duration::from_secs(10), || envoy
            .stat("wasmcustom.jwt_auth.revocation.fetch_ok")
            .unwrap_or(0)
            > 0),
        "no successful feed poll; log:\n{}",
        envoy.log()
    );
}

#[test]
fn revoked_jti_is_refused_by_every_worker_within_one_interval() {
    let (feed, envoy) = synced_proxy(&[]);
    let iat = now() - 10;
    let victim = token("alice", "jti-victim", iat);
    let bystander = token("bob", "jti-bystander", iat);
    assert!(all_answered(&envoy, &victim, 16, 200));

    feed.revoke_jti("jti-victim");
    let revoked_at = Instant::now();
    // Every worker's replica must have it within one poll interval, a tick
    // to notice the poll is due, the callout and each worker's sync tick;
    // the bound leaves slack for a loaded machine.
    let delay = time_until(Duration::from_secs(5), Duration::from_millis(20), || {
        all_answered(&envoy, &victim, 16, 401)
    })
    .expect("never refused by every worker");
    assert!(
        delay <= Duration::from_millis(POLL_MS + 800),
        "refused everywhere only after {delay:?} (poll interval {POLL_MS} ms)"
    );
    // 16 refusals can miss one lagging worker; two sync ticks later every
    // worker must refuse.
    thread::sleep(Duration::from_millis(200));
    envoy.upstream().clear();
    let after = statuses(&envoy, &victim, 32);
    let wrong: Vec<_> = after
        .iter()
        .filter(|(s, www)| *s != 401 || !www.contains("error_description=\"token revoked\""))
        .collect();
    assert!(
        wrong.is_empty(),
        "not refused everywhere after {:?}: {wrong:?}",
        revoked_at.elapsed()
    );
    assert!(all_answered(&envoy, &bystander, 8, 200));
    assert!(
        !envoy
            .upstream()
            .requests()
            .iter()
            .any(|r| r.header("x-user-id") == vec!["alice".to_string()]),
        "a revoked token reached the upstream"
    );
    assert!(
        envoy
            .stat_at_least("wasmcustom.jwt_auth.denied.revoked", 32)
            .unwrap_or(0)
            >= 32
    );
    // Every VM writes this gauge on its own tick.
    assert!(wait_until(Duration::from_secs(2), || envoy
        .stat("wasmcustom.jwt_auth.revocation.entries")
        .unwrap_or(0)
        >= 1));
    // Workers that applied the revocation report how long it took.
    assert!(
        envoy
            .stat("wasmcustom.jwt_auth.revocation.last_apply_us")
            .is_some(),
        "no revocation.last_apply_us gauge; stats:\n{}",
        envoy.stats()
    );
}

#[test]
fn subject_revocation_refuses_only_older_tokens() {
    let (feed, envoy) = synced_proxy(&[]);
    let t = now();
    let old = token("carol", "c-old", t - 100);
    let new = token("carol", "c-new", t - 10);
    feed.revoke_subject("carol", t - 50);
    assert!(wait_until(Duration::from_secs(5), || {
        all_answered(&envoy, &old, 8, 401)
    }));
    assert!(all_answered(&envoy, &new, 8, 200), "issued after `before`");
}

#[test]
fn one_feed_request_per_interval_per_proxy() {
    let (feed, envoy) = synced_proxy(&[]);
    let before = feed.request_count();
    thread::sleep(Duration::from_secs(10));
    let polls = feed.request_count() - before;
    // 5 VMs (4 workers + main) tick; one of them polls about once per
    // second (the interval runs from each answer, checked on a tick). One
    // poller per VM would make about 45.
    assert!((6..=14).contains(&polls), "{polls} feed requests in 10 s");
    let paths = poll_paths(&feed);
    assert!(
        paths
            .first()
            .is_some_and(|p| p == "/v1/revocations?paged=1&nonce=*"),
        "first poll has no cursor and accepts pages: {paths:?}"
    );
    assert!(
        paths
            .iter()
            .skip(1)
            .all(|p| p.starts_with("/v1/revocations?since=e1-")),
        "{paths:?}"
    );
    drop(envoy);
}

#[test]
fn feed_faults_keep_the_last_good_set() {
    let (feed, envoy) = synced_proxy(&["jti-kept"]);
    let kept = token("dave", "jti-kept", now() - 5);
    let fine = token("erin", "jti-fine", now() - 5);
    assert!(wait_until(Duration::from_secs(3), || all_answered(
        &envoy, &kept, 8, 401
    )));

    for (mode, label) in [
        (FeedMode::Status(500), "status"),
        (FeedMode::Garbage, "invalid"),
        (FeedMode::BadSignature, "replayed"),
        (FeedMode::Unbound, "unbound"),
        // Envoy answers a callout past its timeout with a local 504.
        (FeedMode::Slow, "status"),
        (FeedMode::Regress, "cursor_regression"),
    ] {
        let stat = format!("wasmcustom.jwt_auth.revocation.fetch_failed.{label}");
        // Two faults share a label: this one must add to the count.
        let failed_before = envoy.stat(&stat).unwrap_or(0);
        feed.set_mode(mode);
        assert!(
            wait_until(Duration::from_secs(8), || envoy.stat(&stat).unwrap_or(0)
                > failed_before),
            "{mode:?}: no {stat}; feed stats:\n{}",
            revocation_counters(&envoy)
        );
        // Requests are still decided, with the last good set.
        assert!(
            all_answered(&envoy, &kept, 8, 401),
            "{mode:?}: revocation lost"
        );
        assert!(
            all_answered(&envoy, &fine, 8, 200),
            "{mode:?}: valid token refused"
        );
    }
    assert!(
        envoy.wait_for_log("keeping the last good set", Duration::from_secs(5)),
        "the log says what happened"
    );

    // Recovery: new revocations flow again.
    feed.set_mode(FeedMode::Serve);
    feed.revoke_jti("jti-fine");
    assert!(
        wait_until(Duration::from_secs(6), || all_answered(
            &envoy, &fine, 8, 401
        )),
        "no recovery after the feed came back"
    );
}

#[test]
fn reset_snapshot_replaces_the_set() {
    let (feed, envoy) = synced_proxy(&["jti-a"]);
    let a = token("u", "jti-a", now() - 5);
    let b = token("u", "jti-b", now() - 5);
    assert!(wait_until(Duration::from_secs(3), || all_answered(
        &envoy, &a, 8, 401
    )));
    feed.replace_all("e2", &["jti-b"]);
    // Each worker copies the new set on its own sync tick: wait for the
    // state on all of them, not for the first ones to change.
    assert!(
        wait_until(Duration::from_millis(POLL_MS + 1500), || {
            all_answered(&envoy, &b, 8, 401) && all_answered(&envoy, &a, 8, 200)
        }),
        "the reset did not replace jti-a by jti-b on every worker"
    );
}

#[test]
fn staleness_policy_deny_and_serve() {
    let feed = FakeFeed::start(SECRET, READ_TOKEN);
    feed.set_mode(FeedMode::Status(503));
    let deny = start(&feed, "deny", 2);
    let serve = start(&feed, "serve", 2);
    let t = token("frank", "jti-frank", now() - 5);
    thread::sleep(Duration::from_millis(2500));
    let auth = format!("Bearer {t}");
    let r = deny.get("/resource", &[("authorization", &auth)]);
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        deny.get("/healthz", &[]).status,
        200,
        "bypass routes do not depend on revocations"
    );
    assert_eq!(
        serve.get("/resource", &[("authorization", &auth)]).status,
        200
    );
    // Once the feed answers, the deny-mode proxy serves again.
    feed.set_mode(FeedMode::Serve);
    assert!(
        wait_until(Duration::from_secs(6), || deny
            .get("/resource", &[("authorization", &auth)])
            .status
            == 200),
        "deny mode did not recover; log:\n{}",
        deny.log()
    );
}

fn refused_all(envoy: &Envoy, tokens: &[String]) -> bool {
    tokens.iter().all(|t| all_answered(envoy, t, 4, 401))
}

/// Revokes `<prefix>-0` ... `<prefix>-<n-1>` at the feed; returns a token
/// of `sub` for each.
fn revoke_jtis(feed: &FakeFeed, prefix: &str, n: usize, sub: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let jti = format!("{prefix}-{i}");
            feed.revoke_jti(&jti);
            token(sub, &jti, now() - 5)
        })
        .collect()
}

fn accepted_all(envoy: &Envoy, tokens: &[String]) -> bool {
    tokens.iter().all(|t| all_answered(envoy, t, 4, 200))
}

#[test]
fn paged_snapshot_is_applied_only_after_its_last_page() {
    let feed = FakeFeed::start(SECRET, READ_TOKEN);
    // 8 entries in pages of 2: four pages, the last three slowed down so
    // that the proxy can be asked while the snapshot is incomplete (after
    // the second page is seen, two more take at least 1.2 s), each within
    // a callout timeout raised above that delay.
    feed.set_paging(2, 600);
    let tokens = revoke_jtis(&feed, "jti-page", 8, "pat");
    let mut slow_pages = config("serve", 30);
    slow_pages["revocation"]["timeout_ms"] = json!(1500);
    let envoy = start_with(&feed, &slow_pages);
    assert!(
        wait_until(Duration::from_secs(10), || feed.request_count() >= 2),
        "no continuation request"
    );
    let first_page_at = Instant::now();
    // Page 1 (jti-page-0 and -1) has arrived, the snapshot is incomplete:
    // nothing of it may be in force yet.
    assert!(
        accepted_all(&envoy, &tokens[..2]),
        "a page was applied before the last one"
    );
    assert_eq!(
        envoy
            .stat("wasmcustom.jwt_auth.revocation.fetch_ok")
            .unwrap_or(0),
        0
    );
    wait_first_sync(&envoy);
    let synced_after = first_page_at.elapsed();
    // Every worker picks it up on its next tick.
    assert!(
        wait_until(Duration::from_secs(2), || refused_all(&envoy, &tokens)),
        "every page's entries refused"
    );
    // Continuations go out at once, not one poll interval apart (which
    // would take at least three intervals).
    assert!(
        synced_after < Duration::from_millis(3 * POLL_MS),
        "pages took {synced_after:?}"
    );
    let paths = poll_paths(&feed);
    assert_eq!(
        paths[..4],
        [
            "/v1/revocations?paged=1&nonce=*",
            "/v1/revocations?since=e1-8~2&paged=1&nonce=*",
            "/v1/revocations?since=e1-8~4&paged=1&nonce=*",
            "/v1/revocations?since=e1-8~6&paged=1&nonce=*",
        ],
        "{paths:?}"
    );
    assert!(
        paths[4..]
            .iter()
            .all(|p| p == "/v1/revocations?since=e1-8&paged=1&nonce=*"),
        "{paths:?}"
    );
    // Every VM writes this gauge on its own tick.
    assert!(wait_until(Duration::from_secs(2), || envoy
        .stat("wasmcustom.jwt_auth.revocation.entries")
        .unwrap_or(0)
        >= 8));
}

#[test]
fn a_failing_page_drops_the_whole_snapshot() {
    let feed = FakeFeed::start(SECRET, READ_TOKEN);
    feed.set_paging(2, 0);
    let old_tokens = revoke_jtis(&feed, "jti-old", 5, "ola");
    let envoy = start(&feed, "serve", 30);
    wait_first_sync(&envoy);
    assert!(wait_until(Duration::from_secs(3), || refused_all(
        &envoy,
        &old_tokens
    )));

    // A new snapshot (new epoch) whose later pages fail.
    let new: Vec<String> = (0..5).map(|i| format!("jti-new-{i}")).collect();
    let new_tokens: Vec<String> = new.iter().map(|j| token("nia", j, now() - 5)).collect();
    feed.set_page_fault(Some(FeedMode::BadSignature));
    let refs: Vec<&str> = new.iter().map(String::as_str).collect();
    feed.replace_all("e2", &refs);
    for (fault, label) in [
        (FeedMode::BadSignature, "replayed"),
        (FeedMode::Unbound, "unbound"),
        (FeedMode::Status(500), "status"),
    ] {
        feed.set_page_fault(Some(fault));
        let stat = format!("wasmcustom.jwt_auth.revocation.fetch_failed.{label}");
        let before = envoy.stat(&stat).unwrap_or(0);
        assert!(
            wait_until(Duration::from_secs(8), || envoy.stat(&stat).unwrap_or(0)
                > before),
            "{fault:?}: no {stat}"
        );
        // Neither the first page of the new snapshot nor anything else of
        // it is in force; the old set still is.
        assert!(
            accepted_all(&envoy, &new_tokens[..2]),
            "{fault:?}: part of a failed snapshot applied"
        );
        assert!(
            refused_all(&envoy, &old_tokens),
            "{fault:?}: last good set lost"
        );
    }
    assert!(
        envoy.wait_for_log("dropping those pages", Duration::from_secs(5)),
        "the log says what happened"
    );
    // The feed heals: the next attempt brings the whole new snapshot,
    // which replaces the old set on every worker (each on its own tick).
    feed.set_page_fault(None);
    assert!(
        wait_until(Duration::from_secs(8), || refused_all(&envoy, &new_tokens)
            && accepted_all(&envoy, &old_tokens)),
        "no recovery: the new snapshot did not replace the old set everywhere"
    );
}

/// The filter's counter `revocation.fetch_failed.<label>` (0 before the
/// first such failure).
fn failed_count(envoy: &Envoy, label: &str) -> u64 {
    envoy
        .stat(&format!(
            "wasmcustom.jwt_auth.revocation.fetch_failed.{label}"
        ))
        .unwrap_or(0)
}

/// The filter's revocation counters, one per line.
fn revocation_counters(envoy: &Envoy) -> String {
    envoy
        .stats()
        .lines()
        .filter(|l| l.contains("jwt_auth.revocation"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Brings a fault about with `cause` and waits until the failure counter
/// `label` counts it; then every token of `held` is still refused and a
/// valid one accepted, on every worker.
fn fault_counted(envoy: &Envoy, held: &[String], label: &str, what: &str, cause: impl FnOnce()) {
    let before = failed_count(envoy, label);
    cause();
    assert!(
        wait_until(Duration::from_secs(10), || failed_count(envoy, label)
            > before),
        "{what}: no fetch_failed.{label}; counters:\n{}",
        revocation_counters(envoy)
    );
    assert!(refused_all(envoy, held), "{what}: a revocation was lost");
    let fine = token("fay", "jti-fine", now() - 5);
    assert!(
        all_answered(envoy, &fine, 8, 200),
        "{what}: a valid token was refused"
    );
}

/// Revokes `jti` at the feed, adds its token to `held`, and waits until
/// every token of `held` is refused.
fn revoke_and_wait(feed: &FakeFeed, envoy: &Envoy, held: &mut Vec<String>, jti: &str, what: &str) {
    feed.revoke_jti(jti);
    held.push(token("hal", jti, now() - 5));
    assert!(
        wait_until(Duration::from_secs(10), || refused_all(envoy, held)),
        "{what}"
    );
}

/// A long-polling filter (`wait_ms` on) against the faults a feed replica,
/// or a set of them behind one address, can show: a poll held past the
/// filter's timeout; a replica behind the one that answered last, to which
/// the filter's cursor is from the future (it answers with a reset snapshot
/// of the less it has); and an empty answer whose cursor went back. Each is
/// counted under its label and logged (at most once per ten seconds), the
/// last good set stays whole on every worker (the entries only the newer
/// replica had included), and the filter catches up once the feed is right.
#[test]
fn long_poll_protocol_faults_are_counted_and_keep_the_last_good_set() {
    let feed = FakeFeed::start(SECRET, READ_TOKEN);
    feed.revoke_jti("jti-held-0");
    feed.revoke_jti("jti-held-1");
    let mut config = config("serve", 30);
    config["revocation"]["wait_ms"] = json!(1000);
    let envoy = start_with(&feed, &config);
    wait_first_sync(&envoy);
    let mut held: Vec<String> = (0..2)
        .map(|i| token("hal", &format!("jti-held-{i}"), now() - 5))
        .collect();
    assert!(wait_until(Duration::from_secs(5), || refused_all(
        &envoy, &held
    )));

    // Held for wait_ms + 1.5 s: Envoy ends the call at wait_ms + timeout_ms
    // and answers it with its own 504.
    fault_counted(&envoy, &held, "status", "held past the timeout", || {
        feed.set_mode(FeedMode::HoldPastWait)
    });
    feed.set_mode(FeedMode::Serve);

    // The newest entry reaches the filter; then the feed answering is a
    // replica one entry behind.
    revoke_and_wait(
        &feed,
        &envoy,
        &mut held,
        "jti-newest",
        "no recovery after the held polls",
    );
    fault_counted(
        &envoy,
        &held,
        "cursor_regression",
        "a cursor from the replica's future",
        || feed.set_lag(1),
    );
    // The replica catches up, with one more entry: a delta from the
    // filter's own cursor brings it.
    feed.set_lag(0);
    revoke_and_wait(
        &feed,
        &envoy,
        &mut held,
        "jti-after-lag",
        "no catching up once the replica did",
    );

    // An empty answer whose cursor went back two entries.
    fault_counted(
        &envoy,
        &held,
        "cursor_regression",
        "an empty answer with an older cursor",
        || feed.set_mode(FeedMode::EmptyMoved(-2)),
    );
    feed.set_mode(FeedMode::Serve);
    revoke_and_wait(
        &feed,
        &envoy,
        &mut held,
        "jti-last",
        "no recovery after the empty answers",
    );
    // Every failure counted, one log line for them per ten seconds.
    let failures = envoy
        .stat("wasmcustom.jwt_auth.revocation.fetch_failed")
        .unwrap_or(0);
    let lines = envoy.log().matches("revocation feed poll failed").count() as u64;
    assert!(
        failures >= 3 && (1..=2).contains(&lines) && lines < failures,
        "{failures} failures, {lines} log lines:\n{}",
        envoy.log()
    );
    // Not one reset was applied: the set was never replaced by the lagging
    // replica's smaller snapshot.
    let resets = feed
        .requests()
        .iter()
        .filter(|r| !r.path.contains("since="))
        .count();
    assert_eq!(resets, 1, "only the first poll asks for a snapshot");
}
