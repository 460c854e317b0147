//! Answers bound to the poll they answer: the [`BINDING_HEADER`] signature
//! (version 2). See "Bound answers" in the crate docs for the rules; this
//! module is the one implementation of them, for the server that builds the
//! header and the filter that checks it.

use crate::{decode_hex32, hmac_sha256, macs_equal, paged_request_path, push_hex, push_param};
use std::fmt;

/// Response header carrying the bound signature:
/// `v=2,t=<unix seconds>,epoch=<epoch>,sig=<64 lowercase hex>`.
pub const BINDING_HEADER: &str = "x-revocation-binding";

/// The binding version this crate builds and accepts (the `v` field).
pub const BINDING_VERSION: u32 = 2;

/// Query parameter carrying the poll's nonce: [`NONCE_MIN_LEN`] to
/// [`NONCE_MAX_LEN`] lowercase hex digits, fresh and random for every poll
/// ([`encode_nonce`] makes one of 32 digits from 16 random bytes).
pub const NONCE_PARAM: &str = "nonce";

/// Query parameter by which a poll says how long, in milliseconds, the feed
/// may hold it when there is nothing new (a long poll).
pub const WAIT_MS_PARAM: &str = "wait_ms";

/// Fewest hex digits of a nonce the feed accepts (64 bits).
pub const NONCE_MIN_LEN: usize = 16;

/// Most hex digits of a nonce the feed accepts.
pub const NONCE_MAX_LEN: usize = 64;

/// Random bytes [`encode_nonce`] takes (128 bits, 32 hex digits).
pub const NONCE_BYTES: usize = 16;

/// Longest epoch a binding may carry, in bytes.
pub const MAX_EPOCH_BYTES: usize = 64;

/// First bytes of every version 2 MAC input. They keep a bound MAC from ever
/// equalling the body-only MAC of [`crate::SIGNATURE_HEADER`] (a body starts
/// with `{`), so neither header can stand in for the other.
const MAC_PREFIX: &[u8] = b"jwt-auth-wasm revocation binding v2\0";

/// What a verified binding tells the filter about the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The feed's clock when it answered, in Unix seconds.
    pub time: u64,
    /// The feed's data set identity when it answered (the epoch of its
    /// cursors); it changes only when the feed's data set is replaced.
    pub epoch: String,
}

/// Why an answer's binding was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingError {
    /// The answer has no [`BINDING_HEADER`]: a feed that predates bindings,
    /// or one whose header was stripped on the way. Such an answer can be a
    /// replay; count it apart from [`BindingError::Mismatch`].
    Unbound,
    /// The header is there but is not a version 2 binding; the reason says
    /// what is wrong with it.
    Malformed(&'static str),
    /// The signature does not cover this body, this `since` and this nonce
    /// with the time and epoch the header states: an answer to another poll
    /// (replayed), an altered one, or one signed with another key.
    Mismatch,
}

impl BindingError {
    /// Short metric label: `unbound`, `malformed_binding` or `replayed`
    /// (with the right key, a mismatch is nearly always an answer recorded
    /// from another poll).
    pub fn label(&self) -> &'static str {
        match self {
            BindingError::Unbound => "unbound",
            BindingError::Malformed(_) => "malformed_binding",
            BindingError::Mismatch => "replayed",
        }
    }
}

impl fmt::Display for BindingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindingError::Unbound => write!(f, "no {BINDING_HEADER} header"),
            BindingError::Malformed(why) => write!(f, "unusable {BINDING_HEADER} header: {why}"),
            BindingError::Mismatch => write!(
                f,
                "{BINDING_HEADER} does not match this poll (replayed, altered or another key)"
            ),
        }
    }
}

impl std::error::Error for BindingError {}

/// Checks a nonce as the feed receives it: [`NONCE_MIN_LEN`] to
/// [`NONCE_MAX_LEN`] lowercase hex digits. The error says what is wrong.
pub fn check_nonce(nonce: &str) -> Result<(), &'static str> {
    if nonce.len() < NONCE_MIN_LEN || nonce.len() > NONCE_MAX_LEN {
        return Err("must be 16 to 64 lowercase hex digits");
    }
    if !nonce
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err("must be lowercase hex digits only");
    }
    Ok(())
}

/// A nonce from `random` (which the caller draws from a secure source for
/// every poll): its 32 lowercase hex digits.
pub fn encode_nonce(random: &[u8; NONCE_BYTES]) -> String {
    let mut out = String::with_capacity(2 * NONCE_BYTES);
    push_hex(&mut out, random);
    out
}

/// SHA-256 of an answer body, the form in which a binding covers it. A feed
/// computes it once per body it builds and keeps it beside the body, so a
/// cached snapshot is not hashed again for every poll it answers.
pub fn body_digest(body: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(body).into()
}

/// The [`BINDING_HEADER`] value for an answer: `since` as the feed read it
/// from the poll (empty when there was none), the poll's `nonce` (empty when
/// there was none), the feed's `epoch` and clock (`time`, Unix seconds) and
/// the [`body_digest`] of the body. None when `epoch` cannot be carried
/// (empty, longer than [`MAX_EPOCH_BYTES`], or a byte other than ASCII
/// letters, digits, `.`, `_` and `-`).
pub fn bound_signature(
    secret: &[u8],
    since: &str,
    nonce: &str,
    epoch: &str,
    time: u64,
    digest: &[u8; 32],
) -> Option<String> {
    if !epoch_ok(epoch) {
        return None;
    }
    let mac = bound_mac(secret, since, nonce, epoch, time, digest);
    let mut out = String::with_capacity(48 + epoch.len() + 64);
    out.push_str("v=");
    out.push_str(&BINDING_VERSION.to_string());
    out.push_str(",t=");
    out.push_str(&time.to_string());
    out.push_str(",epoch=");
    out.push_str(epoch);
    out.push_str(",sig=");
    push_hex(&mut out, &mac);
    Some(out)
}

/// Checks an answer's binding: `header_value` is its [`BINDING_HEADER`]
/// (None when absent), `body` the exact body bytes, `expected_since` and
/// `expected_nonce` what this poll sent (`since` empty for a first poll).
/// Returns the feed's time and epoch the binding vouches for; the caller
/// still applies its freshness and epoch rules to them (crate docs). The
/// MAC comparison runs in constant time.
pub fn verify_bound_signature(
    secret: &[u8],
    header_value: Option<&str>,
    body: &[u8],
    expected_since: &str,
    expected_nonce: &str,
) -> Result<Binding, BindingError> {
    let header = header_value.ok_or(BindingError::Unbound)?;
    let (time, epoch, given) = parse_header(header)?;
    let expected = bound_mac(
        secret,
        expected_since,
        expected_nonce,
        epoch,
        time,
        &body_digest(body),
    );
    if !macs_equal(&expected, &given) {
        return Err(BindingError::Mismatch);
    }
    Ok(Binding {
        time,
        epoch: epoch.to_string(),
    })
}

/// The poll of a filter that checks bindings: [`paged_request_path`] plus
/// `nonce=<nonce>` and, for a long poll, `wait_ms=<wait_ms>`.
pub fn poll_request_path(
    path: &str,
    cursor: Option<&str>,
    nonce: &str,
    wait_ms: Option<u64>,
) -> String {
    let mut out = paged_request_path(path, cursor);
    push_param(&mut out, NONCE_PARAM, nonce);
    if let Some(ms) = wait_ms {
        push_param(&mut out, WAIT_MS_PARAM, &ms.to_string());
    }
    out
}

/// HMAC-SHA256 over [`MAC_PREFIX`], then `since`, `nonce` and `epoch`, each
/// as its length (8 bytes, big-endian) and its bytes, then `time` (8 bytes,
/// big-endian) and the body's SHA-256 (32 bytes). The lengths make the
/// fields unambiguous whatever bytes `since` holds.
fn bound_mac(
    secret: &[u8],
    since: &str,
    nonce: &str,
    epoch: &str,
    time: u64,
    digest: &[u8; 32],
) -> [u8; 32] {
    let len = |s: &str| (s.len() as u64).to_be_bytes();
    hmac_sha256(
        secret,
        &[
            MAC_PREFIX,
            &len(since),
            since.as_bytes(),
            &len(nonce),
            nonce.as_bytes(),
            &len(epoch),
            epoch.as_bytes(),
            &time.to_be_bytes(),
            digest,
        ],
    )
}

fn epoch_ok(epoch: &str) -> bool {
    !epoch.is_empty()
        && epoch.len() <= MAX_EPOCH_BYTES
        && epoch
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `v=2,t=<time>,epoch=<epoch>,sig=<hex>`, fields in any order, each once,
/// spaces around them ignored.
fn parse_header(value: &str) -> Result<(u64, &str, [u8; 32]), BindingError> {
    let malformed = BindingError::Malformed;
    let (mut version, mut time, mut epoch, mut sig) = (None, None, None, None);
    for item in value.split(',') {
        let (key, val) = item
            .split_once('=')
            .ok_or(malformed("a field without '='"))?;
        let slot = match key.trim() {
            "v" => &mut version,
            "t" => &mut time,
            "epoch" => &mut epoch,
            "sig" => &mut sig,
            _ => return Err(malformed("unknown field")),
        };
        if slot.replace(val.trim()).is_some() {
            return Err(malformed("a field given twice"));
        }
    }
    match version {
        None => return Err(malformed("no version (v)")),
        Some(v) if v != BINDING_VERSION.to_string() => {
            return Err(malformed("unsupported version"))
        }
        Some(_) => {}
    }
    let time = time.ok_or(malformed("no time (t)"))?;
    // `u64::from_str` would take a leading '+'; only digits are a time.
    if time.is_empty() || !time.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("time (t) is not a whole number of seconds"));
    }
    let time: u64 = time
        .parse()
        .map_err(|_| malformed("time (t) is out of range"))?;
    let epoch = epoch.ok_or(malformed("no epoch"))?;
    if !epoch_ok(epoch) {
        return Err(malformed(
            "epoch is empty, too long or has a byte not allowed",
        ));
    }
    let sig = sig
        .and_then(decode_hex32)
        .ok_or(malformed("sig is not 64 hex digits"))?;
    Ok((time, epoch, sig))
}

#[cfg(test)]
mod tests;
