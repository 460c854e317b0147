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
}

impl Deny {
    pub fn new(reason: DenyReason) -> Self {
        Deny {
            reason,
            realm: String::new(),
            retry_after: None,
            remote_provider: None,
            provider: None,
        }
    }

    pub fn status(&self) -> u16 {
        self.reason.status()
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

    /// `WWW-Authenticate` per RFC 6750 §3. Every part is either fixed text or
    /// a phrase made by this crate, never request data, so quoting is safe.
    pub fn www_authenticate(&self) -> String {
        match self.error() {
            None => format!("Bearer realm=\"{}\"", self.realm),
            Some(error) => format!(
                "Bearer realm=\"{}\", error=\"{}\", error_description=\"{}\"",
                self.realm,
                error,
                self.description()
            ),
        }
    }

    /// The JSON body: `{"error": ..., "error_description": ...}`.
    pub fn body(&self) -> String {
        let body = serde_json::json!({
            "error": self.error().unwrap_or("unauthorized"),
            "error_description": self.description(),
        });
        body.to_string()
    }

    /// Response headers besides the content type.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![("content-type", "application/json".to_string())];
        if matches!(self.status(), 400 | 401 | 403) {
            headers.push(("www-authenticate", self.www_authenticate()));
        }
        if let Some(secs) = self.retry_after {
            headers.push(("retry-after", secs.to_string()));
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
