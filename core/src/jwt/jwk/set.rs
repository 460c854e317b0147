//! The keys of one issuer, and which of them a token is checked against.

use serde_json::Value;

use super::error::JwkError;
use super::key::Jwk;
use crate::jwt::verify::verify_signature_with;
use crate::jwt::{Algorithm, SignatureAccelerator, TokenError, UntrustedToken};

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

pub(super) fn jwks_entries(jwks: &Value) -> Result<&Vec<Value>, JwkError> {
    let obj = jwks
        .as_object()
        .ok_or_else(|| JwkError::whole_set("JWKS is not a JSON object"))?;
    match obj.get("keys") {
        Some(Value::Array(entries)) => Ok(entries),
        Some(_) => Err(JwkError::whole_set("\"keys\" is not an array")),
        None => Err(JwkError::whole_set("JWKS has no \"keys\" array")),
    }
}

pub(super) fn load_entry(index: usize, entry: &Value) -> Result<Jwk, JwkError> {
    Jwk::from_value(entry).map_err(|message| entry_error(index, entry, message))
}

pub(super) fn entry_error(index: usize, entry: &Value, message: String) -> JwkError {
    JwkError {
        index,
        // Name the key even when it is otherwise unusable, if it has a kid.
        kid: entry.get("kid").and_then(Value::as_str).map(str::to_string),
        message,
    }
}
