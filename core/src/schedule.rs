//! Timing of a periodic callout (revocation feed, JWKS): one call at a
//! time, capped exponential backoff after failures, and log lines
//! rate-limited so a dead server does not flood the proxy's log.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Normal period between successful calls.
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// First retry delay after a failure; doubles per consecutive failure.
    pub min_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

#[derive(Debug, Default)]
pub struct Schedule {
    next_poll_ms: u64,
    in_flight_since: Option<u64>,
    consecutive_failures: u32,
    last_log_ms: Option<u64>,
    suppressed_logs: u32,
}

/// At most one failure log line per this many milliseconds.
const LOG_EVERY_MS: u64 = 10_000;

impl Schedule {
    pub fn due(&self, timing: &Timing, now_ms: u64) -> bool {
        match self.in_flight_since {
            // A call the host never answered (its VM lost the callback)
            // must not stop polling forever.
            Some(since) => now_ms >= since + timing.timeout_ms * 2 + 1000,
            None => now_ms >= self.next_poll_ms,
        }
    }

    pub fn in_flight(&self) -> bool {
        self.in_flight_since.is_some()
    }

    pub fn started(&mut self, now_ms: u64) {
        self.in_flight_since = Some(now_ms);
    }

    /// A success; the next call is due after `next_in_ms`.
    pub fn succeeded(&mut self, now_ms: u64, next_in_ms: u64) {
        self.in_flight_since = None;
        self.consecutive_failures = 0;
        self.next_poll_ms = now_ms + next_in_ms;
    }

    /// A call that succeeded but left work for the next one (a page of a
    /// paged answer): the next call is due at once, and the failure count
    /// stays, so that an answer failing midway keeps backing off.
    pub fn continued(&mut self, now_ms: u64) {
        self.in_flight_since = None;
        self.next_poll_ms = now_ms;
    }

    /// Moves the next call earlier (never later).
    pub fn hurry(&mut self, at_ms: u64) {
        self.next_poll_ms = self.next_poll_ms.min(at_ms);
    }

    /// Records a failure; returns the line to log, unless rate-limited.
    pub fn failed(&mut self, timing: &Timing, now_ms: u64, what: &str) -> Option<String> {
        self.in_flight_since = None;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let wait = self.backoff_ms(timing);
        self.next_poll_ms = now_ms + wait;
        let quiet = self.last_log_ms.is_some_and(|t| now_ms < t + LOG_EVERY_MS);
        if quiet {
            self.suppressed_logs += 1;
            return None;
        }
        let suppressed = std::mem::take(&mut self.suppressed_logs);
        self.last_log_ms = Some(now_ms);
        let more = if suppressed > 0 {
            format!(" ({suppressed} more failures since the last report)")
        } else {
            String::new()
        };
        Some(format!("{what}; retrying in {wait} ms{more}"))
    }

    /// Doubles per consecutive failure from the minimum, capped.
    pub fn backoff_ms(&self, timing: &Timing) -> u64 {
        let exp = self.consecutive_failures.saturating_sub(1).min(20);
        timing
            .min_backoff_ms
            .saturating_mul(1u64 << exp)
            .min(timing.max_backoff_ms.max(timing.min_backoff_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> Timing {
        Timing {
            interval_ms: 1000,
            timeout_ms: 500,
            min_backoff_ms: 1000,
            max_backoff_ms: 8000,
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let t = timing();
        let mut p = Schedule::default();
        assert!(p.due(&t, 0));
        p.started(0);
        assert!(!p.due(&t, 100), "one call in flight at a time");
        let mut waits = Vec::new();
        for now in 0..6 {
            p.failed(&t, now, "x");
            waits.push(p.backoff_ms(&t));
        }
        assert_eq!(waits, vec![1000, 2000, 4000, 8000, 8000, 8000]);
        p.succeeded(100, 1000);
        assert!(!p.due(&t, 1099));
        assert!(p.due(&t, 1100));
        p.hurry(500);
        assert!(p.due(&t, 500));
        p.hurry(5000);
        assert!(!p.due(&t, 499), "hurry never delays");
    }

    #[test]
    fn lost_callback_does_not_stop_polling() {
        let t = timing();
        let mut p = Schedule::default();
        p.started(0);
        assert!(p.in_flight());
        assert!(!p.due(&t, 1999));
        assert!(p.due(&t, 2000));
    }

    #[test]
    fn failure_logs_are_rate_limited() {
        let t = timing();
        let mut p = Schedule::default();
        assert!(p.failed(&t, 0, "feed down").is_some());
        for n in 1..50 {
            assert!(p.failed(&t, n * 100, "feed down").is_none());
        }
        let line = p.failed(&t, 10_000, "HTTP status 500").unwrap();
        assert!(line.starts_with("HTTP status 500; retrying in "), "{line}");
        assert!(line.contains("49 more failures"), "{line}");
    }
}
