//! The whole revocation loop with the real parts: the reference feed server
//! (`revocation-feed serve`, embedded store), the real Envoy with the filter,
//! and a revocation through the admin API. The proxy must refuse the token
//! within poll interval + 500 ms.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::thread;
use std::time::Duration;

use serde_json::json;
use testkit::*;

const POLL_MS: u64 = 500;
// Credentials the feed accepts: long, random-looking, no placeholder words.
const READ_TOKEN: &str = "4f0c9b27e8d1a65c3b7e9f2a1d0c8b6e5a4f3e2d1c0b9a8f";
const ADMIN_TOKEN: &str = "a7d3e91f5c2b8046d1e7c3a9f0b2d4c6e8a1b3c5d7e9f1a3";
/// 32 bytes, base64.
const SECRET_B64: &str = "q3Xy9uVd2mTa7LkPz0BwRc5HsJf8GnEe1YiOoKtUbQA=";

const SECRETS: FeedSecrets = FeedSecrets {
    read_token: READ_TOKEN,
    admin_token: ADMIN_TOKEN,
    hmac_secret_base64: SECRET_B64,
};

fn feed_binary() -> std::path::PathBuf {
    workspace_bin("revocation-feed", "revocation-feed")
}

fn start_feed() -> FeedServer {
    start_feed_with(&[])
}

/// The feed server with its embedded store in a directory of its own.
fn start_feed_with(env: &[(&str, &str)]) -> FeedServer {
    let dir = std::env::temp_dir().join(format!("feed-e2e-{}", random_id()));
    let data = dir.display().to_string();
    FeedServer::start(&["--data", &data], env, SECRETS)
}

fn revoke(feed: &FeedServer, args: &[&str]) {
    let out = Command::new(feed_binary())
        .args([
            "revoke",
            "--url",
            &format!("http://127.0.0.1:{}", feed.port()),
        ])
        .args(["--admin-token", ADMIN_TOKEN])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "revoke failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Envoy (2 workers) with the filter polling `feed`; tokens signed by `key`.
fn start_proxy(feed: &FeedServer, key: &Key) -> Envoy {
    start_proxy_on(
        feed.port(),
        key,
        json!({"poll_interval_ms": POLL_MS, "wait_ms": 0}),
    )
}

/// Envoy (2 workers) with the filter polling the feed on `port`, with
/// `revocation` settings added to the defaults.
fn start_proxy_on(port: u16, key: &Key, revocation: serde_json::Value) -> Envoy {
    let mut config = json!({
        "realm": "api",
        "providers": [{"name": "main", "issuer": "https://feed.test", "audiences": ["api"],
                       "jwks": {"keys": [key.jwk(Some("HS256"))]},
                       "claim_to_headers": [{"claim": "sub", "header": "x-user-id"}]}],
        "revocation": {"cluster": "revocation_feed", "authority": "revocation-feed",
                       "timeout_ms": 400, "bearer_token": READ_TOKEN,
                       "hmac_secret_base64": SECRET_B64}
    });
    for (name, value) in revocation.as_object().unwrap() {
        config["revocation"][name] = value.clone();
    }
    Envoy::builder()
        .plugin_config_json(&config)
        .concurrency(2)
        .cluster("revocation_feed", port)
        .start()
}

fn wait_first_sync(envoy: &Envoy) {
    assert!(
        wait_until(Duration::from_secs(10), || envoy
            .stat("wasmcustom.jwt_auth.revocation.fetch_ok")
            .unwrap_or(0)
            > 0),
        "the filter never polled the feed server; log:\n{}",
        envoy.log()
    );
}

fn hs_token(key: &Key, sub: &str, jti: &str) -> String {
    let now = now();
    mint(
        "HS256",
        key,
        &json!({}),
        &json!({"iss": "https://feed.test", "aud": "api", "sub": sub,
                "jti": jti, "iat": now - 10, "exp": now + 3600}),
    )
}

fn status_of(envoy: &Envoy, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    envoy
        .get("/r", &[("authorization", &auth), ("connection", "close")])
        .status
}

#[test]
fn revoke_through_the_admin_api_and_the_proxy_refuses_within_the_interval() {
    let feed = start_feed();
    let key = Key::hs(256);
    let envoy = start_proxy(&feed, &key);
    let now = now();
    let token = |sub: &str, jti: &str, iat: i64| {
        mint(
            "HS256",
            &key,
            &json!({}),
            &json!({"iss": "https://feed.test", "aud": "api", "sub": sub,
                                                  "jti": jti, "iat": iat, "exp": now + 3600}),
        )
    };
    let status = |t: &str| {
        let auth = format!("Bearer {t}");
        envoy
            .get("/r", &[("authorization", &auth), ("connection", "close")])
            .status
    };
    let victim = token("vic", "jti-victim", now - 10);
    let old_session = token("sam", "jti-sam-old", now - 100);
    let new_session = token("sam", "jti-sam-new", now);
    assert!(
        (0..100).any(|_| {
            thread::sleep(Duration::from_millis(50));
            envoy
                .stat("wasmcustom.jwt_auth.revocation.fetch_ok")
                .unwrap_or(0)
                > 0
        }),
        "the filter never polled the feed server; log:\n{}",
        envoy.log()
    );
    assert_eq!(status(&victim), 200);

    let exp = (now + 3600).to_string();
    revoke(&feed, &["--jti", "jti-victim", "--exp", &exp]);
    let delay = time_until(Duration::from_secs(5), Duration::from_millis(20), || {
        (0..6).all(|_| status(&victim) == 401)
    })
    .expect("never refused");
    // One poll interval, a tick to notice it is due, the callout, and each
    // other worker's sync tick; the rest is slack for a loaded machine.
    assert!(
        delay <= Duration::from_millis(POLL_MS + 800),
        "refused only after {delay:?} (poll interval {POLL_MS} ms)"
    );

    // Log out everywhere: the subject's older session goes, a newer stays.
    let before = (now - 50).to_string();
    revoke(&feed, &["--sub", "sam", "--before", &before, "--exp", &exp]);
    assert!(
        wait_until(Duration::from_secs(5), || (0..6)
            .all(|_| status(&old_session) == 401)),
        "the older session was not logged out"
    );
    // Six refusals in a row can all have met the worker that synced
    // first; after a few sync ticks every worker has it.
    thread::sleep(Duration::from_millis(300));
    for _ in 0..6 {
        assert_eq!(status(&old_session), 401);
        assert_eq!(status(&new_session), 200);
    }
}

/// Revokes a list of jtis in one admin request.
fn revoke_many(feed: &FeedServer, jtis: &[String], exp: i64) {
    if let Err(e) = feed.try_revoke(jtis, exp) {
        panic!("the feed refused the revocations: {e}");
    }
}

#[test]
fn more_revocations_than_one_page_are_all_refused() {
    // Pages of 3 entries: the snapshot of 8 and the later delta of 7 each
    // take three pages.
    let feed = start_feed_with(&[("REVOCATION_FEED_MAX_ENTRIES_PER_RESPONSE", "3")]);
    let key = Key::hs(256);
    let now = now();
    let exp = now + 3600;
    let first: Vec<String> = (0..8).map(|i| format!("jti-snap-{i}")).collect();
    revoke_many(&feed, &first, exp);
    let envoy = start_proxy(&feed, &key);
    let token = |jti: &str| {
        mint(
            "HS256",
            &key,
            &json!({}),
            &json!({"iss": "https://feed.test", "aud": "api", "sub": "u",
                    "jti": jti, "iat": now - 10, "exp": now + 3600}),
        )
    };
    let status = |t: &str| {
        let auth = format!("Bearer {t}");
        envoy
            .get("/r", &[("authorization", &auth), ("connection", "close")])
            .status
    };
    let all_refused = |jtis: &[String]| {
        jtis.iter()
            .all(|j| (0..4).all(|_| status(&token(j)) == 401))
    };
    assert!(
        wait_until(Duration::from_secs(10), || all_refused(&first)),
        "the paged snapshot was not applied whole; log:\n{}",
        envoy.log()
    );
    assert!(
        envoy
            .stat("wasmcustom.jwt_auth.revocation.fetch_page")
            .unwrap_or(0)
            >= 2,
        "the snapshot came in pages"
    );
    assert_eq!(status(&token("jti-not-revoked")), 200);

    let later: Vec<String> = (0..7).map(|i| format!("jti-delta-{i}")).collect();
    revoke_many(&feed, &later, exp);
    assert!(
        wait_until(Duration::from_millis(POLL_MS + 2000), || all_refused(
            &later
        )),
        "the paged delta was not applied whole"
    );
    assert!(all_refused(&first));
    // Every VM writes this gauge on its own tick: wait for the last writer
    // to hold the whole set.
    assert!(wait_until(Duration::from_secs(2), || envoy
        .stat("wasmcustom.jwt_auth.revocation.entries")
        .unwrap_or(0)
        >= 15));
}

/// With the default long poll the feed holds the filter's poll and answers
/// the moment a revocation is written: the token is refused in a fraction
/// of the poll interval, and an idle proxy costs the feed about one poll
/// per wait.
#[test]
fn a_long_poll_brings_a_revocation_at_once_and_idles_cheaply() {
    let feed = start_feed();
    let key = Key::hs(256);
    let envoy = start_proxy_on(feed.port(), &key, json!({"wait_ms": 3000}));
    wait_first_sync(&envoy);
    let victim = hs_token(&key, "val", "jti-long-poll");
    assert_eq!(status_of(&envoy, &victim), 200);
    // Let the poller settle into a held poll.
    thread::sleep(Duration::from_millis(500));
    let exp = (now() + 3600).to_string();
    revoke(&feed, &["--jti", "jti-long-poll", "--exp", &exp]);
    let delay = time_until(Duration::from_secs(5), Duration::from_millis(10), || {
        (0..4).all(|_| status_of(&envoy, &victim) == 401)
    })
    .expect("never refused");
    // The revoke command's own run, the wake-up, one sync tick and the
    // requests; far below the one-second poll interval of a short poll.
    assert!(
        delay < Duration::from_millis(700),
        "refused after {delay:?}"
    );
    // Idle: a held poll per wait (3 s), not one per poll interval.
    let polls = || {
        envoy
            .stat("wasmcustom.jwt_auth.revocation.fetch_ok")
            .unwrap_or(0)
    };
    let before = polls();
    thread::sleep(Duration::from_secs(7));
    let idle = polls() - before;
    assert!((1..=4).contains(&idle), "{idle} polls in 7 s idle");
}

/// An attacker on the path between proxy and feed replays the feed's signed
/// answers: every replay is refused and counted, the proxy knows it is not
/// in sync (its staleness grows and `on_stale: deny` refuses), and once the
/// path is honest again the revocation made meanwhile arrives.
#[test]
fn a_replayed_answer_never_stands_in_for_news() {
    let feed = start_feed();
    let path = ReplayingPath::start(feed.port());
    let key = Key::hs(256);
    let envoy = start_proxy_on(
        path.port(),
        &key,
        json!({"poll_interval_ms": POLL_MS, "max_staleness_seconds": 4, "on_stale": "deny",
               "max_backoff_ms": 1000}),
    );
    wait_first_sync(&envoy);
    let victim = hs_token(&key, "rex", "jti-replayed");
    // Under `deny` each worker refuses until its own first sync.
    assert!(wait_until(Duration::from_secs(5), || (0..4)
        .all(|_| status_of(&envoy, &victim) == 200)));
    // Let a few polls from the current cursor be recorded, then replay.
    thread::sleep(Duration::from_millis(2 * POLL_MS));
    path.replay(true);
    let exp = (now() + 3600).to_string();
    revoke(&feed, &["--jti", "jti-replayed", "--exp", &exp]);
    let replayed = "wasmcustom.jwt_auth.revocation.fetch_failed.replayed";
    assert!(
        wait_until(Duration::from_secs(5), || envoy.stat(replayed).unwrap_or(0)
            >= 2),
        "replays not refused; replayed {} polls; stats:\n{}",
        path.replayed(),
        envoy.stats()
    );
    assert!(path.replayed() >= 2);
    // Not in sync: after max_staleness_seconds every token is refused with
    // 503, the victim's included, never let through on stale data.
    let stale = time_until(Duration::from_secs(10), Duration::from_millis(100), || {
        (0..4).all(|_| status_of(&envoy, &victim) == 503)
    });
    assert!(
        stale.is_some(),
        "staleness never applied; stats:\n{}",
        envoy.stats()
    );
    assert!(
        envoy
            .stat("wasmcustom.jwt_auth.revocation.seconds_since_sync")
            .unwrap_or(0)
            >= 3
    );
    // The path is honest again: the revocation arrives.
    path.replay(false);
    assert!(
        wait_until(Duration::from_secs(10), || (0..4)
            .all(|_| status_of(&envoy, &victim) == 401)),
        "the revocation never arrived"
    );
}
