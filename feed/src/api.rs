//! HTTP API: the feed (`GET /v1/revocations`), the admin write
//! (`POST /v1/revocations`), `/healthz` and `/metrics`.

use crate::backend::Poll;
use crate::backend::StoreError;
use crate::metrics::{Endpoint, Gauges, LongPoll, Metrics, Outcome};
use crate::store::Store;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use revocation_protocol::{
    bound_signature, check_nonce, sign, AdminRequest, AdminResponse, ErrorBody, FieldError,
    BINDING_HEADER, NONCE_PARAM, PAGED_PARAM, REVOCATIONS_PATH, SIGNATURE_HEADER, SINCE_PARAM,
    WAIT_MS_PARAM,
};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinHandle;

/// Default longest hold of a long poll (`--max-wait-ms`).
pub const DEFAULT_MAX_WAIT_MS: u64 = 30_000;

/// Default most polls held at once (`--max-waiting-polls`).
pub const DEFAULT_MAX_WAITING_POLLS: usize = 4096;

/// Default admin body cap (`--max-body-bytes`).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// While the store's wake-ups are down (the Redis subscription is lost), a
/// waiting poll re-reads the store this often instead.
const RECHECK_WITHOUT_WAKEUPS: Duration = Duration::from_secs(1);

/// Who may do what, how big a write may be, and how long polls may wait.
#[derive(Clone)]
pub struct ApiConfig {
    /// Bearer token required to poll the feed; open when None.
    pub read_token: Option<String>,
    /// Bearer token required to write; the admin API is disabled when None.
    pub admin_token: Option<String>,
    /// When set every feed response is signed with it.
    pub hmac_secret: Option<Vec<u8>>,
    /// Largest admin body accepted (413 above).
    pub max_body_bytes: usize,
    /// Longest a poll is held (its `wait_ms` is capped to it); 0 answers
    /// every poll at once.
    pub max_wait_ms: u64,
    /// Most polls held at once; a poll beyond it is answered at once.
    pub max_waiting_polls: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            read_token: None,
            admin_token: None,
            hmac_secret: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_wait_ms: DEFAULT_MAX_WAIT_MS,
            max_waiting_polls: DEFAULT_MAX_WAITING_POLLS,
        }
    }
}

impl std::fmt::Debug for ApiConfig {
    // Hand-written so that secrets never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("read_token", &self.read_token.as_ref().map(|_| "<set>"))
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<set>"))
            .field("hmac_secret", &self.hmac_secret.as_ref().map(|_| "<set>"))
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_wait_ms", &self.max_wait_ms)
            .field("max_waiting_polls", &self.max_waiting_polls)
            .finish()
    }
}

/// Everything a handler needs.
pub struct AppState {
    /// The backend.
    pub store: Store,
    /// Access and limits.
    pub cfg: ApiConfig,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// Signature of the last large body signed. Cached snapshots go out as
    /// clones of one `Bytes`, so the same allocation means the same bytes;
    /// holding the `Bytes` here keeps the allocation (and its address) from
    /// being reused by another body while it is cached.
    signed: Mutex<Option<(Bytes, HeaderValue)>>,
    /// One permit per poll being held.
    waiting: Semaphore,
    /// Set when the server stops: held polls are answered at once.
    stopping: watch::Sender<bool>,
}

impl AppState {
    /// Bundles a store and its configuration.
    pub fn new(store: Store, cfg: ApiConfig) -> Arc<AppState> {
        Arc::new(AppState {
            store,
            metrics: Metrics::default(),
            signed: Mutex::new(None),
            waiting: Semaphore::new(cfg.max_waiting_polls.min(Semaphore::MAX_PERMITS)),
            stopping: watch::Sender::new(false),
            cfg,
        })
    }

    /// Polls held right now.
    pub fn waiting_polls(&self) -> usize {
        self.cfg
            .max_waiting_polls
            .min(Semaphore::MAX_PERMITS)
            .saturating_sub(self.waiting.available_permits())
    }

    /// Answers every held poll at once, and every later one without
    /// holding it, so that a stopping server does not wait for them.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Reads the store for a poll, holding the poll while it has nothing
    /// new and it asked to wait (see "Long poll" in the protocol docs).
    async fn answer_poll(&self, query: &PollQuery) -> Result<Poll, StoreError> {
        let since = query.since.as_deref();
        let wait = query
            .wait_ms
            .map(|ms| ms.min(self.cfg.max_wait_ms))
            .filter(|ms| *ms > 0);
        let Some(wait) = wait else {
            return self.store.poll(since, unix_now(), query.paged).await;
        };
        let deadline = Instant::now() + Duration::from_millis(wait);
        // Subscribed before the first read: an append between that read and
        // the wait below still wakes this poll.
        let wakeups = self.store.wakeups();
        let mut appended = wakeups.subscribe();
        let mut stopping = self.stopping.subscribe();
        let mut held = None;
        loop {
            let poll = self.store.poll(since, unix_now(), query.paged).await?;
            if !poll.is_caught_up(since) {
                if held.is_some() {
                    self.metrics.long_poll(LongPoll::Woken);
                }
                return Ok(poll);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let ended = if *stopping.borrow() {
                Some(LongPoll::Shutdown)
            } else if remaining.is_zero() {
                Some(LongPoll::Timeout)
            } else if held.is_none() {
                held = self.waiting.try_acquire().ok();
                held.is_none().then_some(LongPoll::Full)
            } else {
                None
            };
            if let Some(outcome) = ended {
                self.metrics.long_poll(outcome);
                return Ok(poll);
            }
            let nap = if wakeups.is_up() {
                remaining
            } else {
                remaining.min(RECHECK_WITHOUT_WAKEUPS)
            };
            // Whatever ends the nap, the store is read again: that read
            // decides, so a wake-up for nothing new simply waits on.
            tokio::select! {
                _ = appended.changed() => {}
                _ = tokio::time::sleep(nap) => {}
                _ = stopping.wait_for(|stop| *stop) => {}
            }
        }
    }

    /// The signature header value for `body`.
    fn signature(&self, key: &[u8], body: &Bytes) -> Option<HeaderValue> {
        // Below this, signing costs less than the lock.
        const CACHE_FROM: usize = 64 * 1024;
        if body.len() >= CACHE_FROM {
            if let Ok(guard) = self.signed.lock() {
                if let Some((b, sig)) = guard.as_ref() {
                    if b.as_ptr() == body.as_ptr() && b.len() == body.len() {
                        return Some(sig.clone());
                    }
                }
            }
        }
        let sig = HeaderValue::from_str(&sign(key, body)).ok()?;
        if body.len() >= CACHE_FROM {
            if let Ok(mut guard) = self.signed.lock() {
                *guard = Some((body.clone(), sig.clone()));
            }
        }
        Some(sig)
    }

    /// The 200 answer to a poll: the body, its signature and its binding to
    /// the poll (both only with a secret).
    fn poll_response(&self, query: &PollQuery, poll: Poll) -> Response {
        let mut signed = Vec::new();
        if let Some(key) = &self.cfg.hmac_secret {
            let binding = bound_signature(
                key,
                query.since.as_deref().unwrap_or(""),
                query.nonce.as_deref().unwrap_or(""),
                &poll.epoch,
                unix_now(),
                &poll.digest,
            )
            .and_then(|v| HeaderValue::from_str(&v).ok());
            let Some(binding) = binding else {
                // Only a data set altered by hand can have such an epoch;
                // an unbound answer would be refused by every filter that
                // checks bindings, so the failure is reported as such.
                log::error!(
                    "the data set's epoch {:?} cannot be carried in {BINDING_HEADER}",
                    poll.epoch
                );
                self.metrics.count(Endpoint::Feed, Outcome::Error);
                return store_unavailable();
            };
            signed.push((BINDING_HEADER, binding));
            if let Some(sig) = self.signature(key, &poll.body) {
                signed.push((SIGNATURE_HEADER, sig));
            }
        }
        self.metrics.count(
            Endpoint::Feed,
            if poll.reset {
                Outcome::Reset
            } else {
                Outcome::Delta
            },
        );
        let mut resp = json_response(StatusCode::OK, poll.body);
        for (name, value) in signed {
            resp.headers_mut().insert(name, value);
        }
        resp
    }
}

/// The router with all endpoints.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(REVOCATIONS_PATH, get(feed).post(admin))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// A running server.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its shared state (tests read the store through it).
    pub state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    maintenance: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves on `listener`; runs store maintenance every `maintain_every`
    /// when given.
    pub fn spawn(
        listener: TcpListener,
        state: Arc<AppState>,
        maintain_every: Option<Duration>,
    ) -> std::io::Result<Server> {
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = result {
                log::error!("HTTP server failed: {e}");
            }
        });
        let maintenance = maintain_every.map(|every| {
            let st = state.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    if let Err(e) = st.store.maintain(unix_now()).await {
                        log::error!("store maintenance failed: {e}");
                    }
                }
            })
        });
        Ok(Server {
            addr,
            state,
            shutdown: Some(tx),
            task,
            maintenance,
        })
    }

    /// Answers held polls, stops accepting, lets in-flight requests
    /// finish, then waits.
    pub async fn stop(mut self) {
        if let Some(m) = self.maintenance.take() {
            m.abort();
        }
        self.state.begin_shutdown();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response {
    let body: Bytes = body.into();
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn error_response(status: StatusCode, error: &str, field: Option<&str>) -> Response {
    let body = ErrorBody {
        error: error.to_string(),
        field: field.map(str::to_string),
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{\"error\":\"error\"}".to_vec());
    let mut resp = json_response(status, bytes);
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// Constant-time bearer check. Both sides are hashed first so the comparison
/// does not even leak the configured token's length.
fn bearer_ok(headers: &HeaderMap, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, token)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    let given: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
    let want: [u8; 32] = Sha256::digest(expected.as_bytes()).into();
    bool::from(given[..].ct_eq(&want[..]))
}

/// The parameters of a poll (`GET /v1/revocations?...`). Unknown parameters
/// are ignored, so that newer filters can send more; a known one given twice
/// is refused, since the two could be read differently along the way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollQuery {
    /// `since`, percent-decoded; an empty value counts as absent.
    pub since: Option<String>,
    /// `paged=1` (or `true`): the client accepts paged answers.
    pub paged: bool,
    /// `nonce`: what the answer's binding covers besides `since`.
    pub nonce: Option<String>,
    /// `wait_ms`: how long the client can wait for news (uncapped here).
    pub wait_ms: Option<u64>,
}

impl PollQuery {
    /// Reads a poll's query string; the error names the parameter at fault.
    pub fn parse(query: Option<&str>) -> Result<PollQuery, FieldError> {
        const KNOWN: [&str; 4] = [SINCE_PARAM, PAGED_PARAM, NONCE_PARAM, WAIT_MS_PARAM];
        let mut seen = [false; KNOWN.len()];
        let mut q = PollQuery::default();
        for pair in query.unwrap_or("").split('&') {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let Some(i) = KNOWN.iter().position(|k| *k == key) else {
                continue;
            };
            if std::mem::replace(&mut seen[i], true) {
                return Err(FieldError::new(key, "is given more than once"));
            }
            let value = percent_decode(raw);
            match KNOWN[i] {
                SINCE_PARAM => q.since = (!value.is_empty()).then_some(value),
                PAGED_PARAM => q.paged = matches!(value.as_str(), "1" | "true"),
                NONCE_PARAM => {
                    check_nonce(&value).map_err(|why| FieldError::new(NONCE_PARAM, why))?;
                    q.nonce = Some(value);
                }
                _ => q.wait_ms = Some(parse_wait_ms(&value)?),
            }
        }
        Ok(q)
    }
}

/// `wait_ms`: a whole number of milliseconds, digits only.
fn parse_wait_ms(value: &str) -> Result<u64, FieldError> {
    let bad = || {
        FieldError::new(
            WAIT_MS_PARAM,
            "must be a whole number of milliseconds (digits only)",
        )
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    value.parse().map_err(|_| bad())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn feed(State(st): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Response {
    if let Some(token) = &st.cfg.read_token {
        if !bearer_ok(&headers, token) {
            st.metrics.count(Endpoint::Feed, Outcome::Unauthorized);
            return error_response(
                StatusCode::UNAUTHORIZED,
                "a valid feed read token is required",
                None,
            );
        }
    }
    let query = match PollQuery::parse(uri.query()) {
        Ok(q) => q,
        Err(e) => {
            st.metrics.count(Endpoint::Feed, Outcome::BadRequest);
            return field_error(&e);
        }
    };
    match st.answer_poll(&query).await {
        Ok(poll) => st.poll_response(&query, poll),
        Err(e) => {
            log::error!("poll failed: {e}");
            st.metrics.count(Endpoint::Feed, Outcome::Error);
            store_unavailable()
        }
    }
}

fn store_unavailable() -> Response {
    error_response(StatusCode::SERVICE_UNAVAILABLE, "store unavailable", None)
}

async fn admin(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let m = &st.metrics;
    // Authorization is decided before the body is read, so an anonymous
    // client cannot make the server buffer anything.
    let Some(token) = &st.cfg.admin_token else {
        m.count(Endpoint::Admin, Outcome::Forbidden);
        return error_response(
            StatusCode::FORBIDDEN,
            "the admin API is disabled: no admin token is configured",
            None,
        );
    };
    if !bearer_ok(&headers, token) {
        m.count(Endpoint::Admin, Outcome::Unauthorized);
        return error_response(
            StatusCode::UNAUTHORIZED,
            "a valid admin token is required",
            None,
        );
    }
    let limit = st.cfg.max_body_bytes;
    let too_large = || {
        m.count(Endpoint::Admin, Outcome::TooLarge);
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("body is larger than {limit} bytes"),
            None,
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let bytes = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return too_large();
        }
        Err(e) => {
            m.count(Endpoint::Admin, Outcome::BadRequest);
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("could not read the body: {e}"),
                None,
            );
        }
    };
    let request = match AdminRequest::parse(&bytes) {
        Ok(r) => r,
        Err(e) => {
            m.count(Endpoint::Admin, Outcome::BadRequest);
            return field_error(&e);
        }
    };
    let n = request.revocations.len();
    match st.store.append(request.revocations).await {
        Ok(cursor) => {
            m.count(Endpoint::Admin, Outcome::Ok);
            m.written(n as u64);
            let body = serde_json::to_vec(&AdminResponse {
                cursor,
                accepted: n,
            })
            .unwrap_or_default();
            json_response(StatusCode::CREATED, body)
        }
        Err(e) => {
            log::error!("write of {n} revocations failed: {e}");
            m.count(Endpoint::Admin, Outcome::Error);
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "store unavailable; nothing was written",
                None,
            )
        }
    }
}

fn field_error(e: &FieldError) -> Response {
    let body = ErrorBody::from(e);
    error_response(StatusCode::BAD_REQUEST, &body.error, body.field.as_deref())
}

async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    match st.store.health().await {
        Ok(()) => {
            st.metrics.count(Endpoint::Healthz, Outcome::Ok);
            json_response(StatusCode::OK, &b"{\"status\":\"ok\"}"[..])
        }
        Err(e) => {
            st.metrics.count(Endpoint::Healthz, Outcome::Error);
            error_response(StatusCode::SERVICE_UNAVAILABLE, &e.to_string(), None)
        }
    }
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    st.metrics.count(Endpoint::Metrics, Outcome::Ok);
    let gauges = Gauges {
        held: st.store.held().await.ok(),
        store: st.store.kind(),
        waiting_polls: st.waiting_polls() as u64,
        wakeups_up: st.store.wakeups().is_up(),
    };
    let text = st.metrics.render(&gauges);
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn since(query: &str) -> Option<String> {
        PollQuery::parse(Some(query)).unwrap().since
    }

    fn paged(query: &str) -> bool {
        PollQuery::parse(Some(query)).unwrap().paged
    }

    fn refused(query: &str) -> String {
        PollQuery::parse(Some(query)).unwrap_err().field
    }

    #[test]
    fn since_is_found_and_decoded() {
        assert_eq!(PollQuery::parse(None).unwrap(), PollQuery::default());
        assert_eq!(since(""), None);
        assert_eq!(since("since="), None);
        assert_eq!(since("since=ab-12"), Some("ab-12".into()));
        assert_eq!(since("x=1&since=a%2Db&y"), Some("a-b".into()));
        assert_eq!(since("since=%zz%4"), Some("%zz%4".into()));
    }

    #[test]
    fn paged_is_opt_in() {
        assert!(!paged(""));
        assert!(!paged("since=a"));
        assert!(!paged("paged=0"));
        assert!(paged("since=a&paged=1"));
        assert!(paged("paged=true"));
    }

    #[test]
    fn nonce_and_wait_are_checked() {
        let nonce = "0123456789abcdef0123456789abcdef";
        let q = PollQuery::parse(Some(&format!("since=c&nonce={nonce}&wait_ms=25000"))).unwrap();
        assert_eq!(q.nonce.as_deref(), Some(nonce));
        assert_eq!(q.wait_ms, Some(25_000));
        assert_eq!(
            PollQuery::parse(Some("wait_ms=0")).unwrap().wait_ms,
            Some(0)
        );
        for bad in [
            "nonce=",
            "nonce=abc",
            "nonce=0123456789ABCDEF",
            "nonce=0123456789abcdeg",
        ] {
            assert_eq!(refused(bad), "nonce", "{bad}");
        }
        for bad in [
            "wait_ms=",
            "wait_ms=-1",
            "wait_ms=+5",
            "wait_ms=1.5",
            "wait_ms=1e3",
            "wait_ms=99999999999999999999999",
        ] {
            assert_eq!(refused(bad), "wait_ms", "{bad}");
        }
        for twice in ["since=a&since=b", "paged=1&paged=1", "wait_ms=1&wait_ms=1"] {
            let field = refused(twice);
            assert!(twice.starts_with(&field), "{twice}: {field}");
        }
    }

    #[test]
    fn bearer_must_match_exactly() {
        let mut h = HeaderMap::new();
        assert!(!bearer_ok(&h, "t"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        assert!(bearer_ok(&h, "t"));
        assert!(!bearer_ok(&h, "tt"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer t"));
        assert!(bearer_ok(&h, "t"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic t"));
        assert!(!bearer_ok(&h, "t"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("t"));
        assert!(!bearer_ok(&h, "t"));
    }
}
