//! The worker-local revocation set, checked on every request with no host
//! call.
//!
//! Identifiers are held as 128-bit digests, not strings: a million revoked
//! `jti`s then cost about 32 bytes each instead of a heap string each, and
//! the set can be copied between workers as fixed-size records.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use sha2::{Digest as _, Sha256};

/// SHA-256 of an identifier, truncated to 128 bits. Identifiers come from
/// the identity provider, not the client, and 128 bits leave no practical
/// room for an accidental collision.
pub type Digest = u128;

pub fn digest(id: &str) -> Digest {
    let hash = Sha256::digest(id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
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

/// One revocation, as stored and shared between workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Tokens with this `jti` are refused.
    Token { id: Digest, exp: u64 },
    /// Tokens with this `sub` and `iat < before` are refused.
    Subject { id: Digest, before: u64, exp: u64 },
}

impl super::codec::EntrySink for RevocationSet {
    fn reserve(&mut self, count: usize) {
        self.tokens.reserve(count);
    }
    fn push(&mut self, entry: Entry) {
        self.insert(entry);
    }
}

impl Entry {
    pub fn exp(&self) -> u64 {
        match self {
            Entry::Token { exp, .. } | Entry::Subject { exp, .. } => *exp,
        }
    }
}

#[derive(Default, Debug, Clone)]
pub struct RevocationSet {
    tokens: DigestMap<u64>,
    subjects: DigestMap<(u64, u64)>,
}

impl RevocationSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.tokens.len() + self.subjects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.subjects.is_empty()
    }

    pub fn clear(&mut self) {
        self.tokens.clear();
        self.subjects.clear();
    }

    /// Adds entries. A repeated entry keeps the widest reach: the later
    /// `before` and the later `exp`, so applying in any order gives the same set.
    pub fn apply(&mut self, entries: &[Entry]) {
        self.tokens.reserve(entries.len());
        for entry in entries {
            self.insert(*entry);
        }
    }

    pub fn insert(&mut self, entry: Entry) {
        match entry {
            Entry::Token { id, exp } => {
                let held = self.tokens.entry(id).or_insert(exp);
                *held = (*held).max(exp);
            }
            Entry::Subject { id, before, exp } => {
                let held = self.subjects.entry(id).or_insert((before, exp));
                *held = (held.0.max(before), held.1.max(exp));
            }
        }
    }

    /// Forgets entries whose `exp` (plus the clock skew) has passed: the
    /// tokens they target are refused as expired anyway, so memory stays
    /// bounded by what is still live.
    pub fn purge(&mut self, now: u64, skew: u64) -> usize {
        let before = self.len();
        let live = |exp: u64| exp.saturating_add(skew) >= now;
        self.tokens.retain(|_, exp| live(*exp));
        self.subjects.retain(|_, (_, exp)| live(*exp));
        before - self.len()
    }

    /// A token without `iat` cannot show it was issued after a subject was
    /// revoked, so it is refused when its subject is.
    pub fn is_revoked(&self, jti: Option<&str>, sub: Option<&str>, iat: Option<u64>) -> bool {
        if let Some(jti) = jti {
            if !self.tokens.is_empty() && self.tokens.contains_key(&digest(jti)) {
                return true;
            }
        }
        if let Some(sub) = sub {
            if !self.subjects.is_empty() {
                if let Some((before, _)) = self.subjects.get(&digest(sub)) {
                    return iat.is_none_or(|iat| iat < *before);
                }
            }
        }
        false
    }

    /// Every entry, for writing a snapshot.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.tokens
            .iter()
            .map(|(id, exp)| Entry::Token { id: *id, exp: *exp })
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
}
