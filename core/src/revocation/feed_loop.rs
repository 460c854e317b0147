//! The revocation loop of one VM: each tick, catch up with the shared set;
//! on the one VM holding the lease, poll the feed and publish what it
//! brings (the pages of a paged answer are gathered here and published
//! together, once the last arrives). Requests read the VM's replica with no
//! host call.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use revocation_protocol::{encode_nonce, BINDING_HEADER, NONCE_BYTES, SIGNATURE_HEADER};

use super::channel::{publish_onto, Keys, Replica, Update};
use super::feed::{
    self, check_response, FeedConfig, FeedError, FeedState, PageStep, Pages, SentPoll, Signatures,
};
use crate::fetcher::Fetcher;
use crate::host::{CallToken, Host, Reply, StoreError};

/// How often a VM drops expired entries from its replica.
const PURGE_EVERY_MS: u64 = 10_000;
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
    fetcher: Fetcher,
    /// Pages of an incomplete paged answer (fetcher only).
    pages: Pages,
    pub view: RevocationView,
    started_ms: u64,
    last_purge_ms: u64,
    last_sync_log_ms: Option<u64>,
    /// What the poll in flight sent; its answer must be bound to it.
    sent: SentPoll,
}

impl RevocationLoop {
    pub fn new(config: FeedConfig, owner: u64, now_ms: u64) -> Self {
        RevocationLoop {
            keys: Keys::new(&config.shared_prefix()),
            fetcher: Fetcher::new(
                format!("{}.lease", config.shared_prefix()),
                owner,
                config.lease_ttl_ms(),
                config.timing(),
            ),
            pages: Pages::default(),
            view: RevocationView::default(),
            started_ms: now_ms,
            last_purge_ms: now_ms,
            last_sync_log_ms: None,
            sent: SentPoll::default(),
            config,
        }
    }

    /// Catches up with shared data at once, at configuration time: a new
    /// plugin instance in a proxy whose fetcher already published must not
    /// decide its first requests with an empty set.
    pub fn prime(&mut self, host: &dyn Host) {
        let now_ms = host.now_ms();
        self.sync(host, now_ms);
        let last_sync_ms = self.view.replica.borrow().meta.last_sync_ms;
        self.view.refuse_stale.set(feed::refuse_stale(
            &self.config,
            now_ms,
            last_sync_ms,
            self.started_ms,
        ));
    }

    pub fn tick_period_ms(&self) -> u64 {
        self.config.sync_interval_ms
    }

    /// The largest answer the glue may copy in for this loop's calls.
    pub fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }

    /// One tick: catch up, purge, refresh staleness, maybe poll.
    pub fn on_tick(&mut self, host: &dyn Host) {
        let now_ms = host.now_ms();
        if let Some(micros) = self.sync(host, now_ms) {
            host.gauge_set("revocation.last_apply_us", micros);
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
        let refuse = feed::refuse_stale(&self.config, now_ms, last_sync_ms, self.started_ms);
        self.view.refuse_stale.set(refuse);
        host.gauge_set("revocation.entries", held);
        let since = if last_sync_ms == 0 {
            self.started_ms
        } else {
            last_sync_ms
        };
        host.gauge_set(
            "revocation.seconds_since_sync",
            now_ms.saturating_sub(since) / 1000,
        );

        if !self.fetcher.elected(host, now_ms) {
            // Another VM fetches now; whatever it publishes supersedes the
            // pages gathered here.
            self.pages.abandon();
            return;
        }
        if self.fetcher.due(now_ms) {
            self.dispatch(host);
        }
    }

    /// Catches up with the shared set. Returns how long it took (host
    /// clock, microseconds) when entries were applied.
    fn sync(&mut self, host: &dyn Host, now_ms: u64) -> Option<u64> {
        let started = host.now_us();
        let result = self.view.replica.borrow_mut().sync(host, &self.keys);
        let applied = match &result {
            Ok(applied) if *applied > 0 => Some(host.now_us().saturating_sub(started)),
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

    fn dispatch(&mut self, host: &dyn Host) {
        let basis = self.view.replica.borrow().meta.cursor.clone();
        let since = self.pages.cursor(&basis).to_string();
        // A fresh nonce per poll: the feed binds its answer to it, so no
        // recorded answer can stand in for this one.
        let mut random = [0u8; NONCE_BYTES];
        if !host.random(&mut random) {
            log::warn!("jwt-auth: no randomness from the host for the feed poll's nonce");
        }
        let nonce = encode_nonce(&random);
        let path = self.config.poll_path(&since, &nonce);
        let headers = self.config.request_headers(&path);
        let called = self.fetcher.call(
            host,
            &self.config.cluster,
            &headers,
            self.config.call_timeout_ms(),
        );
        match called {
            Ok(_) => {
                self.sent = SentPoll {
                    since,
                    nonce,
                    basis,
                    sent_ms: host.now_ms(),
                };
            }
            Err(reason) => {
                self.fail(host, &FeedError::Dispatch);
                log::warn!(
                    "jwt-auth: revocation feed call to cluster \"{}\" refused by the host: {reason}",
                    self.config.cluster
                );
            }
        }
    }

    /// Whether this loop is waiting for the call with this token.
    pub fn owns_call(&self, token: CallToken) -> bool {
        self.fetcher.owns(token)
    }

    pub fn on_response(&mut self, host: &dyn Host, reply: Reply) {
        if !self.fetcher.answered() {
            return;
        }
        let answer = match reply {
            Reply::Answer(answer) => answer,
            Reply::TooLarge(size) => return self.fail(host, &FeedError::TooLarge(size)),
        };
        let now_ms = host.now_ms();
        let checked = {
            let replica = self.view.replica.borrow();
            let published = FeedState {
                epoch: &replica.meta.epoch,
                reset_time: replica.meta.reset_time,
            };
            check_response(
                &self.config,
                answer.status,
                Signatures {
                    body: answer.header(SIGNATURE_HEADER),
                    binding: answer.header(BINDING_HEADER),
                },
                &answer.body,
                &self.sent,
                self.pages.state(published),
                now_ms / 1000,
            )
        };
        drop(answer);
        let checked = match checked {
            Ok(c) => c,
            Err(e) => return self.fail(host, &e),
        };
        let step = self.pages.accept(&checked, self.config.max_pending_entries);
        drop(checked);
        let done = match step {
            Ok(PageStep::Continue) => {
                // Ask for the next page at once; nothing is published, and
                // the staleness clock does not move.
                self.fetcher.continued(now_ms);
                host.counter_add("revocation.fetch_page", 1);
                self.poll_again_now(host);
                return;
            }
            Ok(PageStep::Complete(done)) => done,
            Err(e) => return self.fail(host, &e),
        };
        // Applying a large answer may outlast the lease: a VM that lost it
        // meanwhile leaves publishing to the new holder.
        let now_ms = host.now_ms();
        if !self.fetcher.still_elected(host, now_ms) {
            self.fetcher.succeeded(now_ms, self.config.poll_interval_ms);
            host.counter_add("revocation.publish_conflict", 1);
            return;
        }
        // A reset's tokens become the new set in place, before the update
        // is published (sorting them is most of the work).
        let mut done = done;
        let base = done
            .reset
            .then(|| std::mem::take(&mut done.tokens).into_set());
        let update = Update {
            reset: done.reset,
            entries: &done.entries,
            cursor: &done.cursor,
            now_ms,
            basis: &self.sent.basis,
            bound: done
                .bound
                .as_ref()
                .map(|(epoch, time)| (epoch.as_str(), *time)),
            writer: self.fetcher.owner(),
            scoped: done.scoped,
        };
        let next = self.next_poll_in_ms(&done, now_ms);
        let published = publish_onto(
            host,
            &self.keys,
            &mut self.view.replica.borrow_mut(),
            &update,
            base,
        );
        match published {
            Ok(_) => {
                self.fetcher.succeeded(now_ms, next);
                host.counter_add("revocation.fetch_ok", 1);
                self.poll_again_now(host);
            }
            Err(StoreError::CasMismatch) => {
                // Another VM published meanwhile; its data stands and this
                // VM polls again from the shared cursor.
                self.fetcher.succeeded(now_ms, self.config.poll_interval_ms);
                host.counter_add("revocation.publish_conflict", 1);
            }
            Err(StoreError::Unavailable) => self.fail(host, &FeedError::SharedData),
        }
    }

    /// Sends the next poll from the answer's callback when it is due at
    /// once (the next page of an answer, or the held poll after news)
    /// rather than on the next tick: a revocation written in between would
    /// otherwise wait up to `sync_interval_ms` for a poll to carry it, and a
    /// snapshot of many pages would wait that long per page.
    fn poll_again_now(&mut self, host: &dyn Host) {
        let now_ms = host.now_ms();
        if self.fetcher.due(now_ms) && self.fetcher.still_elected(host, now_ms) {
            self.dispatch(host);
        }
    }

    /// When to poll again after an answer: at once when long polls are on
    /// and the feed held the poll or brought news (the next change is then
    /// announced by the next held poll); after `poll_interval_ms` when it
    /// answered early with nothing (a feed that does not hold polls, or one
    /// at its limit), so that such a feed is not polled in a loop.
    fn next_poll_in_ms(&self, done: &feed::Completed, now_ms: u64) -> u64 {
        let held = now_ms.saturating_sub(self.sent.sent_ms) >= self.config.wait_ms / 2;
        if self.config.wait_ms > 0 && (held || done.reset || !done.is_empty()) {
            0
        } else {
            self.config.poll_interval_ms
        }
    }

    fn fail(&mut self, host: &dyn Host, error: &FeedError) {
        // A failed page fails the whole answer: the next attempt starts over
        // from the published cursor, after the usual backoff.
        let dropped = self.pages.pages();
        self.pages.abandon();
        host.counter_add("revocation.fetch_failed", 1);
        host.counter_add(&format!("revocation.fetch_failed.{}", error.label()), 1);
        let what = if dropped > 0 {
            format!(
                "revocation feed poll failed after {dropped} pages of a paged answer: {error}; \
                 dropping those pages and keeping the last good set"
            )
        } else {
            format!("revocation feed poll failed: {error}; keeping the last good set")
        };
        if let Some(line) = self.fetcher.failed(host.now_ms(), &what) {
            log::warn!("jwt-auth: {line}");
        }
    }
}

#[cfg(test)]
mod tests;
