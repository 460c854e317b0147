//! The proxy-wasm glue: reads the request from Envoy, asks the core for a
//! decision and applies it. Nothing here decides anything.

mod callout;
mod http;
mod jwks;
mod metrics;
mod native;
mod revocation;
mod root;
mod runtime;
mod shared;

use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|id| Box::new(root::FilterRoot::new(id)));
}}

/// Unix milliseconds from the host's clock; the filter never reads a clock
/// of its own.
fn unix_millis(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
