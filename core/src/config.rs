//! Plugin configuration: the JSON an operator writes (Envoy `configuration`,
//! Istio `pluginConfig`) turned into a validated, compiled [`Policy`].
//!
//! Every problem is reported as a [`ConfigError`] naming the field by its path
//! (`providers[0].jwks: keys[1] ...`), because the operator sees one log line
//! when Envoy refuses the configuration and must be able to act on it.

mod error;
mod policy;
mod protected_resource;
mod provider;
mod raw;
mod revocation;
mod rules;
mod values;

use std::collections::BTreeSet;

use crate::path::EscapedSlashes;
use crate::rules::Requirement;
use error::strip_position;
use protected_resource::compile_protected_resource;
use provider::compile_provider;
use raw::RawConfig;
use revocation::compile_revocation;
use rules::{compile_rule, sources_of};
use values::{checked_namespace, header_name, is_quotable, is_reserved_header};

pub use error::ConfigError;
pub use policy::{KeySource, Policy, Provider};
pub use raw::{
    DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_FEED_WAIT_MS, DEFAULT_MAX_TOKEN_BYTES,
    DEFAULT_TOKEN_CACHE_ENTRIES,
};

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
    let rules = match raw.rules {
        None => Vec::new(),
        Some(rules) => rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| compile_rule(r, &providers, &format!("rules[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let default_requirement = Requirement::Token {
        providers: (0..providers.len()).collect(),
        sources: sources_of(providers.iter()),
        allow_missing: false,
        permissions: None,
        claims: Vec::new(),
    };
    let forwardless_sources = sources_of(providers.iter().filter(|p| !p.forward));
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
    let protected_resource = match raw.protected_resource {
        Some(r) => Some(compile_protected_resource(r, "protected_resource")?),
        None => None,
    };
    Ok(Policy {
        realm,
        providers,
        rules,
        default_requirement,
        strip_headers: strip.into_iter().collect(),
        forwardless_sources,
        revocation,
        namespace,
        native_verification: raw.native_verification,
        escaped_slashes,
        provider_header,
        bypass_cors_preflight: raw.bypass_cors_preflight,
        protected_resource,
    })
}

#[cfg(test)]
mod tests;
