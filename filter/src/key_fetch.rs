//! Remote JWKS of one provider in one VM: each tick, pick up the shared key
//! set when it changed; on the VM holding the provider's lease, fetch it
//! (after OIDC discovery when configured), early when a worker saw an
//! unknown `kid`, and publish what was fetched.

use std::cell::Cell;

use proxy_wasm::hostcalls;

use crate::callout::{self, Answer};
use crate::metrics::Metrics;
use crate::shared::HostStore;
use jwt_auth_core::jwks::{
    decode_record, discovery_path, early_refetch_allowed, encode_record, jwks_path_from_discovery,
    parse_jwks, JwksKeys, RemoteJwksConfig,
};
use jwt_auth_core::jwt::KeySet;
use jwt_auth_core::poll::Poller;
use jwt_auth_core::revocation::lease::Lease;
use jwt_auth_core::revocation::store::SharedStore;

/// A VM tells the fetcher about an unknown `kid` at most this often.
const SIGNAL_EVERY_MS: u64 = 1000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Discovery,
    Jwks,
}

pub struct JwksLoop {
    pub index: usize,
    name: String,
    issuer: Option<String>,
    config: RemoteJwksConfig,
    keys: JwksKeys,
    lease: Lease,
    poller: Poller,
    jwks_path: Option<String>,
    in_flight: Option<(u32, Step)>,
    last_fetch_ms: u64,
    last_early_ms: Option<u64>,
    seen_cas: Option<u32>,
    fetched_ms: u64,
    last_signal_ms: Cell<u64>,
}

impl JwksLoop {
    pub fn new(
        index: usize,
        name: &str,
        issuer: Option<String>,
        config: RemoteJwksConfig,
        namespace: &str,
        owner: u64,
    ) -> Self {
        let keys = JwksKeys::new(namespace, name);
        // A silent fetcher is replaced quickly: keys matter more than the
        // occasional duplicate fetch.
        let lease = Lease::new(keys.lease.clone(), owner, 2000);
        JwksLoop {
            index,
            name: name.to_string(),
            issuer,
            jwks_path: (!config.discovery).then(|| config.path.clone()),
            config,
            keys,
            lease,
            poller: Poller::default(),
            in_flight: None,
            last_fetch_ms: 0,
            last_early_ms: None,
            seen_cas: None,
            fetched_ms: 0,
            last_signal_ms: Cell::new(0),
        }
    }

    /// The longest a request may wait for the first key set.
    pub fn wait_limit_ms(&self) -> u64 {
        self.config.timeout_ms
    }

    /// Picks up a changed shared key set. Returns the new set, if any.
    pub fn sync(&mut self, now_ms: u64, metrics: &Metrics) -> Option<KeySet> {
        let (bytes, cas) = HostStore.get(&self.keys.record);
        let mut fresh = None;
        if cas != self.seen_cas {
            self.seen_cas = cas;
            if let Some((fetched_ms, body)) = bytes.as_deref().and_then(decode_record) {
                // Only valid sets are published, so this parse succeeds;
                // a failure would mean another plugin wrote the key.
                match parse_jwks(body) {
                    Ok((keys, _)) => {
                        self.fetched_ms = fetched_ms;
                        metrics.gauge(&format!("jwks.{}.keys", self.name), keys.len() as u64);
                        fresh = Some(keys);
                    }
                    Err(e) => log::warn!(
                        "jwt-auth: shared key set of provider \"{}\" unreadable: {e}",
                        self.name
                    ),
                }
            }
        }
        if self.fetched_ms > 0 {
            metrics.gauge(
                &format!("jwks.{}.seconds_since_refresh", self.name),
                now_ms.saturating_sub(self.fetched_ms) / 1000,
            );
        }
        fresh
    }

    /// The fetcher's part of a tick.
    pub fn maybe_fetch(&mut self, now_ms: u64, metrics: &Metrics) {
        if !self.lease.try_hold(&HostStore, now_ms) {
            return;
        }
        let want_ms = HostStore
            .get(&self.keys.want)
            .0
            .and_then(|b| Some(u64::from_le_bytes(b.get(..8)?.try_into().ok()?)))
            .unwrap_or(0);
        if early_refetch_allowed(
            &self.config,
            want_ms,
            self.last_fetch_ms,
            self.last_early_ms,
            now_ms,
        ) {
            self.last_early_ms = Some(now_ms);
            self.poller.hurry(now_ms);
        }
        if !self.poller.due(&self.config.timing(), now_ms) {
            return;
        }
        let (step, path) = match (&self.jwks_path, &self.issuer) {
            (Some(path), _) => (Step::Jwks, path.clone()),
            (None, Some(issuer)) => (Step::Discovery, discovery_path(issuer)),
            (None, None) => (Step::Jwks, self.config.path.clone()),
        };
        let headers = self.config.request_headers(&path);
        match callout::dispatch(&self.config.cluster, &headers, self.config.timeout_ms) {
            Ok(token) => {
                self.poller.started(now_ms);
                self.in_flight = Some((token, step));
            }
            Err(status) => {
                self.lease.release(&HostStore);
                self.fail(
                    now_ms,
                    &format!(
                        "call to cluster \"{}\" refused by the host: {status:?}",
                        self.config.cluster
                    ),
                    metrics,
                );
            }
        }
    }

    pub fn owns_call(&self, token: u32) -> bool {
        self.in_flight.is_some_and(|(t, _)| t == token)
    }

    pub fn on_response(
        &mut self,
        now_ms: u64,
        num_headers: usize,
        body_size: usize,
        metrics: &Metrics,
    ) {
        let Some((_, step)) = self.in_flight.take() else {
            return;
        };
        let answer = match Answer::read(num_headers, body_size, self.config.max_body_bytes) {
            Ok(a) => a,
            Err(size) => {
                return self.fail(
                    now_ms,
                    &format!("body of {size} bytes exceeds the limit"),
                    metrics,
                )
            }
        };
        match answer.status {
            Some(200) => {}
            Some(s) => return self.fail(now_ms, &format!("HTTP status {s}"), metrics),
            None => {
                return self.fail(
                    now_ms,
                    "no response (timeout or connection failure)",
                    metrics,
                )
            }
        }
        if step == Step::Discovery {
            match jwks_path_from_discovery(&answer.body) {
                Ok(path) => {
                    log::info!(
                        "jwt-auth: provider \"{}\": keys at {path} (OpenID discovery)",
                        self.name
                    );
                    self.jwks_path = Some(path);
                    // Fetch the keys on the next tick.
                    self.poller.succeeded(now_ms, 0);
                }
                Err(e) => self.fail(now_ms, &e, metrics),
            }
            return;
        }
        let (keys, problems) = match parse_jwks(&answer.body) {
            Ok(parsed) => parsed,
            Err(e) => return self.fail(now_ms, &e, metrics),
        };
        for problem in &problems {
            log::warn!(
                "jwt-auth: provider \"{}\": JWKS key skipped: {problem}",
                self.name
            );
        }
        if HostStore
            .set(
                &self.keys.record,
                &encode_record(now_ms, &answer.body),
                None,
            )
            .is_err()
        {
            return self.fail(now_ms, "cannot write the key set to shared data", metrics);
        }
        self.last_fetch_ms = now_ms;
        let next = self.config.next_refresh_ms(answer.header("cache-control"));
        self.poller.succeeded(now_ms, next);
        metrics.count(&format!("jwks.{}.fetch_ok", self.name));
        log::info!(
            "jwt-auth: provider \"{}\": fetched {} key(s), next refresh in {} s",
            self.name,
            keys.len(),
            next / 1000
        );
    }

    fn fail(&mut self, now_ms: u64, what: &str, metrics: &Metrics) {
        metrics.count(&format!("jwks.{}.fetch_failed", self.name));
        let what = format!(
            "provider \"{}\": JWKS fetch failed: {what}; keeping the last good keys",
            self.name
        );
        if let Some(line) = self.poller.failed(&self.config.timing(), now_ms, &what) {
            log::warn!("jwt-auth: {line}");
        }
    }

    /// Asks the fetcher (whichever VM holds the lease) to refetch early:
    /// a token named a `kid` this provider's keys lack.
    pub fn signal_unknown_kid(&self, now_ms: u64) {
        if now_ms < self.last_signal_ms.get() + SIGNAL_EVERY_MS {
            return;
        }
        self.last_signal_ms.set(now_ms);
        let _ = hostcalls::set_shared_data(&self.keys.want, Some(&now_ms.to_le_bytes()), None);
    }
}
