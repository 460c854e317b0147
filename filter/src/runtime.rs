//! What the root context shares with its HTTP contexts in one VM: the
//! compiled policy, the metrics, the revocation replica and the remote key
//! sets, and the requests waiting for a first key set.

use std::cell::RefCell;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{Action, MapType, Status};

use crate::header_map;
use crate::host_crypto::HostCrypto;
use crate::key_fetch::JwksLoop;
use crate::metrics::Metrics;
use crate::revocation_loop::RevocationView;
use jwt_auth_core::cache::TokenCaches;
use jwt_auth_core::config::Policy;
use jwt_auth_core::decision::{decide, Decision, Env, Header, RemoteKeys, Request};
use jwt_auth_core::jwt::KeySet;
use jwt_auth_core::native::Accelerator;

/// Current key sets of remote providers, by provider index.
#[derive(Default)]
pub struct KeyRing(Vec<Option<KeySet>>);

impl KeyRing {
    pub fn set(&mut self, index: usize, keys: KeySet) {
        if self.0.len() <= index {
            self.0.resize(index + 1, None);
        }
        if let Some(slot) = self.0.get_mut(index) {
            *slot = Some(keys);
        }
    }
}

impl RemoteKeys for KeyRing {
    fn keys(&self, provider: usize) -> Option<&KeySet> {
        self.0.get(provider).and_then(Option::as_ref)
    }
}

pub struct Runtime {
    pub policy: Policy,
    pub metrics: Metrics,
    pub revocation: Option<RevocationView>,
    pub keys: RefCell<KeyRing>,
    pub jwks: RefCell<Vec<JwksLoop>>,
    /// HTTP contexts paused until their provider's first key set arrives:
    /// (context id, since unix ms).
    pub waiting: RefCell<Vec<(u32, u64)>>,
    pub cache: TokenCaches,
    accelerator: Accelerator<HostCrypto>,
}

impl Runtime {
    pub fn new(policy: Policy, revocation: Option<RevocationView>, jwks: Vec<JwksLoop>) -> Self {
        let accelerator = if policy.native_verification {
            Accelerator::new(HostCrypto)
        } else {
            Accelerator::off(HostCrypto)
        };
        let native: Vec<&str> = accelerator.enabled().iter().map(|a| a.name()).collect();
        if !policy.native_verification {
            log::info!("jwt-auth: native signature verification turned off (native_verification: false); all algorithms run in wasm");
        } else if native.is_empty() {
            log::info!("jwt-auth: no native signature verification from the host; all algorithms run in wasm");
        } else {
            log::info!(
                "jwt-auth: native signature verification for {}",
                native.join(", ")
            );
        }
        Runtime {
            cache: TokenCaches::new(policy.providers.iter().map(|p| p.token_cache_entries)),
            accelerator,
            metrics: Metrics::new(&policy.namespace),
            policy,
            revocation,
            keys: RefCell::new(KeyRing::default()),
            jwks: RefCell::new(jwks),
            waiting: RefCell::new(Vec::new()),
        }
    }

    /// Decides the request of the current (effective) HTTP context and
    /// applies the answer. `waiting_since` is set when the request already
    /// waited for keys. Returns `Action::Pause` when the request was
    /// answered or put on hold.
    pub fn handle(&self, context_id: u32, now_ms: u64, waiting_since: Option<u64>) -> Action {
        // Raw bytes: header values may hold any byte, and the text variant
        // of the SDK would abort the VM on non-UTF-8.
        let map = header_map_bytes(MapType::HttpRequestHeaders);
        let headers = header_map::parse(&map).unwrap_or_default();
        let request = Request {
            method: pseudo(&headers, ":method"),
            path: pseudo(&headers, ":path"),
            headers: &headers,
        };
        let decision = self.decide(&request, now_ms / 1000);
        if let Decision::Deny(deny) = &decision {
            if let Some(index) = deny.remote_provider {
                if deny.label == "keys_unavailable" && self.may_wait(index, now_ms, waiting_since) {
                    self.waiting
                        .borrow_mut()
                        .push((context_id, waiting_since.unwrap_or(now_ms)));
                    return Action::Pause;
                }
                if deny.label == "unknown_kid" {
                    if let Some(l) = self.jwks.borrow().iter().find(|l| l.index == index) {
                        l.signal_unknown_kid(now_ms);
                    }
                }
            }
        }
        self.metrics
            .count_decision(matches!(decision, Decision::Deny(_)), decision.label());
        apply(&decision)
    }

    fn decide(&self, request: &Request<'_>, now: u64) -> Decision {
        let keys = self.keys.borrow();
        let env = Env {
            remote_keys: &*keys,
            accelerator: Some(&self.accelerator),
            cache: Some(&self.cache),
            ..Env::basic(now)
        };
        match &self.revocation {
            None => decide(&self.policy, request, &env),
            Some(view) => {
                let replica = view.replica.borrow();
                let env = Env {
                    revocation: &replica.set,
                    stale_revocations: view.refuse_stale.get(),
                    ..env
                };
                decide(&self.policy, request, &env)
            }
        }
    }

    fn may_wait(&self, index: usize, now_ms: u64, since: Option<u64>) -> bool {
        let limit = self
            .jwks
            .borrow()
            .iter()
            .find(|l| l.index == index)
            .map_or(0, JwksLoop::wait_limit_ms);
        since.is_none_or(|s| now_ms < s + limit)
    }

    /// Re-decides every waiting request: those whose keys arrived proceed,
    /// those that waited long enough get their 401.
    pub fn wake_waiting(&self, root_context_id: u32, now_ms: u64) {
        let waiting = std::mem::take(&mut *self.waiting.borrow_mut());
        if waiting.is_empty() {
            return;
        }
        for (context_id, since) in waiting {
            // A request whose client went away has no context any more.
            if hostcalls::set_effective_context(context_id).is_err() {
                continue;
            }
            if self.handle(context_id, now_ms, Some(since)) == Action::Continue {
                let _ = hostcalls::resume_http_request();
            }
        }
        // Callouts started later in this VM must answer to the root.
        let _ = hostcalls::set_effective_context(root_context_id);
    }
}

/// Applies a decision to the current HTTP context.
fn apply(decision: &Decision) -> Action {
    match decision {
        Decision::Allow(allow) => {
            for name in &allow.remove_headers {
                let _ = hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, None);
            }
            for (name, value) in &allow.set_headers {
                let _ = hostcalls::set_map_value_bytes(
                    MapType::HttpRequestHeaders,
                    name,
                    Some(value.as_bytes()),
                );
            }
            Action::Continue
        }
        Decision::Deny(deny) => {
            let headers = deny.headers();
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let body = deny.body();
            let _ = hostcalls::send_http_response(
                u32::from(deny.status),
                headers,
                Some(body.as_bytes()),
            );
            Action::Pause
        }
    }
}

fn pseudo<'h>(headers: &[Header<'h>], name: &str) -> &'h str {
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .unwrap_or("")
}

#[link(wasm_import_module = "env")]
extern "C" {
    // The proxy-wasm ABI call behind the SDK's `get_map_bytes`, which would
    // copy every header into its own allocations.
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> Status;
}

/// The serialized header map as the host wrote it (empty on any failure).
fn header_map_bytes(map_type: MapType) -> Vec<u8> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host allocates the buffer through the module's
    // `proxy_on_memory_allocate` (the SDK's, a `Vec<u8>` of that capacity)
    // and hands over ownership, as the SDK's own `get_map_bytes` assumes.
    unsafe {
        match proxy_get_header_map_pairs(map_type, &mut data, &mut size) {
            Status::Ok if !data.is_null() && size > 0 => Vec::from_raw_parts(data, size, size),
            _ => Vec::new(),
        }
    }
}
