//! The key material of one JWK, by key type, and the member parsing that
//! checks it (sizes, curves, points, encodings).

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde_json::{Map, Value};

use super::error::quoted;
use super::secret::{HmacSecret, MIN_HMAC_SECRET_BYTES};
use crate::jwt::Algorithm;

/// Smallest RSA modulus accepted at load time, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted: bounds the cost of one verification, which an
/// unauthenticated caller can trigger at will.
pub const MAX_RSA_BITS: usize = 8192;

/// JWK members are base64url without padding (RFC 7515 §2), but some
/// publishers pad; padding carries no meaning, so both spellings are taken.
/// Non-canonical trailing bits are still refused.
pub(super) const JWK_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

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

/// `use` must be "sig" when present, `key_ops` must include "verify" when
/// present (RFC 7517 §4.2, §4.3). Wrong types are errors; other values make the
/// key unusable for us, which is not an error (encryption keys share JWKS).
pub(super) fn usable_for_verification(obj: &Map<String, Value>) -> Result<bool, String> {
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

pub(super) fn rsa_material(obj: &Map<String, Value>) -> Result<KeyMaterial, String> {
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

pub(super) fn ec_material(obj: &Map<String, Value>) -> Result<KeyMaterial, String> {
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

pub(super) fn okp_material(obj: &Map<String, Value>) -> Result<KeyMaterial, String> {
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

pub(super) fn oct_material(secret: Vec<u8>, alg: Option<Algorithm>) -> Result<KeyMaterial, String> {
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

pub(super) fn material_summary(material: &KeyMaterial) -> &'static str {
    match material {
        KeyMaterial::Oct(_) => "oct",
        KeyMaterial::Rsa(_) => "RSA",
        KeyMaterial::P256(_) => "EC P-256",
        KeyMaterial::P384(_) => "EC P-384",
        KeyMaterial::P521(_) => "EC P-521",
        KeyMaterial::Ed25519(_) => "OKP Ed25519",
    }
}

pub(super) fn optional_str<'a>(
    obj: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, String> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{name} is not a string")),
    }
}

pub(super) fn b64_member(obj: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let text = optional_str(obj, name)?.ok_or_else(|| format!("missing {name}"))?;
    let bytes = JWK_B64
        .decode(text)
        .map_err(|_| format!("{name} is not base64url"))?;
    if bytes.is_empty() {
        return Err(format!("{name} is empty"));
    }
    Ok(bytes)
}
