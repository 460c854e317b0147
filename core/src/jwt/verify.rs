//! Signature verification, one function per algorithm family.
//!
//! Everything funnels through [`verify_signature`] so a host-accelerated
//! backend (e.g. native RSA PKCS#1 or ECDSA via [`super::Jwk::spki_der`]) can
//! later be slotted in at one place.

use hmac::Mac;
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::ecdsa::EcPublicKey;
use super::{Algorithm, Jwk, KeyMaterial};

/// True when `signature` over `signing_input` verifies with `key` under `alg`.
///
/// Returns false, never panics, for any key that does not fit `alg` (see
/// [`Jwk::fits`]) and for signatures of the wrong length or encoding.
pub fn verify_signature(alg: Algorithm, key: &Jwk, signing_input: &[u8], signature: &[u8]) -> bool {
    // Re-checked here so that no caller can bypass the key-type rules that
    // prevent algorithm confusion.
    if !key.fits(alg) {
        return false;
    }
    use Algorithm::*;
    match (alg, key.material()) {
        (Hs256, KeyMaterial::Oct(s)) => hmac_matches(s.sha256(), signing_input, signature),
        (Hs384, KeyMaterial::Oct(s)) => hmac_matches(s.sha384(), signing_input, signature),
        (Hs512, KeyMaterial::Oct(s)) => hmac_matches(s.sha512(), signing_input, signature),
        (Rs256, KeyMaterial::Rsa(k)) => rsa_pkcs1::<Sha256>(k, signing_input, signature),
        (Rs384, KeyMaterial::Rsa(k)) => rsa_pkcs1::<Sha384>(k, signing_input, signature),
        (Rs512, KeyMaterial::Rsa(k)) => rsa_pkcs1::<Sha512>(k, signing_input, signature),
        (Ps256, KeyMaterial::Rsa(k)) => rsa_pss::<Sha256>(k, signing_input, signature),
        (Ps384, KeyMaterial::Rsa(k)) => rsa_pss::<Sha384>(k, signing_input, signature),
        (Ps512, KeyMaterial::Rsa(k)) => rsa_pss::<Sha512>(k, signing_input, signature),
        (Es256, KeyMaterial::P256(k)) => es256(k, signing_input, signature),
        (Es384, KeyMaterial::P384(k)) => ecdsa_wide::<Sha384>(k, signing_input, signature),
        (Es512, KeyMaterial::P521(k)) => ecdsa_wide::<Sha512>(k, signing_input, signature),
        (EdDsa, KeyMaterial::Ed25519(k)) => ed25519(k, signing_input, signature),
        _ => false,
    }
}

/// Finishes the keyed HMAC state over `input` and checks the tag against
/// `signature` in constant time (the crate's comparison), so the time taken
/// does not reveal how many leading bytes of a forged tag were right. A tag
/// of another length is refused.
fn hmac_matches<M: Mac + Clone>(keyed: &M, input: &[u8], signature: &[u8]) -> bool {
    let mut mac = keyed.clone();
    mac.update(input);
    mac.verify_slice(signature).is_ok()
}

/// RSASSA-PKCS1-v1_5 (RS*). The rsa crate refuses signatures whose length is
/// not the modulus length; the OID bound gives it the DigestInfo prefix.
fn rsa_pkcs1<D>(key: &rsa::RsaPublicKey, input: &[u8], signature: &[u8]) -> bool
where
    D: Digest + rsa::pkcs8::AssociatedOid,
{
    let hashed = D::digest(input);
    key.verify(rsa::Pkcs1v15Sign::new::<D>(), &hashed, signature)
        .is_ok()
}

/// RSASSA-PSS (PS*) with MGF1 over the same hash and a salt as long as the
/// hash output, as RFC 7518 §3.5 requires; the rsa crate enforces that salt
/// length exactly.
fn rsa_pss<D>(key: &rsa::RsaPublicKey, input: &[u8], signature: &[u8]) -> bool
where
    D: 'static + Digest + sha2::digest::DynDigest + Send + Sync,
{
    let hashed = D::digest(input);
    key.verify(rsa::Pss::new::<D>(), &hashed, signature).is_ok()
}

/// ECDSA signatures in JWS are raw r || s, each the field size (RFC 7518
/// §3.4); `from_slice` refuses any other length and zero or out-of-range
/// scalars.
fn es256(key: &p256::PublicKey, input: &[u8], signature: &[u8]) -> bool {
    use p256::ecdsa::signature::Verifier;
    let Ok(sig) = p256::ecdsa::Signature::from_slice(signature) else {
        return false;
    };
    p256::ecdsa::VerifyingKey::from(key)
        .verify(input, &sig)
        .is_ok()
}

/// ES384 and ES512 (see [`super::ecdsa`] for why not the p384/p521 crates).
fn ecdsa_wide<D: Digest>(key: &EcPublicKey, input: &[u8], signature: &[u8]) -> bool {
    key.verify_digest(&D::digest(input), signature)
}

/// Strict verification refuses small-order components and non-canonical
/// encodings, so one signature cannot verify for several messages or keys.
fn ed25519(key: &ed25519_dalek::VerifyingKey, input: &[u8], signature: &[u8]) -> bool {
    let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
        return false;
    };
    key.verify_strict(input, &sig).is_ok()
}

/// A faster verifier for some algorithms (the proxy's native crypto).
/// `None` means "not handled here": the pure-Rust path decides.
pub trait SignatureAccelerator {
    fn verify(
        &self,
        alg: Algorithm,
        key: &Jwk,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Option<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::test_support::{jwk, oct_jwk, secret64, sign, signing_key, SigningKey};
    use Algorithm::*;

    fn key(v: serde_json::Value) -> Jwk {
        Jwk::from_value(&v).unwrap()
    }

    /// (alg, fixture name) for every algorithm; HS uses a generated secret.
    fn cases() -> Vec<(Algorithm, &'static str)> {
        vec![
            (Hs256, "oct"),
            (Hs384, "oct"),
            (Hs512, "oct"),
            (Rs256, "rsa2048"),
            (Rs384, "rsa2048"),
            (Rs512, "rsa2048"),
            (Ps256, "rsa2048"),
            (Ps384, "rsa2048"),
            (Ps512, "rsa2048"),
            (Rs256, "rsa2560"),
            (Ps512, "rsa2560"),
            (Rs384, "rsa3072"),
            (Ps256, "rsa3072"),
            (Es256, "p256"),
            (Es384, "p384"),
            (Es512, "p521"),
            (EdDsa, "ed25519"),
        ]
    }

    fn pair(name: &str) -> (Jwk, SigningKey) {
        if name == "oct" {
            (
                key(oct_jwk(&secret64(), None)),
                SigningKey::Hmac(secret64()),
            )
        } else {
            (key(jwk(name)), signing_key(name))
        }
    }

    #[test]
    fn every_algorithm_verifies() {
        let input = b"eyJhbGciOiJ4In0.eyJzdWIiOiJ5In0";
        for (alg, name) in cases() {
            let (public, private) = pair(name);
            let sig = sign(alg, &private, input);
            assert!(
                verify_signature(alg, &public, input, &sig),
                "{alg:?} {name}"
            );
        }
    }

    #[test]
    fn tampered_input_or_signature_fails() {
        let input = b"eyJhbGciOiJ4In0.eyJzdWIiOiJ5In0";
        for (alg, name) in cases() {
            let (public, private) = pair(name);
            let sig = sign(alg, &private, input);
            let mut other = input.to_vec();
            other[20] ^= 1;
            assert!(
                !verify_signature(alg, &public, &other, &sig),
                "{alg:?} {name}"
            );
            let mut bad = sig.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(
                !verify_signature(alg, &public, input, &bad),
                "{alg:?} {name}"
            );
            bad = sig.clone();
            bad[0] ^= 0x80;
            assert!(
                !verify_signature(alg, &public, input, &bad),
                "{alg:?} {name}"
            );
        }
    }

    #[test]
    fn wrong_lengths_fail_without_panicking() {
        let input = b"a.b";
        for (alg, name) in cases() {
            let (public, private) = pair(name);
            let sig = sign(alg, &private, input);
            let mut lengths = vec![
                0, 1, 31, 32, 63, 64, 65, 96, 131, 132, 133, 255, 256, 257, 4096,
            ];
            lengths.retain(|&l| l != sig.len());
            for len in lengths {
                let mut s = sig.clone();
                s.resize(len, 0x5a);
                assert!(
                    !verify_signature(alg, &public, input, &s),
                    "{alg:?} {name} {len}"
                );
            }
            // Appending to a valid signature must not be ignored.
            let mut longer = sig.clone();
            longer.push(0);
            assert!(
                !verify_signature(alg, &public, input, &longer),
                "{alg:?} {name}"
            );
            // Nor is a truncated one (e.g. a truncated HMAC tag).
            assert!(!verify_signature(
                alg,
                &public,
                input,
                &sig[..sig.len() - 1]
            ));
        }
    }

    #[test]
    fn wrong_key_fails() {
        let input = b"x.y";
        let other_rsa = key(jwk("rsa2048b"));
        for alg in [Rs256, Rs384, Rs512, Ps256, Ps384, Ps512] {
            let sig = sign(alg, &signing_key("rsa2048"), input);
            assert!(!verify_signature(alg, &other_rsa, input, &sig), "{alg:?}");
        }
        let other_secret: Vec<u8> = secret64().iter().map(|b| b ^ 1).collect();
        for alg in [Hs256, Hs384, Hs512] {
            let sig = sign(alg, &SigningKey::Hmac(other_secret.clone()), input);
            let (public, _) = pair("oct");
            assert!(!verify_signature(alg, &public, input, &sig), "{alg:?}");
        }
        let stranger = SigningKey::P256(p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap());
        assert!(!verify_signature(
            Es256,
            &key(jwk("p256")),
            input,
            &sign(Es256, &stranger, input)
        ));
        let stranger = SigningKey::P384(p384::ecdsa::SigningKey::from_slice(&[7u8; 48]).unwrap());
        assert!(!verify_signature(
            Es384,
            &key(jwk("p384")),
            input,
            &sign(Es384, &stranger, input)
        ));
        let stranger = SigningKey::P521(p521::ecdsa::SigningKey::from_slice(&[1u8; 66]).unwrap());
        assert!(!verify_signature(
            Es512,
            &key(jwk("p521")),
            input,
            &sign(Es512, &stranger, input)
        ));
        let stranger = SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]));
        assert!(!verify_signature(
            EdDsa,
            &key(jwk("ed25519")),
            input,
            &sign(EdDsa, &stranger, input)
        ));
    }

    #[test]
    fn pkcs1_and_pss_are_not_interchangeable() {
        let input = b"x.y";
        let public = key(jwk("rsa2048"));
        let private = signing_key("rsa2048");
        let pairs = [
            (Rs256, Ps256),
            (Rs384, Ps384),
            (Rs512, Ps512),
            (Rs256, Rs384),
            (Ps256, Ps512),
        ];
        for (a, b) in pairs {
            assert!(
                !verify_signature(b, &public, input, &sign(a, &private, input)),
                "{a:?}->{b:?}"
            );
            assert!(
                !verify_signature(a, &public, input, &sign(b, &private, input)),
                "{b:?}->{a:?}"
            );
        }
    }

    #[test]
    fn mismatched_key_type_never_verifies() {
        let input = b"x.y";
        // A valid ES256 signature offered under every other algorithm with
        // every other key type.
        let keys: Vec<Jwk> = ["rsa2048", "p256", "p384", "p521", "ed25519"]
            .iter()
            .map(|n| key(jwk(n)))
            .chain([key(oct_jwk(&secret64(), None))])
            .collect();
        for (alg, name) in cases() {
            let (public, private) = pair(name);
            let sig = sign(alg, &private, input);
            for other in &keys {
                if other.material().kty() == public.material().kty()
                    && other.material().supports(alg)
                {
                    continue;
                }
                assert!(!verify_signature(alg, other, input, &sig), "{alg:?} {name}");
            }
        }
    }

    #[test]
    fn ecdsa_der_signature_is_refused() {
        use p256::ecdsa::signature::Signer;
        let input = b"x.y";
        let SigningKey::P256(k) = signing_key("p256") else {
            unreachable!()
        };
        let sig: p256::ecdsa::Signature = k.sign(input);
        let der = sig.to_der();
        assert!(verify_signature(
            Es256,
            &key(jwk("p256")),
            input,
            &sig.to_bytes()
        ));
        assert!(!verify_signature(
            Es256,
            &key(jwk("p256")),
            input,
            der.as_bytes()
        ));
    }

    #[test]
    fn ecdsa_zero_signature_is_refused() {
        for (alg, name, len) in [
            (Es256, "p256", 64),
            (Es384, "p384", 96),
            (Es512, "p521", 132),
        ] {
            let k = key(jwk(name));
            assert!(!verify_signature(alg, &k, b"x.y", &vec![0u8; len]));
            assert!(!verify_signature(alg, &k, b"x.y", &vec![0xffu8; len]));
        }
    }

    #[test]
    fn key_restrictions_are_enforced_here_too() {
        let input = b"x.y";
        let private = signing_key("rsa2048");
        let restricted = key(crate::jwt::test_support::jwk_with(
            "rsa2048",
            serde_json::json!({"alg": "RS256"}),
        ));
        assert!(verify_signature(
            Rs256,
            &restricted,
            input,
            &sign(Rs256, &private, input)
        ));
        assert!(!verify_signature(
            Ps256,
            &restricted,
            input,
            &sign(Ps256, &private, input)
        ));
        let enc = key(crate::jwt::test_support::jwk_with(
            "rsa2048",
            serde_json::json!({"use": "enc"}),
        ));
        assert!(!verify_signature(
            Rs256,
            &enc,
            input,
            &sign(Rs256, &private, input)
        ));
        // A 32-byte secret is enough for HS256 only.
        let short = key(oct_jwk(&[3u8; 32], None));
        let s32 = SigningKey::Hmac(vec![3u8; 32]);
        assert!(verify_signature(
            Hs256,
            &short,
            input,
            &sign(Hs256, &s32, input)
        ));
        assert!(!verify_signature(
            Hs384,
            &short,
            input,
            &sign(Hs384, &s32, input)
        ));
        assert!(!verify_signature(
            Hs512,
            &short,
            input,
            &sign(Hs512, &s32, input)
        ));
    }
}
