//! Test harness: runs the feed server in-process on a loopback port against
//! either backend, and a throwaway `redis-server` for the Redis one.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hyper::Method;
use revocation_feed::client::{HttpClient, HttpResponse};
use revocation_feed::embedded::EmbeddedStore;
use revocation_feed::redis_store::{RedisConfig, RedisStore};
use revocation_feed::{ApiConfig, AppState, FeedLimits, Server, Store};
use revocation_protocol::{Binding, BindingError, FeedResponse};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
pub use testkit::RedisServer;

pub const ADMIN: &str = "admin-token-for-tests";

/// A `redis-server` on a free loopback port, without persistence (these
/// tests restart nothing), killed on drop. The Redis tests must run: a
/// missing `redis-server` is a failure.
pub fn redis_server() -> RedisServer {
    RedisServer::start_with(&["--appendonly", "no"])
}

/// `n` bytes from /dev/urandom.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    b
}

/// `n` random bytes as lowercase hex: credentials the real binary accepts.
pub fn random_hex(n: usize) -> String {
    random_bytes(n).iter().map(|x| format!("{x:02x}")).collect()
}

/// 32 random bytes and their base64: an HMAC key the real binary accepts.
pub fn random_key_base64() -> (Vec<u8>, String) {
    use base64::Engine;
    let key = random_bytes(32);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&key);
    (key, b64)
}

/// The real `revocation-feed serve`, on a loopback port it picks itself,
/// killed on drop; stderr is collected.
pub struct FeedProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl FeedProcess {
    /// Starts `serve` with `args` (after `--listen 127.0.0.1:0`) and `env`,
    /// and waits until it listens.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> FeedProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_revocation-feed"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn revocation-feed");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not start:\n{}", log.lock().unwrap());
            }
        };
        FeedProcess {
            child,
            base,
            log,
            reader: Some(reader),
        }
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Panics if the server has exited.
    pub fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the feed server exited: {status}\n{}", self.log());
        }
    }

    /// SIGKILL (Child::kill on Unix): no shutdown path runs. Returns all
    /// the server wrote to stderr.
    pub fn kill9(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.full_log()
    }

    /// SIGTERM, then waits for the exit; returns how long that took.
    pub fn terminate(mut self) -> Duration {
        let started = Instant::now();
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        self.child.wait().unwrap();
        started.elapsed()
    }

    /// The log once the server has exited and its stderr is drained.
    fn full_log(&mut self) -> String {
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        self.log()
    }
}

impl Drop for FeedProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn now() -> u64 {
    revocation_feed::api::unix_now()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Redis,
}

#[derive(Clone)]
pub struct Opts {
    pub read_token: Option<String>,
    pub admin_token: Option<String>,
    pub hmac: Option<Vec<u8>>,
    pub max_body: usize,
    pub limits: FeedLimits,
    pub redis_history_seconds: u64,
    pub max_wait_ms: u64,
    pub max_waiting_polls: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            read_token: None,
            admin_token: Some(ADMIN.into()),
            hmac: None,
            max_body: 1 << 20,
            limits: FeedLimits::default(),
            redis_history_seconds: 3600,
            max_wait_ms: revocation_feed::api::DEFAULT_MAX_WAIT_MS,
            max_waiting_polls: revocation_feed::api::DEFAULT_MAX_WAITING_POLLS,
        }
    }
}

pub struct Harness {
    pub backend: Backend,
    pub opts: Opts,
    pub client: HttpClient,
    pub base: String,
    server: Option<Server>,
    store: Option<Store>,
    pub dir: tempfile::TempDir,
    pub redis: Option<RedisServer>,
}

impl Harness {
    pub async fn start(backend: Backend, opts: Opts) -> Harness {
        let redis = (backend == Backend::Redis).then(redis_server);
        let mut h = Harness {
            backend,
            opts,
            client: HttpClient::new(),
            base: String::new(),
            server: None,
            store: None,
            dir: tempfile::tempdir().unwrap(),
            redis,
        };
        h.launch().await;
        h
    }

    pub async fn open_store(&self) -> Store {
        match self.backend {
            Backend::Embedded => Store::Embedded(
                EmbeddedStore::open(self.dir.path(), self.opts.limits, now()).unwrap(),
            ),
            Backend::Redis => {
                let cfg = RedisConfig {
                    url: self.redis.as_ref().unwrap().url(),
                    prefix: "test".into(),
                    history_seconds: self.opts.redis_history_seconds,
                };
                Store::Redis(RedisStore::connect(&cfg, self.opts.limits).await.unwrap())
            }
        }
    }

    async fn launch(&mut self) {
        let store = self.open_store().await;
        let cfg = ApiConfig {
            read_token: self.opts.read_token.clone(),
            admin_token: self.opts.admin_token.clone(),
            hmac_secret: self.opts.hmac.clone(),
            max_body_bytes: self.opts.max_body,
            max_wait_ms: self.opts.max_wait_ms,
            max_waiting_polls: self.opts.max_waiting_polls,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server::spawn(listener, AppState::new(store.clone(), cfg), None).unwrap();
        self.base = format!("http://{}", server.addr);
        self.server = Some(server);
        self.store = Some(store);
    }

    /// Stops the server, closes the store and starts both again on the same
    /// data (directory or Redis).
    pub async fn restart(&mut self) {
        self.shutdown().await;
        self.launch().await;
    }

    pub async fn shutdown(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
        if let Some(store) = self.store.take() {
            store.close();
        }
    }

    pub fn store(&self) -> &Store {
        self.store.as_ref().unwrap()
    }

    pub async fn get_with(&self, since: Option<&str>, token: Option<&str>) -> HttpResponse {
        let url = format!(
            "{}{}",
            self.base,
            revocation_protocol::feed_request_path(revocation_protocol::REVOCATIONS_PATH, since)
        );
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        self.client
            .request(Method::GET, &url, &headers, None)
            .await
            .unwrap()
    }

    /// Polls as a filter that checks bindings: pages, `nonce` and, for a
    /// long poll, `wait_ms` (with the configured read token).
    pub async fn poll(
        &self,
        since: Option<&str>,
        nonce: &str,
        wait_ms: Option<u64>,
    ) -> HttpResponse {
        let path = revocation_protocol::poll_request_path(
            revocation_protocol::REVOCATIONS_PATH,
            since,
            nonce,
            wait_ms,
        );
        self.get_path(&path).await
    }

    /// GET of a feed path and query (with the configured read token).
    pub async fn get_path(&self, path_and_query: &str) -> HttpResponse {
        let url = format!("{}{path_and_query}", self.base);
        let auth = self.opts.read_token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        self.client
            .request(Method::GET, &url, &headers, None)
            .await
            .unwrap()
    }

    /// Polls as a client that accepts pages (`paged=1`) and parses the
    /// answer.
    pub async fn feed_paged(&self, since: Option<&str>) -> FeedResponse {
        let url = format!(
            "{}{}",
            self.base,
            revocation_protocol::paged_request_path(revocation_protocol::REVOCATIONS_PATH, since)
        );
        let auth = self.opts.read_token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        let resp = self
            .client
            .request(Method::GET, &url, &headers, None)
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "{:?}", resp.body);
        FeedResponse::parse(&resp.body).unwrap()
    }

    /// Follows pages from `since` until one without `more`; returns every
    /// page.
    pub async fn feed_pages(&self, since: Option<&str>) -> Vec<FeedResponse> {
        let mut pages = vec![self.feed_paged(since).await];
        while pages.last().unwrap().more {
            assert!(pages.len() < 1000, "pages never end");
            let cursor = pages.last().unwrap().cursor.clone();
            pages.push(self.feed_paged(Some(&cursor)).await);
        }
        pages
    }

    /// Polls with the configured read token and parses the answer.
    pub async fn feed(&self, since: Option<&str>) -> FeedResponse {
        let resp = self.get_with(since, self.opts.read_token.as_deref()).await;
        assert_eq!(resp.status, 200, "{:?}", resp.body);
        FeedResponse::parse(&resp.body).unwrap()
    }

    pub async fn post_with(&self, body: &str, auth: Option<&str>) -> HttpResponse {
        let url = format!("{}{}", self.base, revocation_protocol::REVOCATIONS_PATH);
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        self.client
            .request(Method::POST, &url, &headers, Some(body.as_bytes().to_vec()))
            .await
            .unwrap()
    }

    pub async fn post(&self, body: &str) -> HttpResponse {
        let auth = format!("Bearer {}", self.opts.admin_token.as_deref().unwrap_or(""));
        self.post_with(body, Some(&auth)).await
    }

    /// Posts and expects success; returns the new cursor.
    pub async fn revoke(&self, body: &str) -> String {
        let resp = self.post(body).await;
        assert_eq!(resp.status, 201, "{}", String::from_utf8_lossy(&resp.body));
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        v["cursor"].as_str().unwrap().to_string()
    }

    pub async fn path(&self, method: Method, path: &str) -> HttpResponse {
        self.client
            .request(method, &format!("{}{}", self.base, path), &[], None)
            .await
            .unwrap()
    }
}

/// A fresh random poll nonce.
pub fn nonce() -> String {
    let mut b = [0u8; revocation_protocol::NONCE_BYTES];
    b.copy_from_slice(&random_bytes(revocation_protocol::NONCE_BYTES));
    revocation_protocol::encode_nonce(&b)
}

/// Checks an answer's binding the way the filter does, for the poll that
/// sent `since` (None for a first poll) and `nonce`, and returns it.
pub fn binding(
    resp: &HttpResponse,
    secret: &[u8],
    since: Option<&str>,
    nonce: &str,
) -> Result<Binding, BindingError> {
    revocation_protocol::verify_bound_signature(
        secret,
        resp.header(revocation_protocol::BINDING_HEADER),
        &resp.body,
        since.unwrap_or(""),
        nonce,
    )
}

/// The epoch part of a cursor of either store (`<epoch>-<position>`).
pub fn epoch_of(cursor: &str) -> &str {
    cursor.split_once('-').unwrap().0
}

/// Sorted jtis of a response.
pub fn jtis(r: &FeedResponse) -> Vec<String> {
    let mut v: Vec<String> = r.revoked.iter().map(|t| t.jti.clone()).collect();
    v.sort();
    v
}

pub fn error_field(resp: &HttpResponse) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert!(v["error"].is_string(), "error body {v}");
    v["field"].as_str().map(str::to_string)
}
