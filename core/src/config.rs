//! Plugin configuration: the JSON an operator writes (Envoy `configuration`,
//! Istio `pluginConfig`) turned into a validated, compiled [`Policy`].
//!
//! Every problem is reported as a [`ConfigError`] naming the field by its path
//! (`providers[0].jwks: keys[1] ...`), because the operator sees one log line
//! when Envoy refuses the configuration and must be able to act on it.

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::claim_path::ClaimPath;
use crate::extract::TokenSource;
use crate::identity::ClaimHeader;
use crate::jwt::{ClaimPolicy, KeySet};
use crate::path::EscapedSlashes;
use crate::remote_keys::RemoteJwksConfig;
use crate::revocation::feed::{FeedConfig, OnStale};
use crate::rules::{ClaimCondition, PathMatch, PermissionRule, Requirement, Rule};

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

/// A configuration problem: the field path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "invalid configuration: {}", self.message)
        } else {
            write!(f, "invalid configuration: {}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    realm: Option<String>,
    providers: Vec<RawProvider>,
    #[serde(default)]
    rules: Option<Vec<RawRule>>,
    #[serde(default)]
    revocation: Option<RawRevocation>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default = "default_true")]
    native_verification: bool,
    #[serde(default)]
    escaped_slashes: Option<String>,
    #[serde(default)]
    provider_header: Option<String>,
    #[serde(default = "default_true")]
    bypass_cors_preflight: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemoteJwks {
    cluster: String,
    #[serde(default)]
    authority: Option<String>,
    #[serde(default = "default_jwks_path")]
    path: String,
    #[serde(default = "default_refresh_seconds")]
    refresh_seconds: u64,
    #[serde(default = "default_jwks_timeout")]
    timeout_ms: u64,
    #[serde(default = "default_min_refresh")]
    min_refresh_seconds: u64,
    #[serde(default = "default_max_refresh")]
    max_refresh_seconds: u64,
    #[serde(default = "default_unknown_kid_refetch")]
    unknown_kid_refetch_seconds: u64,
    #[serde(default = "default_jwks_max_body")]
    max_body_bytes: usize,
    #[serde(default = "default_max_backoff")]
    max_backoff_ms: u64,
    #[serde(default)]
    discovery: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRevocation {
    cluster: String,
    #[serde(default)]
    authority: Option<String>,
    #[serde(default = "default_feed_path")]
    path: String,
    #[serde(default = "default_poll_interval")]
    poll_interval_ms: u64,
    #[serde(default = "default_feed_timeout")]
    timeout_ms: u64,
    #[serde(default)]
    bearer_token: Option<String>,
    #[serde(default)]
    hmac_secret_base64: Option<String>,
    #[serde(default = "default_max_staleness")]
    max_staleness_seconds: u64,
    #[serde(default)]
    on_stale: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default = "default_feed_max_body")]
    max_body_bytes: usize,
    #[serde(default = "default_sync_interval")]
    sync_interval_ms: u64,
    #[serde(default = "default_max_backoff")]
    max_backoff_ms: u64,
    #[serde(default = "default_max_pending_entries")]
    max_pending_entries: usize,
    #[serde(default)]
    wait_ms: Option<u64>,
    #[serde(default)]
    accept_unbound_answers: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    name: String,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    jwks: Option<Value>,
    #[serde(default)]
    remote_jwks: Option<RawRemoteJwks>,
    #[serde(default)]
    from_headers: Option<Vec<RawHeaderSource>>,
    #[serde(default)]
    from_params: Option<Vec<String>>,
    #[serde(default)]
    from_cookies: Option<Vec<String>>,
    #[serde(default = "default_clock_skew")]
    clock_skew_seconds: u64,
    #[serde(default = "default_true")]
    require_expiration: bool,
    #[serde(default)]
    max_lifetime_seconds: Option<u64>,
    #[serde(default = "default_max_token_bytes")]
    max_token_bytes: usize,
    #[serde(default)]
    required_claims: Map<String, Value>,
    #[serde(default)]
    claim_to_headers: Vec<RawClaimHeader>,
    #[serde(default)]
    forward: bool,
    #[serde(default)]
    payload_header: Option<String>,
    #[serde(default)]
    token_cache: Option<RawTokenCache>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokenCache {
    max_entries: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeaderSource {
    name: String,
    #[serde(default)]
    value_prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaimHeader {
    claim: String,
    header: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(rename = "match")]
    matcher: RawMatch,
    requires: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    methods: Option<Vec<String>>,
    #[serde(default)]
    case_sensitive: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    #[serde(default)]
    providers: Option<Vec<String>>,
    #[serde(default)]
    allow_missing: bool,
    #[serde(default)]
    permissions: Option<RawPermissions>,
    #[serde(default)]
    claims: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPermissions {
    #[serde(default = "default_permissions_claim")]
    claim: String,
    #[serde(default)]
    all_of: Vec<String>,
    #[serde(default)]
    any_of: Vec<String>,
}

fn default_clock_skew() -> u64 {
    DEFAULT_CLOCK_SKEW_SECONDS
}
fn default_true() -> bool {
    true
}
fn default_max_token_bytes() -> usize {
    DEFAULT_MAX_TOKEN_BYTES
}
fn default_feed_path() -> String {
    revocation_protocol::REVOCATIONS_PATH.to_string()
}
fn default_poll_interval() -> u64 {
    1000
}
fn default_feed_timeout() -> u64 {
    500
}
fn default_max_staleness() -> u64 {
    30
}
fn default_feed_max_body() -> usize {
    64 << 20
}
fn default_sync_interval() -> u64 {
    100
}
fn default_max_backoff() -> u64 {
    30_000
}
/// Room for the pages of a snapshot of several million entries (about 40
/// bytes each while pending), bounded so that a feed that never stops
/// sending `more` cannot exhaust the fetcher's memory.
fn default_max_pending_entries() -> usize {
    5_000_000
}
fn default_jwks_path() -> String {
    "/.well-known/jwks.json".to_string()
}
fn default_refresh_seconds() -> u64 {
    600
}
fn default_jwks_timeout() -> u64 {
    2000
}
fn default_min_refresh() -> u64 {
    30
}
fn default_max_refresh() -> u64 {
    86_400
}
fn default_unknown_kid_refetch() -> u64 {
    30
}
fn default_jwks_max_body() -> usize {
    1 << 20
}
fn default_permissions_claim() -> String {
    "permissions".to_string()
}

/// Where a provider's signing keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    Inline(KeySet),
    /// Fetched at run time; the proxy glue holds the current set.
    Remote(RemoteJwksConfig),
}

/// One identity provider, compiled.
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub issuer: Option<String>,
    pub keys: KeySource,
    pub claims: ClaimPolicy,
    pub sources: Vec<TokenSource>,
    pub max_token_bytes: usize,
    pub claim_to_headers: Vec<ClaimHeader>,
    pub forward: bool,
    pub payload_header: Option<String>,
    /// Verified tokens kept per worker (0: no cache).
    pub token_cache_entries: usize,
}

/// The compiled, validated configuration the decision code runs on.
#[derive(Debug, Clone)]
pub struct Policy {
    pub realm: String,
    pub providers: Vec<Provider>,
    pub rules: Vec<Rule>,
    /// What applies when no rule matches: a valid token from any provider.
    pub default_requirement: Requirement,
    /// Every header the filter may write; removed from each incoming request
    /// (lowercase) so an upstream only ever sees values the filter wrote.
    pub strip_headers: Vec<String>,
    pub revocation: Option<FeedConfig>,
    /// Prefix of every shared-data key: all plugins of a proxy share one
    /// key space (Istio gives every WasmPlugin the same empty `vm_id`).
    pub namespace: String,
    /// Whether RS*/ES* signatures may go to the proxy's native crypto (when
    /// its self-test passes); false keeps every check in wasm.
    pub native_verification: bool,
    /// What an escaped `/` or `\` in a request path means.
    pub escaped_slashes: EscapedSlashes,
    /// The header that names the provider whose keys verified the token.
    pub provider_header: Option<String>,
    /// Whether a CORS preflight that carries no token passes: browsers
    /// never send credentials on a preflight, so refusing it breaks every
    /// cross-origin call.
    pub bypass_cors_preflight: bool,
}

impl Policy {
    /// Parses and validates a plugin configuration.
    pub fn from_json(bytes: &[u8]) -> Result<Policy, ConfigError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let raw: RawConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { String::new() } else { path };
            ConfigError::new(field, strip_position(&e.into_inner().to_string()))
        })?;
        de.end()
            .map_err(|e| ConfigError::new("", strip_position(&e.to_string())))?;
        compile(raw)
    }

    pub fn provider_index(&self, name: &str) -> Option<usize> {
        self.providers.iter().position(|p| p.name == name)
    }
}

/// serde_json appends "at line 1 column 42"; the field path already says where.
fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn compile(raw: RawConfig) -> Result<Policy, ConfigError> {
    let namespace = match raw.namespace {
        Some(ns) => checked_namespace(ns, "namespace")?,
        None => "jwt_auth".to_string(),
    };
    let escaped_slashes = match raw.escaped_slashes.as_deref() {
        None | Some("reject") => EscapedSlashes::Reject,
        Some("match_decoded") => EscapedSlashes::MatchDecoded,
        Some(other) => {
            return Err(ConfigError::new(
                "escaped_slashes",
                format!("unknown value \"{other}\"; expected \"reject\" or \"match_decoded\""),
            ))
        }
    };
    let realm = raw.realm.unwrap_or_else(|| "api".to_string());
    if !is_quotable(&realm) {
        return Err(ConfigError::new(
            "realm",
            "must be printable ASCII without quotes or backslashes",
        ));
    }
    if raw.providers.is_empty() {
        return Err(ConfigError::new(
            "providers",
            "at least one provider is required",
        ));
    }
    let mut providers = Vec::with_capacity(raw.providers.len());
    for (i, p) in raw.providers.into_iter().enumerate() {
        let field = format!("providers[{i}]");
        let provider = compile_provider(p, &field)?;
        if providers.iter().any(|q: &Provider| q.name == provider.name) {
            return Err(ConfigError::new(
                format!("{field}.name"),
                format!("duplicate provider name \"{}\"", provider.name),
            ));
        }
        providers.push(provider);
    }
    let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
    let rules = match raw.rules {
        None => Vec::new(),
        Some(rules) => rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| compile_rule(r, &names, &format!("rules[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let default_requirement = Requirement::Token {
        providers: (0..providers.len()).collect(),
        allow_missing: false,
        permissions: None,
        claims: Vec::new(),
    };
    let provider_header = match &raw.provider_header {
        None => None,
        Some(h) => {
            let name = header_name(h, "provider_header")?;
            if is_reserved_header(&name) {
                return Err(ConfigError::new(
                    "provider_header",
                    format!("header \"{name}\" is reserved and cannot be written"),
                ));
            }
            let clash = providers.iter().any(|p| {
                p.sources
                    .iter()
                    .any(|s| s.header_name() == Some(name.as_str()))
                    || p.claim_to_headers.iter().any(|c| c.header == name)
                    || p.payload_header.as_deref() == Some(name.as_str())
            });
            if clash {
                return Err(ConfigError::new(
                    "provider_header",
                    format!("header \"{name}\" is already a token source or an identity header"),
                ));
            }
            Some(name)
        }
    };
    let mut strip = BTreeSet::new();
    strip.extend(provider_header.clone());
    for p in &providers {
        for h in p
            .claim_to_headers
            .iter()
            .map(|c| &c.header)
            .chain(&p.payload_header)
        {
            // Matched with `_` and `-` folded (see the decision), so
            // `x_user_id` and `x-user_id` are stripped too.
            strip.insert(h.clone());
        }
    }
    let skew = providers
        .iter()
        .map(|p| p.claims.clock_skew_seconds)
        .max()
        .unwrap_or(0);
    let revocation = match raw.revocation {
        Some(r) => Some(compile_revocation(r, skew, &namespace)?),
        None => None,
    };
    Ok(Policy {
        realm,
        providers,
        rules,
        default_requirement,
        strip_headers: strip.into_iter().collect(),
        revocation,
        namespace,
        native_verification: raw.native_verification,
        escaped_slashes,
        provider_header,
        bypass_cors_preflight: raw.bypass_cors_preflight,
    })
}

/// Names that end up in shared-data keys and metric names.
fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn checked_namespace(ns: String, field: &str) -> Result<String, ConfigError> {
    if is_identifier(&ns) {
        Ok(ns)
    } else {
        Err(ConfigError::new(
            field,
            "must be non-empty and use only letters, digits, '-', '_' and '.'",
        ))
    }
}

fn compile_revocation(
    r: RawRevocation,
    clock_skew_seconds: u64,
    namespace: &str,
) -> Result<FeedConfig, ConfigError> {
    let field = |name: &str| format!("revocation.{name}");
    if r.cluster.is_empty() {
        return Err(ConfigError::new(
            field("cluster"),
            "must name an Envoy cluster",
        ));
    }
    if !r.path.starts_with('/') {
        return Err(ConfigError::new(field("path"), "must start with '/'"));
    }
    if r.poll_interval_ms < 100 {
        return Err(ConfigError::new(
            field("poll_interval_ms"),
            "must be at least 100",
        ));
    }
    if r.timeout_ms == 0 {
        return Err(ConfigError::new(
            field("timeout_ms"),
            "must be greater than 0",
        ));
    }
    if r.max_pending_entries == 0 {
        return Err(ConfigError::new(
            field("max_pending_entries"),
            "must be greater than 0",
        ));
    }
    if r.sync_interval_ms < 10 || r.sync_interval_ms > r.poll_interval_ms {
        return Err(ConfigError::new(
            field("sync_interval_ms"),
            "must be between 10 and poll_interval_ms",
        ));
    }
    let namespace = match r.namespace {
        Some(ns) => checked_namespace(ns, &field("namespace"))?,
        None => namespace.to_string(),
    };
    let on_stale = match r.on_stale.as_deref() {
        None | Some("serve") => OnStale::Serve,
        Some("deny") => OnStale::Deny,
        Some(other) => {
            return Err(ConfigError::new(
                field("on_stale"),
                format!("unknown policy \"{other}\"; expected \"serve\" or \"deny\""),
            ))
        }
    };
    // Shipped manifests and examples hold placeholders for the feed's
    // secrets: deployed as copied, the filter refuses to start rather than
    // run with a published key.
    for (name, value) in [
        ("bearer_token", &r.bearer_token),
        ("hmac_secret_base64", &r.hmac_secret_base64),
    ] {
        if value.as_deref().is_some_and(is_placeholder) {
            return Err(ConfigError::new(
                field(name),
                "is a placeholder; set it to the value in the feed's Secret",
            ));
        }
    }
    let hmac_secret = match &r.hmac_secret_base64 {
        None => None,
        Some(b64) => {
            let secret = decode_base64(b64)
                .ok_or_else(|| ConfigError::new(field("hmac_secret_base64"), "not valid base64"))?;
            if secret.is_empty() {
                return Err(ConfigError::new(
                    field("hmac_secret_base64"),
                    "must not be empty",
                ));
            }
            Some(secret)
        }
    };
    if r.bearer_token
        .as_deref()
        .is_some_and(|t| t.is_empty() || !is_quotable(t))
    {
        return Err(ConfigError::new(
            field("bearer_token"),
            "must be non-empty printable ASCII",
        ));
    }
    // A held poll answers at least every wait_ms; the data must not count
    // as stale in between.
    let max_wait_ms = r.max_staleness_seconds.saturating_mul(500);
    let wait_ms = match r.wait_ms {
        None => DEFAULT_FEED_WAIT_MS.min(max_wait_ms),
        Some(ms) if ms > max_wait_ms => {
            return Err(ConfigError::new(
                field("wait_ms"),
                format!("must be at most half of max_staleness_seconds ({max_wait_ms} ms)"),
            ))
        }
        Some(ms) => ms,
    };
    Ok(FeedConfig {
        wait_ms,
        accept_unbound_answers: r.accept_unbound_answers,
        authority: r.authority.unwrap_or_else(|| r.cluster.clone()),
        cluster: r.cluster,
        path: r.path,
        poll_interval_ms: r.poll_interval_ms,
        timeout_ms: r.timeout_ms,
        bearer_token: r.bearer_token,
        hmac_secret,
        max_staleness_seconds: r.max_staleness_seconds,
        on_stale,
        namespace,
        max_body_bytes: r.max_body_bytes,
        sync_interval_ms: r.sync_interval_ms,
        max_backoff_ms: r.max_backoff_ms,
        clock_skew_seconds,
        max_pending_entries: r.max_pending_entries,
    })
}

/// `<REPLACE with ...>` and the like.
fn is_placeholder(value: &str) -> bool {
    value.contains(['<', '>']) || value.to_ascii_lowercase().contains("replace")
}

/// Standard or URL-safe alphabet, padded or not: operators paste secrets
/// from many tools.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let trimmed = text.trim();
    STANDARD
        .decode(trimmed)
        .ok()
        .or_else(|| URL_SAFE_NO_PAD.decode(trimmed.trim_end_matches('=')).ok())
}

fn compile_provider(mut p: RawProvider, field: &str) -> Result<Provider, ConfigError> {
    if !is_identifier(&p.name) {
        return Err(ConfigError::new(
            format!("{field}.name"),
            "must be non-empty and use only letters, digits, '-', '_' and '.'",
        ));
    }
    if let Some(iss) = &p.issuer {
        if iss.is_empty() {
            return Err(ConfigError::new(
                format!("{field}.issuer"),
                "must not be empty",
            ));
        }
    }
    if p.audiences.iter().any(String::is_empty) {
        return Err(ConfigError::new(
            format!("{field}.audiences"),
            "must not contain an empty audience",
        ));
    }
    let keys = match (&p.jwks, p.remote_jwks.take()) {
        (Some(jwks), None) => {
            let keys = KeySet::from_jwks(jwks)
                .map_err(|e| ConfigError::new(format!("{field}.jwks"), e.to_string()))?;
            if keys.verification_key_count() == 0 {
                return Err(ConfigError::new(
                    format!("{field}.jwks"),
                    "holds no key usable for verifying signatures",
                ));
            }
            KeySource::Inline(keys)
        }
        (None, Some(remote)) => KeySource::Remote(compile_remote_jwks(
            remote,
            p.issuer.as_deref(),
            &format!("{field}.remote_jwks"),
        )?),
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                format!("{field}.remote_jwks"),
                "give either \"jwks\" or \"remote_jwks\", not both",
            ))
        }
        (None, None) => {
            return Err(ConfigError::new(
                format!("{field}.jwks"),
                "a key set is required (\"jwks\" or \"remote_jwks\")",
            ))
        }
    };
    if p.max_token_bytes == 0 {
        return Err(ConfigError::new(
            format!("{field}.max_token_bytes"),
            "must be greater than 0",
        ));
    }
    for (name, value) in &p.required_claims {
        if !is_scalar(value) {
            return Err(ConfigError::new(
                format!("{field}.required_claims.{name}"),
                "must be a string, number or boolean",
            ));
        }
    }
    let sources = compile_sources(&p, field)?;
    let mut claim_to_headers = Vec::with_capacity(p.claim_to_headers.len());
    for (i, m) in p.claim_to_headers.iter().enumerate() {
        let f = format!("{field}.claim_to_headers[{i}]");
        if m.claim.is_empty() || m.claim.split('.').any(str::is_empty) {
            return Err(ConfigError::new(
                format!("{f}.claim"),
                "must be a claim name or a dotted path",
            ));
        }
        let header = header_name(&m.header, &format!("{f}.header"))?;
        claim_to_headers.push(ClaimHeader::new(&m.claim, header));
    }
    let payload_header = match &p.payload_header {
        Some(h) => Some(header_name(h, &format!("{field}.payload_header"))?),
        None => None,
    };
    // A header the filter writes must never be one a token is read from:
    // stripping it would remove the credential itself.
    for written in claim_to_headers
        .iter()
        .map(|c| c.header.as_str())
        .chain(payload_header.as_deref())
    {
        if sources.iter().any(|s| s.header_name() == Some(written)) {
            return Err(ConfigError::new(
                format!("{field}.claim_to_headers"),
                format!("header \"{written}\" is also a token source"),
            ));
        }
        if is_reserved_header(written) {
            return Err(ConfigError::new(
                format!("{field}.claim_to_headers"),
                format!("header \"{written}\" is reserved and cannot be written"),
            ));
        }
    }
    Ok(Provider {
        claims: ClaimPolicy {
            issuer: p.issuer.clone(),
            audiences: p.audiences,
            require_expiration: p.require_expiration,
            clock_skew_seconds: p.clock_skew_seconds,
            max_lifetime_seconds: p.max_lifetime_seconds,
            required_claims: p.required_claims,
        },
        name: p.name,
        issuer: p.issuer,
        keys,
        sources,
        max_token_bytes: p.max_token_bytes,
        claim_to_headers,
        forward: p.forward,
        payload_header,
        token_cache_entries: p
            .token_cache
            .map_or(DEFAULT_TOKEN_CACHE_ENTRIES, |c| c.max_entries),
    })
}

fn compile_remote_jwks(
    r: RawRemoteJwks,
    issuer: Option<&str>,
    field: &str,
) -> Result<RemoteJwksConfig, ConfigError> {
    let f = |name: &str| format!("{field}.{name}");
    if r.cluster.is_empty() {
        return Err(ConfigError::new(f("cluster"), "must name an Envoy cluster"));
    }
    if !r.path.starts_with('/') {
        return Err(ConfigError::new(f("path"), "must start with '/'"));
    }
    if r.discovery && issuer.is_none() {
        return Err(ConfigError::new(
            f("discovery"),
            "needs the provider's \"issuer\" to find the OpenID configuration",
        ));
    }
    if r.refresh_seconds == 0 || r.timeout_ms == 0 {
        return Err(ConfigError::new(
            f("refresh_seconds"),
            "refresh_seconds and timeout_ms must be greater than 0",
        ));
    }
    if r.min_refresh_seconds == 0 || r.min_refresh_seconds > r.max_refresh_seconds {
        return Err(ConfigError::new(
            f("min_refresh_seconds"),
            "must be at least 1 and not above max_refresh_seconds",
        ));
    }
    Ok(RemoteJwksConfig {
        authority: r.authority.unwrap_or_else(|| r.cluster.clone()),
        cluster: r.cluster,
        path: r.path,
        refresh_seconds: r.refresh_seconds,
        timeout_ms: r.timeout_ms,
        min_refresh_seconds: r.min_refresh_seconds,
        max_refresh_seconds: r.max_refresh_seconds,
        unknown_kid_refetch_seconds: r.unknown_kid_refetch_seconds,
        max_body_bytes: r.max_body_bytes,
        max_backoff_ms: r.max_backoff_ms,
        discovery: r.discovery,
    })
}

fn compile_sources(p: &RawProvider, field: &str) -> Result<Vec<TokenSource>, ConfigError> {
    if p.from_headers.is_none() && p.from_params.is_none() && p.from_cookies.is_none() {
        return Ok(vec![TokenSource::default_bearer()]);
    }
    let mut sources = Vec::new();
    for (i, h) in p.from_headers.iter().flatten().enumerate() {
        let name = header_name(&h.name, &format!("{field}.from_headers[{i}].name"))?;
        sources.push(TokenSource::header(name, h.value_prefix.clone()));
    }
    for (i, name) in p.from_params.iter().flatten().enumerate() {
        if name.is_empty() {
            return Err(ConfigError::new(
                format!("{field}.from_params[{i}]"),
                "must not be empty",
            ));
        }
        sources.push(TokenSource::Param(name.clone()));
    }
    for (i, name) in p.from_cookies.iter().flatten().enumerate() {
        if name.is_empty() || name.contains(['=', ';', ' ']) {
            return Err(ConfigError::new(
                format!("{field}.from_cookies[{i}]"),
                "must be a cookie name",
            ));
        }
        sources.push(TokenSource::Cookie(name.clone()));
    }
    if sources.is_empty() {
        return Err(ConfigError::new(
            format!("{field}.from_headers"),
            "no token source configured",
        ));
    }
    Ok(sources)
}

fn compile_rule(r: RawRule, providers: &[&str], field: &str) -> Result<Rule, ConfigError> {
    let m = r.matcher;
    let path = match (m.prefix, m.path) {
        (Some(p), None) => PathMatch::Prefix(p),
        (None, Some(p)) => PathMatch::Exact(p),
        _ => {
            return Err(ConfigError::new(
                format!("{field}.match"),
                "exactly one of \"prefix\" or \"path\" is required",
            ))
        }
    };
    let path_str = match &path {
        PathMatch::Prefix(p) | PathMatch::Exact(p) => p,
    };
    if !path_str.starts_with('/') {
        return Err(ConfigError::new(
            format!("{field}.match"),
            "paths must start with '/'",
        ));
    }
    // Requests are matched on their canonical path, so a rule's own path
    // must be one: a rule on `/a/../b` or `/a;x` could never match.
    let canonical = crate::path::canonical(path_str, EscapedSlashes::Reject);
    if canonical.as_deref() != Ok(path_str.as_str()) || path_str.contains('?') {
        return Err(ConfigError::new(
            format!("{field}.match"),
            format!(
                "\"{path_str}\" is not a canonical path (no percent-escapes, '\\', ';', '?', '//', '.' or '..' segments)"
            ),
        ));
    }
    let methods = match m.methods {
        None => Vec::new(),
        Some(methods) => {
            if methods.is_empty() {
                return Err(ConfigError::new(
                    format!("{field}.match.methods"),
                    "must not be empty when present",
                ));
            }
            methods.iter().map(|s| s.to_ascii_uppercase()).collect()
        }
    };
    let requires = compile_requirement(r.requires, providers, &format!("{field}.requires"))?;
    Ok(Rule {
        path,
        case_sensitive: m.case_sensitive,
        methods,
        requires,
    })
}

fn compile_requirement(
    value: Value,
    providers: &[&str],
    field: &str,
) -> Result<Requirement, ConfigError> {
    if let Value::String(s) = &value {
        return if s == "none" {
            Ok(Requirement::None)
        } else {
            Err(ConfigError::new(
                field,
                format!("unknown requirement \"{s}\"; expected \"none\" or an object"),
            ))
        };
    }
    let raw: RawRequirement = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let f = if path == "." {
            field.to_string()
        } else {
            format!("{field}.{path}")
        };
        ConfigError::new(f, strip_position(&e.into_inner().to_string()))
    })?;
    let indices = match raw.providers {
        None => (0..providers.len()).collect(),
        Some(names) => {
            if names.is_empty() {
                return Err(ConfigError::new(
                    format!("{field}.providers"),
                    "must name at least one provider",
                ));
            }
            let mut out = Vec::with_capacity(names.len());
            for (i, name) in names.iter().enumerate() {
                match providers.iter().position(|p| p == name) {
                    Some(idx) => out.push(idx),
                    None => {
                        return Err(ConfigError::new(
                            format!("{field}.providers[{i}]"),
                            format!("unknown provider \"{name}\""),
                        ))
                    }
                }
            }
            out
        }
    };
    let permissions = match raw.permissions {
        None => None,
        Some(p) => {
            if p.all_of.is_empty() && p.any_of.is_empty() {
                return Err(ConfigError::new(
                    format!("{field}.permissions"),
                    "needs \"all_of\" or \"any_of\"",
                ));
            }
            Some(PermissionRule {
                claim: ClaimPath::new(&p.claim),
                all_of: p.all_of,
                any_of: p.any_of,
            })
        }
    };
    let mut claims = Vec::with_capacity(raw.claims.len());
    for (name, value) in raw.claims {
        let allowed = match value {
            Value::Array(items) if !items.is_empty() && items.iter().all(is_scalar) => items,
            v if is_scalar(&v) => vec![v],
            _ => {
                return Err(ConfigError::new(
                    format!("{field}.claims.{name}"),
                    "must be a string, number, boolean or a non-empty list of them",
                ))
            }
        };
        claims.push(ClaimCondition {
            path: ClaimPath::new(&name),
            allowed,
        });
    }
    Ok(Requirement::Token {
        providers: indices,
        allow_missing: raw.allow_missing,
        permissions,
        claims,
    })
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// A value that can sit inside a quoted-string of `WWW-Authenticate` as is.
fn is_quotable(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// Validates an HTTP header name (RFC 9110 token) and lowercases it.
fn header_name(name: &str, field: &str) -> Result<String, ConfigError> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(ConfigError::new(field, "not a valid HTTP header name"));
    }
    Ok(name.to_ascii_lowercase())
}

/// Headers that carry routing or framing; the filter never writes these.
fn is_reserved_header(name: &str) -> bool {
    name.starts_with(':')
        || matches!(
            name,
            "host" | "content-length" | "transfer-encoding" | "connection" | "te" | "upgrade"
        )
}

#[cfg(test)]
mod tests;
