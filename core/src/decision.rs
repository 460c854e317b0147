//! The authenticator: one request in, one [`Decision`] out.
//!
//! Host-free: the proxy glue hands over the method, path and headers and the
//! current time, and applies the answer. `jwt-auth-check` runs the same code.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::borrow::Cow;
use std::sync::Arc;

use crate::cache::{TokenCaches, Verified};
use crate::config::{KeySource, Policy, Provider};
pub use crate::deny::{Deny, DenyReason};
use crate::extract::{self, ExtractError, Found, TokenSource};
use crate::jwt::{self, JsonObject, KeySet, SignatureAccelerator, TokenError, UntrustedToken};
use crate::protected_resource::Reply;
use crate::request::Request;
use crate::rules::{self, Requirement};
use crate::token_removal::{self, Carried};

/// The revocation lookup the decision consults for every verified token:
/// its issuer, `jti`, `sub` and `iat`.
pub trait RevocationCheck {
    fn is_revoked(
        &self,
        iss: Option<&str>,
        jti: Option<&str>,
        sub: Option<&str>,
        iat: Option<u64>,
    ) -> bool;
}

/// For configurations without revocation.
pub struct NoRevocation;

impl RevocationCheck for NoRevocation {
    fn is_revoked(
        &self,
        _: Option<&str>,
        _: Option<&str>,
        _: Option<&str>,
        _: Option<u64>,
    ) -> bool {
        false
    }
}

/// The current key sets of providers with remote JWKS, held by the proxy
/// glue (fetched at run time, shared between workers).
pub trait RemoteKeys {
    fn keys(&self, provider: usize) -> Option<&KeySet>;
}

/// For configurations without remote JWKS, and before any key arrived.
pub struct NoRemoteKeys;

impl RemoteKeys for NoRemoteKeys {
    fn keys(&self, _: usize) -> Option<&KeySet> {
        None
    }
}

/// Everything outside the request that the decision depends on.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// Unix seconds, from the host's clock.
    pub now: u64,
    pub revocation: &'a dyn RevocationCheck,
    /// `Some(retry_after_seconds)` when revocations could not be refreshed
    /// for too long and the policy is to refuse rather than serve.
    pub stale_revocations: Option<u64>,
    pub remote_keys: &'a dyn RemoteKeys,
    /// The proxy's native signature checks, when its self-test passed.
    pub accelerator: Option<&'a dyn SignatureAccelerator>,
    /// This worker's verified-token caches.
    pub cache: Option<&'a TokenCaches>,
}

impl Env<'static> {
    /// No revocation, no remote keys, no accelerator, no cache.
    pub fn basic(now: u64) -> Self {
        Env {
            now,
            revocation: &NoRevocation,
            stale_revocations: None,
            remote_keys: &NoRemoteKeys,
            accelerator: None,
            cache: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowKind {
    /// A `requires: "none"` route.
    Bypassed,
    /// `allow_missing` and no token was sent.
    Anonymous,
    /// A verified token.
    Authenticated,
    /// A CORS preflight without a token, under `bypass_cors_preflight`.
    CorsPreflight,
}

impl AllowKind {
    pub fn label(self) -> &'static str {
        match self {
            AllowKind::Bypassed => "bypassed",
            AllowKind::Anonymous => "anonymous",
            AllowKind::Authenticated => "allowed",
            AllowKind::CorsPreflight => "bypassed.cors_preflight",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    pub kind: AllowKind,
    /// The provider whose key verified the token (an index into the
    /// policy's providers).
    pub provider: Option<usize>,
    /// What the verified token leaves behind: its identity headers and
    /// filter state objects. Shared with the token cache, so a cache hit
    /// copies none of it.
    pub token: Option<Arc<Verified>>,
    /// Headers rewritten in place (replacing the request's value): `:path`
    /// without a token parameter, `cookie` without a token cookie.
    pub rewrite_headers: Vec<(String, String)>,
    /// Headers to remove: client-sent identity headers and, unless the
    /// provider forwards it, the token header.
    pub remove_headers: Vec<String>,
}

impl Allow {
    fn new(kind: AllowKind, remove_headers: Vec<String>) -> Self {
        Allow {
            kind,
            provider: None,
            token: None,
            rewrite_headers: Vec::new(),
            remove_headers,
        }
    }

    /// The identity headers of the verified token, each name once. None of
    /// them is left in the request once `remove_headers` are gone (every
    /// name the filter writes is stripped), so a host may add them rather
    /// than replace a value.
    pub fn identity_headers(&self) -> &[(String, String)] {
        self.token.as_deref().map_or(&[], |t| &t.set_headers)
    }

    /// Filter state objects to write (`claims_to_filter_state`): only for a
    /// verified token, never on a bypass.
    pub fn filter_state(&self) -> &[(String, String)] {
        self.token.as_deref().map_or(&[], |t| &t.filter_state)
    }

    /// Every header written: the identity headers, then the rewrites.
    pub fn set_headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.identity_headers()
            .iter()
            .chain(&self.rewrite_headers)
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Whether the request goes upstream unchanged.
    pub fn changes_nothing(&self) -> bool {
        self.remove_headers.is_empty()
            && self.rewrite_headers.is_empty()
            && self.identity_headers().is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(Allow),
    Deny(Deny),
    /// The filter answers itself (the RFC 9728 metadata document).
    Reply(Reply),
}

impl Decision {
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Allow(a) => a.kind.label(),
            Decision::Deny(d) => d.label(),
            Decision::Reply(_) => "resource_metadata",
        }
    }
}

/// Decides one request.
pub fn decide(policy: &Policy, request: &Request<'_>, env: &Env<'_>) -> Decision {
    // The metadata says how to get a token: it is read without one.
    let metadata = policy.protected_resource.as_ref();
    if let Some(reply) = metadata.and_then(|m| m.answer(request.method, request.path)) {
        return Decision::Reply(reply);
    }
    let present = present_strip_headers(policy, request);
    match authenticate(policy, request, env, present) {
        Ok(allow) => Decision::Allow(allow),
        Err(mut deny) => {
            deny.realm.clone_from(&policy.realm);
            deny.grpc = is_grpc(request);
            if let Some(m) = metadata {
                deny.challenge_mut().resource_metadata = Some(m.metadata_url.clone());
            }
            Decision::Deny(deny)
        }
    }
}

/// The headers the filter owns that the client sent anyway. Frameworks
/// that fold `_` into `-` read `x-user_id` as `x-user-id`, so any mix of
/// the two spellings counts.
fn present_strip_headers(policy: &Policy, request: &Request<'_>) -> Vec<String> {
    let mut present: Vec<String> = Vec::new();
    for (name, _) in request.headers {
        let owned = policy.strip_headers.iter().any(|s| same_folded(s, name));
        if owned && !present.iter().any(|p| p == name) {
            present.push((*name).to_string());
        }
    }
    present.sort();
    present
}

/// A gRPC call: its `content-type` is `application/grpc` or one of its
/// `+proto`, `+json`, ... variants (the gRPC HTTP/2 protocol).
fn is_grpc(request: &Request<'_>) -> bool {
    request
        .headers
        .iter()
        .any(|(n, v)| *n == "content-type" && v.starts_with(b"application/grpc"))
}

/// A CORS preflight (Fetch standard): `OPTIONS` with both `Origin` and
/// `Access-Control-Request-Method`. Browsers send it without credentials.
fn is_cors_preflight(request: &Request<'_>) -> bool {
    let has = |name: &str| request.headers.iter().any(|(n, _)| *n == name);
    request.method == "OPTIONS" && has("origin") && has("access-control-request-method")
}

/// Equal once `_` and `-` are treated as one character.
fn same_folded(a: &str, b: &str) -> bool {
    let fold = |c: u8| if c == b'_' { b'-' } else { c };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
}

fn authenticate(
    policy: &Policy,
    request: &Request<'_>,
    env: &Env<'_>,
    stripped: Vec<String>,
) -> Result<Allow, Deny> {
    // Rules decide on the path the backend will serve; a path whose meaning
    // depends on who reads it is refused before any rule.
    let path = crate::path::canonical(request.path, policy.escaped_slashes)
        .map_err(|_| Deny::new(DenyReason::AmbiguousPath))?;
    let requirement = rules::find(&policy.rules, request.method, &path)
        .map_or(&policy.default_requirement, |r| &r.requires);
    let Requirement::Token {
        providers,
        sources,
        allow_missing,
        ..
    } = requirement
    else {
        let allow = Allow::new(AllowKind::Bypassed, stripped);
        return Ok(without_credentials(allow, policy, request));
    };
    // Iterated, not collected: a cache hit allocates nothing here.
    let candidates = || {
        providers
            .iter()
            .filter_map(|&i| Some((i, policy.providers.get(i)?)))
    };
    let found = match extract::extract(request, sources) {
        Ok(Some(found)) => found,
        Ok(None) if policy.bypass_cors_preflight && is_cors_preflight(request) => {
            return Ok(Allow::new(AllowKind::CorsPreflight, stripped))
        }
        Ok(None) if *allow_missing => return Ok(Allow::new(AllowKind::Anonymous, stripped)),
        Ok(None) => return Err(Deny::new(DenyReason::Missing)),
        Err(ExtractError::Multiple) => return Err(Deny::new(DenyReason::MultipleTokens)),
        Err(ExtractError::Unreadable) => {
            return Err(Deny::new(DenyReason::InvalidToken(TokenError::Malformed(
                "not text",
            ))))
        }
    };
    // The providers that read the place the token came from.
    let readers = || candidates().filter(|(_, p)| p.sources.contains(found.source));
    if let Some(cache) = env.cache {
        for (index, provider) in readers() {
            let skew = provider.claims.clock_skew_seconds;
            if let Some(hit) = cache.get(index, found.token, env.now, skew) {
                return authorize(index, hit, requirement, env, stripped)
                    .map(|allow| without_token(allow, provider, &found, request, sources))
                    .map_err(attributed_to(index));
            }
        }
    }
    let limit = candidates()
        .map(|(_, p)| p.max_token_bytes)
        .max()
        .unwrap_or(0);
    let token =
        jwt::parse(found.token, limit).map_err(|e| Deny::new(DenyReason::InvalidToken(e)))?;
    let readers: Vec<(usize, &Provider)> = readers().collect();
    let (index, provider) = select_provider(&readers, &token)?;
    verify(
        policy,
        request,
        env,
        stripped,
        requirement,
        &found,
        sources,
        token,
        index,
        provider,
    )
    .map_err(attributed_to(index))
}

/// Checks `token` against the one provider chosen for it (`index`), and
/// what the route requires of it.
#[allow(clippy::too_many_arguments)]
fn verify(
    policy: &Policy,
    request: &Request<'_>,
    env: &Env<'_>,
    stripped: Vec<String>,
    requirement: &Requirement,
    found: &Found<'_>,
    sources: &[TokenSource],
    token: UntrustedToken<'_>,
    index: usize,
    provider: &Provider,
) -> Result<Allow, Deny> {
    if found.token.len() > provider.max_token_bytes {
        return Err(Deny::new(DenyReason::InvalidToken(TokenError::TooLarge)));
    }
    let keys: &KeySet = match &provider.keys {
        KeySource::Inline(keys) => keys,
        KeySource::Remote(_) => env.remote_keys.keys(index).ok_or_else(|| {
            let mut deny = Deny::new(DenyReason::KeysUnavailable);
            deny.remote_provider = Some(index);
            deny
        })?,
    };
    keys.verify_with(&token, env.accelerator).map_err(|e| {
        let mut deny = Deny::new(DenyReason::InvalidToken(e.clone()));
        if matches!(provider.keys, KeySource::Remote(_)) && e == TokenError::UnknownKid {
            deny.remote_provider = Some(index);
        }
        deny
    })?;
    jwt::check_claims(&token.claims, &provider.claims, env.now)
        .map_err(|e| Deny::new(DenyReason::InvalidToken(e)))?;
    let claims = token.claims;
    let verified = Arc::new(Verified {
        exp: numeric_seconds(&claims, "exp"),
        iss: claims.str("iss").map(Cow::into_owned),
        jti: claims.str("jti").map(Cow::into_owned),
        sub: claims.str("sub").map(Cow::into_owned),
        iat: numeric_seconds(&claims, "iat"),
        set_headers: identity_headers(policy, provider, &claims),
        filter_state: provider
            .claims_to_filter_state
            .iter()
            .filter_map(|m| Some((m.name.clone(), m.value(&claims)?)))
            .collect(),
        claims,
    });
    if let Some(cache) = env.cache {
        cache.insert(index, found.token, Arc::clone(&verified));
    }
    authorize(index, verified, requirement, env, stripped)
        .map(|allow| without_token(allow, provider, found, request, sources))
}

/// Marks a refusal as the verdict of provider `index`.
fn attributed_to(index: usize) -> impl Fn(Deny) -> Deny {
    move |mut deny| {
        deny.provider = Some(index);
        deny
    }
}

/// What applies to a verified token, cached or not: staleness of the
/// revocation data, revocation, and the route's permission rules.
fn authorize(
    index: usize,
    token: Arc<Verified>,
    requirement: &Requirement,
    env: &Env<'_>,
    stripped: Vec<String>,
) -> Result<Allow, Deny> {
    if let Some(retry_after) = env.stale_revocations {
        let mut deny = Deny::new(DenyReason::RevocationStale);
        deny.retry_after = Some(retry_after);
        return Err(deny);
    }
    if env.revocation.is_revoked(
        token.iss.as_deref(),
        token.jti.as_deref(),
        token.sub.as_deref(),
        token.iat,
    ) {
        return Err(Deny::new(DenyReason::Revoked));
    }
    if let Requirement::Token {
        permissions,
        claims: conditions,
        ..
    } = requirement
    {
        if let Some(rule) = permissions {
            if !rule.allows(&token.claims) {
                let mut deny = Deny::new(DenyReason::InsufficientPermissions);
                deny.challenge_mut().scope = rule.scope();
                return Err(deny);
            }
        }
        if !conditions.iter().all(|c| c.allows(&token.claims)) {
            return Err(Deny::new(DenyReason::InsufficientClaims));
        }
    }
    Ok(Allow {
        kind: AllowKind::Authenticated,
        provider: Some(index),
        token: Some(token),
        rewrite_headers: Vec::new(),
        remove_headers: stripped,
    })
}

/// Unless the provider forwards it, the token leaves every place the route
/// reads that carries it, whichever provider's source found it (the same
/// token may arrive twice). A client-sent header the filter also writes is
/// removed all the same, before the write: what the upstream sees under
/// that name never depends on how the proxy replaces values.
fn without_token(
    allow: Allow,
    provider: &Provider,
    found: &Found<'_>,
    request: &Request<'_>,
    sources: &[TokenSource],
) -> Allow {
    if provider.forward {
        return allow;
    }
    take_out(allow, sources, Carried::Found(found), request)
}

/// On a bypassed route no token is read, but none may pass either: every
/// place a provider without `forward` reads loses what it carries.
fn without_credentials(allow: Allow, policy: &Policy, request: &Request<'_>) -> Allow {
    if policy.forwardless_sources.is_empty() {
        return allow;
    }
    take_out(allow, &policy.forwardless_sources, Carried::Any, request)
}

fn take_out(
    mut allow: Allow,
    sources: &[TokenSource],
    carried: Carried<'_>,
    request: &Request<'_>,
) -> Allow {
    token_removal::writes(sources, carried, request, |name, value| match value {
        Some(value) => allow.rewrite_headers.push((name.to_string(), value)),
        None if !allow.remove_headers.iter().any(|n| n == name) => {
            allow.remove_headers.push(name.to_string())
        }
        None => {}
    });
    allow
}

/// Picks the one provider whose keys may verify this token. When several
/// providers read the same place, the token's `iss` (read before
/// verification, only to choose) decides, so a token is never tried against
/// another issuer's keys.
fn select_provider<'p>(
    readers: &[(usize, &'p Provider)],
    token: &UntrustedToken<'_>,
) -> Result<(usize, &'p Provider), Deny> {
    if let [only] = readers {
        return Ok(*only);
    }
    let iss = token.claims.str("iss");
    if let Some(p) = readers
        .iter()
        .find(|(_, p)| p.issuer.is_some() && p.issuer.as_deref() == iss.as_deref())
    {
        return Ok(*p);
    }
    let mut open = readers.iter().filter(|(_, p)| p.issuer.is_none());
    match (open.next(), open.next()) {
        (Some(p), None) => Ok(*p),
        _ => Err(Deny::new(DenyReason::InvalidToken(TokenError::WrongIssuer))),
    }
}

fn identity_headers(
    policy: &Policy,
    provider: &Provider,
    claims: &JsonObject,
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = provider
        .claim_to_headers
        .iter()
        .filter_map(|m| Some((m.header.clone(), m.value(claims)?)))
        .collect();
    if let Some(name) = &provider.payload_header {
        // The payload exactly as the issuer signed it.
        headers.push((name.clone(), URL_SAFE_NO_PAD.encode(claims.text())));
    }
    if let Some(name) = &policy.provider_header {
        // The provider whose keys verified the token, never a claim.
        headers.push((name.clone(), provider.name.clone()));
    }
    // One value per name, the last one written, as a replacing write would
    // leave it: hosts add these headers rather than replace them.
    let mut i = 0;
    while i < headers.len() {
        if headers[i + 1..].iter().any(|(n, _)| *n == headers[i].0) {
            headers.remove(i);
        } else {
            i += 1;
        }
    }
    headers
}

/// `iat`-style numeric dates may be integers or floats.
fn numeric_seconds(claims: &JsonObject, name: &str) -> Option<u64> {
    let n = jwt::as_number(claims.raw(name)?)?;
    n.as_u64()
        .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

#[cfg(test)]
mod tests;
