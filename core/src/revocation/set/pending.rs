//! The revoked `jti`s of a snapshot whose pages are still arriving, kept as
//! the set's own 20-byte records rather than as [`Entry`] values (48 bytes
//! each, padded for the `u128`): at ten million entries the difference is
//! the difference between fitting in the fetcher VM's memory (wasm linear
//! memory, which never shrinks, capped by the host) and not. Once the last
//! page is in, the records are sorted in place and become the set's array,
//! with no second copy.

use super::{narrow_exp, BucketIndex, Digest, Entry, RevocationSet, Token};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PendingTokens {
    tokens: Vec<Token>,
}

impl PendingTokens {
    pub fn push(&mut self, id: Digest, exp: u64) {
        if self.tokens.len() == self.tokens.capacity() {
            // Grow by half, not double: the blocks given up along the way
            // then add up to room the allocator can reuse for the next one,
            // rather than each new block needing fresh memory.
            let more = (self.tokens.len() / 2).max(4096);
            self.tokens.reserve_exact(more);
        }
        self.tokens.push(Token::new(id, narrow_exp(exp)));
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The records as entries, in the order they came.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.tokens.iter().map(|t| t.entry())
    }

    /// A set holding these tokens: sorted in place, a repeated digest kept
    /// once with its latest `exp`.
    pub fn into_set(self) -> RevocationSet {
        let mut tokens = self.tokens;
        tokens.sort_unstable_by(|a, b| a.id.cmp(&b.id).then(b.exp.cmp(&a.exp)));
        // Sorted by digest, the latest `exp` first: dedup keeps the first.
        tokens.dedup_by(|later, kept| later.id == kept.id);
        let index = BucketIndex::build(&tokens);
        RevocationSet {
            tokens,
            index,
            ..RevocationSet::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::set::digest;

    #[test]
    fn pending_tokens_become_a_sorted_set_keeping_the_latest_exp() {
        let mut pending = PendingTokens::default();
        for (jti, exp) in [("c", 10), ("a", 20), ("c", 30), ("b", 5), ("c", 15)] {
            pending.push(digest(jti), exp);
        }
        assert_eq!(pending.len(), 5);
        let set = pending.into_set();
        assert_eq!(set.len(), 3, "one record per digest");
        assert!(set.tokens.windows(2).all(|w| w[0].id < w[1].id));
        let exp_of = |jti: &str| {
            set.entries()
                .find(|e| matches!(e, Entry::Token { id, .. } if *id == digest(jti)))
                .map(|e| e.exp())
        };
        assert_eq!(exp_of("c"), Some(30));
        assert_eq!(exp_of("a"), Some(20));
        assert!(set.is_revoked(Some("b"), None, None));
        assert!(!set.is_revoked(Some("d"), None, None));
    }
}
