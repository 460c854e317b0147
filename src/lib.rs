//! jwt-auth-wasm: JWT verification inside Envoy as a proxy-wasm HTTP filter.
//!
//! The decision logic (everything but `host`) is plain Rust with no proxy-wasm
//! calls, so it is unit-tested natively and shared with the `jwt-auth-check`
//! command. The `host` module is the thin glue that moves bytes between the
//! proxy and the core.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cache;
pub mod config;
pub mod decision;
pub mod extract;
pub mod header_map;
pub mod identity;
pub mod jwks;
pub mod jwt;
pub mod native;
pub mod poll;
pub mod rules;

// The proxy-wasm entry points exist only in the wasm module: natively they
// would clash with a binary's own entry symbol.
#[cfg(target_arch = "wasm32")]
mod host;
pub mod revocation;
