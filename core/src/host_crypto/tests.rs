use super::*;
use crate::jwt::test_support::{jwk, sign, signing_key};
use crate::jwt::Jwk;
use p256::pkcs8::DecodePublicKey;
use sha2::{Sha256, Sha384, Sha512};
use std::cell::Cell;

/// A native-crypto stand-in with the host's contract: SPKI DER keys,
/// PKCS#1 v1.5 for RSA, DER signatures for ECDSA, hash by name. It lets
/// the DER conversion and the protobuf round trip be checked natively.
#[derive(Default)]
struct SoftwareHost {
    calls: Cell<u32>,
    broken: bool,
}

impl NativeCrypto for SoftwareHost {
    fn verify(&self, hash: &str, spki: &[u8], sig: &[u8], text: &[u8]) -> Option<bool> {
        self.calls.set(self.calls.get() + 1);
        if self.broken {
            return None;
        }
        // Through the wire format, as Envoy would see it.
        let args = encode_arguments(hash, spki, sig, text);
        let (hash, spki, sig, text) = decode_arguments(&args)?;
        let ok = if let Ok(key) = rsa::RsaPublicKey::from_public_key_der(&spki) {
            let scheme = match hash.as_str() {
                "sha256" => rsa::Pkcs1v15Sign::new::<Sha256>(),
                "sha384" => rsa::Pkcs1v15Sign::new::<Sha384>(),
                "sha512" => rsa::Pkcs1v15Sign::new::<Sha512>(),
                _ => return Some(false),
            };
            let digest = match hash.as_str() {
                "sha256" => <Sha256 as sha2::Digest>::digest(&text).to_vec(),
                "sha384" => <Sha384 as sha2::Digest>::digest(&text).to_vec(),
                _ => <Sha512 as sha2::Digest>::digest(&text).to_vec(),
            };
            key.verify(scheme, &digest, &sig).is_ok()
        } else if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(&spki) {
            use p256::ecdsa::signature::Verifier;
            p256::ecdsa::Signature::from_der(&sig).is_ok_and(|s| key.verify(&text, &s).is_ok())
        } else if let Ok(key) = p384::ecdsa::VerifyingKey::from_public_key_der(&spki) {
            use p384::ecdsa::signature::Verifier;
            p384::ecdsa::Signature::from_der(&sig).is_ok_and(|s| key.verify(&text, &s).is_ok())
        } else if let Ok(key) = p521::PublicKey::from_public_key_der(&spki) {
            use p521::ecdsa::signature::Verifier;
            let Ok(key) = p521::ecdsa::VerifyingKey::from_affine(*key.as_affine()) else {
                return Some(false);
            };
            p521::ecdsa::Signature::from_der(&sig).is_ok_and(|s| key.verify(&text, &s).is_ok())
        } else {
            false
        };
        let mut reply = vec![0x08, u8::from(ok)];
        if !ok {
            reply.extend_from_slice(&[0x12, 3]);
            reply.extend_from_slice(b"bad");
        }
        decode_result(&reply).map(|(r, _)| r)
    }
}

/// The decoding side of [`encode_arguments`], as the host does it.
/// Hash name, key, signature, text.
type Arguments = (String, Vec<u8>, Vec<u8>, Vec<u8>);

fn decode_arguments(mut bytes: &[u8]) -> Option<Arguments> {
    let mut fields = vec![Vec::new(); 4];
    while !bytes.is_empty() {
        let key = take_varint(&mut bytes)?;
        let value = take_len(&mut bytes)?;
        *fields.get_mut(usize::try_from(key >> 3).ok()?.checked_sub(1)?)? = value.to_vec();
    }
    let hash = String::from_utf8(fields[0].clone()).ok()?;
    Some((
        hash,
        fields[1].clone(),
        fields[2].clone(),
        fields[3].clone(),
    ))
}

fn key(name: &str) -> Jwk {
    Jwk::from_value(&jwk(name)).unwrap()
}

#[test]
fn self_test_enables_what_the_host_gets_right() {
    let accel = Accelerator::new(SoftwareHost::default());
    use Algorithm::*;
    assert_eq!(accel.enabled(), &[Rs256, Rs384, Rs512, Es256, Es384, Es512]);
    let broken = Accelerator::new(SoftwareHost {
        broken: true,
        ..Default::default()
    });
    assert!(
        broken.enabled().is_empty(),
        "a host without the function is never used"
    );
}

#[test]
fn host_and_pure_paths_agree_on_every_algorithm_and_corruption() {
    use Algorithm::*;
    let host = SoftwareHost::default();
    let accel = Accelerator::new(&host);
    let input = b"eyJhbGciOiJ4In0.eyJzdWIiOiJhIn0";
    let cases = [
        (Rs256, "rsa2048"),
        (Rs384, "rsa2048"),
        (Rs512, "rsa3072"),
        (Ps256, "rsa2048"),
        (Es256, "p256"),
        (Es384, "p384"),
        (Es512, "p521"),
        (EdDsa, "ed25519"),
    ];
    for (alg, name) in cases {
        let k = key(name);
        let good = sign(alg, &signing_key(name), input);
        let mut variants: Vec<(String, Vec<u8>)> = vec![("valid".into(), good.clone())];
        let mut flipped = good.clone();
        flipped[0] ^= 0x80;
        variants.push(("first byte flipped".into(), flipped));
        let mut last = good.clone();
        *last.last_mut().unwrap() ^= 1;
        variants.push(("last byte flipped".into(), last));
        variants.push(("truncated".into(), good[..good.len() - 1].to_vec()));
        variants.push(("extended".into(), [good.clone(), vec![0]].concat()));
        variants.push(("empty".into(), Vec::new()));
        variants.push(("zeros".into(), vec![0; good.len()]));
        let half = good.len() / 2;
        variants.push((
            "r zero".into(),
            [vec![0; half], good[half..].to_vec()].concat(),
        ));
        variants.push((
            "s zero".into(),
            [good[..half].to_vec(), vec![0; good.len() - half]].concat(),
        ));
        variants.push((
            "r and s swapped".into(),
            [good[half..].to_vec(), good[..half].to_vec()].concat(),
        ));
        for (what, sig) in variants {
            let pure = crate::jwt::verify_signature(alg, &k, input, &sig);
            let native = accel.verify(alg, &k, input, &sig).unwrap_or(pure);
            assert_eq!(native, pure, "{alg:?} {what}");
            assert_eq!(pure, what == "valid", "{alg:?} {what}");
        }
    }
    assert!(host.calls.get() > 40, "the host path was exercised");
}

#[test]
fn pure_only_algorithms_never_reach_the_host() {
    let host = SoftwareHost::default();
    let accel = Accelerator::new(&host);
    let before = host.calls.get();
    let input = b"x.y";
    for (alg, name) in [(Algorithm::Ps256, "rsa2048"), (Algorithm::EdDsa, "ed25519")] {
        let sig = sign(alg, &signing_key(name), input);
        assert_eq!(accel.verify(alg, &key(name), input, &sig), None);
    }
    assert_eq!(host.calls.get(), before);
}

#[test]
fn key_confusion_is_refused_before_the_host() {
    let host = SoftwareHost::default();
    let accel = Accelerator::new(&host);
    let sig = sign(Algorithm::Es256, &signing_key("p256"), b"a.b");
    assert_eq!(
        accel.verify(Algorithm::Rs256, &key("p256"), b"a.b", &sig),
        Some(false)
    );
    assert_eq!(
        accel.verify(Algorithm::Es384, &key("p256"), b"a.b", &sig),
        Some(false)
    );
}

#[test]
fn der_conversion_edge_cases() {
    // Leading zeros are stripped; a set high bit gets a zero prefix.
    let mut raw = vec![0u8; 64];
    raw[31] = 1; // r = 1
    raw[32] = 0x80; // s has its high bit set
    let der = ecdsa_raw_to_der(&raw, 32).unwrap();
    assert_eq!(&der[..5], &[0x30, 0x26, 0x02, 0x01, 0x01]);
    assert_eq!(&der[5..8], &[0x02, 0x21, 0x00]);
    assert_eq!(der.len(), 2 + 3 + 2 + 33);
    let p = p256::ecdsa::Signature::from_der(&der);
    assert!(p.is_ok(), "valid DER for a valid-range pair");
    // Wrong length, zero r, zero s.
    assert_eq!(ecdsa_raw_to_der(&raw[..63], 32), None);
    assert_eq!(ecdsa_raw_to_der(&[0u8; 64], 32), None);
    let mut zero_s = raw.clone();
    zero_s[32..].fill(0);
    assert_eq!(ecdsa_raw_to_der(&zero_s, 32), None);
    // P-521: long-form sequence length.
    let mut big = vec![0xffu8; 132];
    big[0] = 0x01;
    big[66] = 0x01;
    let der = ecdsa_raw_to_der(&big, 66).unwrap();
    assert_eq!(&der[..3], &[0x30, 0x81, (der.len() - 3) as u8]);
}

#[test]
fn protobuf_codec() {
    let args = encode_arguments("sha256", &[1, 2], &[3; 200], b"t");
    assert_eq!(&args[..8], &[0x0a, 6, b's', b'h', b'a', b'2', b'5', b'6']);
    assert_eq!(
        decode_arguments(&args).unwrap().2.len(),
        200,
        "two-byte varint length"
    );
    assert_eq!(decode_result(&[0x08, 1]), Some((true, String::new())));
    assert_eq!(
        decode_result(&[0x08, 0, 0x12, 2, b'n', b'o']),
        Some((false, "no".into()))
    );
    assert_eq!(decode_result(&[]), Some((false, String::new())));
    assert_eq!(
        decode_result(&[0x18, 5, 0x08, 1]),
        Some((true, String::new())),
        "unknown field skipped"
    );
    assert_eq!(decode_result(&[0x12, 9, b'x']), None, "truncated");
    assert_eq!(decode_result(&[0x08]), None);
}

/// The native path (the accelerator, with the software stand-in for the
/// host) and the wasm path against OpenSSL's answers on signatures OpenSSL
/// made: the host, like OpenSSL, takes either spelling of s; the filter's
/// dispatch takes only the low one, on both paths.
#[test]
fn both_paths_agree_with_openssl_vectors() {
    use crate::jwt::test_support::{ecdsa_vectors, other_s};
    use crate::jwt::{verify_signature, verify_signature_with};
    let host = SoftwareHost::default();
    let accel = Accelerator::new(&host);
    let vectors = ecdsa_vectors();
    let high = vectors
        .iter()
        .filter(|v| v.openssl_ok && v.high_s())
        .count();
    assert!(high > 3, "only {high} high-S vectors");
    for v in &vectors {
        let k = key(v.key);
        let what = format!("{:?} {:?}", v.alg, hex_of(&v.message));
        let canonical_ok = v.openssl_ok && !v.high_s();
        assert_eq!(
            accel.verify(v.alg, &k, &v.message, &v.signature),
            Some(v.openssl_ok),
            "host: {what}"
        );
        assert_eq!(
            verify_signature_with(v.alg, &k, &v.message, &v.signature, Some(&accel)),
            canonical_ok,
            "native: {what}"
        );
        assert_eq!(
            verify_signature(v.alg, &k, &v.message, &v.signature),
            canonical_ok,
            "wasm: {what}"
        );
        if v.openssl_ok {
            // Whichever spelling OpenSSL made, its low twin verifies on both.
            let low = if v.high_s() {
                other_s(v.alg, &v.signature)
            } else {
                v.signature.clone()
            };
            assert!(verify_signature_with(
                v.alg,
                &k,
                &v.message,
                &low,
                Some(&accel)
            ));
            assert!(verify_signature(v.alg, &k, &v.message, &low));
        }
    }
}

/// The known answers of the self-test were made with OpenSSL; the wasm path
/// accepts them too.
#[test]
fn wasm_path_accepts_the_openssl_known_answers() {
    use crate::jwt::verify_signature;
    for (alg, spki, sig) in [
        (Algorithm::Es256, KAT_P256_SPKI, KAT_P256_SIG),
        (Algorithm::Es384, KAT_P384_SPKI, KAT_P384_SIG),
        (Algorithm::Es512, KAT_P521_SPKI, KAT_P521_SIG),
    ] {
        let spki = hex(spki).unwrap();
        let k = jwk_from_spki(alg, &spki);
        assert_eq!(k.spki(), Some(&spki[..]), "{alg:?}");
        let mut sig = hex(sig).unwrap();
        assert!(verify_signature(alg, &k, KAT_MESSAGE, &sig), "{alg:?}");
        sig[5] ^= 0x40;
        assert!(!verify_signature(alg, &k, KAT_MESSAGE, &sig), "{alg:?}");
    }
}

/// The EC JWK of a SubjectPublicKeyInfo (its last bytes are the SEC1 point).
fn jwk_from_spki(alg: Algorithm, spki: &[u8]) -> Jwk {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let (crv, size) = match alg {
        Algorithm::Es256 => ("P-256", 32),
        Algorithm::Es384 => ("P-384", 48),
        _ => ("P-521", 66),
    };
    let point = &spki[spki.len() - 2 * size..];
    let (x, y) = point.split_at(size);
    Jwk::from_value(&serde_json::json!({"kty": "EC", "crv": crv,
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}))
    .unwrap()
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
