//! One entry of `providers`: issuer, keys, claim checks, token sources and
//! identity headers.

use super::error::ConfigError;
use super::policy::{KeySource, Provider};
use super::raw::*;
use super::values::*;
use crate::extract::TokenSource;
use crate::filter_state::{ClaimFilterState, GENERIC_STRING_KEYS};
use crate::identity::ClaimHeader;
use crate::jwt::{ClaimPolicy, KeySet};
use crate::remote_keys::RemoteJwksConfig;

pub(super) fn compile_provider(mut p: RawProvider, field: &str) -> Result<Provider, ConfigError> {
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
        claim_path(&m.claim, &format!("{f}.claim"))?;
        let header = header_name(&m.header, &format!("{f}.header"))?;
        claim_to_headers.push(ClaimHeader::new(&m.claim, header));
    }
    let claims_to_filter_state = compile_filter_state(&p.claims_to_filter_state, field)?;
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
        claims_to_filter_state,
        forward: p.forward,
        payload_header,
        token_cache_entries: p
            .token_cache
            .map_or(DEFAULT_TOKEN_CACHE_ENTRIES, |c| c.max_entries),
    })
}

/// A claim name or a dotted path to a nested claim.
fn claim_path(claim: &str, field: &str) -> Result<(), ConfigError> {
    if claim.is_empty() || claim.split('.').any(str::is_empty) {
        return Err(ConfigError::new(
            field,
            "must be a claim name or a dotted path",
        ));
    }
    Ok(())
}

/// `claims_to_filter_state`: only keys Envoy has a generic string factory
/// for can be set (see [`crate::filter_state`]), each at most once.
fn compile_filter_state(
    entries: &[RawClaimFilterState],
    field: &str,
) -> Result<Vec<ClaimFilterState>, ConfigError> {
    let mut out: Vec<ClaimFilterState> = Vec::with_capacity(entries.len());
    for (i, m) in entries.iter().enumerate() {
        let f = format!("{field}.claims_to_filter_state[{i}]");
        claim_path(&m.claim, &format!("{f}.claim"))?;
        if !GENERIC_STRING_KEYS.contains(&m.name.as_str()) {
            return Err(ConfigError::new(
                format!("{f}.name"),
                format!(
                    "Envoy sets filter state from a wasm filter only under a key with a registered object factory, and only \"{}\" take any string; \"{}\" cannot be set",
                    GENERIC_STRING_KEYS.join("\" and \""),
                    m.name
                ),
            ));
        }
        if out.iter().any(|o| o.name == m.name) {
            return Err(ConfigError::new(
                format!("{f}.name"),
                format!("\"{}\" is already written by another entry", m.name),
            ));
        }
        out.push(ClaimFilterState::new(&m.claim, m.name.clone()));
    }
    Ok(out)
}

pub(super) fn compile_remote_jwks(
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

pub(super) fn compile_sources(
    p: &RawProvider,
    field: &str,
) -> Result<Vec<TokenSource>, ConfigError> {
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
