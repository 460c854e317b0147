//! The worker-local revocation set, checked on every request with no host
//! call.
//!
//! Identifiers are held as 128-bit digests, not strings, so the set can be
//! copied between workers as fixed-size records. Revoked `jti`s, the bulk
//! of the set, live in one sorted array of 20-byte records searched by
//! bisection: wasm linear memory never shrinks, so a hash table's empty
//! buckets and its doubling while it fills would stay in every worker's
//! memory for good. Entries added later go to a small hash table first and
//! are merged into the array once it grows past a sixteenth of it, so a
//! delta costs about what it adds, not a rewrite of the array.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::iter::Peekable;

use sha2::{Digest as _, Sha256};

/// SHA-256 of an identifier, truncated to 128 bits. Identifiers come from
/// the identity provider, not the client, and 128 bits leave no practical
/// room for an accidental collision.
pub type Digest = u128;

pub fn digest(id: &str) -> Digest {
    truncate(&Sha256::digest(id.as_bytes()))
}

/// The digest of an identifier scoped to one issuer (a feed entry with
/// `iss`): it matches only tokens of that issuer. The fixed prefix and the
/// length keep it apart from every unscoped digest and from every other
/// (issuer, identifier) pair.
pub fn digest_scoped(iss: &str, id: &str) -> Digest {
    let mut hash = Sha256::new();
    hash.update(b"iss\0");
    hash.update((iss.len() as u64).to_be_bytes());
    hash.update(iss.as_bytes());
    hash.update(id.as_bytes());
    truncate(&hash.finalize())
}

fn truncate(hash: &[u8]) -> Digest {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(hash.get(..16).unwrap_or(&[0; 16]));
    u128::from_le_bytes(bytes)
}

/// The keys are already uniform digests: hashing them again would only
/// cost time on the request path.
#[derive(Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

type DigestMap<V> = HashMap<Digest, V, BuildHasherDefault<DigestHasher>>;

mod pending;
pub use pending::PendingTokens;

/// One revocation, as stored and shared between workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Tokens with this `jti` are refused.
    Token { id: Digest, exp: u64 },
    /// Tokens with this `sub` and `iat < before` are refused.
    Subject { id: Digest, before: u64, exp: u64 },
}

impl Entry {
    pub fn exp(&self) -> u64 {
        match self {
            Entry::Token { exp, .. } | Entry::Subject { exp, .. } => *exp,
        }
    }
}

/// A token's `exp` as held: seconds fit 32 bits until 2106. A later `exp`
/// is held as `u32::MAX` and read back as `u64::MAX` ("never purged"):
/// rounding up only keeps an entry longer, and it saves 4 of 24 bytes per
/// record (8 with the padding a `u64` field brings).
fn narrow_exp(exp: u64) -> u32 {
    u32::try_from(exp).unwrap_or(u32::MAX)
}

fn widen_exp(exp: u32) -> u64 {
    if exp == u32::MAX {
        u64::MAX
    } else {
        u64::from(exp)
    }
}

/// A revoked `jti`: the digest as four 32-bit words, most significant
/// first (so the array order is the digests' numeric order), and the
/// narrowed `exp`. 20 bytes, 4-byte aligned: a `u128` field would pad the
/// record to 32.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Token {
    id: [u32; 4],
    exp: u32,
}

impl Token {
    fn new(id: Digest, exp: u32) -> Self {
        Token {
            id: [
                (id >> 96) as u32,
                (id >> 64) as u32,
                (id >> 32) as u32,
                id as u32,
            ],
            exp,
        }
    }

    fn digest(&self) -> Digest {
        let [a, b, c, d] = self.id;
        (u128::from(a) << 96) | (u128::from(b) << 64) | (u128::from(c) << 32) | u128::from(d)
    }

    fn entry(self) -> Entry {
        Entry::Token {
            id: self.digest(),
            exp: widen_exp(self.exp),
        }
    }
}

/// The overlay is merged into the array once it holds more than this many
/// entries, or a sixteenth of the array if that is more: lookups then stay
/// two probes, and a merge (linear in the array) is paid for by at least a
/// sixteenth of the array's size in new entries.
const OVERLAY_MIN: usize = 4096;

#[derive(Default, Debug, Clone)]
pub struct RevocationSet {
    /// Revoked `jti`s, sorted by digest, no repeats.
    tokens: Vec<Token>,
    /// Revoked `jti`s not merged into `tokens` yet (digest -> narrowed
    /// `exp`); never holds a digest that `tokens` holds.
    overlay: DigestMap<u32>,
    /// Revoked subjects (digest -> (before, exp)): few, so a hash table.
    subjects: DigestMap<(u64, u64)>,
    /// Where each run of `tokens` sharing the top bits of the digest starts.
    index: BucketIndex,
    /// Whether any entry is scoped to an issuer; only then do lookups pay
    /// for the scoped digests too. Set from the shared meta record.
    pub scoped: bool,
}

/// A lookup table over the sorted array: `starts[b]` is the first position
/// whose digest's top `bits` bits are at least `b`. A binary search over
/// hundreds of thousands of records misses the cache at nearly every step
/// (about 20 misses per request at 1M); the table (4 bytes per bucket, about
/// one bucket per four records) narrows the search to a handful of records
/// first. Valid only while the array has the length it was built for:
/// every change of position changes the length (inserts add, purges remove)
/// and the code paths that do it rebuild it; until then lookups search the
/// whole array.
#[derive(Default, Debug, Clone)]
struct BucketIndex {
    bits: u32,
    starts: Vec<u32>,
    built_for: usize,
}

/// Records per bucket the index aims at.
const RECORDS_PER_BUCKET: usize = 4;
/// Below this many records a plain binary search is as fast.
const INDEX_MIN_RECORDS: usize = 256;

impl BucketIndex {
    fn build(tokens: &[Token]) -> Self {
        let n = tokens.len();
        if n < INDEX_MIN_RECORDS || u32::try_from(n).is_err() {
            return BucketIndex::default();
        }
        let bits = (n / RECORDS_PER_BUCKET).ilog2().min(24);
        let buckets = 1usize << bits;
        let mut starts = Vec::with_capacity(buckets + 1);
        let mut at = 0usize;
        for b in 0..buckets {
            while tokens
                .get(at)
                .is_some_and(|t| (t.id[0] >> (32 - bits)) < b as u32)
            {
                at += 1;
            }
            starts.push(at as u32);
        }
        starts.push(n as u32);
        BucketIndex {
            bits,
            starts,
            built_for: n,
        }
    }

    /// The range of `tokens` that may hold `id`.
    fn range(&self, id: &[u32; 4], len: usize) -> std::ops::Range<usize> {
        if self.built_for != len || self.starts.is_empty() {
            return 0..len;
        }
        let b = (id[0] >> (32 - self.bits)) as usize;
        match (self.starts.get(b), self.starts.get(b + 1)) {
            (Some(&lo), Some(&hi)) => lo as usize..hi as usize,
            _ => 0..len,
        }
    }
}

/// Snapshots are decoded straight into a set. A snapshot lists its tokens
/// in digest order, so they are appended to an array sized once from the
/// record count: no rehash, no doubling, no second copy.
/// Where decoded entries go.
pub trait EntrySink {
    /// Called once with the record count, before the first entry.
    fn reserve(&mut self, count: usize);
    fn push(&mut self, entry: Entry);
}

impl EntrySink for Vec<Entry> {
    fn reserve(&mut self, count: usize) {
        self.reserve_exact(count);
    }
    fn push(&mut self, entry: Entry) {
        Vec::push(self, entry);
    }
}

impl EntrySink for RevocationSet {
    fn reserve(&mut self, count: usize) {
        if self.tokens.is_empty() && self.overlay.is_empty() {
            self.tokens.reserve_exact(count);
        }
    }
    fn push(&mut self, entry: Entry) {
        if let Entry::Token { id, exp } = entry {
            // Appending keeps the array sorted only past its last digest,
            // and stays within the reserved room so it never doubles.
            let in_order = self.tokens.last().is_none_or(|t| t.digest() < id);
            if in_order && self.overlay.is_empty() && self.tokens.len() < self.tokens.capacity() {
                self.tokens.push(Token::new(id, narrow_exp(exp)));
                return;
            }
        }
        self.add(entry);
        self.merge_if_due();
    }
}

impl RevocationSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.tokens.len() + self.overlay.len() + self.subjects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.overlay.is_empty() && self.subjects.is_empty()
    }

    /// Revoked `jti`s held.
    pub fn token_count(&self) -> usize {
        self.tokens.len() + self.overlay.len()
    }

    /// Revoked subjects held.
    pub fn subject_count(&self) -> usize {
        self.subjects.len()
    }

    pub fn clear(&mut self) {
        self.tokens.clear();
        self.overlay.clear();
        self.subjects.clear();
        self.index = BucketIndex::default();
    }

    /// Rebuilds the lookup table after records were appended (a snapshot
    /// load); the other changes rebuild it themselves.
    pub fn reindex(&mut self) {
        self.index = BucketIndex::build(&self.tokens);
    }

    /// Adds entries. A repeated entry keeps the widest reach: the later
    /// `before` and the later `exp`, so applying in any order gives the same set.
    pub fn apply(&mut self, entries: &[Entry]) {
        if entries.len() <= OVERLAY_MIN {
            for entry in entries {
                self.add(*entry);
            }
            self.merge_if_due();
            return;
        }
        // A large batch (a feed reset, a big delta) is sorted and merged
        // into the array at once: through the overlay it would first build
        // a hash table of its own size, doubling as it fills. Looking each
        // entry up in the array would cost a cache-missing binary search per
        // entry; the sorted merge finds the digests already held in one
        // sequential pass instead.
        let mut fresh = Vec::with_capacity(entries.len());
        for entry in entries {
            match *entry {
                Entry::Token { id, exp } => {
                    let exp = narrow_exp(exp);
                    if let Some(held) = self.overlay.get_mut(&id) {
                        *held = (*held).max(exp);
                    } else {
                        fresh.push(Token::new(id, exp));
                    }
                }
                subject => self.add(subject),
            }
        }
        fresh.sort_unstable_by_key(|t| t.id);
        fresh.dedup_by(|later, kept| {
            let same = later.id == kept.id;
            if same {
                kept.exp = kept.exp.max(later.exp);
            }
            same
        });
        self.merge_sorted(fresh);
        self.merge_if_due();
    }

    pub fn insert(&mut self, entry: Entry) {
        self.add(entry);
        self.merge_if_due();
    }

    fn add(&mut self, entry: Entry) {
        match entry {
            Entry::Token { id, exp } => {
                let exp = narrow_exp(exp);
                if let Ok(i) = self.find(id) {
                    if let Some(held) = self.tokens.get_mut(i) {
                        held.exp = held.exp.max(exp);
                    }
                    return;
                }
                let held = self.overlay.entry(id).or_insert(exp);
                *held = (*held).max(exp);
            }
            Entry::Subject { id, before, exp } => {
                let held = self.subjects.entry(id).or_insert((before, exp));
                *held = (held.0.max(before), held.1.max(exp));
            }
        }
    }

    fn find(&self, id: Digest) -> Result<usize, usize> {
        let key = Token::new(id, 0).id;
        let range = self.index.range(&key, self.tokens.len());
        let (offset, run) = match self.tokens.get(range.clone()) {
            Some(run) => (range.start, run),
            None => (0, self.tokens.as_slice()),
        };
        run.binary_search_by(|t| t.id.cmp(&key))
            .map(|i| offset + i)
            .map_err(|i| offset + i)
    }

    fn merge_if_due(&mut self) {
        if self.overlay.len() > OVERLAY_MIN.max(self.tokens.len() / 16) {
            self.merge();
        }
    }

    /// Moves the overlay into the array in place: the array grows once by
    /// exactly the overlay's size and records shift from the back, so the
    /// only extra memory is the sorted overlay itself.
    fn merge(&mut self) {
        if self.overlay.is_empty() {
            return;
        }
        let mut extra: Vec<Token> = self
            .overlay
            .drain()
            .map(|(id, exp)| Token::new(id, exp))
            .collect();
        extra.sort_unstable_by_key(|t| t.id);
        self.merge_sorted(extra);
    }

    /// Merges sorted records without repeats into the array: a digest the
    /// array holds keeps the later `exp`, the others are inserted. Two
    /// sequential passes: one to find the digests already held, one from the
    /// back to move records into place (the array grows once, by exactly
    /// the number of new digests).
    fn merge_sorted(&mut self, extra: Vec<Token>) {
        if extra.is_empty() {
            return;
        }
        let mut new = Vec::with_capacity(extra.len());
        let mut held = self.tokens.iter_mut().peekable();
        for t in extra {
            while held.next_if(|h| h.id < t.id).is_some() {}
            match held.peek_mut() {
                Some(h) if h.id == t.id => h.exp = h.exp.max(t.exp),
                _ => new.push(t),
            }
        }
        let old = self.tokens.len();
        self.tokens.reserve_exact(new.len());
        self.tokens.resize(old + new.len(), Token::default());
        // `unmerged` is one past the array records not yet moved, `write`
        // one past the next slot to fill.
        let mut unmerged = old;
        let mut write = self.tokens.len();
        for t in new.into_iter().rev() {
            while let Some(&h) = unmerged.checked_sub(1).and_then(|i| self.tokens.get(i)) {
                if h.id < t.id {
                    break;
                }
                write -= 1;
                unmerged -= 1;
                if let Some(slot) = self.tokens.get_mut(write) {
                    *slot = h;
                }
            }
            write -= 1;
            if let Some(slot) = self.tokens.get_mut(write) {
                *slot = t;
            }
        }
        self.reindex();
    }

    /// Forgets entries whose `exp` (plus the clock skew) has passed: the
    /// tokens they target are refused as expired anyway, so memory stays
    /// bounded by what is still live.
    pub fn purge(&mut self, now: u64, skew: u64) -> usize {
        let before = self.len();
        let live = |exp: u64| exp.saturating_add(skew) >= now;
        self.tokens.retain(|t| live(widen_exp(t.exp)));
        self.overlay.retain(|_, exp| live(widen_exp(*exp)));
        self.subjects.retain(|_, (_, exp)| live(*exp));
        let purged = before - self.len();
        if purged > 0 {
            self.reindex();
        }
        purged
    }

    /// A token without `iat` cannot show it was issued after a subject was
    /// revoked, so it is refused when its subject is.
    /// Whether a token with these claims is revoked by an entry for every
    /// issuer.
    pub fn is_revoked(&self, jti: Option<&str>, sub: Option<&str>, iat: Option<u64>) -> bool {
        self.is_revoked_for(None, jti, sub, iat)
    }

    /// Whether a token of issuer `iss` with these claims is revoked, by an
    /// entry for every issuer or by one scoped to `iss`.
    pub fn is_revoked_for(
        &self,
        iss: Option<&str>,
        jti: Option<&str>,
        sub: Option<&str>,
        iat: Option<u64>,
    ) -> bool {
        let scoped = iss.filter(|_| self.scoped);
        let any_tokens = !self.tokens.is_empty() || !self.overlay.is_empty();
        if let Some(jti) = jti.filter(|_| any_tokens) {
            if self.holds_token(digest(jti))
                || scoped.is_some_and(|iss| self.holds_token(digest_scoped(iss, jti)))
            {
                return true;
            }
        }
        if let Some(sub) = sub.filter(|_| !self.subjects.is_empty()) {
            if self.subject_revokes(digest(sub), iat)
                || scoped.is_some_and(|iss| self.subject_revokes(digest_scoped(iss, sub), iat))
            {
                return true;
            }
        }
        false
    }

    fn holds_token(&self, id: Digest) -> bool {
        self.find(id).is_ok() || (!self.overlay.is_empty() && self.overlay.contains_key(&id))
    }

    fn subject_revokes(&self, id: Digest, iat: Option<u64>) -> bool {
        self.subjects
            .get(&id)
            .is_some_and(|(before, _)| iat.is_none_or(|iat| iat < *before))
    }

    /// Every entry, for writing a snapshot: tokens in digest order (so a
    /// worker loads them by appending), then subjects.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        let mut extra: Vec<Token> = self
            .overlay
            .iter()
            .map(|(id, exp)| Token::new(*id, *exp))
            .collect();
        extra.sort_unstable_by_key(|t| t.id);
        Merged {
            held: self.tokens.iter().copied().peekable(),
            extra: extra.into_iter().peekable(),
        }
        .map(Token::entry)
        .chain(
            self.subjects
                .iter()
                .map(|(id, (before, exp))| Entry::Subject {
                    id: *id,
                    before: *before,
                    exp: *exp,
                }),
        )
    }
}

/// Two sorted token sequences with no digest in common, in digest order.
struct Merged<A: Iterator<Item = Token>, B: Iterator<Item = Token>> {
    held: Peekable<A>,
    extra: Peekable<B>,
}

impl<A: Iterator<Item = Token>, B: Iterator<Item = Token>> Iterator for Merged<A, B> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let order = match (self.held.peek(), self.extra.peek()) {
            (Some(a), Some(b)) => a.id.cmp(&b.id),
            (Some(_), None) => Ordering::Less,
            (None, _) => Ordering::Greater,
        };
        if order == Ordering::Less {
            self.held.next()
        } else {
            self.extra.next()
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let (a, b) = (self.held.size_hint(), self.extra.size_hint());
        (
            a.0.saturating_add(b.0),
            a.1.zip(b.1).and_then(|(a, b)| a.checked_add(b)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jti_and_subject_revocation() {
        let mut set = RevocationSet::new();
        assert!(!set.is_revoked(Some("a"), Some("alice"), Some(10)));
        set.apply(&[
            Entry::Token {
                id: digest("a"),
                exp: 100,
            },
            Entry::Subject {
                id: digest("alice"),
                before: 50,
                exp: 200,
            },
        ]);
        assert_eq!(set.len(), 2);
        assert!(set.is_revoked(Some("a"), None, None));
        assert!(!set.is_revoked(Some("b"), None, None));
        assert!(set.is_revoked(Some("b"), Some("alice"), Some(49)));
        assert!(
            !set.is_revoked(Some("b"), Some("alice"), Some(50)),
            "issued at before: accepted"
        );
        assert!(!set.is_revoked(Some("b"), Some("alice"), Some(60)));
        assert!(set.is_revoked(None, Some("alice"), None), "no iat: refused");
        assert!(!set.is_revoked(None, Some("bob"), Some(1)));
    }

    #[test]
    fn repeated_entries_keep_the_widest_reach() {
        let mut set = RevocationSet::new();
        let s = |before, exp| Entry::Subject {
            id: digest("s"),
            before,
            exp,
        };
        set.apply(&[s(50, 100), s(40, 300)]);
        assert!(set.is_revoked(None, Some("s"), Some(45)));
        assert!(set.is_revoked(None, Some("s"), Some(49)));
        assert_eq!(set.purge(150, 0), 0, "exp 300 kept");
        set.apply(&[
            Entry::Token {
                id: digest("t"),
                exp: 10,
            },
            Entry::Token {
                id: digest("t"),
                exp: 5,
            },
        ]);
        assert_eq!(set.purge(10, 0), 0);
        assert_eq!(set.purge(11, 0), 1);
    }

    /// The bucket index must never hide an entry, whichever way the array
    /// was built or changed: large batches, small inserts with merges, a
    /// snapshot appended then reindexed, appends not reindexed yet, purges.
    #[test]
    fn lookups_agree_with_a_plain_set_on_every_path() {
        use std::collections::HashSet;
        let tok = |i: u64, exp: u64| Entry::Token {
            id: digest(&format!("jti-{i}")),
            exp,
        };
        let check = |set: &RevocationSet, held: &HashSet<u64>, upto: u64| {
            for i in 0..upto {
                assert_eq!(
                    set.is_revoked(Some(&format!("jti-{i}")), None, None),
                    held.contains(&i),
                    "jti-{i}"
                );
            }
        };
        let mut set = RevocationSet::new();
        let mut held = HashSet::new();
        // A large batch, then small ones that go through the overlay and merge.
        set.apply(&(0..6000).map(|i| tok(i, 1_000 + i % 7)).collect::<Vec<_>>());
        held.extend(0..6000);
        for chunk in 0..10u64 {
            let batch: Vec<Entry> = (0..700)
                .map(|i| tok(6000 + chunk * 700 + i, 2_000))
                .collect();
            set.apply(&batch);
            held.extend((0..700).map(|i| 6000 + chunk * 700 + i));
            check(&set, &held, 13_500);
        }
        // Purge drops the early exps (1_000..=1_006 below 1_004 + skew 0).
        set.purge(1_004, 0);
        held.retain(|i| *i >= 6000 || 1_000 + i % 7 >= 1_004);
        check(&set, &held, 13_500);

        // A snapshot appended into a new set: before and after reindexing,
        // and after one more append that leaves the index behind.
        let mut loaded = RevocationSet::new();
        let snapshot: Vec<Entry> = set.entries().collect();
        loaded.reserve(snapshot.len() + 1);
        for e in &snapshot {
            loaded.push(*e);
        }
        check(&loaded, &held, 13_500);
        loaded.reindex();
        check(&loaded, &held, 13_500);
        let mut bigger: Vec<Entry> = snapshot.clone();
        bigger.push(tok(50_000, 3_000));
        let mut appended = RevocationSet::new();
        appended.reserve(bigger.len());
        for e in &snapshot {
            appended.push(*e);
        }
        appended.reindex();
        appended.push(tok(50_000, 3_000));
        held.insert(50_000);
        check(&appended, &held, 13_500);
        assert!(appended.is_revoked(Some("jti-50000"), None, None));
    }

    #[test]
    fn purge_honours_skew() {
        let mut set = RevocationSet::new();
        set.insert(Entry::Token {
            id: digest("t"),
            exp: 100,
        });
        assert_eq!(set.purge(160, 60), 0);
        assert_eq!(set.purge(161, 60), 1);
        assert!(set.is_empty());
    }

    #[test]
    fn entries_round_trip() {
        let mut set = RevocationSet::new();
        set.insert(Entry::Token {
            id: digest("t"),
            exp: 1,
        });
        set.insert(Entry::Subject {
            id: digest("s"),
            before: 2,
            exp: 3,
        });
        let mut copy = RevocationSet::new();
        copy.apply(&set.entries().collect::<Vec<_>>());
        assert!(copy.is_revoked(Some("t"), None, None));
        assert!(copy.is_revoked(None, Some("s"), Some(1)));
        assert_eq!(copy.len(), 2);
    }

    #[test]
    fn digest_is_stable() {
        assert_eq!(digest("a"), digest("a"));
        assert_ne!(digest("a"), digest("b"));
    }

    /// A small deterministic generator: the tests need spread digests, not
    /// a crate.
    fn spread(n: u64) -> u128 {
        let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
        x ^= x >> 29;
        u128::from(x) << 64 | u128::from(x.wrapping_mul(0xBF58_476D_1CE4_E5B9))
    }

    #[test]
    fn merges_keep_every_entry_and_the_widest_exp() {
        let mut set = RevocationSet::new();
        let mut model = std::collections::BTreeMap::new();
        // Enough batches to merge the overlay into the array several times,
        // with repeats of held digests at both lower and higher `exp`.
        for round in 0..12u64 {
            let batch: Vec<Entry> = (0..3000u64)
                .map(|i| Entry::Token {
                    id: spread((round * 1777 + i) % 20_000),
                    exp: 1000 + (round * 7 + i) % 50,
                })
                .collect();
            for e in &batch {
                if let Entry::Token { id, exp } = *e {
                    let held = model.entry(id).or_insert(exp);
                    *held = (*held).max(exp);
                }
            }
            set.apply(&batch);
            assert_eq!(set.len(), model.len(), "round {round}");
        }
        let listed: Vec<Entry> = set.entries().collect();
        let expected: Vec<Entry> = model
            .iter()
            .map(|(id, exp)| Entry::Token { id: *id, exp: *exp })
            .collect();
        assert_eq!(listed, expected, "entries in digest order, widest exp");
        for id in model.keys().take(500) {
            assert!(
                set.tokens.binary_search_by(|t| t.digest().cmp(id)).is_ok()
                    || set.overlay.contains_key(id)
            );
        }
        assert!(set.tokens.windows(2).all(|w| w[0].id < w[1].id));
        assert!(set.tokens.len() > 10_000, "the overlay was merged");
    }

    #[test]
    fn sorted_snapshot_loads_into_an_exact_array() {
        use crate::revocation::codec::{decode_batch_into, encode_batch};
        let mut source = RevocationSet::new();
        source.apply(
            &(0..10_000u64)
                .map(|i| Entry::Token {
                    id: spread(i),
                    exp: 5000 + i,
                })
                .chain([Entry::Subject {
                    id: digest("s"),
                    before: 4,
                    exp: 9,
                }])
                .collect::<Vec<_>>(),
        );
        source.insert(Entry::Token {
            id: digest("late"),
            exp: 7,
        });
        assert!(!source.overlay.is_empty(), "one entry left in the overlay");
        let bytes = encode_batch(3, source.entries());
        let mut loaded = RevocationSet::new();
        assert_eq!(decode_batch_into(&bytes, &mut loaded), Ok(3));
        assert!(loaded.overlay.is_empty(), "every token appended");
        assert_eq!(loaded.tokens.len(), 10_001);
        assert!(loaded.tokens.capacity() <= 10_002, "sized once");
        assert_eq!(loaded.len(), source.len());
        assert!(loaded.is_revoked(Some("late"), None, None));
        assert!(loaded.is_revoked(None, Some("s"), Some(3)));
        assert_eq!(
            loaded.entries().collect::<Vec<_>>(),
            source.entries().collect::<Vec<_>>()
        );
    }

    #[test]
    fn unsorted_stream_still_loads() {
        let mut set = RevocationSet::new();
        set.reserve(3);
        for (id, exp) in [(5u128, 1u64), (3, 2), (5, 9), (9, 4)] {
            set.push(Entry::Token { id, exp });
        }
        assert_eq!(set.len(), 3);
        assert_eq!(
            set.entries().collect::<Vec<_>>(),
            [(3, 2), (5, 9), (9, 4)]
                .map(|(id, exp)| Entry::Token { id, exp })
                .to_vec()
        );
    }

    #[test]
    fn exp_past_2106_is_never_purged() {
        let mut set = RevocationSet::new();
        set.insert(Entry::Token {
            id: 1,
            exp: u64::from(u32::MAX) + 5,
        });
        set.insert(Entry::Token {
            id: 2,
            exp: u64::from(u32::MAX) - 1,
        });
        assert_eq!(set.entries().next().map(|e| e.exp()), Some(u64::MAX));
        assert_eq!(set.purge(u64::from(u32::MAX), 0), 1);
        assert_eq!(set.purge(u64::MAX - 1, 0), 0);
        assert!(!set.is_revoked(Some("x"), None, None));
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn large_batch_merges_with_repeats() {
        let mut set = RevocationSet::new();
        set.apply(&[Entry::Token { id: 7, exp: 50 }]);
        set.insert(Entry::Token { id: 9, exp: 50 });
        set.merge();
        set.insert(Entry::Token { id: 11, exp: 50 });
        let mut batch: Vec<Entry> = (0..10_000u64)
            .map(|i| Entry::Token {
                id: spread(i % 6000),
                exp: 100 + i,
            })
            .collect();
        batch.extend([
            Entry::Token { id: 9, exp: 10 },
            Entry::Token { id: 9, exp: 70 },
            Entry::Token { id: 11, exp: 80 },
            Entry::Subject {
                id: 3,
                before: 1,
                exp: 2,
            },
        ]);
        set.apply(&batch);
        assert_eq!(set.len(), 6000 + 3 + 1);
        let listed: Vec<Entry> = set.entries().collect();
        assert!(listed.contains(&Entry::Token { id: 9, exp: 70 }));
        assert!(listed.contains(&Entry::Token { id: 11, exp: 80 }));
        assert!(listed.contains(&Entry::Token { id: 7, exp: 50 }));
        assert!(listed.contains(&Entry::Token {
            id: spread(5999),
            exp: 100 + 5999
        }));
        assert!(listed.contains(&Entry::Token {
            id: spread(0),
            exp: 100 + 6000
        }));
        assert!(set.tokens.windows(2).all(|w| w[0].id < w[1].id));
    }
}
