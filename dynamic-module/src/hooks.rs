//! What each of Envoy's events does. One loaded configuration holds one
//! core [`Worker`] (behind a lock, shared by Envoy's threads): worker
//! threads decide requests with it; the main thread runs its loops (remote
//! key sets, the revocation feed) and adds the decision counters to Envoy's
//! on a timer this module keeps, through the configuration's callouts, and
//! resumes requests that waited for keys.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use jwt_auth_core::config::{KeySource, Policy};
use jwt_auth_core::decision::Decision;
use jwt_auth_core::host::{Answer, Reply};
use jwt_auth_core::request::Request;
use jwt_auth_core::worker::{Step, Worker};

use crate::abi::{
    self, CalloutAnswer, ConfigHandle, FilterHandle, HeadersStatus, LockedWorker, LogLevel,
    MetricId,
};
use crate::filter_config::{Config, Held, Ticker};
use crate::host::{now_us, NativeHost};
use crate::metrics::{self, MetricIds};
use crate::store::LockedStore;

/// Compiles the configuration (the same JSON the wasm filter reads) and
/// declares every metric it can report: Envoy freezes metric creation once
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
    let remote = policy
        .providers
        .iter()
        .filter(|p| matches!(p.keys, KeySource::Remote(_)))
        .count();
    let summary = format!(
        "jwt-auth: configuration loaded (dynamic module): {} provider(s) ({remote} with remote \
         keys), {} rule(s), revocation {}",
        policy.providers.len(),
        policy.rules.len(),
        if policy.revocation.is_some() {
            "on"
        } else {
            "off"
        }
    );
    let (accelerator, verification) = crate::crypto::accelerator(policy.native_verification);
    let worker = Worker::new(policy.clone(), random_owner(), now_us() / 1000, accelerator);
    let names = metrics::names(&policy, &worker);
    let counters = declare(&names.counters, &policy.namespace, |n| {
        handle.define_counter(n)
    })?;
    let gauges = declare(&names.gauges, &policy.namespace, |n| handle.define_gauge(n))?;
    let period = Duration::from_millis(worker.tick_period_ms());
    let mut config = Box::new(Config {
        handle,
        worker: LockedWorker::new(worker),
        store: LockedStore::default(),
        counters,
        gauges,
        held: Mutex::default(),
        next_context: AtomicU32::new(1),
        ticker: None,
    });
    // Before the first request, as the wasm filter does when it is
    // configured: a new configuration (a listener update, a new process)
    // starts with no revocation set, and under `on_stale: deny` must refuse
    // until its first sync rather than decide with the empty set.
    let host = NativeHost::main_thread(&config);
    config.worker.with(|w| w.prime(&host));
    // Always a timer: besides the loops, it adds the decision counters to
    // Envoy's (at most a second late, as the wasm build does), keeping
    // that work off every request.
    let Some(ticker) = handle.scheduler().and_then(|s| Ticker::start(s, period)) else {
        abi::log(
            LogLevel::Error,
            "jwt-auth: no scheduler from Envoy: counters, remote keys and revocation cannot run",
        );
        return None;
    };
    config.ticker = Some(ticker);
    abi::log(LogLevel::Info, &summary);
    abi::log(LogLevel::Info, &verification);
    Some(config)
}

/// Declares each metric `<namespace>.<name>`; `None` (after a log line)
/// when Envoy refuses one.
fn declare(
    names: &[String],
    namespace: &str,
    define: impl Fn(&str) -> Option<MetricId>,
) -> Option<MetricIds> {
    let mut ids = MetricIds::default();
    for name in names {
        let full = format!("{namespace}.{name}");
        let Some(id) = define(&full) else {
            abi::log(
                LogLevel::Error,
                &format!("jwt-auth: Envoy refused to define the metric {full}"),
            );
            return None;
        };
        ids.insert(name.clone(), id);
    }
    Some(ids)
}

/// A lease owner id, unique per configuration.
fn random_owner() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::getrandom(&mut bytes);
    u64::from_le_bytes(bytes).max(1)
}

/// Decides the stream's request as context `context_id`; a request that
/// must wait for keys is registered to be woken before the lock goes.
fn decide(
    config: &Config,
    filter: FilterHandle,
    context_id: u32,
    waiting_since: Option<u64>,
) -> Step {
    let host = NativeHost {
        config,
        filter: Some(filter),
    };
    let now_ms = now_us() / 1000;
    let step = filter.with_request_headers(|headers| {
        let request = Request::from_headers(headers);
        config.worker.with(|w| {
            let step = w.decide(&host, now_ms, context_id, &request, waiting_since);
            if step == Step::Wait && waiting_since.is_none() {
                hold(config, filter, context_id, now_ms);
            }
            step
        })
    });
    // A poisoned lock (never expected): refuse rather than pass unchecked.
    step.unwrap_or(Step::Apply(Decision::Deny(
        jwt_auth_core::decision::Deny::new(jwt_auth_core::decision::DenyReason::KeysUnavailable),
    )))
}

/// Registers a held request (under the worker's lock, so the tick that
/// hands it back always finds it).
fn hold(config: &Config, filter: FilterHandle, context_id: u32, since_ms: u64) {
    let Some(scheduler) = filter.scheduler() else {
        return;
    };
    if let Ok(mut held) = config.held.lock() {
        held.insert(
            context_id,
            Held {
                filter: filter.id(),
                scheduler,
                since_ms,
            },
        );
    }
}

/// A request's headers arrived: decide and apply, or hold it.
pub fn request_headers(config: &Config, filter: FilterHandle) -> HeadersStatus {
    let context_id = config.next_context.fetch_add(1, Ordering::Relaxed).max(1);
    match decide(config, filter, context_id, None) {
        Step::Apply(decision) => apply(filter, &decision),
        Step::Wait => HeadersStatus::StopIteration,
    }
}

/// Writes an allow's filter state objects and header changes (then has
/// Envoy match the route again, as it does after a wasm filter's changes)
/// or sends the refusal.
fn apply(filter: FilterHandle, decision: &Decision) -> HeadersStatus {
    match decision {
        Decision::Allow(allow) => {
            for (name, value) in allow.filter_state() {
                if !filter.set_filter_state(name, value) {
                    // The request goes on, as in the wasm build: a filter
                    // that needs the object (RBAC) refuses it.
                    abi::log(
                        LogLevel::Warn,
                        &format!("jwt-auth: filter state \"{name}\" not set: Envoy refused it"),
                    );
                }
            }
            for name in &allow.remove_headers {
                filter.remove_request_header(name);
            }
            // Added, not set: with the stripped headers gone, the request
            // carries none of these names, and adding skips Envoy's search
            // for a value to replace.
            for (name, value) in allow.identity_headers() {
                filter.add_request_header(name, value);
            }
            for (name, value) in &allow.rewrite_headers {
                filter.set_request_header(name, value);
            }
            if !allow.changes_nothing() {
                filter.clear_route_cache();
            }
            HeadersStatus::Continue
        }
        Decision::Deny(deny) => {
            let body = deny.response_body();
            filter.send_response(deny.response_status(), &deny.headers(), body.as_deref());
            HeadersStatus::StopIteration
        }
        Decision::Reply(reply) => {
            filter.send_response(reply.status, &reply.headers, reply.body.as_deref());
            HeadersStatus::StopIteration
        }
    }
}

/// The timer's event, on the main thread: the loops' tick, then a wake-up
/// for each held request the worker hands back (keys arrived, or it waited
/// long enough for its 401).
pub fn config_scheduled(config: &Config, _event_id: u64) {
    let host = NativeHost::main_thread(config);
    let waiting = config.worker.with(|w| w.on_tick(&host)).unwrap_or_default();
    if waiting.is_empty() {
        return;
    }
    if let Ok(mut held) = config.held.lock() {
        for (context_id, since_ms) in waiting {
            if let Some(h) = held.get_mut(&context_id) {
                h.since_ms = since_ms;
                h.scheduler.commit(u64::from(context_id));
            }
        }
    }
}

/// The configuration goes away (on the main thread, after its last
/// stream): the decisions counted since the last tick reach Envoy first.
pub fn config_destroy(config: Box<Config>) {
    let host = NativeHost::main_thread(&config);
    config.worker.with(|w| w.flush_counts(&host));
}

/// A configuration callout's answer, on the main thread.
pub fn config_callout_done(config: &Config, callout_id: u64, answer: CalloutAnswer) {
    let Ok(token) = config.call_token(callout_id) else {
        return;
    };
    let host = NativeHost::main_thread(config);
    config.worker.with(|w| {
        let Some(limit) = w.body_limit(token) else {
            return;
        };
        let reply = if answer.body.len() > limit {
            Reply::TooLarge(answer.body.len())
        } else {
            let mut reply = Answer {
                status: None,
                headers: answer.headers,
                body: answer.body,
            };
            if answer.succeeded {
                reply.status = reply.header(":status").and_then(|s| s.parse().ok());
            }
            Reply::Answer(reply)
        };
        w.on_response(&host, token, reply);
    });
}

/// A held request's wake-up, on its worker thread: decide again.
pub fn filter_scheduled(config: &Config, filter: FilterHandle, event_id: u64) {
    let Ok(context_id) = u32::try_from(event_id) else {
        return;
    };
    let since = match config.held.lock() {
        Ok(held) => held.get(&context_id).map(|h| h.since_ms),
        Err(_) => None,
    };
    let Some(since) = since else { return };
    match decide(config, filter, context_id, Some(since)) {
        Step::Wait => {}
        Step::Apply(decision) => {
            if let Ok(mut held) = config.held.lock() {
                held.remove(&context_id);
            }
            if apply(filter, &decision) == HeadersStatus::Continue {
                filter.continue_decoding();
            }
        }
    }
}

/// A stream ended (answered, finished or reset): a request still held
/// leaves the queue.
pub fn stream_complete(config: &Config, filter: FilterHandle) {
    let gone = match config.held.lock() {
        Ok(mut held) => {
            let id = held
                .iter()
                .find(|(_, h)| h.filter == filter.id())
                .map(|(id, _)| *id);
            id.and_then(|id| held.remove(&id).map(|_| id))
        }
        Err(_) => None,
    };
    if let Some(context_id) = gone {
        config.worker.with(|w| w.forget(context_id));
    }
}
