//! Everything one VM of the filter holds, and the request path through it.
//!
//! Envoy runs one VM per worker thread (and one on the main thread); each
//! has its own [`Worker`]: the compiled policy, the verified-token caches,
//! the remote key sets, the revocation replica, the loops that keep those
//! fresh, and the requests waiting for a provider's first key set. The glue
//! calls [`Worker::decide`] per request, [`Worker::on_tick`] on its timer and
//! [`Worker::on_response`] for callout answers, and only moves bytes.

use std::cell::RefCell;

use crate::cache::TokenCaches;
use crate::config::{KeySource, Policy};
use crate::decision::{decide, AllowKind, Decision, Env, RemoteKeys};
use crate::deny::DenyReason;
use crate::host::{CallToken, Host, Reply};
use crate::jwt::{KeySet, SignatureAccelerator, TokenError};
use crate::remote_keys::KeyFetchLoop;
use crate::request::Request;
use crate::revocation::feed_loop::{RevocationLoop, RevocationView};

/// Tick period when only remote keys need a timer.
const KEYS_TICK_MS: u64 = 100;
/// Tick period when no loop needs a timer: the decision counters are
/// flushed to the host this often.
const FLUSH_TICK_MS: u64 = 1000;

/// Current key sets of remote providers, by provider index.
#[derive(Default)]
pub struct KeyRing(Vec<Option<KeySet>>);

impl KeyRing {
    pub fn set(&mut self, index: usize, keys: KeySet) {
        if self.0.len() <= index {
            self.0.resize(index + 1, None);
        }
        if let Some(slot) = self.0.get_mut(index) {
            *slot = Some(keys);
        }
    }
}

impl RemoteKeys for KeyRing {
    fn keys(&self, provider: usize) -> Option<&KeySet> {
        self.0.get(provider).and_then(Option::as_ref)
    }
}

/// What the glue does with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Apply this decision (write headers and continue, or answer).
    Apply(Decision),
    /// Hold the request: its provider has no keys yet. The worker hands it
    /// back from [`Worker::on_tick`] to be decided again.
    Wait,
}

/// A request on hold: its context id and since when (unix ms).
pub type Waiting = (u32, u64);

/// One decision counter: whether it counts refusals, the provider it is
/// about (an index into the policy's providers, so the set of names is
/// bounded by the configuration) and the decision's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Figure {
    denied: bool,
    provider: Option<usize>,
    label: &'static str,
}

pub struct Worker {
    pub policy: Policy,
    cache: TokenCaches,
    keys: RefCell<KeyRing>,
    key_loops: RefCell<Vec<KeyFetchLoop>>,
    revocation: Option<RefCell<RevocationLoop>>,
    view: Option<RevocationView>,
    waiting: RefCell<Vec<Waiting>>,
    accelerator: Option<Box<dyn SignatureAccelerator>>,
    /// Decisions counted since the last flush. Counting in the VM keeps a
    /// host call off every request. A list, not a map: it holds a few
    /// figures between flushes, found faster by a scan than by hashing.
    counts: RefCell<Vec<(Figure, u64)>>,
    /// Full metric names of figures, made once.
    decision_names: RefCell<Vec<(Figure, String)>>,
}

impl Worker {
    /// A worker for `policy`; `owner` is this VM's lease owner id (unique per
    /// VM), `accelerator` the host's native signature checks when they
    /// passed their self-test.
    pub fn new(
        policy: Policy,
        owner: u64,
        now_ms: u64,
        accelerator: Option<Box<dyn SignatureAccelerator>>,
    ) -> Self {
        let key_loops: Vec<KeyFetchLoop> = policy
            .providers
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match &p.keys {
                KeySource::Remote(cfg) => Some(KeyFetchLoop::new(
                    i,
                    &p.name,
                    p.issuer.clone(),
                    cfg.clone(),
                    &policy.namespace,
                    owner,
                )),
                KeySource::Inline(_) => None,
            })
            .collect();
        let revocation = policy
            .revocation
            .clone()
            .map(|feed| RevocationLoop::new(feed, owner, now_ms));
        let view = revocation.as_ref().map(|r| r.view.clone());
        Worker {
            cache: TokenCaches::new(policy.providers.iter().map(|p| p.token_cache_entries)),
            keys: RefCell::default(),
            key_loops: RefCell::new(key_loops),
            revocation: revocation.map(RefCell::new),
            view,
            waiting: RefCell::default(),
            accelerator,
            counts: RefCell::default(),
            decision_names: RefCell::default(),
            policy,
        }
    }

    /// Catches up with what other VMs already published, before the first
    /// request: a new plugin instance must not decide with an empty set.
    pub fn prime(&self, host: &dyn Host) {
        if let Some(rev) = &self.revocation {
            rev.borrow_mut().prime(host);
        }
    }

    /// How often [`Worker::on_tick`] must run: the loops' period, at most
    /// a second (the decision counters are flushed on the tick).
    pub fn tick_period_ms(&self) -> u64 {
        let revocation = self
            .revocation
            .as_ref()
            .map(|r| r.borrow().tick_period_ms());
        let keys = (!self.key_loops.borrow().is_empty()).then_some(KEYS_TICK_MS);
        [revocation, keys]
            .into_iter()
            .flatten()
            .fold(FLUSH_TICK_MS, u64::min)
    }

    /// One tick: the decision counters, the revocation and key loops, then
    /// the requests on hold, handed back to be decided again (their keys
    /// arrived, or they waited long enough to get their 401).
    pub fn on_tick(&self, host: &dyn Host) -> Vec<Waiting> {
        self.flush_counts(host);
        if let Some(rev) = &self.revocation {
            rev.borrow_mut().on_tick(host);
        }
        for l in self.key_loops.borrow_mut().iter_mut() {
            if let Some(keys) = l.sync(host) {
                self.keys.borrow_mut().set(l.index, keys);
                // Tokens verified with keys that may be gone are re-checked.
                self.cache.clear(l.index);
            }
            l.maybe_fetch(host);
        }
        std::mem::take(&mut *self.waiting.borrow_mut())
    }

    /// The largest body the glue may copy in for the answer to `token`;
    /// `None` when no loop of this worker started that call.
    pub fn body_limit(&self, token: CallToken) -> Option<usize> {
        if let Some(rev) = &self.revocation {
            let rev = rev.borrow();
            if rev.owns_call(token) {
                return Some(rev.max_body_bytes());
            }
        }
        self.key_loops
            .borrow()
            .iter()
            .find(|l| l.owns_call(token))
            .map(KeyFetchLoop::max_body_bytes)
    }

    /// Hands a callout's answer to the loop that started the call.
    pub fn on_response(&self, host: &dyn Host, token: CallToken, reply: Reply) {
        if let Some(rev) = &self.revocation {
            let mut rev = rev.borrow_mut();
            if rev.owns_call(token) {
                return rev.on_response(host, reply);
            }
        }
        let mut loops = self.key_loops.borrow_mut();
        if let Some(l) = loops.iter_mut().find(|l| l.owns_call(token)) {
            l.on_response(host, reply);
        }
    }

    /// Decides one request of context `context_id` at `now_ms` (the host's
    /// clock, as fresh as the host keeps it for requests). `waiting_since`
    /// is set when the request already waited for keys.
    pub fn decide(
        &self,
        host: &dyn Host,
        now_ms: u64,
        context_id: u32,
        request: &Request<'_>,
        waiting_since: Option<u64>,
    ) -> Step {
        let decision = self.decide_now(request, now_ms / 1000);
        if let Decision::Deny(deny) = &decision {
            if let Some(index) = deny.remote_provider {
                match deny.reason {
                    DenyReason::KeysUnavailable if self.may_wait(index, now_ms, waiting_since) => {
                        self.waiting
                            .borrow_mut()
                            .push((context_id, waiting_since.unwrap_or(now_ms)));
                        return Step::Wait;
                    }
                    DenyReason::InvalidToken(TokenError::UnknownKid) => {
                        if let Some(l) = self.key_loops.borrow().iter().find(|l| l.index == index) {
                            l.signal_unknown_kid(host);
                        }
                    }
                    _ => {}
                }
            }
        }
        self.count(&decision);
        Step::Apply(decision)
    }

    /// A request that ended (its client went away) leaves the queue.
    pub fn forget(&self, context_id: u32) {
        self.waiting
            .borrow_mut()
            .retain(|(id, _)| *id != context_id);
    }

    fn decide_now(&self, request: &Request<'_>, now: u64) -> Decision {
        let keys = self.keys.borrow();
        let env = Env {
            remote_keys: &*keys,
            accelerator: self.accelerator.as_deref(),
            cache: Some(&self.cache),
            ..Env::basic(now)
        };
        match &self.view {
            None => decide(&self.policy, request, &env),
            Some(view) => {
                let replica = view.replica.borrow();
                let env = Env {
                    revocation: &replica.set,
                    stale_revocations: view.refuse_stale.get(),
                    ..env
                };
                decide(&self.policy, request, &env)
            }
        }
    }

    fn may_wait(&self, index: usize, now_ms: u64, since: Option<u64>) -> bool {
        let limit = self
            .key_loops
            .borrow()
            .iter()
            .find(|l| l.index == index)
            .map_or(0, KeyFetchLoop::wait_limit_ms);
        since.is_none_or(|s| now_ms < s + limit)
    }

    /// Counts one decision, in the VM: `<label>` for an allow,
    /// `denied.<label>` for a refusal and, when a provider gave the verdict,
    /// `allowed.<provider>` or `denied.<provider>.<label>` as well.
    fn count(&self, decision: &Decision) {
        let (denied, provider) = match decision {
            Decision::Allow(a) => (false, a.provider),
            Decision::Deny(d) => (true, d.provider),
            Decision::Reply(_) => (false, None),
        };
        let label = decision.label();
        let mut counts = self.counts.borrow_mut();
        let mut add = |provider| {
            let figure = Figure {
                denied,
                provider,
                label,
            };
            match counts.iter_mut().find(|(f, _)| *f == figure) {
                Some((_, n)) => *n += 1,
                None => counts.push((figure, 1)),
            }
        };
        add(None);
        if provider.is_some() {
            add(provider);
        }
    }

    /// Adds the decisions counted since the last flush to the host's
    /// counters. Runs on every tick and when the VM goes away, so the
    /// counters stay within one tick of the truth.
    pub fn flush_counts(&self, host: &dyn Host) {
        let mut counts = self.counts.borrow_mut();
        let mut names = self.decision_names.borrow_mut();
        // Drained, not replaced: the list keeps its room for the next
        // request.
        for (figure, n) in counts.drain(..) {
            let at = match names.iter().position(|(f, _)| *f == figure) {
                Some(at) => at,
                None => {
                    names.push((figure, self.metric_name(figure)));
                    names.len() - 1
                }
            };
            if let Some((_, name)) = names.get(at) {
                host.counter_add(name, n);
            }
        }
    }

    /// The name of every decision counter this worker may add to (the
    /// loops' own figures, `jwks.*` and `revocation.*`, are not among them):
    /// a host that must declare its counters before the first request
    /// declares these.
    pub fn decision_metric_names(&self) -> Vec<String> {
        let allows = [
            AllowKind::Bypassed,
            AllowKind::Anonymous,
            AllowKind::Authenticated,
            AllowKind::CorsPreflight,
        ]
        .map(AllowKind::label);
        let providers = std::iter::once(None).chain((0..self.policy.providers.len()).map(Some));
        // The metadata document the filter serves itself is counted once,
        // under no provider.
        let mut names = vec![self.metric_name(Figure {
            denied: false,
            provider: None,
            label: "resource_metadata",
        })];
        for provider in providers {
            for (denied, labels) in [(false, &allows[..]), (true, crate::deny::LABELS)] {
                for &label in labels {
                    names.push(self.metric_name(Figure {
                        denied,
                        provider,
                        label,
                    }));
                }
            }
        }
        names
    }

    fn metric_name(&self, figure: Figure) -> String {
        let provider = figure
            .provider
            .and_then(|i| self.policy.providers.get(i))
            .map(|p| p.name.as_str());
        match (figure.denied, provider) {
            (true, None) => format!("denied.{}", figure.label),
            (true, Some(p)) => format!("denied.{p}.{}", figure.label),
            (false, None) => figure.label.to_string(),
            (false, Some(p)) => format!("{}.{p}", figure.label),
        }
    }
}

#[cfg(test)]
mod tests;
