//! The feed poller's decisions, host-free: when to poll, what to send,
//! whether a response may be trusted, and how the pages of a paged answer
//! add up to one update. The proxy glue only moves bytes.

use revocation_protocol::{
    cursor_base, poll_request_path, verify_bound_signature, Binding, BindingError, FeedResponse,
    SIGNATURE_HEADER,
};

use super::set::{digest, digest_scoped, Entry, PendingTokens};
use crate::schedule::Timing;

/// What to do when revocations cannot be refreshed for too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStale {
    /// Keep deciding with the last known set (availability first).
    Serve,
    /// Answer 503 to token-bearing requests until a sync succeeds.
    Deny,
}

/// The compiled `revocation` block of the plugin configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedConfig {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub poll_interval_ms: u64,
    pub timeout_ms: u64,
    pub bearer_token: Option<String>,
    pub hmac_secret: Option<Vec<u8>>,
    pub max_staleness_seconds: u64,
    pub on_stale: OnStale,
    /// Prefix of every shared-data key (all plugins of a proxy share one
    /// key space).
    pub namespace: String,
    pub max_body_bytes: usize,
    /// How often each worker looks for a new version.
    pub sync_interval_ms: u64,
    pub max_backoff_ms: u64,
    /// Entries are forgotten this long after their `exp`.
    pub clock_skew_seconds: u64,
    /// Most entries the pages of one paged answer may add up to before it is
    /// refused (`revocation.max_pending_entries`).
    pub max_pending_entries: usize,
    /// How long the feed may hold a poll when there is nothing new (a long
    /// poll); 0 polls every `poll_interval_ms` instead.
    pub wait_ms: u64,
    /// Accept answers without a binding (feeds that predate bindings). Such
    /// answers can be replayed by anyone on the path.
    pub accept_unbound_answers: bool,
}

impl FeedConfig {
    /// Poll timing for the shared [`crate::schedule::Schedule`]; a call may
    /// take the long poll's wait plus `timeout_ms`.
    pub fn timing(&self) -> Timing {
        Timing {
            interval_ms: self.poll_interval_ms,
            timeout_ms: self.call_timeout_ms(),
            min_backoff_ms: self.poll_interval_ms,
            max_backoff_ms: self.max_backoff_ms,
        }
    }

    /// How long one poll may take: the wait the feed may hold it, then
    /// `timeout_ms` for the answer.
    pub fn call_timeout_ms(&self) -> u64 {
        self.wait_ms.saturating_add(self.timeout_ms)
    }

    /// The path of a poll from `cursor` with this `nonce`.
    pub fn poll_path(&self, cursor: &str, nonce: &str) -> String {
        let cursor = (!cursor.is_empty()).then_some(cursor);
        poll_request_path(
            &self.path,
            cursor,
            nonce,
            (self.wait_ms > 0).then_some(self.wait_ms),
        )
    }

    /// The prefix of this feed's keys in shared data: the namespace and an
    /// identity of the feed (cluster, authority, path). Every plugin of a
    /// proxy shares one shared-data space, so two plugins with the same
    /// namespace but different feeds keep apart, and two plugins polling
    /// the same feed share one set.
    pub fn shared_prefix(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for part in ["feed", &self.cluster, &self.authority, &self.path] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        let digest = hash.finalize();
        let mut out = format!("{}.rev.", self.namespace);
        for b in digest.iter().take(8) {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// A silent fetcher loses the lease after two poll intervals.
    pub fn lease_ttl_ms(&self) -> u64 {
        2 * self.poll_interval_ms.max(self.sync_interval_ms)
    }

    /// Request headers for one poll.
    pub fn request_headers(&self, path: &str) -> Vec<(String, String)> {
        let mut headers = vec![
            (":method".to_string(), "GET".to_string()),
            (":path".to_string(), path.to_string()),
            (":authority".to_string(), self.authority.clone()),
            ("accept".to_string(), "application/json".to_string()),
        ];
        if let Some(token) = &self.bearer_token {
            headers.push(("authorization".to_string(), format!("Bearer {token}")));
        }
        headers
    }
}

/// Why a poll's response was ignored. The last good set always stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedError {
    /// The host could not start the call (unknown cluster, ...).
    Dispatch,
    /// No response within the timeout, or the connection failed.
    Timeout,
    Status(u16),
    TooLarge(usize),
    MissingSignature,
    BadSignature,
    Invalid(String),
    /// The cursor went backwards within the same feed: an old response
    /// replayed, or a feed restored from an old backup. Applying it could
    /// drop newer revocations.
    CursorRegression,
    /// The host refused to store the result.
    SharedData,
    /// The pages of one paged answer hold more entries than allowed.
    TooManyEntries {
        held: usize,
        limit: usize,
    },
    /// The answer's binding is missing, unusable or for another poll.
    Binding(BindingError),
    /// A bound answer made too far from this proxy's clock: held back on
    /// the way, or a feed whose clock is off.
    OutOfWindow {
        answered: u64,
        now: u64,
    },
    /// A bound answer from another epoch than the one held, and not a reset
    /// newer than the last one applied: an older data set brought back.
    EpochRollback,
}

impl FeedError {
    pub fn label(&self) -> &'static str {
        match self {
            FeedError::Dispatch => "dispatch",
            FeedError::Timeout => "timeout",
            FeedError::Status(_) => "status",
            FeedError::TooLarge(_) => "too_large",
            FeedError::MissingSignature => "missing_signature",
            FeedError::BadSignature => "bad_signature",
            FeedError::Invalid(_) => "invalid",
            FeedError::CursorRegression => "cursor_regression",
            FeedError::SharedData => "shared_data",
            FeedError::TooManyEntries { .. } => "too_many_entries",
            FeedError::Binding(e) => e.label(),
            FeedError::OutOfWindow { .. } => "replayed",
            FeedError::EpochRollback => "epoch_rollback",
        }
    }
}

impl std::fmt::Display for FeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FeedError::Dispatch => write!(f, "cannot call the feed cluster"),
            FeedError::Timeout => write!(f, "no response (timeout or connection failure)"),
            FeedError::Status(s) => write!(f, "HTTP status {s}"),
            FeedError::TooLarge(n) => write!(f, "body of {n} bytes exceeds the limit"),
            FeedError::MissingSignature => write!(f, "no {SIGNATURE_HEADER} header"),
            FeedError::BadSignature => write!(f, "signature does not match the body"),
            FeedError::Invalid(e) => write!(f, "invalid body: {e}"),
            FeedError::CursorRegression => write!(f, "cursor went backwards"),
            FeedError::SharedData => write!(f, "cannot write to shared data"),
            FeedError::TooManyEntries { held, limit } => write!(
                f,
                "paged answer holds {held} entries, more than revocation.max_pending_entries ({limit})"
            ),
            FeedError::Binding(e) => write!(f, "{e}"),
            FeedError::OutOfWindow { answered, now } => write!(
                f,
                "answer made at {answered}, {} s from this proxy's clock ({now})",
                answered.abs_diff(*now)
            ),
            FeedError::EpochRollback => write!(
                f,
                "answer from another epoch that is not a newer reset (an older data set)"
            ),
        }
    }
}

/// What the poll in flight sent, to check its answer against.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SentPoll {
    /// The `since` cursor (empty for none).
    pub since: String,
    pub nonce: String,
    /// The published cursor when the poll was sent (differs from `since`
    /// while the pages of an answer are gathered).
    pub basis: String,
    pub sent_ms: u64,
}

/// What the filter holds of the feed's data set: the epoch of the last
/// bound answer and the feed's time on the last reset applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeedState<'a> {
    pub epoch: &'a str,
    pub reset_time: u64,
}

/// A response that passed every check, and what its binding vouched for.
#[derive(Debug)]
pub struct Checked {
    pub response: FeedResponse,
    pub binding: Option<Binding>,
}

/// The signature headers of an answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Signatures<'a> {
    /// [`SIGNATURE_HEADER`]: the body alone.
    pub body: Option<&'a str>,
    /// [`revocation_protocol::BINDING_HEADER`]: the body, the poll, the
    /// feed's epoch and clock.
    pub binding: Option<&'a str>,
}

/// Checks a response: status, size, binding (or, where accepted, the
/// body-only signature), schema, epoch and cursor order. `now_s` is this
/// proxy's clock.
pub fn check_response(
    config: &FeedConfig,
    status: Option<u16>,
    signatures: Signatures<'_>,
    body: &[u8],
    poll: &SentPoll,
    state: FeedState<'_>,
    now_s: u64,
) -> Result<Checked, FeedError> {
    match status {
        None => return Err(FeedError::Timeout),
        Some(200) => {}
        Some(s) => return Err(FeedError::Status(s)),
    }
    if body.len() > config.max_body_bytes {
        return Err(FeedError::TooLarge(body.len()));
    }
    let mut binding = None;
    if let Some(secret) = &config.hmac_secret {
        match verify_bound_signature(secret, signatures.binding, body, &poll.since, &poll.nonce) {
            Ok(b) => {
                if b.time.abs_diff(now_s) > config.clock_skew_seconds {
                    return Err(FeedError::OutOfWindow {
                        answered: b.time,
                        now: now_s,
                    });
                }
                binding = Some(b);
            }
            Err(BindingError::Unbound) if config.accept_unbound_answers => {
                let Some(signature) = signatures.body else {
                    return Err(FeedError::MissingSignature);
                };
                if !revocation_protocol::verify_signature(secret, body, signature) {
                    return Err(FeedError::BadSignature);
                }
            }
            Err(e) => return Err(FeedError::Binding(e)),
        }
    }
    let response = FeedResponse::parse(body).map_err(|e| FeedError::Invalid(e.to_string()))?;
    match &binding {
        // A new data set replaces the held one only through a reset made
        // after the last reset applied: an older snapshot cannot come back.
        Some(b) if !state.epoch.is_empty() && b.epoch != state.epoch => {
            if !(response.reset && b.time > state.reset_time) {
                return Err(FeedError::EpochRollback);
            }
        }
        _ => {
            if cursor_regressed(&poll.since, &response.cursor) {
                return Err(FeedError::CursorRegression);
            }
        }
    }
    Ok(Checked { response, binding })
}

/// Cursors are opaque, but feeds number them: `"<epoch>-<seq>"`, Redis
/// stream IDs `"<ms>-<n>"`, plain counters. Two cursors of the same shape
/// are compared field by field, numbers as numbers; a different non-numeric
/// field (a new epoch) makes them incomparable, which is not a regression.
/// The page position of a snapshot continuation cursor is left out: it
/// orders nothing across snapshots, and the pinned cursor before it does.
pub fn cursor_regressed(previous: &str, next: &str) -> bool {
    let (previous, next) = (cursor_base(previous), cursor_base(next));
    if previous.is_empty() {
        return false;
    }
    let a: Vec<&str> = previous.split('-').collect();
    let b: Vec<&str> = next.split('-').collect();
    if a.len() != b.len() {
        return false;
    }
    for (x, y) in a.iter().zip(&b) {
        if x == y {
            continue;
        }
        return match (x.parse::<u128>(), y.parse::<u128>()) {
            (Ok(x), Ok(y)) => y < x,
            _ => false,
        };
    }
    false
}

/// The feed's entries as set entries.
pub fn entries(response: &FeedResponse) -> Vec<Entry> {
    let id = |iss: &Option<String>, value: &str| match iss {
        Some(iss) => digest_scoped(iss, value),
        None => digest(value),
    };
    let tokens = response.revoked.iter().map(|t| Entry::Token {
        id: id(&t.iss, &t.jti),
        exp: t.exp,
    });
    let subjects = response.revoked_subjects.iter().map(|s| Entry::Subject {
        id: id(&s.iss, &s.sub),
        before: s.before,
        exp: s.exp,
    });
    tokens.chain(subjects).collect()
}

/// Whether any entry of the answer is scoped to an issuer.
pub fn has_scoped(response: &FeedResponse) -> bool {
    response.revoked.iter().any(|t| t.iss.is_some())
        || response.revoked_subjects.iter().any(|s| s.iss.is_some())
}

/// What to do after a checked page.
#[derive(Debug, PartialEq, Eq)]
pub enum PageStep {
    /// More pages follow: ask again at once with [`Pages::cursor`].
    Continue,
    /// The answer is complete: publish it, in one update.
    Complete(Completed),
}

/// A whole answer, ready for `channel::publish`.
#[derive(Debug, PartialEq, Eq)]
pub struct Completed {
    /// True when `entries` and `tokens` replace everything held.
    pub reset: bool,
    /// A delta's entries; a reset's subjects.
    pub entries: Vec<Entry>,
    /// A reset's revoked `jti`s, in the set's compact form (the bulk of a
    /// large snapshot).
    pub tokens: PendingTokens,
    pub cursor: String,
    /// The feed's epoch and the time of the answer's first page, when bound.
    pub bound: Option<(String, u64)>,
    /// Whether any entry is scoped to an issuer.
    pub scoped: bool,
}

impl Completed {
    /// Entries the answer holds.
    pub fn len(&self) -> usize {
        self.entries.len().saturating_add(self.tokens.len())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.tokens.is_empty()
    }

    /// Every entry of the answer: the tokens of a reset, then the rest.
    pub fn all_entries(&self) -> Vec<Entry> {
        self.tokens
            .entries()
            .chain(self.entries.iter().copied())
            .collect()
    }

    /// What a continuation page of this answer is checked against.
    pub fn state(&self) -> Option<FeedState<'_>> {
        self.bound.as_ref().map(|(epoch, time)| FeedState {
            epoch,
            reset_time: if self.reset { *time } else { 0 },
        })
    }
}

/// The pages of a paged answer (`more: true`) gathered so far, held by the
/// fetcher only. Nothing of them is visible to requests until the last page
/// arrives: a snapshot applied in part would replace the whole set with a
/// fraction of it. A failed page drops them all ([`Pages::abandon`]), and
/// the next attempt starts again from the last published cursor.
#[derive(Debug, Default)]
pub struct Pages {
    pending: Option<Completed>,
    pages: u32,
}

impl Pages {
    /// The cursor to poll with (and to check the next cursor against): the
    /// last page's while an answer is incomplete, else the published one.
    pub fn cursor<'a>(&'a self, published: &'a str) -> &'a str {
        self.pending
            .as_ref()
            .map_or(published, |p| p.cursor.as_str())
    }

    /// Whether pages are being gathered (the next poll is a continuation).
    pub fn in_progress(&self) -> bool {
        self.pending.is_some()
    }

    /// The feed state the next page is checked against while pages are
    /// gathered (the epoch of the pending answer), else `published`.
    pub fn state<'a>(&'a self, published: FeedState<'a>) -> FeedState<'a> {
        self.pending
            .as_ref()
            .and_then(Completed::state)
            .unwrap_or(published)
    }

    /// Pages gathered so far.
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// Forgets the pages gathered so far.
    pub fn abandon(&mut self) {
        self.pending = None;
        self.pages = 0;
    }

    /// Adds a checked page. A `reset` page starts a new answer, dropping
    /// any pages before it (the feed restarted the snapshot); a delta page
    /// adds to the pending answer, or is an answer of its own.
    pub fn accept(
        &mut self,
        checked: &Checked,
        max_pending_entries: usize,
    ) -> Result<PageStep, FeedError> {
        let response = &checked.response;
        let new = entries(response);
        let bound = checked.binding.as_ref().map(|b| (b.epoch.clone(), b.time));
        let mut pending = match self.pending.take() {
            Some(p) if !response.reset => {
                // Every page of one answer comes from one data set.
                let same = match (&p.bound, &bound) {
                    (Some((a, _)), Some((b, _))) => a == b,
                    (None, None) => true,
                    _ => false,
                };
                if !same {
                    self.abandon();
                    return Err(FeedError::EpochRollback);
                }
                p
            }
            _ => {
                self.pages = 0;
                Completed {
                    reset: response.reset,
                    entries: Vec::new(),
                    tokens: PendingTokens::default(),
                    cursor: String::new(),
                    bound,
                    scoped: false,
                }
            }
        };
        let held = pending.len().saturating_add(new.len());
        if held > max_pending_entries {
            self.abandon();
            return Err(FeedError::TooManyEntries {
                held,
                limit: max_pending_entries,
            });
        }
        if pending.reset {
            for entry in new {
                match entry {
                    Entry::Token { id, exp } => pending.tokens.push(id, exp),
                    subject => pending.entries.push(subject),
                }
            }
        } else if pending.entries.is_empty() {
            pending.entries = new;
        } else {
            pending.entries.extend(new);
        }
        pending.cursor = response.cursor.clone();
        pending.scoped |= has_scoped(response);
        self.pages = self.pages.saturating_add(1);
        if response.more {
            self.pending = Some(pending);
            Ok(PageStep::Continue)
        } else {
            self.pages = 0;
            Ok(PageStep::Complete(pending))
        }
    }
}

/// True when the last successful sync (or the start, before any) is older
/// than the allowed staleness.
pub fn is_stale(config: &FeedConfig, now_ms: u64, last_sync_ms: u64, started_ms: u64) -> bool {
    let since = if last_sync_ms == 0 {
        started_ms
    } else {
        last_sync_ms
    };
    now_ms.saturating_sub(since) > config.max_staleness_seconds * 1000
}

/// `Some(retry_after_seconds)` when token-bearing requests must get a 503:
/// the policy is `deny` and the data is stale, or this proxy has never
/// synced at all. A new VM or process with no revocation data knows nothing
/// of what was revoked; under `deny` it refuses until its first sync (a
/// fraction of a second) rather than let a revoked token through.
pub fn refuse_stale(
    config: &FeedConfig,
    now_ms: u64,
    last_sync_ms: u64,
    started_ms: u64,
) -> Option<u64> {
    let unknown = last_sync_ms == 0 || is_stale(config, now_ms, last_sync_ms, started_ms);
    (unknown && config.on_stale == OnStale::Deny).then(|| (config.poll_interval_ms / 1000).max(1))
}

#[cfg(test)]
mod tests;
