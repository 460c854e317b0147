//! The compiled, validated configuration the decision code runs on.

use crate::extract::TokenSource;
use crate::filter_state::ClaimFilterState;
use crate::identity::ClaimHeader;
use crate::jwt::{ClaimPolicy, KeySet};
use crate::path::EscapedSlashes;
use crate::protected_resource::ProtectedResource;
use crate::remote_keys::RemoteJwksConfig;
use crate::revocation::feed::FeedConfig;
use crate::rules::{Requirement, Rule};

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
    /// Claims written to Envoy filter state after an allow.
    pub claims_to_filter_state: Vec<ClaimFilterState>,
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
    /// Where the providers without `forward` read tokens, each place once:
    /// a bypassed route takes out whatever these carry.
    pub forwardless_sources: Vec<TokenSource>,
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
    /// RFC 9728 metadata the filter serves, and points refusals to.
    pub protected_resource: Option<ProtectedResource>,
}

impl Policy {
    /// The position of the provider called `name`.
    pub fn provider_index(&self, name: &str) -> Option<usize> {
        self.providers.iter().position(|p| p.name == name)
    }
}
