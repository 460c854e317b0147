//! The process-wide key/value store every VM of a proxy can reach
//! (proxy-wasm shared data), behind a trait so the lease and the channel
//! are tested natively with an in-memory fake.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// Someone else wrote the key since it was read.
    CasMismatch,
    /// The host refused the call.
    Unavailable,
}

pub trait SharedStore {
    /// The value and its compare-and-swap token.
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Writes `value`; with `cas`, only if the key is unchanged since read.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError>;
    fn remove(&self, key: &str) -> Result<(), StoreError>;
}

#[cfg(test)]
pub mod fake {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// Same semantics as Envoy's shared data: every write bumps the key's
    /// CAS token; a write with a stale token fails.
    #[derive(Default)]
    pub struct MemoryStore {
        map: RefCell<HashMap<String, (Vec<u8>, u32)>>,
        pub writes: RefCell<u32>,
    }

    impl SharedStore for MemoryStore {
        fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
            match self.map.borrow().get(key) {
                Some((v, cas)) => (Some(v.clone()), Some(*cas)),
                None => (None, None),
            }
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
            let mut map = self.map.borrow_mut();
            let current = map.get(key).map(|(_, c)| *c);
            if let Some(cas) = cas {
                if current.is_some_and(|c| c != cas) {
                    return Err(StoreError::CasMismatch);
                }
            }
            let next = current.unwrap_or(0).wrapping_add(1).max(1);
            map.insert(key.to_string(), (value.to_vec(), next));
            *self.writes.borrow_mut() += 1;
            Ok(())
        }
        fn remove(&self, key: &str) -> Result<(), StoreError> {
            self.map.borrow_mut().remove(key);
            Ok(())
        }
    }

    impl MemoryStore {
        pub fn keys(&self) -> Vec<String> {
            let mut keys: Vec<String> = self.map.borrow().keys().cloned().collect();
            keys.sort();
            keys
        }
    }
}
