//! What both storage backends build on: the shape of a poll answer and the
//! limits on it, the snapshot cache, expiry, snapshot page cursors and the
//! random data set identity. The backends (`embedded`, `redis_store`) and the
//! seam over them (`store`) import from here; nothing here imports them.

use bytes::Bytes;
use revocation_protocol::{body_digest, encode_feed_page, Revocation};
use std::fmt;
use std::io::Read;
use std::sync::Mutex;

/// Default page size: about 3 MB of JSON with UUID-sized jtis, far below
/// the response body limit of a proxy's HTTP client (32 MiB in Envoy).
pub const DEFAULT_MAX_ENTRIES_PER_RESPONSE: usize = 50_000;

/// Limits that shape every poll answer, whatever the backend.
#[derive(Debug, Clone, Copy)]
pub struct FeedLimits {
    /// An entry is still served until `exp + grace_seconds`, so a proxy whose
    /// clock runs behind the server's does not drop it early for lack of it.
    pub grace_seconds: u64,
    /// Most entries in one response. A delta beyond it is cut and the
    /// client continues from the returned cursor. A snapshot is cut into
    /// pages only for a client that asked for pages (`paged=1`): to any
    /// other, a partial snapshot would replace a complete set.
    pub max_entries_per_response: usize,
}

impl Default for FeedLimits {
    fn default() -> Self {
        FeedLimits {
            grace_seconds: 60,
            max_entries_per_response: DEFAULT_MAX_ENTRIES_PER_RESPONSE,
        }
    }
}

/// A poll answer, ready to send.
#[derive(Debug, Clone)]
pub struct Poll {
    /// The JSON body (the bytes that get signed). Shared, because a cached
    /// snapshot goes out to many proxies.
    pub body: Bytes,
    /// SHA-256 of `body`, computed once with it: the answer's binding
    /// covers the body through it, so a cached body is not hashed again for
    /// every poll it answers.
    pub digest: [u8; 32],
    /// The cursor in the body.
    pub cursor: String,
    /// The data set's identity when the answer was read (the epoch of the
    /// cursor), which the binding carries.
    pub epoch: String,
    /// Whether it is a reset snapshot (or its first page).
    pub reset: bool,
    /// Whether more pages follow.
    pub more: bool,
    /// Entries in it.
    pub entries: usize,
}

impl Poll {
    /// Encodes an answer of `entries` ending at `cursor` of data set
    /// `epoch`.
    pub(crate) fn encode<'a, I>(
        epoch: &str,
        cursor: String,
        reset: bool,
        more: bool,
        entries: I,
    ) -> Poll
    where
        I: Iterator<Item = &'a Revocation> + Clone,
    {
        let count = entries.clone().count();
        let body = Bytes::from(encode_feed_page(&cursor, reset, more, entries));
        Poll {
            digest: body_digest(&body),
            body,
            cursor,
            epoch: epoch.to_string(),
            reset,
            more,
            entries: count,
        }
    }

    /// Whether this answers a client at cursor `since` with nothing new: the
    /// empty delta that leaves it where it is (what a long poll waits on).
    pub fn is_caught_up(&self, since: Option<&str>) -> bool {
        !self.reset && !self.more && since == Some(self.cursor.as_str())
    }
}

/// A storage failure, reported to clients as 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// The last reset snapshot, keyed by the cursor it ends at.
///
/// When a fleet of proxies restarts they all ask for the same snapshot;
/// building a large one costs far more than the request. A snapshot stays
/// right while the cursor is unchanged (every write moves the cursor) and no
/// entry in it has expired (entries only leave by expiring), so the key and
/// the earliest expiry in it decide whether it can be reused.
#[derive(Default)]
pub(crate) struct SnapshotCache {
    inner: Mutex<Option<CachedSnapshot>>,
}

struct CachedSnapshot {
    cursor: String,
    /// Reusable while `now <= valid_until` (earliest `exp + grace` inside).
    valid_until: u64,
    poll: Poll,
}

impl SnapshotCache {
    /// The cached snapshot ending at `cursor`, if still exact at `now`.
    pub(crate) fn get(&self, cursor: &str, now: u64) -> Option<Poll> {
        let guard = self.inner.lock().ok()?;
        let c = guard.as_ref()?;
        (c.cursor == cursor && now <= c.valid_until).then(|| c.poll.clone())
    }

    /// Encodes a snapshot of `entries` (already filtered for expiry) ending
    /// at `cursor` of data set `epoch`, remembers it and returns it.
    pub(crate) fn build<'a, I>(&self, epoch: &str, cursor: String, grace: u64, entries: I) -> Poll
    where
        I: Iterator<Item = &'a Revocation> + Clone,
    {
        let valid_until = entries
            .clone()
            .map(|r| r.exp().saturating_add(grace))
            .min()
            .unwrap_or(u64::MAX);
        let poll = Poll::encode(epoch, cursor.clone(), true, false, entries);
        if let Ok(mut guard) = self.inner.lock() {
            *guard = Some(CachedSnapshot {
                cursor,
                valid_until,
                poll: poll.clone(),
            });
        }
        poll
    }
}

/// Splits a snapshot continuation cursor `<base>~<position>`; None for any
/// other cursor.
pub(crate) fn split_page_cursor(cursor: &str) -> Option<(&str, &str)> {
    cursor.split_once(revocation_protocol::PAGE_SEPARATOR)
}

/// `<base>~<position>`.
pub(crate) fn page_cursor(base: &str, position: &str) -> String {
    format!("{base}{}{position}", revocation_protocol::PAGE_SEPARATOR)
}

/// Whether an entry is still to be served: `exp + grace >= now`.
pub(crate) fn live(r: &Revocation, now: u64, grace: u64) -> bool {
    r.exp().saturating_add(grace) >= now
}

/// A random data set identity; /dev/urandom is always there on the Linux
/// hosts this runs on, the clock and pid are a fallback that still differs
/// between two data sets created at different times.
pub(crate) fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_le_bytes(b);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}
