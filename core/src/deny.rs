//! Refusals: why a request is refused, and the answer the client gets
//! (status, RFC 6750 `WWW-Authenticate`, a JSON body).

use crate::jwt::TokenError;

/// Why a request was refused. Hosts match on this (to wait for keys, to
/// ask for an early key refetch); the label, status and RFC 6750 error
/// follow from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    /// No token where one is required.
    Missing,
    /// Two different tokens in one request.
    MultipleTokens,
    /// A path whose meaning depends on who reads it.
    AmbiguousPath,
    /// A token that failed parsing, verification or the claim checks.
    InvalidToken(TokenError),
    /// The provider's remote keys have not arrived yet.
    KeysUnavailable,
    Revoked,
    /// Revocation data too old, under `on_stale: deny`.
    RevocationStale,
    InsufficientPermissions,
    /// A rule's `claims` condition not met.
    InsufficientClaims,
}

/// Every label a refusal can carry (`DenyReason::label`), for hosts that
/// must declare each counter before the first request (Envoy's dynamic
/// modules freeze stat creation once the configuration is loaded).
pub const LABELS: &[&str] = &[
    "missing",
    "multiple_tokens",
    "ambiguous_path",
    "keys_unavailable",
    "revoked",
    "revocation_stale",
    "insufficient_permissions",
    "insufficient_claims",
    "too_large",
    "malformed",
    "alg_none",
    "unsupported_algorithm",
    "unknown_crit",
    "unknown_kid",
    "no_matching_key",
    "bad_signature",
    "expired",
    "missing_expiration",
    "not_yet_valid",
    "issued_in_future",
    "lifetime_too_long",
    "wrong_issuer",
    "wrong_audience",
    "claim_mismatch",
];

impl DenyReason {
    /// Stable metric label (`denied.<label>`).
    pub fn label(&self) -> &'static str {
        match self {
            DenyReason::Missing => "missing",
            DenyReason::MultipleTokens => "multiple_tokens",
            DenyReason::AmbiguousPath => "ambiguous_path",
            DenyReason::InvalidToken(e) => e.label(),
            DenyReason::KeysUnavailable => "keys_unavailable",
            DenyReason::Revoked => "revoked",
            DenyReason::RevocationStale => "revocation_stale",
            DenyReason::InsufficientPermissions => "insufficient_permissions",
            DenyReason::InsufficientClaims => "insufficient_claims",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            DenyReason::MultipleTokens | DenyReason::AmbiguousPath => 400,
            DenyReason::InsufficientPermissions | DenyReason::InsufficientClaims => 403,
            DenyReason::RevocationStale => 503,
            _ => 401,
        }
    }

    /// The RFC 6750 error code; `None` when no credentials were sent.
    pub fn error(&self) -> Option<&'static str> {
        match self {
            DenyReason::Missing => None,
            DenyReason::MultipleTokens | DenyReason::AmbiguousPath => Some("invalid_request"),
            DenyReason::InvalidToken(_) | DenyReason::KeysUnavailable | DenyReason::Revoked => {
                Some("invalid_token")
            }
            DenyReason::RevocationStale => Some("temporarily_unavailable"),
            DenyReason::InsufficientPermissions | DenyReason::InsufficientClaims => {
                Some("insufficient_scope")
            }
        }
    }

    /// One short phrase; never holds the token.
    pub fn description(&self) -> String {
        match self {
            DenyReason::InvalidToken(e) => e.description(),
            DenyReason::Missing => "token required".into(),
            DenyReason::MultipleTokens => "multiple tokens".into(),
            DenyReason::AmbiguousPath => "ambiguous path".into(),
            DenyReason::KeysUnavailable => "signing keys unavailable".into(),
            DenyReason::Revoked => "token revoked".into(),
            DenyReason::RevocationStale => "revocation data stale".into(),
            DenyReason::InsufficientPermissions => "insufficient permissions".into(),
            DenyReason::InsufficientClaims => "claim requirement not met".into(),
        }
    }
}

/// A refusal, with everything its answer is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deny {
    pub reason: DenyReason,
    pub realm: String,
    pub retry_after: Option<u64>,
    /// The provider with remote keys this refusal is about (an unknown
    /// `kid`, or no keys fetched yet): the host may refetch or wait.
    pub remote_provider: Option<usize>,
    /// The provider the token was checked against, when the refusal is
    /// about that provider's verdict: counted under it too.
    pub provider: Option<usize>,
    /// The request is a gRPC call (`content-type: application/grpc...`):
    /// the refusal is answered as gRPC clients read one.
    pub grpc: bool,
    /// Further `WWW-Authenticate` parameters, boxed: most refusals have
    /// none, and a refusal travels by value through the decision.
    pub challenge: Option<Box<Challenge>>,
}

/// The optional parameters of a refusal's `WWW-Authenticate`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Challenge {
    /// Scopes a token needs here, for an insufficient-scope refusal
    /// (`scope` of RFC 6750 section 3), space-delimited.
    pub scope: Option<String>,
    /// The RFC 9728 metadata URL (`resource_metadata`, section 5.1).
    pub resource_metadata: Option<String>,
}

impl Deny {
    pub fn new(reason: DenyReason) -> Self {
        Deny {
            reason,
            realm: String::new(),
            retry_after: None,
            remote_provider: None,
            provider: None,
            grpc: false,
            challenge: None,
        }
    }

    pub fn status(&self) -> u16 {
        self.reason.status()
    }

    /// The optional `WWW-Authenticate` parameters, made on first use.
    pub fn challenge_mut(&mut self) -> &mut Challenge {
        self.challenge.get_or_insert_with(Box::default)
    }

    /// RFC 6750 error code, or `None` when no credentials were sent.
    pub fn error(&self) -> Option<&'static str> {
        self.reason.error()
    }

    /// One short phrase; never holds the token.
    pub fn description(&self) -> String {
        self.reason.description()
    }

    /// Stable metric label.
    pub fn label(&self) -> &'static str {
        self.reason.label()
    }

    /// `WWW-Authenticate` per RFC 6750 §3, with RFC 9728's
    /// `resource_metadata`. Every part is either fixed text, a phrase made
    /// by this crate or configuration checked to be quotable, never request
    /// data, so quoting is safe.
    pub fn www_authenticate(&self) -> String {
        let mut out = format!("Bearer realm=\"{}\"", self.realm);
        if let Some(error) = self.error() {
            out.push_str(&format!(
                ", error=\"{error}\", error_description=\"{}\"",
                self.description()
            ));
        }
        let challenge = self.challenge.as_deref();
        if let Some(scope) = challenge.and_then(|c| c.scope.as_deref()) {
            out.push_str(&format!(", scope=\"{scope}\""));
        }
        if let Some(url) = challenge.and_then(|c| c.resource_metadata.as_deref()) {
            out.push_str(&format!(", resource_metadata=\"{url}\""));
        }
        out
    }

    /// The JSON body: `{"error": ..., "error_description": ...}`.
    pub fn body(&self) -> String {
        let body = serde_json::json!({
            "error": self.error().unwrap_or("unauthorized"),
            "error_description": self.description(),
        });
        body.to_string()
    }

    /// The HTTP status sent: a gRPC refusal travels as 200 with its
    /// outcome in `grpc-status` (the gRPC HTTP/2 protocol).
    pub fn response_status(&self) -> u16 {
        if self.grpc {
            200
        } else {
            self.status()
        }
    }

    /// The gRPC status code of this refusal: UNAUTHENTICATED (16),
    /// PERMISSION_DENIED (7), INVALID_ARGUMENT (3) or UNAVAILABLE (14).
    pub fn grpc_status(&self) -> u8 {
        match self.status() {
            400 => 3,
            403 => 7,
            503 => 14,
            _ => 16,
        }
    }

    /// The response headers: JSON refusals carry `content-type:
    /// application/json`, gRPC ones the gRPC content type, `grpc-status`
    /// and `grpc-message` (the description, percent-encoded).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = if self.grpc {
            vec![
                ("content-type", "application/grpc".to_string()),
                ("grpc-status", self.grpc_status().to_string()),
                ("grpc-message", grpc_percent_encode(&self.description())),
            ]
        } else {
            vec![("content-type", "application/json".to_string())]
        };
        if matches!(self.status(), 400 | 401 | 403) {
            headers.push(("www-authenticate", self.www_authenticate()));
        }
        if let Some(secs) = self.retry_after {
            headers.push(("retry-after", secs.to_string()));
        }
        headers
    }

    /// The body sent: the JSON body, none for a gRPC refusal (its
    /// outcome is all in the headers, a trailers-only response).
    pub fn response_body(&self) -> Option<String> {
        (!self.grpc).then(|| self.body())
    }
}

/// `grpc-message` encoding (gRPC HTTP/2 protocol): bytes outside 0x20-0x7E,
/// and `%` itself, become `%XX` (uppercase hex).
pub fn grpc_percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RFC 6749 section 3.3 `scope-token`: %x21 / %x23-5B / %x5D-7E.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One sample of every reason; the match fails to compile when a
    /// variant is added, so the label list cannot fall behind.
    fn every_reason() -> Vec<DenyReason> {
        let tokens = crate::jwt::tests::all();
        for t in &tokens {
            match t {
                TokenError::TooLarge
                | TokenError::Malformed(_)
                | TokenError::AlgNone
                | TokenError::UnsupportedAlgorithm
                | TokenError::UnknownCrit
                | TokenError::UnknownKid
                | TokenError::NoMatchingKey
                | TokenError::BadSignature
                | TokenError::Expired
                | TokenError::MissingExpiration
                | TokenError::NotYetValid
                | TokenError::IssuedInFuture
                | TokenError::LifetimeTooLong
                | TokenError::WrongIssuer
                | TokenError::WrongAudience
                | TokenError::ClaimMismatch(_) => {}
            }
        }
        let mut reasons = vec![
            DenyReason::Missing,
            DenyReason::MultipleTokens,
            DenyReason::AmbiguousPath,
            DenyReason::KeysUnavailable,
            DenyReason::Revoked,
            DenyReason::RevocationStale,
            DenyReason::InsufficientPermissions,
            DenyReason::InsufficientClaims,
        ];
        for r in &reasons {
            match r {
                DenyReason::Missing
                | DenyReason::MultipleTokens
                | DenyReason::AmbiguousPath
                | DenyReason::InvalidToken(_)
                | DenyReason::KeysUnavailable
                | DenyReason::Revoked
                | DenyReason::RevocationStale
                | DenyReason::InsufficientPermissions
                | DenyReason::InsufficientClaims => {}
            }
        }
        reasons.extend(tokens.into_iter().map(DenyReason::InvalidToken));
        reasons
    }

    #[test]
    fn the_label_list_is_every_label_once() {
        let mut made: Vec<&str> = every_reason().iter().map(DenyReason::label).collect();
        made.sort_unstable();
        made.dedup();
        let mut listed = LABELS.to_vec();
        listed.sort_unstable();
        assert_eq!(made, listed);
    }

    #[test]
    fn www_authenticate_names_the_scope_and_the_metadata() {
        let mut d = Deny::new(DenyReason::InsufficientPermissions);
        d.realm = "api".into();
        d.challenge_mut().scope = Some("read write".into());
        d.challenge_mut().resource_metadata =
            Some("https://api.test/.well-known/oauth-protected-resource/mcp".into());
        assert_eq!(
            d.www_authenticate(),
            "Bearer realm=\"api\", error=\"insufficient_scope\", error_description=\"insufficient permissions\", scope=\"read write\", resource_metadata=\"https://api.test/.well-known/oauth-protected-resource/mcp\""
        );
        let mut missing = Deny::new(DenyReason::Missing);
        missing.realm = "api".into();
        missing.challenge_mut().resource_metadata = Some("https://api.test/m".into());
        assert_eq!(
            missing.www_authenticate(),
            "Bearer realm=\"api\", resource_metadata=\"https://api.test/m\""
        );
        assert!(is_scope_token("files:read"));
        for bad in ["", "a b", "a\"b", "a\\b", "é"] {
            assert!(!is_scope_token(bad), "{bad}");
        }
    }

    #[test]
    fn every_reason_has_its_answer() {
        let table = [
            (DenyReason::Missing, 401, None, "missing"),
            (
                DenyReason::MultipleTokens,
                400,
                Some("invalid_request"),
                "multiple_tokens",
            ),
            (
                DenyReason::AmbiguousPath,
                400,
                Some("invalid_request"),
                "ambiguous_path",
            ),
            (
                DenyReason::InvalidToken(TokenError::Expired),
                401,
                Some("invalid_token"),
                "expired",
            ),
            (
                DenyReason::KeysUnavailable,
                401,
                Some("invalid_token"),
                "keys_unavailable",
            ),
            (DenyReason::Revoked, 401, Some("invalid_token"), "revoked"),
            (
                DenyReason::RevocationStale,
                503,
                Some("temporarily_unavailable"),
                "revocation_stale",
            ),
            (
                DenyReason::InsufficientPermissions,
                403,
                Some("insufficient_scope"),
                "insufficient_permissions",
            ),
            (
                DenyReason::InsufficientClaims,
                403,
                Some("insufficient_scope"),
                "insufficient_claims",
            ),
        ];
        for (reason, status, error, label) in table {
            let d = Deny::new(reason.clone());
            assert_eq!(
                (d.status(), d.error(), d.label()),
                (status, error, label),
                "{reason:?}"
            );
            assert!(!d.description().is_empty());
            assert_eq!(d.reason, reason);
        }
    }

    #[test]
    fn grpc_message_is_percent_encoded() {
        assert_eq!(grpc_percent_encode("token required"), "token required");
        assert_eq!(grpc_percent_encode("100% é\n~"), "100%25 %C3%A9%0A~");
    }

    #[test]
    fn a_grpc_refusal_is_200_with_grpc_status_and_no_body() {
        for (reason, code) in [
            (DenyReason::Missing, 16),
            (DenyReason::InsufficientClaims, 7),
            (DenyReason::AmbiguousPath, 3),
            (DenyReason::RevocationStale, 14),
        ] {
            let mut d = Deny::new(reason);
            d.grpc = true;
            assert_eq!((d.response_status(), d.grpc_status()), (200, code));
            let headers = d.headers();
            let get = |n: &str| {
                headers
                    .iter()
                    .find(|(h, _)| *h == n)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(get("content-type"), Some("application/grpc"));
            assert_eq!(get("grpc-status"), Some(code.to_string().as_str()));
            assert_eq!(get("grpc-message"), Some(d.description().as_str()));
            assert_eq!(
                get("www-authenticate").is_some(),
                d.status() != 503,
                "{:?}",
                d.reason
            );
            assert_eq!(d.response_body(), None);
        }
        let d = Deny::new(DenyReason::Missing);
        assert_eq!(d.response_status(), 401);
        assert_eq!(d.response_body(), Some(d.body()));
    }
}
