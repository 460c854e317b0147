//! The revocation loop of one VM: each tick, catch up with the shared set;
//! on the one VM holding the lease, poll the feed and publish what it
//! brings (the pages of a paged answer are gathered here and published
//! together, once the last arrives). Requests read the VM's replica with no
//! host call.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use revocation_protocol::{paged_request_path, SIGNATURE_HEADER};

use crate::callout::{self, Answer};
use crate::metrics::Metrics;
use crate::shared::HostStore;
use jwt_auth_core::revocation::channel::{publish, Keys, Replica, Update};
use jwt_auth_core::revocation::lease::Lease;
use jwt_auth_core::revocation::poller::{
    self, check_response, FeedConfig, FeedError, PageStep, Pages, Poller,
};
use jwt_auth_core::revocation::store::StoreError;

/// How often a VM drops expired entries from its replica.
const PURGE_EVERY_MS: u64 = 10_000;
/// A VM whose calls the host refuses stops contending for the lease this long.
const DISPATCH_RETRY_MS: u64 = 30_000;
/// At most one sync-problem log line per VM per this many milliseconds.
const SYNC_LOG_EVERY_MS: u64 = 10_000;

/// What HTTP contexts read.
#[derive(Clone, Default)]
pub struct RevocationView {
    pub replica: Rc<RefCell<Replica>>,
    /// `Some(retry_after)` when stale and the policy is to refuse.
    pub refuse_stale: Rc<Cell<Option<u64>>>,
}

pub struct RevocationLoop {
    config: FeedConfig,
    keys: Keys,
    lease: Lease,
    poller: Poller,
    /// Pages of an incomplete paged answer (fetcher only).
    pages: Pages,
    pub view: RevocationView,
    started_ms: u64,
    last_purge_ms: u64,
    no_dispatch_until_ms: u64,
    last_sync_log_ms: Option<u64>,
    in_flight: Option<u32>,
}

impl RevocationLoop {
    pub fn new(config: FeedConfig, owner: u64, now_ms: u64) -> Self {
        RevocationLoop {
            keys: Keys::new(&config.namespace),
            lease: Lease::new(
                format!("{}.rev.lease", config.namespace),
                owner,
                config.lease_ttl_ms(),
            ),
            poller: Poller::default(),
            pages: Pages::default(),
            view: RevocationView::default(),
            started_ms: now_ms,
            last_purge_ms: now_ms,
            no_dispatch_until_ms: 0,
            last_sync_log_ms: None,
            in_flight: None,
            config,
        }
    }

    /// Catches up with shared data at once, at configuration time: a new
    /// plugin instance in a proxy whose fetcher already published must not
    /// decide its first requests with an empty set.
    pub fn prime(&mut self, now_ms: u64) {
        self.sync(now_ms);
        let last_sync_ms = self.view.replica.borrow().meta.last_sync_ms;
        self.view.refuse_stale.set(poller::refuse_stale(
            &self.config,
            now_ms,
            last_sync_ms,
            self.started_ms,
        ));
    }

    pub fn tick_period(&self) -> Duration {
        Duration::from_millis(self.config.sync_interval_ms)
    }

    /// One tick: catch up, purge, refresh staleness, maybe poll.
    pub fn on_tick(&mut self, now_ms: u64, metrics: &Metrics) {
        if let Some(micros) = self.sync(now_ms) {
            metrics.gauge("revocation.last_apply_us", micros);
        }
        if now_ms >= self.last_purge_ms + PURGE_EVERY_MS {
            self.last_purge_ms = now_ms;
            self.view
                .replica
                .borrow_mut()
                .set
                .purge(now_ms / 1000, self.config.clock_skew_seconds);
        }
        let (held, last_sync_ms) = {
            let replica = self.view.replica.borrow();
            (replica.set.len() as u64, replica.meta.last_sync_ms)
        };
        let refuse = poller::refuse_stale(&self.config, now_ms, last_sync_ms, self.started_ms);
        self.view.refuse_stale.set(refuse);
        metrics.gauge("revocation.entries", held);
        let since = if last_sync_ms == 0 {
            self.started_ms
        } else {
            last_sync_ms
        };
        metrics.gauge(
            "revocation.seconds_since_sync",
            now_ms.saturating_sub(since) / 1000,
        );

        if now_ms < self.no_dispatch_until_ms {
            return;
        }
        if !self.lease.try_hold(&HostStore, now_ms) {
            // Another VM fetches now; whatever it publishes supersedes the
            // pages gathered here.
            self.pages.abandon();
            return;
        }
        if self.poller.due(&self.config.timing(), now_ms) {
            self.dispatch(now_ms, metrics);
        }
    }

    /// Catches up with the shared set. Returns how long it took (host
    /// clock, microseconds) when entries were applied.
    fn sync(&mut self, now_ms: u64) -> Option<u64> {
        let started = hostcalls::get_current_time().ok();
        let result = self.view.replica.borrow_mut().sync(&HostStore, &self.keys);
        let took = || {
            let elapsed = hostcalls::get_current_time()
                .ok()?
                .duration_since(started?)
                .ok()?;
            Some(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))
        };
        let applied = match &result {
            Ok(applied) if *applied > 0 => took(),
            _ => None,
        };
        if let Err(e) = result {
            let quiet = self
                .last_sync_log_ms
                .is_some_and(|t| now_ms < t + SYNC_LOG_EVERY_MS);
            if !quiet {
                self.last_sync_log_ms = Some(now_ms);
                log::warn!("jwt-auth: revocation sync from shared data failed ({e:?}); keeping the last good set");
            }
        }
        applied
    }

    fn dispatch(&mut self, now_ms: u64, metrics: &Metrics) {
        let published = self.view.replica.borrow().meta.cursor.clone();
        let cursor = self.pages.cursor(&published);
        let path = paged_request_path(&self.config.path, (!cursor.is_empty()).then_some(cursor));
        let headers = self.config.request_headers(&path);
        match callout::dispatch(&self.config.cluster, &headers, self.config.timeout_ms) {
            Ok(token) => {
                self.poller.started(now_ms);
                self.in_flight = Some(token);
            }
            Err(status) => {
                // This VM cannot call out (unknown cluster, or a thread
                // without one): let another VM hold the lease.
                self.lease.release(&HostStore);
                self.no_dispatch_until_ms = now_ms + DISPATCH_RETRY_MS;
                self.fail(now_ms, &FeedError::Dispatch, metrics);
                log::warn!(
                    "jwt-auth: revocation feed call to cluster \"{}\" refused by the host: {status:?}",
                    self.config.cluster
                );
            }
        }
    }

    /// Whether this loop is waiting for the call with this token.
    pub fn owns_call(&self, token: u32) -> bool {
        self.in_flight == Some(token)
    }

    pub fn on_response(
        &mut self,
        now_ms: u64,
        num_headers: usize,
        body_size: usize,
        metrics: &Metrics,
    ) {
        self.in_flight = None;
        let answer = match Answer::read(num_headers, body_size, self.config.max_body_bytes) {
            Ok(a) => a,
            Err(size) => return self.fail(now_ms, &FeedError::TooLarge(size), metrics),
        };
        let published = self.view.replica.borrow().meta.cursor.clone();
        let checked = check_response(
            &self.config,
            answer.status,
            answer.header(SIGNATURE_HEADER),
            &answer.body,
            self.pages.cursor(&published),
        );
        drop(answer);
        let response = match checked {
            Ok(r) => r,
            Err(e) => return self.fail(now_ms, &e, metrics),
        };
        let step = self
            .pages
            .accept(&response, self.config.max_pending_entries);
        drop(response);
        let done = match step {
            Ok(PageStep::Continue) => {
                // Ask for the next page on the next tick; nothing is
                // published, and the staleness clock does not move.
                self.poller.continued(now_ms);
                metrics.count("revocation.fetch_page");
                return;
            }
            Ok(PageStep::Complete(done)) => done,
            Err(e) => return self.fail(now_ms, &e, metrics),
        };
        let update = Update {
            reset: done.reset,
            entries: &done.entries,
            cursor: &done.cursor,
            now_ms,
        };
        let published = publish(
            &HostStore,
            &self.keys,
            &mut self.view.replica.borrow_mut(),
            &update,
        );
        match published {
            Ok(_) => {
                self.poller.succeeded(now_ms, self.config.poll_interval_ms);
                metrics.count("revocation.fetch_ok");
            }
            Err(StoreError::CasMismatch) => {
                // Another VM published meanwhile; its data stands and this
                // VM polls again from the shared cursor.
                self.poller.succeeded(now_ms, self.config.poll_interval_ms);
                metrics.count("revocation.publish_conflict");
            }
            Err(StoreError::Unavailable) => self.fail(now_ms, &FeedError::SharedData, metrics),
        }
    }

    fn fail(&mut self, now_ms: u64, error: &FeedError, metrics: &Metrics) {
        // A failed page fails the whole answer: the next attempt starts over
        // from the published cursor, after the usual backoff.
        let dropped = self.pages.pages();
        self.pages.abandon();
        metrics.count("revocation.fetch_failed");
        metrics.count(&format!("revocation.fetch_failed.{}", error.label()));
        let what = if dropped > 0 {
            format!(
                "revocation feed poll failed after {dropped} pages of a paged answer: {error}; \
                 dropping those pages and keeping the last good set"
            )
        } else {
            format!("revocation feed poll failed: {error}; keeping the last good set")
        };
        if let Some(line) = self.poller.failed(&self.config.timing(), now_ms, &what) {
            log::warn!("jwt-auth: {line}");
        }
    }
}
