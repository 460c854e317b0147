//! Token revocation: a feed polled by one fetcher per proxy, shared with
//! every worker through proxy-wasm shared data, and checked per request
//! against a worker-local set.

pub mod channel;
pub mod codec;
pub mod feed_loop;

pub mod feed;
pub mod set;

pub use set::RevocationSet;

impl crate::decision::RevocationCheck for RevocationSet {
    fn is_revoked(
        &self,
        iss: Option<&str>,
        jti: Option<&str>,
        sub: Option<&str>,
        iat: Option<u64>,
    ) -> bool {
        self.is_revoked_for(iss, jti, sub, iat)
    }
}
