//! Revocation feed wire format.
//!
//! This crate is the single definition of what travels between the feed
//! server (`revocation-feed`) and the filter: the poll response, the admin
//! request, the error body and the response signature. It does no I/O, reads
//! no clock and starts no threads, so the same code builds for the filter's
//! `wasm32-wasip1` target and for the native server.
//!
//! # Poll
//!
//! `GET <path>?since=<cursor>&paged=1&nonce=<hex>&wait_ms=<ms>`, built by
//! [`poll_request_path`]. Every parameter is optional, and unknown ones are
//! ignored, so that filters and servers of different ages understand each
//! other; a parameter given twice is refused.
//!
//! - [`SINCE_PARAM`]: the cursor of the previous answer; absent (or empty) on
//!   the first call.
//! - [`PAGED_PARAM`] (`1`): the client accepts pages, see below.
//! - [`NONCE_PARAM`]: 16 to 64 lowercase hex digits, fresh and random for
//!   every poll ([`encode_nonce`] makes 32 from 16 random bytes; see
//!   [`check_nonce`]). The answer's binding covers it, see "Bound answers".
//! - [`WAIT_MS_PARAM`]: a long poll, see "Long poll".
//!
//! A server refuses a malformed parameter with `400` and an [`ErrorBody`]
//! whose `field` names it. The body of a `200` is a [`FeedResponse`]:
//!
//! ```json
//! {"cursor": "1042", "reset": false,
//!  "revoked": [{"jti": "a1b2", "exp": 1767225600},
//!              {"jti": "c3d4", "iss": "https://idp.example.com", "exp": 1767225600}],
//!  "revoked_subjects": [{"sub": "8b8e", "before": 1767139200, "exp": 1767225600},
//!                       {"sub": "8b8e", "iss": "https://idp.example.com",
//!                        "before": 1767139200, "exp": 1767225600}]}
//! ```
//!
//! # Issuer scope
//!
//! An entry may carry `iss`. With it, the entry refuses only tokens whose
//! `iss` claim equals it exactly (byte for byte: no normalization of case,
//! trailing slashes or anything else), so `{"jti": "1", "iss": "A"}` does not
//! refuse issuer B's token with `jti` `1`, and `{"sub": "alice", "iss": "A",
//! ...}` leaves B's `alice` alone (a `sub`, and a `jti`, is unique only
//! within its issuer). Without `iss`, the entry refuses every issuer's
//! tokens with that `jti` (or `sub`), as before the field existed. A token
//! without an `iss` claim is refused only by unscoped entries.
//!
//! Migration: the field is optional and written only when present, so
//! existing feeds, stored entries and answers keep their bytes and their
//! meaning. New revocations should carry `iss` whenever the filter accepts
//! more than one issuer. A filter that predates the field ignores it
//! (unknown fields are ignored, see "Strictness") and treats the entry as
//! unscoped: it refuses more than asked, never less, so feeds can start
//! sending scoped entries before every filter is upgraded. The same `jti`
//! revoked for two issuers is two entries; a filter holds both.
//!
//! # Long poll
//!
//! `wait_ms=<n>` (decimal, 0 or more) says the client can wait `n`
//! milliseconds for its answer. When something is newer than the cursor, or
//! the cursor calls for a snapshot, the server answers at once, as without
//! the parameter. Otherwise it holds the poll until a revocation is written
//! or the wait ends, and then answers: with the new entries, or with the
//! empty answer carrying the same cursor. The server caps `n` at its own
//! maximum, and answers at once when it holds too many polls already or is
//! shutting down, so a client must expect an early empty answer and simply
//! poll again. A poll without `wait_ms` is answered at once (filters that
//! predate long polls). A client's own timeout for the call must exceed
//! `wait_ms` by the round trip and the time to send a large answer.
//!
//! # Bound answers
//!
//! The body-only signature ([`SIGNATURE_HEADER`], below) proves that the
//! feed wrote a body, not that it wrote it for this poll: an attacker on the
//! path can answer every poll with a recorded empty answer for the current
//! cursor (the filter then believes it is up to date while revocations go
//! unseen), or, after the feed's data set was replaced, with an old
//! `reset: true` snapshot (rolling the filter's set back). A server with an
//! HMAC secret therefore also sends [`BINDING_HEADER`]:
//!
//! ```text
//! x-revocation-binding: v=2,t=<unix seconds>,epoch=<epoch>,sig=<64 lowercase hex>
//! ```
//!
//! on every poll answer (deltas, snapshots, every page, empty answers, long
//! polls that timed out). `t` is the feed's clock when it answered, `epoch`
//! the identity of its data set (1 to 64 ASCII letters, digits, `.`, `_`,
//! `-`; the reference server's cursors are `<epoch>-<position>`), and `sig`
//! is HMAC-SHA256, with the same secret as the body signature, over:
//!
//! ```text
//! "jwt-auth-wasm revocation binding v2" 0x00
//! u64be(len(since)) since      the `since` the server answered, as it decoded it; empty for none
//! u64be(len(nonce)) nonce      the poll's nonce; empty for none
//! u64be(len(epoch)) epoch
//! u64be(t)
//! SHA-256(body)                32 bytes
//! ```
//!
//! Hashing the body first lets a server keep the digest of a cached body
//! beside it ([`body_digest`]) and MAC a few dozen bytes per poll
//! ([`bound_signature`]). The fixed first bytes keep a bound MAC from ever
//! equalling a body MAC (a body starts with `{`).
//!
//! The filter checks it with [`verify_bound_signature`] before it parses the
//! body, passing the `since` and nonce it sent; the result is the feed's
//! time and epoch, or [`BindingError::Unbound`] (no header: a feed that
//! predates bindings, or a stripped header), [`BindingError::Malformed`] or
//! [`BindingError::Mismatch`] (another poll's answer, an altered one, or
//! another key). The rules a filter applies to what it returns:
//!
//! - an answer whose binding does not verify for the filter's own `since`
//!   and nonce is refused, as is one whose time is further from the
//!   filter's clock than its skew allowance;
//! - an unbound answer is refused once the filter expects bindings (a filter
//!   that accepted it would be as replayable as before);
//! - within one epoch, cursors must not go backwards ([`cursor_base`]);
//! - a new epoch is accepted only through a bound `reset: true` answer whose
//!   time is later than that of the last reset the filter applied, so a
//!   snapshot of an older data set cannot be brought back.
//!
//! The nonce is what defeats replay; the time bounds how long an answer
//! held back on the way stays usable, and orders resets across epochs.
//! Filters that predate bindings keep working with the body signature,
//! which the server keeps sending, but stay open to the replays above until
//! they are upgraded. Two feeds must not share a secret: an answer of one
//! would verify for a poll sent to the other.
//!
//! # Pages
//!
//! A client that understands pages says so with [`PAGED_PARAM`]
//! (`?paged=1`, see [`paged_request_path`]). To such a client the server may
//! answer with `"more": true`: the response is one page, and the client must
//! ask again at once with `since=<this cursor>` for the rest. A `reset: true`
//! first page and the continuation pages after it (`reset: false`) form one
//! snapshot, complete only at the page with `more` false (or absent); a
//! client must not apply any of it before then, and drops all of it when a
//! page fails. Deltas may be paged the same way. A continuation answered
//! with `reset: true` (the server could not continue: the data moved on too
//! far, or the cursor is unknown) starts a new snapshot, replacing the pages
//! received so far. A snapshot continuation cursor is the final cursor, `~`
//! and a server-defined position ([`cursor_base`] strips the position); the
//! client echoes it like any other cursor.
//!
//! The opt-in exists for filters that predate pages: they ignore `more`
//! (unknown fields are ignored, below), so a paged reset would replace their
//! whole set with its first page and then continue with deltas, silently
//! forgetting every entry of the later pages. A server therefore sends
//! `more: true`, and cuts a snapshot, only when the request carries
//! `paged=1`. Without it, snapshots are whole, and deltas may still be cut
//! at a size cap (the cursor then points at the last entry sent, so the next
//! regular poll continues; a delta only adds, so applying part of it is
//! safe).
//!
//! # Body signature
//!
//! When the server holds an HMAC secret it adds the header
//! [`SIGNATURE_HEADER`] with the value produced by [`sign`] (HMAC-SHA256 of
//! the body alone), beside [`BINDING_HEADER`]; a filter that predates
//! bindings checks it with [`verify_signature`] before it calls
//! [`FeedResponse::parse`].
//!
//! # Strictness
//!
//! [`FeedResponse::parse`] ignores fields it does not know, at every level.
//! The feed is consumed by proxies that are upgraded later than the server;
//! ignoring unknown fields lets the server add an optional field without
//! breaking every deployed filter. Everything the filter relies on is checked:
//! `cursor` must be present and a non-empty string, `reset` and `more`
//! booleans when present, `revoked`/`revoked_subjects` arrays when present, `jti`/`sub`
//! non-empty strings, `iss` a non-empty string when present (`null` is
//! refused, not read as absent), `exp`/`before` non-negative integers.
//!
//! [`AdminRequest::parse`] is the opposite: it rejects unknown fields, because
//! a misspelt field in a revocation (`"expires"` for `"exp"`) must be reported
//! to the operator instead of being silently dropped. It also caps `jti`,
//! `sub` and `iss` at [`MAX_ID_BYTES`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

mod binding;

pub use binding::{
    body_digest, bound_signature, check_nonce, encode_nonce, poll_request_path,
    verify_bound_signature, Binding, BindingError, BINDING_HEADER, BINDING_VERSION,
    MAX_EPOCH_BYTES, NONCE_BYTES, NONCE_MAX_LEN, NONCE_MIN_LEN, NONCE_PARAM, WAIT_MS_PARAM,
};

/// Response header that carries the body signature.
pub const SIGNATURE_HEADER: &str = "x-revocation-signature";

/// Prefix of the signature header value; names the MAC so that it can change
/// later without ambiguity.
pub const SIGNATURE_PREFIX: &str = "sha256=";

/// Query parameter carrying the cursor.
pub const SINCE_PARAM: &str = "since";

/// Query parameter (value `1`) by which a client says it understands paged
/// answers (`more: true`); see the crate docs.
pub const PAGED_PARAM: &str = "paged";

/// Separates the final cursor of a paged snapshot from the position inside
/// it in a continuation cursor (`<cursor>~<position>`). Not percent-encoded
/// in a URL and never part of a plain cursor of the reference server.
pub const PAGE_SEPARATOR: char = '~';

/// Path of the feed (GET) and admin (POST) endpoints on the reference server.
pub const REVOCATIONS_PATH: &str = "/v1/revocations";

/// Longest `jti`, `sub` or `iss` the admin API accepts, in bytes. Bounds the
/// memory one entry costs in every proxy.
pub const MAX_ID_BYTES: usize = 1024;

/// Longest cursor a feed response may carry, in bytes; the filter echoes it in
/// a URL, so it must stay small.
pub const MAX_CURSOR_BYTES: usize = 256;

/// "A token with this `jti` (issued by `iss`, when given) is refused until
/// `exp`."
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RevokedToken {
    /// The token's `jti` claim.
    pub jti: String,
    /// The token's `iss` claim: when present, only a token whose `iss` equals
    /// it exactly is refused; when absent, every issuer's token with this
    /// `jti` is (see "Issuer scope" in the crate docs).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_string"
    )]
    pub iss: Option<String>,
    /// Unix seconds after which the entry may be forgotten (normally the
    /// token's own `exp`).
    pub exp: u64,
}

/// "Every token with this `sub` (issued by `iss`, when given) whose `iat` is
/// before `before` is refused", kept until `exp`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RevokedSubject {
    /// The tokens' `sub` claim.
    pub sub: String,
    /// The tokens' `iss` claim: when present, only tokens whose `iss` equals
    /// it exactly are refused; when absent, every issuer's tokens with this
    /// `sub` are. A `sub` is unique only within its issuer, so new entries
    /// should carry it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_string"
    )]
    pub iss: Option<String>,
    /// Unix seconds; a token with `iat < before` is refused.
    pub before: u64,
    /// Unix seconds after which the entry may be forgotten (normally the
    /// longest lifetime of a token issued before `before`).
    pub exp: u64,
}

/// One revocation, as held by the server and written by the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Revocation {
    /// Revoke one token by `jti`.
    Token(RevokedToken),
    /// Revoke every token of a subject issued before a time.
    Subject(RevokedSubject),
}

impl Revocation {
    /// The time after which the entry may be forgotten.
    pub fn exp(&self) -> u64 {
        match self {
            Revocation::Token(t) => t.exp,
            Revocation::Subject(s) => s.exp,
        }
    }

    /// The issuer the entry is scoped to; None when it applies to every
    /// issuer.
    pub fn iss(&self) -> Option<&str> {
        match self {
            Revocation::Token(t) => t.iss.as_deref(),
            Revocation::Subject(s) => s.iss.as_deref(),
        }
    }

    /// Appends this entry as a JSON object (the admin request form).
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Revocation::Token(t) => write_token(out, t),
            Revocation::Subject(s) => write_subject(out, s),
        }
    }
}

/// Body of a poll response.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct FeedResponse {
    /// Opaque; sent back as `since` on the next poll.
    pub cursor: String,
    /// When true this response is a full snapshot that replaces everything
    /// the client holds; when false it is a delta to add.
    #[serde(default)]
    pub reset: bool,
    /// Tokens revoked by `jti`.
    #[serde(default)]
    pub revoked: Vec<RevokedToken>,
    /// Subjects revoked up to a time.
    #[serde(default)]
    pub revoked_subjects: Vec<RevokedSubject>,
    /// When true this response is one page: the client asks again at once
    /// with `since=<cursor>` and applies nothing before the last page.
    #[serde(default)]
    pub more: bool,
}

impl FeedResponse {
    /// Parses and validates a poll response body (see the crate docs for what
    /// is checked). Call [`verify_signature`] on the same bytes first when a
    /// secret is configured.
    pub fn parse(bytes: &[u8]) -> Result<FeedResponse, ProtocolError> {
        // Typed decoding first: it costs a fraction of the memory of a
        // `Value` tree, which matters for a large snapshot inside a proxy.
        match serde_json::from_slice::<FeedResponse>(bytes) {
            Ok(resp) => {
                resp.check()?;
                Ok(resp)
            }
            // Only on failure is the body walked again, to name the field.
            Err(typed_err) => {
                let value: Value = serde_json::from_slice(bytes)
                    .map_err(|e| ProtocolError::NotJson(e.to_string()))?;
                match feed_from_value(&value) {
                    Err(e) => Err(ProtocolError::Invalid(e)),
                    // The walk found nothing the typed decoder disliked;
                    // report the decoder's own words rather than accept.
                    Ok(_) => Err(ProtocolError::Invalid(FieldError::new(
                        "",
                        typed_err.to_string(),
                    ))),
                }
            }
        }
    }

    /// Serializes the response; the exact bytes returned are the ones to sign.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(64 + 48 * self.revoked.len() + 80 * self.revoked_subjects.len());
        out.extend_from_slice(b"{\"cursor\":");
        write_json_str(&mut out, &self.cursor);
        out.extend_from_slice(if self.reset {
            b",\"reset\":true,\"revoked\":["
        } else {
            b",\"reset\":false,\"revoked\":["
        });
        for (i, t) in self.revoked.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_token(&mut out, t);
        }
        out.extend_from_slice(b"],\"revoked_subjects\":[");
        for (i, s) in self.revoked_subjects.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_subject(&mut out, s);
        }
        out.extend_from_slice(if self.more {
            b"],\"more\":true}"
        } else {
            b"]}"
        });
        out
    }

    /// Checks what serde's types cannot express.
    fn check(&self) -> Result<(), FieldError> {
        check_cursor(&self.cursor)?;
        for (i, t) in self.revoked.iter().enumerate() {
            check_not_empty("revoked", i, "jti", Some(&t.jti))?;
            check_not_empty("revoked", i, "iss", t.iss.as_deref())?;
        }
        for (i, s) in self.revoked_subjects.iter().enumerate() {
            check_not_empty("revoked_subjects", i, "sub", Some(&s.sub))?;
            check_not_empty("revoked_subjects", i, "iss", s.iss.as_deref())?;
        }
        Ok(())
    }
}

/// Serializes a poll response straight from borrowed entries, so the server
/// does not clone what it holds to answer a poll. Produces the same bytes as
/// [`FeedResponse::to_json`] for the same content.
pub fn encode_feed<'a, I>(cursor: &str, reset: bool, entries: I) -> Vec<u8>
where
    I: Iterator<Item = &'a Revocation> + Clone,
{
    encode_feed_page(cursor, reset, false, entries)
}

/// [`encode_feed`] for one page: `more` adds `"more":true` (the field is left
/// out when false, so an unpaged answer keeps its old bytes).
pub fn encode_feed_page<'a, I>(cursor: &str, reset: bool, more: bool, entries: I) -> Vec<u8>
where
    I: Iterator<Item = &'a Revocation> + Clone,
{
    let mut out = Vec::with_capacity(64 + 64 * entries.size_hint().0);
    out.extend_from_slice(b"{\"cursor\":");
    write_json_str(&mut out, cursor);
    out.extend_from_slice(if reset {
        b",\"reset\":true,\"revoked\":["
    } else {
        b",\"reset\":false,\"revoked\":["
    });
    let mut first = true;
    for e in entries.clone() {
        if let Revocation::Token(t) = e {
            if !first {
                out.push(b',');
            }
            first = false;
            write_token(&mut out, t);
        }
    }
    out.extend_from_slice(b"],\"revoked_subjects\":[");
    first = true;
    for e in entries {
        if let Revocation::Subject(s) = e {
            if !first {
                out.push(b',');
            }
            first = false;
            write_subject(&mut out, s);
        }
    }
    out.extend_from_slice(if more { b"],\"more\":true}" } else { b"]}" });
    out
}

/// Body of `POST /v1/revocations`: one entry (`{"jti","exp"}` or
/// `{"sub","before","exp"}`, either with an optional `"iss"`), a JSON array
/// of entries, or `{"revocations": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRequest {
    /// The entries, in request order; never empty after [`AdminRequest::parse`].
    pub revocations: Vec<Revocation>,
}

impl AdminRequest {
    /// Parses and validates an admin request. The whole request is rejected on
    /// the first bad entry, with the field named: `exp` for a single entry,
    /// `revocations[3].exp` for the fourth entry of a list.
    pub fn parse(bytes: &[u8]) -> Result<AdminRequest, FieldError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| FieldError::new("", format!("body is not valid JSON: {e}")))?;
        let revocations = match &value {
            Value::Array(items) => entries_from_list(items, "revocations")?,
            Value::Object(map) if map.contains_key("revocations") => {
                reject_unknown(map, &["revocations"], "")?;
                match map.get("revocations") {
                    Some(Value::Array(items)) => entries_from_list(items, "revocations")?,
                    _ => return Err(FieldError::new("revocations", "must be an array")),
                }
            }
            Value::Object(map) => vec![entry_from_object(map, "")?],
            _ => {
                return Err(FieldError::new(
                    "",
                    "body must be a revocation object or an array of them",
                ))
            }
        };
        Ok(AdminRequest { revocations })
    }

    /// Serializes the request as a JSON array (used by the CLI client).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + 80 * self.revocations.len());
        out.push(b'[');
        for (i, r) in self.revocations.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            r.write_json(&mut out);
        }
        out.push(b']');
        out
    }
}

/// Body of a successful admin answer: the cursor right after the write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminResponse {
    /// A cursor at or after the last entry written by this request.
    pub cursor: String,
    /// How many entries were written.
    pub accepted: usize,
}

/// Body of every error answer from the server (400, 401, 403, 413, 5xx).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Human readable reason.
    pub error: String,
    /// The offending field, `revocations[3].exp` style, when one is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl From<&FieldError> for ErrorBody {
    fn from(e: &FieldError) -> Self {
        ErrorBody {
            error: e.to_string(),
            field: if e.field.is_empty() {
                None
            } else {
                Some(e.field.clone())
            },
        }
    }
}

/// A validation failure tied to a field path such as `revocations[3].exp`
/// (empty when the whole body is at fault).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the offending field; empty for the body as a whole.
    pub field: String,
    /// What is wrong with it, e.g. `must be a positive integer`.
    pub message: String,
}

impl FieldError {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for FieldError {}

/// Why a poll response was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The body is not JSON at all.
    NotJson(String),
    /// The body is JSON but a field is missing or wrong.
    Invalid(FieldError),
}

impl From<FieldError> for ProtocolError {
    fn from(e: FieldError) -> Self {
        ProtocolError::Invalid(e)
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::NotJson(e) => write!(f, "feed response is not JSON: {e}"),
            ProtocolError::Invalid(e) => write!(f, "invalid feed response: {e}"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Returns the header value `sha256=<lowercase hex HMAC-SHA256(secret, body)>`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut out = String::with_capacity(SIGNATURE_PREFIX.len() + 64);
    out.push_str(SIGNATURE_PREFIX);
    push_hex(&mut out, &hmac_sha256(secret, &[body]));
    out
}

/// Checks a [`SIGNATURE_HEADER`] value against `body`. The MAC comparison
/// runs in constant time; a malformed header is simply `false`. Hex digits
/// are accepted in either case, surrounding whitespace is ignored.
///
/// This signature covers the body alone, so a recorded answer stays valid
/// forever: check [`verify_bound_signature`] instead when the feed sends
/// [`BINDING_HEADER`] (see the crate docs).
pub fn verify_signature(secret: &[u8], body: &[u8], header_value: &str) -> bool {
    let Some(hex) = header_value.trim().strip_prefix(SIGNATURE_PREFIX) else {
        return false;
    };
    let Some(given) = decode_hex32(hex) else {
        return false;
    };
    macs_equal(&hmac_sha256(secret, &[body]), &given)
}

/// Builds `path?since=<cursor>` (or `path` alone for the first poll),
/// percent-encoding the cursor since it is opaque to the client.
pub fn feed_request_path(path: &str, cursor: Option<&str>) -> String {
    let mut out = String::with_capacity(path.len() + 16 + cursor.map_or(0, str::len));
    out.push_str(path);
    if let Some(cursor) = cursor {
        push_param(&mut out, SINCE_PARAM, cursor);
    }
    out
}

/// [`feed_request_path`] plus `paged=1`: the request of a client that
/// accepts paged answers.
pub fn paged_request_path(path: &str, cursor: Option<&str>) -> String {
    let mut out = feed_request_path(path, cursor);
    push_param(&mut out, PAGED_PARAM, "1");
    out
}

/// The cursor without the page position of a snapshot continuation cursor
/// (`<cursor>~<position>` gives `<cursor>`); other cursors unchanged. Lets a
/// client compare a continuation cursor with plain ones.
pub fn cursor_base(cursor: &str) -> &str {
    cursor
        .split_once(PAGE_SEPARATOR)
        .map_or(cursor, |(base, _)| base)
}

const HEX: &[u8; 16] = b"0123456789abcdef";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

const MSG_NON_EMPTY_STRING: &str = "must be a non-empty string";
const MSG_NON_NEGATIVE: &str = "must be a non-negative integer";
const MSG_POSITIVE: &str = "must be a positive integer";
const MSG_REQUIRED: &str = "is required";

/// HMAC-SHA256 of the concatenation of `parts`.
fn hmac_sha256(secret: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::digest::KeyInit;
    use hmac::Mac;
    use sha2::Digest;
    // HMAC first reduces a key longer than the hash block to its digest and
    // zero-pads the key to one block (RFC 2104). Doing that here lets us use
    // the infallible block-sized constructor instead of `new_from_slice`,
    // whose error case cannot happen but would need an unwrap.
    let mut key: hmac::digest::Key<hmac::Hmac<sha2::Sha256>> = Default::default();
    if secret.len() > key.len() {
        let digest = sha2::Sha256::digest(secret);
        key[..digest.len()].copy_from_slice(&digest);
    } else {
        key[..secret.len()].copy_from_slice(secret);
    }
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new(&key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Constant-time comparison of two MACs.
fn macs_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.ct_eq(b))
}

/// Appends `bytes` as lowercase hex.
fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0x0f) as usize] as char);
    }
}

/// Appends `?name=value` (or `&name=value` when `out` already has a query),
/// percent-encoding every byte of the value but the unreserved ones.
fn push_param(out: &mut String, name: &str, value: &str) {
    out.push(if out.contains('?') { '&' } else { '?' });
    out.push_str(name);
    out.push('=');
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX_UPPER[(b >> 4) as usize] as char);
            out.push(HEX_UPPER[(b & 0x0f) as usize] as char);
        }
    }
}

fn decode_hex32(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = hex_val(pair[0])?;
        let lo = hex_val(pair[1])?;
        out[i] = (hi << 4) | lo;
    }
    Some(out)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn write_token(out: &mut Vec<u8>, t: &RevokedToken) {
    out.extend_from_slice(b"{\"jti\":");
    write_json_str(out, &t.jti);
    write_iss(out, t.iss.as_deref());
    out.extend_from_slice(b",\"exp\":");
    write_u64(out, t.exp);
    out.push(b'}');
}

fn write_subject(out: &mut Vec<u8>, s: &RevokedSubject) {
    out.extend_from_slice(b"{\"sub\":");
    write_json_str(out, &s.sub);
    write_iss(out, s.iss.as_deref());
    out.extend_from_slice(b",\"before\":");
    write_u64(out, s.before);
    out.extend_from_slice(b",\"exp\":");
    write_u64(out, s.exp);
    out.push(b'}');
}

/// Appends `,"iss":<iss>` when the entry is scoped; nothing otherwise, so
/// an unscoped entry keeps the bytes it had before issuers existed.
fn write_iss(out: &mut Vec<u8>, iss: Option<&str>) {
    if let Some(iss) = iss {
        out.extend_from_slice(b",\"iss\":");
        write_json_str(out, iss);
    }
}

fn write_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// JSON string escaping by hand: infallible (serde_json's writer returns a
/// `Result` that would need unwrapping) and cheap on the server's hot path.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0x0f) as usize]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn check_cursor(cursor: &str) -> Result<(), FieldError> {
    if cursor.is_empty() || cursor.len() > MAX_CURSOR_BYTES {
        return Err(FieldError::new(
            "cursor",
            format!("must be a non-empty string of at most {MAX_CURSOR_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Refuses an empty `jti`, `sub` or `iss` (`value`, None when absent) of
/// entry `i` of `list`: the typed decoder accepts any string.
fn check_not_empty(
    list: &str,
    i: usize,
    name: &str,
    value: Option<&str>,
) -> Result<(), FieldError> {
    match value {
        Some("") => Err(FieldError::new(
            format!("{list}[{i}].{name}"),
            MSG_NON_EMPTY_STRING,
        )),
        _ => Ok(()),
    }
}

/// Deserializes an optional field that, when present, must be a string:
/// `"iss": null` is refused like `"jti": null` rather than read as absent.
fn present_string<'de, D>(d: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    String::deserialize(d).map(Some)
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Lenient walk of a poll response, used only to name the field the typed
/// decoder choked on.
fn feed_from_value(value: &Value) -> Result<FeedResponse, FieldError> {
    let Value::Object(map) = value else {
        return Err(FieldError::new("", "feed response must be a JSON object"));
    };
    let cursor = match map.get("cursor") {
        None => return Err(FieldError::new("cursor", MSG_REQUIRED)),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(FieldError::new("cursor", "must be a string")),
    };
    check_cursor(&cursor)?;
    let reset = match map.get("reset") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(FieldError::new("reset", "must be a boolean")),
    };
    let more = match map.get("more") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(FieldError::new("more", "must be a boolean")),
    };
    let mut revoked = Vec::new();
    for (i, item) in array_field(map, "revoked")?.iter().enumerate() {
        let path = format!("revoked[{i}]");
        let obj = as_object(item, &path)?;
        revoked.push(RevokedToken {
            jti: id_field(obj, &path, "jti", false)?,
            iss: opt_id_field(obj, &path, "iss", false)?,
            exp: int_field(obj, &path, "exp", false)?,
        });
    }
    let mut revoked_subjects = Vec::new();
    for (i, item) in array_field(map, "revoked_subjects")?.iter().enumerate() {
        let path = format!("revoked_subjects[{i}]");
        let obj = as_object(item, &path)?;
        revoked_subjects.push(RevokedSubject {
            sub: id_field(obj, &path, "sub", false)?,
            iss: opt_id_field(obj, &path, "iss", false)?,
            before: int_field(obj, &path, "before", false)?,
            exp: int_field(obj, &path, "exp", false)?,
        });
    }
    Ok(FeedResponse {
        cursor,
        reset,
        revoked,
        revoked_subjects,
        more,
    })
}

fn array_field<'a>(map: &'a Map<String, Value>, name: &str) -> Result<&'a [Value], FieldError> {
    match map.get(name) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(FieldError::new(name, "must be an array")),
    }
}

fn as_object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, FieldError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(FieldError::new(path, "must be an object")),
    }
}

/// Reads a required `jti`/`sub`. `admin` adds the length cap the server
/// enforces.
fn id_field(
    map: &Map<String, Value>,
    prefix: &str,
    name: &str,
    admin: bool,
) -> Result<String, FieldError> {
    opt_id_field(map, prefix, name, admin)?
        .ok_or_else(|| FieldError::new(join(prefix, name), MSG_REQUIRED))
}

/// Reads an identifier that may be absent (`iss`), with the rules of
/// [`id_field`] when it is present.
fn opt_id_field(
    map: &Map<String, Value>,
    prefix: &str,
    name: &str,
    admin: bool,
) -> Result<Option<String>, FieldError> {
    let path = || join(prefix, name);
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => {
            Err(FieldError::new(path(), MSG_NON_EMPTY_STRING))
        }
        Some(Value::String(s)) if admin && s.len() > MAX_ID_BYTES => Err(FieldError::new(
            path(),
            format!("must be at most {MAX_ID_BYTES} bytes"),
        )),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FieldError::new(path(), MSG_NON_EMPTY_STRING)),
    }
}

/// Reads an `exp`/`before`. The admin API wants a positive number (zero is
/// never a meaningful time for a revocation and usually a client bug); the
/// feed accepts any non-negative integer.
fn int_field(
    map: &Map<String, Value>,
    prefix: &str,
    name: &str,
    positive: bool,
) -> Result<u64, FieldError> {
    let path = join(prefix, name);
    let msg = if positive {
        MSG_POSITIVE
    } else {
        MSG_NON_NEGATIVE
    };
    match map.get(name) {
        None => Err(FieldError::new(path, MSG_REQUIRED)),
        // `as_u64` is None for negatives, fractions and anything written
        // with an exponent, which is exactly what is refused.
        Some(v) => match v.as_u64() {
            Some(0) if positive => Err(FieldError::new(path, msg)),
            Some(n) => Ok(n),
            None => Err(FieldError::new(path, msg)),
        },
    }
}

fn reject_unknown(
    map: &Map<String, Value>,
    allowed: &[&str],
    prefix: &str,
) -> Result<(), FieldError> {
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(FieldError::new(join(prefix, key), "unknown field"));
        }
    }
    Ok(())
}

fn entries_from_list(items: &[Value], name: &str) -> Result<Vec<Revocation>, FieldError> {
    if items.is_empty() {
        return Err(FieldError::new(
            name,
            "must contain at least one revocation",
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("{name}[{i}]");
            entry_from_object(as_object(item, &path)?, &path)
        })
        .collect()
}

fn entry_from_object(map: &Map<String, Value>, prefix: &str) -> Result<Revocation, FieldError> {
    match (map.contains_key("jti"), map.contains_key("sub")) {
        (true, true) => Err(FieldError::new(
            join(prefix, "sub"),
            "an entry names either jti or sub, not both",
        )),
        (true, false) => {
            reject_unknown(map, &["jti", "iss", "exp"], prefix)?;
            Ok(Revocation::Token(RevokedToken {
                jti: id_field(map, prefix, "jti", true)?,
                iss: opt_id_field(map, prefix, "iss", true)?,
                exp: int_field(map, prefix, "exp", true)?,
            }))
        }
        (false, true) => {
            reject_unknown(map, &["sub", "iss", "before", "exp"], prefix)?;
            Ok(Revocation::Subject(RevokedSubject {
                sub: id_field(map, prefix, "sub", true)?,
                iss: opt_id_field(map, prefix, "iss", true)?,
                before: int_field(map, prefix, "before", true)?,
                exp: int_field(map, prefix, "exp", true)?,
            }))
        }
        (false, false) => Err(FieldError::new(
            join(prefix, "jti"),
            "is required (or sub with before)",
        )),
    }
}

#[cfg(test)]
mod tests;
