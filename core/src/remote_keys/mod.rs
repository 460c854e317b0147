//! Remote signing keys: the host-free half of fetching a provider's JWKS.
//! Scheduling (refresh, `Cache-Control`, early refetch on an unknown `kid`),
//! OIDC discovery, parsing that keeps the good keys, and the record shared
//! between VMs.

mod fetch_loop;

pub use fetch_loop::KeyFetchLoop;

use serde_json::Value;

use crate::jwt::{JwkError, KeySet};
use crate::schedule::Timing;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwksConfig {
    pub cluster: String,
    pub authority: String,
    /// JWKS path; with discovery, the fallback until discovery succeeds.
    pub path: String,
    pub refresh_seconds: u64,
    pub timeout_ms: u64,
    /// Bounds for a `Cache-Control: max-age` from the server.
    pub min_refresh_seconds: u64,
    pub max_refresh_seconds: u64,
    /// An unknown `kid` triggers at most one early refetch per this long.
    pub unknown_kid_refetch_seconds: u64,
    pub max_body_bytes: usize,
    pub max_backoff_ms: u64,
    /// Fetch `<issuer>/.well-known/openid-configuration` first and use its
    /// `jwks_uri` path.
    pub discovery: bool,
}

impl RemoteJwksConfig {
    pub fn timing(&self) -> Timing {
        Timing {
            interval_ms: self.refresh_seconds * 1000,
            timeout_ms: self.timeout_ms,
            min_backoff_ms: 1000,
            max_backoff_ms: self.max_backoff_ms,
        }
    }

    pub fn request_headers(&self, path: &str) -> Vec<(String, String)> {
        vec![
            (":method".to_string(), "GET".to_string()),
            (":path".to_string(), path.to_string()),
            (":authority".to_string(), self.authority.clone()),
            ("accept".to_string(), "application/json".to_string()),
        ]
    }

    /// Milliseconds until the next refresh after a successful fetch: the
    /// server's `max-age` when it gives one (bounded), else the configured
    /// period.
    pub fn next_refresh_ms(&self, cache_control: Option<&str>) -> u64 {
        let seconds = match cache_control.and_then(max_age) {
            Some(age) => age.clamp(self.min_refresh_seconds, self.max_refresh_seconds),
            None => self.refresh_seconds,
        };
        seconds * 1000
    }
}

/// `max-age` from a `Cache-Control` value; `no-cache`/`no-store` count as 0
/// (then bounded by the configured minimum).
pub fn max_age(cache_control: &str) -> Option<u64> {
    let mut age = None;
    for directive in cache_control.split(',') {
        let directive = directive.trim();
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "no-cache" | "no-store" => return Some(0),
            "max-age" => age = value.trim().trim_matches('"').parse::<u64>().ok(),
            _ => {}
        }
    }
    age
}

/// Path of the OpenID configuration for an issuer URL:
/// `https://kc.example.com/realms/x` -> `/realms/x/.well-known/openid-configuration`.
pub fn discovery_path(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        url_path(issuer).trim_end_matches('/')
    )
}

/// The path (and query) of an absolute URL, for a request through the
/// configured cluster.
pub fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(i) => rest.get(i..).unwrap_or("/"),
        None => "",
    }
}

/// The `jwks_uri` path from an OpenID configuration document.
pub fn jwks_path_from_discovery(body: &[u8]) -> Result<String, String> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| format!("discovery document is not JSON: {e}"))?;
    let uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or("discovery document has no jwks_uri")?;
    let path = url_path(uri);
    if path.is_empty() || !path.starts_with('/') {
        return Err("jwks_uri has no path".to_string());
    }
    Ok(path.to_string())
}

/// Parses a fetched JWKS, keeping every usable key. Fails when nothing in
/// it can verify a signature: then the last good set must stay.
pub fn parse_jwks(body: &[u8]) -> Result<(KeySet, Vec<JwkError>), String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("JWKS is not JSON: {e}"))?;
    let (keys, problems) = KeySet::from_jwks_lenient(&value);
    if keys.verification_key_count() == 0 {
        let first = problems
            .first()
            .map(|p| format!(": {p}"))
            .unwrap_or_default();
        return Err(format!("JWKS holds no usable key{first}"));
    }
    Ok((keys, problems))
}

/// What a provider's keys are fetched for, as 8 bytes: its issuer and
/// where its keys come from. Every plugin of a proxy shares one shared-data
/// space (Istio gives every WasmPlugin the same `vm_id`), so the keys of a
/// provider named `main` in one plugin must never be taken for those of a
/// provider named `main` in another: the key names and the record carry
/// this identity.
pub fn source_identity(issuer: Option<&str>, config: &RemoteJwksConfig) -> [u8; 8] {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for part in [
        "jwks",
        issuer.unwrap_or(""),
        &config.cluster,
        &config.authority,
        &config.path,
        if config.discovery { "discovery" } else { "" },
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    out
}

/// Marks a key-set record of this layout.
const RECORD_MAGIC: &[u8; 4] = b"JWK2";

/// The shared-data record of a provider's keys: a magic, the provider's
/// [`source_identity`], the fetch time (unix ms, LE) and the JWKS body
/// exactly as fetched, so each VM parses it once per change.
pub fn encode_record(identity: &[u8; 8], fetched_ms: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + body.len());
    out.extend_from_slice(RECORD_MAGIC);
    out.extend_from_slice(identity);
    out.extend_from_slice(&fetched_ms.to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// The fetch time and body of a record, when it is one and was fetched for
/// `identity`; `None` for anything else (another provider's keys, another
/// layout, garbage).
pub fn decode_record<'b>(bytes: &'b [u8], identity: &[u8; 8]) -> Option<(u64, &'b [u8])> {
    let rest = bytes.strip_prefix(RECORD_MAGIC)?.strip_prefix(identity)?;
    let (head, body) = (rest.get(..8)?, rest.get(8..)?);
    Some((u64::from_le_bytes(head.try_into().ok()?), body))
}

/// Shared-data keys of one provider.
pub struct JwksKeys {
    /// The current key set record.
    pub record: String,
    /// Unix ms of the latest "a token named an unknown kid" signal from
    /// any VM; the fetcher refetches early when it is newer than its
    /// last fetch, at most once per the configured interval.
    pub want: String,
    pub lease: String,
    /// What the record must have been fetched for.
    pub identity: [u8; 8],
}

impl JwksKeys {
    pub fn new(namespace: &str, provider: &str, identity: [u8; 8]) -> Self {
        let mut hex = String::with_capacity(16);
        for b in identity {
            hex.push_str(&format!("{b:02x}"));
        }
        let base = format!("{namespace}.jwks.{provider}.{hex}");
        JwksKeys {
            want: format!("{base}.want"),
            lease: format!("{base}.lease"),
            record: base,
            identity,
        }
    }
}

/// When an unknown-kid signal may trigger a fetch.
pub fn early_refetch_allowed(
    config: &RemoteJwksConfig,
    want_ms: u64,
    last_fetch_ms: u64,
    last_early_ms: Option<u64>,
    now_ms: u64,
) -> bool {
    want_ms > last_fetch_ms
        && last_early_ms.is_none_or(|t| now_ms >= t + config.unknown_kid_refetch_seconds * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RemoteJwksConfig {
        RemoteJwksConfig {
            cluster: "idp".into(),
            authority: "idp.example.com".into(),
            path: "/.well-known/jwks.json".into(),
            refresh_seconds: 600,
            timeout_ms: 2000,
            min_refresh_seconds: 30,
            max_refresh_seconds: 86400,
            unknown_kid_refetch_seconds: 30,
            max_body_bytes: 1 << 20,
            max_backoff_ms: 60_000,
            discovery: false,
        }
    }

    #[test]
    fn cache_control_parsing() {
        assert_eq!(max_age("max-age=300"), Some(300));
        assert_eq!(
            max_age("public, max-age=19800, must-revalidate, no-transform"),
            Some(19800)
        );
        assert_eq!(max_age("Max-Age=\"60\""), Some(60));
        assert_eq!(max_age("no-store"), Some(0));
        assert_eq!(max_age("private, no-cache"), Some(0));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=abc"), None);
        assert_eq!(max_age(""), None);
    }

    #[test]
    fn refresh_schedule_is_bounded() {
        let c = config();
        assert_eq!(c.next_refresh_ms(None), 600_000);
        assert_eq!(c.next_refresh_ms(Some("max-age=120")), 120_000);
        assert_eq!(c.next_refresh_ms(Some("max-age=1")), 30_000, "minimum");
        assert_eq!(c.next_refresh_ms(Some("no-store")), 30_000);
        assert_eq!(
            c.next_refresh_ms(Some("max-age=99999999")),
            86_400_000,
            "maximum"
        );
    }

    #[test]
    fn discovery_paths() {
        assert_eq!(
            discovery_path("https://accounts.google.com"),
            "/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_path("https://kc.example.com/realms/x/"),
            "/realms/x/.well-known/openid-configuration"
        );
        let doc = br#"{"issuer":"https://kc","jwks_uri":"https://kc.example.com/realms/x/protocol/openid-connect/certs?v=2"}"#;
        assert_eq!(
            jwks_path_from_discovery(doc).unwrap(),
            "/realms/x/protocol/openid-connect/certs?v=2"
        );
        assert!(jwks_path_from_discovery(b"{}").is_err());
        assert!(jwks_path_from_discovery(br#"{"jwks_uri":"https://host"}"#).is_err());
        assert!(jwks_path_from_discovery(b"<html>").is_err());
    }

    #[test]
    fn jwks_keeps_good_keys_and_refuses_useless_sets() {
        let good = serde_json::json!({"kty": "OKP", "kid": "h", "crv": "Ed25519", "x": "_pX3yiaoBvY7LHEZG-41JL8pCUgK_XAfsxybLEZDy38"});
        let bad = serde_json::json!({"kty": "RSA", "kid": "weak", "n": "AQAB", "e": "AQAB"});
        let body = serde_json::json!({"keys": [good, bad]}).to_string();
        let (keys, problems) = parse_jwks(body.as_bytes()).unwrap();
        assert_eq!(keys.verification_key_count(), 1);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].to_string().contains("weak"), "{}", problems[0]);
        let only_bad = serde_json::json!({"keys": [bad]}).to_string();
        assert!(parse_jwks(only_bad.as_bytes())
            .unwrap_err()
            .contains("no usable key"));
        assert!(parse_jwks(b"not json").is_err());
        assert!(parse_jwks(b"{\"keys\": []}").is_err());
    }

    #[test]
    fn record_round_trip() {
        let id = source_identity(Some("https://idp"), &config());
        let r = encode_record(&id, 1234, b"{\"keys\":[]}");
        assert_eq!(decode_record(&r, &id), Some((1234, &b"{\"keys\":[]}"[..])));
        assert_eq!(decode_record(b"short", &id), None);
        // Keys fetched for another issuer or from another place are not
        // this provider's.
        let other = source_identity(Some("https://other"), &config());
        assert_ne!(id, other);
        assert_eq!(decode_record(&r, &other), None);
        let elsewhere = RemoteJwksConfig {
            path: "/keys".into(),
            ..config()
        };
        assert_ne!(source_identity(Some("https://idp"), &elsewhere), id);
        let keys = JwksKeys::new("ns", "main", id);
        assert!(keys.record.starts_with("ns.jwks.main."), "{}", keys.record);
        assert_eq!(keys.record.len(), "ns.jwks.main.".len() + 16);
        let theirs = JwksKeys::new("ns", "main", other);
        assert_ne!(keys.record, theirs.record);
    }

    #[test]
    fn early_refetch_is_rate_limited() {
        let c = config();
        assert!(
            !early_refetch_allowed(&c, 100, 200, None, 300),
            "signal older than the last fetch"
        );
        assert!(early_refetch_allowed(&c, 300, 200, None, 300));
        assert!(
            !early_refetch_allowed(&c, 400, 300, Some(300), 20_000),
            "within 30 s of the last early fetch"
        );
        assert!(early_refetch_allowed(&c, 400, 300, Some(300), 30_300));
    }
}
