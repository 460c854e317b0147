//! The shared-data encoding: fixed-size binary records, so a worker applies
//! a delta without parsing JSON and a million entries fit in a snapshot of a
//! few tens of megabytes.
//!
//! Batch: `JRB1` | version u64 | count u32 | records; record: tag u8
//! (1 token, 2 subject) | digest u128 | exp u64 [| before u64]. Little endian.
//! A snapshot lists its token records in ascending digest order (what
//! `RevocationSet::entries` yields), so a worker loads it by appending to
//! an array sized from `count`; readers accept any order (deltas are in
//! feed order), so the layout and magic are those of builds that wrote
//! snapshots unordered, and both read each other's data during an upgrade.
//! Meta: `JRM1` | version u64 | base u64 | snapshot u64 | oldest_delta u64 |
//! last_sync_ms u64 | held u64 | cursor_len u16 | cursor bytes.

use super::set::{Entry, EntrySink, RevocationSet};

const BATCH_MAGIC: &[u8; 4] = b"JRB1";
const META_MAGIC: &[u8; 4] = b"JRM2";
const TAG_TOKEN: u8 = 1;
const TAG_SUBJECT: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecError(pub &'static str);

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A delta (entries added at `version`) or a snapshot (the whole set as of
/// `version`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub version: u64,
    pub entries: Vec<Entry>,
}

/// Bytes of an encoded token and subject record, and of the batch header.
const TOKEN_RECORD: usize = 1 + 16 + 8;
const SUBJECT_RECORD: usize = 1 + 16 + 8 + 8;
const BATCH_HEADER: usize = 16;

pub fn encode_batch(version: u64, entries: impl Iterator<Item = Entry>) -> Vec<u8> {
    let (lower, _) = entries.size_hint();
    encode_batch_sized(version, entries, BATCH_HEADER + lower * SUBJECT_RECORD)
}

/// The whole set as a batch, in a buffer of exactly its size: at millions
/// of entries a buffer that grows by doubling, or one sized for the larger
/// record, would hold hundreds of MiB more of the fetcher's memory (wasm
/// memory never shrinks, and the host caps it).
pub fn encode_set(version: u64, set: &RevocationSet) -> Vec<u8> {
    let size =
        BATCH_HEADER + set.token_count() * TOKEN_RECORD + set.subject_count() * SUBJECT_RECORD;
    encode_batch_sized(version, set.entries(), size)
}

fn encode_batch_sized(version: u64, entries: impl Iterator<Item = Entry>, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(BATCH_MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let mut count: u32 = 0;
    for entry in entries {
        match entry {
            Entry::Token { id, exp } => {
                out.push(TAG_TOKEN);
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(&exp.to_le_bytes());
            }
            Entry::Subject { id, before, exp } => {
                out.push(TAG_SUBJECT);
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(&exp.to_le_bytes());
                out.extend_from_slice(&before.to_le_bytes());
            }
        }
        count = count.saturating_add(1);
    }
    if let Some(slot) = out.get_mut(12..16) {
        slot.copy_from_slice(&count.to_le_bytes());
    }
    out
}

pub fn decode_batch(bytes: &[u8]) -> Result<Batch, CodecError> {
    let mut entries = Vec::new();
    let version = decode_batch_into(bytes, &mut entries)?;
    Ok(Batch { version, entries })
}

/// Decodes a batch entry by entry, without collecting it first: a
/// snapshot of a million entries goes straight into a set, and the
/// snapshot's bytes are the only other copy while it loads. Returns the
/// batch's version.
pub fn decode_batch_into(bytes: &[u8], sink: &mut impl EntrySink) -> Result<u64, CodecError> {
    let mut r = Reader(bytes);
    if r.take(4)? != BATCH_MAGIC {
        return Err(CodecError("not a revocation batch"));
    }
    let version = r.u64()?;
    let count = r.u32()? as usize;
    // Each record is at least 25 bytes: refuse a count the bytes cannot hold
    // before reserving memory for it.
    if count > r.0.len() / 25 {
        return Err(CodecError("record count exceeds batch size"));
    }
    sink.reserve(count);
    for _ in 0..count {
        let tag = r.u8()?;
        let id = r.u128()?;
        let exp = r.u64()?;
        sink.push(match tag {
            TAG_TOKEN => Entry::Token { id, exp },
            TAG_SUBJECT => Entry::Subject {
                id,
                exp,
                before: r.u64()?,
            },
            _ => return Err(CodecError("unknown record tag")),
        });
    }
    if !r.0.is_empty() {
        return Err(CodecError("trailing bytes after records"));
    }
    Ok(version)
}

/// What the fetcher publishes about the shared set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// Latest version; each published change adds one.
    pub version: u64,
    /// Last full replacement (a feed `reset`): a worker behind it must
    /// load the snapshot, as the deltas before it no longer apply.
    pub base: u64,
    /// Version held by the snapshot key.
    pub snapshot: u64,
    /// Oldest delta still kept; a worker further behind loads the snapshot.
    pub oldest_delta: u64,
    /// Unix milliseconds of the last successful feed poll.
    pub last_sync_ms: u64,
    /// Entries in the set at `version`.
    pub held: u64,
    /// The feed cursor to poll from next.
    pub cursor: String,
    /// The feed's epoch (its data set's identity) as its bound answers
    /// state it; empty before the first bound answer.
    pub epoch: String,
    /// The feed's clock (Unix seconds) on the last bound reset applied: a
    /// new epoch is accepted only through a reset newer than this.
    pub reset_time: u64,
    /// Who wrote each retained version: `(first version, writer)` runs in
    /// version order. Delta and snapshot keys carry their writer, so a
    /// fetcher that lost its lease mid-publish can never overwrite another
    /// fetcher's data.
    pub writers: Vec<(u64, u64)>,
    /// The writer of the snapshot key holding `snapshot`.
    pub snapshot_writer: u64,
    /// Whether any entry of the set is scoped to an issuer (lookups then
    /// check the scoped digests too).
    pub scoped: bool,
}

impl Meta {
    /// The writer of version `version` (0, no writer, when no run covers it).
    pub fn writer_of(&self, version: u64) -> u64 {
        self.writers
            .iter()
            .rev()
            .find(|(first, _)| *first <= version)
            .map_or(0, |(_, writer)| *writer)
    }
}

pub fn encode_meta(meta: &Meta) -> Vec<u8> {
    let cursor = meta.cursor.as_bytes();
    let len = u16::try_from(cursor.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(54 + cursor.len());
    out.extend_from_slice(META_MAGIC);
    for n in [
        meta.version,
        meta.base,
        meta.snapshot,
        meta.oldest_delta,
        meta.last_sync_ms,
        meta.held,
    ] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(cursor.get(..usize::from(len)).unwrap_or(cursor));
    let epoch = meta.epoch.as_bytes();
    let len = u16::try_from(epoch.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(epoch.get(..usize::from(len)).unwrap_or(epoch));
    out.extend_from_slice(&meta.reset_time.to_le_bytes());
    out.extend_from_slice(&meta.snapshot_writer.to_le_bytes());
    out.push(u8::from(meta.scoped));
    let runs = u16::try_from(meta.writers.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&runs.to_le_bytes());
    for (first, writer) in meta.writers.iter().take(usize::from(runs)) {
        out.extend_from_slice(&first.to_le_bytes());
        out.extend_from_slice(&writer.to_le_bytes());
    }
    out
}

pub fn decode_meta(bytes: &[u8]) -> Result<Meta, CodecError> {
    let mut r = Reader(bytes);
    if r.take(4)? != META_MAGIC {
        return Err(CodecError("not a revocation meta record"));
    }
    let mut meta = Meta {
        version: r.u64()?,
        base: r.u64()?,
        snapshot: r.u64()?,
        oldest_delta: r.u64()?,
        last_sync_ms: r.u64()?,
        held: r.u64()?,
        ..Meta::default()
    };
    meta.cursor = r.text("cursor is not UTF-8")?;
    meta.epoch = r.text("epoch is not UTF-8")?;
    meta.reset_time = r.u64()?;
    meta.snapshot_writer = r.u64()?;
    meta.scoped = match r.take(1)? {
        [0] => false,
        [1] => true,
        _ => return Err(CodecError("scoped flag is not 0 or 1")),
    };
    let runs = r.u16()?;
    for _ in 0..runs {
        meta.writers.push((r.u64()?, r.u64()?));
    }
    if !r.0.is_empty() {
        return Err(CodecError("trailing bytes after meta"));
    }
    Ok(meta)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// A u16 length, then that many bytes of UTF-8.
    fn text(&mut self, not_utf8: &'static str) -> Result<String, CodecError> {
        let len = usize::from(self.u16()?);
        std::str::from_utf8(self.take(len)?)
            .map(str::to_string)
            .map_err(|_| CodecError(not_utf8))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.0.len() < n {
            return Err(CodecError("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn u128(&mut self) -> Result<u128, CodecError> {
        Ok(u128::from_le_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::set::digest;

    fn sample() -> Vec<Entry> {
        vec![
            Entry::Token {
                id: digest("a"),
                exp: 1,
            },
            Entry::Subject {
                id: digest("s"),
                before: 2,
                exp: 3,
            },
            Entry::Token {
                id: u128::MAX,
                exp: u64::MAX,
            },
        ]
    }

    #[test]
    fn batch_round_trip() {
        let bytes = encode_batch(42, sample().into_iter());
        let batch = decode_batch(&bytes).unwrap();
        assert_eq!(batch.version, 42);
        assert_eq!(batch.entries, sample());
        let empty = decode_batch(&encode_batch(1, std::iter::empty())).unwrap();
        assert!(empty.entries.is_empty());
    }

    #[test]
    fn a_set_is_encoded_into_a_buffer_of_exactly_its_size() {
        let mut set = RevocationSet::new();
        set.apply(&sample());
        let bytes = encode_set(7, &set);
        assert_eq!(bytes.len(), bytes.capacity(), "no slack, no regrowth");
        let batch = decode_batch(&bytes).unwrap();
        assert_eq!(batch.version, 7);
        assert_eq!(batch.entries, set.entries().collect::<Vec<_>>());
    }

    #[test]
    fn corrupt_batches_are_refused() {
        let bytes = encode_batch(42, sample().into_iter());
        for cut in 0..bytes.len() {
            assert!(decode_batch(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode_batch(&extra).is_err());
        let mut bad_tag = bytes.clone();
        bad_tag[16] = 9;
        assert!(decode_batch(&bad_tag).is_err());
        let mut huge_count = bytes;
        huge_count[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_batch(&huge_count).is_err());
        assert!(decode_batch(b"JRM1").is_err());
    }

    #[test]
    fn meta_round_trip_and_corruption() {
        let meta = Meta {
            version: 9,
            base: 3,
            snapshot: 8,
            oldest_delta: 4,
            last_sync_ms: 1_700_000_000_000,
            held: 77,
            cursor: "ep1-1042".into(),
            epoch: "ep1".into(),
            reset_time: 1_700_000_000,
            writers: vec![(4, 11), (7, 12)],
            snapshot_writer: 12,
            scoped: true,
        };
        let bytes = encode_meta(&meta);
        assert_eq!(decode_meta(&bytes).unwrap(), meta);
        assert_eq!(
            (
                meta.writer_of(3),
                meta.writer_of(4),
                meta.writer_of(6),
                meta.writer_of(9)
            ),
            (0, 11, 11, 12)
        );
        for cut in 0..bytes.len() {
            assert!(decode_meta(&bytes[..cut]).is_err());
        }
        assert!(decode_meta(&encode_batch(1, std::iter::empty())).is_err());
    }
}
