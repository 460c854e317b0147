//! Fault injection: an Envoy configuration reload and a hot
//! restart while traffic flows. Decisions must stay right through the switch
//! (valid token -> 200, no token -> 401, revoked token -> never allowed), the
//! new configuration must apply afterwards, and revocations must still be
//! enforced by the new VMs / the new process.
//!
//! Both builds run these (`JWT_AUTH_MODULE`): the wasm module's VMs and
//! their shared data, or the native module's configurations, each of which
//! holds its own revocation set (so every listener update of the native
//! build starts from the feed again, as a new `vm_id` does for wasm).
//!
//! The Envoy processes are managed here rather than by `testkit::Envoy`: the
//! listener comes from a file (LDS, `path_config_source`, replaced by an
//! atomic rename) and hot restart needs two processes sharing a base id
//! and the listen socket, on a fixed port. The bootstrap itself is the one
//! `testkit::EnvoyBuilder::bootstrap` writes.
//!
//! Envoy 1.40 behaviour these tests rely on: a listener update that changes
//! only the filter chain is applied in place (the socket stays, new
//! connections get the new chain, old connections drain over
//! `--drain-time-s`); a new `vm_id` gets new VMs with their own shared data
//! (wasm), a new filter configuration gets a new state (native);
//! a hot-restarted child takes over the listen socket from its parent, which
//! stops accepting once the child is up and exits after
//! `--parent-shutdown-time-s`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::envoy_process::{tail, unique_base_id};
use testkit::*;

const ISS: &str = "https://issuer.test";
const SECRET: &[u8] = b"reload-feed-secret";
const READ_TOKEN: &str = "reload-feed-read-token";
const POLL_MS: u64 = 1000;

// ----------------------------------------------------------------- config --

struct Plugin {
    /// Extra rules (before the catch-all).
    extra_rules: Vec<Value>,
    on_stale: &'static str,
    max_staleness: u64,
    sync_interval_ms: u64,
}

fn plugin_config(p: &Plugin) -> Value {
    let mut rules = vec![json!({"match": {"prefix": "/healthz"}, "requires": "none"})];
    rules.extend(p.extra_rules.iter().cloned());
    rules.push(json!({"match": {"prefix": "/"}, "requires": {"providers": ["main"]}}));
    use base64::Engine as _;
    json!({
        "realm": "api",
        "providers": [{
            "name": "main", "issuer": ISS, "audiences": ["api"],
            "jwks": jwks([Key::hs(256).jwk(Some("HS256"))]),
            "claim_to_headers": [{"claim": "sub", "header": "x-user-id"}]
        }],
        "rules": rules,
        "revocation": {
            "cluster": "revocation_feed", "poll_interval_ms": POLL_MS, "timeout_ms": 3000,
            "bearer_token": READ_TOKEN,
            "hmac_secret_base64": base64::engine::general_purpose::STANDARD.encode(SECRET),
            "max_staleness_seconds": p.max_staleness, "on_stale": p.on_stale,
            "sync_interval_ms": p.sync_interval_ms, "max_backoff_ms": 1000
        }
    })
}

fn token(sub: &str, jti: &str) -> String {
    let now = now();
    mint(
        "HS256",
        &Key::hs(256),
        &json!({}),
        &json!({"iss": ISS, "aud": "api", "sub": sub, "jti": jti, "iat": now - 5,
                "exp": now + 3600}),
    )
}

/// The bootstrap testkit writes for this plugin configuration, with the
/// listener on a fixed port (a hot-restarted child and an updated listener
/// must bind the same address).
fn bootstrap(
    plugin: &Value,
    vm_id: &str,
    feed: u16,
    upstream: u16,
    port: u16,
    dir: &Path,
) -> Value {
    let mut b = Envoy::builder()
        .plugin_config_json(plugin)
        .vm_id(vm_id)
        .cluster("revocation_feed", feed)
        .bootstrap(upstream, &dir.join("access.log"));
    b["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = json!(port);
    b
}

/// Moves the listener of `bootstrap` into an LDS file and points the
/// bootstrap at it.
fn to_lds(mut b: Value, lds_path: &Path) -> Value {
    let listener = b["static_resources"]["listeners"][0].clone();
    b["static_resources"]
        .as_object_mut()
        .unwrap()
        .remove("listeners");
    write_lds(lds_path, &listener, 1);
    b["node"] = json!({"id": "reload-test", "cluster": "reload-test"});
    b["dynamic_resources"] = json!({"lds_config": {
        "resource_api_version": "V3",
        "path_config_source": {"path": lds_path.display().to_string()}
    }});
    b
}

/// Replaces the LDS file atomically (write, then rename over it): the only
/// change Envoy's file watch acts on.
fn write_lds(lds_path: &Path, listener: &Value, version: u32) {
    let mut l = listener.clone();
    l["@type"] = json!("type.googleapis.com/envoy.config.listener.v3.Listener");
    let doc = json!({"version_info": version.to_string(), "resources": [l]});
    let tmp = lds_path.with_extension(format!("tmp{version}"));
    fs::write(&tmp, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    fs::rename(&tmp, lds_path).unwrap();
}

// ----------------------------------------------------------------- process --

fn temp_dir(what: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join("jwt-auth-testkit").join(format!(
        "{what}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        random_id()
    ));
    fs::create_dir_all(&d).unwrap();
    d
}

/// Envoy on `config` with its files in `dir`, two workers, a short drain;
/// `hot_restart` = Some((base id, epoch)).
fn start_envoy(config: &Path, dir: &Path, hot_restart: Option<(u32, u32)>) -> EnvoyProcess {
    let epoch = hot_restart.map_or(0, |(_, e)| e);
    let opts = ProcessOptions {
        concurrency: 2,
        hot_restart,
        // Old connections / the parent drain for 1 s; the parent exits 3 s
        // after the child started.
        extra_args: ["--drain-time-s", "1", "--parent-shutdown-time-s", "3"]
            .map(String::from)
            .to_vec(),
        name: format!("-{epoch}"),
        env: Envoy::builder().process_env(),
        ..ProcessOptions::default()
    };
    EnvoyProcess::start(config, dir, &opts, Duration::from_secs(20))
        .unwrap_or_else(|log| panic!("Envoy epoch {epoch} did not start: {}", tail(&log, 40)))
}

// ---------------------------------------------------------------- traffic --

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Valid,
    Revoked,
    Missing,
    Bypass,
}

#[derive(Debug)]
struct Sample {
    kind: Kind,
    /// Milliseconds since the traffic started.
    at_ms: u128,
    /// Status, or the connection error.
    result: Result<(u16, String), String>,
}

/// One request on a fresh connection; errors are returned, not panics.
fn try_get(port: u16, path: &str, auth: Option<&str>) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let auth = auth.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let r = testkit::http::read_response(&mut BufReader::new(s), false)
        .map_err(|e| format!("read: {e}"))?;
    let user = if r.status == 200 {
        Echo::parse(&r.body)
            .header("x-user-id")
            .first()
            .cloned()
            .unwrap_or_default()
    } else {
        format!("{} {}", r.header("www-authenticate").unwrap_or(""), r.body)
    };
    Ok((r.status, user))
}

/// Requests in a loop from `threads` threads until stopped.
struct Traffic {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    handles: Vec<thread::JoinHandle<()>>,
    started: Instant,
}

impl Traffic {
    fn start(port: u16, threads: usize, valid: &str, revoked: &str) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let handles = (0..threads)
            .map(|t| {
                let (stop, samples) = (stop.clone(), samples.clone());
                let (valid, revoked) = (valid.to_string(), revoked.to_string());
                thread::spawn(move || {
                    let mut i = t;
                    while !stop.load(Ordering::SeqCst) {
                        let kind = [Kind::Valid, Kind::Revoked, Kind::Missing, Kind::Bypass][i % 4];
                        i += 1;
                        let result = match kind {
                            Kind::Valid => try_get(port, "/api/x", Some(&valid)),
                            Kind::Revoked => try_get(port, "/api/x", Some(&revoked)),
                            Kind::Missing => try_get(port, "/api/x", None),
                            Kind::Bypass => try_get(port, "/healthz", None),
                        };
                        let at_ms = started.elapsed().as_millis();
                        samples.lock().unwrap().push(Sample {
                            kind,
                            at_ms,
                            result,
                        });
                    }
                })
            })
            .collect();
        Traffic {
            stop,
            samples,
            handles,
            started,
        }
    }

    fn now_ms(&self) -> u128 {
        self.started.elapsed().as_millis()
    }

    fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        for h in self.handles {
            h.join().unwrap();
        }
        std::mem::take(&mut *self.samples.lock().unwrap())
    }
}

/// What a decision must be. `stale_ok`: 503 (revocation data stale, deny
/// policy) is acceptable for token-bearing requests.
fn judge(s: &Sample, valid_user: &str, stale_ok: bool) -> Result<(), String> {
    let (status, info) = match &s.result {
        Ok(r) => r,
        Err(e) => return Err(format!("connection error: {e}")),
    };
    let stale = stale_ok && *status == 503 && info.contains("revocation data stale");
    match s.kind {
        Kind::Valid if *status == 200 && info == valid_user => Ok(()),
        Kind::Valid if stale => Ok(()),
        Kind::Revoked if *status == 401 && info.contains("token revoked") => Ok(()),
        Kind::Revoked if stale => Ok(()),
        Kind::Missing if *status == 401 && info.starts_with("Bearer realm=\"api\" {") => Ok(()),
        Kind::Bypass if *status == 200 => Ok(()),
        _ => Err(format!("{status} {info:?}")),
    }
}

/// Prints a summary, returns the wrong decisions (kind, time, what).
fn wrong_decisions(
    what: &str,
    samples: &[Sample],
    valid_user: &str,
    stale_ok: bool,
) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut counts = std::collections::BTreeMap::new();
    for s in samples {
        let key = match &s.result {
            Ok((st, _)) => format!("{:?} {st}", s.kind),
            Err(_) => format!("{:?} conn-error", s.kind),
        };
        *counts.entry(key).or_insert(0u32) += 1;
        if let Err(why) = judge(s, valid_user, stale_ok) {
            wrong.push(format!("{:?} at {} ms: {why}", s.kind, s.at_ms));
        }
    }
    println!("{what}: {} requests: {counts:?}", samples.len());
    // Wrong decisions grouped into runs (gaps under 500 ms), for the report.
    let mut runs: Vec<(u128, u128, usize)> = Vec::new();
    for s in samples
        .iter()
        .filter(|s| judge(s, valid_user, stale_ok).is_err())
    {
        match runs.last_mut() {
            Some((_, end, n)) if s.at_ms <= *end + 500 => {
                *end = s.at_ms;
                *n += 1;
            }
            _ => runs.push((s.at_ms, s.at_ms, 1)),
        }
    }
    for (start, end, n) in &runs {
        println!("  wrong decisions from {start} ms to {end} ms: {n}");
    }
    // 503 "revocation data stale" (deny policy) runs, for the record.
    let mut stale: Vec<(u128, u128, usize)> = Vec::new();
    for s in samples.iter().filter(|s| matches!(&s.result, Ok((503, _)))) {
        match stale.last_mut() {
            Some((_, end, n)) if s.at_ms <= *end + 500 => {
                *end = s.at_ms;
                *n += 1;
            }
            _ => stale.push((s.at_ms, s.at_ms, 1)),
        }
    }
    for (start, end, n) in &stale {
        println!("  503 from {start} ms to {end} ms: {n}");
    }
    wrong
}

/// Every worker refuses the revoked token (several fresh connections).
fn refused_everywhere(port: u16, revoked: &str) -> bool {
    (0..12).all(|_| {
        matches!(try_get(port, "/api/x", Some(revoked)), Ok((401, w)) if w.contains("token revoked"))
    })
}

// ------------------------------------------------------------------ tests --

struct Setup {
    feed: FakeFeed,
    _upstream: EchoUpstream,
    dir: PathBuf,
    port: u16,
    upstream_port: u16,
    valid: String,
    revoked: String,
}

fn setup(what: &str) -> Setup {
    let feed = FakeFeed::start(SECRET, READ_TOKEN);
    feed.revoke_jti("jti-revoked");
    let upstream = EchoUpstream::start();
    Setup {
        upstream_port: upstream.port(),
        _upstream: upstream,
        feed,
        dir: temp_dir(what),
        port: free_port(),
        valid: token("alice", "jti-valid"),
        revoked: token("mallory", "jti-revoked"),
    }
}

/// (a) + (b): the listener's filter configuration is replaced through LDS
/// (an atomic rename of the file) while traffic flows: first a rule change
/// in the same VM (same `vm_id`), then a new `vm_id` (new VMs, new shared
/// data, so the set must come from the feed again; the native build starts
/// a new configuration with its own set on both). No request gets a wrong
/// decision, the new rules apply, the revoked token stays refused.
///
/// `sync_interval_ms` is the poll interval here (1 s, allowed by the
/// configuration), and the feed answers a full sync 1.5 s late: both widen
/// the window between a new plugin instance taking traffic and its first
/// sync, so a gap there is hit deterministically instead of by chance.
#[test]
fn listener_reload_keeps_decisions_and_revocations() {
    let s = setup("reload");
    let plugin = |extra: Vec<Value>| {
        plugin_config(&Plugin {
            extra_rules: extra,
            on_stale: "deny",
            max_staleness: 10,
            sync_interval_ms: POLL_MS,
        })
    };
    let v1 = plugin(vec![]);
    let open = json!({"match": {"prefix": "/open"}, "requires": "none"});
    let v2 = plugin(vec![open.clone()]);
    let open2 = json!({"match": {"prefix": "/open2"}, "requires": "none"});
    let v3 = plugin(vec![open2, open]);
    let lds = s.dir.join("lds.json");
    let boot =
        |cfg: &Value, vm: &str| bootstrap(cfg, vm, s.feed.port(), s.upstream_port, s.port, &s.dir);
    let config_path = s.dir.join("envoy.json");
    fs::write(
        &config_path,
        to_lds(boot(&v1, "jwt_auth"), &lds).to_string(),
    )
    .unwrap();
    let envoy = start_envoy(&config_path, &s.dir, None);
    let listener = |b: Value| b["static_resources"]["listeners"][0].clone();
    assert!(
        wait_until(Duration::from_secs(10), || refused_everywhere(
            s.port, &s.revoked
        )),
        "the revoked token is not refused before any reload:\n{}",
        envoy.log_tail(40)
    );
    assert_eq!(try_get(s.port, "/open", None).unwrap().0, 401);
    let updates = envoy
        .stat("listener_manager.lds.update_success")
        .unwrap_or(0);

    let traffic = Traffic::start(s.port, 2, &s.valid, &s.revoked);
    thread::sleep(Duration::from_millis(1000));

    // Reload 1: a new rule, same vm_id.
    let t1 = traffic.now_ms();
    write_lds(&lds, &listener(boot(&v2, "jwt_auth")), 2);
    assert!(
        wait_until(Duration::from_secs(10), || envoy
            .stat("listener_manager.lds.update_success")
            .unwrap_or(0)
            > updates),
        "LDS update 1 not applied:\n{}",
        envoy.log_tail(40)
    );
    assert!(
        wait_until(Duration::from_secs(5), || try_get(s.port, "/open", None)
            .is_ok_and(|r| r.0 == 200)),
        "the new rule does not apply after reload 1"
    );
    thread::sleep(Duration::from_millis(2500));

    // Reload 2: a new vm_id (new VMs, empty shared data), slow first sync.
    s.feed.set_full_sync_delay(1500);
    let full_before = s.feed.full_syncs();
    let t2 = traffic.now_ms();
    write_lds(&lds, &listener(boot(&v3, "jwt_auth_v3")), 3);
    assert!(
        wait_until(Duration::from_secs(10), || try_get(s.port, "/open2", None)
            .is_ok_and(|r| r.0 == 200)),
        "the new rule does not apply after reload 2:\n{}",
        envoy.log_tail(40)
    );
    assert!(
        wait_until(Duration::from_secs(8), || s.feed.full_syncs() > full_before),
        "the new VMs (or configuration) never fetched the full set from the feed"
    );
    thread::sleep(Duration::from_millis(3000));
    let samples = traffic.finish();
    println!("reload 1 at {t1} ms, reload 2 at {t2} ms");
    let wrong = wrong_decisions("listener reload", &samples, "alice", true);
    let revoked_after_2 = samples
        .iter()
        .filter(|x| x.kind == Kind::Revoked && x.at_ms > t2)
        .count();
    assert!(revoked_after_2 > 20, "too little traffic after reload 2");
    assert!(
        refused_everywhere(s.port, &s.revoked),
        "the revoked token is not refused after the reloads"
    );
    assert!(
        wrong.is_empty(),
        "{} wrong decisions during the reloads (reload 1 at {t1} ms, reload 2 at {t2} ms):\n  {}",
        wrong.len(),
        wrong
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

/// Epoch 0 of a hot-restartable Envoy under `on_stale: deny`, once it
/// refuses the revoked token everywhere: (bootstrap path, base id, process).
fn start_epoch_zero(s: &Setup, max_staleness: u64) -> (PathBuf, u32, EnvoyProcess) {
    let cfg = plugin_config(&Plugin {
        extra_rules: vec![],
        on_stale: "deny",
        max_staleness,
        sync_interval_ms: 100,
    });
    let config_path = s.dir.join("envoy.json");
    let b = bootstrap(
        &cfg,
        "jwt_auth",
        s.feed.port(),
        s.upstream_port,
        s.port,
        &s.dir,
    );
    fs::write(&config_path, b.to_string()).unwrap();
    let base = unique_base_id();
    let parent = start_envoy(&config_path, &s.dir, Some((base, 0)));
    assert!(
        wait_until(Duration::from_secs(10), || refused_everywhere(
            s.port, &s.revoked
        )),
        "epoch 0 does not refuse the revoked token:\n{}",
        parent.log_tail(40)
    );
    (config_path, base, parent)
}

/// (c) hot restart with the feed up: epoch 1 takes over the listen socket,
/// epoch 0 drains and exits. The new process has no shared data: it must
/// get the set from the feed before it lets a token through (its first,
/// full sync is made slow here so the window is wide).
#[test]
fn hot_restart_keeps_revocations() {
    let s = setup("hotrestart");
    let (config_path, base, mut parent) = start_epoch_zero(&s, 10);
    let traffic = Traffic::start(s.port, 2, &s.valid, &s.revoked);
    thread::sleep(Duration::from_millis(500));
    s.feed.set_full_sync_delay(1500);
    let t1 = traffic.now_ms();
    let child = start_envoy(&config_path, &s.dir, Some((base, 1)));
    let live = traffic.now_ms();
    assert!(
        wait_until(Duration::from_secs(8), || parent.exited()),
        "epoch 0 did not exit after the hot restart"
    );
    let parent_gone = traffic.now_ms();
    thread::sleep(Duration::from_millis(1000));
    let samples = traffic.finish();
    println!("epoch 1 started at {t1} ms, LIVE at {live} ms, epoch 0 gone at {parent_gone} ms");
    let wrong = wrong_decisions("hot restart, feed up", &samples, "alice", true);
    assert!(
        samples.iter().filter(|x| x.at_ms > parent_gone).count() > 20,
        "too little traffic after the restart"
    );
    assert!(
        refused_everywhere(s.port, &s.revoked),
        "epoch 1 does not refuse the revoked token:\n{}",
        child.log_tail(40)
    );
    assert!(
        wrong.is_empty(),
        "{} wrong decisions across the hot restart (epoch 1 started at {t1} ms, LIVE at {live} ms):\n  {}",
        wrong.len(),
        wrong.iter().take(40).cloned().collect::<Vec<_>>().join("\n  ")
    );
}

/// (c) hot restart during a feed outage, `on_stale: deny`,
/// `max_staleness_seconds: 2`: the new process can never learn the set, so
/// a token-bearing request gets 503 (stale) or 401, never an allow of the
/// revoked token.
#[test]
fn hot_restart_during_feed_outage_never_allows_a_revoked_token() {
    let s = setup("hotrestart-outage");
    let (config_path, base, mut parent) = start_epoch_zero(&s, 2);
    s.feed.set_mode(FeedMode::Status(503));
    let traffic = Traffic::start(s.port, 2, &s.valid, &s.revoked);
    thread::sleep(Duration::from_millis(300));
    let t1 = traffic.now_ms();
    let child = start_envoy(&config_path, &s.dir, Some((base, 1)));
    assert!(
        wait_until(Duration::from_secs(8), || parent.exited()),
        "epoch 0 did not exit after the hot restart"
    );
    thread::sleep(Duration::from_millis(1000));
    let samples = traffic.finish();
    let wrong = wrong_decisions("hot restart, feed down", &samples, "alice", true);
    // Once stale, the new process refuses token-bearing requests with 503.
    let last = try_get(s.port, "/api/x", Some(&s.valid)).unwrap();
    assert_eq!(
        last.0, 503,
        "epoch 1 is not denying on stale data: {last:?}"
    );
    let _ = child;
    assert!(
        wrong.is_empty(),
        "{} wrong decisions across the hot restart during the outage (epoch 1 started at {t1} ms):\n  {}",
        wrong.len(),
        wrong.iter().take(40).cloned().collect::<Vec<_>>().join("\n  ")
    );
}
