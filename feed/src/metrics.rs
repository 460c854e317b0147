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

/// Request counters by endpoint and outcome, plus written-entry count.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: [[AtomicU64; 8]; 4],
    written: AtomicU64,
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

    /// Renders the text exposition format; `held` is None when the store
    /// could not be asked.
    pub fn render(&self, held: Option<u64>, store: &str) -> String {
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
        out
    }
}
