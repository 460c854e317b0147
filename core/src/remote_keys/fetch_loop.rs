//! Remote JWKS of one provider in one VM: each tick, pick up the shared key
//! set when it changed; on the VM holding the provider's lease, fetch it
//! (after OIDC discovery when configured), early when a worker saw an
//! unknown `kid`, and publish what was fetched.

use std::cell::Cell;

use super::{
    decode_record, discovery_path, early_refetch_allowed, encode_record, jwks_path_from_discovery,
    parse_jwks, source_identity, JwksKeys, RemoteJwksConfig,
};
use crate::fetcher::Fetcher;
use crate::host::{Answer, CallToken, Host, Reply};
use crate::jwt::KeySet;

/// A VM tells the fetcher about an unknown `kid` at most this often.
const SIGNAL_EVERY_MS: u64 = 1000;

/// A silent fetcher is replaced quickly: keys matter more than the
/// occasional duplicate fetch.
const LEASE_TTL_MS: u64 = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Discovery,
    Jwks,
}

pub struct KeyFetchLoop {
    /// The provider's index in the policy.
    pub index: usize,
    name: String,
    issuer: Option<String>,
    config: RemoteJwksConfig,
    keys: JwksKeys,
    fetcher: Fetcher,
    jwks_path: Option<String>,
    /// What the call in flight asks for.
    step: Step,
    last_fetch_ms: u64,
    last_early_ms: Option<u64>,
    seen_cas: Option<u32>,
    fetched_ms: u64,
    last_signal_ms: Cell<u64>,
}

impl KeyFetchLoop {
    /// The loop of provider `index`; `owner` is this VM's lease owner id
    /// (unique per VM).
    pub fn new(
        index: usize,
        name: &str,
        issuer: Option<String>,
        config: RemoteJwksConfig,
        namespace: &str,
        owner: u64,
    ) -> Self {
        let keys = JwksKeys::new(namespace, name, source_identity(issuer.as_deref(), &config));
        let fetcher = Fetcher::new(keys.lease.clone(), owner, LEASE_TTL_MS, config.timing());
        KeyFetchLoop {
            index,
            name: name.to_string(),
            issuer,
            jwks_path: (!config.discovery).then(|| config.path.clone()),
            config,
            keys,
            fetcher,
            step: Step::Jwks,
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

    /// The largest answer the glue may copy in for this loop's calls.
    pub fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }

    /// Picks up a changed shared key set. Returns the new set, if any.
    pub fn sync(&mut self, host: &dyn Host) -> Option<KeySet> {
        let now_ms = host.now_ms();
        let (bytes, cas) = host.get(&self.keys.record);
        let mut fresh = None;
        if cas != self.seen_cas {
            self.seen_cas = cas;
            let record = bytes
                .as_deref()
                .and_then(|b| decode_record(b, &self.keys.identity));
            if let Some((fetched_ms, body)) = record {
                // Only valid sets are published, so this parse succeeds.
                match parse_jwks(body) {
                    Ok((keys, _)) => {
                        self.fetched_ms = fetched_ms;
                        host.gauge_set(&format!("jwks.{}.keys", self.name), keys.len() as u64);
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
            host.gauge_set(
                &format!("jwks.{}.seconds_since_refresh", self.name),
                now_ms.saturating_sub(self.fetched_ms) / 1000,
            );
        }
        fresh
    }

    /// The fetcher's part of a tick.
    pub fn maybe_fetch(&mut self, host: &dyn Host) {
        let now_ms = host.now_ms();
        if !self.fetcher.elected(host, now_ms) {
            return;
        }
        let want_ms = host
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
            self.fetcher.hurry(now_ms);
        }
        if !self.fetcher.due(now_ms) {
            return;
        }
        let (step, path) = match (&self.jwks_path, &self.issuer) {
            (Some(path), _) => (Step::Jwks, path.clone()),
            (None, Some(issuer)) => (Step::Discovery, discovery_path(issuer)),
            (None, None) => (Step::Jwks, self.config.path.clone()),
        };
        let headers = self.config.request_headers(&path);
        match self
            .fetcher
            .call(host, &self.config.cluster, &headers, self.config.timeout_ms)
        {
            Ok(_) => self.step = step,
            Err(reason) => {
                self.fail(
                    host,
                    &format!(
                        "call to cluster \"{}\" refused by the host: {reason}",
                        self.config.cluster
                    ),
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
        let step = self.step;
        let answer: Answer = match reply {
            Reply::Answer(answer) => answer,
            Reply::TooLarge(size) => {
                return self.fail(host, &format!("body of {size} bytes exceeds the limit"))
            }
        };
        match answer.status {
            Some(200) => {}
            Some(s) => return self.fail(host, &format!("HTTP status {s}")),
            None => return self.fail(host, "no response (timeout or connection failure)"),
        }
        let now_ms = host.now_ms();
        if step == Step::Discovery {
            match jwks_path_from_discovery(&answer.body) {
                Ok(path) => {
                    log::info!(
                        "jwt-auth: provider \"{}\": keys at {path} (OpenID discovery)",
                        self.name
                    );
                    self.jwks_path = Some(path);
                    // Fetch the keys on the next tick.
                    self.fetcher.succeeded(now_ms, 0);
                }
                Err(e) => self.fail(host, &e),
            }
            return;
        }
        let (keys, problems) = match parse_jwks(&answer.body) {
            Ok(parsed) => parsed,
            Err(e) => return self.fail(host, &e),
        };
        for problem in &problems {
            log::warn!(
                "jwt-auth: provider \"{}\": JWKS key skipped: {problem}",
                self.name
            );
        }
        if host
            .set(
                &self.keys.record,
                &encode_record(&self.keys.identity, now_ms, &answer.body),
                None,
            )
            .is_err()
        {
            return self.fail(host, "cannot write the key set to shared data");
        }
        self.last_fetch_ms = now_ms;
        let next = self.config.next_refresh_ms(answer.header("cache-control"));
        self.fetcher.succeeded(now_ms, next);
        host.counter_add(&format!("jwks.{}.fetch_ok", self.name), 1);
        log::info!(
            "jwt-auth: provider \"{}\": fetched {} key(s), next refresh in {} s",
            self.name,
            keys.len(),
            next / 1000
        );
    }

    fn fail(&mut self, host: &dyn Host, what: &str) {
        host.counter_add(&format!("jwks.{}.fetch_failed", self.name), 1);
        let what = format!(
            "provider \"{}\": JWKS fetch failed: {what}; keeping the last good keys",
            self.name
        );
        if let Some(line) = self.fetcher.failed(host.now_ms(), &what) {
            log::warn!("jwt-auth: {line}");
        }
    }

    /// Asks the fetcher (whichever VM holds the lease) to refetch early:
    /// a token named a `kid` this provider's keys lack.
    pub fn signal_unknown_kid(&self, host: &dyn Host) {
        let now_ms = host.now_ms();
        if now_ms < self.last_signal_ms.get() + SIGNAL_EVERY_MS {
            return;
        }
        self.last_signal_ms.set(now_ms);
        let _ = host.set(&self.keys.want, &now_ms.to_le_bytes(), None);
    }
}

#[cfg(test)]
mod tests;
