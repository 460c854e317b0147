//! The verified-token cache of one worker: a token seen before skips
//! parsing and signature checks, keeping only what the decision still
//! needs (claims for headers and rules, `exp`, `jti`, `sub`, `iat`).
//!
//! Bounded and least-recently-used. Keyed by a keyed hash of the token's
//! last bytes (the end of its signature, which no two tokens an issuer
//! signs share), with a full comparison on every hit, so a hash collision
//! can never pass one token for another; only verified tokens are stored,
//! so a client cannot fill the index with tokens of its choosing. A hit
//! never outlives `exp`, and revocation and route rules are still checked
//! on every hit.

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::jwt::JsonObject;

/// What a verified token leaves behind. Shared (`Arc`) between the cache
/// and the decisions that read it, so a cache hit copies nothing; atomic,
/// because a native host applies a decision outside the lock its cache
/// lives under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub claims: JsonObject,
    pub exp: Option<u64>,
    pub iss: Option<String>,
    pub jti: Option<String>,
    pub sub: Option<String>,
    pub iat: Option<u64>,
    pub set_headers: Vec<(String, String)>,
    pub filter_state: Vec<(String, String)>,
}

const NIL: usize = usize::MAX;

/// How many of a token's last bytes are hashed: more than a signature
/// needs to tell tokens apart, under half of what hashing a whole token costs.
const HASHED_TAIL: usize = 32;

/// The part of `token` its index key is hashed from.
fn hashed_tail(token: &str) -> &[u8] {
    let bytes = token.as_bytes();
    bytes
        .get(bytes.len().saturating_sub(HASHED_TAIL)..)
        .unwrap_or(bytes)
}

/// The index's hasher. Its keys are already the keyed hash of a token, as
/// unpredictable to a client as any second hash of them would be, so they
/// are used as they are: one hash of the token per lookup, not two.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys reach this hasher (`write_u64`); any other input
        // still hashes, by folding its bytes in.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Slot {
    token: Box<str>,
    hash: u64,
    value: Arc<Verified>,
    prev: usize,
    next: usize,
}

/// One provider's cache.
pub struct TokenCache {
    max_entries: usize,
    index: HashMap<u64, usize, BuildHasherDefault<Prehashed>>,
    slots: Vec<Slot>,
    /// Most recently used.
    head: usize,
    /// Least recently used: evicted first.
    tail: usize,
    hasher: RandomState,
}

impl TokenCache {
    pub fn new(max_entries: usize) -> Self {
        TokenCache {
            max_entries,
            index: HashMap::default(),
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
            hasher: RandomState::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.head = NIL;
        self.tail = NIL;
    }

    /// The cached result for exactly this token, unless it expired
    /// (`now > exp + skew`), in which case it is dropped.
    pub fn get(&mut self, token: &str, now: u64, skew: u64) -> Option<Arc<Verified>> {
        let hash = self.hasher.hash_one(hashed_tail(token));
        let slot = *self.index.get(&hash)?;
        let entry = self.slots.get(slot)?;
        if &*entry.token != token {
            return None;
        }
        if entry
            .value
            .exp
            .is_some_and(|exp| now > exp.saturating_add(skew))
        {
            self.remove(slot);
            return None;
        }
        let value = entry.value.clone();
        self.touch(slot);
        Some(value)
    }

    pub fn insert(&mut self, token: &str, value: Arc<Verified>) {
        if self.max_entries == 0 {
            return;
        }
        let hash = self.hasher.hash_one(hashed_tail(token));
        if let Some(&slot) = self.index.get(&hash) {
            // Same token refreshed, or a colliding one replacing it.
            if let Some(entry) = self.slots.get_mut(slot) {
                entry.token = token.into();
                entry.value = value;
            }
            self.touch(slot);
            return;
        }
        if self.index.len() >= self.max_entries {
            let lru = self.tail;
            self.remove(lru);
        }
        let slot = self.slots.len();
        self.slots.push(Slot {
            token: token.into(),
            hash,
            value,
            prev: NIL,
            next: NIL,
        });
        self.index.insert(hash, slot);
        self.link_front(slot);
    }

    fn touch(&mut self, slot: usize) {
        if self.head != slot {
            self.unlink(slot);
            self.link_front(slot);
        }
    }

    fn link_front(&mut self, slot: usize) {
        let old_head = self.head;
        if let Some(s) = self.slots.get_mut(slot) {
            s.prev = NIL;
            s.next = old_head;
        }
        if let Some(h) = self.slots.get_mut(old_head) {
            h.prev = slot;
        }
        self.head = slot;
        if self.tail == NIL {
            self.tail = slot;
        }
    }

    fn unlink(&mut self, slot: usize) {
        let (prev, next) = match self.slots.get(slot) {
            Some(s) => (s.prev, s.next),
            None => return,
        };
        match self.slots.get_mut(prev) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.slots.get_mut(next) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
    }

    /// Removes a slot, moving the last slot into its place so the slab
    /// stays dense.
    fn remove(&mut self, slot: usize) {
        if slot >= self.slots.len() {
            return;
        }
        self.unlink(slot);
        let hash = self.slots[slot].hash;
        self.index.remove(&hash);
        let last = self.slots.len() - 1;
        if slot != last {
            self.unlink(last);
            self.slots.swap(slot, last);
            let moved_hash = self.slots[slot].hash;
            self.index.insert(moved_hash, slot);
            self.slots.pop();
            // Re-link the moved entry at the front: recency of one entry
            // shifts slightly, which an LRU cache tolerates.
            self.link_front(slot);
        } else {
            self.slots.pop();
        }
    }
}

/// One cache per provider (a provider with `max_entries` 0 has none).
pub struct TokenCaches {
    caches: Vec<Option<RefCell<TokenCache>>>,
}

impl TokenCaches {
    pub fn new(max_entries_per_provider: impl IntoIterator<Item = usize>) -> Self {
        TokenCaches {
            caches: max_entries_per_provider
                .into_iter()
                .map(|n| (n > 0).then(|| RefCell::new(TokenCache::new(n))))
                .collect(),
        }
    }

    pub fn get(&self, provider: usize, token: &str, now: u64, skew: u64) -> Option<Arc<Verified>> {
        let cache = self.caches.get(provider)?.as_ref()?;
        cache.try_borrow_mut().ok()?.get(token, now, skew)
    }

    pub fn insert(&self, provider: usize, token: &str, value: Arc<Verified>) {
        if let Some(Some(cache)) = self.caches.get(provider) {
            if let Ok(mut c) = cache.try_borrow_mut() {
                c.insert(token, value);
            }
        }
    }

    pub fn is_enabled(&self, provider: usize) -> bool {
        matches!(self.caches.get(provider), Some(Some(_)))
    }

    /// Forgets a provider's tokens (its keys changed).
    pub fn clear(&self, provider: usize) {
        if let Some(Some(cache)) = self.caches.get(provider) {
            if let Ok(mut c) = cache.try_borrow_mut() {
                c.clear();
            }
        }
    }

    pub fn entries(&self) -> usize {
        self.caches
            .iter()
            .flatten()
            .filter_map(|c| c.try_borrow().ok().map(|c| c.len()))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(exp: u64, sub: &str) -> Arc<Verified> {
        Arc::new(Verified {
            claims: JsonObject::of(&serde_json::json!({})),
            iss: None,
            exp: Some(exp),
            jti: None,
            sub: Some(sub.into()),
            iat: None,
            set_headers: vec![("x-user-id".into(), sub.into())],
            filter_state: Vec::new(),
        })
    }

    #[test]
    fn hit_miss_and_expiry() {
        let mut c = TokenCache::new(10);
        assert!(c.get("a", 0, 0).is_none());
        c.insert("a", verified(100, "alice"));
        assert_eq!(c.get("a", 100, 0).unwrap().sub.as_deref(), Some("alice"));
        assert!(c.get("b", 100, 0).is_none());
        assert!(c.get("a", 150, 60).is_some(), "skew");
        assert!(c.get("a", 161, 60).is_none(), "expired entries are dropped");
        assert!(c.is_empty());
    }

    #[test]
    fn least_recently_used_is_evicted() {
        let mut c = TokenCache::new(3);
        for t in ["a", "b", "c"] {
            c.insert(t, verified(100, t));
        }
        assert!(c.get("a", 0, 0).is_some());
        c.insert("d", verified(100, "d"));
        assert_eq!(c.len(), 3);
        assert!(c.get("b", 0, 0).is_none(), "b was least recently used");
        for t in ["a", "c", "d"] {
            assert!(c.get(t, 0, 0).is_some(), "{t}");
        }
        for i in 0..1000 {
            c.insert(&format!("t{i}"), verified(100, "x"));
            assert!(c.len() <= 3);
        }
        assert!(c.get("t999", 0, 0).is_some());
        assert!(c.get("t998", 0, 0).is_some());
        assert!(c.get("t997", 0, 0).is_some());
    }

    #[test]
    fn a_colliding_hash_never_passes_another_token() {
        let mut c = TokenCache::new(10);
        c.insert("real", verified(100, "alice"));
        // Force a collision: point the other token's hash at the slot.
        let forged = c.hasher.hash_one(hashed_tail("forged"));
        let slot = *c.index.values().next().unwrap();
        c.index.insert(forged, slot);
        assert!(c.get("forged", 0, 0).is_none(), "full comparison on hit");
    }

    #[test]
    fn tokens_that_end_alike_are_told_apart() {
        // One index key for both (the same last bytes): the second replaces
        // the first, and neither ever answers for the other.
        let tail = "s".repeat(HASHED_TAIL);
        let (a, b) = (format!("a.{tail}"), format!("b.{tail}"));
        let mut c = TokenCache::new(10);
        c.insert(&a, verified(100, "alice"));
        c.insert(&b, verified(100, "bob"));
        assert!(c.get(&a, 0, 0).is_none());
        assert_eq!(c.get(&b, 0, 0).unwrap().sub.as_deref(), Some("bob"));
        // Short tokens hash whole.
        c.insert("x", verified(100, "x"));
        assert!(c.get("x", 0, 0).is_some());
        assert!(c.get(&b, 0, 0).is_some());
    }

    #[test]
    fn zero_disables() {
        let caches = TokenCaches::new([0, 5]);
        assert!(!caches.is_enabled(0));
        caches.insert(0, "a", verified(100, "a"));
        assert!(caches.get(0, "a", 0, 0).is_none());
        caches.insert(1, "a", verified(100, "a"));
        assert!(caches.get(1, "a", 0, 0).is_some());
        assert_eq!(caches.entries(), 1);
        caches.clear(1);
        assert_eq!(caches.entries(), 0);
    }

    #[test]
    fn links_stay_consistent_under_churn() {
        let mut c = TokenCache::new(8);
        for i in 0..500u64 {
            let t = format!("t{}", i % 13);
            if c.get(&t, i % 7, 0).is_none() {
                c.insert(&t, verified(i % 11 + 3, "s"));
            }
            // Walk the list from head: it must hold exactly len() entries.
            let mut n = 0;
            let mut at = c.head;
            while at != NIL {
                n += 1;
                at = c.slots[at].next;
                assert!(n <= c.len());
            }
            assert_eq!(n, c.len());
            assert_eq!(c.slots.len(), c.len());
        }
    }
}
