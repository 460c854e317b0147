//! One request through the filter: the header map read from Envoy, the
//! core's decision, and the answer written back.

use jwt_auth_core::decision::Decision;
use jwt_auth_core::filter_state;
use jwt_auth_core::request::{Header, Request};
use jwt_auth_core::worker::{Step, Worker};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{Action, MapType, Status};

use crate::header_map;
use crate::proxy_host::ProxyHost;

/// Decides the request of the current (effective) HTTP context and applies
/// the answer. `waiting_since` is set when the request already waited for
/// keys. Returns `Action::Pause` when the request was answered or put on
/// hold.
pub fn handle(
    worker: &Worker,
    host: &ProxyHost,
    context_id: u32,
    waiting_since: Option<u64>,
) -> Action {
    // Raw bytes: header values may hold any byte, and the text variant
    // of the SDK would abort the VM on non-UTF-8.
    let map = header_map_bytes(MapType::HttpRequestHeaders);
    let headers = header_map::parse(&map).unwrap_or_default();
    let request = Request::from_headers(&headers);
    let now_ms = host.request_clock_ms();
    match worker.decide(host, now_ms, context_id, &request, waiting_since) {
        Step::Wait => Action::Pause,
        Step::Apply(decision) => apply(&decision, &headers),
    }
}

/// Applies a decision to the current HTTP context. An allow that changes
/// headers writes the whole edited map back in one host call: the first
/// call of each kind in a request costs several times what further ones do
/// (BENCHMARKS.md, "Host-call costs"), so one write beats a removal plus a
/// write per header; Envoy matches the route again once either way.
fn apply(decision: &Decision, headers: &[Header<'_>]) -> Action {
    match decision {
        Decision::Allow(allow) => {
            for (name, value) in allow.filter_state() {
                set_filter_state(name, value);
            }
            if allow.changes_nothing() {
                return Action::Continue;
            }
            let set: Vec<(&str, &str)> = allow.set_headers().collect();
            match header_map::edited(headers, &allow.remove_headers, &set) {
                Some(map) => set_header_map_bytes(MapType::HttpRequestHeaders, &map),
                None => {
                    // Sizes the layout cannot carry (never from Envoy):
                    // one call per header instead.
                    for name in &allow.remove_headers {
                        let _ =
                            hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, None);
                    }
                    for (name, value) in set {
                        let _ = hostcalls::set_map_value_bytes(
                            MapType::HttpRequestHeaders,
                            name,
                            Some(value.as_bytes()),
                        );
                    }
                }
            }
            Action::Continue
        }
        Decision::Deny(deny) => reply(
            deny.response_status(),
            &deny.headers(),
            deny.response_body(),
        ),
        Decision::Reply(r) => reply(r.status, &r.headers, r.body.clone()),
    }
}

/// Answers the request locally.
fn reply(status: u16, headers: &[(&str, String)], body: Option<String>) -> Action {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let _ = hostcalls::send_http_response(
        u32::from(status),
        headers,
        body.as_deref().map(str::as_bytes),
    );
    Action::Pause
}

/// Writes one filter state object through Envoy's `set_envoy_filter_state`
/// (see `jwt_auth_core::filter_state`). A refusal is logged: the request
/// still goes on, and a filter that needs the object (RBAC) refuses it.
fn set_filter_state(name: &str, value: &str) {
    let arguments = filter_state::encode_arguments(name, value);
    if let Err(status) =
        hostcalls::call_foreign_function("set_envoy_filter_state", Some(&arguments))
    {
        log::warn!("jwt-auth: filter state \"{name}\" not set: {status:?}");
    }
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
    // The call behind the SDK's `set_map_bytes`, which takes the map as
    // owned pairs; this takes it already serialized.
    fn proxy_set_header_map_pairs(
        map_type: MapType,
        map_data: *const u8,
        map_size: usize,
    ) -> Status;
}

/// Replaces the whole header map with `map` (serialized). Envoy reads the
/// buffer during the call and keeps no pointer to it.
fn set_header_map_bytes(map_type: MapType, map: &[u8]) {
    // SAFETY: `map` is a live, initialized buffer of `map.len()` bytes for
    // the whole call; the host only reads it, and only during the call.
    let _ = unsafe { proxy_set_header_map_pairs(map_type, map.as_ptr(), map.len()) };
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
