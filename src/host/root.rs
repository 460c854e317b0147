//! The root context: loads the configuration and creates one HTTP context
//! per request.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use super::http::FilterHttp;
use super::metrics::Metrics;
use crate::config::Policy;

#[derive(Default)]
pub struct FilterRoot {
    policy: Option<Rc<Policy>>,
    metrics: Rc<Metrics>,
}

impl Context for FilterRoot {}

impl RootContext for FilterRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match Policy::from_json(&bytes) {
            Ok(policy) => {
                log::info!(
                    "jwt-auth: configuration loaded: {} provider(s), {} rule(s)",
                    policy.providers.len(),
                    policy.rules.len()
                );
                self.policy = Some(Rc::new(policy));
                true
            }
            Err(e) => {
                // One line naming the field; Envoy refuses the configuration.
                log::error!("jwt-auth: {e}");
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let policy = self.policy.clone()?;
        Some(Box::new(FilterHttp::new(policy, self.metrics.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
