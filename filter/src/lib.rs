//! The proxy-wasm glue of jwt-auth-wasm: reads the request from Envoy, asks
//! the core (`jwt-auth-core`) for a decision and applies it.
//!
//! The proxy-wasm entry points exist only in the wasm module: natively they
//! would clash with a binary's own entry symbol, so natively this crate is
//! just the parts that are plain byte handling (the serialized header map),
//! tested there.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod header_map;

#[cfg(target_arch = "wasm32")]
mod callout;
#[cfg(target_arch = "wasm32")]
mod host_crypto;
#[cfg(target_arch = "wasm32")]
mod http;
#[cfg(target_arch = "wasm32")]
mod key_fetch;
#[cfg(target_arch = "wasm32")]
mod metrics;
#[cfg(target_arch = "wasm32")]
mod revocation_loop;
#[cfg(target_arch = "wasm32")]
mod root;
#[cfg(target_arch = "wasm32")]
mod runtime;
#[cfg(target_arch = "wasm32")]
mod shared;

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|id| Box::new(root::FilterRoot::new(id)));
}}

/// Unix milliseconds from the host's clock; the filter never reads a clock
/// of its own.
#[cfg(target_arch = "wasm32")]
fn unix_millis(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
