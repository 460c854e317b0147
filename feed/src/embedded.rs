//! Embedded store: an append-only log in a data directory (see [`crate::wal`]
//! for the format), with every live entry held in memory.
//!
//! One writer thread owns the log file. Admin requests queue up for it; it
//! takes everything queued, writes it as one `write` and one `fsync` (group
//! commit), and only then makes the entries visible to polls and answers the
//! requests. Visibility after durability matters twice: a proxy never sees a
//! revocation that a crash could take back, and a sequence number a proxy has
//! seen is never handed out again.
//!
//! Compaction writes the live entries to a new file on a separate thread while
//! the writer keeps appending to the old one; the writer then copies the
//! records appended meanwhile, fsyncs, renames the new file over the old one
//! and fsyncs the directory. Polls never wait for it and appends wait only for
//! that final copy.

use crate::backend::{
    live, page_cursor, random_u64, split_page_cursor, FeedLimits, Poll, SnapshotCache, StoreError,
};
use crate::wake::Wakeups;
use crate::wal::{self, Header};
use revocation_protocol::Revocation;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// Name of the log inside the data directory.
pub const LOG_FILE: &str = "revocations.log";
/// Compaction's output before it is renamed over [`LOG_FILE`].
pub const COMPACT_FILE: &str = "revocations.log.compact";
/// A fresh log while it is being created.
const NEW_FILE: &str = "revocations.log.new";
/// Held (flock) for the life of the process so two servers cannot append to
/// the same log.
const LOCK_FILE: &str = "LOCK";

/// The embedded store handle; cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Msg>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

struct Shared {
    epoch: String,
    limits: FeedLimits,
    state: RwLock<State>,
    snapshots: SnapshotCache,
    building: Mutex<()>,
    /// Notified after every commit, once its entries are visible.
    wakeups: Wakeups,
}

#[derive(Default)]
struct State {
    /// Live entries in sequence order (expired ones linger until the next
    /// maintenance pass; polls skip them).
    entries: Vec<(u64, Revocation)>,
    /// Highest durable sequence number; the cursor of an up-to-date client.
    last_seq: u64,
    /// Set when the log can no longer be trusted for appends.
    failed: Option<String>,
}

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactStats {
    /// Entries written to the new file from the snapshot.
    pub kept: u64,
    /// Entries left out because they had expired.
    pub dropped: u64,
    /// Size of the log after the switch.
    pub bytes: u64,
}

enum Msg {
    Append {
        entries: Vec<Revocation>,
        reply: oneshot::Sender<Result<u64, String>>,
    },
    Compact {
        now: u64,
        force: bool,
        reply: Option<oneshot::Sender<Result<Option<CompactStats>, String>>>,
    },
    CompactDone(Result<(u64, u64), String>),
    /// Sent by `close`: other handles may still exist, so the channel
    /// closing cannot be the only stop signal.
    Shutdown,
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir`, replaying the log and cutting
    /// off a torn tail left by a crash.
    pub fn open(dir: &Path, limits: FeedLimits, now: u64) -> Result<EmbeddedStore, StoreError> {
        let existed = dir.exists();
        fs::create_dir_all(dir).map_err(|e| io_err("create data directory", dir, e))?;
        if !existed {
            // The new directory's own name must be durable too, or a power
            // loss could take the whole store with it.
            let parent = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_err("fsync directory", parent, e))?;
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_err("open", &lock_path, e))?;
        lock.try_lock().map_err(|e| {
            StoreError(format!(
                "data directory {} is in use by another process ({e})",
                dir.display()
            ))
        })?;
        // A compaction or creation that a crash interrupted left a partial
        // file; the log it was meant to replace is still intact.
        for name in [COMPACT_FILE, NEW_FILE] {
            let p = dir.join(name);
            if p.exists() {
                log::warn!("removing unfinished {}", p.display());
                fs::remove_file(&p).map_err(|e| io_err("remove", &p, e))?;
            }
        }
        let log_path = dir.join(LOG_FILE);
        if !log_path.exists() {
            let header = Header {
                epoch: random_u64(),
                base_seq: 0,
            };
            write_new_file(dir, NEW_FILE, &wal::encode_header(&header))?;
            rename_durably(dir, NEW_FILE, LOG_FILE)?;
            log::info!(
                "created a new log in {} (epoch {:016x})",
                dir.display(),
                header.epoch
            );
        }
        let (file, replay) = open_and_replay(dir, &log_path)?;
        let file_entries = replay.entries.len() as u64;
        let grace = limits.grace_seconds;
        let entries: Vec<(u64, Revocation)> = replay
            .entries
            .into_iter()
            .filter(|(_, r)| live(r, now, grace))
            .collect();
        log::info!(
            "replayed {} records: {} live entries, last sequence {}",
            replay.records,
            entries.len(),
            replay.last_seq
        );
        let shared = Arc::new(Shared {
            epoch: format!("{:016x}", replay.header.epoch),
            limits,
            state: RwLock::new(State {
                entries,
                last_seq: replay.last_seq,
                failed: None,
            }),
            snapshots: SnapshotCache::default(),
            building: Mutex::new(()),
            wakeups: Wakeups::new(true),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            dir: dir.to_path_buf(),
            file,
            len: replay.valid_len,
            epoch: replay.header.epoch,
            next_seq: replay.last_seq + 1,
            file_entries,
            shared: shared.clone(),
            weak_tx: tx.downgrade(),
            compaction: None,
            _lock: lock,
        };
        let thread = std::thread::Builder::new()
            .name("feed-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError(format!("cannot start the log writer: {e}")))?;
        Ok(EmbeddedStore {
            shared,
            tx,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// The store's epoch as it appears in cursors.
    pub fn epoch(&self) -> &str {
        &self.shared.epoch
    }

    /// Notified whenever appended entries become visible to polls.
    pub fn wakeups(&self) -> &Wakeups {
        &self.shared.wakeups
    }

    /// Answers a poll from memory.
    ///
    /// Pages (for a client that sent `paged=1`): a snapshot at sequence `S`
    /// is every live entry with a sequence number up to `S`; its pages walk
    /// them in sequence order, and a continuation cursor `<epoch>-<S>~<p>`
    /// names the last sequence number sent. Entries written meanwhile have
    /// higher numbers, so they never shift a page; they reach the client in
    /// the delta after the last page, whose cursor is `<epoch>-<S>`.
    /// Entries that expire meanwhile are merely left out.
    pub fn poll(&self, since: Option<&str>, now: u64, paged: bool) -> Result<Poll, StoreError> {
        let state = self
            .shared
            .state
            .read()
            .map_err(|_| StoreError("state lock poisoned".into()))?;
        let grace = self.shared.limits.grace_seconds;
        if paged {
            let continued = match since.map(|c| (c, split_page_cursor(c))) {
                Some((_, Some((base, pos)))) => self
                    .page_position(base, pos, state.last_seq)
                    .map(|(upto, after)| (after, upto, true)),
                Some((c, None)) => self
                    .delta_start(c, state.last_seq)
                    .map(|from| (from, state.last_seq, false)),
                None => None,
            };
            return Ok(match continued {
                Some((after, upto, snapshot)) => {
                    self.page(&state, after, upto, snapshot, false, now)
                }
                // First page of a fresh snapshot.
                None => self.page(&state, 0, state.last_seq, true, true, now),
            });
        }
        let from = since
            .filter(|c| split_page_cursor(c).is_none())
            .and_then(|c| self.delta_start(c, state.last_seq));
        let Some(from) = from else {
            let cursor = self.cursor(state.last_seq);
            if let Some(hit) = self.shared.snapshots.get(&cursor, now) {
                return Ok(hit);
            }
            // One build at a time (see `SnapshotCache`); the others wait a
            // moment and find it cached. Writers may wait behind this read
            // lock for one build, which is what they would do anyway.
            let _building = self.shared.building.lock();
            if let Some(hit) = self.shared.snapshots.get(&cursor, now) {
                return Ok(hit);
            }
            let live_entries: Vec<&Revocation> = state
                .entries
                .iter()
                .map(|(_, r)| r)
                .filter(|r| live(r, now, grace))
                .collect();
            return Ok(self.shared.snapshots.build(
                &self.shared.epoch,
                cursor,
                grace,
                live_entries.iter().copied(),
            ));
        };
        // An unpaged delta is cut too (without `more`): it only adds, so the
        // client's next regular poll simply continues from the cut.
        let (out, cut) = self.collect(&state, from, state.last_seq, now);
        let cursor = self.cursor(cut.unwrap_or(state.last_seq));
        Ok(Poll::encode(
            &self.shared.epoch,
            cursor,
            false,
            false,
            out.iter().copied(),
        ))
    }

    /// Live entries with a sequence number in `(after, upto]`, at most one
    /// page of them, and the sequence number of the last one sent when the
    /// page was cut before `upto`.
    fn collect<'a>(
        &self,
        state: &'a State,
        after: u64,
        upto: u64,
        now: u64,
    ) -> (Vec<&'a Revocation>, Option<u64>) {
        let grace = self.shared.limits.grace_seconds;
        let cap = self.shared.limits.max_entries_per_response.max(1);
        let start = state.entries.partition_point(|(seq, _)| *seq <= after);
        let mut out: Vec<&Revocation> = Vec::new();
        let mut rest = state.entries[start..]
            .iter()
            .take_while(|(seq, _)| *seq <= upto)
            .peekable();
        while let Some((seq, rev)) = rest.next() {
            if !live(rev, now, grace) {
                continue;
            }
            out.push(rev);
            if out.len() >= cap {
                return (out, rest.peek().is_some().then_some(*seq));
            }
        }
        (out, None)
    }

    /// One page of `(after, upto]`: a snapshot page (`snapshot`, whose
    /// continuation cursor pins `upto`; `reset` for the first) or a delta
    /// page.
    fn page(
        &self,
        state: &State,
        after: u64,
        upto: u64,
        snapshot: bool,
        reset: bool,
        now: u64,
    ) -> Poll {
        let (out, cut) = self.collect(state, after, upto, now);
        let cursor = match cut {
            Some(pos) if snapshot => page_cursor(&self.cursor(upto), &pos.to_string()),
            Some(pos) => self.cursor(pos),
            None => self.cursor(upto),
        };
        Poll::encode(
            &self.shared.epoch,
            cursor,
            reset,
            cut.is_some(),
            out.iter().copied(),
        )
    }

    /// `(S, p)` of a snapshot continuation `<epoch>-<S>~<p>`, or None when
    /// it cannot be continued (another store, or ahead of this one).
    fn page_position(&self, base: &str, pos: &str, last_seq: u64) -> Option<(u64, u64)> {
        let upto = self.delta_start(base, last_seq)?;
        let after: u64 = pos.parse().ok()?;
        (after <= upto).then_some((upto, after))
    }

    /// The sequence number after which a delta starts, or None when the
    /// cursor calls for a reset: not ours, unparsable, or ahead of what this
    /// store has durably written (a restored backup or another directory).
    fn delta_start(&self, cursor: &str, last_seq: u64) -> Option<u64> {
        let (epoch, pos) = cursor.split_once('-')?;
        if epoch != self.shared.epoch {
            return None;
        }
        let seq: u64 = pos.parse().ok()?;
        (seq <= last_seq).then_some(seq)
    }

    fn cursor(&self, seq: u64) -> String {
        format!("{}-{}", self.shared.epoch, seq)
    }

    /// Appends `entries` as one record; returns the cursor after them once
    /// they are on disk.
    pub async fn append(&self, entries: Vec<Revocation>) -> Result<String, StoreError> {
        // Replay refuses a record without entries, so one must never be
        // written; the admin API never asks for it.
        if entries.is_empty() {
            return Err(StoreError("nothing to write".into()));
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Append { entries, reply })
            .map_err(|_| StoreError("log writer has stopped".into()))?;
        let seq = rx
            .await
            .map_err(|_| StoreError("log writer has stopped".into()))?
            .map_err(StoreError)?;
        Ok(self.cursor(seq))
    }

    /// Drops expired entries from memory and compacts the log when at least a
    /// quarter of its entries are dead (`force` compacts regardless).
    pub async fn maintain(
        &self,
        now: u64,
        force: bool,
    ) -> Result<Option<CompactStats>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Compact {
                now,
                force,
                reply: Some(reply),
            })
            .map_err(|_| StoreError("log writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError("log writer has stopped".into()))?
            .map_err(StoreError)
    }

    /// Number of entries held in memory.
    pub fn held(&self) -> u64 {
        self.shared
            .state
            .read()
            .map(|s| s.entries.len() as u64)
            .unwrap_or(0)
    }

    /// Fails once the log has become unwritable.
    pub fn health(&self) -> Result<(), StoreError> {
        let state = self
            .shared
            .state
            .read()
            .map_err(|_| StoreError("state lock poisoned".into()))?;
        match &state.failed {
            Some(e) => Err(StoreError(format!("log is not writable: {e}"))),
            None if self.tx.is_closed() => Err(StoreError("log writer has stopped".into())),
            None => Ok(()),
        }
    }

    /// Stops the writer after the queued requests and waits for it, so the
    /// directory can be reopened at once (tests, shutdown).
    pub fn close(self) {
        let EmbeddedStore { tx, thread, .. } = self;
        let _ = tx.send(Msg::Shutdown);
        drop(tx);
        let handle = thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            if h.join().is_err() {
                log::error!("log writer thread panicked");
            }
        }
    }
}

/// Appends waiting for the next group commit, with their reply channels.
type Batch = Vec<(Vec<Revocation>, oneshot::Sender<Result<u64, String>>)>;

struct PendingCompaction {
    /// Log length when the snapshot was taken; records after it must be
    /// copied into the new file before the switch.
    old_len: u64,
    replies: Vec<oneshot::Sender<Result<Option<CompactStats>, String>>>,
}

struct Writer {
    dir: PathBuf,
    file: File,
    len: u64,
    epoch: u64,
    next_seq: u64,
    /// Entries in the current file, live or not; compaction's yardstick.
    file_entries: u64,
    shared: Arc<Shared>,
    /// Weak so that the compaction thread's handle does not keep the writer
    /// alive after the store is dropped.
    weak_tx: mpsc::WeakUnboundedSender<Msg>,
    compaction: Option<PendingCompaction>,
    _lock: File,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut stop = false;
        while let Some(first) = rx.blocking_recv() {
            let mut batch = Vec::new();
            stop |= self.handle(first, &mut batch);
            // Group commit: everything that queued up while the previous
            // fsync ran goes out under the next one.
            while let Ok(more) = rx.try_recv() {
                stop |= self.handle(more, &mut batch);
            }
            if !batch.is_empty() {
                self.commit(batch);
            }
            if stop {
                break;
            }
        }
        // A compaction still running when the store closes is abandoned; its
        // partial file is removed at the next open.
        if let Err(e) = self.file.sync_all() {
            log::error!("final fsync of the log failed: {e}");
        }
    }

    /// Queues or performs one request; true when the writer is to stop.
    fn handle(&mut self, msg: Msg, batch: &mut Batch) -> bool {
        match msg {
            Msg::Append { entries, reply } => batch.push((entries, reply)),
            Msg::Shutdown => return true,
            Msg::Compact { now, force, reply } => {
                // Pending appends go first so the snapshot's old_len sits on a
                // record boundary after them.
                if !batch.is_empty() {
                    self.commit(std::mem::take(batch));
                }
                self.start_compaction(now, force, reply);
            }
            Msg::CompactDone(result) => {
                if !batch.is_empty() {
                    self.commit(std::mem::take(batch));
                }
                self.finish_compaction(result);
            }
        }
        false
    }

    fn failed(&self) -> Option<String> {
        self.shared.state.read().ok().and_then(|s| s.failed.clone())
    }

    fn set_failed(&self, why: String) {
        log::error!("log is no longer writable: {why}");
        if let Ok(mut s) = self.shared.state.write() {
            s.failed = Some(why);
        }
    }

    fn commit(&mut self, batch: Batch) {
        if let Some(why) = self.failed() {
            for (_, reply) in batch {
                let _ = reply.send(Err(format!("log is not writable: {why}")));
            }
            return;
        }
        let mut buf = Vec::new();
        let mut seq = self.next_seq;
        let mut assigned = Vec::with_capacity(batch.len());
        for (entries, _) in &batch {
            let first = seq;
            wal::encode_record(
                entries.iter().map(|r| {
                    let s = seq;
                    seq += 1;
                    (s, r)
                }),
                &mut buf,
            );
            assigned.push(first);
        }
        if let Err(e) = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data())
        {
            let why = format!("append failed: {e}");
            log::error!("{why}");
            for (_, reply) in batch {
                let _ = reply.send(Err(why.clone()));
            }
            self.undo_partial_append();
            return;
        }
        self.len += buf.len() as u64;
        self.next_seq = seq;
        let count: u64 = batch.iter().map(|(e, _)| e.len() as u64).sum();
        self.file_entries += count;
        let last = seq - 1;
        // Durable: publish to polls, then acknowledge.
        let mut replies = Vec::with_capacity(batch.len());
        match self.shared.state.write() {
            Ok(mut state) => {
                for ((entries, reply), first) in batch.into_iter().zip(assigned) {
                    let n = entries.len() as u64;
                    state.entries.extend((first..).zip(entries));
                    replies.push((reply, first + n - 1));
                }
                state.last_seq = last;
            }
            Err(_) => {
                for (_, reply) in batch {
                    let _ = reply.send(Err("state lock poisoned".into()));
                }
                return;
            }
        }
        // Visible now: wake the long polls before acknowledging.
        self.shared.wakeups.notify();
        for (reply, seq) in replies {
            let _ = reply.send(Ok(seq));
        }
    }

    /// After a failed write or fsync the file may hold part of the batch.
    /// Cutting it back to the last acknowledged length keeps later appends
    /// from landing after garbage; if even that fails the log is marked
    /// failed and only a restart (with its replay) can continue.
    fn undo_partial_append(&mut self) {
        let result = self
            .file
            .set_len(self.len)
            .and_then(|()| self.file.seek(SeekFrom::Start(self.len)).map(|_| ()))
            .and_then(|()| self.file.sync_all());
        if let Err(e) = result {
            self.set_failed(format!("could not cut back a failed append: {e}"));
        }
    }

    fn start_compaction(
        &mut self,
        now: u64,
        force: bool,
        reply: Option<oneshot::Sender<Result<Option<CompactStats>, String>>>,
    ) {
        let grace = self.shared.limits.grace_seconds;
        // Memory first: expired entries are never served again.
        let snapshot = match self.shared.state.write() {
            Ok(mut state) => {
                state.entries.retain(|(_, r)| live(r, now, grace));
                if state.failed.is_some() {
                    None
                } else {
                    Some((state.entries.clone(), state.last_seq))
                }
            }
            Err(_) => None,
        };
        let Some((live_entries, snapshot_seq)) = snapshot else {
            if let Some(r) = reply {
                let _ = r.send(Err("log is not writable".into()));
            }
            return;
        };
        if let Some(pending) = &mut self.compaction {
            // One at a time; the caller learns the outcome of the running one.
            if let Some(r) = reply {
                pending.replies.push(r);
            }
            return;
        }
        let dead = self.file_entries.saturating_sub(live_entries.len() as u64);
        if !force && (dead == 0 || dead * 4 < self.file_entries) {
            if let Some(r) = reply {
                let _ = r.send(Ok(None));
            }
            return;
        }
        let header = Header {
            epoch: self.epoch,
            base_seq: snapshot_seq,
        };
        let dir = self.dir.clone();
        let weak = self.weak_tx.clone();
        let kept = live_entries.len() as u64;
        let spawned = std::thread::Builder::new()
            .name("feed-log-compact".into())
            .spawn(move || {
                let result = write_compacted(&dir, &header, &live_entries)
                    .map(|()| (kept, dead))
                    .map_err(|e| e.to_string());
                if let Some(tx) = weak.upgrade() {
                    let _ = tx.send(Msg::CompactDone(result));
                }
            });
        match spawned {
            Ok(_) => {
                self.compaction = Some(PendingCompaction {
                    old_len: self.len,
                    replies: reply.into_iter().collect(),
                });
            }
            Err(e) => {
                if let Some(r) = reply {
                    let _ = r.send(Err(format!("cannot start compaction: {e}")));
                }
            }
        }
    }

    fn finish_compaction(&mut self, result: Result<(u64, u64), String>) {
        let Some(pending) = self.compaction.take() else {
            return;
        };
        let outcome = result.and_then(|(kept, dropped)| {
            self.switch_to_compacted(pending.old_len, kept)
                .map(|bytes| {
                    log::info!(
                        "compacted the log: kept {kept} entries, dropped {dropped}, {bytes} bytes"
                    );
                    Some(CompactStats {
                        kept,
                        dropped,
                        bytes,
                    })
                })
                .map_err(|e| e.to_string())
        });
        if let Err(e) = &outcome {
            log::error!("compaction failed, the old log stays in use: {e}");
            let _ = fs::remove_file(self.dir.join(COMPACT_FILE));
        }
        for r in pending.replies {
            let _ = r.send(outcome.clone());
        }
    }

    /// Copies the records appended since the snapshot into the compacted
    /// file, makes it durable and renames it over the log.
    fn switch_to_compacted(&mut self, old_len: u64, kept: u64) -> std::io::Result<u64> {
        let compact_path = self.dir.join(COMPACT_FILE);
        let mut tail = Vec::new();
        let mut old = File::open(self.dir.join(LOG_FILE))?;
        old.seek(SeekFrom::Start(old_len))?;
        old.take(self.len - old_len).read_to_end(&mut tail)?;
        let mut new = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&compact_path)?;
        new.write_all(&tail)?;
        new.sync_all()?;
        let new_len = new.metadata()?.len();
        rename_durably(&self.dir, COMPACT_FILE, LOG_FILE)
            .map_err(|e| std::io::Error::other(e.0))?;
        // From here on the compacted file is the log.
        let tail_entries = tail_entry_count(&tail);
        self.file = new;
        self.len = new_len;
        self.file_entries = kept + tail_entries;
        Ok(new_len)
    }
}

/// Counts the entries in whole records (used after compaction to keep the
/// dead-entry estimate right).
fn tail_entry_count(tail: &[u8]) -> u64 {
    let mut pos = 0usize;
    let mut n = 0u64;
    while tail.len() >= pos + wal::RECORD_OVERHEAD + 4 {
        let mut len = [0u8; 4];
        len.copy_from_slice(&tail[pos..pos + 4]);
        let mut count = [0u8; 4];
        count.copy_from_slice(&tail[pos + 8..pos + 12]);
        n += u64::from(u32::from_le_bytes(count));
        pos += wal::RECORD_OVERHEAD + u32::from_le_bytes(len) as usize;
    }
    n
}

/// Writes the compacted log (header and live entries) and fsyncs it.
fn write_compacted(
    dir: &Path,
    header: &Header,
    entries: &[(u64, Revocation)],
) -> std::io::Result<()> {
    let path = dir.join(COMPACT_FILE);
    let mut out = std::io::BufWriter::with_capacity(
        1 << 20,
        OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?,
    );
    out.write_all(&wal::encode_header(header))?;
    let mut buf = Vec::new();
    // Records of a few thousand entries keep each CRC'd unit small.
    for chunk in entries.chunks(4096) {
        buf.clear();
        wal::encode_record(chunk.iter().map(|(s, r)| (*s, r)), &mut buf);
        out.write_all(&buf)?;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

/// Opens the log for appending, replays it and truncates a torn tail (after
/// keeping a copy of the cut bytes next to it for inspection).
fn open_and_replay(dir: &Path, path: &Path) -> Result<(File, wal::Replay), StoreError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| io_err("open", path, e))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| io_err("read", path, e))?;
    let replay = wal::replay(&bytes).map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
    let total = bytes.len() as u64;
    if replay.valid_len < total {
        let torn = &bytes[replay.valid_len as usize..];
        let keep = dir.join(format!("revocations.log.torn-{}", replay.valid_len));
        log::warn!(
            "cutting a torn tail of {} bytes at offset {} (an unacknowledged write interrupted by a crash); copy kept in {}",
            torn.len(),
            replay.valid_len,
            keep.display()
        );
        fs::write(&keep, torn).map_err(|e| io_err("write", &keep, e))?;
        file.set_len(replay.valid_len)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_err("truncate", path, e))?;
    }
    file.seek(SeekFrom::Start(replay.valid_len))
        .map_err(|e| io_err("seek", path, e))?;
    Ok((file, replay))
}

fn write_new_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let path = dir.join(name);
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|e| io_err("create", &path, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io_err("write", &path, e))
}

/// rename(2) then fsync of the directory, so the new name survives a power
/// loss too.
fn rename_durably(dir: &Path, from: &str, to: &str) -> Result<(), StoreError> {
    let (a, b) = (dir.join(from), dir.join(to));
    fs::rename(&a, &b).map_err(|e| io_err("rename", &a, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("fsync directory", dir, e))
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError(format!("{what} {}: {e}", path.display()))
}
