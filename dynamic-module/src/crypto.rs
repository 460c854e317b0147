//! RSA PKCS#1 v1.5 and ECDSA signatures checked by `aws-lc-rs` (a reviewed
//! native crate over AWS-LC, the BoringSSL fork whose P-256 and RSA code
//! Envoy's own `jwt_authn` runs), as the wasm build checks them with Envoy's
//! BoringSSL: through the core's [`Accelerator`], which converts JWS
//! signatures to the DER form, applies the filter's own signature rules
//! first, and turns an algorithm on only when its known-answer self-test
//! passes (RS256/384/512, ES256, ES384 and ES512 here).
//!
//! Each public key is parsed once, on its first signature, and kept: the
//! key set's keys are few and long-lived, and turning the DER into AWS-LC's
//! key (with its on-curve and size checks) is a sizeable part of one check.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use jwt_auth_core::host_crypto::{Accelerator, NativeCrypto};
use spki::SubjectPublicKeyInfoRef;

/// `id-ecPublicKey` and `rsaEncryption`.
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// The curve each ECDSA hash goes with (JWA: ES256 is P-256, ES384 P-384,
/// ES512 P-521).
const P256: &str = "1.2.840.10045.3.1.7";
const P384: &str = "1.3.132.0.34";
const P521: &str = "1.3.132.0.35";

/// Keys kept per hash before the cache starts over: far above any key set,
/// it bounds the memory a stream of key rotations can take.
const MAX_KEYS_PER_HASH: usize = 256;

/// One hash's keys, by the SPKI the core keeps, as [`AwsLcCrypto::parse`]
/// answered for them: `None` for a key no algorithm here takes (the core
/// decides those), `Some(Err)` for one the algorithm refuses.
type ParsedKeys = HashMap<Box<[u8]>, Option<Result<ParsedPublicKey, ()>>>;

#[derive(Default)]
pub struct AwsLcCrypto {
    /// By hash: SHA-256, SHA-384, SHA-512 (an RSA key may serve all three).
    keys: Mutex<[ParsedKeys; 3]>,
}

impl AwsLcCrypto {
    fn hash_slot(hash: &str) -> Option<usize> {
        match hash {
            "sha256" => Some(0),
            "sha384" => Some(1),
            "sha512" => Some(2),
            _ => None,
        }
    }

    fn algorithm(key_oid: &str, hash: &str) -> Option<&'static dyn VerificationAlgorithm> {
        Some(match (key_oid, hash) {
            (RSA_ENCRYPTION, "sha256") => &signature::RSA_PKCS1_2048_8192_SHA256,
            (RSA_ENCRYPTION, "sha384") => &signature::RSA_PKCS1_2048_8192_SHA384,
            (RSA_ENCRYPTION, "sha512") => &signature::RSA_PKCS1_2048_8192_SHA512,
            (EC_PUBLIC_KEY, "sha256") => &signature::ECDSA_P256_SHA256_ASN1,
            (EC_PUBLIC_KEY, "sha384") => &signature::ECDSA_P384_SHA384_ASN1,
            (EC_PUBLIC_KEY, "sha512") => &signature::ECDSA_P521_SHA512_ASN1,
            _ => return None,
        })
    }

    /// The key as `hash`'s algorithm takes it: `None` for another key type
    /// or curve; `Some(Err)` for a key of the right type that the algorithm
    /// refuses (such as an RSA modulus above 8192 bits), whose signatures
    /// fail.
    fn parse(hash: &str, spki_der: &[u8]) -> Option<Result<ParsedPublicKey, ()>> {
        let info = SubjectPublicKeyInfoRef::try_from(spki_der).ok()?;
        let key_oid = info.algorithm.oid.to_string();
        let algorithm = Self::algorithm(&key_oid, hash)?;
        if key_oid == EC_PUBLIC_KEY {
            // The curve follows from the algorithm: a key of another curve
            // must not reach it under this one.
            let curve = info.algorithm.parameters_oid().ok()?.to_string();
            let expected = match hash {
                "sha256" => P256,
                "sha384" => P384,
                _ => P521,
            };
            if curve != expected {
                return None;
            }
        }
        // RSA: the PKCS#1 RSAPublicKey; EC: the uncompressed point.
        let key = info.subject_public_key.as_bytes()?;
        Some(ParsedPublicKey::new(algorithm, key).map_err(|_| ()))
    }

    fn check(key: &ParsedPublicKey, signature: &[u8], text: &[u8]) -> bool {
        key.verify_sig(text, signature).is_ok()
    }
}

impl NativeCrypto for AwsLcCrypto {
    /// `None` for what is not checked here (another key type or curve, a
    /// key that does not parse): the core's own verifier decides then.
    fn verify(&self, hash: &str, spki_der: &[u8], signature: &[u8], text: &[u8]) -> Option<bool> {
        let slot = Self::hash_slot(hash)?;
        // Decisions already take turns on the worker's lock: this one is
        // never contended.
        let mut keys = self.keys.lock().ok()?;
        let keys = keys.get_mut(slot)?;
        let answer = |parsed: &Option<Result<ParsedPublicKey, ()>>| {
            parsed.as_ref().map(|key| {
                key.as_ref()
                    .is_ok_and(|key| Self::check(key, signature, text))
            })
        };
        if let Some(parsed) = keys.get(spki_der) {
            return answer(parsed);
        }
        // Parsed once, refused keys included: a key the algorithm refuses
        // stays refused.
        let parsed = Self::parse(hash, spki_der);
        let result = answer(&parsed);
        if keys.len() >= MAX_KEYS_PER_HASH {
            keys.clear();
        }
        keys.insert(spki_der.into(), parsed);
        result
    }
}

/// The accelerator for a configuration, or `None` when it is turned off
/// (`native_verification: false`) or no algorithm passed its self-test;
/// with the log line that says which, in the wasm build's words.
pub fn accelerator(
    allowed: bool,
) -> (
    Option<Box<dyn jwt_auth_core::jwt::SignatureAccelerator>>,
    String,
) {
    if !allowed {
        return (
            None,
            "jwt-auth: native signature verification turned off (native_verification: false); \
             all algorithms run in the core"
                .into(),
        );
    }
    let accelerator = Accelerator::new(AwsLcCrypto::default());
    let on: Vec<&str> = accelerator.enabled().iter().map(|a| a.name()).collect();
    if on.is_empty() {
        return (
            None,
            "jwt-auth: no native signature verification (no algorithm passed its AWS-LC \
             self-test); all algorithms run in the core"
                .into(),
        );
    }
    let line = format!(
        "jwt-auth: native signature verification for {} (AWS-LC)",
        on.join(", ")
    );
    (Some(Box::new(accelerator)), line)
}

#[cfg(test)]
mod tests;
