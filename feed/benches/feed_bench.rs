//! Feed benchmark (`make feed-bench`): the real `revocation-feed` binary on
//! loopback, driven by this program on the same machine.
//!
//! - Poll throughput for 1,000 simulated proxies with 1,000 distinct cursors:
//!   a catch-up round (each proxy is 1..1,000 entries behind), then steady
//!   polling while an admin client keeps writing, then full snapshots.
//! - Admin write throughput, one entry per request, acknowledged only after
//!   the write is durable, at 1 and 32 concurrent writers.
//!
//! Backends: embedded (fsync per group commit), Redis without persistence,
//! and Redis with `appendonly yes` + `appendfsync always`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::{random_hex, redis_server, FeedProcess, RedisServer};
use hyper::Method;
use revocation_feed::client::HttpClient;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

const PROXIES: usize = 1000;
const PRELOAD: usize = 10_000;
const CONNECTIONS: usize = 64;

/// The admin token the benchmarked server is started with.
static ADMIN: LazyLock<String> = LazyLock::new(|| random_hex(32));

/// The server on `storage` (`--data DIR` or `--redis URL`).
fn start_feed(storage: &[&str]) -> FeedProcess {
    let mut args = storage.to_vec();
    args.extend_from_slice(&["--admin-token", ADMIN.as_str()]);
    FeedProcess::start(&args, &[])
}

fn now() -> u64 {
    revocation_feed::api::unix_now()
}

/// The cursor is the first field of every body the server writes; pulling it
/// out by hand keeps the load generator's CPU for the server.
fn cursor_of(body: &[u8]) -> String {
    let s = std::str::from_utf8(body).unwrap();
    let rest = s.strip_prefix("{\"cursor\":\"").expect("cursor first");
    rest[..rest.find('"').unwrap()].to_string()
}

async fn post(client: &HttpClient, base: &str, body: String) -> String {
    let r = client
        .request(
            Method::POST,
            &format!("{base}/v1/revocations"),
            &[("authorization", &format!("Bearer {}", *ADMIN))],
            Some(body.into_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["cursor"].as_str().unwrap().to_string()
}

fn entry(i: usize, exp: u64) -> String {
    if i.is_multiple_of(10) {
        format!(
            r#"{{"sub":"subject-{i:08}","before":{},"exp":{exp}}}"#,
            exp - 86_400
        )
    } else {
        format!(r#"{{"jti":"0f8c2d1e-token-{i:08}","exp":{exp}}}"#)
    }
}

/// Polls `cursors` (one per proxy) from `CONNECTIONS` concurrent clients
/// until `rounds` polls per proxy are done or `budget` runs out; returns
/// (requests, bytes, seconds).
async fn poll_round(
    client: &HttpClient,
    base: &str,
    cursors: Arc<Vec<std::sync::Mutex<Option<String>>>>,
    rounds: usize,
    budget: Duration,
) -> (u64, u64, f64) {
    let requests = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let (client, base) = (client.clone(), base.to_string());
        let (cursors, requests, bytes) = (cursors.clone(), requests.clone(), bytes.clone());
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..rounds {
                for p in (c..cursors.len()).step_by(CONNECTIONS) {
                    if start.elapsed() > budget {
                        return;
                    }
                    let since = cursors[p].lock().unwrap().clone();
                    let url = format!(
                        "{base}{}",
                        revocation_protocol::feed_request_path("/v1/revocations", since.as_deref())
                    );
                    let r = match client.request(Method::GET, &url, &[], None).await {
                        Ok(r) => r,
                        Err(e) => {
                            // Counted and reported rather than fatal, so that
                            // the check below can tell a dead server from a
                            // dropped connection.
                            eprintln!("poll failed: {e}");
                            errors.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    };
                    assert_eq!(r.status, 200);
                    bytes.fetch_add(r.body.len() as u64, Ordering::Relaxed);
                    requests.fetch_add(1, Ordering::Relaxed);
                    if since.is_some() {
                        *cursors[p].lock().unwrap() = Some(cursor_of(&r.body));
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let errors = errors.load(Ordering::Relaxed);
    assert!(errors < 10, "{errors} polls failed");
    (
        requests.load(Ordering::Relaxed),
        bytes.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64(),
    )
}

async fn bench_polls(name: &str, feed: &mut FeedProcess, out: &mut Vec<String>) {
    let client = HttpClient::new();
    let exp = now() + 86_400;
    // Preload, the last PROXIES entries one per request so that each proxy
    // can start from its own cursor.
    let bulk = PRELOAD - PROXIES;
    for chunk in (0..bulk).collect::<Vec<_>>().chunks(1000) {
        let body: Vec<String> = chunk.iter().map(|i| entry(*i, exp)).collect();
        post(&client, &feed.base, format!("[{}]", body.join(","))).await;
    }
    let mut start_cursors = Vec::with_capacity(PROXIES);
    for i in bulk..PRELOAD {
        start_cursors.push(post(&client, &feed.base, entry(i, exp)).await);
    }
    // Proxy p is p+1 entries behind the head.
    start_cursors.reverse();
    let cursors: Arc<Vec<_>> = Arc::new(
        start_cursors
            .into_iter()
            .map(|c| std::sync::Mutex::new(Some(c)))
            .collect(),
    );

    let (n, b, s) = poll_round(
        &client,
        &feed.base,
        cursors.clone(),
        1,
        Duration::from_secs(60),
    )
    .await;
    feed.check_alive();
    out.push(format!(
        "| {name} | catch-up: 1,000 proxies, 1..1,000 entries behind | {n} | {:.0} req/s | {:.1} KiB |",
        n as f64 / s,
        b as f64 / n as f64 / 1024.0
    ));

    // Steady state: a writer adds ~20 revocations/s while every proxy keeps
    // polling with its own cursor.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (client, base, stop) = (client.clone(), feed.base.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = PRELOAD;
            while !stop.load(Ordering::Relaxed) {
                post(&client, &base, entry(i, exp)).await;
                i += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let (n, b, s) = poll_round(
        &client,
        &feed.base,
        cursors.clone(),
        usize::MAX,
        Duration::from_secs(8),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    feed.check_alive();
    out.push(format!(
        "| {name} | steady: 1,000 proxies polling, 20 writes/s | {n} | {:.0} req/s | {:.2} KiB |",
        n as f64 / s,
        b as f64 / n as f64 / 1024.0
    ));

    // Full snapshots (no cursor): what a fleet restart costs.
    let none: Arc<Vec<_>> = Arc::new((0..200).map(|_| std::sync::Mutex::new(None)).collect());
    let (n, b, s) = poll_round(&client, &feed.base, none, 1, Duration::from_secs(60)).await;
    feed.check_alive();
    out.push(format!(
        "| {name} | snapshot: {} entries, no cursor | {n} | {:.0} req/s | {:.0} KiB |",
        PRELOAD,
        n as f64 / s,
        b as f64 / n as f64 / 1024.0
    ));
}

async fn bench_writes(name: &str, feed: &mut FeedProcess, out: &mut Vec<String>) {
    let client = HttpClient::new();
    let exp = now() + 86_400;
    for writers in [1usize, 32] {
        let done = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let budget = Duration::from_secs(4);
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (client, base, done) = (client.clone(), feed.base.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = 0;
                while start.elapsed() < budget {
                    let body = format!(r#"{{"jti":"write-{writers}-{w}-{i}","exp":{exp}}}"#);
                    post(&client, &base, body).await;
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        feed.check_alive();
        let n = done.load(Ordering::Relaxed);
        let s = start.elapsed().as_secs_f64();
        out.push(format!(
            "| {name} | {writers} concurrent writer{} | {n} | {:.0} writes/s | {:.2} ms |",
            if writers == 1 { "" } else { "s" },
            n as f64 / s,
            s * 1000.0 * writers as f64 / n as f64
        ));
    }
}

fn main() {
    // `cargo bench` passes --bench; nothing else is accepted.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut polls = Vec::new();
    let mut writes = Vec::new();
    rt.block_on(async {
        {
            let dir = tempfile::tempdir().unwrap();
            let mut feed = start_feed(&["--data", dir.path().to_str().unwrap()]);
            bench_polls("embedded", &mut feed, &mut polls).await;
            bench_writes("embedded (fsync)", &mut feed, &mut writes).await;
        }
        {
            let redis = redis_server();
            let mut feed = start_feed(&["--redis", &redis.url()]);
            bench_polls("redis", &mut feed, &mut polls).await;
            bench_writes("redis, no persistence", &mut feed, &mut writes).await;
        }
        {
            // testkit's default: every write fsynced before it is acknowledged.
            let redis = RedisServer::start();
            let mut feed = start_feed(&["--redis", &redis.url()]);
            bench_writes("redis, AOF fsync always", &mut feed, &mut writes).await;
        }
    });
    println!("Polls ({CONNECTIONS} client connections; the load generator shares the machine):\n");
    println!("| store | scenario | requests | throughput | mean body |");
    println!("|---|---|---|---|---|");
    for l in polls {
        println!("{l}");
    }
    println!("\nAdmin writes (one entry per request, answered after the write is durable):\n");
    println!("| store | load | writes | throughput | mean latency |");
    println!("|---|---|---|---|---|");
    for l in writes {
        println!("{l}");
    }
}
