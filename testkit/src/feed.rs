//! A revocation feed for tests, built on the wire-format crate: it keeps a
//! history of revocations, answers polls with deltas or (paged) snapshots,
//! binds every answer to its poll as the reference server does, and can be
//! told to misbehave in the ways a real feed or the path to it can.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use crate::jwt::now;
use crate::server::{HttpServer, Recorded, Reply};

/// How the feed answers polls.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FeedMode {
    /// Bound, signed answers.
    Serve,
    /// This HTTP status and an error body.
    Status(u16),
    /// A signed body that is not JSON.
    Garbage,
    /// An answer whose signatures do not match.
    BadSignature,
    /// Bound answers 1.5 s late.
    Slow,
    /// A bound reset with a cursor lower than any the client holds.
    Regress,
    /// Answers with only the body signature, as feeds that predate bound
    /// answers send.
    Unbound,
    /// Holds every poll for its `wait_ms` and 1.5 s more: past the time
    /// the filter gives a long poll.
    HoldPastWait,
    /// A bound, empty answer (not a reset) whose cursor is the poll's
    /// `since` moved by this many entries (a different cursor with no
    /// entries to account for the move).
    EmptyMoved(i64),
}

struct State {
    secret: Vec<u8>,
    read_token: String,
    epoch: String,
    revoked: Vec<Value>,
    subjects: Vec<Value>,
    /// (is a subject, index into `revoked` or `subjects`), in order.
    history: Vec<(bool, usize)>,
    mode: FeedMode,
    /// When set, a poll with `paged=1` gets reset snapshots in pages of
    /// this many entries.
    page_size: Option<usize>,
    /// Replaces `mode` for continuation pages (the second page on).
    page_fault: Option<FeedMode>,
    /// Delay before answering a continuation page.
    page_delay_ms: u64,
    /// Delay before answering a poll without a cursor (a first, full sync).
    full_sync_delay_ms: u64,
    /// Entries at the end of the history this feed does not show yet: a
    /// replica behind the one that wrote them.
    lag: usize,
}

impl State {
    /// How many entries of the history this feed shows.
    fn head(&self) -> usize {
        self.history.len().saturating_sub(self.lag)
    }

    /// Entries `from..to` of the history as (revoked, subjects).
    fn slice(&self, from: usize, to: usize) -> (Vec<Value>, Vec<Value>) {
        let mut revoked = Vec::new();
        let mut subjects = Vec::new();
        for (is_subject, i) in self.history.get(from..to).unwrap_or(&[]) {
            if *is_subject {
                subjects.push(self.subjects[*i].clone());
            } else {
                revoked.push(self.revoked[*i].clone());
            }
        }
        (revoked, subjects)
    }

    fn seq(&self, cursor: &str) -> Option<usize> {
        cursor
            .strip_prefix(&format!("{}-", self.epoch))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= self.head())
    }

    /// One page of the snapshot pinned at `n` entries, from entry `k`: the
    /// history only grows, so its first `n` entries are that snapshot.
    fn page(&self, n: usize, k: usize, size: usize) -> Value {
        let end = (k + size).min(n);
        let more = end < n;
        let (revoked, subjects) = self.slice(k, end);
        let cursor = if more {
            format!("{}-{n}~{end}", self.epoch)
        } else {
            format!("{}-{n}", self.epoch)
        };
        json!({"cursor": cursor, "reset": k == 0, "revoked": revoked,
               "revoked_subjects": subjects, "more": more})
    }

    fn paged_body(&self, since: Option<&str>, size: usize) -> Value {
        if let Some((base, k)) = since.and_then(|s| s.split_once('~')) {
            let n = self.seq(base);
            let k = k.parse::<usize>().ok();
            if let (Some(n), Some(k)) = (n, k) {
                if k > 0 && k < n {
                    return self.page(n, k, size);
                }
            }
        } else if since.and_then(|s| self.seq(s)).is_some() {
            return self.body(since);
        }
        self.page(self.head(), 0, size)
    }

    /// A delta from `since` when it is a cursor of this epoch, else a
    /// whole snapshot.
    fn body(&self, since: Option<&str>) -> Value {
        let (reset, from) = match since.and_then(|s| self.seq(s)) {
            Some(n) => (false, n),
            None => (true, 0),
        };
        let (revoked, subjects) = self.slice(from, self.head());
        json!({"cursor": format!("{}-{}", self.epoch, self.head()), "reset": reset,
               "revoked": revoked, "revoked_subjects": subjects})
    }

    /// The answer as the feed signs it: both signatures, the binding over
    /// this poll's `since` and nonce.
    fn signed(&self, content_type: &str, text: String, since: &str, nonce: &str) -> Reply {
        let body_sig = revocation_protocol::sign(&self.secret, text.as_bytes());
        let digest = revocation_protocol::body_digest(text.as_bytes());
        let time = u64::try_from(now()).unwrap_or(0);
        let binding = revocation_protocol::bound_signature(
            &self.secret,
            since,
            nonce,
            &self.epoch,
            time,
            &digest,
        )
        .unwrap_or_default();
        Reply::new(200, content_type, text)
            .header(revocation_protocol::SIGNATURE_HEADER, &body_sig)
            .header(revocation_protocol::BINDING_HEADER, &binding)
    }
}

/// One query parameter of a request target, as sent.
fn param(target: &str, name: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| v.to_string())
    })
}

/// The feed: an HTTP server on a free loopback port, cursors
/// `<epoch>-<entries>`, starting in epoch `e1`.
pub struct FakeFeed {
    state: Arc<Mutex<State>>,
    server: HttpServer,
}

impl FakeFeed {
    /// A feed signing with `secret` and serving polls that carry
    /// `Authorization: Bearer <read_token>`.
    pub fn start(secret: &[u8], read_token: &str) -> FakeFeed {
        let state = Arc::new(Mutex::new(State {
            secret: secret.to_vec(),
            read_token: read_token.to_string(),
            epoch: "e1".into(),
            revoked: Vec::new(),
            subjects: Vec::new(),
            history: Vec::new(),
            mode: FeedMode::Serve,
            page_size: None,
            page_fault: None,
            page_delay_ms: 0,
            full_sync_delay_ms: 0,
            lag: 0,
        }));
        let shared = state.clone();
        let server = HttpServer::start(move |req: &Recorded| answer(&shared, req));
        FakeFeed { state, server }
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Every poll received, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    pub fn request_count(&self) -> usize {
        self.server.request_count()
    }

    /// Polls without a cursor (first, full syncs) received so far.
    pub fn full_syncs(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| !r.path.contains("since="))
            .count()
    }

    pub fn revoke_jti(&self, jti: &str) {
        let mut f = self.state.lock().unwrap();
        let exp = now() + 3600;
        f.revoked.push(json!({"jti": jti, "exp": exp}));
        let i = f.revoked.len() - 1;
        f.history.push((false, i));
    }

    pub fn revoke_subject(&self, sub: &str, before: i64) {
        let mut f = self.state.lock().unwrap();
        let exp = now() + 3600;
        f.subjects
            .push(json!({"sub": sub, "before": before, "exp": exp}));
        let i = f.subjects.len() - 1;
        f.history.push((true, i));
    }

    pub fn set_mode(&self, mode: FeedMode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Snapshots in pages of `size` entries, continuation pages answered
    /// after `delay_ms`.
    pub fn set_paging(&self, size: usize, delay_ms: u64) {
        let mut f = self.state.lock().unwrap();
        f.page_size = Some(size);
        f.page_delay_ms = delay_ms;
    }

    pub fn set_page_fault(&self, fault: Option<FeedMode>) {
        self.state.lock().unwrap().page_fault = fault;
    }

    /// Delays answers to polls without a cursor by `ms`.
    pub fn set_full_sync_delay(&self, ms: u64) {
        self.state.lock().unwrap().full_sync_delay_ms = ms;
    }

    /// Shows all but the last `entries` of the history, as a replica that
    /// has not caught up yet: a cursor past its head is from its future, and
    /// it answers one with a reset snapshot of what it has.
    pub fn set_lag(&self, entries: usize) {
        self.state.lock().unwrap().lag = entries;
    }

    /// A new epoch holding only these jtis: a client gets a reset.
    pub fn replace_all(&self, epoch: &str, jtis: &[&str]) {
        let mut f = self.state.lock().unwrap();
        f.epoch = epoch.into();
        f.revoked.clear();
        f.subjects.clear();
        f.history.clear();
        drop(f);
        for j in jtis {
            self.revoke_jti(j);
        }
    }
}

fn answer(state: &Mutex<State>, req: &Recorded) -> Reply {
    let since = param(&req.path, "since");
    let nonce = param(&req.path, "nonce").unwrap_or_default();
    let continuation = since.as_deref().is_some_and(|s| s.contains('~'));
    let (mode, delay) = {
        let feed = state.lock().unwrap();
        if req.header("authorization") != vec![format!("Bearer {}", feed.read_token)] {
            return Reply::json(401, &json!({"error": "unauthorized"}));
        }
        let delay = if continuation {
            feed.page_delay_ms
        } else if since.is_none() {
            feed.full_sync_delay_ms
        } else {
            0
        };
        let mode = match feed.page_fault {
            Some(fault) if continuation => fault,
            _ => feed.mode,
        };
        (mode, delay)
    };
    if delay > 0 {
        thread::sleep(Duration::from_millis(delay));
    }
    match mode {
        FeedMode::Slow => thread::sleep(Duration::from_millis(1500)),
        FeedMode::HoldPastWait => {
            let wait_ms = param(&req.path, revocation_protocol::WAIT_MS_PARAM)
                .and_then(|w| w.parse::<u64>().ok())
                .unwrap_or(0);
            thread::sleep(Duration::from_millis(wait_ms + 1500));
        }
        _ => {}
    }
    let feed = state.lock().unwrap();
    let paged = req.path.contains("paged=1");
    let body = match feed.page_size {
        Some(size) if paged => feed.paged_body(since.as_deref(), size),
        _ => feed.body(since.as_deref()),
    };
    let since = since.unwrap_or_default();
    match mode {
        FeedMode::Serve | FeedMode::Slow | FeedMode::HoldPastWait => {
            feed.signed("application/json", body.to_string(), &since, &nonce)
        }
        FeedMode::Status(s) => Reply::json(s, &json!({"error": "down"})),
        FeedMode::Garbage => {
            feed.signed("text/html", "<html>not json</html>".into(), &since, &nonce)
        }
        FeedMode::BadSignature => Reply::new(200, "application/json", body.to_string())
            .header(
                revocation_protocol::SIGNATURE_HEADER,
                &revocation_protocol::sign(b"wrong", b"x"),
            )
            .header(
                revocation_protocol::BINDING_HEADER,
                &format!(
                    "v=2,t={},epoch={},sig={}",
                    now(),
                    feed.epoch,
                    "0".repeat(64)
                ),
            ),
        FeedMode::Regress => {
            let text = json!({"cursor": format!("{}-0", feed.epoch), "reset": true,
                              "revoked": [], "revoked_subjects": []})
            .to_string();
            feed.signed("application/json", text, &since, &nonce)
        }
        FeedMode::EmptyMoved(by) => {
            let at = feed.seq(&since).unwrap_or(feed.head()) as i64;
            let cursor = format!("{}-{}", feed.epoch, (at + by).max(0));
            let text = json!({"cursor": cursor, "reset": false,
                              "revoked": [], "revoked_subjects": []})
            .to_string();
            feed.signed("application/json", text, &since, &nonce)
        }
        FeedMode::Unbound => {
            let text = body.to_string();
            let sig = revocation_protocol::sign(&feed.secret, text.as_bytes());
            Reply::new(200, "application/json", text)
                .header(revocation_protocol::SIGNATURE_HEADER, &sig)
        }
    }
}

/// The path between a proxy and its feed, held by an attacker: polls pass
/// through to the feed and its answers are recorded; once
/// [`ReplayingPath::replay`] is on, every poll is answered with the latest
/// recorded answer to a poll from the same cursor (signatures and all),
/// without asking the feed.
pub struct ReplayingPath {
    server: HttpServer,
    replaying: Arc<std::sync::atomic::AtomicBool>,
    replayed: Arc<std::sync::atomic::AtomicUsize>,
}

/// A recorded answer: status, headers, body.
type Recording = (u16, Vec<(String, String)>, Vec<u8>);

impl ReplayingPath {
    /// In front of the feed on `feed_port`.
    pub fn start(feed_port: u16) -> ReplayingPath {
        use std::collections::HashMap;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let replaying = Arc::new(AtomicBool::new(false));
        let replayed = Arc::new(AtomicUsize::new(0));
        let recorded: Arc<Mutex<HashMap<String, Recording>>> = Arc::default();
        let (on, count) = (replaying.clone(), replayed.clone());
        let server = HttpServer::start(move |req: &Recorded| {
            let since = param(&req.path, "since").unwrap_or_default();
            let replay = on
                .load(Ordering::SeqCst)
                .then(|| recorded.lock().unwrap().get(&since).cloned())
                .flatten();
            let (status, headers, body) = match replay {
                Some(answer) => {
                    count.fetch_add(1, Ordering::SeqCst);
                    answer
                }
                None => {
                    let mut head = format!(
                        "{} {} HTTP/1.1\r\nhost: 127.0.0.1:{feed_port}\r\nconnection: close\r\n",
                        req.method, req.path
                    );
                    for (n, v) in &req.headers {
                        if n.eq_ignore_ascii_case("authorization") {
                            head.push_str(&format!("{n}: {v}\r\n"));
                        }
                    }
                    head.push_str("\r\n");
                    match crate::http::try_raw_request(feed_port, head.as_bytes()) {
                        Ok(resp) => {
                            let answer = (resp.status, resp.headers, resp.body_bytes);
                            if answer.0 == 200 {
                                recorded.lock().unwrap().insert(since, answer.clone());
                            }
                            answer
                        }
                        Err(e) => (
                            502,
                            Vec::new(),
                            format!("feed unreachable: {e}").into_bytes(),
                        ),
                    }
                }
            };
            let mut reply = Reply::new(status, "application/json", body);
            for (name, value) in &headers {
                let passed = name.eq_ignore_ascii_case(revocation_protocol::SIGNATURE_HEADER)
                    || name.eq_ignore_ascii_case(revocation_protocol::BINDING_HEADER);
                if passed {
                    reply = reply.header(name, value);
                }
            }
            reply
        });
        ReplayingPath {
            server,
            replaying,
            replayed,
        }
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Starts or stops answering polls with recorded answers.
    pub fn replay(&self, on: bool) {
        self.replaying
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Polls answered with a recorded answer so far.
    pub fn replayed(&self) -> usize {
        self.replayed.load(std::sync::atomic::Ordering::SeqCst)
    }
}
