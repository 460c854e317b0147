//! What the core needs from the proxy it runs in, as one small trait.
//!
//! The stateful loops (remote keys, the revocation feed, requests waiting
//! for keys) are plain Rust over [`Host`], so they are tested natively with
//! [`memory::MemoryHost`]; each proxy's glue implements it with its own calls
//! (proxy-wasm host calls in the wasm filter).

#[cfg(test)]
pub mod memory;

/// Why a shared-data write did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// Someone else wrote the key since it was read.
    CasMismatch,
    /// The host refused the call.
    Unavailable,
}

/// The process-wide key/value store every VM of a proxy can reach
/// (proxy-wasm shared data), with compare-and-swap. The lease and the
/// revocation channel need nothing else of the host.
pub trait SharedStore {
    /// The value and its compare-and-swap token.
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Writes `value`; with `cas`, only if the key is unchanged since read.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError>;
    /// Makes the key read as absent.
    fn remove(&self, key: &str) -> Result<(), StoreError>;
}

/// An outgoing HTTP call (a callout) the host started; its answer comes back
/// later through the loop that asked, by this token.
pub type CallToken = u32;

/// The answer to a callout, as the host delivered it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// `None` when the call failed without a response (timeout, connection
    /// refused, reset).
    pub status: Option<u16>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The first value of a header (names compared case-insensitively), when
    /// it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// What the host delivered for a callout: the answer, or only its size when
/// the body was over the caller's limit (the glue never copies such a body
/// into the VM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Answer(Answer),
    TooLarge(usize),
}

/// The proxy, as the core's loops see it: a clock, shared data, callouts
/// and metrics.
pub trait Host: SharedStore {
    /// Unix microseconds from the proxy's clock; the filter never reads a
    /// clock of its own.
    fn now_us(&self) -> u64;

    /// Unix milliseconds from the proxy's clock.
    fn now_ms(&self) -> u64 {
        self.now_us() / 1000
    }

    /// Fills `buf` from a cryptographically secure source (nonces the feed
    /// binds its answers to); false when the host has none.
    fn random(&self, buf: &mut [u8]) -> bool;

    /// Starts a GET-style call to an upstream cluster; `Err` carries the
    /// host's reason when it refuses (an unknown cluster, a thread that
    /// cannot call out).
    fn dispatch(
        &self,
        cluster: &str,
        headers: &[(String, String)],
        timeout_ms: u64,
    ) -> Result<CallToken, String>;

    /// Adds `n` to the counter `<namespace>.<name>`.
    fn counter_add(&self, name: &str, n: u64);

    /// Sets the gauge `<namespace>.<name>`.
    fn gauge_set(&self, name: &str, value: u64);
}
