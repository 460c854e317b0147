//! The configuration as an operator writes it, before validation: serde
//! structs that refuse unknown fields, and the defaults of absent ones.

use serde::Deserialize;
use serde_json::{Map, Value};

/// Default upper bound for a token, checked before any parsing. Identity
/// providers that put group lists in the token issue tokens of 10 KB and
/// more; Envoy's own limit for all request headers is 60 KiB by default.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 64 * 1024;
/// How long a revocation poll may be held by the feed when nothing is new.
pub const DEFAULT_FEED_WAIT_MS: u64 = 15_000;
/// Verified tokens a worker keeps per provider unless configured.
pub const DEFAULT_TOKEN_CACHE_ENTRIES: usize = 1000;
/// Default tolerance for `exp`, `nbf` and `iat` against the proxy's clock.
pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) realm: Option<String>,
    pub(super) providers: Vec<RawProvider>,
    #[serde(default)]
    pub(super) rules: Option<Vec<RawRule>>,
    #[serde(default)]
    pub(super) revocation: Option<RawRevocation>,
    #[serde(default)]
    pub(super) namespace: Option<String>,
    #[serde(default = "default_true")]
    pub(super) native_verification: bool,
    #[serde(default)]
    pub(super) escaped_slashes: Option<String>,
    #[serde(default)]
    pub(super) provider_header: Option<String>,
    #[serde(default = "default_true")]
    pub(super) bypass_cors_preflight: bool,
    #[serde(default)]
    pub(super) protected_resource: Option<RawProtectedResource>,
}

/// RFC 9728 protected resource metadata, as the document's members.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProtectedResource {
    pub(super) resource: String,
    #[serde(default)]
    pub(super) authorization_servers: Option<Vec<String>>,
    #[serde(default)]
    pub(super) scopes_supported: Option<Vec<String>>,
    #[serde(default)]
    pub(super) bearer_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub(super) resource_name: Option<String>,
    #[serde(default)]
    pub(super) resource_documentation: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemoteJwks {
    pub(super) cluster: String,
    #[serde(default)]
    pub(super) authority: Option<String>,
    #[serde(default = "default_jwks_path")]
    pub(super) path: String,
    #[serde(default = "default_refresh_seconds")]
    pub(super) refresh_seconds: u64,
    #[serde(default = "default_jwks_timeout")]
    pub(super) timeout_ms: u64,
    #[serde(default = "default_min_refresh")]
    pub(super) min_refresh_seconds: u64,
    #[serde(default = "default_max_refresh")]
    pub(super) max_refresh_seconds: u64,
    #[serde(default = "default_unknown_kid_refetch")]
    pub(super) unknown_kid_refetch_seconds: u64,
    #[serde(default = "default_jwks_max_body")]
    pub(super) max_body_bytes: usize,
    #[serde(default = "default_max_backoff")]
    pub(super) max_backoff_ms: u64,
    #[serde(default)]
    pub(super) discovery: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRevocation {
    pub(super) cluster: String,
    #[serde(default)]
    pub(super) authority: Option<String>,
    #[serde(default = "default_feed_path")]
    pub(super) path: String,
    #[serde(default = "default_poll_interval")]
    pub(super) poll_interval_ms: u64,
    #[serde(default = "default_feed_timeout")]
    pub(super) timeout_ms: u64,
    #[serde(default)]
    pub(super) bearer_token: Option<String>,
    #[serde(default)]
    pub(super) hmac_secret_base64: Option<String>,
    #[serde(default = "default_max_staleness")]
    pub(super) max_staleness_seconds: u64,
    #[serde(default)]
    pub(super) on_stale: Option<String>,
    #[serde(default)]
    pub(super) namespace: Option<String>,
    #[serde(default = "default_feed_max_body")]
    pub(super) max_body_bytes: usize,
    #[serde(default = "default_sync_interval")]
    pub(super) sync_interval_ms: u64,
    #[serde(default = "default_max_backoff")]
    pub(super) max_backoff_ms: u64,
    #[serde(default = "default_max_pending_entries")]
    pub(super) max_pending_entries: usize,
    #[serde(default)]
    pub(super) wait_ms: Option<u64>,
    #[serde(default)]
    pub(super) accept_unbound_answers: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub(super) name: String,
    #[serde(default)]
    pub(super) issuer: Option<String>,
    #[serde(default)]
    pub(super) audiences: Vec<String>,
    #[serde(default)]
    pub(super) jwks: Option<Value>,
    #[serde(default)]
    pub(super) remote_jwks: Option<RawRemoteJwks>,
    #[serde(default)]
    pub(super) from_headers: Option<Vec<RawHeaderSource>>,
    #[serde(default)]
    pub(super) from_params: Option<Vec<String>>,
    #[serde(default)]
    pub(super) from_cookies: Option<Vec<String>>,
    #[serde(default = "default_clock_skew")]
    pub(super) clock_skew_seconds: u64,
    #[serde(default = "default_true")]
    pub(super) require_expiration: bool,
    #[serde(default)]
    pub(super) max_lifetime_seconds: Option<u64>,
    #[serde(default = "default_max_token_bytes")]
    pub(super) max_token_bytes: usize,
    #[serde(default)]
    pub(super) required_claims: Map<String, Value>,
    #[serde(default)]
    pub(super) claim_to_headers: Vec<RawClaimHeader>,
    #[serde(default)]
    pub(super) claims_to_filter_state: Vec<RawClaimFilterState>,
    #[serde(default)]
    pub(super) forward: bool,
    #[serde(default)]
    pub(super) payload_header: Option<String>,
    #[serde(default)]
    pub(super) token_cache: Option<RawTokenCache>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTokenCache {
    pub(super) max_entries: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeaderSource {
    pub(super) name: String,
    #[serde(default)]
    pub(super) value_prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClaimHeader {
    pub(super) claim: String,
    pub(super) header: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClaimFilterState {
    pub(super) claim: String,
    pub(super) name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    #[serde(rename = "match")]
    pub(super) matcher: RawMatch,
    pub(super) requires: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMatch {
    #[serde(default)]
    pub(super) prefix: Option<String>,
    #[serde(default)]
    pub(super) path: Option<String>,
    #[serde(default)]
    pub(super) methods: Option<Vec<String>>,
    #[serde(default)]
    pub(super) case_sensitive: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequirement {
    #[serde(default)]
    pub(super) providers: Option<Vec<String>>,
    #[serde(default)]
    pub(super) allow_missing: bool,
    #[serde(default)]
    pub(super) permissions: Option<RawPermissions>,
    #[serde(default)]
    pub(super) claims: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPermissions {
    #[serde(default = "default_permissions_claim")]
    pub(super) claim: String,
    #[serde(default)]
    pub(super) all_of: Vec<String>,
    #[serde(default)]
    pub(super) any_of: Vec<String>,
}

pub(super) fn default_clock_skew() -> u64 {
    DEFAULT_CLOCK_SKEW_SECONDS
}
pub(super) fn default_true() -> bool {
    true
}
pub(super) fn default_max_token_bytes() -> usize {
    DEFAULT_MAX_TOKEN_BYTES
}
pub(super) fn default_feed_path() -> String {
    revocation_protocol::REVOCATIONS_PATH.to_string()
}
pub(super) fn default_poll_interval() -> u64 {
    1000
}
pub(super) fn default_feed_timeout() -> u64 {
    500
}
pub(super) fn default_max_staleness() -> u64 {
    30
}
pub(super) fn default_feed_max_body() -> usize {
    64 << 20
}
pub(super) fn default_sync_interval() -> u64 {
    100
}
pub(super) fn default_max_backoff() -> u64 {
    30_000
}
/// Room for the pages of a snapshot of ten million entries and some growth
/// (20 bytes each while pending: 240 MB at the bound, within the 1 GiB
/// Envoy gives a VM), bounded so that a feed that never stops sending
/// `more` cannot exhaust the fetcher's memory.
pub(super) fn default_max_pending_entries() -> usize {
    12_000_000
}
pub(super) fn default_jwks_path() -> String {
    "/.well-known/jwks.json".to_string()
}
pub(super) fn default_refresh_seconds() -> u64 {
    600
}
pub(super) fn default_jwks_timeout() -> u64 {
    2000
}
pub(super) fn default_min_refresh() -> u64 {
    30
}
pub(super) fn default_max_refresh() -> u64 {
    86_400
}
pub(super) fn default_unknown_kid_refetch() -> u64 {
    30
}
pub(super) fn default_jwks_max_body() -> usize {
    1 << 20
}
pub(super) fn default_permissions_claim() -> String {
    "permissions".to_string()
}
