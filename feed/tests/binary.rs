//! Tests of the real `revocation-feed` binary: the crash test (a stream of
//! admin writes, SIGKILL mid-stream, over and over with compaction running
//! every second; after each restart every acknowledged revocation must be
//! there) and the command line (`revoke`, environment variables, usage).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{random_hex, random_key_base64, FeedProcess};
use hyper::Method;
use revocation_feed::client::HttpClient;
use revocation_protocol::FeedResponse;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// An admin token the server accepts.
static ADMIN: LazyLock<String> = LazyLock::new(|| random_hex(32));

/// The crash test's server: the admin token from the environment, as in
/// production, and maintenance every second.
fn start_feed(dir: &Path) -> FeedProcess {
    let dir = dir.to_str().unwrap();
    FeedProcess::start(
        &[
            "--data",
            dir,
            // Entries written with exp = now expire at once, so every
            // maintenance pass has something to compact.
            "--compact-interval-seconds",
            "1",
            "--expiry-grace-seconds",
            "0",
        ],
        &[("REVOCATION_FEED_ADMIN_TOKEN", ADMIN.as_str())],
    )
}

async fn snapshot(client: &HttpClient, base: &str) -> FeedResponse {
    let r = client
        .request(Method::GET, &format!("{base}/v1/revocations"), &[], None)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    FeedResponse::parse(&r.body).unwrap()
}

fn seq(cursor: &str) -> u64 {
    cursor.split_once('-').unwrap().1.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_no_acknowledged_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let client = HttpClient::new();
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let max_acked_seq = Arc::new(Mutex::new(0u64));
    let mut epoch = None;
    let mut compactions = 0;
    let rounds = 5;
    for round in 0..rounds {
        let feed = start_feed(dir.path());
        let started = Instant::now();
        let mut writers = Vec::new();
        for w in 0..4 {
            let (client, base) = (client.clone(), feed.base.clone());
            let (acked, max_acked_seq) = (acked.clone(), max_acked_seq.clone());
            writers.push(tokio::spawn(async move {
                let url = format!("{base}/v1/revocations");
                let auth = format!("Bearer {}", *ADMIN);
                for i in 0.. {
                    let now = revocation_feed::api::unix_now();
                    let keep: Vec<String> = (0..=(i % 3))
                        .map(|k| format!("r{round}-w{w}-{i}-{k}"))
                        .collect();
                    let mut body: Vec<String> = keep
                        .iter()
                        .map(|j| format!(r#"{{"jti":"{j}","exp":{}}}"#, now + 3600))
                        .collect();
                    // Mostly short-lived entries, so that the dead share of
                    // the log keeps crossing the compaction threshold.
                    for k in 0..8 {
                        body.push(format!(
                            r#"{{"jti":"short-{round}-{w}-{i}-{k}","exp":{now}}}"#
                        ));
                    }
                    let resp = client
                        .request(
                            Method::POST,
                            &url,
                            &[("authorization", &auth)],
                            Some(format!("[{}]", body.join(",")).into_bytes()),
                        )
                        .await;
                    // The server is gone: the write in flight was never
                    // acknowledged, so it may or may not survive.
                    let Ok(resp) = resp else { break };
                    if resp.status != 201 {
                        break;
                    }
                    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
                    let s = seq(v["cursor"].as_str().unwrap());
                    let mut m = max_acked_seq.lock().unwrap();
                    *m = (*m).max(s);
                    acked.lock().unwrap().extend(keep);
                }
            }));
        }
        // Kill at a different point of the stream each round, late enough
        // for some compactions to have run in the later rounds.
        let at = Duration::from_millis(400 + 700 * round as u64);
        tokio::time::sleep(at.saturating_sub(started.elapsed())).await;
        let log = feed.kill9();
        compactions += log.matches("compacted the log").count();
        for w in writers {
            w.await.unwrap();
        }

        let feed = start_feed(dir.path());
        let snap = snapshot(&client, &feed.base).await;
        let held: BTreeSet<String> = snap.revoked.iter().map(|t| t.jti.clone()).collect();
        let want = acked.lock().unwrap().clone();
        let missing: Vec<&String> = want.difference(&held).collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} acknowledged revocations lost, e.g. {:?}\nlog before the kill:\n{}",
            missing.len(),
            &missing[..missing.len().min(5)],
            log
        );
        // The store's position never falls behind what a client was told.
        assert!(seq(&snap.cursor) >= *max_acked_seq.lock().unwrap());
        let this_epoch = snap.cursor.split_once('-').unwrap().0.to_string();
        assert_eq!(
            epoch.get_or_insert_with(|| this_epoch.clone()),
            &this_epoch,
            "the store identity survives restarts"
        );
        feed.kill9();
    }
    let total = acked.lock().unwrap().len();
    eprintln!("{total} acknowledged revocations over {rounds} kills, {compactions} compactions");
    assert!(total > 200, "only {total} writes were acknowledged");
    assert!(
        compactions > 0,
        "no compaction ran before a kill; the test lost its point"
    );
}

fn cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_revocation-feed"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("REVOCATION_FEED_DATA")
        .env_remove("REVOCATION_FEED_REDIS")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_command_writes_through_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let feed = start_feed(dir.path());
    let base = feed.base.clone();
    let run = move |args: Vec<String>, env: Vec<(String, String)>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        cli(&args, &env)
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let (code, out, err) = tokio::task::spawn_blocking({
        let args = s(&[
            "revoke",
            "--url",
            &base,
            "--admin-token",
            ADMIN.as_str(),
            "--jti",
            "cli-jti",
            "--iss",
            "https://idp.example.com",
            "--exp",
            "4102444800",
        ]);
        move || run(args, vec![])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("feed cursor"), "{out}");
    // URL and token from the environment; a subject revocation.
    let (code, _, err) = tokio::task::spawn_blocking({
        let args = s(&[
            "revoke",
            "--sub",
            "cli-sub",
            "--before",
            "1700000000",
            "--exp",
            "4102444800",
        ]);
        let env = vec![
            ("REVOCATION_FEED_URL".to_string(), base.clone()),
            ("REVOCATION_FEED_ADMIN_TOKEN".to_string(), ADMIN.to_string()),
        ];
        move || run(args, env)
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    let snap = snapshot(&HttpClient::new(), &feed.base).await;
    assert_eq!(snap.revoked[0].jti, "cli-jti");
    assert_eq!(
        snap.revoked[0].iss.as_deref(),
        Some("https://idp.example.com")
    );
    assert_eq!(snap.revoked_subjects[0].sub, "cli-sub");
    assert_eq!(snap.revoked_subjects[0].before, 1_700_000_000);
    assert_eq!(snap.revoked_subjects[0].iss, None, "no --iss: every issuer");

    // A wrong token is reported with the server's words and exit code 1.
    let (code, _, err) = tokio::task::spawn_blocking({
        let args = s(&[
            "revoke",
            "--url",
            &base,
            "--admin-token",
            "nope",
            "--jti",
            "x",
            "--exp",
            "4102444800",
        ]);
        move || cli(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
    })
    .await
    .unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");
    feed.kill9();
}

#[test]
fn usage_errors_are_reported() {
    // (arguments, exit code, what stderr must say)
    let revoke = "revoke --url http://127.0.0.1:1 --admin-token t";
    let cases = [
        ("serve".to_string(), 2, "--data"),
        (
            "serve --data /nonexistent/x --redis redis://127.0.0.1:1".to_string(),
            2,
            "",
        ),
        (
            format!("{revoke} --jti j --exp 0"),
            1,
            "--exp: must be a positive integer",
        ),
        (
            format!("{revoke} --sub s --before 5 --iss  --exp 5"),
            1,
            "--iss: must be a non-empty string",
        ),
        (format!("{revoke} --sub s --exp 5"), 2, "--before"),
    ];
    for (line, want_code, want_err) in cases {
        // Two spaces stand for an empty argument.
        let args: Vec<&str> = line.split(' ').collect();
        let (code, _, err) = cli(&args, &[]);
        assert_eq!(code, want_code, "{line}: {err}");
        assert!(err.contains(want_err), "{line}: {err}");
    }
    let (code, out, _) = cli(&["serve", "--help"], &[]);
    assert_eq!(code, 0);
    for flag in [
        "--data",
        "--redis",
        "--listen",
        "--read-token",
        "--admin-token",
        "--hmac-secret-base64",
        "--max-body-bytes",
        "--compact-interval-seconds",
        "REVOCATION_FEED_ADMIN_TOKEN",
    ] {
        assert!(out.contains(flag), "--help lacks {flag}");
    }
    let (code, out, _) = cli(&["revoke", "--help"], &[]);
    assert_eq!(code, 0);
    for flag in ["--jti", "--sub", "--before", "--iss", "--exp"] {
        assert!(out.contains(flag), "revoke --help lacks {flag}");
    }
}

/// `serve` on a fresh directory with `args` and `env`, expected to refuse
/// to start: its exit code and stderr.
fn refused_start(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut all = vec!["serve", "--data", data.to_str().unwrap()];
    all.extend_from_slice(args);
    if !all.contains(&"--listen") {
        all.extend_from_slice(&["--listen", "127.0.0.1:0"]);
    }
    let (code, _, err) = cli(&all, env);
    assert!(
        !data.exists(),
        "nothing is created before the credentials are checked"
    );
    (code, err)
}

#[test]
fn placeholder_and_weak_credentials_are_refused_at_start() {
    let good = random_hex(32);
    let (_, good_key) = random_key_base64();
    let short_key = "c2hvcnQta2V5LW9mLTE2LWI="; // 17 bytes
    let old_placeholder_key = "cmVwbGFjZS1tZS13aXRoLTMyLXJhbmRvbS1ieXRlcyE=";
    // (flags, environment, what the error must say)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            vec!["--read-token", "demo-read-token"],
            vec![],
            vec![
                "--read-token (REVOCATION_FEED_READ_TOKEN)",
                "15 characters, at least 32",
            ],
        ),
        (
            vec![],
            vec![(
                "REVOCATION_FEED_ADMIN_TOKEN",
                "replace-me-feed-admin-token-0123456789",
            )],
            vec!["--admin-token (REVOCATION_FEED_ADMIN_TOKEN)", "\"replace\""],
        ),
        (
            vec!["--admin-token", "abababababababababababababababababab"],
            vec![],
            vec!["--admin-token", "only 2 distinct characters"],
        ),
        (
            vec!["--admin-token", "ChangeMe-4f1c9e2b7a0d3856c1e9f2a7d3b8"],
            vec![],
            vec!["--admin-token", "\"change\""],
        ),
        (
            vec![],
            vec![("REVOCATION_FEED_HMAC_SECRET_BASE64", short_key)],
            vec![
                "--hmac-secret-base64 (REVOCATION_FEED_HMAC_SECRET_BASE64)",
                "17 bytes, at least 32",
            ],
        ),
        (
            vec!["--hmac-secret-base64", old_placeholder_key],
            vec![],
            vec!["--hmac-secret-base64", "\"replace\""],
        ),
        (
            vec!["--read-token", &good, "--admin-token", &good],
            vec![],
            vec!["--read-token", "must not also be able to write"],
        ),
        // Everything wrong at once is reported at once.
        (
            vec![
                "--read-token",
                "r",
                "--admin-token",
                "a",
                "--hmac-secret-base64",
                short_key,
            ],
            vec![],
            vec![
                "--read-token (",
                "--admin-token (",
                "--hmac-secret-base64 (",
            ],
        ),
        // The demo escape hatch is for loopback only.
        (
            vec![
                "--insecure-demo-secrets",
                "--listen",
                "0.0.0.0:0",
                "--admin-token",
                "demo",
            ],
            vec![],
            vec!["--insecure-demo-secrets is only accepted with a loopback --listen address"],
        ),
        (
            vec!["--listen", "0.0.0.0:0", "--read-token", "demo"],
            vec![("REVOCATION_FEED_INSECURE_DEMO_SECRETS", "true")],
            vec!["--insecure-demo-secrets is only accepted"],
        ),
    ];
    for (args, env, wanted) in cases {
        let (code, err) = refused_start(&args, &env);
        assert_eq!(code, 1, "{args:?} {env:?}: {err}");
        for w in wanted {
            assert!(
                err.contains(w),
                "{args:?} {env:?}: {w:?} missing in:\n{err}"
            );
        }
    }
    // Strong values start.
    let feed = FeedProcess::start(
        &[
            "--data",
            tempfile::tempdir()
                .unwrap()
                .path()
                .join("d")
                .to_str()
                .unwrap(),
        ],
        &[
            ("REVOCATION_FEED_READ_TOKEN", &random_hex(32)),
            ("REVOCATION_FEED_ADMIN_TOKEN", &good),
            ("REVOCATION_FEED_HMAC_SECRET_BASE64", &good_key),
        ],
    );
    drop(feed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_demo_secrets_start_a_loopback_demo_with_a_warning() {
    // The values `make run` gives the demo feed.
    let dir = tempfile::tempdir().unwrap();
    let feed = FeedProcess::start(
        &[
            "--data",
            dir.path().to_str().unwrap(),
            "--insecure-demo-secrets",
        ],
        &[
            ("REVOCATION_FEED_READ_TOKEN", "demo-read-token"),
            ("REVOCATION_FEED_ADMIN_TOKEN", "demo-admin-token"),
            (
                "REVOCATION_FEED_HMAC_SECRET_BASE64",
                "ZGVtby1mZWVkLXNpZ25pbmctc2VjcmV0",
            ),
        ],
    );
    let r = HttpClient::new()
        .request(
            Method::GET,
            &format!("{}/v1/revocations", feed.base),
            &[("authorization", "Bearer demo-read-token")],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(revocation_protocol::verify_signature(
        b"demo-feed-signing-secret",
        &r.body,
        r.header(revocation_protocol::SIGNATURE_HEADER).unwrap()
    ));
    let log = feed.kill9();
    for setting in ["--read-token", "--admin-token", "--hmac-secret-base64"] {
        assert!(
            log.lines().any(|l| l.contains(" WARN ")
                && l.contains(setting)
                && l.contains("accepted only because of --insecure-demo-secrets")),
            "no warning for {setting}:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_held_polls_and_exits_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let feed = FeedProcess::start(&["--data", dir.path().to_str().unwrap()], &[]);
    let client = HttpClient::new();
    let first = snapshot(&client, &feed.base).await;
    let url = format!(
        "{}{}",
        feed.base,
        revocation_protocol::poll_request_path(
            revocation_protocol::REVOCATIONS_PATH,
            Some(&first.cursor),
            &common::nonce(),
            Some(25_000),
        )
    );
    let held = tokio::spawn(async move { client.request(Method::GET, &url, &[], None).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished(), "the poll is held");
    let took = tokio::task::spawn_blocking(move || feed.terminate())
        .await
        .unwrap();
    assert!(took < Duration::from_secs(3), "exit took {took:?}");
    let resp = held.await.unwrap().unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(
        FeedResponse::parse(&resp.body).unwrap().cursor,
        first.cursor
    );
}
