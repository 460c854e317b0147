//! The core's [`Host`], made of proxy-wasm host calls.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use jwt_auth_core::host::{Answer, CallToken, Host, Reply, SharedStore, StoreError};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, MetricType, Status};

/// The proxy this VM runs in. Metric ids are defined once per VM and kept;
/// Envoy shows the metrics under `wasmcustom.<namespace>.*` on its admin
/// `/stats` endpoints.
pub struct ProxyHost {
    /// The plugin's namespace: two plugins of one proxy count apart.
    prefix: String,
    metric_ids: RefCell<HashMap<String, u32>>,
    /// The clock as read on the last tick, for requests: a request then
    /// makes no host call for the time, and its checks of `exp`, `nbf`
    /// and `iat` see a time at most one tick old (a second at most).
    request_clock_ms: Cell<u64>,
}

impl ProxyHost {
    pub fn new(namespace: &str) -> Self {
        let host = ProxyHost {
            prefix: namespace.to_string(),
            metric_ids: RefCell::default(),
            request_clock_ms: Cell::new(0),
        };
        host.read_clock();
        host
    }

    /// Reads the clock for the requests until the next tick.
    pub fn read_clock(&self) {
        self.request_clock_ms.set(self.now_ms());
    }

    /// The time requests are decided at.
    pub fn request_clock_ms(&self) -> u64 {
        self.request_clock_ms.get()
    }

    fn metric(&self, name: &str, kind: MetricType) -> Option<u32> {
        if let Some(id) = self.metric_ids.borrow().get(name) {
            return Some(*id);
        }
        let id = hostcalls::define_metric(kind, &format!("{}.{name}", self.prefix)).ok()?;
        self.metric_ids.borrow_mut().insert(name.to_string(), id);
        Some(id)
    }
}

impl SharedStore for ProxyHost {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap_or((None, None))
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(StoreError::CasMismatch),
            Err(_) => Err(StoreError::Unavailable),
        }
    }

    fn remove(&self, key: &str) -> Result<(), StoreError> {
        // Shared data has no delete; an empty value reads as absent.
        hostcalls::set_shared_data(key, None, None).map_err(|_| StoreError::Unavailable)
    }
}

impl Host for ProxyHost {
    fn now_us(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
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
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        hostcalls::dispatch_http_call(
            cluster,
            headers,
            None,
            Vec::new(),
            Duration::from_millis(timeout_ms),
        )
        .map_err(|status| format!("{status:?}"))
    }

    fn counter_add(&self, name: &str, n: u64) {
        if let Some(id) = self.metric(name, MetricType::Counter) {
            let _ = hostcalls::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    fn gauge_set(&self, name: &str, value: u64) {
        if let Some(id) = self.metric(name, MetricType::Gauge) {
            let _ = hostcalls::record_metric(id, value);
        }
    }
}

/// Reads the answer of the callout being delivered; a body over `max_body`
/// is not copied into the VM, only its size reported. Odd bytes never abort
/// the VM: header values are read as bytes.
pub fn read_reply(num_headers: usize, body_size: usize, max_body: usize) -> Reply {
    let headers = if num_headers == 0 {
        Vec::new()
    } else {
        hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders).unwrap_or_default()
    };
    let mut answer = Answer {
        status: None,
        headers,
        body: Vec::new(),
    };
    answer.status = answer.header(":status").and_then(|s| s.parse().ok());
    if body_size > max_body {
        return Reply::TooLarge(body_size);
    }
    if body_size > 0 {
        answer.body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
    }
    Reply::Answer(answer)
}
