//! The storage seam: the API talks to a [`Store`], which is either the
//! embedded log or Redis.

use crate::backend::{Poll, StoreError};
use crate::embedded::EmbeddedStore;
use crate::redis_store::RedisStore;
use crate::wake::Wakeups;
use revocation_protocol::Revocation;

/// Either backend.
#[derive(Clone)]
pub enum Store {
    /// Append-only log in a local directory.
    Embedded(EmbeddedStore),
    /// Shared Redis.
    Redis(RedisStore),
}

impl Store {
    /// Answers `GET /v1/revocations?since=<since>` at time `now`; `paged`
    /// when the client asked for pages (`paged=1`).
    pub async fn poll(
        &self,
        since: Option<&str>,
        now: u64,
        paged: bool,
    ) -> Result<Poll, StoreError> {
        match self {
            Store::Embedded(s) => s.poll(since, now, paged),
            Store::Redis(s) => s.poll(since, now, paged).await,
        }
    }

    /// Writes all entries or none; returns once durable with the cursor after
    /// them.
    pub async fn append(&self, entries: Vec<Revocation>) -> Result<String, StoreError> {
        match self {
            Store::Embedded(s) => s.append(entries).await,
            Store::Redis(s) => s.append(entries).await,
        }
    }

    /// Periodic housekeeping: drop expired entries, compact or trim.
    pub async fn maintain(&self, now: u64) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => s.maintain(now, false).await.map(|_| ()),
            Store::Redis(s) => s.maintain(now).await.map(|_| ()),
        }
    }

    /// Entries held (for the metrics gauge).
    pub async fn held(&self) -> Result<u64, StoreError> {
        match self {
            Store::Embedded(s) => Ok(s.held()),
            Store::Redis(s) => s.held().await,
        }
    }

    /// Whether the backend can take writes.
    pub async fn health(&self) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => s.health(),
            Store::Redis(s) => s.health().await,
        }
    }

    /// Notified when entries are appended (by any replica sharing the
    /// data); long polls wait on it.
    pub fn wakeups(&self) -> &Wakeups {
        match self {
            Store::Embedded(s) => s.wakeups(),
            Store::Redis(s) => s.wakeups(),
        }
    }

    /// Flushes and releases the backend.
    pub fn close(self) {
        match self {
            Store::Embedded(s) => s.close(),
            Store::Redis(s) => s.close(),
        }
    }

    /// Short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Embedded(_) => "embedded",
            Store::Redis(_) => "redis",
        }
    }
}
