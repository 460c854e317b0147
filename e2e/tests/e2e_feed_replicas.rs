//! Feed replicas that fail over, end to end: two reference feed servers
//! (`revocation-feed serve --redis`) on one Redis (Debian's redis-server,
//! with its data on disk), behind one Envoy cluster that the filter polls.
//! Envoy's round robin and active health checks (`/healthz`) do all the
//! failing over; the filter knows one cluster and nothing of replicas.
//!
//! Under load, one replica is killed with SIGKILL while revocations are
//! written, then Redis itself is killed and started again. Every jti
//! revoked along the way is refused by every worker afterwards, the proxies
//! keep their set while the feed is down (`on_stale` deciding what tokens
//! get meanwhile), and no proxy ever needs a snapshot again: the cursor of
//! one replica is valid on the other and across the Redis restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::*;

const SECRETS: FeedSecrets = FeedSecrets {
    read_token: "9c1e7a3f5b8d2046e1c9a7f3b5d8e2a4c6f0b1d3e5a7c9f1",
    admin_token: "e4b2d8f6a0c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a7c9",
    hmac_secret_base64: "Zk3q8Vw1rT6yB0nM4xC7hJ2sD9gL5pA1eU8iO3kR6tY=",
};
const ISSUER: &str = "https://replicas.test";
/// The health-checked cluster both proxies poll.
const CLUSTER: &str = "revocation_feed";

fn replica(redis: &RedisServer) -> FeedServer {
    FeedServer::start(&["--redis", &redis.url()], &[], SECRETS)
}

/// Envoy (2 workers) polling both replicas through one cluster, with the
/// filter's revocation defaults and `revocation` on top.
fn proxy(replicas: &[u16], key: &Key, revocation: Value) -> Envoy {
    let mut config = json!({
        "realm": "api",
        "providers": [{"name": "main", "issuer": ISSUER, "audiences": ["api"],
                       "jwks": {"keys": [key.jwk(Some("HS256"))]}}],
        "revocation": {"cluster": CLUSTER, "authority": "revocation-feed",
                       "bearer_token": SECRETS.read_token,
                       "hmac_secret_base64": SECRETS.hmac_secret_base64}
    });
    for (name, value) in revocation.as_object().unwrap() {
        config["revocation"][name] = value.clone();
    }
    Envoy::builder()
        .plugin_config_json(&config)
        .concurrency(2)
        .balanced_cluster(CLUSTER, replicas, "/healthz")
        .start()
}

fn token(key: &Key, jti: &str) -> String {
    let now = now();
    mint(
        "HS256",
        key,
        &json!({}),
        &json!({"iss": ISSUER, "aud": "api", "sub": "rita", "jti": jti,
                "iat": now - 10, "exp": now + 3600}),
    )
}

fn status(envoy: &Envoy, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    envoy
        .get("/r", &[("authorization", &auth), ("connection", "close")])
        .status
}

/// Whether every token gets 401 on several fresh connections (which spread
/// over the workers).
fn all_refused(envoy: &Envoy, tokens: &[String]) -> bool {
    tokens
        .iter()
        .all(|t| (0..4).all(|_| status(envoy, t) == 401))
}

/// Waits until every token is refused on every proxy; panics with `what`
/// and the log of the proxy that did not otherwise.
fn wait_all_refused(proxies: &[&Envoy], tokens: &[String], limit: Duration, what: &str) {
    for envoy in proxies {
        assert!(
            wait_until(limit, || all_refused(envoy, tokens)),
            "{what}; log:\n{}",
            envoy.log()
        );
    }
}

/// Revokes `jti` through the first replica that accepts it, trying them in
/// turn from `first` every 100 ms, as an operator's client retries; panics
/// after `limit`. Returns the replica that took it.
fn revoke(replicas: &[&FeedServer], first: usize, jti: &str, limit: Duration) -> usize {
    let exp = now() + 3600;
    let started = Instant::now();
    let mut errors = Vec::new();
    for attempt in 0.. {
        let at = (first + attempt) % replicas.len();
        match replicas[at].try_revoke(&[jti.to_string()], exp) {
            Ok(()) => return at,
            Err(e) => errors.push(e),
        }
        assert!(
            started.elapsed() < limit,
            "{jti} was never accepted: {errors:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
    unreachable!()
}

/// Requests with a token nobody revoked, back to back, until stopped; the
/// statuses seen, counted.
struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(u16, usize)>>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Load {
    fn start(port: u16, token: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..2)
            .map(|_| {
                let (stop, seen) = (stop.clone(), seen.clone());
                let auth = format!("Bearer {token}");
                thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let mut conn = Connection::open(port);
                        for _ in 0..20 {
                            let s = conn.send("GET", "/r", &[("authorization", &auth)], b"");
                            let mut seen = seen.lock().unwrap();
                            match seen.iter_mut().find(|(st, _)| *st == s.status) {
                                Some((_, n)) => *n += 1,
                                None => seen.push((s.status, 1)),
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            seen,
            threads,
        }
    }

    /// Stops and returns (status, count) pairs.
    fn finish(self) -> Vec<(u16, usize)> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().unwrap();
        }
        let mut seen = self.seen.lock().unwrap().clone();
        seen.sort();
        seen
    }
}

/// Reset snapshots a replica served since it started.
fn resets_served(replica: &FeedServer) -> u64 {
    replica.metric(
        "revocation_feed_requests_total",
        "endpoint=\"feed\",outcome=\"reset\"",
    )
}

#[test]
fn replicas_fail_over_behind_one_cluster_and_no_revocation_is_lost() {
    let mut redis = RedisServer::start();
    let mut a = replica(&redis);
    let b = replica(&redis);
    let key = Key::hs(256);
    let mut revoked: Vec<String> = Vec::new();
    for i in 0..3 {
        let jti = format!("jti-before-{i}");
        revoke(&[&a, &b], i, &jti, Duration::from_secs(5));
        revoked.push(jti);
    }
    let ports = [a.port(), b.port()];
    // The default configuration (long polls of 15 s, `on_stale: serve`)...
    let serving = proxy(&ports, &key, json!({}));
    // ...and one that refuses on data older than 4 s (held polls of 2 s).
    let denying = proxy(
        &ports,
        &key,
        json!({"on_stale": "deny", "max_staleness_seconds": 4, "max_backoff_ms": 2000}),
    );
    let proxies = [&serving, &denying];
    let tokens = |jtis: &[String]| jtis.iter().map(|j| token(&key, j)).collect::<Vec<_>>();
    wait_all_refused(
        &proxies,
        &tokens(&revoked),
        Duration::from_secs(15),
        "the first sync did not bring the revocations",
    );
    let fine = token(&key, "jti-never-revoked");
    let load = [
        Load::start(serving.port(), &fine),
        Load::start(denying.port(), &fine),
    ];
    // Envoy spreads the polls over both replicas: the one about to die has
    // answered some.
    let polls = |r: &FeedServer| r.metric("revocation_feed_requests_total", "endpoint=\"feed\"");
    assert!(
        wait_until(Duration::from_secs(10), || polls(&a) > 0 && polls(&b) > 0),
        "the polls did not reach both replicas"
    );
    thread::sleep(Duration::from_millis(300));
    let resets_before = resets_served(&b);

    // A replica dies with revocations in flight: written through it just
    // before, through the survivor after.
    for i in 0..2 {
        let jti = format!("jti-kill-{i}");
        revoke(&[&a, &b], i, &jti, Duration::from_secs(5));
        revoked.push(jti);
    }
    a.kill();
    for i in 2..6 {
        let jti = format!("jti-kill-{i}");
        revoke(&[&a, &b], i, &jti, Duration::from_secs(5));
        revoked.push(jti);
        thread::sleep(Duration::from_millis(100));
    }
    wait_all_refused(
        &proxies,
        &tokens(&revoked),
        Duration::from_secs(15),
        "revocations lost when a replica died",
    );
    for envoy in proxies {
        assert!(
            envoy
                .stat(&format!("cluster.{CLUSTER}.health_check.failure"))
                .unwrap_or(0)
                >= 1,
            "Envoy's health checks did not see the dead replica"
        );
        assert_eq!(
            envoy.stat(&format!("cluster.{CLUSTER}.membership_healthy")),
            Some(1)
        );
    }

    // Redis goes away: the survivor says it is unhealthy, the proxies keep
    // their set, and revocations written meanwhile wait for Redis.
    let failed_before = denying
        .stat("wasmcustom.jwt_auth.revocation.fetch_failed")
        .unwrap_or(0);
    redis.kill();
    let down = Instant::now();
    assert!(
        wait_until(Duration::from_secs(5), || !b.healthy()),
        "the feed reports healthy without its Redis"
    );
    let outage_jtis: Vec<String> = (0..3).map(|i| format!("jti-outage-{i}")).collect();
    thread::scope(|scope| {
        let writer = scope.spawn(|| {
            for jti in &outage_jtis {
                revoke(&[&b], 0, jti, Duration::from_secs(60));
            }
        });
        // `deny`: once the data is older than 4 s every token gets 503.
        assert!(
            wait_until(Duration::from_secs(15), || (0..4)
                .all(|_| status(&denying, &fine) == 503)),
            "on_stale deny did not apply while the feed was down"
        );
        assert!(
            denying
                .stat("wasmcustom.jwt_auth.revocation.fetch_failed")
                .unwrap_or(0)
                > failed_before,
            "the failed polls were not counted"
        );
        assert!(denying.wait_for_log("keeping the last good set", Duration::from_secs(5)));
        // `serve`: the last good set decides. (Its poll may be held by the
        // survivor all along: a held poll outlives the outage when it ends
        // after Redis is back.)
        assert!(all_refused(&serving, &tokens(&revoked)));
        assert_eq!(status(&serving, &fine), 200);
        // Long enough for the staleness to show, and for every held poll
        // to have ended.
        let outage = Duration::from_secs(6);
        thread::sleep(outage.saturating_sub(down.elapsed()));
        redis.restart();
        writer.join().unwrap();
    });
    revoked.extend(outage_jtis);
    assert!(
        wait_until(Duration::from_secs(5), || b.healthy()),
        "the feed stays unhealthy with Redis back"
    );
    wait_all_refused(
        &proxies,
        &tokens(&revoked),
        Duration::from_secs(45),
        "no catching up after Redis came back",
    );
    assert!(
        wait_until(Duration::from_secs(10), || (0..4)
            .all(|_| status(&denying, &fine) == 200)),
        "on_stale deny still refuses after the feed came back"
    );
    let [serving_load, denying_load] = load.map(Load::finish);

    assert!(
        serving_load.iter().all(|(s, _)| *s == 200) && !serving_load.is_empty(),
        "the serving proxy under load answered {serving_load:?}"
    );
    assert!(
        denying_load.iter().all(|(s, _)| *s == 200 || *s == 503),
        "the denying proxy under load answered {denying_load:?}"
    );
    // The cursor from before the faults was good on the survivor and
    // after the Redis restart: no proxy needed a snapshot again.
    assert_eq!(
        resets_served(&b),
        resets_before,
        "a proxy fell back to a snapshot; feed log:\n{}",
        b.log()
    );
}
