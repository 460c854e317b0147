//! Envoy counters. Names are defined once per VM and cached; Envoy shows
//! them under `wasmcustom.<namespace>.*` on the admin `/stats` endpoints
//! (`jwt_auth` unless the configuration names another namespace).

use std::cell::RefCell;
use std::collections::HashMap;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

pub struct Metrics {
    /// The plugin's namespace: two plugins of one proxy count apart.
    prefix: String,
    ids: RefCell<HashMap<String, u32>>,
    /// Per-request decision counters by static label: no string is built
    /// on the request path.
    decisions: RefCell<HashMap<(bool, &'static str), u32>>,
}

impl Metrics {
    pub fn new(prefix: &str) -> Self {
        Metrics {
            prefix: prefix.to_string(),
            ids: RefCell::default(),
            decisions: RefCell::default(),
        }
    }

    /// Counts one decision: `<prefix>.<label>` for an allow,
    /// `<prefix>.denied.<label>` for a refusal.
    pub fn count_decision(&self, denied: bool, label: &'static str) {
        let cached = self.decisions.borrow().get(&(denied, label)).copied();
        let id = match cached {
            Some(id) => Some(id),
            None => {
                let name = if denied {
                    format!("denied.{label}")
                } else {
                    label.to_string()
                };
                let id = self.id(&name, MetricType::Counter);
                if let Some(id) = id {
                    self.decisions.borrow_mut().insert((denied, label), id);
                }
                id
            }
        };
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    /// Adds one to the counter `<prefix>.<name>`.
    pub fn count(&self, name: &str) {
        if let Some(id) = self.id(name, MetricType::Counter) {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    /// Sets the gauge `<prefix>.<name>`.
    pub fn gauge(&self, name: &str, value: u64) {
        if let Some(id) = self.id(name, MetricType::Gauge) {
            let _ = hostcalls::record_metric(id, value);
        }
    }

    fn id(&self, name: &str, kind: MetricType) -> Option<u32> {
        if let Some(id) = self.ids.borrow().get(name) {
            return Some(*id);
        }
        let id = hostcalls::define_metric(kind, &format!("{}.{name}", self.prefix)).ok()?;
        self.ids.borrow_mut().insert(name.to_string(), id);
        Some(id)
    }
}
