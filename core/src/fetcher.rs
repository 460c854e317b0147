//! What every periodic fetch of a proxy shares (the revocation feed, each
//! provider's JWKS): one VM elected by a lease does it, one call at a time,
//! on a schedule that backs off after failures; a VM the host refuses calls
//! to stands aside so another can take over.

use crate::host::{CallToken, Host, SharedStore};
use crate::lease::Lease;
use crate::schedule::{Schedule, Timing};

/// A VM whose calls the host refuses stops contending for the lease this long.
const STAND_ASIDE_MS: u64 = 30_000;

pub struct Fetcher {
    lease: Lease,
    schedule: Schedule,
    timing: Timing,
    in_flight: Option<CallToken>,
    stand_aside_until_ms: u64,
}

impl Fetcher {
    /// `owner` is unique per VM; a silent holder keeps the lease
    /// `lease_ttl_ms`.
    pub fn new(lease_key: String, owner: u64, lease_ttl_ms: u64, timing: Timing) -> Self {
        Fetcher {
            lease: Lease::new(lease_key, owner, lease_ttl_ms),
            schedule: Schedule::default(),
            timing,
            in_flight: None,
            stand_aside_until_ms: 0,
        }
    }

    /// This tick's part of the election: true when this VM holds the lease
    /// and may call out.
    pub fn elected(&mut self, store: &dyn SharedStore, now_ms: u64) -> bool {
        now_ms >= self.stand_aside_until_ms && self.lease.try_hold(store, now_ms)
    }

    /// This VM's lease owner id.
    pub fn owner(&self) -> u64 {
        self.lease.owner()
    }

    /// Whether this VM still holds the lease (checked again before work that
    /// others must not duplicate, such as publishing an answer).
    pub fn still_elected(&self, store: &dyn SharedStore, now_ms: u64) -> bool {
        self.lease.holds(store, now_ms)
    }

    /// Whether the next call is due (never while one is in flight, unless
    /// the host lost its answer).
    pub fn due(&self, now_ms: u64) -> bool {
        self.schedule.due(&self.timing, now_ms)
    }

    /// Moves the next call earlier (never later).
    pub fn hurry(&mut self, at_ms: u64) {
        self.schedule.hurry(at_ms);
    }

    /// Starts the call. When the host refuses it (an unknown cluster, a
    /// thread without callouts), this VM gives the lease up and stands aside
    /// so that another VM fetches; the caller counts the failure.
    pub fn call(
        &mut self,
        host: &dyn Host,
        cluster: &str,
        headers: &[(String, String)],
        timeout_ms: u64,
    ) -> Result<CallToken, String> {
        let now_ms = host.now_ms();
        match host.dispatch(cluster, headers, timeout_ms) {
            Ok(token) => {
                self.schedule.started(now_ms);
                self.in_flight = Some(token);
                Ok(token)
            }
            Err(reason) => {
                self.lease.release(host);
                self.stand_aside_until_ms = now_ms + STAND_ASIDE_MS;
                Err(reason)
            }
        }
    }

    /// Whether the call with this token is this fetcher's.
    pub fn owns(&self, token: CallToken) -> bool {
        self.in_flight == Some(token)
    }

    /// The answer to the call in flight arrived; returns whether there was
    /// one.
    pub fn answered(&mut self) -> bool {
        self.in_flight.take().is_some()
    }

    /// A success: the next call is due after `next_in_ms`.
    pub fn succeeded(&mut self, now_ms: u64, next_in_ms: u64) {
        self.schedule.succeeded(now_ms, next_in_ms);
    }

    /// A success that left work for the next call (a page of a paged
    /// answer): the next call is due at once.
    pub fn continued(&mut self, now_ms: u64) {
        self.schedule.continued(now_ms);
    }

    /// A failure; the next call backs off. Returns the line to log, unless
    /// rate-limited.
    pub fn failed(&mut self, now_ms: u64, what: &str) -> Option<String> {
        self.schedule.failed(&self.timing, now_ms, what)
    }
}
