//! Test keys (committed under `testkit/keys/`, NOT secret) and JWT minting for
//! every JWS algorithm the filter supports, plus JWK/JWKS builders for plugin
//! configurations.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use serde_json::{json, Map, Value};
use sha2::{Sha256, Sha384, Sha512};

use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;

/// The demo HS256 secret (base64url, no padding) as committed; also the JWK
/// `k` used by `envoy.yaml`.
pub const DEMO_HS256_SECRET_B64: &str = include_str!("../keys/demo-hs256.secret");
/// Issuer, audience and kid of the demo configuration (`envoy.yaml`).
pub const DEMO_ISSUER: &str = "https://auth.example.com";
pub const DEMO_AUDIENCE: &str = "api";
pub const DEMO_KID: &str = "demo-hs256";

const RSA2048_PEM: &str = include_str!("../keys/rsa2048.pem");
const RSA2048_B_PEM: &str = include_str!("../keys/rsa2048-b.pem");
const RSA1024_PEM: &str = include_str!("../keys/rsa1024.pem");
const RSA2560_PEM: &str = include_str!("../keys/rsa2560.pem");
const RSA3072_PEM: &str = include_str!("../keys/rsa3072.pem");
const P256_PEM: &str = include_str!("../keys/p256.pem");
const P384_PEM: &str = include_str!("../keys/p384.pem");
const P521_PEM: &str = include_str!("../keys/p521.pem");
const ED25519_PEM: &str = include_str!("../keys/ed25519.pem");

/// The committed public JWK files, verbatim (`kid` and `use` set, no `alg`).
pub mod committed_jwk {
    pub const RSA2048: &str = include_str!("../keys/rsa2048.jwk.json");
    pub const RSA2048_B: &str = include_str!("../keys/rsa2048-b.jwk.json");
    pub const RSA1024: &str = include_str!("../keys/rsa1024.jwk.json");
    pub const P256: &str = include_str!("../keys/p256.jwk.json");
    pub const P384: &str = include_str!("../keys/p384.jwk.json");
    pub const P521: &str = include_str!("../keys/p521.jwk.json");
    pub const ED25519: &str = include_str!("../keys/ed25519.jwk.json");
    pub const RSA2560: &str = include_str!("../keys/rsa2560.jwk.json");
    pub const RSA3072: &str = include_str!("../keys/rsa3072.jwk.json");

    /// The JWK file of the key [`super::Key::named`] gives for `name`.
    pub fn named(name: &str) -> &'static str {
        match name {
            "rsa2048" => RSA2048,
            "rsa2048-b" => RSA2048_B,
            "rsa1024" => RSA1024,
            "rsa2560" => RSA2560,
            "rsa3072" => RSA3072,
            "p256" => P256,
            "p384" => P384,
            "p521" => P521,
            "ed25519" => ED25519,
            other => panic!("testkit: no committed JWK {other:?}"),
        }
    }
}

/// ECDSA signatures made and checked by the openssl CLI with the P-256,
/// P-384 and P-521 keys (`keys/generate-ecdsa-vectors.sh`): one per line,
/// `ALG MESSAGE_HEX SIGNATURE_DER_HEX VERDICT`, the verdict OpenSSL's
/// (`ok` or `fail`). About half the good ones are high-S.
pub const ECDSA_VECTORS: &str = include_str!("../keys/ecdsa-vectors.txt");

/// Key material of a [`Key`].
#[derive(Clone)]
pub enum KeyMaterial {
    Hmac(Vec<u8>),
    Rsa(Box<RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::SecretKey),
    Ed25519(ed25519_dalek::SigningKey),
}

/// A signing key with the `kid` that [`mint`] puts in the header and
/// [`Key::jwk`] puts in the public JWK (none for ad-hoc HMAC secrets).
#[derive(Clone)]
pub struct Key {
    pub material: KeyMaterial,
    pub kid: Option<String>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.material {
            KeyMaterial::Hmac(_) => "oct",
            KeyMaterial::Rsa(_) => "RSA",
            KeyMaterial::P256(_) => "EC P-256",
            KeyMaterial::P384(_) => "EC P-384",
            KeyMaterial::P521(_) => "EC P-521",
            KeyMaterial::Ed25519(_) => "Ed25519",
        };
        write!(f, "Key({kind}, kid={:?})", self.kid)
    }
}

fn load<T>(what: &str, r: Result<T, impl std::fmt::Display>) -> T {
    r.unwrap_or_else(|e| panic!("testkit key {what}: {e}"))
}

impl Key {
    /// An HMAC key from raw secret bytes, no kid.
    pub fn hmac(secret: impl AsRef<[u8]>) -> Key {
        Key {
            material: KeyMaterial::Hmac(secret.as_ref().to_vec()),
            kid: None,
        }
    }

    /// The demo HS256 secret of `envoy.yaml`, kid `demo-hs256`.
    pub fn demo_hs256() -> Key {
        let secret = load(
            "demo-hs256.secret",
            URL_SAFE_NO_PAD.decode(DEMO_HS256_SECRET_B64.trim()),
        );
        Key::hmac(secret).with_kid(DEMO_KID)
    }

    /// A fixed test HMAC secret as long as the hash of `HS<bits>` (32, 48 or
    /// 64 bytes), kid `hs<bits>`.
    pub fn hs(bits: u16) -> Key {
        let len = usize::from(bits / 8);
        let secret: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(bits as u8))
            .collect();
        Key::hmac(secret).with_kid(&format!("hs{bits}"))
    }

    /// RSA 2048 (`keys/rsa2048.pem`), kid `rsa-2048`.
    pub fn rsa2048() -> Key {
        Key::rsa(RSA2048_PEM, "rsa-2048")
    }

    /// A second, unrelated RSA 2048 key, kid `rsa-2048-b`.
    pub fn rsa2048_b() -> Key {
        Key::rsa(RSA2048_B_PEM, "rsa-2048-b")
    }

    /// A too-weak RSA 1024 key, kid `rsa-1024`.
    pub fn rsa1024() -> Key {
        Key::rsa(RSA1024_PEM, "rsa-1024")
    }

    /// RSA 2560, kid `rsa-2560` (a modulus that is not a power of two).
    pub fn rsa2560() -> Key {
        Key::rsa(RSA2560_PEM, "rsa-2560")
    }

    /// RSA 3072, kid `rsa-3072`.
    pub fn rsa3072() -> Key {
        Key::rsa(RSA3072_PEM, "rsa-3072")
    }

    /// A committed key by its file name (`rsa2048`, `rsa2048-b`, `p384`, ...).
    pub fn named(name: &str) -> Key {
        match name {
            "rsa2048" => Key::rsa2048(),
            "rsa2048-b" => Key::rsa2048_b(),
            "rsa1024" => Key::rsa1024(),
            "rsa2560" => Key::rsa2560(),
            "rsa3072" => Key::rsa3072(),
            "p256" => Key::p256(),
            "p384" => Key::p384(),
            "p521" => Key::p521(),
            "ed25519" => Key::ed25519(),
            other => panic!("testkit: no committed key {other:?}"),
        }
    }

    fn rsa(pem: &str, kid: &str) -> Key {
        Key {
            material: KeyMaterial::Rsa(Box::new(load(kid, RsaPrivateKey::from_pkcs8_pem(pem)))),
            kid: Some(kid.into()),
        }
    }

    /// EC P-256 for ES256, kid `ec-p256`.
    pub fn p256() -> Key {
        Key {
            material: KeyMaterial::P256(load(
                "p256",
                p256::ecdsa::SigningKey::from_pkcs8_pem(P256_PEM),
            )),
            kid: Some("ec-p256".into()),
        }
    }

    /// EC P-384 for ES384, kid `ec-p384`.
    pub fn p384() -> Key {
        Key {
            material: KeyMaterial::P384(load(
                "p384",
                p384::ecdsa::SigningKey::from_pkcs8_pem(P384_PEM),
            )),
            kid: Some("ec-p384".into()),
        }
    }

    /// EC P-521 for ES512, kid `ec-p521`.
    pub fn p521() -> Key {
        Key {
            material: KeyMaterial::P521(load("p521", p521::SecretKey::from_pkcs8_pem(P521_PEM))),
            kid: Some("ec-p521".into()),
        }
    }

    /// Ed25519 for EdDSA, kid `ed25519`.
    pub fn ed25519() -> Key {
        Key {
            material: KeyMaterial::Ed25519(load(
                "ed25519",
                ed25519_dalek::SigningKey::from_pkcs8_pem(ED25519_PEM),
            )),
            kid: Some("ed25519".into()),
        }
    }

    /// The usual key for an algorithm: `HS*` -> [`Key::hs`], `RS*`/`PS*` ->
    /// RSA 2048, `ES256/384/512` -> P-256/384/521, `EdDSA` -> Ed25519.
    pub fn for_alg(alg: &str) -> Key {
        match alg {
            "HS256" => Key::hs(256),
            "HS384" => Key::hs(384),
            "HS512" => Key::hs(512),
            "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => Key::rsa2048(),
            "ES256" => Key::p256(),
            "ES384" => Key::p384(),
            "ES512" => Key::p521(),
            "EdDSA" => Key::ed25519(),
            other => panic!("testkit: no default key for alg {other:?}"),
        }
    }

    pub fn with_kid(mut self, kid: &str) -> Key {
        self.kid = Some(kid.into());
        self
    }

    pub fn without_kid(mut self) -> Key {
        self.kid = None;
        self
    }

    /// The public JWK (for HMAC, the `oct` JWK with `k`), with this key's kid
    /// (if any), `"use": "sig"`, and `alg` if given.
    pub fn jwk(&self, alg: Option<&str>) -> Value {
        let mut m = Map::new();
        match &self.material {
            KeyMaterial::Hmac(s) => {
                m.insert("kty".into(), json!("oct"));
                m.insert("k".into(), json!(b64url(s)));
            }
            KeyMaterial::Rsa(k) => {
                m.insert("kty".into(), json!("RSA"));
                m.insert("n".into(), json!(b64url(k.n().to_bytes_be())));
                m.insert("e".into(), json!(b64url(k.e().to_bytes_be())));
            }
            KeyMaterial::P256(k) => {
                let p = k.verifying_key().to_encoded_point(false);
                ec_fields(&mut m, "P-256", p.as_bytes());
            }
            KeyMaterial::P384(k) => {
                let p = k.verifying_key().to_encoded_point(false);
                ec_fields(&mut m, "P-384", p.as_bytes());
            }
            KeyMaterial::P521(k) => {
                use p521::elliptic_curve::sec1::ToEncodedPoint;
                let p = k.public_key().to_encoded_point(false);
                ec_fields(&mut m, "P-521", p.as_bytes());
            }
            KeyMaterial::Ed25519(k) => {
                m.insert("kty".into(), json!("OKP"));
                m.insert("crv".into(), json!("Ed25519"));
                m.insert("x".into(), json!(b64url(k.verifying_key().as_bytes())));
            }
        }
        if let Some(kid) = &self.kid {
            m.insert("kid".into(), json!(kid));
        }
        m.insert("use".into(), json!("sig"));
        if let Some(alg) = alg {
            m.insert("alg".into(), json!(alg));
        }
        Value::Object(m)
    }

    /// The public key as SubjectPublicKeyInfo PEM (RSA only; for
    /// key-confusion tests that use the PEM text as an HMAC secret).
    pub fn public_pem(&self) -> String {
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        match &self.material {
            KeyMaterial::Rsa(k) => load(
                "public pem",
                k.to_public_key().to_public_key_pem(LineEnding::LF),
            ),
            _ => panic!("testkit: public_pem is only implemented for RSA keys"),
        }
    }

    /// Signs `input` as `alg` says. EC and Ed25519 keys sign whatever `alg`
    /// names, so confusion tests can label a signature with the wrong
    /// algorithm.
    pub fn sign(&self, alg: &str, input: &[u8]) -> Vec<u8> {
        use KeyMaterial as K;
        match (alg, &self.material) {
            ("HS256", K::Hmac(s)) => hmac_sign::<Hmac<Sha256>>(s, input),
            ("HS384", K::Hmac(s)) => hmac_sign::<Hmac<Sha384>>(s, input),
            ("HS512", K::Hmac(s)) => hmac_sign::<Hmac<Sha512>>(s, input),
            ("RS256", K::Rsa(k)) => rsa::pkcs1v15::SigningKey::<Sha256>::new((**k).clone())
                .sign(input)
                .to_vec(),
            ("RS384", K::Rsa(k)) => rsa::pkcs1v15::SigningKey::<Sha384>::new((**k).clone())
                .sign(input)
                .to_vec(),
            ("RS512", K::Rsa(k)) => rsa::pkcs1v15::SigningKey::<Sha512>::new((**k).clone())
                .sign(input)
                .to_vec(),
            ("PS256", K::Rsa(k)) => rsa::pss::SigningKey::<Sha256>::new((**k).clone())
                .sign_with_rng(&mut OsRng, input)
                .to_vec(),
            ("PS384", K::Rsa(k)) => rsa::pss::SigningKey::<Sha384>::new((**k).clone())
                .sign_with_rng(&mut OsRng, input)
                .to_vec(),
            ("PS512", K::Rsa(k)) => rsa::pss::SigningKey::<Sha512>::new((**k).clone())
                .sign_with_rng(&mut OsRng, input)
                .to_vec(),
            // ECDSA in its one accepted spelling: s in the lower half of
            // the group order (the crates sign with whichever comes out).
            (_, K::P256(k)) => {
                let sig: p256::ecdsa::Signature = k.sign(input);
                sig.normalize_s().unwrap_or(sig).to_bytes().to_vec()
            }
            (_, K::P384(k)) => {
                let sig: p384::ecdsa::Signature = k.sign(input);
                sig.normalize_s().unwrap_or(sig).to_bytes().to_vec()
            }
            (_, K::P521(k)) => {
                let sk = load(
                    "p521 signing key",
                    p521::ecdsa::SigningKey::from_bytes(&k.to_bytes()),
                );
                let sig: p521::ecdsa::Signature = sk.sign_with_rng(&mut OsRng, input);
                sig.normalize_s().unwrap_or(sig).to_bytes().to_vec()
            }
            (_, K::Ed25519(k)) => k.sign(input).to_bytes().to_vec(),
            (alg, _) => panic!("testkit: cannot sign {alg} with {self:?}"),
        }
    }
}

fn ec_fields(m: &mut Map<String, Value>, crv: &str, point: &[u8]) {
    assert_eq!(point[0], 4, "uncompressed point expected");
    let n = (point.len() - 1) / 2;
    m.insert("kty".into(), json!("EC"));
    m.insert("crv".into(), json!(crv));
    m.insert("x".into(), json!(b64url(&point[1..1 + n])));
    m.insert("y".into(), json!(b64url(&point[1 + n..])));
}

fn hmac_sign<M: Mac + hmac::digest::KeyInit>(secret: &[u8], input: &[u8]) -> Vec<u8> {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|e| panic!("hmac key: {e}"));
    mac.update(input);
    mac.finalize().into_bytes().to_vec()
}

/// base64url without padding.
pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; panics on bad input.
pub fn b64url_decode(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(s)
        .unwrap_or_else(|e| panic!("bad base64url {s:?}: {e}"))
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A random hex id (16 bytes) for `jti` and test markers.
pub fn random_id() -> String {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The JOSE header [`mint`] writes: `{"alg": alg, "typ": "JWT", "kid": key's
/// kid}` then `header_extra` merged in (a `null` value removes a member, so
/// `{"typ": null}` drops `typ`; `{"alg": "RS256"}` lies about the algorithm).
pub fn header_for(alg: &str, key: Option<&Key>, header_extra: &Value) -> Value {
    let mut h = Map::new();
    h.insert("alg".into(), json!(alg));
    h.insert("typ".into(), json!("JWT"));
    if let Some(kid) = key.and_then(|k| k.kid.as_ref()) {
        h.insert("kid".into(), json!(kid));
    }
    merge(&mut h, header_extra);
    Value::Object(h)
}

fn merge(h: &mut Map<String, Value>, extra: &Value) {
    match extra {
        Value::Null => {}
        Value::Object(extra) => {
            for (k, v) in extra {
                if v.is_null() {
                    h.remove(k);
                } else {
                    h.insert(k.clone(), v.clone());
                }
            }
        }
        other => panic!("testkit: header_extra must be a JSON object or null, got {other}"),
    }
}

/// Signs a compact JWS. `alg` picks the signature algorithm (`HS256/384/512`,
/// `RS256/384/512`, `PS256/384/512`, `ES256`, `ES384`, `ES512`, `EdDSA`, or
/// `none` for an empty signature); see [`header_for`] for the header.
/// `claims` is serialized as given (any JSON, even a non-object).
pub fn mint(alg: &str, key: &Key, header_extra: &Value, claims: &Value) -> String {
    let header = header_for(alg, Some(key), header_extra);
    sign_parts(alg, key, &header.to_string(), &claims.to_string())
}

/// Signs exact header and payload JSON text (for odd encodings: duplicate
/// members, whitespace, non-canonical numbers).
pub fn sign_parts(alg: &str, key: &Key, header_json: &str, payload_json: &str) -> String {
    let input = format!("{}.{}", b64url(header_json), b64url(payload_json));
    if alg == "none" {
        return format!("{input}.");
    }
    let sig = key.sign(alg, input.as_bytes());
    format!("{input}.{}", b64url(sig))
}

/// An unsigned token: `{"alg": alg, "typ": "JWT"}` + extra, the claims, and an
/// empty signature (`alg` usually `"none"`, any casing).
pub fn mint_unsigned(alg: &str, header_extra: &Value, claims: &Value) -> String {
    let header = header_for(alg, None, header_extra);
    format!(
        "{}.{}.",
        b64url(header.to_string()),
        b64url(claims.to_string())
    )
}

/// The three segments of a compact token, decoded: (header, claims, signature).
pub fn decode_parts(token: &str) -> (Value, Value, Vec<u8>) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a compact JWS: {token}");
    let h = serde_json::from_slice(&b64url_decode(parts[0]))
        .unwrap_or_else(|e| panic!("header is not JSON: {e}"));
    let c = serde_json::from_slice(&b64url_decode(parts[1]))
        .unwrap_or_else(|e| panic!("claims are not JSON: {e}"));
    (h, c, b64url_decode(parts[2]))
}

/// Replaces the claims of a signed token, keeping header and signature (so
/// the signature no longer matches).
pub fn tamper_claims(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a compact JWS: {token}");
    format!("{}.{}.{}", parts[0], b64url(claims.to_string()), parts[2])
}

/// Flips one bit in the signature segment (decoded), keeping it well-formed.
pub fn tamper_signature(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a compact JWS: {token}");
    let mut sig = b64url_decode(parts[2]);
    assert!(!sig.is_empty(), "token has no signature");
    let mid = sig.len() / 2;
    sig[mid] ^= 0x01;
    format!("{}.{}.{}", parts[0], parts[1], b64url(sig))
}

/// An ES256/ES384/ES512 token with its signature's other spelling,
/// `r || n - s`: valid ECDSA math, which the filter refuses (it accepts only
/// s in the lower half). The curve follows from the signature's length.
pub fn ecdsa_other_s(token: &str) -> String {
    macro_rules! negate_s {
        ($krate:ident, $sig:expr) => {{
            let sig = $krate::ecdsa::Signature::from_slice($sig)
                .unwrap_or_else(|e| panic!("not an ECDSA signature: {e}"));
            let (r, s) = sig.split_scalars();
            $krate::ecdsa::Signature::from_scalars(r, -s)
                .unwrap_or_else(|e| panic!("cannot negate s: {e}"))
                .to_bytes()
                .to_vec()
        }};
    }
    let (head, sig) = token.rsplit_once('.').expect("not a compact JWS");
    let sig = b64url_decode(sig);
    let other = match sig.len() {
        64 => negate_s!(p256, &sig),
        96 => negate_s!(p384, &sig),
        132 => negate_s!(p521, &sig),
        n => panic!("no ECDSA signature has {n} bytes"),
    };
    format!("{head}.{}", b64url(other))
}

/// `{"keys": [...]}` from JWK values.
pub fn jwks(keys: impl IntoIterator<Item = Value>) -> Value {
    json!({ "keys": keys.into_iter().collect::<Vec<_>>() })
}

/// [`jwks`] serialized.
pub fn jwks_json(keys: impl IntoIterator<Item = Value>) -> String {
    jwks(keys).to_string()
}

/// The inline JWKS of the demo configuration: the demo HS256 `oct` key
/// (`alg` HS256) and the RSA 2048 public key (committed JWK, no `alg`).
pub fn demo_jwks() -> Value {
    let mut hs = Key::demo_hs256().jwk(Some("HS256"));
    if let Value::Object(m) = &mut hs {
        m.remove("use");
    }
    jwks([
        hs,
        serde_json::from_str(committed_jwk::RSA2048)
            .unwrap_or_else(|e| panic!("rsa2048.jwk.json: {e}")),
    ])
}

/// Options for [`demo_token`].
#[derive(Debug, Clone)]
pub struct DemoClaims {
    pub sub: String,
    pub provider: String,
    pub exp_in: i64,
    pub jti: Option<String>,
}

impl Default for DemoClaims {
    fn default() -> Self {
        DemoClaims {
            sub: "demo-user".into(),
            provider: "demo".into(),
            exp_in: 3600,
            jti: None,
        }
    }
}

/// The claims of a demo token (iss/aud of the demo config, `type: access`,
/// `iat`/`nbf` now, `exp` now + `exp_in`, a random `jti` unless given).
pub fn demo_claims(opts: &DemoClaims) -> Value {
    let now = now();
    json!({
        "iss": DEMO_ISSUER,
        "aud": DEMO_AUDIENCE,
        "sub": opts.sub,
        "provider": opts.provider,
        "type": "access",
        "iat": now,
        "nbf": now,
        "exp": now + opts.exp_in,
        "jti": opts.jti.clone().unwrap_or_else(random_id),
    })
}

/// An HS256 token signed with the demo secret, valid for `envoy.yaml`.
pub fn demo_token(opts: &DemoClaims) -> String {
    mint(
        "HS256",
        &Key::demo_hs256(),
        &Value::Null,
        &demo_claims(opts),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(mut v: Value) -> Value {
        if let Value::Object(m) = &mut v {
            m.remove("kid");
            m.remove("use");
            m.remove("alg");
        }
        v
    }

    #[test]
    fn committed_jwks_match_private_keys() {
        for name in [
            "rsa2048",
            "rsa2048-b",
            "rsa1024",
            "rsa2560",
            "rsa3072",
            "p256",
            "p384",
            "p521",
            "ed25519",
        ] {
            let (key, file) = (Key::named(name), committed_jwk::named(name));
            let committed: Value = serde_json::from_str(file).expect("jwk json");
            assert_eq!(committed["kid"], json!(key.kid.clone().expect("kid")));
            assert_eq!(strip(key.jwk(None)), strip(committed), "{key:?}");
        }
    }

    #[test]
    fn rsa_key_sizes() {
        let KeyMaterial::Rsa(k) = Key::rsa2048().material else {
            panic!()
        };
        assert_eq!(k.size() * 8, 2048);
        let KeyMaterial::Rsa(k) = Key::rsa1024().material else {
            panic!()
        };
        assert_eq!(k.size() * 8, 1024);
    }

    #[test]
    fn demo_secret_is_32_bytes() {
        let KeyMaterial::Hmac(s) = Key::demo_hs256().material else {
            panic!()
        };
        assert_eq!(s.len(), 32);
    }

    #[test]
    fn signature_lengths_per_alg() {
        let claims = json!({"sub": "x"});
        for (alg, len) in [
            ("HS256", 32),
            ("HS384", 48),
            ("HS512", 64),
            ("RS256", 256),
            ("RS384", 256),
            ("RS512", 256),
            ("PS256", 256),
            ("PS384", 256),
            ("PS512", 256),
            ("ES256", 64),
            ("ES384", 96),
            ("ES512", 132),
            ("EdDSA", 64),
        ] {
            let t = mint(alg, &Key::for_alg(alg), &Value::Null, &claims);
            let (h, c, sig) = decode_parts(&t);
            assert_eq!(h["alg"], json!(alg));
            assert_eq!(h["typ"], json!("JWT"));
            assert_eq!(c, claims);
            assert_eq!(sig.len(), len, "{alg}");
        }
    }

    #[test]
    fn signatures_verify() {
        use rsa::signature::Verifier;
        let input = |t: &str| t.rsplit_once('.').expect("dot").0.to_string();
        let claims = json!({"sub": "x"});
        // RS256 (deterministic) and PS256 with the rsa crate.
        let key = Key::rsa2048();
        let KeyMaterial::Rsa(k) = &key.material else {
            panic!()
        };
        let t = mint("RS256", &key, &Value::Null, &claims);
        let (_, _, sig) = decode_parts(&t);
        rsa::pkcs1v15::VerifyingKey::<Sha256>::new(k.to_public_key())
            .verify(
                input(&t).as_bytes(),
                &rsa::pkcs1v15::Signature::try_from(sig.as_slice()).expect("sig"),
            )
            .expect("RS256 verifies");
        let t = mint("PS384", &key, &Value::Null, &claims);
        let (_, _, sig) = decode_parts(&t);
        rsa::pss::VerifyingKey::<Sha384>::new(k.to_public_key())
            .verify(
                input(&t).as_bytes(),
                &rsa::pss::Signature::try_from(sig.as_slice()).expect("sig"),
            )
            .expect("PS384 verifies");
        // ES256
        let key = Key::p256();
        let KeyMaterial::P256(k) = &key.material else {
            panic!()
        };
        let t = mint("ES256", &key, &Value::Null, &claims);
        let (_, _, sig) = decode_parts(&t);
        k.verifying_key()
            .verify(
                input(&t).as_bytes(),
                &p256::ecdsa::Signature::from_slice(&sig).expect("sig"),
            )
            .expect("ES256 verifies");
        // EdDSA
        let key = Key::ed25519();
        let KeyMaterial::Ed25519(k) = &key.material else {
            panic!()
        };
        let t = mint("EdDSA", &key, &Value::Null, &claims);
        let (_, _, sig) = decode_parts(&t);
        k.verifying_key()
            .verify(
                input(&t).as_bytes(),
                &ed25519_dalek::Signature::from_slice(&sig).expect("sig"),
            )
            .expect("EdDSA verifies");
        // HS256 matches a known-good construction.
        let t = mint(
            "HS256",
            &Key::hmac(b"secret"),
            &json!({"typ": null}),
            &claims,
        );
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"secret").expect("key");
        mac.update(input(&t).as_bytes());
        assert_eq!(decode_parts(&t).2, mac.finalize().into_bytes().to_vec());
    }

    #[test]
    fn header_merge_and_unsigned() {
        let t = mint(
            "HS256",
            &Key::hs(256),
            &json!({"kid": null, "typ": "at+jwt", "x": 1}),
            &json!({}),
        );
        let (h, _, _) = decode_parts(&t);
        assert_eq!(h, json!({"alg": "HS256", "typ": "at+jwt", "x": 1}));
        let u = mint_unsigned("none", &Value::Null, &json!({"sub": "a"}));
        assert!(u.ends_with('.'));
        assert_eq!(decode_parts(&u).0, json!({"alg": "none", "typ": "JWT"}));
    }

    #[test]
    fn demo_token_shape() {
        let t = demo_token(&DemoClaims::default());
        let (h, c, _) = decode_parts(&t);
        assert_eq!(h["kid"], json!("demo-hs256"));
        assert_eq!(c["iss"], json!(DEMO_ISSUER));
        assert_eq!(c["aud"], json!("api"));
        assert_eq!(c["type"], json!("access"));
        assert_eq!(c["sub"], json!("demo-user"));
        assert!(c["exp"].as_i64().expect("exp") > now() + 3500);
        assert_eq!(c["jti"].as_str().expect("jti").len(), 32);
    }
}
