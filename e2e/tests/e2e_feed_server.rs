//! The whole revocation loop with the real parts: the reference feed server
//! (`revocation-feed serve`, embedded store), the real Envoy with the filter,
//! and a revocation through the admin API. The proxy must refuse the token
//! within poll interval + 500 ms.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use serde_json::json;
use testkit::*;

const POLL_MS: u64 = 500;
const READ_TOKEN: &str = "e2e-read";
const ADMIN_TOKEN: &str = "e2e-admin";
const SECRET_B64: &str = "ZTJlLWZlZWQtc2lnbmluZy1zZWNyZXQ=";

struct Feed {
    child: Child,
    port: u16,
    _dir: std::path::PathBuf,
}

impl Drop for Feed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn feed_binary() -> std::path::PathBuf {
    let bin = workspace_root().join("target/debug/revocation-feed");
    assert!(
        bin.exists(),
        "{} is missing: `cargo test --workspace` (or `cargo build -p revocation-feed`) builds it",
        bin.display()
    );
    bin
}

fn start_feed() -> Feed {
    start_feed_with(&[])
}

fn start_feed_with(env: &[(&str, &str)]) -> Feed {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("feed-e2e-{}", random_id()));
    let child = Command::new(feed_binary())
        .envs(env.iter().copied())
        .args(["serve", "--data"])
        .arg(&dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("REVOCATION_FEED_READ_TOKEN", READ_TOKEN)
        .env("REVOCATION_FEED_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("REVOCATION_FEED_HMAC_SECRET_BASE64", SECRET_B64)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up = (0..100).any(|_| {
        thread::sleep(Duration::from_millis(50));
        testkit::http::get_text(port, "/healthz").is_ok_and(|(s, _)| s == 200)
    });
    assert!(up, "revocation-feed did not come up");
    Feed {
        child,
        port,
        _dir: dir,
    }
}

fn revoke(feed: &Feed, args: &[&str]) {
    let out = Command::new(feed_binary())
        .args([
            "revoke",
            "--url",
            &format!("http://127.0.0.1:{}", feed.port),
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
fn start_proxy(feed: &Feed, key: &Key) -> Envoy {
    let config = json!({
        "realm": "api",
        "providers": [{"name": "main", "issuer": "https://feed.test", "audiences": ["api"],
                       "jwks": {"keys": [key.jwk(Some("HS256"))]},
                       "claim_to_headers": [{"claim": "sub", "header": "x-user-id"}]}],
        "revocation": {"cluster": "revocation_feed", "authority": "revocation-feed",
                       "poll_interval_ms": POLL_MS, "timeout_ms": 400, "bearer_token": READ_TOKEN,
                       "hmac_secret_base64": SECRET_B64}
    });
    Envoy::builder()
        .plugin_config_json(&config)
        .concurrency(2)
        .cluster("revocation_feed", feed.port)
        .start()
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
fn revoke_many(feed: &Feed, jtis: &[String], exp: i64) {
    let list: Vec<_> = jtis.iter().map(|j| json!({"jti": j, "exp": exp})).collect();
    let body = serde_json::to_vec(&list).unwrap();
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let r = testkit::http::request_with_body(
        feed.port,
        "POST",
        "/v1/revocations",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        &body,
    );
    assert_eq!(r.status, 201, "{}", r.body);
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
