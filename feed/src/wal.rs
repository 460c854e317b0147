//! On-disk format of the embedded store's append-only log.
//!
//! ```text
//! file    := header record*
//! header  := magic "RVFDLOG1" (8) | version u32 | epoch u64 | base_seq u64 | crc32 u32   (32 bytes)
//! record  := len u32 | crc32(payload) u32 | payload                                        (len = payload bytes)
//! payload := count u32 | entry{count}
//! entry   := seq u64 | kind u8 | exp u64 | before u64 | id_len u32 | id (UTF-8) | scope
//! kind    := 1 (jti) | 2 (sub) | 3 (jti of one issuer) | 4 (sub of one issuer)
//! scope   := nothing for kinds 1 and 2 | iss_len u32 | iss (UTF-8) for kinds 3 and 4
//! ```
//!
//! Kinds 1 and 2 are the layout from before issuer scopes, unchanged: an
//! unscoped entry is written exactly as it was, and a log written before
//! issuers existed replays as unscoped entries. A server that predates
//! kinds 3 and 4 refuses to start on a log that holds them (an unknown kind
//! is a corrupt record to it) rather than serve them unscoped.
//!
//! All integers are little-endian. One admin request is one record, so a
//! crash can never leave half of a request in the log: the CRC covers the
//! whole request. `base_seq` is the highest sequence number ever handed out
//! when the file was created (by compaction); it keeps the sequence from going
//! backwards when compaction dropped every entry.

use revocation_protocol::{Revocation, RevokedSubject, RevokedToken};
use std::fmt;

/// Identifies the file type and layout version.
pub const MAGIC: &[u8; 8] = b"RVFDLOG1";
/// Layout version stored after the magic.
pub const VERSION: u32 = 1;
/// Size of the file header.
pub const HEADER_LEN: usize = 32;
/// Bytes before each record's payload (length and CRC).
pub const RECORD_OVERHEAD: usize = 8;
/// A record larger than this is taken for garbage: the admin body cap keeps
/// real records far below it, and without a bound a torn length field could
/// make replay trust megabytes of unwritten space.
pub const MAX_RECORD_LEN: usize = 256 << 20;

const KIND_TOKEN: u8 = 1;
const KIND_SUBJECT: u8 = 2;
const KIND_TOKEN_ISS: u8 = 3;
const KIND_SUBJECT_ISS: u8 = 4;
/// seq, kind, exp, before: what precedes the id's length.
const ENTRY_FIXED: usize = 8 + 1 + 8 + 8;

/// The log file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Identity of this store; changes only when the data directory is
    /// created anew, so a cursor from another store is recognised.
    pub epoch: u64,
    /// Highest sequence number handed out before this file's first record.
    pub base_seq: u64,
}

/// Why a log could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogError {
    /// The header is short, has the wrong magic/version or a bad CRC. Headers
    /// are fsynced before the file is renamed into place, so this is damage
    /// or a foreign file, never a crash.
    BadHeader(String),
    /// A record passed its CRC but its content is inconsistent: written by a
    /// bug or a different version. Replay refuses to guess.
    BadRecord {
        /// Byte offset of the record.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::BadHeader(r) => write!(f, "log header is unusable: {r}"),
            LogError::BadRecord { offset, reason } => {
                write!(f, "log record at byte {offset} is corrupt: {reason}")
            }
        }
    }
}

impl std::error::Error for LogError {}

/// Encodes the header.
pub fn encode_header(h: &Header) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[0..8].copy_from_slice(MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..20].copy_from_slice(&h.epoch.to_le_bytes());
    out[20..28].copy_from_slice(&h.base_seq.to_le_bytes());
    let crc = crc32fast::hash(&out[0..28]);
    out[28..32].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes and checks the header.
pub fn decode_header(bytes: &[u8]) -> Result<Header, LogError> {
    if bytes.len() < HEADER_LEN {
        return Err(LogError::BadHeader(format!(
            "file is {} bytes, shorter than the header",
            bytes.len()
        )));
    }
    if &bytes[0..8] != MAGIC {
        return Err(LogError::BadHeader("wrong magic".into()));
    }
    if u32_at(bytes, 28) != crc32fast::hash(&bytes[0..28]) {
        return Err(LogError::BadHeader("CRC mismatch".into()));
    }
    let version = u32_at(bytes, 8);
    if version != VERSION {
        return Err(LogError::BadHeader(format!(
            "layout version {version}, expected {VERSION}"
        )));
    }
    Ok(Header {
        epoch: u64_at(bytes, 12),
        base_seq: u64_at(bytes, 20),
    })
}

/// Appends one record holding `entries` (with their sequence numbers, which
/// must increase) to `out`.
pub fn encode_record<'a, I>(entries: I, out: &mut Vec<u8>)
where
    I: IntoIterator<Item = (u64, &'a Revocation)>,
{
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_OVERHEAD]);
    out.extend_from_slice(&[0u8; 4]);
    let mut count: u32 = 0;
    for (seq, rev) in entries {
        count += 1;
        out.extend_from_slice(&seq.to_le_bytes());
        let (kind, exp, before, id) = match rev {
            Revocation::Token(t) => (KIND_TOKEN, t.exp, 0, &t.jti),
            Revocation::Subject(s) => (KIND_SUBJECT, s.exp, s.before, &s.sub),
        };
        let iss = rev.iss();
        out.push(match (kind, iss) {
            (KIND_TOKEN, Some(_)) => KIND_TOKEN_ISS,
            (KIND_SUBJECT, Some(_)) => KIND_SUBJECT_ISS,
            (kind, _) => kind,
        });
        out.extend_from_slice(&exp.to_le_bytes());
        out.extend_from_slice(&before.to_le_bytes());
        push_str(out, id);
        if let Some(iss) = iss {
            push_str(out, iss);
        }
    }
    let payload_start = start + RECORD_OVERHEAD;
    out[payload_start..payload_start + 4].copy_from_slice(&count.to_le_bytes());
    let payload_len = out.len() - payload_start;
    let crc = crc32fast::hash(&out[payload_start..]);
    let len = u32::try_from(payload_len).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What replaying a log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// The file header.
    pub header: Header,
    /// Every entry of every intact record, in sequence order.
    pub entries: Vec<(u64, Revocation)>,
    /// Number of intact records.
    pub records: u64,
    /// Length of the intact prefix: header plus intact records. Anything
    /// after it is a torn tail to cut off.
    pub valid_len: u64,
    /// Highest sequence number handed out: the larger of the header's
    /// `base_seq` and the last record's.
    pub last_seq: u64,
}

/// Replays a whole log file image.
///
/// A record that is short, oversized or fails its CRC ends the replay: it is
/// the tail of a write that a crash interrupted before its fsync returned,
/// and such a write was never acknowledged. Everything from it on is reported
/// through `valid_len` for the caller to truncate.
pub fn replay(bytes: &[u8]) -> Result<Replay, LogError> {
    let header = decode_header(bytes)?;
    let mut entries = Vec::new();
    let mut pos = HEADER_LEN;
    let mut records = 0u64;
    // Compaction keeps entries older than `base_seq`, so record sequence
    // numbers are only checked against each other.
    let mut prev_seq = 0;
    while let Some(payload) = next_payload(bytes, pos) {
        decode_payload(payload, pos as u64, &mut prev_seq, &mut entries)?;
        records += 1;
        pos += RECORD_OVERHEAD + payload.len();
    }
    let last_seq = header.base_seq.max(prev_seq);
    Ok(Replay {
        header,
        entries,
        records,
        valid_len: pos as u64,
        last_seq,
    })
}

/// The payload of the record at `pos` if it is complete and its CRC holds.
fn next_payload(bytes: &[u8], pos: usize) -> Option<&[u8]> {
    let rest = bytes.get(pos..)?;
    if rest.len() < RECORD_OVERHEAD {
        return None;
    }
    let len = u32_at(rest, 0) as usize;
    // A zero-filled tail (the file grew but the data never reached the disk)
    // reads as len 0 with CRC 0, which is the CRC of nothing; requiring the
    // count field keeps it from passing as a record.
    if !(4..=MAX_RECORD_LEN).contains(&len) || rest.len() - RECORD_OVERHEAD < len {
        return None;
    }
    let payload = &rest[RECORD_OVERHEAD..RECORD_OVERHEAD + len];
    if crc32fast::hash(payload) != u32_at(rest, 4) {
        return None;
    }
    Some(payload)
}

fn decode_payload(
    payload: &[u8],
    offset: u64,
    last_seq: &mut u64,
    out: &mut Vec<(u64, Revocation)>,
) -> Result<(), LogError> {
    let bad = |reason: String| LogError::BadRecord { offset, reason };
    let count = u32_at(payload, 0);
    if count == 0 {
        return Err(bad("record holds no entries".into()));
    }
    let mut p = 4usize;
    for i in 0..count {
        if payload.len() < p + ENTRY_FIXED {
            return Err(bad(format!("entry {i} runs past the record")));
        }
        let seq = u64_at(payload, p);
        let kind = payload[p + 8];
        let exp = u64_at(payload, p + 9);
        let before = u64_at(payload, p + 17);
        p += ENTRY_FIXED;
        let (is_token, scoped) = match kind {
            KIND_TOKEN => (true, false),
            KIND_SUBJECT => (false, false),
            KIND_TOKEN_ISS => (true, true),
            KIND_SUBJECT_ISS => (false, true),
            other => return Err(bad(format!("entry {i} has unknown kind {other}"))),
        };
        let id = read_str(payload, &mut p).map_err(|e| bad(format!("entry {i} id {e}")))?;
        let iss = if scoped {
            Some(read_str(payload, &mut p).map_err(|e| bad(format!("entry {i} iss {e}")))?)
        } else {
            None
        };
        if seq <= *last_seq {
            return Err(bad(format!(
                "entry {i} has sequence {seq}, not above {last_seq}"
            )));
        }
        let rev = if is_token {
            Revocation::Token(RevokedToken { jti: id, iss, exp })
        } else {
            Revocation::Subject(RevokedSubject {
                sub: id,
                iss,
                before,
                exp,
            })
        };
        *last_seq = seq;
        out.push((seq, rev));
    }
    if p != payload.len() {
        return Err(bad(format!(
            "{} bytes after the last entry",
            payload.len() - p
        )));
    }
    Ok(())
}

/// Appends `len u32 | bytes`. Strings are capped at MAX_ID_BYTES by the
/// admin API; the saturation is only there so encoding has no failure path.
fn push_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Reads a `len u32 | bytes` string at `*p` and moves past it; a string
/// that runs past the payload, is empty or is not UTF-8 is refused (the
/// encoder never writes one).
fn read_str(payload: &[u8], p: &mut usize) -> Result<String, &'static str> {
    let len_end = *p + 4;
    if payload.len() < len_end {
        return Err("runs past the record");
    }
    let len = u32_at(payload, *p) as usize;
    let Some(bytes) = payload.get(len_end..len_end.saturating_add(len)) else {
        return Err("runs past the record");
    };
    *p = len_end + len;
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err("is empty or not UTF-8"),
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}
