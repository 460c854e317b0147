//! Envoy's `verify_signature` foreign function as the core's
//! [`NativeCrypto`].

use proxy_wasm::hostcalls;

use jwt_auth_core::host_crypto::{decode_result, encode_arguments, NativeCrypto};

pub struct HostCrypto;

impl NativeCrypto for HostCrypto {
    fn verify(
        &self,
        hash: &str,
        spki_der: &[u8],
        signature_der: &[u8],
        text: &[u8],
    ) -> Option<bool> {
        let args = encode_arguments(hash, spki_der, signature_der, text);
        match hostcalls::call_foreign_function("verify_signature", Some(&args)) {
            Ok(Some(reply)) => decode_result(&reply).map(|(ok, _)| ok),
            // An empty message is all defaults: `result` false.
            Ok(None) => Some(false),
            Err(_) => None,
        }
    }
}
