//! What each of Envoy's events does: the configuration compiled once on the
//! main thread and shared by every worker thread, one core [`Worker`] per
//! worker thread (its token cache and counts need no lock), and a request's
//! decision applied to Envoy's header map or answered locally.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use jwt_auth_core::config::{KeySource, Policy};
use jwt_auth_core::decision::Decision;
use jwt_auth_core::host::CallToken;
use jwt_auth_core::request::{Header, Request};
use jwt_auth_core::worker::{Step, Worker};

use crate::abi::{
    self, CalloutAnswer, ConfigHandle, FilterHandle, HeadersStatus, LogLevel, MetricId,
};
use crate::host::{now_us, NativeHost};
use crate::store::LockedStore;

/// One loaded filter configuration, shared by all of Envoy's threads.
pub struct Config {
    /// Tells this configuration's workers apart from those of a
    /// configuration loaded before or after it (a listener update).
    id: u64,
    pub handle: ConfigHandle,
    policy: Policy,
    pub store: LockedStore,
    counters: HashMap<String, MetricId>,
    gauges: HashMap<String, MetricId>,
}

static NEXT_CONFIG_ID: AtomicU64 = AtomicU64::new(1);

impl Config {
    pub fn counter(&self, name: &str) -> Option<MetricId> {
        self.counters.get(name).copied()
    }

    pub fn gauge(&self, name: &str) -> Option<MetricId> {
        self.gauges.get(name).copied()
    }

    /// The core's token for an Envoy callout id.
    pub fn call_token(&self, id: u64) -> Result<CallToken, String> {
        CallToken::try_from(id).map_err(|_| format!("callout id {id} out of range"))
    }
}

/// What the native module cannot serve (yet): named by field, so the
/// configuration is refused at load instead of silently running without it.
fn unsupported(policy: &Policy) -> Option<String> {
    for (i, p) in policy.providers.iter().enumerate() {
        if matches!(p.keys, KeySource::Remote(_)) {
            return Some(format!(
                "providers[{i}].remote_jwks (provider {:?}): remote key sets are not served by \
                 the dynamic module; give the keys inline (\"jwks\") or use the wasm module",
                p.name
            ));
        }
    }
    if policy.revocation.is_some() {
        return Some(
            "revocation: the revocation feed is not served by the dynamic module; use the wasm \
             module"
                .into(),
        );
    }
    None
}

/// Compiles the configuration (the same JSON the wasm filter reads) and
/// declares every counter it can add to: Envoy freezes stat creation once
/// the configuration is loaded. `None` refuses the configuration, after one
/// log line naming the field.
pub fn config_new(handle: ConfigHandle, _name: &[u8], json: &[u8]) -> Option<Box<Config>> {
    let policy = match Policy::from_json(json) {
        Ok(policy) => policy,
        Err(e) => {
            abi::log(LogLevel::Error, &format!("jwt-auth: {e}"));
            return None;
        }
    };
    if let Some(why) = unsupported(&policy) {
        abi::log(
            LogLevel::Error,
            &format!("jwt-auth: invalid configuration: {why}"),
        );
        return None;
    }
    let names = Worker::new(policy.clone(), 0, 0, None).decision_metric_names();
    let mut counters = HashMap::with_capacity(names.len());
    for name in names {
        let full = format!("{}.{name}", policy.namespace);
        match handle.define_counter(&full) {
            Some(id) => {
                counters.insert(name, id);
            }
            None => {
                abi::log(
                    LogLevel::Error,
                    &format!("jwt-auth: Envoy refused to define the counter {full}"),
                );
                return None;
            }
        }
    }
    abi::log(
        LogLevel::Info,
        &format!(
            "jwt-auth: configuration loaded (dynamic module): {} provider(s), {} rule(s)",
            policy.providers.len(),
            policy.rules.len()
        ),
    );
    Some(Box::new(Config {
        id: NEXT_CONFIG_ID.fetch_add(1, Ordering::Relaxed),
        handle,
        policy,
        store: LockedStore::default(),
        counters,
        gauges: HashMap::new(),
    }))
}

thread_local! {
    /// This thread's worker for each configuration it served, by config id.
    static WORKERS: RefCell<Vec<(u64, Rc<Worker>)>> = const { RefCell::new(Vec::new()) };
}

/// Configurations destroyed since their workers were made: their workers
/// are dropped by each thread the next time it makes one.
static RETIRED: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());

impl Drop for Config {
    fn drop(&mut self) {
        if let Ok(mut retired) = RETIRED.lock() {
            retired.push(self.id);
        }
    }
}

/// This thread's worker for `config`, made on first use.
fn worker(config: &Config) -> Rc<Worker> {
    WORKERS.with(|cell| {
        let mut workers = cell.borrow_mut();
        if let Some((_, w)) = workers.iter().find(|(id, _)| *id == config.id) {
            return Rc::clone(w);
        }
        if let Ok(retired) = RETIRED.lock() {
            workers.retain(|(id, _)| !retired.contains(id));
        }
        let now_ms = now_us() / 1000;
        let w = Rc::new(Worker::new(
            config.policy.clone(),
            random_owner(),
            now_ms,
            None,
        ));
        workers.push((config.id, Rc::clone(&w)));
        w
    })
}

/// A lease owner id unique per worker.
fn random_owner() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::getrandom(&mut bytes);
    u64::from_le_bytes(bytes).max(1)
}

fn pseudo<'h>(headers: &[Header<'h>], name: &str) -> &'h str {
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .unwrap_or("")
}

/// Decides a request from its headers and applies the decision.
pub fn request_headers(config: &Config, filter: FilterHandle) -> HeadersStatus {
    let worker = worker(config);
    let host = NativeHost {
        config,
        filter: Some(filter),
    };
    let step = filter.with_request_headers(|raw| {
        // A name that is not UTF-8 (Envoy's codecs refuse such names) is
        // skipped, as in the wasm filter: no configuration can name it.
        let headers: Vec<Header<'_>> = raw
            .iter()
            .filter_map(|(n, v)| Some((std::str::from_utf8(n).ok()?, *v)))
            .collect();
        let request = Request {
            method: pseudo(&headers, ":method"),
            path: pseudo(&headers, ":path"),
            headers: &headers,
        };
        let context_id = u32::try_from(filter.id() & 0xffff_ffff).unwrap_or(0);
        worker.decide(&host, now_us() / 1000, context_id, &request, None)
    });
    // Envoy's counters are atomic adds: no reason to batch them here.
    worker.flush_counts(&host);
    match step {
        Step::Apply(decision) => apply(filter, &decision),
        // Only providers with remote keys wait, and those are refused at load.
        Step::Wait => HeadersStatus::StopIteration,
    }
}

/// Writes an allow's header changes (then has Envoy match the route again,
/// as it does after a wasm filter's changes) or sends the refusal.
fn apply(filter: FilterHandle, decision: &Decision) -> HeadersStatus {
    match decision {
        Decision::Allow(allow) => {
            for name in &allow.remove_headers {
                filter.remove_request_header(name);
            }
            for (name, value) in &allow.set_headers {
                filter.set_request_header(name, value);
            }
            if !allow.remove_headers.is_empty() || !allow.set_headers.is_empty() {
                filter.clear_route_cache();
            }
            HeadersStatus::Continue
        }
        Decision::Deny(deny) => {
            let headers = deny.headers();
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let body = deny.response_body();
            filter.send_response(deny.response_status(), &headers, body.as_deref());
            HeadersStatus::StopIteration
        }
    }
}

/// A scheduler event of the configuration, on the main thread.
pub fn config_scheduled(_config: &Config, _event_id: u64) {}

/// A configuration callout's answer, on the main thread.
pub fn config_callout_done(_config: &Config, _callout_id: u64, _answer: CalloutAnswer) {}

/// A scheduler event of one held stream, on its worker thread.
pub fn filter_scheduled(_config: &Config, _filter: FilterHandle) {}

/// A stream ended (answered, finished or reset).
pub fn stream_complete(_config: &Config, _filter: FilterHandle) {}
