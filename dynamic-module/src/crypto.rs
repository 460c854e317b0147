//! RSA PKCS#1 v1.5 and ECDSA signatures checked by `ring` (a reviewed
//! native crate), as the wasm build checks them with Envoy's BoringSSL:
//! through the core's [`Accelerator`], which converts JWS signatures to the
//! DER form, applies the filter's own signature rules first, and turns an
//! algorithm on only when its known-answer self-test passes. ES512 (P-521)
//! is not in `ring`: its self-test fails and the core's RustCrypto checks it.

use jwt_auth_core::host_crypto::{Accelerator, NativeCrypto};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use spki::SubjectPublicKeyInfoRef;

/// `id-ecPublicKey` and `rsaEncryption`.
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

pub struct RingCrypto;

impl RingCrypto {
    fn algorithm(key_oid: &str, hash: &str) -> Option<&'static dyn VerificationAlgorithm> {
        Some(match (key_oid, hash) {
            (RSA_ENCRYPTION, "sha256") => &signature::RSA_PKCS1_2048_8192_SHA256,
            (RSA_ENCRYPTION, "sha384") => &signature::RSA_PKCS1_2048_8192_SHA384,
            (RSA_ENCRYPTION, "sha512") => &signature::RSA_PKCS1_2048_8192_SHA512,
            (EC_PUBLIC_KEY, "sha256") => &signature::ECDSA_P256_SHA256_ASN1,
            (EC_PUBLIC_KEY, "sha384") => &signature::ECDSA_P384_SHA384_ASN1,
            _ => return None,
        })
    }
}

impl NativeCrypto for RingCrypto {
    /// `None` for what `ring` cannot check here (another key type, P-521,
    /// a key that does not parse): the core's own verifier decides then.
    fn verify(&self, hash: &str, spki_der: &[u8], signature: &[u8], text: &[u8]) -> Option<bool> {
        let info = SubjectPublicKeyInfoRef::try_from(spki_der).ok()?;
        let key_oid = info.algorithm.oid.to_string();
        let algorithm = Self::algorithm(&key_oid, hash)?;
        if key_oid == EC_PUBLIC_KEY {
            // ring infers the curve from the algorithm: a key of another
            // curve must not reach it under this one.
            let curve = info.algorithm.parameters_oid().ok()?.to_string();
            let expected = if hash == "sha256" {
                "1.2.840.10045.3.1.7"
            } else {
                "1.3.132.0.34"
            };
            if curve != expected {
                return None;
            }
        }
        // RSA: the PKCS#1 RSAPublicKey; EC: the uncompressed point.
        let key = info.subject_public_key.as_bytes()?;
        Some(
            UnparsedPublicKey::new(algorithm, key)
                .verify(text, signature)
                .is_ok(),
        )
    }
}

/// The accelerator for a configuration, or `None` when it is turned off
/// (`native_verification: false`) or no algorithm passed its self-test.
pub fn accelerator(allowed: bool) -> Option<Box<dyn jwt_auth_core::jwt::SignatureAccelerator>> {
    if !allowed {
        return None;
    }
    let accelerator = Accelerator::new(RingCrypto);
    (!accelerator.enabled().is_empty()).then(|| Box::new(accelerator) as Box<_>)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_auth_core::jwt::Algorithm;

    #[test]
    fn the_self_test_turns_on_rsa_p256_and_p384_only() {
        let accelerator = Accelerator::new(RingCrypto);
        let mut on: Vec<&str> = accelerator.enabled().iter().map(|a| a.name()).collect();
        on.sort_unstable();
        assert_eq!(on, ["ES256", "ES384", "RS256", "RS384", "RS512"]);
        assert!(!accelerator.enabled().contains(&Algorithm::Es512));
    }
}
