//! Reference revocation feed server for jwt-auth-wasm: serves the feed that
//! the filter polls, takes writes through an admin API, and keeps them in an
//! embedded append-only log or in Redis. See `README.md` beside this crate.

pub mod api;
pub mod backend;
pub mod client;
pub mod embedded;
pub mod logger;
pub mod metrics;
pub mod redis_store;
pub mod secrets;
pub mod store;
pub mod wake;
pub mod wal;

pub use api::{ApiConfig, AppState, Server};
pub use backend::{FeedLimits, Poll, StoreError};
pub use store::Store;
