//! The root context: loads the configuration, runs the revocation and JWKS
//! loops on its timer, and creates one HTTP context per request.

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use crate::http::FilterHttp;
use crate::key_fetch::JwksLoop;
use crate::revocation_loop::RevocationLoop;
use crate::runtime::Runtime;
use crate::unix_millis;
use jwt_auth_core::config::{KeySource, Policy};

/// Tick period when only remote keys need a timer.
const KEYS_TICK_MS: u64 = 100;

pub struct FilterRoot {
    id: u32,
    runtime: Option<Rc<Runtime>>,
    revocation: Option<RevocationLoop>,
}

impl FilterRoot {
    pub fn new(id: u32) -> Self {
        FilterRoot {
            id,
            runtime: None,
            revocation: None,
        }
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
        let now_ms = unix_millis(self.get_current_time());
        let Some(runtime) = &self.runtime else { return };
        if let Some(rev) = self.revocation.as_mut().filter(|r| r.owns_call(token)) {
            rev.on_response(now_ms, num_headers, body_size, &runtime.metrics);
            return;
        }
        let mut loops = runtime.jwks.borrow_mut();
        if let Some(l) = loops.iter_mut().find(|l| l.owns_call(token)) {
            l.on_response(now_ms, num_headers, body_size, &runtime.metrics);
        }
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
        let now_ms = unix_millis(self.get_current_time());
        let owner = random_owner();
        let jwks: Vec<JwksLoop> = policy
            .providers
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match &p.keys {
                KeySource::Remote(cfg) => Some(JwksLoop::new(
                    i,
                    &p.name,
                    p.issuer.clone(),
                    cfg.clone(),
                    &policy.namespace,
                    owner,
                )),
                KeySource::Inline(_) => None,
            })
            .collect();
        self.revocation = policy
            .revocation
            .clone()
            .map(|feed| RevocationLoop::new(feed, owner, now_ms));
        if let Some(rev) = self.revocation.as_mut() {
            rev.prime(now_ms);
        }
        // Only timers are set here: Envoy runs on_configure once in a
        // throw-away VM too, so callouts start on the first tick.
        let mut tick: Option<Duration> = self.revocation.as_ref().map(RevocationLoop::tick_period);
        if !jwks.is_empty() {
            let keys_tick = Duration::from_millis(KEYS_TICK_MS);
            tick = Some(tick.map_or(keys_tick, |t| t.min(keys_tick)));
        }
        if let Some(period) = tick {
            self.set_tick_period(period);
        }
        let view = self.revocation.as_ref().map(|r| r.view.clone());
        self.runtime = Some(Rc::new(Runtime::new(policy, view, jwks)));
        true
    }

    fn on_tick(&mut self) {
        let now_ms = unix_millis(self.get_current_time());
        let Some(runtime) = self.runtime.clone() else {
            return;
        };
        if let Some(rev) = self.revocation.as_mut() {
            rev.on_tick(now_ms, &runtime.metrics);
        }
        for l in runtime.jwks.borrow_mut().iter_mut() {
            if let Some(keys) = l.sync(now_ms, &runtime.metrics) {
                runtime.keys.borrow_mut().set(l.index, keys);
                // Tokens verified with keys that may be gone are re-checked.
                runtime.cache.clear(l.index);
            }
            l.maybe_fetch(now_ms, &runtime.metrics);
        }
        runtime.wake_waiting(self.id, now_ms);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let runtime = self.runtime.clone()?;
        Some(Box::new(FilterHttp::new(context_id, runtime)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// A lease owner id unique per VM.
fn random_owner() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        log::warn!("jwt-auth: no randomness from the host; lease owner ids may collide");
    }
    u64::from_le_bytes(bytes).max(1)
}
