//! JWK / JWKS loading into a [`KeySet`], and key selection for a token.

use std::fmt;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use jwt_compact::alg::{Hs256Key, Hs384Key, Hs512Key};
use serde_json::{Map, Value};

use super::verify::verify_signature_with;
use super::{Algorithm, SignatureAccelerator, TokenError, UntrustedToken};

/// Smallest RSA modulus accepted at load time, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted: bounds the cost of one verification, which an
/// unauthenticated caller can trigger at will.
pub const MAX_RSA_BITS: usize = 8192;
/// Smallest HMAC secret accepted at load time. RFC 7518 §3.2 requires a key at
/// least as long as the hash output; 32 bytes is that floor for HS256, and
/// HS384/HS512 additionally need 48/64 bytes (checked per algorithm).
pub const MIN_HMAC_SECRET_BYTES: usize = 32;

/// JWK members are base64url without padding (RFC 7515 §2), but some
/// publishers pad; padding carries no meaning, so both spellings are taken.
/// Non-canonical trailing bits are still refused.
const JWK_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// An HMAC secret, with jwt-compact's key for each HS* algorithm (made once
/// at load; they are zeroed on drop). Its Debug output never shows the bytes.
#[derive(Clone)]
pub struct HmacSecret {
    bytes: Vec<u8>,
    keys: Box<HmacKeys>,
}

#[derive(Clone)]
struct HmacKeys {
    hs256: Hs256Key,
    hs384: Hs384Key,
    hs512: Hs512Key,
}

impl HmacSecret {
    pub fn new(bytes: Vec<u8>) -> Result<Self, String> {
        let keys = HmacKeys {
            hs256: Hs256Key::new(&bytes),
            hs384: Hs384Key::new(&bytes),
            hs512: Hs512Key::new(&bytes),
        };
        Ok(HmacSecret {
            bytes,
            keys: Box::new(keys),
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The secret as jwt-compact's key of each algorithm.
    pub fn hs256(&self) -> &Hs256Key {
        &self.keys.hs256
    }

    pub fn hs384(&self) -> &Hs384Key {
        &self.keys.hs384
    }

    pub fn hs512(&self) -> &Hs512Key {
        &self.keys.hs512
    }
}

impl PartialEq for HmacSecret {
    fn eq(&self, other: &Self) -> bool {
        // The keys follow from the bytes.
        self.bytes == other.bytes
    }
}

impl Eq for HmacSecret {}

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HmacSecret(<{} bytes redacted>)", self.bytes.len())
    }
}

/// The validated key material of one JWK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyMaterial {
    Oct(HmacSecret),
    Rsa(rsa::RsaPublicKey),
    P256(p256::PublicKey),
    P384(p384::PublicKey),
    P521(p521::PublicKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl KeyMaterial {
    /// The JWK `kty` this material came from.
    pub fn kty(&self) -> &'static str {
        match self {
            KeyMaterial::Oct(_) => "oct",
            KeyMaterial::Rsa(_) => "RSA",
            KeyMaterial::P256(_) | KeyMaterial::P384(_) | KeyMaterial::P521(_) => "EC",
            KeyMaterial::Ed25519(_) => "OKP",
        }
    }

    /// Whether this kind of key can verify `alg` at all (ignoring JWK metadata).
    /// This is the check that stops key confusion: an RSA public key can never
    /// be used as an HMAC secret, an EC key only for its own curve.
    pub fn supports(&self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyMaterial::Oct(secret) => match alg {
                Hs256 => secret.len() >= 32,
                Hs384 => secret.len() >= 48,
                Hs512 => secret.len() >= 64,
                _ => false,
            },
            KeyMaterial::Rsa(_) => matches!(alg, Rs256 | Rs384 | Rs512 | Ps256 | Ps384 | Ps512),
            KeyMaterial::P256(_) => alg == Es256,
            KeyMaterial::P384(_) => alg == Es384,
            KeyMaterial::P521(_) => alg == Es512,
            KeyMaterial::Ed25519(_) => alg == EdDsa,
        }
    }
}

/// One validated verification key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jwk {
    kid: Option<String>,
    alg: Option<Algorithm>,
    /// False when `use` or `key_ops` say the key is not for verifying
    /// signatures; such keys are kept for diagnostics but never used.
    for_verification: bool,
    material: KeyMaterial,
    /// DER SubjectPublicKeyInfo of RSA and EC keys, computed once at load
    /// for the host's native verifier.
    spki: Option<Vec<u8>>,
}

impl Jwk {
    /// Parses and validates one JWK object. The error is a message naming the
    /// problem, without key material.
    pub fn from_value(value: &Value) -> Result<Jwk, String> {
        let obj = value
            .as_object()
            .ok_or_else(|| "key is not a JSON object".to_string())?;
        let kid = optional_str(obj, "kid")?.map(str::to_string);
        let alg = match optional_str(obj, "alg")? {
            None => None,
            Some(name) => Some(
                Algorithm::from_name(name)
                    .ok_or_else(|| format!("unsupported alg {}", quoted(name)))?,
            ),
        };
        let for_verification = usable_for_verification(obj)?;
        let kty = optional_str(obj, "kty")?.ok_or_else(|| "missing kty".to_string())?;

        // A private key in a JWKS is almost always a publishing mistake that
        // leaks the signing key; refuse it so the mistake gets noticed.
        if kty != "oct" && obj.contains_key("d") {
            return Err(
                "contains private key material (\"d\"); publish only the public key".to_string(),
            );
        }

        let material = match kty {
            "RSA" => rsa_material(obj)?,
            "EC" => ec_material(obj)?,
            "OKP" => okp_material(obj)?,
            "oct" => {
                let secret = b64_member(obj, "k")?;
                oct_material(secret, alg)?
            }
            other => return Err(format!("unsupported kty {}", quoted(other))),
        };
        if let Some(alg) = alg {
            if !material.supports(alg) {
                return Err(format!(
                    "alg {} does not fit a {} key",
                    alg.name(),
                    material_summary(&material)
                ));
            }
        }
        let mut jwk = Jwk {
            kid,
            alg,
            for_verification,
            material,
            spki: None,
        };
        if matches!(
            jwk.material,
            KeyMaterial::Rsa(_)
                | KeyMaterial::P256(_)
                | KeyMaterial::P384(_)
                | KeyMaterial::P521(_)
        ) {
            jwk.spki = jwk.spki_der();
        }
        Ok(jwk)
    }

    /// Builds an HMAC key from raw secret bytes (for configuration that holds
    /// a plain secret instead of a JWK). Same length rules as an oct JWK.
    pub fn from_hmac_secret(
        secret: Vec<u8>,
        kid: Option<String>,
        alg: Option<Algorithm>,
    ) -> Result<Jwk, String> {
        if let Some(alg) = alg {
            if !alg.is_symmetric() {
                return Err(format!("alg {} does not fit an oct key", alg.name()));
            }
        }
        let material = oct_material(secret, alg)?;
        Ok(Jwk {
            kid,
            alg,
            for_verification: true,
            material,
            spki: None,
        })
    }

    /// The DER SubjectPublicKeyInfo of an RSA or EC key, computed at load.
    pub fn spki(&self) -> Option<&[u8]> {
        self.spki.as_deref()
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The JWK's own `alg`, which restricts it to that one algorithm.
    pub fn alg(&self) -> Option<Algorithm> {
        self.alg
    }

    pub fn material(&self) -> &KeyMaterial {
        &self.material
    }

    /// Whether this key may verify a token signed with `alg`: the key type and
    /// curve fit, the JWK's `alg` (if any) is `alg`, and `use`/`key_ops` allow
    /// signature verification.
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.for_verification
            && self.alg.is_none_or(|own| own == alg)
            && self.material.supports(alg)
    }

    /// DER SubjectPublicKeyInfo for asymmetric keys, for handing to a native
    /// crypto backend. `None` for HMAC secrets (and if encoding fails, which
    /// validated keys do not).
    pub fn spki_der(&self) -> Option<Vec<u8>> {
        use p256::pkcs8::EncodePublicKey;
        let doc = match &self.material {
            KeyMaterial::Oct(_) => return None,
            KeyMaterial::Rsa(key) => key.to_public_key_der().ok()?,
            KeyMaterial::P256(key) => key.to_public_key_der().ok()?,
            KeyMaterial::P384(key) => key.to_public_key_der().ok()?,
            KeyMaterial::P521(key) => key.to_public_key_der().ok()?,
            KeyMaterial::Ed25519(key) => {
                // RFC 8410: SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING key }.
                let mut der = vec![
                    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
                ];
                der.extend_from_slice(key.as_bytes());
                return Some(der);
            }
        };
        Some(doc.as_bytes().to_vec())
    }
}

/// Why one JWKS entry (or the whole document) could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwkError {
    /// Position in `keys`, or [`JwkError::WHOLE_SET`] when the document itself is wrong.
    pub index: usize,
    pub kid: Option<String>,
    pub message: String,
}

impl JwkError {
    /// `index` of an error about the JWKS document rather than one key.
    pub const WHOLE_SET: usize = usize::MAX;

    fn whole_set(message: &str) -> JwkError {
        JwkError {
            index: JwkError::WHOLE_SET,
            kid: None,
            message: message.to_string(),
        }
    }
}

impl fmt::Display for JwkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.index == JwkError::WHOLE_SET {
            return write!(f, "jwks: {}", self.message);
        }
        write!(f, "keys[{}]", self.index)?;
        if let Some(kid) = &self.kid {
            write!(f, " (kid {})", quoted(kid))?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for JwkError {}

/// The most keys one token's signature is checked against. A token without
/// `kid` may be tried against every key that fits its `alg`; bounding that
/// keeps the cost of one garbage token (PS512 or ES512 against a large set)
/// within a few verifications. A token for which more keys fit is checked
/// against the first ones only (a `kid` match before keys without a `kid`,
/// then in JWKS order) and refused as a bad signature when none verifies;
/// loading such a set logs a warning.
pub const MAX_KEYS_PER_TOKEN: usize = 3;

/// Why a remote JWKS entry of type `oct` is skipped.
pub const REMOTE_OCT_REFUSED: &str =
    "oct (HMAC) key refused: a secret published in a remote JWKS lets anyone who fetches it mint tokens";

/// The verification keys of one issuer. Debug shows kids and key types only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

impl KeySet {
    /// Config path: every key must be valid, else the error names the first bad
    /// key. Takes the JWKS object `{"keys": [...]}`; an empty `keys` array gives
    /// an empty set (the caller decides whether that is acceptable).
    pub fn from_jwks(jwks: &Value) -> Result<KeySet, JwkError> {
        let entries = jwks_entries(jwks)?;
        let mut keys = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            keys.push(load_entry(index, entry)?);
        }
        Ok(KeySet::from_keys(keys))
    }

    /// Remote path: keeps the usable keys and returns the problems with the
    /// others, so one bad key published by an issuer does not lock out the rest.
    /// `oct` keys are refused here ([`REMOTE_OCT_REFUSED`]): an HMAC secret
    /// belongs in the configuration, never in a document anyone can fetch.
    pub fn from_jwks_lenient(jwks: &Value) -> (KeySet, Vec<JwkError>) {
        let entries = match jwks_entries(jwks) {
            Ok(entries) => entries,
            Err(e) => return (KeySet::default(), vec![e]),
        };
        let mut keys = Vec::new();
        let mut errors = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let loaded = if entry.get("kty").and_then(Value::as_str) == Some("oct") {
                Err(entry_error(index, entry, REMOTE_OCT_REFUSED.to_string()))
            } else {
                load_entry(index, entry)
            };
            match loaded {
                Ok(key) => keys.push(key),
                Err(e) => errors.push(e),
            }
        }
        (KeySet::from_keys(keys), errors)
    }

    /// A set from keys built elsewhere (e.g. [`Jwk::from_hmac_secret`]).
    pub fn from_keys(keys: Vec<Jwk>) -> KeySet {
        let set = KeySet { keys };
        for (alg, fitting) in set.crowded_algorithms() {
            log::warn!(
                "jwt-auth: {fitting} keys fit {alg}: a token without kid is checked against \
                 the first {MAX_KEYS_PER_TOKEN} only and refused if none of them signed it"
            );
        }
        set
    }

    /// The algorithms for which more than [`MAX_KEYS_PER_TOKEN`] keys fit,
    /// with how many: a token without `kid` is not tried against them all.
    pub fn crowded_algorithms(&self) -> Vec<(Algorithm, usize)> {
        Algorithm::ALL
            .into_iter()
            .map(|alg| (alg, self.keys.iter().filter(|k| k.fits(alg)).count()))
            .filter(|&(_, fitting)| fitting > MAX_KEYS_PER_TOKEN)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many keys may verify signatures at all: `len()` minus the keys whose
    /// `use`/`key_ops` exclude verification. Zero means every token will fail.
    pub fn verification_key_count(&self) -> usize {
        self.keys.iter().filter(|k| k.for_verification).count()
    }

    /// The kids of the keys that have one, in JWKS order (for diagnostics).
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(Jwk::kid)
    }

    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// Verifies the token's signature.
    ///
    /// Candidates: with a token `kid`, the keys with that kid, then the keys
    /// without a kid; without a token `kid`, every key. Of those, only keys
    /// that [`Jwk::fits`] the token's `alg` are tried, at most
    /// [`MAX_KEYS_PER_TOKEN`] of them, in that order. Errors:
    /// - `UnknownKid`: the token names a kid that no key in the set has, and no
    ///   kid-less key fits;
    /// - `NoMatchingKey`: no candidate fits the algorithm (including a key with
    ///   the named kid that has another type, curve, `alg` or `use`);
    /// - `BadSignature`: the fitting candidates tried did not verify it.
    pub fn verify(&self, token: &UntrustedToken<'_>) -> Result<(), TokenError> {
        self.verify_with(token, None)
    }

    /// [`KeySet::verify`], letting `accelerator` check signatures it can
    /// (the proxy's native crypto); the rules of key selection are the same.
    pub fn verify_with(
        &self,
        token: &UntrustedToken<'_>,
        accelerator: Option<&dyn SignatureAccelerator>,
    ) -> Result<(), TokenError> {
        let alg = token.header.alg;
        let kid = token.header.kid.as_deref();
        let input = token.signing_input().as_bytes();
        let mut tried_any = false;
        for key in self.candidates(alg, kid).take(MAX_KEYS_PER_TOKEN) {
            tried_any = true;
            if verify_signature_with(alg, key, input, token.signature(), accelerator) {
                return Ok(());
            }
        }
        if tried_any {
            return Err(TokenError::BadSignature);
        }
        match kid {
            Some(wanted) if !self.kids().any(|own| own == wanted) => Err(TokenError::UnknownKid),
            _ => Err(TokenError::NoMatchingKey),
        }
    }

    /// The keys fitting `alg` that a token naming `kid` may be signed with,
    /// the ones with that very kid first.
    fn candidates<'s>(
        &'s self,
        alg: Algorithm,
        kid: Option<&'s str>,
    ) -> impl Iterator<Item = &'s Jwk> + 's {
        let fitting = self.keys.iter().filter(move |k| k.fits(alg));
        let named = fitting
            .clone()
            .filter(move |k| kid.is_some() && k.kid() == kid);
        let open = fitting.filter(move |k| kid.is_none() || k.kid().is_none());
        named.chain(open)
    }
}

fn jwks_entries(jwks: &Value) -> Result<&Vec<Value>, JwkError> {
    let obj = jwks
        .as_object()
        .ok_or_else(|| JwkError::whole_set("JWKS is not a JSON object"))?;
    match obj.get("keys") {
        Some(Value::Array(entries)) => Ok(entries),
        Some(_) => Err(JwkError::whole_set("\"keys\" is not an array")),
        None => Err(JwkError::whole_set("JWKS has no \"keys\" array")),
    }
}

fn load_entry(index: usize, entry: &Value) -> Result<Jwk, JwkError> {
    Jwk::from_value(entry).map_err(|message| entry_error(index, entry, message))
}

fn entry_error(index: usize, entry: &Value, message: String) -> JwkError {
    JwkError {
        index,
        // Name the key even when it is otherwise unusable, if it has a kid.
        kid: entry.get("kid").and_then(Value::as_str).map(str::to_string),
        message,
    }
}

/// `use` must be "sig" when present, `key_ops` must include "verify" when
/// present (RFC 7517 §4.2, §4.3). Wrong types are errors; other values make the
/// key unusable for us, which is not an error (encryption keys share JWKS).
fn usable_for_verification(obj: &Map<String, Value>) -> Result<bool, String> {
    let use_ok = optional_str(obj, "use")?.is_none_or(|u| u == "sig");
    let ops_ok = match obj.get("key_ops") {
        None => true,
        Some(Value::Array(ops)) => {
            if !ops.iter().all(Value::is_string) {
                return Err("key_ops is not an array of strings".to_string());
            }
            ops.iter().any(|op| op.as_str() == Some("verify"))
        }
        Some(_) => return Err("key_ops is not an array of strings".to_string()),
    };
    Ok(use_ok && ops_ok)
}

fn rsa_material(obj: &Map<String, Value>) -> Result<KeyMaterial, String> {
    let n = rsa::BigUint::from_bytes_be(&b64_member(obj, "n")?);
    let e = rsa::BigUint::from_bytes_be(&b64_member(obj, "e")?);
    let bits = n.bits();
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"
        ));
    }
    if bits > MAX_RSA_BITS {
        return Err(format!(
            "RSA key has {bits} bits; at most {MAX_RSA_BITS} are supported"
        ));
    }
    // The rsa crate checks: n odd, e odd, 2 <= e < n, e < 2^33.
    let key = rsa::RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS)
        .map_err(|err| format!("invalid RSA key: {err}"))?;
    Ok(KeyMaterial::Rsa(key))
}

fn ec_material(obj: &Map<String, Value>) -> Result<KeyMaterial, String> {
    let crv = optional_str(obj, "crv")?.ok_or_else(|| "missing crv".to_string())?;
    let size = match crv {
        "P-256" => 32,
        "P-384" => 48,
        "P-521" => 66,
        other => return Err(format!("unsupported EC curve {}", quoted(other))),
    };
    let x = b64_member(obj, "x")?;
    let y = b64_member(obj, "y")?;
    // SEC1 uncompressed point: 0x04 || x || y, each coordinate left-padded to
    // the field size. RFC 7518 wants full-size coordinates, but some
    // publishers drop leading zero bytes; the value is the same either way.
    let mut sec1 = Vec::with_capacity(1 + 2 * size);
    sec1.push(0x04);
    for (name, coord) in [("x", &x), ("y", &y)] {
        if coord.is_empty() || coord.len() > size {
            return Err(format!(
                "{crv} coordinate {name} has {} bytes; expected {size}",
                coord.len()
            ));
        }
        sec1.resize(sec1.len() + size - coord.len(), 0);
        sec1.extend_from_slice(coord);
    }
    // Coordinates not below the field prime, points not on the curve and the
    // identity are refused (the curve crates' from_sec1_bytes): they would
    // otherwise enable invalid-curve tricks.
    let not_on_curve = |_| format!("{crv} point is not on the curve");
    Ok(match crv {
        "P-256" => {
            KeyMaterial::P256(p256::PublicKey::from_sec1_bytes(&sec1).map_err(not_on_curve)?)
        }
        "P-384" => {
            KeyMaterial::P384(p384::PublicKey::from_sec1_bytes(&sec1).map_err(not_on_curve)?)
        }
        _ => KeyMaterial::P521(p521::PublicKey::from_sec1_bytes(&sec1).map_err(not_on_curve)?),
    })
}

fn okp_material(obj: &Map<String, Value>) -> Result<KeyMaterial, String> {
    let crv = optional_str(obj, "crv")?.ok_or_else(|| "missing crv".to_string())?;
    if crv != "Ed25519" {
        return Err(format!("unsupported OKP curve {}", quoted(crv)));
    }
    let x = b64_member(obj, "x")?;
    let bytes: [u8; 32] = x
        .as_slice()
        .try_into()
        .map_err(|_| format!("Ed25519 key has {} bytes; expected 32", x.len()))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|_| "Ed25519 key is not a valid curve point".to_string())?;
    // A non-canonical encoding (y >= p) names the same point as another
    // string; accepting only the canonical one keeps "same key" == "same bytes".
    if key.to_edwards().compress().as_bytes() != &bytes {
        return Err("Ed25519 key is not canonically encoded".to_string());
    }
    // Small-order keys let one signature verify for many messages.
    if key.is_weak() {
        return Err("Ed25519 key is a small-order point".to_string());
    }
    Ok(KeyMaterial::Ed25519(key))
}

fn oct_material(secret: Vec<u8>, alg: Option<Algorithm>) -> Result<KeyMaterial, String> {
    let needed = match alg {
        Some(Algorithm::Hs384) => 48,
        Some(Algorithm::Hs512) => 64,
        _ => MIN_HMAC_SECRET_BYTES,
    };
    if secret.len() < needed {
        let what = alg.map_or("HMAC", Algorithm::name);
        return Err(format!(
            "{what} secret has {} bytes; at least {needed} are required",
            secret.len()
        ));
    }
    Ok(KeyMaterial::Oct(HmacSecret::new(secret)?))
}

fn material_summary(material: &KeyMaterial) -> &'static str {
    match material {
        KeyMaterial::Oct(_) => "oct",
        KeyMaterial::Rsa(_) => "RSA",
        KeyMaterial::P256(_) => "EC P-256",
        KeyMaterial::P384(_) => "EC P-384",
        KeyMaterial::P521(_) => "EC P-521",
        KeyMaterial::Ed25519(_) => "OKP Ed25519",
    }
}

fn optional_str<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{name} is not a string")),
    }
}

fn b64_member(obj: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let text = optional_str(obj, name)?.ok_or_else(|| format!("missing {name}"))?;
    let bytes = JWK_B64
        .decode(text)
        .map_err(|_| format!("{name} is not base64url"))?;
    if bytes.is_empty() {
        return Err(format!("{name} is empty"));
    }
    Ok(bytes)
}

/// Quotes a value from the JWKS for a message, keeping it short and on one
/// line so a hostile JWKS cannot forge log lines.
fn quoted(s: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut out: String = s.chars().take(MAX_CHARS).collect();
    if s.chars().count() > MAX_CHARS {
        out.push('…');
    }
    format!("{out:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::test_support::{
        b64, jwk, jwk_with, jwks, oct_jwk, secret64, signing_key, token, token_with_header,
        SigningKey,
    };
    use crate::jwt::{parse, Algorithm::*};
    use serde_json::json;

    const ALL_FIXTURES: [&str; 8] = [
        "rsa2048", "rsa2048b", "rsa2560", "rsa3072", "p256", "p384", "p521", "ed25519",
    ];

    fn load_err(key: Value) -> String {
        Jwk::from_value(&key).unwrap_err()
    }

    fn verify_token(set: &KeySet, token: &str) -> Result<(), TokenError> {
        set.verify(&parse(token, 16 * 1024).unwrap())
    }

    // ---- loading -------------------------------------------------------

    #[test]
    fn loads_every_key_type() {
        let mut keys: Vec<Value> = ALL_FIXTURES.iter().map(|n| jwk(n)).collect();
        keys.push(oct_jwk(&secret64(), Some("hmac")));
        let set = KeySet::from_jwks(&jwks(keys)).unwrap();
        assert_eq!(set.len(), 9);
        assert!(!set.is_empty());
        let kids: Vec<&str> = set.kids().collect();
        assert_eq!(
            kids,
            [
                "rsa-2048",
                "rsa-2048-b",
                "rsa-2560",
                "rsa-3072",
                "ec-p256",
                "ec-p384",
                "ec-p521",
                "ed25519",
                "hmac"
            ]
        );
        let ktys: Vec<&str> = set.keys().iter().map(|k| k.material().kty()).collect();
        assert_eq!(
            ktys,
            ["RSA", "RSA", "RSA", "RSA", "EC", "EC", "EC", "OKP", "oct"]
        );
        assert!(matches!(set.keys()[6].material(), KeyMaterial::P521(_)));
    }

    #[test]
    fn public_jwks_match_private_fixtures() {
        use p256::pkcs8::EncodePublicKey;
        for name in ALL_FIXTURES {
            let key = Jwk::from_value(&jwk(name)).unwrap();
            let expected = match signing_key(name) {
                SigningKey::Rsa(k) => k.to_public_key().to_public_key_der().unwrap().into_vec(),
                SigningKey::P256(k) => k.verifying_key().to_public_key_der().unwrap().into_vec(),
                SigningKey::P384(k) => k.verifying_key().to_public_key_der().unwrap().into_vec(),
                SigningKey::P521(k) => {
                    p521::PublicKey::from_affine(*p521::ecdsa::VerifyingKey::from(&k).as_affine())
                        .unwrap()
                        .to_public_key_der()
                        .unwrap()
                        .into_vec()
                }
                SigningKey::Ed25519(k) => {
                    let mut der = vec![
                        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
                    ];
                    der.extend_from_slice(k.verifying_key().as_bytes());
                    der
                }
                SigningKey::Hmac(_) => unreachable!(),
            };
            assert_eq!(key.spki_der().unwrap(), expected, "{name}");
        }
    }

    #[test]
    fn spki_der_parses_as_spki() {
        use p256::pkcs8::spki::SubjectPublicKeyInfoRef;
        let oids = [
            ("rsa2048", "1.2.840.113549.1.1.1"),
            ("p256", "1.2.840.10045.2.1"),
            ("p384", "1.2.840.10045.2.1"),
            ("p521", "1.2.840.10045.2.1"),
            ("ed25519", "1.3.101.112"),
        ];
        for (name, oid) in oids {
            let der = Jwk::from_value(&jwk(name)).unwrap().spki_der().unwrap();
            let spki = SubjectPublicKeyInfoRef::try_from(der.as_slice()).unwrap();
            assert_eq!(spki.algorithm.oid.to_string(), oid, "{name}");
        }
        let oct = Jwk::from_value(&oct_jwk(&secret64(), None)).unwrap();
        assert_eq!(oct.spki_der(), None);
    }

    #[test]
    fn rsa_1024_is_refused_with_a_clear_message() {
        let err = KeySet::from_jwks(&jwks(vec![jwk("rsa2048"), jwk("p256"), jwk("rsa1024")]))
            .unwrap_err();
        assert_eq!(err.index, 2);
        assert_eq!(err.kid.as_deref(), Some("rsa-1024"));
        assert_eq!(
            err.to_string(),
            "keys[2] (kid \"rsa-1024\"): RSA key has 1024 bits; at least 2048 are required"
        );
    }

    #[test]
    fn bad_keys_are_refused() {
        let n = jwk("rsa2048")["n"].as_str().unwrap().to_string();
        let p256_x = jwk("p256")["x"].as_str().unwrap().to_string();
        let p256_y = jwk("p256")["y"].as_str().unwrap().to_string();
        let mut off_curve_y = URL_SAFE_NO_PAD_DECODE(&p256_y);
        off_curve_y[31] ^= 1;
        let cases: Vec<(Value, &str)> = vec![
            (json!("not an object"), "key is not a JSON object"),
            (jwk_with("rsa2048", json!({"kty": null})), "missing kty"),
            (
                jwk_with("rsa2048", json!({"kty": 1})),
                "kty is not a string",
            ),
            (
                jwk_with("rsa2048", json!({"kty": "RSA-ish"})),
                "unsupported kty \"RSA-ish\"",
            ),
            (jwk_with("rsa2048", json!({"n": null})), "missing n"),
            (jwk_with("rsa2048", json!({"e": null})), "missing e"),
            (
                jwk_with("rsa2048", json!({"n": format!("{n}!")})),
                "n is not base64url",
            ),
            (
                jwk_with("rsa2048", json!({"n": n.replace('_', "/")})),
                "n is not base64url",
            ),
            (jwk_with("rsa2048", json!({"e": ""})), "e is empty"),
            (
                jwk_with("rsa2048", json!({"e": "AAAC"})),
                "invalid RSA key: ",
            ),
            (
                jwk_with("rsa2048", json!({"d": "AQAB"})),
                "contains private key material",
            ),
            (
                jwk_with("rsa2048", json!({"alg": "ES256"})),
                "alg ES256 does not fit a RSA key",
            ),
            (
                jwk_with("rsa2048", json!({"alg": "XS256"})),
                "unsupported alg \"XS256\"",
            ),
            (
                jwk_with("rsa2048", json!({"alg": "none"})),
                "unsupported alg \"none\"",
            ),
            (
                jwk_with("rsa2048", json!({"kid": 5})),
                "kid is not a string",
            ),
            (
                jwk_with("rsa2048", json!({"use": ["sig"]})),
                "use is not a string",
            ),
            (
                jwk_with("rsa2048", json!({"key_ops": "verify"})),
                "key_ops is not an array",
            ),
            (
                jwk_with("rsa2048", json!({"key_ops": [1]})),
                "key_ops is not an array",
            ),
            (
                jwk_with("p256", json!({"crv": "secp256k1"})),
                "unsupported EC curve \"secp256k1\"",
            ),
            (jwk_with("p256", json!({"crv": null})), "missing crv"),
            (
                jwk_with("p256", json!({"crv": "P-384"})),
                "P-384 point is not on the curve",
            ),
            (
                jwk_with("p384", json!({"crv": "P-256"})),
                "P-256 coordinate x has 48 bytes; expected 32",
            ),
            (jwk_with("p256", json!({"y": null})), "missing y"),
            (
                jwk_with("p256", json!({"y": b64(&off_curve_y)})),
                "P-256 point is not on the curve",
            ),
            (
                jwk_with("p256", json!({"x": b64(&[0u8; 33])})),
                "P-256 coordinate x has 33 bytes",
            ),
            (
                jwk_with("p256", json!({"x": format!("+{}", &p256_x[1..])})),
                "x is not base64url",
            ),
            (
                jwk_with("p256", json!({"x": format!("{p256_x}===")})),
                "x is not base64url",
            ),
            (
                jwk_with("p256", json!({"d": "AAAA"})),
                "contains private key material",
            ),
            (
                jwk_with("p256", json!({"alg": "ES384"})),
                "alg ES384 does not fit a EC P-256 key",
            ),
            (
                jwk_with("p521", json!({"alg": "ES256"})),
                "alg ES256 does not fit a EC P-521 key",
            ),
            (
                jwk_with("ed25519", json!({"crv": "X25519"})),
                "unsupported OKP curve \"X25519\"",
            ),
            (
                jwk_with("ed25519", json!({"crv": "Ed448"})),
                "unsupported OKP curve \"Ed448\"",
            ),
            (
                jwk_with("ed25519", json!({"x": b64(&[1u8; 31])})),
                "Ed25519 key has 31 bytes",
            ),
            (
                jwk_with("ed25519", json!({"x": b64(&[0u8; 32])})),
                "Ed25519 key is a small-order point",
            ),
            (
                jwk_with("ed25519", json!({"x": b64(&[0xffu8; 32])})),
                "Ed25519 key is not canonically encoded",
            ),
            (
                jwk_with("ed25519", json!({"x": b64(&not_a_point())})),
                "Ed25519 key is not a valid curve point",
            ),
            (
                jwk_with("ed25519", json!({"alg": "ES256"})),
                "alg ES256 does not fit a OKP Ed25519 key",
            ),
            (json!({"kty": "oct"}), "missing k"),
            (json!({"kty": "oct", "k": ""}), "k is empty"),
            (
                oct_jwk(b"secret", None),
                "HMAC secret has 6 bytes; at least 32 are required",
            ),
            (
                oct_jwk(&[1u8; 31], None),
                "HMAC secret has 31 bytes; at least 32 are required",
            ),
            (
                jwk_with(
                    "rsa2048",
                    json!({"kty": "oct", "k": b64(&[1; 40]), "alg": "HS384"}),
                ),
                "HS384 secret has 40 bytes; at least 48 are required",
            ),
            (
                json!({"kty": "oct", "k": b64(&[1; 40]), "alg": "RS256"}),
                "alg RS256 does not fit a oct key",
            ),
        ];
        for (key, expected) in cases {
            let err = load_err(key.clone());
            assert!(
                err.starts_with(expected),
                "{key}: got {err:?}, want {expected:?}"
            );
            assert!(!err.contains('\n'));
        }
    }

    /// The first y (little-endian, small values) with no matching x on the curve.
    fn not_a_point() -> [u8; 32] {
        (2u8..=255)
            .map(|y| {
                let mut b = [0u8; 32];
                b[0] = y;
                b
            })
            .find(|b| ed25519_dalek::VerifyingKey::from_bytes(b).is_err())
            .unwrap()
    }

    #[allow(non_snake_case)]
    fn URL_SAFE_NO_PAD_DECODE(s: &str) -> Vec<u8> {
        JWK_B64.decode(s).unwrap()
    }

    #[test]
    fn lenient_encodings_that_carry_no_meaning_are_accepted() {
        // Padded base64url.
        let n = jwk("rsa2048")["n"].as_str().unwrap().to_string();
        let padded = format!("{n}{}", "=".repeat((4 - n.len() % 4) % 4));
        assert!(Jwk::from_value(&jwk_with("rsa2048", json!({"n": padded}))).is_ok());
        // A leading zero byte on n does not change the modulus.
        let mut raw = URL_SAFE_NO_PAD_DECODE(&n);
        raw.insert(0, 0);
        let key = Jwk::from_value(&jwk_with("rsa2048", json!({"n": b64(&raw)}))).unwrap();
        assert_eq!(key, Jwk::from_value(&jwk("rsa2048")).unwrap());
        // P-521 coordinates missing their leading zero byte.
        let x = URL_SAFE_NO_PAD_DECODE(jwk("p521")["x"].as_str().unwrap());
        assert_eq!((x.len(), x[0]), (66, 0));
        let short = Jwk::from_value(&jwk_with("p521", json!({"x": b64(&x[1..])}))).unwrap();
        assert_eq!(short, Jwk::from_value(&jwk("p521")).unwrap());
    }

    #[test]
    fn oversized_rsa_is_refused() {
        let mut n = vec![0xffu8; MAX_RSA_BITS / 8 + 1];
        n[0] = 0x01;
        let err = load_err(jwk_with("rsa2048", json!({"n": b64(&n)})));
        assert_eq!(err, "RSA key has 8193 bits; at most 8192 are supported");
    }

    #[test]
    fn jwks_document_errors() {
        for (doc, msg) in [
            (json!([]), "jwks: JWKS is not a JSON object"),
            (json!({}), "jwks: JWKS has no \"keys\" array"),
            (json!({"keys": {}}), "jwks: \"keys\" is not an array"),
            (jwk("rsa2048"), "jwks: JWKS has no \"keys\" array"),
        ] {
            let err = KeySet::from_jwks(&doc).unwrap_err();
            assert_eq!(err.index, JwkError::WHOLE_SET);
            assert_eq!(err.to_string(), msg);
            let (set, errors) = KeySet::from_jwks_lenient(&doc);
            assert!(set.is_empty());
            assert_eq!(errors, vec![err]);
        }
        let empty = KeySet::from_jwks(&json!({"keys": []})).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn lenient_keeps_good_keys_and_reports_bad_ones() {
        let doc = jwks(vec![
            jwk_with("rsa2048", json!({"n": null})),
            jwk("rsa2048"),
            jwk("rsa1024"),
            jwk("p256"),
            json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}),
            json!({"kty": "foo", "kid": "weird"}),
            jwk_with("p256", json!({"crv": "P-999", "kid": "bad-crv"})),
            jwk("ed25519"),
            json!(17),
            jwk_with("rsa2048b", json!({"use": "enc"})),
        ]);
        let (set, errors) = KeySet::from_jwks_lenient(&doc);
        assert_eq!(
            set.kids().collect::<Vec<_>>(),
            ["rsa-2048", "ec-p256", "ed25519", "rsa-2048-b"]
        );
        let summary: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            summary,
            [
                "keys[0] (kid \"rsa-2048\"): missing n",
                "keys[2] (kid \"rsa-1024\"): RSA key has 1024 bits; at least 2048 are required",
                "keys[4]: P-256 point is not on the curve",
                "keys[5] (kid \"weird\"): unsupported kty \"foo\"",
                "keys[6] (kid \"bad-crv\"): unsupported EC curve \"P-999\"",
                "keys[8]: key is not a JSON object",
            ]
        );
        // The strict path stops at the first bad key.
        assert_eq!(KeySet::from_jwks(&doc).unwrap_err().index, 0);
    }

    #[test]
    fn hostile_strings_in_messages_stay_on_one_line() {
        let kid = format!("a\nb\"c{}", "x".repeat(200));
        let err = KeySet::from_jwks(&jwks(vec![json!({"kty": "zz\r\n", "kid": kid})])).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains('\n') && !text.contains('\r'), "{text}");
        assert!(text.len() < 250, "{text}");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let secret = secret64();
        let set =
            KeySet::from_jwks(&jwks(vec![oct_jwk(&secret, Some("h")), jwk("rsa2048")])).unwrap();
        let debug = format!("{set:?}");
        assert!(debug.contains("redacted"), "{debug}");
        assert!(!debug.contains(&b64(&secret)));
        assert!(!debug.contains(
            &format!("{:?}", &secret[..4])
                .trim_end_matches(']')
                .to_string()
        ));
        assert!(!debug.contains(&format!("{}, {}, {}", secret[0], secret[1], secret[2])));
    }

    #[test]
    fn hmac_secret_constructor() {
        assert!(Jwk::from_hmac_secret(vec![1; 32], None, None).is_ok());
        assert!(Jwk::from_hmac_secret(vec![1; 31], None, None).is_err());
        assert!(Jwk::from_hmac_secret(vec![1; 32], None, Some(Hs512)).is_err());
        assert!(Jwk::from_hmac_secret(vec![1; 64], Some("k".into()), Some(Hs512)).is_ok());
        assert!(Jwk::from_hmac_secret(vec![1; 64], None, Some(Rs256)).is_err());
        let set = KeySet::from_keys(vec![Jwk::from_hmac_secret(secret64(), None, None).unwrap()]);
        let t = token(Hs512, None, &json!({}), &SigningKey::Hmac(secret64()));
        assert_eq!(verify_token(&set, &t), Ok(()));
    }

    // ---- selection and verification -------------------------------------

    fn rsa_pair_set() -> KeySet {
        KeySet::from_jwks(&jwks(vec![jwk("rsa2048b"), jwk("rsa2048")])).unwrap()
    }

    #[test]
    fn every_algorithm_end_to_end() {
        let set = KeySet::from_jwks(&jwks(vec![
            jwk("rsa2048"),
            jwk("p256"),
            jwk("p384"),
            jwk("p521"),
            jwk("ed25519"),
            oct_jwk(&secret64(), Some("hmac")),
        ]))
        .unwrap();
        let cases = [
            (Hs256, "hmac"),
            (Hs384, "hmac"),
            (Hs512, "hmac"),
            (Rs256, "rsa-2048"),
            (Rs384, "rsa-2048"),
            (Rs512, "rsa-2048"),
            (Ps256, "rsa-2048"),
            (Ps384, "rsa-2048"),
            (Ps512, "rsa-2048"),
            (Es256, "ec-p256"),
            (Es384, "ec-p384"),
            (Es512, "ec-p521"),
            (EdDsa, "ed25519"),
        ];
        for (alg, kid) in cases {
            let key = match kid {
                "hmac" => SigningKey::Hmac(secret64()),
                "rsa-2048" => signing_key("rsa2048"),
                "ec-p256" => signing_key("p256"),
                "ec-p384" => signing_key("p384"),
                "ec-p521" => signing_key("p521"),
                _ => signing_key("ed25519"),
            };
            let claims = json!({"sub": "alice", "n": 1});
            for with_kid in [Some(kid), None] {
                let t = token(alg, with_kid, &claims, &key);
                assert_eq!(verify_token(&set, &t), Ok(()), "{alg:?} {with_kid:?}");
            }
            // Tampered payload: same header and signature, other claims.
            let t = token(alg, Some(kid), &claims, &key);
            let mut parts: Vec<&str> = t.split('.').collect();
            let forged = b64(json!({"sub": "mallory", "n": 1}).to_string().as_bytes());
            parts[1] = &forged;
            let forged_token = parts.join(".");
            assert_eq!(
                verify_token(&set, &forged_token),
                Err(TokenError::BadSignature),
                "{alg:?}"
            );
        }
    }

    #[test]
    fn kid_selection() {
        let set = rsa_pair_set();
        let good = signing_key("rsa2048");
        // kid match.
        assert_eq!(
            verify_token(&set, &token(Rs256, Some("rsa-2048"), &json!({}), &good)),
            Ok(())
        );
        // kid miss.
        assert_eq!(
            verify_token(&set, &token(Rs256, Some("nope"), &json!({}), &good)),
            Err(TokenError::UnknownKid)
        );
        // kid of the other key: only that key is tried.
        assert_eq!(
            verify_token(&set, &token(Rs256, Some("rsa-2048-b"), &json!({}), &good)),
            Err(TokenError::BadSignature)
        );
        // No kid: every fitting key is tried, including the second one.
        assert_eq!(
            verify_token(&set, &token(Rs256, None, &json!({}), &good)),
            Ok(())
        );
        assert_eq!(
            verify_token(
                &set,
                &token(Rs256, None, &json!({}), &signing_key("rsa2048b"))
            ),
            Ok(())
        );
        // No kid and no key verifies.
        assert_eq!(
            verify_token(
                &set,
                &token(Rs256, None, &json!({}), &signing_key("rsa3072"))
            ),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn key_without_kid_serves_tokens_with_kid() {
        let set = KeySet::from_jwks(&jwks(vec![
            jwk("rsa2048b"),
            jwk_with("rsa2048", json!({"kid": null})),
        ]))
        .unwrap();
        let good = signing_key("rsa2048");
        assert_eq!(
            verify_token(&set, &token(Rs256, Some("anything"), &json!({}), &good)),
            Ok(())
        );
        // kid names the other key: the kid-less key is still a candidate.
        assert_eq!(
            verify_token(&set, &token(Rs256, Some("rsa-2048-b"), &json!({}), &good)),
            Ok(())
        );
        // Unknown kid, kid-less key present but the signature is wrong.
        assert_eq!(
            verify_token(
                &set,
                &token(Rs256, Some("x"), &json!({}), &signing_key("rsa3072"))
            ),
            Err(TokenError::BadSignature)
        );
        // Unknown kid, kid-less key of another type: nothing to try.
        assert_eq!(
            verify_token(
                &set,
                &token(Es256, Some("x"), &json!({}), &signing_key("p256"))
            ),
            Err(TokenError::UnknownKid)
        );
    }

    #[test]
    fn no_key_for_algorithm() {
        let set = rsa_pair_set();
        for (alg, key) in [
            (Es256, signing_key("p256")),
            (EdDsa, signing_key("ed25519")),
            (Hs256, SigningKey::Hmac(secret64())),
        ] {
            assert_eq!(
                verify_token(&set, &token(alg, None, &json!({}), &key)),
                Err(TokenError::NoMatchingKey),
                "{alg:?}"
            );
            // A kid that exists but names a key of another type.
            assert_eq!(
                verify_token(&set, &token(alg, Some("rsa-2048"), &json!({}), &key)),
                Err(TokenError::NoMatchingKey),
                "{alg:?}"
            );
        }
        assert_eq!(
            KeySet::default().verify(
                &parse(
                    &token(Rs256, None, &json!({}), &signing_key("rsa2048")),
                    9999
                )
                .unwrap()
            ),
            Err(TokenError::NoMatchingKey)
        );
        assert_eq!(
            KeySet::default().verify(
                &parse(
                    &token(Rs256, Some("k"), &json!({}), &signing_key("rsa2048")),
                    9999
                )
                .unwrap()
            ),
            Err(TokenError::UnknownKid)
        );
    }

    #[test]
    fn rsa_public_key_as_hmac_secret_never_verifies() {
        let set = KeySet::from_jwks(&jwks(vec![jwk("rsa2048")])).unwrap();
        let public = Jwk::from_value(&jwk("rsa2048")).unwrap();
        let spki = public.spki_der().unwrap();
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&spki)
        );
        let n = URL_SAFE_NO_PAD_DECODE(jwk("rsa2048")["n"].as_str().unwrap());
        let jwk_text = jwk("rsa2048").to_string();
        for secret in [spki, pem.into_bytes(), n, jwk_text.into_bytes()] {
            for alg in [Hs256, Hs384, Hs512] {
                for kid in [Some("rsa-2048"), None] {
                    let t = token(
                        alg,
                        kid,
                        &json!({"sub": "x"}),
                        &SigningKey::Hmac(secret.clone()),
                    );
                    assert_eq!(
                        verify_token(&set, &t),
                        Err(TokenError::NoMatchingKey),
                        "{alg:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn ec_curve_mismatch() {
        let set = KeySet::from_jwks(&jwks(vec![jwk("p384")])).unwrap();
        // ES256 token signed by a P-256 key, set only has P-384.
        let t = token(Es256, None, &json!({}), &signing_key("p256"));
        assert_eq!(verify_token(&set, &t), Err(TokenError::NoMatchingKey));
        // A P-384 signature labelled ES512 or ES256 never reaches the P-384 key.
        for alg in [Es256, Es512] {
            let header = json!({"alg": alg.name(), "kid": "ec-p384"});
            let t = token_with_header(&header, &json!({}), Es384, &signing_key("p384"));
            assert_eq!(
                verify_token(&set, &t),
                Err(TokenError::NoMatchingKey),
                "{alg:?}"
            );
        }
        let t = token(Es384, Some("ec-p384"), &json!({}), &signing_key("p384"));
        assert_eq!(verify_token(&set, &t), Ok(()));
    }

    #[test]
    fn jwk_alg_restricts_the_key() {
        let set =
            KeySet::from_jwks(&jwks(vec![jwk_with("rsa2048", json!({"alg": "RS256"}))])).unwrap();
        let key = signing_key("rsa2048");
        assert_eq!(
            verify_token(&set, &token(Rs256, None, &json!({}), &key)),
            Ok(())
        );
        for alg in [Rs384, Rs512, Ps256] {
            assert_eq!(
                verify_token(&set, &token(alg, Some("rsa-2048"), &json!({}), &key)),
                Err(TokenError::NoMatchingKey),
                "{alg:?}"
            );
        }
        let set = KeySet::from_jwks(&jwks(vec![oct_jwk(&secret64(), None)
            .as_object()
            .cloned()
            .map(|mut o| {
                o.insert("alg".into(), json!("HS512"));
                Value::Object(o)
            })
            .unwrap()]))
        .unwrap();
        let hmac = SigningKey::Hmac(secret64());
        assert_eq!(
            verify_token(&set, &token(Hs512, None, &json!({}), &hmac)),
            Ok(())
        );
        assert_eq!(
            verify_token(&set, &token(Hs256, None, &json!({}), &hmac)),
            Err(TokenError::NoMatchingKey)
        );
    }

    #[test]
    fn use_and_key_ops_other_than_signing_skip_the_key() {
        let key = signing_key("rsa2048");
        for changes in [
            json!({"use": "enc"}),
            json!({"use": "SIG"}),
            json!({"key_ops": ["encrypt", "wrapKey"]}),
            json!({"key_ops": []}),
        ] {
            let set = KeySet::from_jwks(&jwks(vec![jwk_with("rsa2048", changes.clone())])).unwrap();
            assert_eq!(set.len(), 1);
            assert_eq!(set.verification_key_count(), 0);
            assert_eq!(
                verify_token(&set, &token(Rs256, Some("rsa-2048"), &json!({}), &key)),
                Err(TokenError::NoMatchingKey),
                "{changes}"
            );
            assert_eq!(
                verify_token(&set, &token(Rs256, None, &json!({}), &key)),
                Err(TokenError::NoMatchingKey),
                "{changes}"
            );
        }
        for changes in [
            json!({"use": "sig"}),
            json!({"key_ops": ["verify"]}),
            json!({"use": null}),
        ] {
            let set = KeySet::from_jwks(&jwks(vec![jwk_with("rsa2048", changes.clone())])).unwrap();
            assert_eq!(
                verify_token(&set, &token(Rs256, None, &json!({}), &key)),
                Ok(()),
                "{changes}"
            );
        }
    }

    #[test]
    fn embedded_jwk_header_is_not_trusted() {
        // The attacker signs with their own key and ships it in the header.
        let attacker = signing_key("rsa2048b");
        let header = json!({"alg": "RS256", "kid": "rsa-2048", "jwk": jwk("rsa2048b"),
                            "jku": "https://evil/jwks", "x5c": []});
        let t = token_with_header(&header, &json!({}), Rs256, &attacker);
        let set = KeySet::from_jwks(&jwks(vec![jwk("rsa2048")])).unwrap();
        assert_eq!(verify_token(&set, &t), Err(TokenError::BadSignature));
    }

    #[test]
    fn short_secret_for_longer_hash_is_no_match() {
        let set = KeySet::from_jwks(&jwks(vec![oct_jwk(&[5u8; 32], None)])).unwrap();
        let key = SigningKey::Hmac(vec![5u8; 32]);
        assert_eq!(
            verify_token(&set, &token(Hs256, None, &json!({}), &key)),
            Ok(())
        );
        assert_eq!(
            verify_token(&set, &token(Hs384, None, &json!({}), &key)),
            Err(TokenError::NoMatchingKey)
        );
    }

    #[test]
    fn remote_jwks_refuses_oct_keys_and_keeps_the_rest() {
        let doc = jwks(vec![
            oct_jwk(&secret64(), Some("hmac")),
            jwk("p256"),
            json!({"kty": "oct", "k": "c2hvcnQ"}),
        ]);
        let (set, errors) = KeySet::from_jwks_lenient(&doc);
        assert_eq!(set.kids().collect::<Vec<_>>(), ["ec-p256"]);
        let summary: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            summary,
            [
                format!("keys[0] (kid \"hmac\"): {REMOTE_OCT_REFUSED}"),
                format!("keys[2]: {REMOTE_OCT_REFUSED}"),
            ]
        );
        // A token signed with the published secret finds no key.
        let t = token(
            Hs256,
            Some("hmac"),
            &json!({}),
            &SigningKey::Hmac(secret64()),
        );
        assert_eq!(verify_token(&set, &t), Err(TokenError::UnknownKid));
        // The inline JWKS (configuration) still takes oct keys.
        let inline = KeySet::from_jwks(&jwks(vec![oct_jwk(&secret64(), Some("hmac"))])).unwrap();
        assert_eq!(verify_token(&inline, &t), Ok(()));
    }

    #[test]
    fn high_s_twin_is_a_bad_signature() {
        use crate::jwt::test_support::other_s;
        for (alg, name, kid) in [
            (Es256, "p256", "ec-p256"),
            (Es384, "p384", "ec-p384"),
            (Es512, "p521", "ec-p521"),
        ] {
            let set = KeySet::from_jwks(&jwks(vec![jwk(name)])).unwrap();
            let good = token(alg, Some(kid), &json!({"sub": "a"}), &signing_key(name));
            let (head, sig) = good.rsplit_once('.').unwrap();
            let twin = format!(
                "{head}.{}",
                b64(&other_s(alg, &URL_SAFE_NO_PAD_DECODE(sig)))
            );
            assert_eq!(verify_token(&set, &good), Ok(()), "{alg:?}");
            assert_eq!(
                verify_token(&set, &twin),
                Err(TokenError::BadSignature),
                "{alg:?}"
            );
        }
    }

    /// Keys of one type under distinct kids, none of them `rsa2048`'s.
    fn decoys(count: usize, with_kid: bool) -> Vec<Value> {
        (0..count)
            .map(|i| {
                let kid = if with_kid {
                    json!(format!("decoy-{i}"))
                } else {
                    Value::Null
                };
                jwk_with("rsa2048b", json!({ "kid": kid }))
            })
            .collect()
    }

    #[test]
    fn keys_tried_per_token_are_bounded() {
        let signer = signing_key("rsa2048");
        // The signing key behind MAX_KEYS_PER_TOKEN others that fit: a
        // token without kid is refused after the bound.
        let mut keys = decoys(MAX_KEYS_PER_TOKEN, true);
        keys.push(jwk("rsa2048"));
        let set = KeySet::from_jwks(&jwks(keys.clone())).unwrap();
        assert_eq!(set.crowded_algorithms().len(), 6, "RS* and PS*");
        assert!(set
            .crowded_algorithms()
            .iter()
            .all(|&(_, n)| n == MAX_KEYS_PER_TOKEN + 1));
        let no_kid = token(Rs256, None, &json!({}), &signer);
        assert_eq!(verify_token(&set, &no_kid), Err(TokenError::BadSignature));
        // Its kid still finds it.
        let with_kid = token(Rs256, Some("rsa-2048"), &json!({}), &signer);
        assert_eq!(verify_token(&set, &with_kid), Ok(()));
        // Within the bound it is found without a kid.
        keys.remove(0);
        let set = KeySet::from_jwks(&jwks(keys)).unwrap();
        assert!(set.crowded_algorithms().is_empty());
        assert_eq!(verify_token(&set, &no_kid), Ok(()));
    }

    #[test]
    fn a_kid_match_is_tried_before_keys_without_kid() {
        // More kid-less keys than the bound, ahead of the named key in the
        // JWKS: the named key is still among those tried.
        let mut keys = decoys(MAX_KEYS_PER_TOKEN + 2, false);
        keys.push(jwk("rsa2048"));
        let set = KeySet::from_jwks(&jwks(keys)).unwrap();
        let signer = signing_key("rsa2048");
        assert_eq!(
            verify_token(&set, &token(Rs256, Some("rsa-2048"), &json!({}), &signer)),
            Ok(())
        );
        // An unknown kid meets the kid-less keys, at most the bound of them.
        assert_eq!(
            verify_token(&set, &token(Rs256, Some("other"), &json!({}), &signer)),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn the_bound_counts_verifications() {
        use std::cell::Cell;
        /// Counts the signatures it is asked about and refuses them all.
        struct Counting(Cell<usize>);
        impl SignatureAccelerator for Counting {
            fn handles(&self, _alg: Algorithm) -> bool {
                true
            }
            fn verify(&self, _: Algorithm, _: &Jwk, _: &[u8], _: &[u8]) -> Option<bool> {
                self.0.set(self.0.get() + 1);
                Some(false)
            }
        }
        let set = KeySet::from_jwks(&jwks(decoys(10, true))).unwrap();
        let garbage = token(Ps512, None, &json!({}), &signing_key("rsa2048"));
        let host = Counting(Cell::new(0));
        assert_eq!(
            set.verify_with(&parse(&garbage, 16 * 1024).unwrap(), Some(&host)),
            Err(TokenError::BadSignature)
        );
        assert_eq!(host.0.get(), MAX_KEYS_PER_TOKEN);
    }
}
