//! Prometheus counters, kept by hand: a handful of atomics is all the server
//! needs, and a metrics crate would outweigh them.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The endpoints counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /v1/revocations`.
    Feed,
    /// `POST /v1/revocations`.
    Admin,
    /// `GET /healthz`.
    Healthz,
    /// `GET /metrics`.
    Metrics,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Feed: a delta was served.
    Delta,
    /// Feed: a reset snapshot was served.
    Reset,
    /// Admin, healthz, metrics: success.
    Ok,
    /// 400.
    BadRequest,
    /// 401.
    Unauthorized,
    /// 403 (admin API disabled).
    Forbidden,
    /// 413.
    TooLarge,
    /// 5xx.
    Error,
}

/// How a poll that asked to wait (`wait_ms`) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongPoll {
    /// Held, then answered with news after an append.
    Woken,
    /// Held for the whole wait; answered empty.
    Timeout,
    /// Not held: as many polls as allowed were held already.
    Full,
    /// Answered early because the server is stopping.
    Shutdown,
}

const LONG_POLLS: [(LongPoll, &str); 4] = [
    (LongPoll::Woken, "woken"),
    (LongPoll::Timeout, "timeout"),
    (LongPoll::Full, "full"),
    (LongPoll::Shutdown, "shutdown"),
];

/// What `/metrics` reads at scrape time rather than counts.
#[derive(Debug, Clone)]
pub struct Gauges {
    /// Entries held; None when the store could not be asked.
    pub held: Option<u64>,
    /// The store's short name (`embedded`, `redis`).
    pub store: &'static str,
    /// Polls held right now.
    pub waiting_polls: u64,
    /// Whether the store's wake-ups arrive (the Redis subscription is up).
    pub wakeups_up: bool,
}

const ENDPOINTS: [(Endpoint, &str); 4] = [
    (Endpoint::Feed, "feed"),
    (Endpoint::Admin, "admin"),
    (Endpoint::Healthz, "healthz"),
    (Endpoint::Metrics, "metrics"),
];

const OUTCOMES: [(Outcome, &str); 8] = [
    (Outcome::Delta, "delta"),
    (Outcome::Reset, "reset"),
    (Outcome::Ok, "ok"),
    (Outcome::BadRequest, "bad_request"),
    (Outcome::Unauthorized, "unauthorized"),
    (Outcome::Forbidden, "forbidden"),
    (Outcome::TooLarge, "too_large"),
    (Outcome::Error, "error"),
];

/// Request counters by endpoint and outcome, written-entry and long poll
/// counts.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: [[AtomicU64; 8]; 4],
    written: AtomicU64,
    long_polls: [AtomicU64; 4],
}

fn index<T: PartialEq + Copy>(table: &[(T, &str)], v: T) -> usize {
    table.iter().position(|(x, _)| *x == v).unwrap_or(0)
}

impl Metrics {
    /// Counts one request.
    pub fn count(&self, endpoint: Endpoint, outcome: Outcome) {
        self.requests[index(&ENDPOINTS, endpoint)][index(&OUTCOMES, outcome)]
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts entries written through the admin API.
    pub fn written(&self, n: u64) {
        self.written.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one poll that asked to wait.
    pub fn long_poll(&self, outcome: LongPoll) {
        self.long_polls[index(&LONG_POLLS, outcome)].fetch_add(1, Ordering::Relaxed);
    }

    /// Renders the text exposition format.
    pub fn render(&self, gauges: &Gauges) -> String {
        let store = gauges.store;
        let held = gauges.held;
        let mut out = String::with_capacity(2048);
        let _ = writeln!(
            out,
            "# HELP revocation_feed_revocations_held Revocation entries held by the store (expired ones until the next maintenance pass)."
        );
        let _ = writeln!(out, "# TYPE revocation_feed_revocations_held gauge");
        if let Some(n) = held {
            let _ = writeln!(
                out,
                "revocation_feed_revocations_held{{store=\"{store}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP revocation_feed_store_up Whether the store answered the last scrape."
        );
        let _ = writeln!(out, "# TYPE revocation_feed_store_up gauge");
        let _ = writeln!(
            out,
            "revocation_feed_store_up{{store=\"{store}\"}} {}",
            u8::from(held.is_some())
        );
        let _ = writeln!(
            out,
            "# HELP revocation_feed_entries_written_total Revocation entries accepted by the admin API since start."
        );
        let _ = writeln!(out, "# TYPE revocation_feed_entries_written_total counter");
        let _ = writeln!(
            out,
            "revocation_feed_entries_written_total {}",
            self.written.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP revocation_feed_requests_total HTTP requests by endpoint and outcome."
        );
        let _ = writeln!(out, "# TYPE revocation_feed_requests_total counter");
        for (ei, (_, ename)) in ENDPOINTS.iter().enumerate() {
            for (oi, (_, oname)) in OUTCOMES.iter().enumerate() {
                let n = self.requests[ei][oi].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "revocation_feed_requests_total{{endpoint=\"{ename}\",outcome=\"{oname}\"}} {n}"
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP revocation_feed_waiting_polls Polls held right now until a revocation is written or their wait ends."
        );
        let _ = writeln!(out, "# TYPE revocation_feed_waiting_polls gauge");
        let _ = writeln!(
            out,
            "revocation_feed_waiting_polls {}",
            gauges.waiting_polls
        );
        let _ = writeln!(
            out,
            "# HELP revocation_feed_long_polls_total Polls that asked to wait, by how they ended."
        );
        let _ = writeln!(out, "# TYPE revocation_feed_long_polls_total counter");
        for (i, (_, name)) in LONG_POLLS.iter().enumerate() {
            let _ = writeln!(
                out,
                "revocation_feed_long_polls_total{{outcome=\"{name}\"}} {}",
                self.long_polls[i].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP revocation_feed_wakeups_up Whether writes wake held polls at once (for Redis: whether the append subscription is up; while it is not, held polls re-read the store every second)."
        );
        let _ = writeln!(out, "# TYPE revocation_feed_wakeups_up gauge");
        let _ = writeln!(
            out,
            "revocation_feed_wakeups_up{{store=\"{store}\"}} {}",
            u8::from(gauges.wakeups_up)
        );
        out
    }
}
