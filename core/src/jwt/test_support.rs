//! Test-only helpers over testkit's committed keys and token minter: the
//! unit tests here and the end-to-end suites sign with the same keys.

use serde_json::{json, Value};
pub use testkit::jwt::Key as SigningKey;
use testkit::jwt::{committed_jwk, sign_parts};

use super::Algorithm;

/// The committed public JWK of key `name` (e.g. "rsa2048").
pub fn jwk(name: &str) -> Value {
    serde_json::from_str(committed_jwk::named(name)).unwrap()
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

pub fn b64(bytes: &[u8]) -> String {
    testkit::jwt::b64url(bytes)
}

/// The private key of committed key `name` (e.g. "p384").
pub fn signing_key(name: &str) -> SigningKey {
    SigningKey::named(name)
}

/// Signs `input` as `alg` would, without checking that key and alg fit, so
/// tests can also produce deliberately mismatched signatures.
pub fn sign(alg: Algorithm, key: &SigningKey, input: &[u8]) -> Vec<u8> {
    key.sign(alg.name(), input)
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

/// One line of testkit's ECDSA vectors (made by the openssl CLI with the
/// committed keys).
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
    testkit::jwt::ECDSA_VECTORS
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

/// A compact token with the given header (as JSON) and claims, signed by `key`
/// under `alg` (which need not match the header, for confusion tests).
pub fn token_with_header(
    header: &Value,
    claims: &Value,
    alg: Algorithm,
    key: &SigningKey,
) -> String {
    sign_parts(alg.name(), key, &header.to_string(), &claims.to_string())
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
