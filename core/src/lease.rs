//! Electing the one root context per proxy that polls a remote source.
//!
//! Every VM (one per worker thread, plus the main thread) ticks; each tick
//! it calls [`Lease::try_hold`]. The holder renews its lease; when it stops
//! renewing (its VM is gone), the lease expires and another VM takes it on
//! its next tick. Compare-and-swap on shared data makes the election safe
//! without any service outside the filter, so it works inside an Istio
//! `WasmPlugin` as well as with a bootstrap Envoy config.

use crate::host::SharedStore;

pub struct Lease {
    key: String,
    owner: u64,
    ttl_ms: u64,
    /// Whether this VM wrote the lease on its previous tick.
    held: bool,
}

impl Lease {
    /// `owner` must be unique per VM (random); `ttl_ms` is how long a silent
    /// holder keeps the lease.
    pub fn new(key: String, owner: u64, ttl_ms: u64) -> Self {
        Lease {
            key,
            owner,
            ttl_ms,
            held: false,
        }
    }

    pub fn owner(&self) -> u64 {
        self.owner
    }

    /// Takes or renews the lease; true when this VM holds it.
    ///
    /// Envoy's compare-and-swap cannot say "create only if absent", so two
    /// VMs may both write a missing key in the same instant. A VM therefore
    /// counts as holder only from the tick after its write, once a racing
    /// writer has had the chance to see it; the loser backs off then.
    pub fn try_hold(&mut self, store: &dyn SharedStore, now_ms: u64) -> bool {
        let (value, cas) = store.get(&self.key);
        if let Some((holder, expires)) = value.as_deref().and_then(decode) {
            if holder != self.owner && expires > now_ms {
                self.held = false;
                return false;
            }
        }
        let renewed = encode(self.owner, now_ms.saturating_add(self.ttl_ms));
        let was_held = self.held;
        self.held = store.set(&self.key, &renewed, cas).is_ok();
        self.held && was_held
    }

    /// Whether this VM holds the lease right now, without renewing it: a
    /// fetcher checks it again before it publishes, since applying a large
    /// answer may outlast the lease.
    pub fn holds(&self, store: &dyn SharedStore, now_ms: u64) -> bool {
        let (value, _) = store.get(&self.key);
        value
            .as_deref()
            .and_then(decode)
            .is_some_and(|(holder, expires)| holder == self.owner && expires > now_ms)
    }

    /// Gives the lease up at once (this VM cannot poll).
    pub fn release(&mut self, store: &dyn SharedStore) {
        self.held = false;
        let (value, cas) = store.get(&self.key);
        if value.as_deref().and_then(decode).map(|(h, _)| h) == Some(self.owner) {
            let _ = store.set(&self.key, &encode(0, 0), cas);
        }
    }
}

fn encode(owner: u64, expires_ms: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&owner.to_le_bytes());
    out[8..].copy_from_slice(&expires_ms.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<(u64, u64)> {
    let owner = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let expires = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
    Some((owner, expires))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::memory::MemoryStore;

    #[test]
    fn one_holder_at_a_time() {
        let store = MemoryStore::default();
        let mut a = Lease::new("ns.lease".into(), 1, 2000);
        let mut b = Lease::new("ns.lease".into(), 2, 2000);
        assert!(!a.try_hold(&store, 0), "held only from the next tick");
        assert!(!b.try_hold(&store, 100));
        assert!(a.try_hold(&store, 1000), "holder renews");
        assert!(
            !b.try_hold(&store, 2500),
            "renewed at 1000, valid until 3000"
        );
        assert!(a.try_hold(&store, 2900));
    }

    #[test]
    fn takeover_when_the_holder_goes_silent() {
        let store = MemoryStore::default();
        let mut a = Lease::new("ns.lease".into(), 1, 2000);
        let mut b = Lease::new("ns.lease".into(), 2, 2000);
        let mut c = Lease::new("ns.lease".into(), 3, 2000);
        a.try_hold(&store, 0);
        assert!(a.try_hold(&store, 10));
        // a stops renewing; b ticks every 1000 ms and takes over within two
        // intervals.
        assert!(!b.try_hold(&store, 1000));
        assert!(!b.try_hold(&store, 2000));
        assert!(!b.try_hold(&store, 2011));
        assert!(b.try_hold(&store, 2100));
        assert!(!c.try_hold(&store, 2002));
        assert!(
            !a.try_hold(&store, 2003),
            "the old holder does not steal it back"
        );
    }

    #[test]
    fn release_hands_over_at_once() {
        let store = MemoryStore::default();
        let mut a = Lease::new("ns.lease".into(), 1, 2000);
        let mut b = Lease::new("ns.lease".into(), 2, 2000);
        a.try_hold(&store, 0);
        assert!(a.try_hold(&store, 1));
        a.release(&store);
        b.try_hold(&store, 2);
        assert!(b.try_hold(&store, 3));
        a.release(&store);
        assert!(
            !a.try_hold(&store, 4),
            "release by a non-holder changes nothing"
        );
    }

    #[test]
    fn racing_first_writers_end_with_one_holder() {
        let store = MemoryStore::default();
        let mut a = Lease::new("ns.lease".into(), 1, 2000);
        let mut b = Lease::new("ns.lease".into(), 2, 2000);
        // Both saw an absent key and wrote in the same instant; b wrote last.
        assert!(!a.try_hold(&store, 0));
        store.set("ns.lease", &encode(2, 2000), None).unwrap();
        assert!(!b.try_hold(&store, 0));
        assert!(!a.try_hold(&store, 100), "b wrote last: a backs off");
        assert!(b.try_hold(&store, 100));
        assert!(!a.try_hold(&store, 200));
    }

    #[test]
    fn garbage_in_the_key_is_taken_over() {
        let store = MemoryStore::default();
        store.set("ns.lease", b"xx", None).unwrap();
        let mut l = Lease::new("ns.lease".into(), 9, 10);
        l.try_hold(&store, 5);
        assert!(l.try_hold(&store, 6));
    }
}
