//! jwt-auth-wasm: JWT verification inside Envoy as a proxy-wasm HTTP filter.
//!
//! The decision logic (everything but `host`) is plain Rust with no proxy-wasm
//! calls, so it is unit-tested natively and shared with the `jwt-auth-check`
//! command. The `host` module is the thin glue that moves bytes between the
//! proxy and the core.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod jwt;
