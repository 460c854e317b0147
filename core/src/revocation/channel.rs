//! Shared data as the channel from the one fetcher to every worker: a
//! versioned log kept in shared data, read by every worker on its own tick.
//!
//! Keys (all under the configured namespace): `<ns>.rev.meta` (the [`Meta`]
//! record), `<ns>.rev.snapshot.<w>` (the whole set at some version) and
//! `<ns>.rev.delta.<v>.<w>` (entries added at version `v`), where `<w>` is
//! the writer, the lease owner id of the fetcher that published them. A
//! worker that is one version behind reads one small delta; a worker that
//! starts late, or fell behind the retained deltas, or missed a reset, loads
//! the snapshot and the deltas after it. The meta record is written last and
//! with compare-and-swap, so a worker never sees a version whose data is
//! missing and two fetchers can never both publish; and since every writer
//! has keys of its own, a fetcher whose lease lapsed while it was applying
//! a large answer can never overwrite what the next fetcher published.
//!
//! Shared data also has a queue primitive, but it wakes only the one VM that
//! registered the queue last; every worker needs every update, so the log
//! is read by all of them instead.

use super::codec::{
    decode_batch, decode_batch_into, decode_meta, encode_batch, encode_meta, encode_set, Batch,
    Meta,
};
use super::set::{Entry, RevocationSet};
use crate::host::{SharedStore, StoreError};

/// Deltas kept for workers that are behind.
pub const RETAINED_DELTAS: u64 = 64;
/// A fresh snapshot is written after this many deltas, so a late worker
/// never replays more than this many.
pub const SNAPSHOT_EVERY: u64 = 32;

/// The shared-data keys of one feed's set, all under one prefix
/// ([`super::feed::FeedConfig::shared_prefix`]).
pub struct Keys {
    meta: String,
    snapshot: String,
    delta_prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            meta: format!("{prefix}.meta"),
            snapshot: format!("{prefix}.snapshot"),
            delta_prefix: format!("{prefix}.delta."),
        }
    }

    fn delta(&self, version: u64, writer: u64) -> String {
        format!("{}{version}.{writer:016x}", self.delta_prefix)
    }

    fn snapshot(&self, writer: u64) -> String {
        format!("{}.{writer:016x}", self.snapshot)
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
        self.set.scoped = meta.scoped;
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
            if let Ok(n) = self.apply_deltas(store, keys, meta, self.version + 1, meta.version) {
                return Ok(n);
            }
        }
        // Snapshot, then the deltas published after it. The snapshot is
        // decoded straight into a new set (its tokens come in digest order
        // and are appended to an array sized once, no intermediate list),
        // and its bytes are dropped right after: wasm memory never shrinks,
        // so this peak (bytes + array) is what a worker keeps. The old set
        // stays until everything succeeded.
        let bytes = match store.get(&keys.snapshot(meta.snapshot_writer)) {
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
            applied += replica.apply_deltas(store, keys, meta, version + 1, meta.version)?;
        }
        self.set = replica.set;
        self.version = meta.version;
        Ok(applied)
    }

    fn apply_deltas(
        &mut self,
        store: &dyn SharedStore,
        keys: &Keys,
        meta: &Meta,
        from: u64,
        to: u64,
    ) -> Result<usize, SyncError> {
        // Decode all first: a missing or bad delta leaves the set untouched.
        let mut batches = Vec::new();
        for v in from..=to {
            let batch = read_batch(store, &keys.delta(v, meta.writer_of(v)))?;
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
    /// The published cursor the poll was sent from: when the shared cursor
    /// moved on meanwhile (another fetcher published), this answer is
    /// outdated and is not published.
    pub basis: &'a str,
    /// The feed's epoch and, for a reset, its clock, from a bound answer;
    /// `None` for a feed that does not bind its answers.
    pub bound: Option<(&'a str, u64)>,
    /// This fetcher's lease owner id: the suffix of the keys it writes.
    pub writer: u64,
    /// Whether any of `entries` is scoped to an issuer.
    pub scoped: bool,
}

/// Publishes a feed poll's result (the fetcher side). The fetcher's replica
/// must be in sync first; on success it reflects the new version too.
/// Returns the new version; `CasMismatch` when another fetcher published
/// first (nothing of this update is left in shared data then).
pub fn publish(
    store: &dyn SharedStore,
    keys: &Keys,
    replica: &mut Replica,
    update: &Update<'_>,
) -> Result<u64, StoreError> {
    publish_onto(store, keys, replica, update, None)
}

/// [`publish`], for a reset whose bulk is already a set (`base`, built from
/// the answer's pages in place): `update.entries` are added to it, and it
/// becomes the new set without being copied.
pub fn publish_onto(
    store: &dyn SharedStore,
    keys: &Keys,
    replica: &mut Replica,
    update: &Update<'_>,
    base: Option<RevocationSet>,
) -> Result<u64, StoreError> {
    let (meta, cas, readable) = match read_meta(store, keys) {
        Ok(Some((m, cas))) => (m, Some(cas), true),
        Ok(None) => (Meta::default(), None, true),
        // A corrupt meta record is replaced by a fresh snapshot below.
        Err(_) => (Meta::default(), None, false),
    };
    if readable && meta.cursor != update.basis {
        return Err(StoreError::CasMismatch);
    }
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
    if let Some((epoch, time)) = update.bound {
        next.epoch = epoch.to_string();
        if update.reset {
            next.reset_time = time;
        }
    }
    if !changes {
        // Nothing new: only the sync time and cursor move; workers see the
        // same version and skip work.
        store.set(&keys.meta, &encode_meta(&next), cas)?;
        replica.meta = next;
        return Ok(meta.version);
    }
    let version = meta.version + 1;
    let mut set = if update.reset {
        base.unwrap_or_default()
    } else {
        replica.set.clone()
    };
    set.apply(update.entries);
    next.scoped = update.scoped || (meta.scoped && !update.reset);
    set.scoped = next.scoped;
    next.version = version;
    next.held = set.len() as u64;
    if next.writer_of(version) != update.writer {
        next.writers.push((version, update.writer));
    }
    let mut written = Vec::new();
    if update.reset {
        next.base = version;
        next.oldest_delta = version + 1;
    } else {
        let key = keys.delta(version, update.writer);
        store.set(
            &key,
            &encode_batch(version, update.entries.iter().copied()),
            None,
        )?;
        written.push(key);
        if next.oldest_delta == 0 || next.oldest_delta <= next.base {
            next.oldest_delta = version;
        }
    }
    if update.reset || meta.snapshot == 0 || version - meta.snapshot >= SNAPSHOT_EVERY {
        let key = keys.snapshot(update.writer);
        if let Err(e) = store.set(&key, &encode_set(version, &set), None) {
            remove_all(store, &written);
            return Err(e);
        }
        written.push(key);
        next.snapshot = version;
        next.snapshot_writer = update.writer;
    }
    let first_kept = version
        .saturating_sub(RETAINED_DELTAS - 1)
        .max(next.base + 1);
    next.oldest_delta = next.oldest_delta.max(first_kept);
    // Runs of writers no retained version needs any more.
    let oldest_needed = next.oldest_delta.min(next.snapshot);
    while next.writers.len() > 1 && next.writers.get(1).is_some_and(|r| r.0 <= oldest_needed) {
        next.writers.remove(0);
    }
    if let Err(e) = store.set(&keys.meta, &encode_meta(&next), cas) {
        // Another fetcher published first: its data stands, and nothing of
        // this update stays behind.
        remove_all(store, &written);
        return Err(e);
    }
    // Deltas no worker will read again: those before the retained window,
    // and all of them after a reset; and the snapshot another writer held.
    for v in meta.oldest_delta.max(1)..next.oldest_delta.min(version + 1) {
        let _ = store.remove(&keys.delta(v, meta.writer_of(v)));
    }
    if next.snapshot_writer != meta.snapshot_writer && meta.snapshot != 0 {
        let _ = store.remove(&keys.snapshot(meta.snapshot_writer));
    }
    replica.set = set;
    replica.version = version;
    replica.meta = next;
    Ok(version)
}

fn remove_all(store: &dyn SharedStore, keys: &[String]) {
    for key in keys {
        let _ = store.remove(key);
    }
}

#[cfg(test)]
mod tests;
