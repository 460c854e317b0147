//! Tests of the real `revocation-feed` binary: the crash test (a stream of
//! admin writes, SIGKILL mid-stream, over and over with compaction running
//! every second; after each restart every acknowledged revocation must be
//! there) and the command line (`revoke`, environment variables, usage).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hyper::Method;
use revocation_feed::client::HttpClient;
use revocation_protocol::FeedResponse;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN: &str = "crash-test-admin";

struct Feed {
    child: Child,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Feed {
    fn start(dir: &Path) -> Feed {
        // The admin token comes from the environment, as in production.
        let mut child = Command::new(env!("CARGO_BIN_EXE_revocation-feed"))
            .arg("serve")
            .arg("--data")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0"])
            .env("REVOCATION_FEED_ADMIN_TOKEN", ADMIN)
            // Entries written with exp = now expire at once, so every
            // maintenance pass has something to compact.
            .args(["--compact-interval-seconds", "1"])
            .args(["--expiry-grace-seconds", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn revocation-feed");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("server did not start:\n{}", log.lock().unwrap()));
        Feed { child, base, log }
    }

    fn kill9(mut self) {
        // Child::kill is SIGKILL on Unix: no shutdown path runs.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
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
        let feed = Feed::start(dir.path());
        let started = Instant::now();
        let mut writers = Vec::new();
        for w in 0..4 {
            let (client, base) = (client.clone(), feed.base.clone());
            let (acked, max_acked_seq) = (acked.clone(), max_acked_seq.clone());
            writers.push(tokio::spawn(async move {
                let url = format!("{base}/v1/revocations");
                let auth = format!("Bearer {ADMIN}");
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
        let log = feed.log.clone();
        feed.kill9();
        compactions += log.lock().unwrap().matches("compacted the log").count();
        for w in writers {
            w.await.unwrap();
        }

        let feed = Feed::start(dir.path());
        let snap = snapshot(&client, &feed.base).await;
        let held: BTreeSet<String> = snap.revoked.iter().map(|t| t.jti.clone()).collect();
        let want = acked.lock().unwrap().clone();
        let missing: Vec<&String> = want.difference(&held).collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} acknowledged revocations lost, e.g. {:?}\nlog before the kill:\n{}",
            missing.len(),
            &missing[..missing.len().min(5)],
            log.lock().unwrap()
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
    let feed = Feed::start(dir.path());
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
            ADMIN,
            "--jti",
            "cli-jti",
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
    assert_eq!(snap.revoked_subjects[0].sub, "cli-sub");
    assert_eq!(snap.revoked_subjects[0].before, 1_700_000_000);

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
    let (code, _, err) = cli(&["serve"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("--data"), "{err}");
    let (code, _, err) = cli(
        &[
            "serve",
            "--data",
            "/nonexistent/x",
            "--redis",
            "redis://127.0.0.1:1",
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = cli(
        &[
            "revoke",
            "--url",
            "http://127.0.0.1:1",
            "--admin-token",
            "t",
            "--jti",
            "j",
            "--exp",
            "0",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("--exp: must be a positive integer"), "{err}");
    let (code, _, err) = cli(
        &[
            "revoke",
            "--url",
            "http://127.0.0.1:1",
            "--admin-token",
            "t",
            "--sub",
            "s",
            "--exp",
            "5",
        ],
        &[],
    );
    assert_eq!(code, 2, "--sub needs --before: {err}");
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
}
