//! Signature verification: one dispatch over jwt-compact's `Algorithm` trait.
//!
//! jwt-compact (0.8) is the signature layer wherever it has the algorithm:
//! HS256/384/512 (`Hs256`...), RS*/PS* (`Rsa`, over the rsa crate), ES256
//! (`Es256`, over p256) and EdDSA (`Ed25519`, over ed25519-dalek). Its
//! `Algorithm` trait is open, so the rest are implementations of it here:
//! [`EcdsaP384`] and [`EcdsaP521`] over the p384 and p521 crates
//! (jwt-compact has neither curve), and [`Native`], the proxy's own crypto behind
//! [`SignatureAccelerator`]. Every signature then goes through [`check`],
//! which does what jwt-compact's validator does with a signature (length,
//! decoding, `verify_signature`) without its claims step: the claims are the
//! filter's located JSON (see `token.rs` for why the token layer is the
//! filter's own).
//!
//! Where the filter is stricter than jwt-compact the check sits in front of
//! it, in [`verify_signature_with`], on the wasm and the host path alike:
//! - the key must fit the algorithm ([`Jwk::fits`]: key type, curve, the
//!   JWK's own `alg`, `use`/`key_ops`, the HMAC secret length floors), so no
//!   caller can skip the rules that prevent algorithm confusion;
//! - ECDSA signatures must be low-S (`s <= n/2`, the curve crates'
//!   `normalize_s`): ECDSA accepts `s` and `n - s` alike, and a token with
//!   two valid spellings would slip past a denylist keyed on its hash;
//! - an Ed25519 signature's `R` must not be a small-order point:
//!   jwt-compact verifies with ed25519-dalek's `verify`, and the filter
//!   holds signatures to `verify_strict`'s rule on `R` (an honest signer
//!   never makes such an `R`, and small-order components are where
//!   Ed25519 verifiers disagree about what is valid).
//!
//! RSA key size bounds are applied when keys are loaded (`jwk.rs`).

use std::borrow::Cow;
use std::convert::Infallible;
use std::num::NonZeroUsize;

use jwt_compact::alg as jc;
use jwt_compact::{Algorithm as JwsAlgorithm, AlgorithmSignature};

use super::{Algorithm, Jwk, KeyMaterial};

/// True when `signature` over `signing_input` verifies with `key` under `alg`,
/// in wasm.
///
/// Returns false, never panics, for any key that does not fit `alg` (see
/// [`Jwk::fits`]) and for signatures of the wrong length or encoding.
pub fn verify_signature(alg: Algorithm, key: &Jwk, signing_input: &[u8], signature: &[u8]) -> bool {
    verify_signature_with(alg, key, signing_input, signature, None)
}

/// [`verify_signature`], on the host's verifier when it handles `alg`.
pub fn verify_signature_with(
    alg: Algorithm,
    key: &Jwk,
    signing_input: &[u8],
    signature: &[u8],
    host: Option<&dyn SignatureAccelerator>,
) -> bool {
    if !key.fits(alg) || !canonical(alg, signature) {
        return false;
    }
    match host {
        Some(host) if host.handles(alg) => {
            check(&Native { host, alg }, key, signing_input, signature)
        }
        _ => in_wasm(alg, key, signing_input, signature),
    }
}

/// The pure-Rust path: one `Algorithm` per JWS algorithm.
fn in_wasm(alg: Algorithm, key: &Jwk, input: &[u8], signature: &[u8]) -> bool {
    use Algorithm::*;
    match (alg, key.material()) {
        (Hs256, KeyMaterial::Oct(s)) => check(&jc::Hs256, s.hs256(), input, signature),
        (Hs384, KeyMaterial::Oct(s)) => check(&jc::Hs384, s.hs384(), input, signature),
        (Hs512, KeyMaterial::Oct(s)) => check(&jc::Hs512, s.hs512(), input, signature),
        (Rs256, KeyMaterial::Rsa(k)) => check(&jc::Rsa::rs256(), k, input, signature),
        (Rs384, KeyMaterial::Rsa(k)) => check(&jc::Rsa::rs384(), k, input, signature),
        (Rs512, KeyMaterial::Rsa(k)) => check(&jc::Rsa::rs512(), k, input, signature),
        (Ps256, KeyMaterial::Rsa(k)) => check(&jc::Rsa::ps256(), k, input, signature),
        (Ps384, KeyMaterial::Rsa(k)) => check(&jc::Rsa::ps384(), k, input, signature),
        (Ps512, KeyMaterial::Rsa(k)) => check(&jc::Rsa::ps512(), k, input, signature),
        (Es256, KeyMaterial::P256(k)) => check(&jc::Es256, &k.into(), input, signature),
        (Es384, KeyMaterial::P384(k)) => check(&EcdsaP384, &k.into(), input, signature),
        (Es512, KeyMaterial::P521(k)) => p521::ecdsa::VerifyingKey::from_affine(*k.as_affine())
            .is_ok_and(|k| check(&EcdsaP521, &k, input, signature)),
        (EdDsa, KeyMaterial::Ed25519(k)) => check(&jc::Ed25519, k, input, signature),
        _ => false,
    }
}

/// What jwt-compact's validator does with a signature: the algorithm's
/// fixed length when it has one, the decoding, then `verify_signature`.
/// (The length comes first: some decoders assume it.)
fn check<A: JwsAlgorithm>(alg: &A, key: &A::VerifyingKey, input: &[u8], signature: &[u8]) -> bool {
    if A::Signature::LENGTH.is_some_and(|len| len.get() != signature.len()) {
        return false;
    }
    A::Signature::try_from_slice(signature).is_ok_and(|sig| alg.verify_signature(&sig, key, input))
}

/// The signature rules the filter adds to the crates' (see the module
/// documentation): one spelling per ECDSA signature, no small-order `R`.
/// An ECDSA signature that does not even decode (wrong length, a zero or
/// out-of-range scalar) is refused here too.
fn canonical(alg: Algorithm, signature: &[u8]) -> bool {
    use Algorithm::*;
    match alg {
        // `normalize_s` gives the other spelling only when `s` is above n/2.
        Es256 => {
            p256::ecdsa::Signature::from_slice(signature).is_ok_and(|s| s.normalize_s().is_none())
        }
        Es384 => {
            p384::ecdsa::Signature::from_slice(signature).is_ok_and(|s| s.normalize_s().is_none())
        }
        Es512 => {
            p521::ecdsa::Signature::from_slice(signature).is_ok_and(|s| s.normalize_s().is_none())
        }
        EdDsa => r_has_large_order(signature),
        _ => true,
    }
}

/// An Ed25519 signature is `R || S`; `R` must decode to a point of large
/// order (what ed25519-dalek's `verify_strict` requires of it).
fn r_has_large_order(signature: &[u8]) -> bool {
    use curve25519_dalek::edwards::CompressedEdwardsY;
    signature
        .first_chunk::<32>()
        .and_then(|r| CompressedEdwardsY(*r).decompress())
        .is_some_and(|r| !r.is_small_order())
}

/// Signatures of the ES* algorithms jwt-compact does not have, as raw
/// `r || s` of the curve's size (RFC 7518 §3.4); decoding refuses zero and
/// out-of-range scalars. The filter only verifies, so these algorithms have
/// no signing key (`Infallible`).
macro_rules! ecdsa_algorithm {
    ($(#[$doc:meta])* $alg:ident, $signature:ident, $krate:ident, $name:literal, $len:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $alg;

        /// A decoded signature of the algorithm.
        #[derive(Clone, Debug)]
        pub struct $signature($krate::ecdsa::Signature);

        impl AlgorithmSignature for $signature {
            const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new($len);

            fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
                $krate::ecdsa::Signature::from_slice(slice)
                    .map($signature)
                    .map_err(|_| anyhow::Error::msg("not an ECDSA signature of the curve"))
            }

            fn as_bytes(&self) -> Cow<'_, [u8]> {
                Cow::Owned(self.0.to_bytes().to_vec())
            }
        }

        impl JwsAlgorithm for $alg {
            type SigningKey = Infallible;
            type VerifyingKey = $krate::ecdsa::VerifyingKey;
            type Signature = $signature;

            fn name(&self) -> Cow<'static, str> {
                Cow::Borrowed($name)
            }

            fn sign(&self, signing_key: &Infallible, _message: &[u8]) -> $signature {
                match *signing_key {}
            }

            fn verify_signature(
                &self,
                signature: &$signature,
                verifying_key: &Self::VerifyingKey,
                message: &[u8],
            ) -> bool {
                use $krate::ecdsa::signature::Verifier;
                verifying_key.verify(message, &signature.0).is_ok()
            }
        }
    };
}

ecdsa_algorithm!(
    /// ES384: ECDSA over P-384 with SHA-384, by the p384 crate.
    EcdsaP384,
    EcdsaP384Signature,
    p384,
    "ES384",
    96
);
ecdsa_algorithm!(
    /// ES512: ECDSA over P-521 with SHA-512, by the p521 crate.
    EcdsaP521,
    EcdsaP521Signature,
    p521,
    "ES512",
    132
);

/// A faster verifier for some algorithms (the proxy's native crypto).
pub trait SignatureAccelerator {
    /// Whether signatures of `alg` go to this verifier.
    fn handles(&self, alg: Algorithm) -> bool;

    /// Verifies a JWS signature (for ECDSA, raw `r || s`). `None` when the
    /// verifier could not answer (its call failed): the pure-Rust path
    /// decides then.
    fn verify(
        &self,
        alg: Algorithm,
        key: &Jwk,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Option<bool>;
}

/// The host's verifier as one more `Algorithm`, for the algorithms it
/// [handles](SignatureAccelerator::handles). The key is the whole [`Jwk`]:
/// the host takes its DER form, the fallback its parsed material.
struct Native<'a> {
    host: &'a dyn SignatureAccelerator,
    alg: Algorithm,
}

/// A signature as the token carries it; the host decodes it.
struct RawSignature(Vec<u8>);

impl AlgorithmSignature for RawSignature {
    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        Ok(RawSignature(slice.to_vec()))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
}

impl JwsAlgorithm for Native<'_> {
    type SigningKey = Infallible;
    type VerifyingKey = Jwk;
    type Signature = RawSignature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.alg.name())
    }

    fn sign(&self, signing_key: &Infallible, _message: &[u8]) -> RawSignature {
        match *signing_key {}
    }

    fn verify_signature(&self, signature: &RawSignature, key: &Jwk, message: &[u8]) -> bool {
        self.host
            .verify(self.alg, key, message, &signature.0)
            .unwrap_or_else(|| in_wasm(self.alg, key, message, &signature.0))
    }
}

#[cfg(test)]
mod tests;
