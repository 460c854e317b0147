//! The `extract` target's input: a request built from fuzz data, with
//! placeholders for tokens that the harness signs with the key of
//! [`super::DECIDE_CONFIG`], so that `decide` reaches the authenticated
//! paths (rules, permissions, identity headers) and not only the refusals.

use arbitrary::Arbitrary;
use jwt_auth_core::cache::TokenCaches;
use jwt_auth_core::decision::{self, Decision, Env, RevocationCheck};
use jwt_auth_core::extract::{self, TokenSource};
use jwt_auth_core::jwt::Algorithm;
use jwt_auth_core::request::{header_refs, Request};
use serde_json::{json, Map, Value};

use super::{decide_policy, hmac_token, hs_secret, JsonValue, AUDIENCE, ISSUER, NOW, OTHER_ISSUER};

#[derive(Arbitrary, Debug)]
pub struct RequestInput {
    pub method: MethodChoice,
    pub base: PathBase,
    pub rest: String,
    pub query_token: Option<TokenChoice>,
    pub headers: Vec<HeaderInput>,
    /// Which of the fixed token sources `extract` is called with.
    pub sources_mask: u8,
    /// Seconds after [`NOW`] of a second decision (cache expiry checks).
    pub later: u32,
}

#[derive(Arbitrary, Debug)]
pub enum MethodChoice {
    Get,
    Post,
    Put,
    Delete,
    Other(String),
}

#[derive(Arbitrary, Debug)]
pub enum PathBase {
    Root,
    Healthz,
    Public,
    Admin,
    Ops,
    Other,
    Raw,
}

#[derive(Arbitrary, Debug)]
pub struct HeaderInput {
    pub name: NameChoice,
    pub value: ValueChoice,
}

#[derive(Arbitrary, Debug)]
pub enum NameChoice {
    Authorization,
    XToken,
    Cookie,
    XUserId,
    XUserEmail,
    XRoles,
    XOrg,
    XJwtPayload,
    XTenant,
    /// `x_user_id`: the underscore spelling of an identity header, which
    /// some upstreams (CGI/WSGI) read as `x-user-id`.
    XUserIdUnderscore,
    Other(String),
}

#[derive(Arbitrary, Debug)]
pub enum ValueChoice {
    Raw(Vec<u8>),
    Text(String),
    /// `Bearer <token>`, with the scheme in the given letter case.
    Bearer(bool, TokenChoice),
    /// The token alone (the `x-token` source has no prefix).
    Bare(TokenChoice),
    /// `a=b; session=<token>`.
    Cookie(TokenChoice),
}

#[derive(Arbitrary, Debug)]
pub struct TokenChoice {
    pub claims: ClaimsInput,
    pub signer: SignerChoice,
}

#[derive(Arbitrary, Debug)]
pub enum SignerChoice {
    /// HS256 with the configured secret and its kid.
    Good,
    /// Same, without a kid.
    GoodNoKid,
    /// A 32-byte secret the filter does not know.
    WrongSecret,
    /// Any text in place of a token.
    Raw(String),
}

#[derive(Arbitrary, Debug)]
pub struct ClaimsInput {
    pub iss: IssChoice,
    pub aud: Option<JsonValue>,
    pub exp: TimeChoice,
    pub nbf: Option<TimeChoice>,
    pub jti: Option<JsonValue>,
    pub sub: Option<JsonValue>,
    pub email: Option<JsonValue>,
    pub roles: Option<JsonValue>,
    pub org: Option<JsonValue>,
    pub tenant: Option<JsonValue>,
    pub scope: Option<JsonValue>,
    pub role: Option<JsonValue>,
    pub extra: Vec<(String, JsonValue)>,
}

#[derive(Arbitrary, Debug)]
pub enum IssChoice {
    Main,
    Other,
    Missing,
    Value(JsonValue),
}

#[derive(Arbitrary, Debug)]
pub enum TimeChoice {
    Valid,
    Expired,
    Future,
    Value(JsonValue),
}

impl TimeChoice {
    fn value(&self) -> Value {
        match self {
            TimeChoice::Valid => json!(NOW + 600),
            TimeChoice::Expired => json!(NOW - 3600),
            TimeChoice::Future => json!(NOW + 86_400 * 365),
            TimeChoice::Value(v) => v.0.clone(),
        }
    }
}

/// Jti values the test revocation check refuses.
pub const REVOKED_JTI: &str = "revoked";

pub struct RevokeOne;

impl RevocationCheck for RevokeOne {
    fn is_revoked(
        &self,
        _iss: Option<&str>,
        jti: Option<&str>,
        _sub: Option<&str>,
        _iat: Option<u64>,
    ) -> bool {
        jti == Some(REVOKED_JTI)
    }
}

impl TokenChoice {
    /// The token text, and whether it carries a good signature.
    pub fn render(&self) -> (String, bool) {
        let c = &self.claims;
        let mut claims = Map::new();
        match &c.iss {
            IssChoice::Main => {
                claims.insert("iss".into(), json!(ISSUER));
            }
            IssChoice::Other => {
                claims.insert("iss".into(), json!(OTHER_ISSUER));
            }
            IssChoice::Missing => {}
            IssChoice::Value(v) => {
                claims.insert("iss".into(), v.0.clone());
            }
        }
        claims.insert(
            "aud".into(),
            c.aud.as_ref().map_or(json!([AUDIENCE]), |v| v.0.clone()),
        );
        claims.insert("exp".into(), c.exp.value());
        if let Some(nbf) = &c.nbf {
            claims.insert("nbf".into(), nbf.value());
        }
        for (name, value) in [
            ("jti", &c.jti),
            ("sub", &c.sub),
            ("email", &c.email),
            ("roles", &c.roles),
            ("org", &c.org),
            ("tenant", &c.tenant),
            ("scope", &c.scope),
            ("role", &c.role),
        ] {
            if let Some(v) = value {
                claims.insert(name.into(), v.0.clone());
            }
        }
        for (name, value) in &c.extra {
            claims.insert(name.clone(), value.0.clone());
        }
        let payload = Value::Object(claims).to_string();
        match &self.signer {
            SignerChoice::Good => (
                hmac_token(
                    Algorithm::Hs256,
                    &hs_secret(256),
                    r#"{"alg":"HS256","typ":"JWT","kid":"hs256"}"#,
                    &payload,
                ),
                true,
            ),
            SignerChoice::GoodNoKid => (
                hmac_token(
                    Algorithm::Hs256,
                    &hs_secret(256),
                    r#"{"alg":"HS256"}"#,
                    &payload,
                ),
                true,
            ),
            SignerChoice::WrongSecret => (
                hmac_token(
                    Algorithm::Hs256,
                    &[0x42; 32],
                    r#"{"alg":"HS256","kid":"hs256"}"#,
                    &payload,
                ),
                false,
            ),
            SignerChoice::Raw(text) => (text.clone(), false),
        }
    }
}

/// A request made concrete: names lowercase (as Envoy hands them over).
pub struct Built {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub any_good_token: bool,
}

impl RequestInput {
    pub fn build(&self) -> Built {
        let mut any_good_token = false;
        let method = match &self.method {
            MethodChoice::Get => "GET".to_string(),
            MethodChoice::Post => "POST".to_string(),
            MethodChoice::Put => "PUT".to_string(),
            MethodChoice::Delete => "DELETE".to_string(),
            MethodChoice::Other(m) => m.clone(),
        };
        let base = match self.base {
            PathBase::Root => "/",
            PathBase::Healthz => "/healthz",
            PathBase::Public => "/public",
            PathBase::Admin => "/admin",
            PathBase::Ops => "/ops",
            PathBase::Other => "/other",
            PathBase::Raw => "",
        };
        let mut path = format!("{base}{}", self.rest);
        if let Some(t) = &self.query_token {
            let (token, good) = t.render();
            any_good_token |= good;
            path.push(if path.contains('?') { '&' } else { '?' });
            path.push_str("access_token=");
            path.push_str(&token);
        }
        let mut headers = Vec::with_capacity(self.headers.len());
        for h in self.headers.iter().take(16) {
            let name = match &h.name {
                NameChoice::Authorization => "authorization".to_string(),
                NameChoice::XToken => "x-token".to_string(),
                NameChoice::Cookie => "cookie".to_string(),
                NameChoice::XUserId => "x-user-id".to_string(),
                NameChoice::XUserEmail => "x-user-email".to_string(),
                NameChoice::XRoles => "x-roles".to_string(),
                NameChoice::XOrg => "x-org".to_string(),
                NameChoice::XJwtPayload => "x-jwt-payload".to_string(),
                NameChoice::XTenant => "x-tenant".to_string(),
                NameChoice::XUserIdUnderscore => "x_user_id".to_string(),
                NameChoice::Other(n) => n.to_ascii_lowercase(),
            };
            let value = match &h.value {
                ValueChoice::Raw(bytes) => bytes.clone(),
                ValueChoice::Text(s) => s.as_bytes().to_vec(),
                ValueChoice::Bearer(upper, t) => {
                    let (token, good) = t.render();
                    any_good_token |= good;
                    let scheme = if *upper { "BEARER" } else { "Bearer" };
                    format!("{scheme} {token}").into_bytes()
                }
                ValueChoice::Bare(t) => {
                    let (token, good) = t.render();
                    any_good_token |= good;
                    token.into_bytes()
                }
                ValueChoice::Cookie(t) => {
                    let (token, good) = t.render();
                    any_good_token |= good;
                    format!("a=b; session={token}").into_bytes()
                }
            };
            headers.push((name, value));
        }
        Built {
            method,
            path,
            headers,
            any_good_token,
        }
    }
}

/// The fixed token sources `extract` is called with (subset by mask).
pub fn sources() -> [TokenSource; 5] {
    [
        TokenSource::default_bearer(),
        TokenSource::header("x-token".into(), None),
        TokenSource::header("x-api-key".into(), Some("Token".into())),
        TokenSource::Param("access_token".into()),
        TokenSource::Cookie("session".into()),
    ]
}

/// Runs `extract` and `decide` on the input and checks the invariants.
/// Returns the decision label (the seed generator keeps one input per label).
pub fn check(input: &RequestInput) -> String {
    let built = input.build();
    let request = Request {
        method: &built.method,
        path: &built.path,
        headers: &header_refs(&built.headers),
    };

    // --- extract on its own ---------------------------------------------
    let all = sources();
    let chosen: Vec<TokenSource> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| input.sources_mask & (1 << i) != 0)
        .map(|(_, s)| s.clone())
        .collect();
    if let Ok(Some(found)) = extract::extract(&request, &chosen) {
        assert!(
            chosen.contains(found.source),
            "token from an unasked source"
        );
        let in_path = built.path.contains(found.token);
        let in_header = built
            .headers
            .iter()
            .any(|(_, v)| std::str::from_utf8(v).is_ok_and(|v| v.contains(found.token)));
        assert!(
            in_path || in_header,
            "token {:?} not in the request",
            found.token
        );
    }

    // --- decide -----------------------------------------------------------
    let policy = decide_policy();
    let env = Env {
        revocation: &RevokeOne,
        ..Env::basic(NOW)
    };
    let decision = decision::decide(policy, &request, &env);
    check_decision(policy, &built, &decision);

    // The verified-token cache never changes a decision: not on the miss
    // that fills it, not on the hit, not later (a hit never outlives exp).
    let caches = TokenCaches::new([2, 2]);
    let cached = Env {
        cache: Some(&caches),
        ..env
    };
    assert_eq!(
        decision::decide(policy, &request, &cached),
        decision,
        "cache miss differs"
    );
    assert_eq!(
        decision::decide(policy, &request, &cached),
        decision,
        "cache hit differs"
    );
    let later = NOW + u64::from(input.later);
    let fresh = decision::decide(policy, &request, &Env { now: later, ..env });
    let hit = decision::decide(
        policy,
        &request,
        &Env {
            now: later,
            ..cached
        },
    );
    assert_eq!(hit, fresh, "cached decision at now+{} differs", input.later);

    // With stale revocation data and on_stale=deny, no token is accepted.
    // (At `later`: the cache has seen that time, and clocks move forward.)
    let stale = Env {
        stale_revocations: Some(7),
        ..Env::basic(later)
    };
    let stale_decision = decision::decide(policy, &request, &stale);
    check_decision(policy, &built, &stale_decision);
    if let Decision::Allow(a) = &stale_decision {
        assert_ne!(
            a.kind,
            decision::AllowKind::Authenticated,
            "a token was accepted while revocation data was stale"
        );
    }
    let stale_cached = Env {
        cache: Some(&caches),
        ..stale
    };
    assert_eq!(
        decision::decide(policy, &request, &stale_cached),
        stale_decision
    );
    decision.label().to_string()
}

fn route_path(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or("")
}

fn check_decision(policy: &jwt_auth_core::config::Policy, built: &Built, decision: &Decision) {
    match decision {
        Decision::Allow(allow) => {
            let provider = allow
                .provider
                .and_then(|i| policy.providers.get(i))
                .map(|p| p.name.as_str());
            for (name, value) in allow.set_headers() {
                assert!(
                    !value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f),
                    "header {name} would carry a control character: {value:?}"
                );
                if name == ":path" || name == "cookie" {
                    // The token taken out of the query string or the
                    // cookies (`forward: false`): the route must not move.
                    if name == ":path" {
                        assert_eq!(
                            route_path(value),
                            route_path(&built.path),
                            "taking the token out moved the route"
                        );
                    }
                    assert!(
                        !allow.remove_headers.iter().any(|r| r == name),
                        "{name} both set and removed"
                    );
                    continue;
                }
                // An identity header the client sent too is removed and then
                // added: both lists may name it.
                assert!(
                    policy.strip_headers.iter().any(|s| s == name),
                    "filter writes {name}, which it does not strip"
                );
            }
            // Every client-sent header the filter owns, in any `-`/`_`
            // spelling, is removed: identity headers are added after the
            // removals, so one left in place would reach the upstream twice.
            let fold = |s: &str| s.replace('_', "-");
            for (sent, _) in &built.headers {
                if !policy.strip_headers.iter().any(|s| fold(s) == fold(sent)) {
                    continue;
                }
                let handled = allow.remove_headers.contains(sent);
                assert!(
                    handled,
                    "client-sent identity header {sent} would reach the upstream"
                );
            }
            // Rules see the canonical path: an allowed request always has
            // one, and the rule it met covers it.
            let canonical = jwt_auth_core::path::canonical(&built.path, policy.escaped_slashes);
            let Ok(canonical) = canonical else {
                panic!("allowed an ambiguous path {:?}", built.path);
            };
            let path = canonical.as_ref();
            match allow.kind {
                decision::AllowKind::Bypassed => {
                    assert!(under(path, "/healthz"), "bypass on {path:?}")
                }
                decision::AllowKind::Anonymous => {
                    assert!(under(path, "/public"), "anonymous on {path:?}")
                }
                decision::AllowKind::CorsPreflight => {
                    assert_eq!(built.method, "OPTIONS", "preflight pass on a non-OPTIONS")
                }
                decision::AllowKind::Authenticated => {
                    assert!(
                        built.any_good_token,
                        "authenticated without a good signature"
                    );
                    assert!(allow.provider.is_some());
                    // "main" does not forward: its token header goes.
                    if provider == Some("main") {
                        let from_header = built.headers.iter().any(|(n, _)| n == "authorization")
                            || built.headers.iter().any(|(n, _)| n == "x-token");
                        let removed = allow.remove_headers.iter().any(|n| n == "authorization")
                            || allow.remove_headers.iter().any(|n| n == "x-token");
                        let from_elsewhere = built.path.contains("access_token=")
                            || built.headers.iter().any(|(n, _)| n == "cookie");
                        assert!(
                            !from_header || removed || from_elsewhere,
                            "token header of a non-forwarding provider kept"
                        );
                    }
                    if under(path, "/other") {
                        assert_eq!(provider, Some("other"));
                    }
                }
            }
        }
        Decision::Deny(deny) => {
            assert!(
                matches!(deny.status(), 400 | 401 | 403 | 503),
                "status {}",
                deny.status()
            );
            let www = deny.www_authenticate();
            assert!(
                www.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "WWW-Authenticate not header-safe: {www:?}"
            );
            for (_, v) in deny.headers() {
                assert!(!v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0));
            }
            let body: Result<Value, _> = serde_json::from_str(&deny.body());
            assert!(body.is_ok_and(|b| b.is_object()), "deny body is not JSON");
        }
        Decision::Reply(reply) => {
            panic!("answered without protected_resource configured: {reply:?}")
        }
    }
}

/// Whether a rule `{"prefix": prefix}` covers `path`: whole segments, where
/// `/`, `;` and `.` end a segment (the filter's rule semantics).
/// `path` is `prefix` or below it, letter case ignored as the rules do.
fn under(path: &str, prefix: &str) -> bool {
    path.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
        && path
            .get(prefix.len()..)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', ';', '.']))
}
