//! HMAC secrets: checked for length once, with a key per HS* algorithm.

use std::fmt;

use jwt_compact::alg::{Hs256Key, Hs384Key, Hs512Key};

/// Smallest HMAC secret accepted at load time. RFC 7518 §3.2 requires a key at
/// least as long as the hash output; 32 bytes is that floor for HS256, and
/// HS384/HS512 additionally need 48/64 bytes (checked per algorithm).
pub const MIN_HMAC_SECRET_BYTES: usize = 32;

/// An HMAC secret, with jwt-compact's key for each HS* algorithm (made once
/// at load; they are zeroed on drop). Its Debug output never shows the bytes.
#[derive(Clone)]
pub struct HmacSecret {
    bytes: Vec<u8>,
    keys: Box<HmacKeys>,
}

#[derive(Clone)]
struct HmacKeys {
    hs256: Hs256Key,
    hs384: Hs384Key,
    hs512: Hs512Key,
}

impl HmacSecret {
    pub fn new(bytes: Vec<u8>) -> Result<Self, String> {
        let keys = HmacKeys {
            hs256: Hs256Key::new(&bytes),
            hs384: Hs384Key::new(&bytes),
            hs512: Hs512Key::new(&bytes),
        };
        Ok(HmacSecret {
            bytes,
            keys: Box::new(keys),
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The secret as jwt-compact's key of each algorithm.
    pub fn hs256(&self) -> &Hs256Key {
        &self.keys.hs256
    }

    pub fn hs384(&self) -> &Hs384Key {
        &self.keys.hs384
    }

    pub fn hs512(&self) -> &Hs512Key {
        &self.keys.hs512
    }
}

impl PartialEq for HmacSecret {
    fn eq(&self, other: &Self) -> bool {
        // The keys follow from the bytes.
        self.bytes == other.bytes
    }
}

impl Eq for HmacSecret {}

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HmacSecret(<{} bytes redacted>)", self.bytes.len())
    }
}
