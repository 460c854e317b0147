//! The core's [`Host`] in a dynamic module: the system clock, the
//! configuration's shared store, Envoy's counters and, on the main thread,
//! Envoy's callouts.

use std::time::{SystemTime, UNIX_EPOCH};

use jwt_auth_core::host::{CallToken, Host, SharedStore, StoreError};

use crate::abi::FilterHandle;
use crate::filter_config::Config;

/// The host as one thread sees it: a worker thread deciding a request
/// (`filter` set: counters go through that stream, no callouts), or the
/// main thread running the loops (callouts and counters through the
/// configuration).
pub struct NativeHost<'a> {
    pub config: &'a Config,
    pub filter: Option<FilterHandle>,
}

impl<'a> NativeHost<'a> {
    /// The host of the main thread: the loops' tick, callout answers, a
    /// configuration's start and end.
    pub fn main_thread(config: &'a Config) -> Self {
        NativeHost {
            config,
            filter: None,
        }
    }
}

impl SharedStore for NativeHost<'_> {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.config.store.get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        self.config.store.set(key, value, cas)
    }

    fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.config.store.remove(key)
    }
}

/// Unix microseconds of the system clock (Envoy's own time source for
/// `exp` checks of its jwt_authn filter is the same clock).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl Host for NativeHost<'_> {
    fn now_us(&self) -> u64 {
        now_us()
    }

    fn random(&self, buf: &mut [u8]) -> bool {
        getrandom::getrandom(buf).is_ok()
    }

    fn dispatch(
        &self,
        cluster: &str,
        headers: &[(String, String)],
        timeout_ms: u64,
    ) -> Result<CallToken, String> {
        if self.filter.is_some() {
            // Configuration callouts run on the main thread only.
            return Err("no callouts from a worker thread".into());
        }
        let id = self
            .config
            .handle
            .http_callout(cluster, headers, timeout_ms)
            .map_err(|code| format!("callout refused by Envoy (init result {code})"))?;
        self.config.call_token(id)
    }

    fn counter_add(&self, name: &str, n: u64) {
        let Some(id) = self.config.counter(name) else {
            return;
        };
        match self.filter {
            Some(filter) => filter.increment_counter(id, n),
            None => self.config.handle.increment_counter(id, n),
        }
    }

    fn gauge_set(&self, name: &str, value: u64) {
        if let Some(id) = self.config.gauge(name) {
            self.config.handle.set_gauge(id, value);
        }
    }
}
