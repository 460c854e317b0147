//! The root context: loads the configuration, builds the VM's worker, runs
//! its loops on the timer and hands callout answers to it.

use std::rc::Rc;
use std::time::Duration;

use jwt_auth_core::config::{KeySource, Policy};
use jwt_auth_core::host_crypto::Accelerator;
use jwt_auth_core::jwt::SignatureAccelerator;
use jwt_auth_core::worker::Worker;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

use crate::host_crypto::HostCrypto;
use crate::http::FilterHttp;
use crate::proxy_host::{read_reply, ProxyHost};
use crate::vm::VmState;

pub struct FilterRoot {
    id: u32,
    shared: Option<Rc<VmState>>,
}

impl FilterRoot {
    pub fn new(id: u32) -> Self {
        FilterRoot { id, shared: None }
    }
}

impl Context for FilterRoot {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(shared) = &self.shared else { return };
        let Some(limit) = shared.worker.body_limit(token) else {
            return;
        };
        shared.host.read_clock();
        let reply = read_reply(num_headers, body_size, limit);
        shared.worker.on_response(&shared.host, token, reply);
    }
}

impl RootContext for FilterRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let policy = match Policy::from_json(&bytes) {
            Ok(policy) => policy,
            Err(e) => {
                // One line naming the field; Envoy refuses the configuration.
                log::error!("jwt-auth: {e}");
                return false;
            }
        };
        let remote = policy
            .providers
            .iter()
            .filter(|p| matches!(p.keys, KeySource::Remote(_)))
            .count();
        log::info!(
            "jwt-auth: configuration loaded: {} provider(s) ({remote} with remote keys), {} rule(s), revocation {}",
            policy.providers.len(),
            policy.rules.len(),
            if policy.revocation.is_some() { "on" } else { "off" }
        );
        let host = ProxyHost::new(&policy.namespace);
        let accelerator = accelerator(policy.native_verification);
        let worker = Worker::new(
            policy,
            random_owner(),
            jwt_auth_core::host::Host::now_ms(&host),
            accelerator,
        );
        worker.prime(&host);
        // Only timers are set here: Envoy runs on_configure once in a
        // throw-away VM too, so callouts start on the first tick.
        self.set_tick_period(Duration::from_millis(worker.tick_period_ms()));
        self.shared = Some(Rc::new(VmState { worker, host }));
        true
    }

    fn on_tick(&mut self) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        shared.host.read_clock();
        let waiting = shared.worker.on_tick(&shared.host);
        if waiting.is_empty() {
            return;
        }
        for (context_id, since) in waiting {
            // A request whose client went away has no context any more.
            if hostcalls::set_effective_context(context_id).is_err() {
                continue;
            }
            let action =
                crate::request::handle(&shared.worker, &shared.host, context_id, Some(since));
            if action == Action::Continue {
                let _ = hostcalls::resume_http_request();
            }
        }
        // Callouts started later in this VM must answer to the root.
        let _ = hostcalls::set_effective_context(self.id);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let shared = self.shared.clone()?;
        Some(Box::new(FilterHttp::new(context_id, shared)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

impl Drop for FilterRoot {
    fn drop(&mut self) {
        // The VM or the plugin goes away: the decisions counted since the
        // last tick still reach Envoy's counters.
        if let Some(shared) = &self.shared {
            shared.worker.flush_counts(&shared.host);
        }
    }
}

/// Envoy's native signature checks, when allowed and their self-test
/// passes; the log says which algorithms use them.
fn accelerator(allowed: bool) -> Option<Box<dyn SignatureAccelerator>> {
    if !allowed {
        log::info!("jwt-auth: native signature verification turned off (native_verification: false); all algorithms run in wasm");
        return None;
    }
    let accelerator = Accelerator::new(HostCrypto);
    let native: Vec<&str> = accelerator.enabled().iter().map(|a| a.name()).collect();
    if native.is_empty() {
        log::info!(
            "jwt-auth: no native signature verification from the host; all algorithms run in wasm"
        );
        return None;
    }
    log::info!(
        "jwt-auth: native signature verification for {}",
        native.join(", ")
    );
    Some(Box::new(accelerator))
}

/// A lease owner id unique per VM.
fn random_owner() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        log::warn!("jwt-auth: no randomness from the host; lease owner ids may collide");
    }
    u64::from_le_bytes(bytes).max(1)
}
