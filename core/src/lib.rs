//! jwt-auth-core: the decision code of jwt-auth-wasm, with no proxy in it.
//!
//! A host (the proxy-wasm filter, the `jwt-auth-check` command) hands over
//! a request and the time and applies the [`decision::Decision`] it gets
//! back; everything between is plain Rust, unit-tested natively.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cache;
pub mod claim_path;
pub mod config;
pub mod decision;
pub mod deny;
pub mod extract;
pub mod fetcher;
pub mod filter_state;
pub mod host;
pub mod host_crypto;
pub mod identity;
pub mod jwt;
pub mod lease;
pub mod path;
pub mod protected_resource;
pub mod protobuf;
pub mod remote_keys;
pub mod request;
pub mod revocation;
pub mod rules;
pub mod schedule;
pub mod token_removal;
pub mod worker;
