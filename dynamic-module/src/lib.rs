//! jwt-auth as an Envoy dynamic module: a native shared library that
//! `envoy.filters.http.dynamic_modules` loads, deciding with the same core
//! as the wasm filter (same configuration, decisions, identity headers,
//! refusals and counters).
//!
//! [`abi`] holds every `unsafe` line: the C ABI of Envoy 1.40's dynamic
//! modules, turned into safe handles. [`hooks`] is what each event does;
//! [`host`] is the core's `Host` over those handles and [`store`] the
//! shared data of one configuration.
#![deny(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[allow(unsafe_code)]
pub mod abi;
pub mod crypto;
pub mod filter_config;
pub mod hooks;
pub mod host;
pub mod logger;
pub mod metrics;
pub mod store;
