//! One validated verification key: its kid, `alg`, use and material.

use serde_json::Value;

use super::error::quoted;
use super::material::{
    b64_member, ec_material, material_summary, oct_material, okp_material, optional_str,
    rsa_material, usable_for_verification, KeyMaterial,
};
use crate::jwt::Algorithm;

/// One validated verification key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jwk {
    kid: Option<String>,
    alg: Option<Algorithm>,
    /// False when `use` or `key_ops` say the key is not for verifying
    /// signatures; such keys are kept for diagnostics but never used.
    pub(super) for_verification: bool,
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
