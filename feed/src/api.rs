//! HTTP API: the feed (`GET /v1/revocations`), the admin write
//! (`POST /v1/revocations`), `/healthz` and `/metrics`.

use crate::metrics::{Endpoint, Metrics, Outcome};
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
    sign, AdminRequest, AdminResponse, ErrorBody, FieldError, PAGED_PARAM, REVOCATIONS_PATH,
    SIGNATURE_HEADER, SINCE_PARAM,
};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Who may do what, and how big a write may be.
#[derive(Clone, Default)]
pub struct ApiConfig {
    /// Bearer token required to poll the feed; open when None.
    pub read_token: Option<String>,
    /// Bearer token required to write; the admin API is disabled when None.
    pub admin_token: Option<String>,
    /// When set every feed response is signed with it.
    pub hmac_secret: Option<Vec<u8>>,
    /// Largest admin body accepted (413 above).
    pub max_body_bytes: usize,
}

impl std::fmt::Debug for ApiConfig {
    // Hand-written so that secrets never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("read_token", &self.read_token.as_ref().map(|_| "<set>"))
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<set>"))
            .field("hmac_secret", &self.hmac_secret.as_ref().map(|_| "<set>"))
            .field("max_body_bytes", &self.max_body_bytes)
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
}

impl AppState {
    /// Bundles a store and its configuration.
    pub fn new(store: Store, cfg: ApiConfig) -> Arc<AppState> {
        Arc::new(AppState {
            store,
            cfg,
            metrics: Metrics::default(),
            signed: Mutex::new(None),
        })
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

    /// Stops accepting, lets in-flight requests finish, then waits.
    pub async fn stop(mut self) {
        if let Some(m) = self.maintenance.take() {
            m.abort();
        }
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

/// The `since` query parameter, percent-decoded; an empty value counts as
/// absent.
pub fn since_param(query: Option<&str>) -> Option<String> {
    let q = query?;
    for pair in q.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == SINCE_PARAM {
            let v = percent_decode(v);
            return (!v.is_empty()).then_some(v);
        }
    }
    None
}

/// Whether the client accepts paged answers: `paged=1` (or `true`).
pub fn paged_param(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&').any(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            k == PAGED_PARAM && matches!(v, "1" | "true")
        })
    })
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
    let since = since_param(uri.query());
    let paged = paged_param(uri.query());
    match st.store.poll(since.as_deref(), unix_now(), paged).await {
        Ok(poll) => {
            st.metrics.count(
                Endpoint::Feed,
                if poll.reset {
                    Outcome::Reset
                } else {
                    Outcome::Delta
                },
            );
            let signature = st
                .cfg
                .hmac_secret
                .as_ref()
                .and_then(|k| st.signature(k, &poll.body));
            let mut resp = json_response(StatusCode::OK, poll.body);
            if let Some(sig) = signature {
                resp.headers_mut().insert(SIGNATURE_HEADER, sig);
            }
            resp
        }
        Err(e) => {
            log::error!("poll failed: {e}");
            st.metrics.count(Endpoint::Feed, Outcome::Error);
            error_response(StatusCode::SERVICE_UNAVAILABLE, "store unavailable", None)
        }
    }
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
    let held = st.store.held().await.ok();
    let text = st.metrics.render(held, st.store.kind());
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

    #[test]
    fn since_is_found_and_decoded() {
        assert_eq!(since_param(None), None);
        assert_eq!(since_param(Some("")), None);
        assert_eq!(since_param(Some("since=")), None);
        assert_eq!(since_param(Some("since=ab-12")), Some("ab-12".into()));
        assert_eq!(since_param(Some("x=1&since=a%2Db&y")), Some("a-b".into()));
        assert_eq!(since_param(Some("since=%zz%4")), Some("%zz%4".into()));
    }

    #[test]
    fn paged_is_opt_in() {
        assert!(!paged_param(None));
        assert!(!paged_param(Some("since=a")));
        assert!(!paged_param(Some("paged=0")));
        assert!(paged_param(Some("since=a&paged=1")));
        assert!(paged_param(Some("paged=true")));
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
