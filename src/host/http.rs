//! The per-request context: one host call to read the headers, one to read
//! the clock, then the core decides.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::metrics::Metrics;
use super::revocation::RevocationView;
use super::unix_seconds;
use crate::config::Policy;
use crate::decision::{decide, Decision, Env, NoRevocation, Request};

pub struct FilterHttp {
    policy: Rc<Policy>,
    metrics: Rc<Metrics>,
    revocation: Option<RevocationView>,
}

impl FilterHttp {
    pub fn new(
        policy: Rc<Policy>,
        metrics: Rc<Metrics>,
        revocation: Option<RevocationView>,
    ) -> Self {
        FilterHttp {
            policy,
            metrics,
            revocation,
        }
    }
}

impl Context for FilterHttp {}

impl HttpContext for FilterHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // The bytes variant: header values may hold any byte, and the text
        // variant of the SDK would abort the VM on non-UTF-8.
        let headers = self.get_http_request_headers_bytes();
        let method = pseudo(&headers, ":method");
        let path = pseudo(&headers, ":path");
        let request = Request {
            method,
            path,
            headers: &headers,
        };
        let now = unix_seconds(self.get_current_time());
        let decision = match &self.revocation {
            None => decide(
                &self.policy,
                &request,
                &Env {
                    now,
                    revocation: &NoRevocation,
                    stale_revocations: None,
                },
            ),
            Some(view) => {
                let replica = view.replica.borrow();
                let env = Env {
                    now,
                    revocation: &replica.set,
                    stale_revocations: view.refuse_stale.get(),
                };
                decide(&self.policy, &request, &env)
            }
        };
        self.metrics.count(&metric_name(&decision));
        match decision {
            Decision::Allow(allow) => {
                for name in &allow.remove_headers {
                    self.set_http_request_header(name, None);
                }
                for (name, value) in &allow.set_headers {
                    self.set_http_request_header(name, Some(value));
                }
                Action::Continue
            }
            Decision::Deny(deny) => {
                let headers = deny.headers();
                let headers: Vec<(&str, &str)> =
                    headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                self.send_http_response(
                    u32::from(deny.status),
                    headers,
                    Some(deny.body().as_bytes()),
                );
                Action::Pause
            }
        }
    }
}

fn pseudo<'h>(headers: &'h [(String, Vec<u8>)], name: &str) -> &'h str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .unwrap_or("")
}

fn metric_name(decision: &Decision) -> String {
    match decision {
        Decision::Allow(a) => a.kind.label().to_string(),
        Decision::Deny(d) => format!("denied.{}", d.label),
    }
}
