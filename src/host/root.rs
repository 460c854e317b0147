//! The root context: loads the configuration, runs the revocation loop on
//! its timer, and creates one HTTP context per request.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use super::http::FilterHttp;
use super::metrics::Metrics;
use super::revocation::RevocationLoop;
use super::unix_millis;
use crate::config::Policy;

#[derive(Default)]
pub struct FilterRoot {
    policy: Option<Rc<Policy>>,
    metrics: Rc<Metrics>,
    revocation: Option<RevocationLoop>,
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
        if let Some(rev) = self.revocation.as_mut().filter(|r| r.owns_call(token)) {
            rev.on_response(now_ms, num_headers, body_size, &self.metrics);
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
        log::info!(
            "jwt-auth: configuration loaded: {} provider(s), {} rule(s), revocation {}",
            policy.providers.len(),
            policy.rules.len(),
            if policy.revocation.is_some() {
                "on"
            } else {
                "off"
            }
        );
        // Only timers are set here: Envoy runs on_configure once in a
        // throw-away VM too, so callouts start on the first tick.
        if let Some(feed) = policy.revocation.clone() {
            let now_ms = unix_millis(self.get_current_time());
            let rev = RevocationLoop::new(feed, random_owner(), now_ms);
            self.set_tick_period(rev.tick_period());
            self.revocation = Some(rev);
        }
        self.policy = Some(Rc::new(policy));
        true
    }

    fn on_tick(&mut self) {
        let now_ms = unix_millis(self.get_current_time());
        if let Some(rev) = self.revocation.as_mut() {
            rev.on_tick(now_ms, &self.metrics);
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let policy = self.policy.clone()?;
        let view = self.revocation.as_ref().map(|r| r.view.clone());
        Some(Box::new(FilterHttp::new(
            policy,
            self.metrics.clone(),
            view,
        )))
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
