use super::*;
use crate::cache::TokenCaches;
use crate::request::header_refs;
use serde_json::{json, Value};
use testkit::jwt::Key;

const NOW: u64 = 1_800_000_000;
const SECRET: &[u8] = b"secret-secret-secret-secret-32bytes";
const OTHER_SECRET: &[u8] = b"other-other-other-other-other-32bytes";

fn mint(secret: &[u8], header: Value, claims: Value) -> String {
    mint_payload(secret, header, &claims.to_string())
}

/// A token whose payload is exactly `payload`.
fn mint_payload(secret: &[u8], header: Value, payload: &str) -> String {
    // HMAC-SHA256 whatever the header says: confusion tests label it otherwise.
    testkit::jwt::sign_parts("HS256", &Key::hmac(secret), &header.to_string(), payload)
}

fn claims(sub: &str) -> Value {
    json!({"iss": "https://auth.example.com", "aud": "api", "sub": sub, "provider": "google",
           "exp": NOW + 600, "iat": NOW - 10, "type": "access", "jti": format!("jti-{sub}")})
}

fn token(sub: &str) -> String {
    mint(
        SECRET,
        json!({"alg": "HS256", "typ": "JWT", "kid": "k1"}),
        claims(sub),
    )
}

fn oct(kid: &str, secret: &[u8]) -> Value {
    json!({"kty": "oct", "kid": kid, "alg": "HS256", "k": URL_SAFE_NO_PAD.encode(secret)})
}

fn config() -> Value {
    json!({
        "realm": "api",
        "providers": [{
            "name": "main",
            "issuer": "https://auth.example.com",
            "audiences": ["api"],
            "jwks": {"keys": [oct("k1", SECRET)]},
            "required_claims": {"type": "access"},
            "claim_to_headers": [{"claim": "sub", "header": "x-user-id"}, {"claim": "provider", "header": "x-auth-provider"}]
        }],
        "rules": [
            {"match": {"prefix": "/healthz"}, "requires": "none"},
            {"match": {"prefix": "/public"}, "requires": {"providers": ["main"], "allow_missing": true}},
            {"match": {"prefix": "/admin"}, "requires": {"permissions": {"all_of": ["admin"]}}},
            {"match": {"prefix": "/ops"}, "requires": {"claims": {"role": ["ops", "sre"]}}},
            {"match": {"prefix": "/", "methods": ["GET", "POST"]}, "requires": {"providers": ["main"]}}
        ]
    })
}

fn policy(v: Value) -> Policy {
    Policy::from_json(v.to_string().as_bytes()).unwrap()
}

struct Revoked(&'static str);
impl RevocationCheck for Revoked {
    fn is_revoked(
        &self,
        _: Option<&str>,
        jti: Option<&str>,
        _: Option<&str>,
        _: Option<u64>,
    ) -> bool {
        jti == Some(self.0)
    }
}

fn run(p: &Policy, method: &str, path: &str, headers: &[(&str, &str)]) -> Decision {
    run_with(p, method, path, headers, &NoRevocation)
}

fn run_with(
    p: &Policy,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    revocation: &dyn RevocationCheck,
) -> Decision {
    let headers: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect();
    let request = Request {
        method,
        path,
        headers: &header_refs(&headers),
    };
    decide(
        p,
        &request,
        &Env {
            revocation,
            ..Env::basic(NOW)
        },
    )
}

impl Allow {
    /// Every header written, owned, for comparisons.
    fn written(&self) -> Vec<(String, String)> {
        self.set_headers()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn allowed(d: Decision) -> Allow {
    match d {
        Decision::Allow(a) => a,
        other => panic!("expected allow, got {other:?}"),
    }
}

fn denied(d: Decision) -> Deny {
    match d {
        Decision::Deny(d) => d,
        other => panic!("expected deny, got {other:?}"),
    }
}

#[test]
fn valid_token_sets_identity_and_strips_token_header() {
    let p = policy(config());
    let a = allowed(run(
        &p,
        "GET",
        "/x",
        &[("authorization", &bearer(&token("alice")))],
    ));
    assert_eq!(a.kind, AllowKind::Authenticated);
    assert_eq!(a.provider, p.provider_index("main"));
    assert_eq!(
        a.written(),
        vec![
            ("x-user-id".to_string(), "alice".to_string()),
            ("x-auth-provider".to_string(), "google".to_string())
        ]
    );
    assert_eq!(a.remove_headers, vec!["authorization".to_string()]);
}

#[test]
fn payload_header_carries_the_payload_as_signed() {
    let mut v = config();
    v["providers"][0]["payload_header"] = json!("x-jwt-payload");
    let p = policy(v);
    // Spacing and member order the issuer chose, and an escape, stay as sent.
    let payload = format!(
        "{{ \"sub\":\"al\\u0069ce\",\"type\":\"access\", \"iss\":\"https://auth.example.com\",\"aud\":\"api\",\"exp\":{} }}",
        NOW + 600
    );
    let token = mint_payload(SECRET, json!({"alg": "HS256", "kid": "k1"}), &payload);
    let a = allowed(run(&p, "GET", "/x", &[("authorization", &bearer(&token))]));
    let written = a
        .written()
        .iter()
        .find(|(n, _)| n == "x-jwt-payload")
        .map(|(_, v)| URL_SAFE_NO_PAD.decode(v).unwrap());
    assert_eq!(written.as_deref(), Some(payload.as_bytes()));
    assert!(a
        .written()
        .contains(&("x-user-id".to_string(), "alice".to_string())));
}

#[test]
fn forward_keeps_the_token_header() {
    let mut v = config();
    v["providers"][0]["forward"] = json!(true);
    let p = policy(v);
    let a = allowed(run(
        &p,
        "GET",
        "/x",
        &[("authorization", &bearer(&token("alice")))],
    ));
    assert!(a.remove_headers.is_empty());
}

#[test]
fn spoofed_identity_is_removed_everywhere() {
    let p = policy(config());
    // Bypassed route: stripped, nothing written.
    let a = allowed(run(
        &p,
        "GET",
        "/healthz",
        &[("x-user-id", "mallory"), ("x-auth-provider", "evil")],
    ));
    assert_eq!(a.kind, AllowKind::Bypassed);
    assert_eq!(a.remove_headers, vec!["x-auth-provider", "x-user-id"]);
    // Anonymous on allow_missing.
    let a = allowed(run(&p, "GET", "/public", &[("x-user-id", "mallory")]));
    assert_eq!(a.kind, AllowKind::Anonymous);
    assert_eq!(a.remove_headers, vec!["x-user-id"]);
    // With a valid token for another user, the client's header is removed
    // and the filter's written.
    let a = allowed(run(
        &p,
        "GET",
        "/x",
        &[
            ("x-user-id", "mallory"),
            ("authorization", &bearer(&token("alice"))),
        ],
    ));
    assert!(a.written().contains(&("x-user-id".into(), "alice".into())));
    assert!(a.remove_headers.contains(&"x-user-id".to_string()));
    // A claim the token lacks: the client's header is removed, not kept.
    let t = mint(
        SECRET,
        json!({"alg": "HS256", "kid": "k1"}),
        json!({"iss": "https://auth.example.com", "aud": "api", "sub": "bob", "exp": NOW + 60, "type": "access"}),
    );
    let a = allowed(run(
        &p,
        "GET",
        "/x",
        &[("x-auth-provider", "evil"), ("authorization", &bearer(&t))],
    ));
    assert!(a.remove_headers.contains(&"x-auth-provider".to_string()));
    assert!(!a.written().iter().any(|(n, _)| n == "x-auth-provider"));
}

#[test]
fn missing_token() {
    let p = policy(config());
    let d = denied(run(&p, "GET", "/x", &[]));
    assert_eq!(d.status(), 401);
    assert_eq!(d.www_authenticate(), "Bearer realm=\"api\"");
    assert_eq!(d.label(), "missing");
    let body: Value = serde_json::from_str(&d.body()).unwrap();
    assert_eq!(body["error_description"], "token required");
    assert!(d
        .headers()
        .contains(&("content-type", "application/json".to_string())));
}

#[test]
fn invalid_tokens_are_401_with_reason() {
    let p = policy(config());
    let mut expired = claims("a");
    expired["exp"] = json!(NOW - 61);
    let mut future = claims("a");
    future["nbf"] = json!(NOW + 61);
    let mut wrong_iss = claims("a");
    wrong_iss["iss"] = json!("https://evil.example.com");
    let mut wrong_aud = claims("a");
    wrong_aud["aud"] = json!(["other"]);
    let mut refresh = claims("a");
    refresh["type"] = json!("refresh");
    let hs = json!({"alg": "HS256", "kid": "k1"});
    let good = token("a");
    let (head, rest) = good.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let tampered = format!(
        "{head}.{}.{sig}",
        URL_SAFE_NO_PAD.encode(claims("root").to_string())
    );
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims("a").to_string())
    );
    let cases = vec![
        (mint(SECRET, hs.clone(), expired), "expired"),
        (mint(SECRET, hs.clone(), future), "not_yet_valid"),
        (mint(SECRET, hs.clone(), wrong_iss), "wrong_issuer"),
        (mint(SECRET, hs.clone(), wrong_aud), "wrong_audience"),
        (mint(OTHER_SECRET, hs.clone(), claims("a")), "bad_signature"),
        (
            mint(SECRET, json!({"alg": "HS256", "kid": "nope"}), claims("a")),
            "unknown_kid",
        ),
        (tampered, "bad_signature"),
        ("abc.def".to_string(), "malformed"),
        ("".to_string(), "malformed"),
    ];
    for (t, label) in cases {
        let d = denied(run(&p, "GET", "/x", &[("authorization", &bearer(&t))]));
        assert_eq!(d.status(), 401, "{label}");
        assert_eq!(d.error(), Some("invalid_token"), "{label}");
        assert!(
            d.label().starts_with(label),
            "expected {label}, got {}",
            d.label()
        );
        let www = d.www_authenticate();
        assert!(
            www.starts_with("Bearer realm=\"api\", error=\"invalid_token\", error_description=\""),
            "{www}"
        );
        assert!(!www.contains(&t) || t.is_empty(), "token echoed");
        assert!(!d.body().contains(&t) || t.is_empty(), "token echoed");
    }
    let d = denied(run(&p, "GET", "/x", &[("authorization", &bearer(&none))]));
    assert_eq!(d.status(), 401);
    let d = denied(run(
        &p,
        "GET",
        "/x",
        &[("authorization", &bearer(&mint(SECRET, hs, refresh)))],
    ));
    assert_eq!(d.status(), 401);
    assert_eq!(d.description(), "required claim mismatch");
}

#[test]
fn oversized_token_is_refused_before_parsing() {
    let mut v = config();
    v["providers"][0]["max_token_bytes"] = json!(64);
    let p = policy(v);
    let d = denied(run(
        &p,
        "GET",
        "/x",
        &[("authorization", &bearer(&token("alice")))],
    ));
    assert_eq!(d.label(), "too_large");
}

#[test]
fn default_token_limit_takes_large_tokens() {
    let p = policy(config());
    // Identity providers that put group lists in the token: 12 KB.
    let groups: Vec<String> = (0..640).map(|i| format!("group-{i:05}")).collect();
    let mut big = claims("alice");
    big["groups"] = json!(groups);
    let token = mint(SECRET, json!({"alg": "HS256", "kid": "k1"}), big);
    assert!(token.len() > 12_000, "{}", token.len());
    let a = allowed(run(&p, "GET", "/x", &[("authorization", &bearer(&token))]));
    assert_eq!(a.kind, AllowKind::Authenticated);
    // One byte over the limit is refused before any parsing.
    let over = "a".repeat(64 * 1024 + 1);
    let d = denied(run(&p, "GET", "/x", &[("authorization", &bearer(&over))]));
    assert_eq!((d.status(), d.label()), (401, "too_large"));
}

#[test]
fn ambiguous_paths_are_refused_before_any_rule() {
    let p = policy(config());
    for path in [
        "/healthz/..%2Fadmin",
        "/healthz/..%5cadmin",
        "/healthz/%252e%252e/admin",
        "/public/..%2F..%2Fadmin",
        "/healthz%00",
        "/healthz/../..",
        "healthz",
    ] {
        let d = denied(run(&p, "GET", path, &[]));
        assert_eq!(
            (d.status(), d.error(), d.label(), d.description().as_str()),
            (
                400,
                Some("invalid_request"),
                "ambiguous_path",
                "ambiguous path"
            ),
            "{path}"
        );
        assert!(d.www_authenticate().contains("error=\"invalid_request\""));
    }
}

#[test]
fn rules_decide_on_the_path_the_backend_serves() {
    let p = policy(config());
    // Dot segments, `..;`, encoded dots and backslashes that climb out of a
    // bypassed or optional prefix land on the protected path.
    for path in [
        "/healthz/../admin",
        "/healthz/..;/admin",
        "/healthz/%2e%2e/admin",
        "/healthz\\..\\admin",
        "/public/../x",
        "/public;x/../x",
    ] {
        let d = denied(run(&p, "GET", path, &[]));
        assert_eq!((d.status(), d.label()), (401, "missing"), "{path}");
    }
    // Spellings of a permission-protected path a backend serves as that
    // path meet its rule, not the weaker default.
    let user = bearer(&token("alice"));
    for path in ["/ADMIN", "/Admin/x", "/admin;v=1", "//admin", "/%61dmin"] {
        let d = denied(run(&p, "GET", path, &[("authorization", &user)]));
        assert_eq!(d.label(), "insufficient_permissions", "{path}");
    }
    for path in ["/ops", "/ops/", "/ops;x=1", "/OPS", "/x/../ops"] {
        let d = denied(run(&p, "POST", path, &[("authorization", &user)]));
        assert_eq!(d.label(), "insufficient_claims", "{path}");
    }
    // The bypass still covers its own canonical spellings.
    for path in ["/healthz", "/HEALTHZ/live", "/healthz;x", "/x/../healthz"] {
        let a = allowed(run(&p, "GET", path, &[]));
        assert_eq!(a.kind, AllowKind::Bypassed, "{path}");
    }
}

#[test]
fn escaped_slashes_can_be_matched_decoded() {
    let mut v = config();
    v["escaped_slashes"] = json!("match_decoded");
    let p = policy(v);
    let d = denied(run(&p, "GET", "/healthz/..%2Fadmin", &[]));
    assert_eq!((d.status(), d.label()), (401, "missing"));
    let a = allowed(run(&p, "GET", "/healthz%2Flive", &[]));
    assert_eq!(a.kind, AllowKind::Bypassed);
    let d = denied(run(&p, "GET", "/healthz/%252e%252e/admin", &[]));
    assert_eq!(d.label(), "ambiguous_path", "double encoding stays refused");
}

#[test]
fn multiple_tokens_are_a_bad_request() {
    let p = policy(config());
    let d = denied(run(
        &p,
        "GET",
        "/x",
        &[
            ("authorization", &bearer(&token("a"))),
            ("authorization", &bearer(&token("b"))),
        ],
    ));
    assert_eq!(d.status(), 400);
    assert_eq!(d.error(), Some("invalid_request"));
}

#[test]
fn allow_missing_still_refuses_a_bad_token() {
    let p = policy(config());
    let d = denied(run(
        &p,
        "GET",
        "/public",
        &[("authorization", "Bearer x.y.z")],
    ));
    assert_eq!(d.status(), 401);
    let a = allowed(run(
        &p,
        "GET",
        "/public",
        &[("authorization", &bearer(&token("a")))],
    ));
    assert_eq!(a.kind, AllowKind::Authenticated);
}

#[test]
fn unmatched_method_falls_to_secure_default() {
    let p = policy(config());
    // DELETE matches no rule: a valid token is still required.
    assert_eq!(denied(run(&p, "DELETE", "/x", &[])).status(), 401);
    assert!(matches!(
        run(
            &p,
            "DELETE",
            "/x",
            &[("authorization", &bearer(&token("a")))]
        ),
        Decision::Allow(_)
    ));
}

#[test]
fn permissions_and_claim_conditions_are_403() {
    let p = policy(config());
    let hs = json!({"alg": "HS256", "kid": "k1"});
    let mut admin = claims("a");
    admin["permissions"] = json!(["read", "admin"]);
    let mut ops = claims("a");
    ops["role"] = json!("sre");
    assert!(matches!(
        run(
            &p,
            "GET",
            "/admin",
            &[("authorization", &bearer(&mint(SECRET, hs.clone(), admin)))]
        ),
        Decision::Allow(_)
    ));
    let d = denied(run(
        &p,
        "GET",
        "/admin",
        &[("authorization", &bearer(&token("a")))],
    ));
    assert_eq!(d.status(), 403);
    assert_eq!(d.www_authenticate(), "Bearer realm=\"api\", error=\"insufficient_scope\", error_description=\"insufficient permissions\", scope=\"admin\"");
    assert!(matches!(
        run(
            &p,
            "GET",
            "/ops",
            &[("authorization", &bearer(&mint(SECRET, hs, ops)))]
        ),
        Decision::Allow(_)
    ));
    assert_eq!(
        denied(run(
            &p,
            "GET",
            "/ops",
            &[("authorization", &bearer(&token("a")))]
        ))
        .status(),
        403
    );
    // No token or a bad one stays 401 on a permission route.
    assert_eq!(denied(run(&p, "GET", "/admin", &[])).status(), 401);
    assert_eq!(
        denied(run(
            &p,
            "GET",
            "/admin",
            &[("authorization", "Bearer a.b.c")]
        ))
        .status(),
        401
    );
}

#[test]
fn revoked_token_is_refused() {
    let p = policy(config());
    let d = denied(run_with(
        &p,
        "GET",
        "/x",
        &[("authorization", &bearer(&token("alice")))],
        &Revoked("jti-alice"),
    ));
    assert_eq!(d.status(), 401);
    assert_eq!(d.description(), "token revoked");
    assert!(matches!(
        run_with(
            &p,
            "GET",
            "/x",
            &[("authorization", &bearer(&token("bob")))],
            &Revoked("jti-alice")
        ),
        Decision::Allow(_)
    ));
}

fn two_providers() -> Value {
    let mut v = config();
    let mut second = v["providers"][0].clone();
    second["name"] = json!("partner");
    second["issuer"] = json!("https://partner.example.com");
    second["jwks"] = json!({"keys": [oct("k1", OTHER_SECRET)]});
    v["providers"].as_array_mut().unwrap().push(second);
    v["rules"] =
        json!([{"match": {"prefix": "/"}, "requires": {"providers": ["main", "partner"]}}]);
    v
}

#[test]
fn issuer_selects_the_provider() {
    let p = policy(two_providers());
    let hs = json!({"alg": "HS256", "kid": "k1"});
    let mut partner = claims("p");
    partner["iss"] = json!("https://partner.example.com");
    let a = allowed(run(
        &p,
        "GET",
        "/",
        &[(
            "authorization",
            &bearer(&mint(OTHER_SECRET, hs.clone(), partner.clone())),
        )],
    ));
    assert_eq!(a.provider, p.provider_index("partner"));
    let a = allowed(run(
        &p,
        "GET",
        "/",
        &[("authorization", &bearer(&token("m")))],
    ));
    assert_eq!(a.provider, p.provider_index("main"));
    // Signed with main's key but claiming partner's issuer: verified with
    // partner's keys only, so refused.
    let d = denied(run(
        &p,
        "GET",
        "/",
        &[("authorization", &bearer(&mint(SECRET, hs.clone(), partner)))],
    ));
    assert_eq!(d.label(), "bad_signature");
    let mut stranger = claims("s");
    stranger["iss"] = json!("https://stranger.example.com");
    let d = denied(run(
        &p,
        "GET",
        "/",
        &[("authorization", &bearer(&mint(SECRET, hs, stranger)))],
    ));
    assert_eq!(d.label(), "wrong_issuer");
}

#[test]
fn query_and_cookie_sources() {
    let mut v = config();
    v["providers"][0]["from_params"] = json!(["access_token"]);
    v["providers"][0]["from_cookies"] = json!(["session"]);
    let p = policy(v);
    let t = token("q");
    assert!(matches!(
        run(&p, "GET", &format!("/x?access_token={t}"), &[]),
        Decision::Allow(_)
    ));
    assert!(matches!(
        run(&p, "GET", "/x", &[("cookie", &format!("a=b; session={t}"))]),
        Decision::Allow(_)
    ));
    // The default Authorization header is not read once sources are listed.
    assert_eq!(
        denied(run(&p, "GET", "/x", &[("authorization", &bearer(&t))])).label(),
        "missing"
    );
}

#[test]
fn stale_revocations_refuse_tokens_only() {
    let p = policy(config());
    let owned: Vec<(String, Vec<u8>)> =
        vec![("authorization".into(), bearer(&token("a")).into_bytes())];
    let headers = header_refs(&owned);
    let env = Env {
        stale_revocations: Some(2),
        ..Env::basic(NOW)
    };
    let req = |path| Request {
        method: "GET",
        path,
        headers: &headers,
    };
    let d = denied(decide(&p, &req("/x"), &env));
    assert_eq!(d.status(), 503);
    assert!(d.headers().contains(&("retry-after", "2".to_string())));
    assert!(!d.headers().iter().any(|(n, _)| *n == "www-authenticate"));
    // Bypassed and anonymous requests do not depend on revocation data.
    assert!(matches!(
        decide(&p, &req("/healthz"), &env),
        Decision::Allow(_)
    ));
    let none: Vec<(String, Vec<u8>)> = Vec::new();
    let anon = Request {
        method: "GET",
        path: "/public",
        headers: &header_refs(&none),
    };
    assert!(matches!(decide(&p, &anon, &env), Decision::Allow(_)));
    // A bad token is still a 401, not a 503.
    let bad: Vec<(String, Vec<u8>)> = vec![("authorization".into(), b"Bearer a.b.c".to_vec())];
    let r = Request {
        method: "GET",
        path: "/x",
        headers: &header_refs(&bad),
    };
    assert_eq!(denied(decide(&p, &r, &env)).status(), 401);
}

struct Fetched(Option<KeySet>);
impl RemoteKeys for Fetched {
    fn keys(&self, provider: usize) -> Option<&KeySet> {
        (provider == 0).then_some(self.0.as_ref()).flatten()
    }
}

fn remote_config() -> Value {
    let mut v = config();
    v["providers"][0].as_object_mut().unwrap().remove("jwks");
    v["providers"][0]["remote_jwks"] = json!({"cluster": "idp"});
    v
}

fn run_remote(p: &Policy, keys: &Fetched, auth: &str) -> Decision {
    let headers: Vec<(String, Vec<u8>)> = vec![("authorization".into(), auth.as_bytes().to_vec())];
    let request = Request {
        method: "GET",
        path: "/x",
        headers: &header_refs(&headers),
    };
    let env = Env {
        remote_keys: keys,
        ..Env::basic(NOW)
    };
    decide(p, &request, &env)
}

#[test]
fn remote_keys_verify_once_fetched() {
    let p = policy(remote_config());
    let d = denied(run_remote(&p, &Fetched(None), &bearer(&token("a"))));
    assert_eq!(d.status(), 401);
    assert_eq!(d.label(), "keys_unavailable");
    assert_eq!(d.description(), "signing keys unavailable");
    assert_eq!(d.remote_provider, Some(0), "the glue may wait for keys");
    let keys = KeySet::from_jwks(&json!({"keys": [oct("k1", SECRET)]})).unwrap();
    let a = allowed(run_remote(
        &p,
        &Fetched(Some(keys.clone())),
        &bearer(&token("a")),
    ));
    assert_eq!(a.provider, p.provider_index("main"));
    // A kid the fetched set lacks asks the glue for an early refetch.
    let rotated = mint(SECRET, json!({"alg": "HS256", "kid": "k2"}), claims("a"));
    let d = denied(run_remote(
        &p,
        &Fetched(Some(keys.clone())),
        &bearer(&rotated),
    ));
    assert_eq!(d.label(), "unknown_kid");
    assert_eq!(d.remote_provider, Some(0));
    // Other failures do not.
    let d = denied(run_remote(
        &p,
        &Fetched(Some(keys)),
        &bearer(&mint(
            OTHER_SECRET,
            json!({"alg": "HS256", "kid": "k1"}),
            claims("a"),
        )),
    ));
    assert_eq!(d.label(), "bad_signature");
    assert_eq!(d.remote_provider, None);
    // Missing tokens never wait for keys.
    let none: Vec<(String, Vec<u8>)> = Vec::new();
    let request = Request {
        method: "GET",
        path: "/x",
        headers: &header_refs(&none),
    };
    let env = Env::basic(NOW);
    assert_eq!(denied(decide(&p, &request, &env)).label(), "missing");
}

#[test]
fn inline_provider_ignores_remote_keys() {
    let p = policy(config());
    let d = denied(run_remote(
        &p,
        &Fetched(Some(KeySet::default())),
        &bearer(&mint(
            SECRET,
            json!({"alg": "HS256", "kid": "zz"}),
            claims("a"),
        )),
    ));
    assert_eq!(d.label(), "unknown_kid");
    assert_eq!(d.remote_provider, None, "inline keys are never refetched");
}

#[test]
fn cache_hits_skip_verification_but_not_the_rules() {
    let mut v = config();
    v["providers"][0]["token_cache"] = json!({"max_entries": 10});
    let p = policy(v);
    let cache = TokenCaches::new(p.providers.iter().map(|p| p.token_cache_entries));
    let t = token("alice");
    let owned: Vec<(String, Vec<u8>)> = vec![("authorization".into(), bearer(&t).into_bytes())];
    let headers = header_refs(&owned);
    let req = |path| Request {
        method: "GET",
        path,
        headers: &headers,
    };
    let env = Env {
        cache: Some(&cache),
        ..Env::basic(NOW)
    };
    let first = allowed(decide(&p, &req("/x"), &env));
    assert_eq!(cache.entries(), 1);
    let second = allowed(decide(&p, &req("/x"), &env));
    assert_eq!(first, second, "a hit gives the same answer");
    // Rules still apply on a hit: permissions, revocation, expiry.
    assert_eq!(denied(decide(&p, &req("/admin"), &env)).status(), 403);
    let revoked = Env {
        cache: Some(&cache),
        revocation: &Revoked("jti-alice"),
        ..Env::basic(NOW)
    };
    assert_eq!(denied(decide(&p, &req("/x"), &revoked)).label(), "revoked");
    let later = Env {
        cache: Some(&cache),
        ..Env::basic(NOW + 600 + 61)
    };
    assert_eq!(denied(decide(&p, &req("/x"), &later)).label(), "expired");
    assert_eq!(cache.entries(), 0, "expired entry dropped");
    // Refused tokens are never cached.
    let bad = vec![(
        "authorization".to_string(),
        bearer(&mint(
            OTHER_SECRET,
            json!({"alg": "HS256", "kid": "k1"}),
            claims("m"),
        ))
        .into_bytes(),
    )];
    let r = Request {
        method: "GET",
        path: "/x",
        headers: &header_refs(&bad),
    };
    assert_eq!(denied(decide(&p, &r, &env)).label(), "bad_signature");
    assert_eq!(cache.entries(), 0);
}

#[test]
fn cached_token_from_another_place_is_not_a_hit_for_a_provider_that_does_not_read_it() {
    let mut v = config();
    v["providers"][0]["token_cache"] = json!({"max_entries": 10});
    v["providers"][0]["from_params"] = json!(["t"]);
    let p = policy(v);
    let cache = TokenCaches::new(p.providers.iter().map(|p| p.token_cache_entries));
    let env = Env {
        cache: Some(&cache),
        ..Env::basic(NOW)
    };
    let t = token("q");
    let path = format!("/x?t={t}");
    let none: Vec<(String, Vec<u8>)> = Vec::new();
    assert!(matches!(
        decide(
            &p,
            &Request {
                method: "GET",
                path: &path,
                headers: &header_refs(&none)
            },
            &env
        ),
        Decision::Allow(_)
    ));
    // The same token in the Authorization header is not a source here.
    let h = vec![("authorization".to_string(), bearer(&t).into_bytes())];
    assert_eq!(
        denied(decide(
            &p,
            &Request {
                method: "GET",
                path: "/x",
                headers: &header_refs(&h)
            },
            &env
        ))
        .label(),
        "missing"
    );
}

#[test]
fn underscore_spellings_of_identity_headers_are_stripped() {
    let p = policy(config());
    let a = allowed(run(
        &p,
        "GET",
        "/healthz",
        &[
            ("x_user_id", "m1"),
            ("x-user_id", "m2"),
            ("x_auth-provider", "m3"),
            ("x-user-idx", "ok"),
        ],
    ));
    assert_eq!(
        a.remove_headers,
        vec!["x-user_id", "x_auth-provider", "x_user_id"]
    );
}

#[test]
fn the_same_token_in_two_header_sources_is_removed_from_both() {
    let mut v = config();
    v["providers"][0]["from_headers"] =
        json!([{"name": "authorization", "value_prefix": "Bearer "}, {"name": "x-token"}]);
    let p = policy(v);
    let t = token("alice");
    let a = allowed(run(
        &p,
        "GET",
        "/x",
        &[("authorization", &bearer(&t)), ("x-token", &t)],
    ));
    assert!(a.remove_headers.contains(&"authorization".to_string()));
    assert!(a.remove_headers.contains(&"x-token".to_string()));
    // An unrelated credential in another source header is left alone.
    let a = allowed(run(
        &p,
        "GET",
        "/x",
        &[("authorization", "Basic dXNlcjpwYXNz"), ("x-token", &t)],
    ));
    assert_eq!(a.remove_headers, vec!["x-token".to_string()]);
}

/// The provider reading the header, `access_token` and the `session` cookie.
fn every_place(forward: bool) -> Policy {
    let mut v = config();
    v["providers"][0]["from_headers"] =
        json!([{"name": "authorization", "value_prefix": "Bearer "}]);
    v["providers"][0]["from_params"] = json!(["access_token"]);
    v["providers"][0]["from_cookies"] = json!(["session"]);
    v["providers"][0]["forward"] = json!(forward);
    policy(v)
}

fn written(a: &Allow, name: &str) -> Option<String> {
    a.written()
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

#[test]
fn a_token_in_the_query_leaves_the_path() {
    let p = every_place(false);
    let t = token("alice");
    for (path, expected) in [
        (format!("/x?access_token={t}"), "/x".to_string()),
        (
            format!("/x?a=1&access_token={t}&b=2"),
            "/x?a=1&b=2".to_string(),
        ),
        (format!("/x?a=1&access_token={t}"), "/x?a=1".to_string()),
        // The same token twice is still one token; both go.
        (
            format!("/x?access_token={t}&z=%20&access_token={t}"),
            "/x?z=%20".to_string(),
        ),
        (format!("/x?access_token={t}#frag"), "/x#frag".to_string()),
    ] {
        let a = allowed(run(&p, "GET", &path, &[]));
        assert_eq!(
            written(&a, ":path").as_deref(),
            Some(expected.as_str()),
            "{path}"
        );
    }
    // A parameter of another name holding the same text is not ours to drop.
    let a = allowed(run(
        &p,
        "GET",
        &format!("/x?access_token={t}&other={t}"),
        &[],
    ));
    assert_eq!(written(&a, ":path"), Some(format!("/x?other={t}")));
    // Token in the header only: the path is left as it is.
    let a = allowed(run(&p, "GET", "/x?a=1", &[("authorization", &bearer(&t))]));
    assert_eq!(written(&a, ":path"), None);
}

/// A request carrying `t` as `?access_token=` and as the `session` cookie.
fn in_query_and_cookie(p: &Policy, t: &str) -> Allow {
    allowed(run(
        p,
        "GET",
        &format!("/x?access_token={t}"),
        &[("cookie", &format!("session={t}"))],
    ))
}

#[test]
fn forward_keeps_the_token_in_query_and_cookie() {
    let p = every_place(true);
    let t = token("alice");
    let a = in_query_and_cookie(&p, &t);
    assert_eq!(written(&a, ":path"), None);
    assert_eq!(written(&a, "cookie"), None);
    assert!(a.remove_headers.is_empty());
}

#[test]
fn the_token_leaves_every_place_the_route_reads() {
    // Provider main reads the query (and does not forward); provider b reads
    // a cookie and forwards. main's token arrives in both: it leaves both.
    let mut v = config();
    v["providers"][0]["from_params"] = json!(["access_token"]);
    let mut b = v["providers"][0].clone();
    b["name"] = json!("b");
    b["issuer"] = json!("https://b.example");
    b["from_params"] = json!([]);
    b["from_cookies"] = json!(["session"]);
    b["forward"] = json!(true);
    v["providers"].as_array_mut().unwrap().push(b);
    v["rules"] = json!([{"match": {"prefix": "/"}, "requires": {}}]);
    let p = policy(v);
    let t = token("alice");
    let a = in_query_and_cookie(&p, &t);
    assert_eq!(a.provider, p.provider_index("main"));
    assert_eq!(written(&a, ":path").as_deref(), Some("/x"));
    assert!(a.remove_headers.contains(&"cookie".to_string()));
}

/// What the upstream's cookie header becomes after a request with these
/// cookie headers: `Some(value)` rewritten, `None` removed.
fn cookie_after(p: &Policy, cookies: &[String]) -> Option<String> {
    let headers: Vec<(&str, &str)> = cookies.iter().map(|c| ("cookie", c.as_str())).collect();
    let a = allowed(run(p, "GET", "/x", &headers));
    let value = written(&a, "cookie");
    let removed = a.remove_headers.contains(&"cookie".to_string());
    assert_eq!(value.is_none(), removed, "{cookies:?}");
    value
}

#[test]
fn a_token_in_a_cookie_leaves_the_cookie_header() {
    let p = every_place(false);
    let t = token("alice");
    for (cookies, expected) in [
        (
            vec![format!("a=1; session={t}; b=\"2\"")],
            Some("a=1; b=\"2\""),
        ),
        // Split cookie headers (HTTP/2 crumbs) come back as one.
        (
            vec!["a=1".to_string(), format!("session=\"{t}\"")],
            Some("a=1"),
        ),
        // Nothing else in it: the header goes.
        (vec![format!("session={t}")], None),
        // Spaces and quotes around the value, as extraction reads it.
        (
            vec![format!("a=1;  session = \"{t}\" ;b=2")],
            Some("a=1; b=2"),
        ),
        // What is left cannot be written back: the whole header goes.
        (vec![format!("a=\u{1}; session={t}")], None),
    ] {
        assert_eq!(
            cookie_after(&p, &cookies).as_deref(),
            expected,
            "{cookies:?}"
        );
    }
}

#[test]
fn other_query_parameters_stay_as_sent() {
    let p = every_place(false);
    let t = token("alice");
    for (path, expected) in [
        (format!("/x?access_token={t}&"), "/x?"),
        (format!("/x?a=1&&access_token={t}&&b"), "/x?a=1&&&b"),
    ] {
        let a = allowed(run(&p, "GET", &path, &[]));
        assert_eq!(written(&a, ":path").as_deref(), Some(expected), "{path}");
    }
}

#[test]
fn a_bypassed_route_passes_no_token_on() {
    let p = every_place(false);
    let t = token("alice");
    let a = allowed(run(
        &p,
        "GET",
        &format!("/healthz?access_token={t}&probe=1"),
        &[
            ("authorization", &bearer(&t)),
            ("cookie", &format!("theme=dark; session={t}")),
        ],
    ));
    assert_eq!(a.kind, AllowKind::Bypassed);
    assert!(a.remove_headers.contains(&"authorization".to_string()));
    assert_eq!(written(&a, ":path").as_deref(), Some("/healthz?probe=1"));
    assert_eq!(written(&a, "cookie").as_deref(), Some("theme=dark"));
    // Any value in those places goes, verified or not; other credentials
    // (another scheme) stay.
    let a = allowed(run(
        &p,
        "GET",
        "/healthz",
        &[("authorization", "Basic dXNlcjpwYXNz")],
    ));
    assert!(a.remove_headers.is_empty());
    let a = allowed(run(
        &p,
        "GET",
        "/healthz",
        &[("authorization", "Bearer garbage")],
    ));
    assert_eq!(a.remove_headers, vec!["authorization".to_string()]);
    // A provider that forwards keeps its token on bypassed routes too.
    let p = every_place(true);
    let a = allowed(run(
        &p,
        "GET",
        "/healthz",
        &[("authorization", &bearer(&t))],
    ));
    assert!(a.remove_headers.is_empty());
}

#[test]
fn provider_header_names_the_provider_that_verified() {
    let mut v = config();
    v["provider_header"] = json!("X-Verified-By");
    let p = policy(v);
    assert!(p.strip_headers.contains(&"x-verified-by".to_string()));
    let a = allowed(run(
        &p,
        "GET",
        "/x",
        &[
            ("x-verified-by", "spoofed"),
            ("authorization", &bearer(&token("alice"))),
        ],
    ));
    assert_eq!(written(&a, "x-verified-by").as_deref(), Some("main"));
    assert!(a.remove_headers.contains(&"x-verified-by".to_string()));
    // Not written where no token was verified; the client's copy still goes.
    let a = allowed(run(&p, "GET", "/healthz", &[("x-verified-by", "spoofed")]));
    assert_eq!(written(&a, "x-verified-by"), None);
    assert!(a.remove_headers.contains(&"x-verified-by".to_string()));
    for clash in ["authorization", "x-user-id", "host"] {
        let mut v = config();
        v["provider_header"] = json!(clash);
        let e = Policy::from_json(v.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.field, "provider_header", "{clash}");
    }
}

const PREFLIGHT: [(&str, &str); 2] = [
    ("origin", "https://app.example.com"),
    ("access-control-request-method", "POST"),
];

#[test]
fn cors_preflight_without_token_passes_and_loses_identity_headers() {
    let p = policy(with_methods_any());
    let mut headers = PREFLIGHT.to_vec();
    headers.push(("x-user-id", "forged"));
    let a = allowed(run(&p, "OPTIONS", "/x", &headers));
    assert_eq!(a.kind, AllowKind::CorsPreflight);
    assert_eq!(
        Decision::Allow(a.clone()).label(),
        "bypassed.cors_preflight"
    );
    assert!(a.remove_headers.contains(&"x-user-id".to_string()));
    assert!(a.written().is_empty());
}

#[test]
fn only_a_full_preflight_passes() {
    let p = policy(with_methods_any());
    for (method, headers) in [
        ("OPTIONS", vec![PREFLIGHT[0]]),
        ("OPTIONS", vec![PREFLIGHT[1]]),
        ("GET", PREFLIGHT.to_vec()),
    ] {
        let d = denied(run(&p, method, "/x", &headers));
        assert_eq!(d.label(), "missing", "{method} {headers:?}");
    }
}

#[test]
fn cors_preflight_with_a_token_is_verified() {
    let p = policy(with_methods_any());
    let mut headers = PREFLIGHT.to_vec();
    let bad = bearer("not.a.token");
    headers.push(("authorization", &bad));
    assert_eq!(denied(run(&p, "OPTIONS", "/x", &headers)).status(), 401);
    let good = bearer(&token("alice"));
    headers.pop();
    headers.push(("authorization", &good));
    let a = allowed(run(&p, "OPTIONS", "/x", &headers));
    assert_eq!(a.kind, AllowKind::Authenticated);
}

#[test]
fn cors_preflight_bypass_can_be_turned_off() {
    let mut cfg = with_methods_any();
    cfg["bypass_cors_preflight"] = json!(false);
    let p = policy(cfg);
    let d = denied(run(&p, "OPTIONS", "/x", &PREFLIGHT));
    assert_eq!(d.label(), "missing");
}

/// The test config with its catch-all rule for every method, so an
/// `OPTIONS` meets a token rule.
fn with_methods_any() -> Value {
    let mut cfg = config();
    if let Some(rules) = cfg["rules"].as_array_mut() {
        rules.retain(|r| r["match"]["prefix"] != json!("/"));
    }
    cfg
}

#[test]
fn a_refusal_names_the_provider_that_gave_it() {
    let p = policy(config());
    let mut expired = claims("a");
    expired["exp"] = json!(NOW - 61);
    let expired = bearer(&mint(SECRET, json!({"alg": "HS256", "kid": "k1"}), expired));
    let d = denied(run(&p, "GET", "/x", &[("authorization", &expired)]));
    assert_eq!((d.label(), d.provider), ("expired", Some(0)));
    let d = denied(run(
        &p,
        "GET",
        "/admin",
        &[("authorization", &bearer(&token("a")))],
    ));
    assert_eq!(
        (d.label(), d.provider),
        ("insufficient_permissions", Some(0))
    );
    for headers in [vec![], vec![("authorization", "Bearer x.y")]] {
        let d = denied(run(&p, "GET", "/x", &headers));
        assert_eq!(d.provider, None, "{headers:?}: no provider checked it");
    }
}

#[test]
fn a_grpc_call_is_refused_the_grpc_way() {
    let p = policy(config());
    for (content_type, grpc) in [
        ("application/grpc", true),
        ("application/grpc+proto", true),
        ("application/json", false),
    ] {
        let d = denied(run(&p, "GET", "/x", &[("content-type", content_type)]));
        assert_eq!(d.grpc, grpc, "{content_type}");
    }
    assert!(!denied(run(&p, "GET", "/x", &[])).grpc);
}

fn with_ecosystem() -> Policy {
    let mut c = config();
    c["providers"][0]["claims_to_filter_state"] = json!([
        {"claim": "sub", "name": "envoy.string"},
        {"claim": "provider", "name": "envoy.hashable_string"}
    ]);
    c["protected_resource"] = json!({
        "resource": "https://api.example.com/mcp",
        "authorization_servers": ["https://auth.example.com"],
        "scopes_supported": ["admin"]
    });
    policy(c)
}

#[test]
fn claims_go_to_filter_state_only_after_a_verified_token() {
    let p = with_ecosystem();
    let a = allowed(run(
        &p,
        "GET",
        "/x",
        &[("authorization", &bearer(&token("alice")))],
    ));
    assert_eq!(
        a.filter_state(),
        [
            ("envoy.string".to_string(), "alice".to_string()),
            ("envoy.hashable_string".to_string(), "google".to_string())
        ]
    );
    // The same token again, from the cache, writes the same objects.
    let caches = TokenCaches::new([10]);
    let env = Env {
        cache: Some(&caches),
        ..Env::basic(NOW)
    };
    let headers: Vec<(String, Vec<u8>)> =
        vec![("authorization".into(), bearer(&token("alice")).into_bytes())];
    let request = Request {
        method: "GET",
        path: "/x",
        headers: &header_refs(&headers),
    };
    for _ in 0..2 {
        let Decision::Allow(a) = decide(&p, &request, &env) else {
            panic!("refused")
        };
        assert_eq!(a.filter_state().len(), 2);
    }
    let bypass = allowed(run(
        &p,
        "GET",
        "/healthz",
        &[("authorization", &bearer(&token("alice")))],
    ));
    assert!(bypass.filter_state().is_empty(), "a bypass writes nothing");
    let anonymous = allowed(run(&p, "GET", "/public", &[]));
    assert!(anonymous.filter_state().is_empty());
    let refused = run(
        &p,
        "GET",
        "/admin",
        &[("authorization", &bearer(&token("alice")))],
    );
    assert!(matches!(refused, Decision::Deny(_)));
}

#[test]
fn the_metadata_is_served_without_a_token_and_refusals_point_to_it() {
    let p = with_ecosystem();
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let Decision::Reply(r) = run(&p, "GET", path, &[]) else {
            panic!("{path} not answered")
        };
        assert_eq!(r.status, 200);
        let doc: Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
        assert_eq!(doc["resource"], "https://api.example.com/mcp");
        assert_eq!(
            doc["authorization_servers"],
            json!(["https://auth.example.com"])
        );
    }
    let metadata = "https://api.example.com/.well-known/oauth-protected-resource/mcp";
    let missing = denied(run(&p, "GET", "/x", &[]));
    assert_eq!(
        missing.www_authenticate(),
        format!("Bearer realm=\"api\", resource_metadata=\"{metadata}\"")
    );
    let scope = denied(run(
        &p,
        "GET",
        "/admin",
        &[("authorization", &bearer(&token("alice")))],
    ));
    assert_eq!(scope.status(), 403);
    assert_eq!(
        scope.www_authenticate(),
        format!("Bearer realm=\"api\", error=\"insufficient_scope\", error_description=\"insufficient permissions\", scope=\"admin\", resource_metadata=\"{metadata}\"")
    );
    // A claim condition is no scope: no `scope` attribute.
    let claims = denied(run(
        &p,
        "GET",
        "/ops",
        &[("authorization", &bearer(&token("alice")))],
    ));
    assert!(!claims.www_authenticate().contains("scope=\""));
}

#[test]
fn identity_headers_name_each_header_once_and_are_never_left_in_the_request() {
    // Two mappings to one header: the last value written wins, once, as a
    // replacing write would leave it; hosts add identity headers after the
    // removals, so a client-sent copy (in either spelling) must be removed.
    let mut c = config();
    c["providers"][0]["claim_to_headers"] = json!([
        {"claim": "sub", "header": "x-user-id"},
        {"claim": "provider", "header": "x-user-id"},
        {"claim": "missing", "header": "x-user-id"}
    ]);
    c["providers"][0]["token_cache"] = json!({"max_entries": 10});
    let p = policy(c);
    let cache = TokenCaches::new(p.providers.iter().map(|p| p.token_cache_entries));
    let owned: Vec<(String, Vec<u8>)> = vec![
        ("x-user_id".into(), b"forged".to_vec()),
        ("authorization".into(), bearer(&token("alice")).into_bytes()),
    ];
    let request = Request {
        method: "GET",
        path: "/x",
        headers: &header_refs(&owned),
    };
    let env = Env {
        cache: Some(&cache),
        ..Env::basic(NOW)
    };
    // Verified first, then from the cache: the same answer.
    for _ in 0..2 {
        let a = allowed(decide(&p, &request, &env));
        assert_eq!(
            a.identity_headers(),
            [("x-user-id".to_string(), "google".to_string())]
        );
        assert!(a.remove_headers.contains(&"x-user_id".to_string()));
    }
    assert_eq!(cache.entries(), 1);
}
