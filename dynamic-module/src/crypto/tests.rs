use super::*;
use jwt_auth_core::jwt::{Algorithm, Jwk, KeySet, SignatureAccelerator};
use serde_json::json;
use testkit::jwt::Key;

const INPUT: &[u8] = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0";

fn public(key: &Key) -> Jwk {
    let set = KeySet::from_jwks(&json!({ "keys": [key.jwk(None)] })).unwrap();
    set.keys()[0].clone()
}

fn accelerator() -> Accelerator<AwsLcCrypto> {
    Accelerator::new(AwsLcCrypto::default())
}

#[test]
fn the_self_test_turns_on_rsa_and_every_ecdsa_curve() {
    let accelerator = accelerator();
    let mut on: Vec<&str> = accelerator.enabled().iter().map(|a| a.name()).collect();
    on.sort_unstable();
    assert_eq!(on, ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512"]);
    assert!(!accelerator.enabled().contains(&Algorithm::Ps256));
}

#[test]
fn valid_signatures_pass_and_altered_ones_fail_natively() {
    let accelerator = accelerator();
    for (key, alg) in [
        (Key::rsa2048(), Algorithm::Rs256),
        (Key::rsa3072(), Algorithm::Rs384),
        (Key::rsa2048(), Algorithm::Rs512),
        (Key::p256(), Algorithm::Es256),
        (Key::p384(), Algorithm::Es384),
        (Key::p521(), Algorithm::Es512),
    ] {
        let jwk = public(&key);
        let signature = key.sign(alg.name(), INPUT);
        // Twice: the first check parses the key, the second reuses it.
        for _ in 0..2 {
            let ok = SignatureAccelerator::verify(&accelerator, alg, &jwk, INPUT, &signature);
            assert_eq!(ok, Some(true), "{}", alg.name());
        }
        let mut altered = INPUT.to_vec();
        altered[0] ^= 1;
        let bad = SignatureAccelerator::verify(&accelerator, alg, &jwk, &altered, &signature);
        assert_eq!(bad, Some(false), "{}", alg.name());
    }
}

#[test]
fn one_rsa_key_is_checked_under_each_hash() {
    let accelerator = accelerator();
    let key = Key::rsa2048();
    let jwk = public(&key);
    let rs256 = key.sign("RS256", INPUT);
    let rs512 = key.sign("RS512", INPUT);
    let check = |alg, sig: &[u8]| SignatureAccelerator::verify(&accelerator, alg, &jwk, INPUT, sig);
    assert_eq!(check(Algorithm::Rs256, &rs256), Some(true));
    assert_eq!(check(Algorithm::Rs512, &rs512), Some(true));
    // A signature made with one hash does not pass under another.
    assert_eq!(check(Algorithm::Rs512, &rs256), Some(false));
    assert_eq!(check(Algorithm::Rs256, &rs512), Some(false));
}

#[test]
fn a_key_of_another_curve_is_left_to_the_core() {
    let crypto = AwsLcCrypto::default();
    let p384 = public(&Key::p384());
    let p256 = public(&Key::p256());
    let der = |jwk: &Jwk| jwk.spki().unwrap().to_vec();
    // Whatever the signature: the curve does not go with the hash.
    assert_eq!(
        crypto.verify("sha256", &der(&p384), &[0x30, 0], INPUT),
        None
    );
    assert_eq!(
        crypto.verify("sha384", &der(&p256), &[0x30, 0], INPUT),
        None
    );
    assert_eq!(
        crypto.verify("sha512", &der(&p256), &[0x30, 0], INPUT),
        None
    );
    // Asked again, the remembered answer is the same.
    assert_eq!(
        crypto.verify("sha256", &der(&p384), &[0x30, 0], INPUT),
        None
    );
}

#[test]
fn keys_and_hashes_not_checked_here_are_left_to_the_core() {
    let crypto = AwsLcCrypto::default();
    let ed25519 = public(&Key::ed25519());
    let rsa = public(&Key::rsa2048());
    let sig = Key::rsa2048().sign("RS256", INPUT);
    let ed25519 = ed25519.spki_der().unwrap();
    assert_eq!(crypto.verify("sha256", &ed25519, &sig, INPUT), None);
    assert_eq!(
        crypto.verify("sha1", rsa.spki().unwrap(), &sig, INPUT),
        None
    );
    assert_eq!(crypto.verify("sha256", b"not a key", &sig, INPUT), None);
}
