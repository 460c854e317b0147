//! Token parsing, signature verification, JWK/JWKS and claim checks.
//!
//! Nothing here reads a clock or talks to the host: the caller passes `now`
//! and the raw bytes, so every decision is unit-testable natively and the
//! same code runs in the filter and in the `jwt-auth-check` command.
//!
//! Typical flow: [`parse`] → [`KeySet::verify`] → [`check_claims`].
//! Claims must not be trusted (not even logged as identity) before
//! `verify` succeeded.

mod alg;
mod claims;
mod jwk;
mod object;
mod token;
mod verify;

#[cfg(test)]
pub(crate) mod test_support;

pub use alg::Algorithm;
pub use claims::{check_claims, ClaimPolicy};
pub use jwk::{
    HmacSecret, Jwk, JwkError, KeyMaterial, KeySet, MAX_KEYS_PER_TOKEN, MAX_RSA_BITS,
    MIN_HMAC_SECRET_BYTES, MIN_RSA_BITS, REMOTE_OCT_REFUSED,
};
pub use object::{as_number, as_str, value_of, JsonObject, ObjectError};
pub use token::{parse, Header, UntrustedToken};
pub use verify::{
    verify_signature, verify_signature_with, EcdsaP384, EcdsaP384Signature, EcdsaP521,
    EcdsaP521Signature, SignatureAccelerator,
};

use std::fmt;

/// Why a token was refused. Variants carry no token material so they can be
/// logged and turned into response headers safely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Longer than the configured limit; checked before any decoding.
    TooLarge,
    /// Not a well-formed JWS compact token; the text says which rule broke.
    /// Texts starting with "claim " mean a registered claim had the wrong type.
    Malformed(&'static str),
    /// `alg` was "none" in any letter case.
    AlgNone,
    UnsupportedAlgorithm,
    /// The header's `crit` names an extension we do not implement.
    UnknownCrit,
    /// The token names a `kid` no key in the set has.
    UnknownKid,
    /// No key in the set fits the token's algorithm (and kid).
    NoMatchingKey,
    BadSignature,
    Expired,
    MissingExpiration,
    NotYetValid,
    IssuedInFuture,
    LifetimeTooLong,
    WrongIssuer,
    WrongAudience,
    /// A configured required claim is missing or has another value. Holds the
    /// claim name from the configuration (never a value from the token).
    ClaimMismatch(String),
}

impl TokenError {
    /// One short phrase for a WWW-Authenticate `error_description`.
    ///
    /// Built only from fixed text, so it never echoes the token and never
    /// contains a quote, backslash, CR or LF that would break the header.
    pub fn description(&self) -> String {
        let text = match self {
            TokenError::TooLarge => "token too large",
            TokenError::Malformed(detail) if detail.starts_with(claims::CLAIM_TYPE_PREFIX) => {
                "claim type mismatch"
            }
            TokenError::Malformed(_) => "malformed token",
            TokenError::AlgNone => "alg none not allowed",
            TokenError::UnsupportedAlgorithm => "unsupported algorithm",
            TokenError::UnknownCrit => "unsupported critical header",
            TokenError::UnknownKid => "unknown kid",
            TokenError::NoMatchingKey => "no key for algorithm",
            TokenError::BadSignature => "bad signature",
            TokenError::Expired => "token expired",
            TokenError::MissingExpiration => "token has no expiration",
            TokenError::NotYetValid => "token not yet valid",
            TokenError::IssuedInFuture => "token issued in the future",
            TokenError::LifetimeTooLong => "token lifetime too long",
            TokenError::WrongIssuer => "wrong issuer",
            TokenError::WrongAudience => "wrong audience",
            // The claim name stays out: it comes from configuration, and
            // telling unauthenticated callers which claim is required only
            // helps them probe the policy. Logs get it through Display.
            TokenError::ClaimMismatch(_) => "required claim mismatch",
        };
        text.to_string()
    }

    /// Stable snake_case label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            TokenError::TooLarge => "too_large",
            TokenError::Malformed(_) => "malformed",
            TokenError::AlgNone => "alg_none",
            TokenError::UnsupportedAlgorithm => "unsupported_algorithm",
            TokenError::UnknownCrit => "unknown_crit",
            TokenError::UnknownKid => "unknown_kid",
            TokenError::NoMatchingKey => "no_matching_key",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::MissingExpiration => "missing_expiration",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::IssuedInFuture => "issued_in_future",
            TokenError::LifetimeTooLong => "lifetime_too_long",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::ClaimMismatch(_) => "claim_mismatch",
        }
    }
}

/// For logs: the description plus the detail it leaves out.
impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Malformed(detail) => write!(f, "malformed token: {detail}"),
            TokenError::ClaimMismatch(name) => write!(f, "required claim mismatch: {name:?}"),
            other => f.write_str(&other.description()),
        }
    }
}

impl std::error::Error for TokenError {}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One sample of every token error (two of `Malformed`).
    pub(crate) fn all() -> Vec<TokenError> {
        vec![
            TokenError::TooLarge,
            TokenError::Malformed("bad base64"),
            TokenError::Malformed("claim exp is not a number"),
            TokenError::AlgNone,
            TokenError::UnsupportedAlgorithm,
            TokenError::UnknownCrit,
            TokenError::UnknownKid,
            TokenError::NoMatchingKey,
            TokenError::BadSignature,
            TokenError::Expired,
            TokenError::MissingExpiration,
            TokenError::NotYetValid,
            TokenError::IssuedInFuture,
            TokenError::LifetimeTooLong,
            TokenError::WrongIssuer,
            TokenError::WrongAudience,
            TokenError::ClaimMismatch("evil\"\r\n\\name".to_string()),
        ]
    }

    #[test]
    fn descriptions_are_header_safe() {
        for e in all() {
            let d = e.description();
            assert!(!d.is_empty());
            assert!(
                d.chars().all(|c| c.is_ascii_graphic() || c == ' ') && !d.contains(['"', '\\']),
                "{d:?}"
            );
        }
    }

    #[test]
    fn labels_are_snake_case_and_distinct() {
        let mut labels: Vec<&str> = all().iter().map(TokenError::label).collect();
        for l in &labels {
            assert!(l.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{l}");
        }
        labels.sort_unstable();
        labels.dedup();
        // Two Malformed samples share one label.
        assert_eq!(labels.len(), all().len() - 1);
    }

    #[test]
    fn parse_verify_check_flow() {
        use crate::jwt::test_support::{jwk, jwks, signing_key, token};
        use serde_json::json;

        let set = KeySet::from_jwks(&jwks(vec![jwk("p256"), jwk("rsa2048")])).unwrap();
        let policy = ClaimPolicy {
            issuer: Some("https://idp".into()),
            audiences: vec!["api".into()],
            require_expiration: true,
            clock_skew_seconds: 30,
            ..ClaimPolicy::default()
        };
        let now = 1_700_000_000u64;
        let claims = json!({"iss": "https://idp", "aud": ["api"], "exp": now + 60, "sub": "u1"});
        let t = token(
            Algorithm::Es256,
            Some("ec-p256"),
            &claims,
            &signing_key("p256"),
        );

        let parsed = parse(&t, 4096).unwrap();
        assert_eq!(set.verify(&parsed), Ok(()));
        assert_eq!(check_claims(&parsed.claims, &policy, now), Ok(()));
        assert_eq!(check_claims(&parsed.claims, &policy, now + 90), Ok(()));
        assert_eq!(
            check_claims(&parsed.claims, &policy, now + 91),
            Err(TokenError::Expired)
        );
        assert_eq!(parse(&t, 100).unwrap_err(), TokenError::TooLarge);
    }

    #[test]
    fn documented_phrases() {
        assert_eq!(TokenError::Expired.description(), "token expired");
        assert_eq!(TokenError::BadSignature.description(), "bad signature");
        assert_eq!(TokenError::UnknownKid.description(), "unknown kid");
        assert_eq!(TokenError::WrongIssuer.description(), "wrong issuer");
        assert_eq!(TokenError::WrongAudience.description(), "wrong audience");
        assert_eq!(TokenError::TooLarge.description(), "token too large");
        assert_eq!(TokenError::Malformed("x").description(), "malformed token");
        assert_eq!(TokenError::AlgNone.description(), "alg none not allowed");
        assert_eq!(
            TokenError::UnsupportedAlgorithm.description(),
            "unsupported algorithm"
        );
        assert_eq!(
            TokenError::Malformed("claim nbf is not a number").description(),
            "claim type mismatch"
        );
        assert_eq!(
            TokenError::NoMatchingKey.description(),
            "no key for algorithm"
        );
        assert_eq!(TokenError::Expired.label(), "expired");
        assert_eq!(TokenError::BadSignature.label(), "bad_signature");
        assert_eq!(TokenError::UnknownKid.label(), "unknown_kid");
    }
}
