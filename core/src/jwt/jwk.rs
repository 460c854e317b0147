//! JWK / JWKS loading into a [`KeySet`], and key selection for a token.

mod error;
mod key;
mod material;
mod secret;
mod set;

pub use error::JwkError;
pub use key::Jwk;
pub use material::{KeyMaterial, MAX_RSA_BITS, MIN_RSA_BITS};
pub use secret::{HmacSecret, MIN_HMAC_SECRET_BYTES};
pub use set::{KeySet, MAX_KEYS_PER_TOKEN, REMOTE_OCT_REFUSED};

#[cfg(test)]
mod tests;
