//! Test-only helpers: fixture keys from `testdata/` and token signing in Rust.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rsa::pkcs8::DecodePrivateKey;
use rsa::rand_core::{CryptoRng, Error as RandError, RngCore};
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::Algorithm;

pub fn fixture(name: &str) -> &'static str {
    match name {
        "rsa2048.pem" => include_str!("testdata/rsa2048.pem"),
        "rsa2048.jwk.json" => include_str!("testdata/rsa2048.jwk.json"),
        "rsa2048b.pem" => include_str!("testdata/rsa2048b.pem"),
        "rsa2048b.jwk.json" => include_str!("testdata/rsa2048b.jwk.json"),
        "rsa2560.pem" => include_str!("testdata/rsa2560.pem"),
        "rsa2560.jwk.json" => include_str!("testdata/rsa2560.jwk.json"),
        "rsa3072.pem" => include_str!("testdata/rsa3072.pem"),
        "rsa3072.jwk.json" => include_str!("testdata/rsa3072.jwk.json"),
        "rsa1024.pem" => include_str!("testdata/rsa1024.pem"),
        "rsa1024.jwk.json" => include_str!("testdata/rsa1024.jwk.json"),
        "p256.pem" => include_str!("testdata/p256.pem"),
        "p256.jwk.json" => include_str!("testdata/p256.jwk.json"),
        "p384.pem" => include_str!("testdata/p384.pem"),
        "p384.jwk.json" => include_str!("testdata/p384.jwk.json"),
        "p521.pem" => include_str!("testdata/p521.pem"),
        "p521.jwk.json" => include_str!("testdata/p521.jwk.json"),
        "ed25519.pem" => include_str!("testdata/ed25519.pem"),
        "ed25519.jwk.json" => include_str!("testdata/ed25519.jwk.json"),
        other => panic!("no fixture {other}"),
    }
}

/// The public JWK of fixture `name` (e.g. "rsa2048").
pub fn jwk(name: &str) -> Value {
    serde_json::from_str(fixture(&format!("{name}.jwk.json"))).unwrap()
}

/// `jwk(name)` with members replaced or (for `null`) removed.
pub fn jwk_with(name: &str, changes: Value) -> Value {
    let mut key = jwk(name);
    let obj = key.as_object_mut().unwrap();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            obj.remove(k);
        } else {
            obj.insert(k.clone(), v.clone());
        }
    }
    key
}

pub fn jwks(keys: Vec<Value>) -> Value {
    json!({ "keys": keys })
}

pub fn pem_to_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A private key able to sign test tokens.
pub enum SigningKey {
    Hmac(Vec<u8>),
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

/// The private key of fixture `name` (e.g. "p384").
pub fn signing_key(name: &str) -> SigningKey {
    let der = pem_to_der(fixture(&format!("{name}.pem")));
    if name.starts_with("rsa") {
        SigningKey::Rsa(Box::new(rsa::RsaPrivateKey::from_pkcs8_der(&der).unwrap()))
    } else if name == "p256" {
        SigningKey::P256(p256::SecretKey::from_pkcs8_der(&der).unwrap().into())
    } else if name == "p384" {
        SigningKey::P384(p384::SecretKey::from_pkcs8_der(&der).unwrap().into())
    } else if name == "p521" {
        let secret = p521::SecretKey::from_pkcs8_der(&der).unwrap();
        SigningKey::P521(p521::ecdsa::SigningKey::from_bytes(&secret.to_bytes()).unwrap())
    } else if name == "ed25519" {
        // PKCS#8 for Ed25519 (RFC 8410) is a fixed 16-byte prefix plus the seed.
        assert_eq!(der.len(), 48);
        let seed: [u8; 32] = der[16..].try_into().unwrap();
        SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
    } else {
        panic!("no signing key {name}")
    }
}

/// Deterministic RNG for PSS salts: quality is irrelevant in tests, repeatable
/// runs are not.
pub(crate) struct TestRng(pub(crate) u64);

impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), RandError> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for TestRng {}

/// Signs `input` as `alg` would, without checking that key and alg fit, so
/// tests can also produce deliberately mismatched signatures.
pub fn sign(alg: Algorithm, key: &SigningKey, input: &[u8]) -> Vec<u8> {
    use Algorithm::*;
    let mut rng = TestRng(7);
    match (alg, key) {
        (Hs256 | Hs384 | Hs512, SigningKey::Hmac(secret)) => hmac(alg, secret, input),
        (Rs256, SigningKey::Rsa(k)) => k
            .sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(input))
            .unwrap(),
        (Rs384, SigningKey::Rsa(k)) => k
            .sign(rsa::Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(input))
            .unwrap(),
        (Rs512, SigningKey::Rsa(k)) => k
            .sign(rsa::Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(input))
            .unwrap(),
        (Ps256, SigningKey::Rsa(k)) => k
            .sign_with_rng(&mut rng, rsa::Pss::new::<Sha256>(), &Sha256::digest(input))
            .unwrap(),
        (Ps384, SigningKey::Rsa(k)) => k
            .sign_with_rng(&mut rng, rsa::Pss::new::<Sha384>(), &Sha384::digest(input))
            .unwrap(),
        (Ps512, SigningKey::Rsa(k)) => k
            .sign_with_rng(&mut rng, rsa::Pss::new::<Sha512>(), &Sha512::digest(input))
            .unwrap(),
        // The crates sign with whichever s comes out; the filter takes only
        // the low one (see `other_s` for the twin).
        (_, SigningKey::P256(k)) => {
            use p256::ecdsa::signature::Signer;
            let sig: p256::ecdsa::Signature = k.sign(input);
            sig.normalize_s().unwrap_or(sig).to_bytes().to_vec()
        }
        (_, SigningKey::P384(k)) => {
            use p384::ecdsa::signature::Signer;
            let sig: p384::ecdsa::Signature = k.sign(input);
            sig.normalize_s().unwrap_or(sig).to_bytes().to_vec()
        }
        (_, SigningKey::P521(k)) => {
            // p521's plain Signer needs OS randomness (a feature we do not
            // enable); the randomized signer takes our deterministic RNG.
            use p521::ecdsa::signature::RandomizedSigner;
            let sig: p521::ecdsa::Signature = k.sign_with_rng(&mut rng, input);
            sig.normalize_s().unwrap_or(sig).to_bytes().to_vec()
        }
        (_, SigningKey::Ed25519(k)) => {
            use ed25519_dalek::Signer;
            k.sign(input).to_bytes().to_vec()
        }
        (alg, _) => panic!("test helper cannot sign {alg:?} with this key"),
    }
}

/// The other spelling of an ECDSA signature `r || s`: `r || n - s`, which
/// ECDSA itself accepts as well (made with the curve crates' scalars).
pub fn other_s(alg: Algorithm, raw: &[u8]) -> Vec<u8> {
    macro_rules! negate_s {
        ($krate:ident) => {{
            let (r, s) = $krate::ecdsa::Signature::from_slice(raw)
                .unwrap()
                .split_scalars();
            $krate::ecdsa::Signature::from_scalars(r, -s)
                .unwrap()
                .to_bytes()
                .to_vec()
        }};
    }
    match alg {
        Algorithm::Es256 => negate_s!(p256),
        Algorithm::Es384 => negate_s!(p384),
        Algorithm::Es512 => negate_s!(p521),
        other => panic!("{other:?} is not ECDSA"),
    }
}

/// One line of `testdata/ecdsa-vectors.txt` (made by
/// `generate-ecdsa-vectors.sh` with the openssl CLI and the fixture keys).
pub struct EcdsaVector {
    pub alg: Algorithm,
    /// The fixture key that signed: "p256", "p384" or "p521".
    pub key: &'static str,
    pub message: Vec<u8>,
    /// The JWS form, `r || s`.
    pub signature: Vec<u8>,
    /// `openssl dgst -verify` accepted it.
    pub openssl_ok: bool,
}

impl EcdsaVector {
    /// Whether `s` is above n/2 (the curve crates' `normalize_s`).
    pub fn high_s(&self) -> bool {
        match self.alg {
            Algorithm::Es256 => p256::ecdsa::Signature::from_slice(&self.signature)
                .unwrap()
                .normalize_s()
                .is_some(),
            Algorithm::Es384 => p384::ecdsa::Signature::from_slice(&self.signature)
                .unwrap()
                .normalize_s()
                .is_some(),
            _ => p521::ecdsa::Signature::from_slice(&self.signature)
                .unwrap()
                .normalize_s()
                .is_some(),
        }
    }
}

pub fn ecdsa_vectors() -> Vec<EcdsaVector> {
    let hex = |text: &str| -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    };
    include_str!("testdata/ecdsa-vectors.txt")
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let alg = Algorithm::from_name(fields[0]).unwrap();
            let der = hex(fields[2]);
            let (key, signature) = match alg {
                Algorithm::Es256 => (
                    "p256",
                    p256::ecdsa::Signature::from_der(&der).unwrap().to_vec(),
                ),
                Algorithm::Es384 => (
                    "p384",
                    p384::ecdsa::Signature::from_der(&der).unwrap().to_vec(),
                ),
                _ => (
                    "p521",
                    p521::ecdsa::Signature::from_der(&der).unwrap().to_vec(),
                ),
            };
            EcdsaVector {
                alg,
                key,
                message: hex(fields[1]),
                signature,
                openssl_ok: fields[3] == "ok",
            }
        })
        .collect()
}

pub fn hmac(alg: Algorithm, secret: &[u8], input: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    match alg {
        Algorithm::Hs256 => {
            let mut m = Hmac::<Sha256>::new_from_slice(secret).unwrap();
            m.update(input);
            m.finalize().into_bytes().to_vec()
        }
        Algorithm::Hs384 => {
            let mut m = Hmac::<Sha384>::new_from_slice(secret).unwrap();
            m.update(input);
            m.finalize().into_bytes().to_vec()
        }
        Algorithm::Hs512 => {
            let mut m = Hmac::<Sha512>::new_from_slice(secret).unwrap();
            m.update(input);
            m.finalize().into_bytes().to_vec()
        }
        other => panic!("{other:?} is not HMAC"),
    }
}

/// A compact token with the given header (as JSON) and claims, signed by `key`
/// under `alg` (which need not match the header, for confusion tests).
pub fn token_with_header(
    header: &Value,
    claims: &Value,
    alg: Algorithm,
    key: &SigningKey,
) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = sign(alg, key, input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// A token `{"alg": alg, "kid": kid?}` / claims, properly signed by `key`.
pub fn token(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &SigningKey) -> String {
    let mut header = json!({ "alg": alg.name(), "typ": "JWT" });
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    token_with_header(&header, claims, alg, key)
}

/// A 64-byte HMAC secret, enough for every HS algorithm.
pub fn secret64() -> Vec<u8> {
    (0u8..64)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect()
}

pub fn oct_jwk(secret: &[u8], kid: Option<&str>) -> Value {
    let mut v = json!({ "kty": "oct", "k": b64(secret) });
    if let Some(kid) = kid {
        v["kid"] = json!(kid);
    }
    v
}
