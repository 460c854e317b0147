//! One loaded filter configuration: what Envoy hands to every thread (the
//! worker behind its lock, the shared data, the declared metrics, the
//! requests on hold) and the timer thread its loops run on.

use std::collections::HashMap;
use std::sync::atomic::AtomicU32;
use std::sync::{mpsc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use jwt_auth_core::host::CallToken;

use crate::abi::{ConfigHandle, LockedWorker, MetricId, Scheduler};
use crate::metrics::MetricIds;
use crate::store::LockedStore;

/// A request on hold until its provider's first key set: the stream, the
/// scheduler that wakes it on its worker thread, and since when it waits.
pub struct Held {
    pub filter: usize,
    pub scheduler: Scheduler,
    pub since_ms: u64,
}

/// One loaded filter configuration, shared by all of Envoy's threads.
pub struct Config {
    pub handle: ConfigHandle,
    pub worker: LockedWorker,
    pub store: LockedStore,
    pub counters: MetricIds,
    pub gauges: MetricIds,
    pub held: Mutex<HashMap<u32, Held>>,
    pub next_context: AtomicU32,
    pub ticker: Option<Ticker>,
}

/// Envoy hands one configuration to every thread.
const _: fn() = || {
    fn shared_between_threads<T: Send + Sync>() {}
    shared_between_threads::<Config>();
};

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

/// The timer the loops run on: HTTP filters have no timer in Envoy 1.40's
/// ABI, so a thread of this module commits an event to the configuration's
/// scheduler every period, and Envoy runs it on the main thread.
pub struct Ticker {
    pub stop: Option<mpsc::Sender<()>>,
    pub thread: Option<JoinHandle<Scheduler>>,
}

impl Ticker {
    pub fn start(scheduler: Scheduler, period: Duration) -> Option<Ticker> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("jwt-auth-tick".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
                    scheduler.commit(0);
                }
                scheduler
            })
            .ok()?;
        Some(Ticker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        // Wakes the thread at once; the scheduler comes back and is deleted
        // here, on the main thread, where Envoy destroys configurations.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            drop(thread.join());
        }
    }
}
