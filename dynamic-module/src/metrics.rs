//! The names of every metric the core can report for one configuration.
//! Envoy's dynamic modules declare metrics while the configuration loads
//! and refuse new ones after it, so the module declares them all up front:
//! the decision counters (from the core's worker) and the loops' figures.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use jwt_auth_core::config::{KeySource, Policy};
use jwt_auth_core::worker::Worker;

use crate::abi::MetricId;

/// Envoy's id of each declared metric, by name (without the namespace).
/// Read on every request, with names from this configuration only (never
/// from a client), so a plain fast hash serves: no key to resist
/// flooding.
pub type MetricIds = HashMap<String, MetricId, BuildHasherDefault<NameHasher>>;

/// FNV-1a (64 bit) over a metric's name.
pub struct NameHasher(u64);

impl Default for NameHasher {
    fn default() -> Self {
        NameHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The revocation feed's failure labels (`revocation.fetch_failed.<label>`).
const FEED_FAILURES: &[&str] = &[
    "dispatch",
    "timeout",
    "status",
    "too_large",
    "missing_signature",
    "bad_signature",
    "invalid",
    "cursor_regression",
    "shared_data",
    "too_many_entries",
    "unbound",
    "malformed_binding",
    "replayed",
    "epoch_rollback",
];

/// Counters and gauges (names without the configuration's namespace).
pub struct Names {
    pub counters: Vec<String>,
    pub gauges: Vec<String>,
}

pub fn names(policy: &Policy, worker: &Worker) -> Names {
    let mut counters = worker.decision_metric_names();
    let mut gauges = Vec::new();
    for p in &policy.providers {
        if matches!(p.keys, KeySource::Remote(_)) {
            counters.push(format!("jwks.{}.fetch_ok", p.name));
            counters.push(format!("jwks.{}.fetch_failed", p.name));
            gauges.push(format!("jwks.{}.keys", p.name));
            gauges.push(format!("jwks.{}.seconds_since_refresh", p.name));
        }
    }
    if policy.revocation.is_some() {
        for c in ["fetch_page", "publish_conflict", "fetch_ok", "fetch_failed"] {
            counters.push(format!("revocation.{c}"));
        }
        for f in FEED_FAILURES {
            counters.push(format!("revocation.fetch_failed.{f}"));
        }
        for g in ["last_apply_us", "entries", "seconds_since_sync"] {
            gauges.push(format!("revocation.{g}"));
        }
    }
    Names { counters, gauges }
}
