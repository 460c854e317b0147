//! Shared data as the channel from the one fetcher to every worker.
//!
//! Keys (all under the configured namespace): `<ns>.rev.meta` (the [`Meta`]
//! record), `<ns>.rev.snapshot` (the whole set at some version), and
//! `<ns>.rev.delta.<v>` (entries added at version `v`). A worker that is one
//! version behind reads one small delta; a worker that starts late, or fell
//! behind the retained deltas, or missed a reset, loads the snapshot and the
//! deltas after it. The meta record is written last and with
//! compare-and-swap, so a worker never sees a version whose data is missing
//! and two fetchers can never both publish.

use super::codec::{
    decode_batch, decode_batch_into, decode_meta, encode_batch, encode_meta, Batch, Meta,
};
use super::set::{Entry, RevocationSet};
use crate::host::{SharedStore, StoreError};

/// Deltas kept for workers that are behind.
pub const RETAINED_DELTAS: u64 = 64;
/// A fresh snapshot is written after this many deltas, so a late worker
/// never replays more than this many.
pub const SNAPSHOT_EVERY: u64 = 32;

pub struct Keys {
    meta: String,
    snapshot: String,
    delta_prefix: String,
}

impl Keys {
    pub fn new(namespace: &str) -> Self {
        Keys {
            meta: format!("{namespace}.rev.meta"),
            snapshot: format!("{namespace}.rev.snapshot"),
            delta_prefix: format!("{namespace}.rev.delta."),
        }
    }
    fn delta(&self, version: u64) -> String {
        format!("{}{version}", self.delta_prefix)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncError {
    /// A record could not be decoded; the worker keeps its set.
    Corrupt(&'static str),
    /// The data moved on while reading; the next tick retries.
    Raced,
}

/// Reads the meta record (one host call).
pub fn read_meta(store: &dyn SharedStore, keys: &Keys) -> Result<Option<(Meta, u32)>, SyncError> {
    match store.get(&keys.meta) {
        (Some(bytes), cas) if !bytes.is_empty() => decode_meta(&bytes)
            .map(|m| Some((m, cas.unwrap_or(0))))
            .map_err(|e| SyncError::Corrupt(e.0)),
        _ => Ok(None),
    }
}

/// A worker's copy of the shared set and the version it reflects.
#[derive(Default)]
pub struct Replica {
    pub set: RevocationSet,
    pub version: u64,
    /// The last meta seen (for staleness and the cursor).
    pub meta: Meta,
}

impl Replica {
    /// Brings the set up to the published version. Returns the number of
    /// entries applied (0 when already current).
    pub fn sync(&mut self, store: &dyn SharedStore, keys: &Keys) -> Result<usize, SyncError> {
        let Some((meta, _)) = read_meta(store, keys)? else {
            return Ok(0);
        };
        let applied = self.catch_up(store, keys, &meta)?;
        self.meta = meta;
        Ok(applied)
    }

    fn catch_up(
        &mut self,
        store: &dyn SharedStore,
        keys: &Keys,
        meta: &Meta,
    ) -> Result<usize, SyncError> {
        if meta.version == self.version {
            return Ok(0);
        }
        let deltas_reach = self.version != 0
            && self.version >= meta.base
            && self.version + 1 >= meta.oldest_delta
            && self.version < meta.version;
        if deltas_reach {
            if let Ok(n) = self.apply_deltas(store, keys, self.version + 1, meta.version) {
                return Ok(n);
            }
        }
        // Snapshot, then the deltas published after it. The snapshot is
        // decoded straight into a new set (its tokens come in digest order
        // and are appended to an array sized once, no intermediate list),
        // and its bytes are dropped right after: wasm memory never shrinks,
        // so this peak (bytes + array) is what a worker keeps. The old set
        // stays until everything succeeded.
        let bytes = match store.get(&keys.snapshot) {
            (Some(bytes), _) if !bytes.is_empty() => bytes,
            _ => return Err(SyncError::Raced),
        };
        let mut set = RevocationSet::new();
        let version = decode_batch_into(&bytes, &mut set).map_err(|e| SyncError::Corrupt(e.0))?;
        drop(bytes);
        set.reindex();
        let mut applied = set.len();
        if version > meta.version || version < meta.base {
            return Err(SyncError::Raced);
        }
        let mut replica = Replica {
            set,
            version,
            meta: Meta::default(),
        };
        if version < meta.version {
            applied += replica.apply_deltas(store, keys, version + 1, meta.version)?;
        }
        self.set = replica.set;
        self.version = meta.version;
        Ok(applied)
    }

    fn apply_deltas(
        &mut self,
        store: &dyn SharedStore,
        keys: &Keys,
        from: u64,
        to: u64,
    ) -> Result<usize, SyncError> {
        // Decode all first: a missing or bad delta leaves the set untouched.
        let mut batches = Vec::new();
        for v in from..=to {
            let batch = read_batch(store, &keys.delta(v))?;
            if batch.version != v {
                return Err(SyncError::Raced);
            }
            batches.push(batch);
        }
        let mut applied = 0;
        for batch in batches {
            self.set.apply(&batch.entries);
            applied += batch.entries.len();
        }
        self.version = to;
        Ok(applied)
    }
}

fn read_batch(store: &dyn SharedStore, key: &str) -> Result<Batch, SyncError> {
    match store.get(key) {
        (Some(bytes), _) if !bytes.is_empty() => {
            decode_batch(&bytes).map_err(|e| SyncError::Corrupt(e.0))
        }
        _ => Err(SyncError::Raced),
    }
}

/// What a successful feed poll brings.
pub struct Update<'a> {
    /// True when `entries` replace everything held.
    pub reset: bool,
    pub entries: &'a [Entry],
    pub cursor: &'a str,
    pub now_ms: u64,
}

/// Publishes a feed poll's result (the fetcher side). The fetcher's replica
/// must be in sync first; on success it reflects the new version too.
/// Returns the new version.
pub fn publish(
    store: &dyn SharedStore,
    keys: &Keys,
    replica: &mut Replica,
    update: &Update<'_>,
) -> Result<u64, StoreError> {
    let (meta, cas) = match read_meta(store, keys) {
        Ok(Some((m, cas))) => (m, Some(cas)),
        Ok(None) => (Meta::default(), None),
        // A corrupt meta record is replaced by a fresh snapshot below.
        Err(_) => (Meta::default(), None),
    };
    if replica.version != meta.version && !update.reset {
        replica
            .catch_up(store, keys, &meta)
            .map_err(|_| StoreError::CasMismatch)?;
    }
    let changes = update.reset || !update.entries.is_empty();
    let mut next = Meta {
        last_sync_ms: update.now_ms,
        cursor: update.cursor.to_string(),
        ..meta.clone()
    };
    if !changes {
        // Nothing new: only the sync time and cursor move; workers see the
        // same version and skip work.
        store.set(&keys.meta, &encode_meta(&next), cas)?;
        replica.meta = next;
        return Ok(meta.version);
    }
    let version = meta.version + 1;
    let mut set = if update.reset {
        RevocationSet::new()
    } else {
        replica.set.clone()
    };
    set.apply(update.entries);
    next.version = version;
    next.held = set.len() as u64;
    if update.reset {
        next.base = version;
        next.oldest_delta = version + 1;
    } else {
        store.set(
            &keys.delta(version),
            &encode_batch(version, update.entries.iter().copied()),
            None,
        )?;
        if next.oldest_delta == 0 || next.oldest_delta <= next.base {
            next.oldest_delta = version;
        }
    }
    if update.reset || meta.snapshot == 0 || version - meta.snapshot >= SNAPSHOT_EVERY {
        store.set(&keys.snapshot, &encode_batch(version, set.entries()), None)?;
        next.snapshot = version;
    }
    let first_kept = version
        .saturating_sub(RETAINED_DELTAS - 1)
        .max(next.base + 1);
    next.oldest_delta = next.oldest_delta.max(first_kept);
    store.set(&keys.meta, &encode_meta(&next), cas)?;
    // Deltas no worker will read again: those before the retained window,
    // and all of them after a reset.
    for v in meta.oldest_delta.max(1)..next.oldest_delta.min(version + 1) {
        let _ = store.remove(&keys.delta(v));
    }
    replica.set = set;
    replica.version = version;
    replica.meta = next;
    Ok(version)
}

#[cfg(test)]
mod tests;
