//! An in-memory [`Host`] for the core's tests: shared data with Envoy's
//! compare-and-swap semantics, a clock the test moves, recorded callouts and
//! metrics.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};

use super::{CallToken, Host, SharedStore, StoreError};

/// Something another VM does at a chosen moment.
pub type Interleaving = Box<dyn FnOnce(&MemoryStore)>;

/// Same semantics as Envoy's shared data: every write bumps the key's CAS
/// token; a write with a stale token fails.
#[derive(Default)]
pub struct MemoryStore {
    map: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    pub writes: Cell<u32>,
    /// Runs right before the next write of that key, as another VM writing
    /// between this VM's read and its write would.
    interleave: RefCell<Option<(String, Interleaving)>>,
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        match self.map.borrow().get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let due = matches!(&*self.interleave.borrow(), Some((k, _)) if k == key);
        let other_vm = if due {
            self.interleave.borrow_mut().take()
        } else {
            None
        };
        if let Some((_, other_vm)) = other_vm {
            other_vm(self);
        }
        let mut map = self.map.borrow_mut();
        let current = map.get(key).map(|(_, c)| *c);
        if let Some(cas) = cas {
            if current.is_some_and(|c| c != cas) {
                return Err(StoreError::CasMismatch);
            }
        }
        let next = current.unwrap_or(0).wrapping_add(1).max(1);
        map.insert(key.to_string(), (value.to_vec(), next));
        self.writes.set(self.writes.get() + 1);
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.map.borrow_mut().remove(key);
        Ok(())
    }
}

impl MemoryStore {
    /// Lets `other_vm` write right before this store's next write of `key`.
    pub fn before_next_set(&self, key: &str, other_vm: Interleaving) {
        *self.interleave.borrow_mut() = Some((key.to_string(), other_vm));
    }

    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.map.borrow().keys().cloned().collect();
        keys.sort();
        keys
    }
}

/// One call a loop started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub token: CallToken,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub timeout_ms: u64,
}

impl Call {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.header(":path").unwrap_or("")
    }
}

/// A host for tests. Several `MemoryHost`s may share one [`MemoryStore`]
/// (one per VM of a proxy) through [`MemoryHost::vm`].
pub struct MemoryHost<'s> {
    pub store: &'s MemoryStore,
    now_us: Cell<u64>,
    next_token: Cell<CallToken>,
    /// Calls started and not yet taken by the test.
    pub calls: RefCell<Vec<Call>>,
    /// When set, `dispatch` refuses with this reason.
    pub refuse_calls: RefCell<Option<String>>,
    pub counters: RefCell<BTreeMap<String, u64>>,
    pub gauges: RefCell<BTreeMap<String, u64>>,
    /// Advanced per `random` call: every nonce differs.
    random_counter: Cell<u64>,
}

impl<'s> MemoryHost<'s> {
    /// A VM on `store` whose clock reads `now_ms`.
    pub fn vm(store: &'s MemoryStore, now_ms: u64) -> Self {
        MemoryHost {
            store,
            now_us: Cell::new(now_ms * 1000),
            next_token: Cell::new(1),
            calls: RefCell::default(),
            refuse_calls: RefCell::default(),
            counters: RefCell::default(),
            gauges: RefCell::default(),
            random_counter: Cell::new(0),
        }
    }

    pub fn set_now_ms(&self, now_ms: u64) {
        self.now_us.set(now_ms * 1000);
    }

    pub fn advance_ms(&self, ms: u64) {
        self.now_us.set(self.now_us.get() + ms * 1000);
    }

    /// The calls started since the last time this was asked.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.borrow_mut())
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.counters.borrow().get(name).copied().unwrap_or(0)
    }

    pub fn gauge(&self, name: &str) -> Option<u64> {
        self.gauges.borrow().get(name).copied()
    }
}

impl SharedStore for MemoryHost<'_> {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.store.get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        self.store.set(key, value, cas)
    }

    fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.store.remove(key)
    }
}

impl Host for MemoryHost<'_> {
    fn now_us(&self) -> u64 {
        self.now_us.get()
    }

    fn dispatch(
        &self,
        cluster: &str,
        headers: &[(String, String)],
        timeout_ms: u64,
    ) -> Result<CallToken, String> {
        if let Some(reason) = self.refuse_calls.borrow().clone() {
            return Err(reason);
        }
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        self.calls.borrow_mut().push(Call {
            token,
            cluster: cluster.to_string(),
            headers: headers.to_vec(),
            timeout_ms,
        });
        Ok(token)
    }

    fn random(&self, buf: &mut [u8]) -> bool {
        let n = self.random_counter.get() + 1;
        self.random_counter.set(n);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> ((i % 8) * 8)) as u8 ^ i as u8;
        }
        true
    }

    fn counter_add(&self, name: &str, n: u64) {
        *self
            .counters
            .borrow_mut()
            .entry(name.to_string())
            .or_default() += n;
    }

    fn gauge_set(&self, name: &str, value: u64) {
        self.gauges.borrow_mut().insert(name.to_string(), value);
    }
}
