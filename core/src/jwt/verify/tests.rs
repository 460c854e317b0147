use super::*;
use crate::jwt::test_support::{jwk, oct_jwk, secret64, sign, signing_key, SigningKey};
use sha2::Digest;
use testkit::jwt::KeyMaterial as M;
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
            SigningKey::hmac(secret64()),
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
    let other_rsa = key(jwk("rsa2048-b"));
    for alg in [Rs256, Rs384, Rs512, Ps256, Ps384, Ps512] {
        let sig = sign(alg, &signing_key("rsa2048"), input);
        assert!(!verify_signature(alg, &other_rsa, input, &sig), "{alg:?}");
    }
    let other_secret: Vec<u8> = secret64().iter().map(|b| b ^ 1).collect();
    for alg in [Hs256, Hs384, Hs512] {
        let sig = sign(alg, &SigningKey::hmac(other_secret.clone()), input);
        let (public, _) = pair("oct");
        assert!(!verify_signature(alg, &public, input, &sig), "{alg:?}");
    }
    let stranger = unknown_key(M::P256(
        p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap(),
    ));
    assert!(!verify_signature(
        Es256,
        &key(jwk("p256")),
        input,
        &sign(Es256, &stranger, input)
    ));
    let stranger = unknown_key(M::P384(
        p384::ecdsa::SigningKey::from_slice(&[7u8; 48]).unwrap(),
    ));
    assert!(!verify_signature(
        Es384,
        &key(jwk("p384")),
        input,
        &sign(Es384, &stranger, input)
    ));
    let stranger = unknown_key(M::P521(p521::SecretKey::from_slice(&[1u8; 66]).unwrap()));
    assert!(!verify_signature(
        Es512,
        &key(jwk("p521")),
        input,
        &sign(Es512, &stranger, input)
    ));
    let stranger = unknown_key(M::Ed25519(ed25519_dalek::SigningKey::from_bytes(
        &[9u8; 32],
    )));
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
            if other.material().kty() == public.material().kty() && other.material().supports(alg) {
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
    let M::P256(k) = signing_key("p256").material else {
        unreachable!()
    };
    let sig: p256::ecdsa::Signature = k.sign(input);
    let sig = sig.normalize_s().unwrap_or(sig);
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
    let s32 = SigningKey::hmac(vec![3u8; 32]);
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

/// A host that says yes to everything it is asked: whatever reaches it
/// passed only the checks in front of it.
struct YesHost;

impl SignatureAccelerator for YesHost {
    fn handles(&self, _alg: Algorithm) -> bool {
        true
    }

    fn verify(&self, _: Algorithm, _: &Jwk, _: &[u8], _: &[u8]) -> Option<bool> {
        Some(true)
    }
}

#[test]
fn high_s_twin_is_refused_on_every_ecdsa_path() {
    use crate::jwt::test_support::other_s;
    let input = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ0d2luIn0";
    for (alg, name) in [(Es256, "p256"), (Es384, "p384"), (Es512, "p521")] {
        let public = key(jwk(name));
        let low = sign(alg, &signing_key(name), input);
        let high = other_s(alg, &low);
        assert_ne!(low, high);
        // Both are valid ECDSA: the curve crate accepts the twin.
        let crate_accepts = match alg {
            Es256 => {
                use p256::ecdsa::signature::Verifier;
                let KeyMaterial::P256(k) = public.material() else {
                    unreachable!()
                };
                let sig = p256::ecdsa::Signature::from_slice(&high).unwrap();
                p256::ecdsa::VerifyingKey::from(k)
                    .verify(input, &sig)
                    .is_ok()
            }
            Es384 => {
                let KeyMaterial::P384(k) = public.material() else {
                    unreachable!()
                };
                check(&EcdsaP384, &k.into(), input, &high)
            }
            _ => {
                let KeyMaterial::P521(k) = public.material() else {
                    unreachable!()
                };
                let k = p521::ecdsa::VerifyingKey::from_affine(*k.as_affine()).unwrap();
                check(&EcdsaP521, &k, input, &high)
            }
        };
        assert!(crate_accepts, "{alg:?}: the twin is valid ECDSA");
        assert!(verify_signature(alg, &public, input, &low), "{alg:?}");
        assert!(!verify_signature(alg, &public, input, &high), "{alg:?}");
        // The host path: refused before the host is asked.
        let host: &dyn SignatureAccelerator = &YesHost;
        assert!(verify_signature_with(alg, &public, input, &low, Some(host)));
        assert!(!verify_signature_with(
            alg,
            &public,
            input,
            &high,
            Some(host)
        ));
    }
}

/// A signature whose R is the identity (a small-order point), made with
/// the key's own scalar: s = k·a, so [s]B = R + [k]A holds. ed25519-dalek's
/// `verify` (what jwt-compact's Ed25519 calls) accepts it; the filter does
/// not.
#[test]
fn ed25519_small_order_r_is_refused() {
    use curve25519_dalek::scalar::Scalar;
    use jwt_compact::alg::Ed25519;
    let M::Ed25519(secret) = signing_key("ed25519").material else {
        unreachable!()
    };
    let public = key(jwk("ed25519"));
    let KeyMaterial::Ed25519(vk) = public.material() else {
        unreachable!()
    };
    let input = b"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ3ZWFrIn0";
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let k = Scalar::from_bytes_mod_order_wide(
        &sha2::Sha512::new()
            .chain_update(identity)
            .chain_update(vk.as_bytes())
            .chain_update(input)
            .finalize()
            .into(),
    );
    let s = k * secret.to_scalar();
    let weak = [identity, s.to_bytes()].concat();
    assert!(
        check(&Ed25519, vk, input, &weak),
        "the crate's verify takes it"
    );
    assert!(!verify_signature(EdDsa, &public, input, &weak));
    assert!(!verify_signature_with(
        EdDsa,
        &public,
        input,
        &weak,
        Some(&YesHost)
    ));
    // An ordinary signature passes the same check.
    assert!(verify_signature(
        EdDsa,
        &public,
        input,
        &sign(EdDsa, &signing_key("ed25519"), input)
    ));
}

#[test]
fn the_host_decides_what_it_handles_and_falls_back_when_it_cannot() {
    /// Handles RS256 only and cannot answer.
    struct Failing;
    impl SignatureAccelerator for Failing {
        fn handles(&self, alg: Algorithm) -> bool {
            alg == Rs256
        }
        fn verify(&self, _: Algorithm, _: &Jwk, _: &[u8], _: &[u8]) -> Option<bool> {
            None
        }
    }
    let input = b"x.y";
    let public = key(jwk("rsa2048"));
    let good = sign(Rs256, &signing_key("rsa2048"), input);
    let mut bad = good.clone();
    bad[3] ^= 1;
    // No answer from the host: the wasm path decides.
    assert!(verify_signature_with(
        Rs256,
        &public,
        input,
        &good,
        Some(&Failing)
    ));
    assert!(!verify_signature_with(
        Rs256,
        &public,
        input,
        &bad,
        Some(&Failing)
    ));
    // Not handled: never asked (YesHost would say yes to the bad one).
    struct Rs256Only;
    impl SignatureAccelerator for Rs256Only {
        fn handles(&self, alg: Algorithm) -> bool {
            alg == Rs256
        }
        fn verify(&self, _: Algorithm, _: &Jwk, _: &[u8], _: &[u8]) -> Option<bool> {
            Some(true)
        }
    }
    let ps = sign(Ps256, &signing_key("rsa2048"), input);
    let mut bad_ps = ps.clone();
    bad_ps[3] ^= 1;
    assert!(!verify_signature_with(
        Ps256,
        &public,
        input,
        &bad_ps,
        Some(&Rs256Only)
    ));
    assert!(verify_signature_with(
        Rs256,
        &public,
        input,
        &bad,
        Some(&Rs256Only)
    ));
    // A key that does not fit never reaches the host.
    assert!(!verify_signature_with(
        Es256,
        &public,
        input,
        &good,
        Some(&YesHost)
    ));
}

/// A key of no fixture, for signatures no configured key can verify.
fn unknown_key(material: M) -> SigningKey {
    SigningKey {
        material,
        kid: None,
    }
}
