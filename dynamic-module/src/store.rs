//! The key/value store every worker thread of one configuration shares:
//! Envoy shares a dynamic module's configuration object between its
//! threads, so a map behind a lock in it is what proxy-wasm's shared data
//! is to the wasm filter, with the same compare-and-swap semantics, and the
//! core's loops run on it unchanged.

use std::collections::HashMap;
use std::sync::Mutex;

use jwt_auth_core::host::{SharedStore, StoreError};

#[derive(Default)]
pub struct LockedStore {
    map: Mutex<HashMap<String, (Vec<u8>, u32)>>,
}

impl SharedStore for LockedStore {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        let Ok(map) = self.map.lock() else {
            return (None, None);
        };
        match map.get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        }
    }

    /// Every write bumps the key's token; a write with a stale token fails.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let mut map = self.map.lock().map_err(|_| StoreError::Unavailable)?;
        let current = map.get(key).map(|(_, c)| *c);
        if let (Some(cas), Some(current)) = (cas, current) {
            if cas != current {
                return Err(StoreError::CasMismatch);
            }
        }
        let next = current.unwrap_or(0).wrapping_add(1).max(1);
        map.insert(key.to_string(), (value.to_vec(), next));
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<(), StoreError> {
        let mut map = self.map.lock().map_err(|_| StoreError::Unavailable)?;
        map.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_with_a_stale_token_fails() {
        let store = LockedStore::default();
        store.set("k", b"a", None).unwrap();
        let (value, cas) = store.get("k");
        assert_eq!(value.as_deref(), Some(&b"a"[..]));
        store.set("k", b"b", cas).unwrap();
        assert_eq!(store.set("k", b"c", cas), Err(StoreError::CasMismatch));
        assert_eq!(store.get("k").0.as_deref(), Some(&b"b"[..]));
        store.remove("k").unwrap();
        assert_eq!(store.get("k"), (None, None));
    }
}
