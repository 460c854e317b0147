//! The proxy-wasm glue of jwt-auth-wasm: reads the request from Envoy, asks
//! the core (`jwt-auth-core`) for a decision and applies it.
//!
//! A request enters at [`http`] (`on_http_request_headers`), goes through
//! `request::handle` (header map in, the core's `Worker::decide`, headers or
//! a local reply out); the root context ([`root`]) builds the worker and
//! the [`vm`] state its HTTP contexts share, drives the worker's loops on the
//! timer and hands it callout answers; `proxy_host` is the core's `Host` made
//! of proxy-wasm calls.
//!
//! The proxy-wasm entry points exist only in the wasm module: natively they
//! would clash with a binary's own entry symbol, so natively this crate is
//! just the parts that are plain byte handling (the serialized header map),
//! tested there.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod header_map;

#[cfg(target_arch = "wasm32")]
mod host_crypto;
#[cfg(target_arch = "wasm32")]
mod http;
#[cfg(target_arch = "wasm32")]
mod proxy_host;
#[cfg(target_arch = "wasm32")]
mod request;
#[cfg(target_arch = "wasm32")]
mod root;
#[cfg(target_arch = "wasm32")]
mod vm;

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|id| Box::new(root::FilterRoot::new(id)));
}}
