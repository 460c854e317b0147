//! End-to-end tests: the built wasm filter inside a real Envoy
//! (`--concurrency 2`) in front of an echo upstream. Every assertion is about
//! what the client got back and what the UPSTREAM received.
//!
//! Needs the release wasm (`make build`) and Envoy (`make .venv`); `make test`
//! provides both. Each test starts one Envoy for a group of cases and reports
//! every failing case at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};
use testkit::*;

const ISS: &str = "https://issuer.test";
const AUD: &str = "api";
const REALM: &str = "api";

// ---------------------------------------------------------------- helpers --

/// Collects failures so one run shows every broken case, then panics.
#[derive(Default)]
struct Report {
    failures: Vec<String>,
    cases: usize,
}

impl Report {
    fn case(&mut self, name: &str, result: Result<(), String>) {
        self.cases += 1;
        if let Err(why) = result {
            self.failures.push(format!("[{name}] {why}"));
        }
    }

    fn finish(self, what: &str) {
        if !self.failures.is_empty() {
            panic!(
                "{what}: {} of {} cases failed:\n  - {}",
                self.failures.len(),
                self.cases,
                self.failures.join("\n  - ")
            );
        }
    }
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// A unique request target per case so the upstream's record proves whether
/// this very request reached it.
fn target(prefix: &str) -> (String, String) {
    static N: AtomicU32 = AtomicU32::new(0);
    let marker = format!("case={}-{}&", N.fetch_add(1, Ordering::SeqCst), random_id());
    (format!("{prefix}?{marker}z=1"), marker)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn claims(sub: &str, provider: &str) -> Value {
    let now = now();
    json!({
        "iss": ISS,
        "aud": AUD,
        "sub": sub,
        "provider": provider,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": random_id(),
    })
}

fn with(mut base: Value, patch: Value) -> Value {
    let (Value::Object(b), Value::Object(p)) = (&mut base, patch) else {
        panic!("objects expected")
    };
    for (k, v) in p {
        if v.is_null() {
            b.remove(&k);
        } else {
            b.insert(k, v);
        }
    }
    base
}

const ALGS: [&str; 13] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "ES512", "EdDSA",
];

/// The JWKS of the main test provider: one key per algorithm family.
fn all_keys() -> Vec<Value> {
    vec![
        Key::hs(256).jwk(Some("HS256")),
        Key::hs(384).jwk(Some("HS384")),
        Key::hs(512).jwk(Some("HS512")),
        Key::rsa2048().jwk(None),
        Key::p256().jwk(Some("ES256")),
        Key::p384().jwk(Some("ES384")),
        Key::p521().jwk(Some("ES512")),
        Key::ed25519().jwk(Some("EdDSA")),
    ]
}

fn main_provider() -> Value {
    json!({
        "name": "main",
        "issuer": ISS,
        "audiences": [AUD],
        "jwks": jwks(all_keys()),
        "claim_to_headers": [
            {"claim": "sub", "header": "x-user-id"},
            {"claim": "provider", "header": "x-auth-provider"},
        ],
    })
}

fn main_config() -> Value {
    json!({
        "realm": REALM,
        "providers": [main_provider()],
        "rules": [
            {"match": {"prefix": "/healthz"}, "requires": "none"},
            {"match": {"prefix": "/public"}, "requires": {"providers": ["main"], "allow_missing": true}},
            {"match": {"prefix": "/"}, "requires": {"providers": ["main"]}},
        ],
    })
}

fn start_main() -> Envoy {
    Envoy::builder()
        .plugin_config_json(&main_config())
        .concurrency(2)
        .direct_response("/direct", 418, "teapot")
        .start()
}

/// 200 from the echo upstream with exactly this identity.
fn expect_identity(
    envoy: &Envoy,
    resp: &Response,
    marker: &str,
    user: &[&str],
    provider: &[&str],
) -> Result<(), String> {
    ensure!(
        resp.status == 200,
        "expected 200, got {} {:?} (www-authenticate {:?})",
        resp.status,
        resp.body,
        resp.header("www-authenticate")
    );
    let echo = Echo::parse(&resp.body);
    ensure!(
        echo.header("x-user-id") == user,
        "upstream x-user-id {:?}, expected {user:?}",
        echo.header("x-user-id")
    );
    ensure!(
        echo.header("x-auth-provider") == provider,
        "upstream x-auth-provider {:?}, expected {provider:?}",
        echo.header("x-auth-provider")
    );
    let seen = envoy.upstream().requests_matching(marker);
    ensure!(
        seen.len() == 1,
        "upstream saw this request {} times",
        seen.len()
    );
    Ok(())
}

fn expect_not_forwarded(envoy: &Envoy, marker: &str) -> Result<(), String> {
    let seen = envoy.upstream().requests_matching(marker);
    ensure!(
        seen.is_empty(),
        "the request reached the upstream: {:?}",
        seen[0].headers
    );
    Ok(())
}

fn expect_json_error(resp: &Response, error: &str) -> Result<String, String> {
    ensure!(
        resp.header("content-type") == Some("application/json"),
        "content-type {:?}",
        resp.header("content-type")
    );
    let body: Value = serde_json::from_str(&resp.body)
        .map_err(|e| format!("body is not JSON ({e}): {:?}", resp.body))?;
    ensure!(
        body["error"] == json!(error),
        "body error {:?}, expected {error:?}: {}",
        body["error"],
        resp.body
    );
    let desc = body["error_description"]
        .as_str()
        .ok_or_else(|| format!("body has no error_description: {}", resp.body))?;
    ensure!(!desc.is_empty(), "empty error_description");
    Ok(desc.to_string())
}

/// 401 for a request without credentials.
fn expect_missing(envoy: &Envoy, resp: &Response, marker: &str) -> Result<(), String> {
    ensure!(
        resp.status == 401,
        "expected 401, got {} {:?}",
        resp.status,
        resp.body
    );
    let www = resp.headers_named("www-authenticate");
    ensure!(
        www == [format!("Bearer realm=\"{REALM}\"")],
        "www-authenticate {www:?}"
    );
    let body: Value =
        serde_json::from_str(&resp.body).map_err(|e| format!("body not JSON ({e})"))?;
    ensure!(
        body.get("error").is_some() && body.get("error_description").is_some(),
        "body lacks error/error_description: {}",
        resp.body
    );
    ensure!(
        resp.header("content-type") == Some("application/json"),
        "content-type {:?}",
        resp.header("content-type")
    );
    expect_not_forwarded(envoy, marker)
}

/// 401 invalid_token with a description (containing `desc_has` if given).
fn expect_invalid(
    envoy: &Envoy,
    resp: &Response,
    marker: &str,
    desc_has: Option<&str>,
) -> Result<(), String> {
    ensure!(
        resp.status == 401,
        "expected 401, got {} {:?}",
        resp.status,
        resp.body
    );
    let desc = expect_json_error(resp, "invalid_token")?;
    let www = resp.headers_named("www-authenticate");
    let expected =
        format!("Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{desc}\"");
    ensure!(
        www == [expected.clone()],
        "www-authenticate {www:?}, expected [{expected:?}]"
    );
    if let Some(part) = desc_has {
        ensure!(
            desc.contains(part),
            "error_description {desc:?} does not mention {part:?}"
        );
    }
    expect_not_forwarded(envoy, marker)
}

// ------------------------------------------------------------------ tests --

#[test]
fn valid_token_per_algorithm_sets_identity() {
    let envoy = start_main();
    let mut report = Report::default();
    for alg in ALGS {
        let sub = format!("user-{alg}");
        let prov = format!("idp-{alg}");
        let token = mint(alg, &Key::for_alg(alg), &json!({}), &claims(&sub, &prov));
        let (path, marker) = target("/api/resource");
        let resp = envoy.get(&path, &[("authorization", &bearer(&token))]);
        let r = expect_identity(&envoy, &resp, &marker, &[&sub], &[&prov]).and_then(|()| {
            let echo = Echo::parse(&resp.body);
            ensure!(
                !echo.has_header("authorization"),
                "the token was forwarded to the upstream (forward is off by default)"
            );
            Ok(())
        });
        report.case(alg, r);
    }
    // Scheme is case-insensitive; aud may be an array holding ours.
    let token = mint("ES256", &Key::p256(), &json!({}), &claims("u-scheme", "p"));
    let (path, marker) = target("/api");
    let resp = envoy.get(&path, &[("Authorization", &format!("bearer {token}"))]);
    report.case(
        "lowercase bearer scheme",
        expect_identity(&envoy, &resp, &marker, &["u-scheme"], &["p"]),
    );
    let token = mint(
        "RS256",
        &Key::rsa2048(),
        &json!({}),
        &with(claims("u-aud", "p"), json!({"aud": ["other", AUD]})),
    );
    let (path, marker) = target("/api");
    let resp = envoy.get(&path, &[("authorization", &bearer(&token))]);
    report.case(
        "aud array containing ours",
        expect_identity(&envoy, &resp, &marker, &["u-aud"], &["p"]),
    );
    // A claim missing from the token writes no header at all.
    let token = mint(
        "HS256",
        &Key::hs(256),
        &json!({}),
        &with(claims("u-noprov", "x"), json!({"provider": null})),
    );
    let (path, marker) = target("/api");
    let resp = envoy.get(&path, &[("authorization", &bearer(&token))]);
    report.case(
        "absent claim -> no header",
        expect_identity(&envoy, &resp, &marker, &["u-noprov"], &[]),
    );
    // The filter runs before a direct-response route too.
    let token = mint("HS256", &Key::hs(256), &json!({}), &claims("u-direct", "p"));
    let resp = envoy.get("/direct/x", &[("authorization", &bearer(&token))]);
    report.case(
        "direct response with token",
        if resp.status == 418 {
            Ok(())
        } else {
            Err(format!("expected 418, got {} {}", resp.status, resp.body))
        },
    );
    let resp = envoy.get("/direct/x", &[]);
    report.case(
        "direct response without token",
        if resp.status == 401 {
            Ok(())
        } else {
            Err(format!("expected 401, got {} {}", resp.status, resp.body))
        },
    );
    report.finish("valid tokens");
}

#[test]
fn spoofed_identity_headers_never_reach_upstream() {
    let envoy = start_main();
    let mut report = Report::default();
    let token = mint(
        "RS256",
        &Key::rsa2048(),
        &json!({}),
        &claims("alice", "corp"),
    );
    let auth = bearer(&token);
    let spoof_sets: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "lowercase",
            vec![("x-user-id", "mallory"), ("x-auth-provider", "evil")],
        ),
        (
            "uppercase",
            vec![("X-USER-ID", "mallory"), ("X-Auth-Provider", "evil")],
        ),
        ("mixed case", vec![("X-User-Id", "mallory")]),
        (
            "duplicated",
            vec![
                ("x-user-id", "mallory"),
                ("X-User-Id", "mallory2"),
                ("x-auth-provider", "evil"),
                ("x-auth-provider", "evil2"),
            ],
        ),
        ("empty value", vec![("x-user-id", "")]),
    ];
    for (name, spoof) in &spoof_sets {
        // With a valid token: only the filter's values arrive.
        let (path, marker) = target("/api/me");
        let mut headers = spoof.clone();
        headers.push(("authorization", &auth));
        let resp = envoy.get(&path, &headers);
        report.case(
            &format!("{name}, valid token"),
            expect_identity(&envoy, &resp, &marker, &["alice"], &["corp"]),
        );
        // Token first, spoof after.
        let (path, marker) = target("/api/me");
        let mut headers: Vec<(&str, &str)> = vec![("authorization", &auth)];
        headers.extend(spoof.iter().copied());
        let resp = envoy.get(&path, &headers);
        report.case(
            &format!("{name}, token first"),
            expect_identity(&envoy, &resp, &marker, &["alice"], &["corp"]),
        );
        // Without a token on a protected route: denied, never forwarded.
        let (path, marker) = target("/api/me");
        let resp = envoy.get(&path, spoof);
        report.case(
            &format!("{name}, no token"),
            expect_missing(&envoy, &resp, &marker),
        );
        // Invalid token: denied, never forwarded.
        let (path, marker) = target("/api/me");
        let bad = bearer(&tamper_signature(&token));
        let mut headers = spoof.clone();
        headers.push(("authorization", &bad));
        let resp = envoy.get(&path, &headers);
        report.case(
            &format!("{name}, tampered token"),
            expect_invalid(&envoy, &resp, &marker, None),
        );
        // Bypassed route, without and with a token: no identity at all.
        for (variant, with_token) in [("no token", false), ("with token", true)] {
            let (path, marker) = target("/healthz");
            let mut headers = spoof.clone();
            if with_token {
                headers.push(("authorization", &auth));
            }
            let resp = envoy.get(&path, &headers);
            report.case(
                &format!("{name}, /healthz {variant}"),
                expect_identity(&envoy, &resp, &marker, &[], &[]),
            );
        }
        // allow_missing route without a token: anonymous, no identity.
        let (path, marker) = target("/public/x");
        let resp = envoy.get(&path, spoof);
        report.case(
            &format!("{name}, allow_missing anonymous"),
            expect_identity(&envoy, &resp, &marker, &[], &[]),
        );
    }
    // A token without the `provider` claim must not let a client-sent
    // x-auth-provider through.
    let noprov = mint(
        "HS256",
        &Key::hs(256),
        &json!({}),
        &with(claims("bob", "x"), json!({"provider": null})),
    );
    let (path, marker) = target("/api");
    let resp = envoy.get(
        &path,
        &[
            ("x-auth-provider", "evil"),
            ("authorization", &bearer(&noprov)),
        ],
    );
    report.case(
        "claim absent + spoofed header",
        expect_identity(&envoy, &resp, &marker, &["bob"], &[]),
    );
    // Raw bytes: odd spacing and casing exactly as written on the wire.
    for (name, line) in [
        ("raw no space", "x-user-id:mallory"),
        ("raw tab", "X-USER-ID:\tmallory"),
        ("raw trailing space", "x-User-iD: mallory  "),
    ] {
        let (path, marker) = target("/api");
        let raw = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\n{line}\r\nAuthorization: {auth}\r\n{line}\r\nConnection: close\r\n\r\n"
        );
        let resp = raw_request(envoy.port(), raw.as_bytes());
        report.case(
            name,
            expect_identity(&envoy, &resp, &marker, &["alice"], &["corp"]),
        );
    }
    // Underscore variant (CGI/WSGI-style upstreams fold `_` and `-`): must
    // not arrive under any spelling.
    let (path, marker) = target("/api");
    let resp = envoy.get(&path, &[("x_user_id", "mallory"), ("authorization", &auth)]);
    report.case(
        "underscore x_user_id",
        expect_identity(&envoy, &resp, &marker, &["alice"], &["corp"]).and_then(|()| {
            let echo = Echo::parse(&resp.body);
            ensure!(
                !echo.has_header("x_user_id"),
                "x_user_id reached the upstream: {:?}",
                echo.header("x_user_id")
            );
            Ok(())
        }),
    );
    report.finish("spoofed identity headers");
}

#[test]
fn missing_token_is_401_with_bearer_realm() {
    let envoy = start_main();
    let mut report = Report::default();
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("no authorization", vec![]),
        (
            "basic scheme",
            vec![("authorization", "Basic dXNlcjpwYXNz")],
        ),
        ("empty authorization", vec![("authorization", "")]),
    ];
    for (name, headers) in cases {
        let (path, marker) = target("/api/items");
        let resp = envoy.get(&path, &headers);
        report.case(name, expect_missing(&envoy, &resp, &marker));
    }
    for method in ["POST", "DELETE", "OPTIONS"] {
        let (path, marker) = target("/api/items");
        let resp = envoy.request(method, &path, &[]);
        report.case(method, expect_missing(&envoy, &resp, &marker));
    }
    report.finish("missing token");
}

#[test]
fn decisions_are_counted_under_the_plugins_namespace() {
    // Two plugins of one proxy count apart when each has its namespace.
    let config = with(main_config(), json!({"namespace": "edge_auth"}));
    let envoy = Envoy::builder()
        .plugin_config_json(&config)
        .concurrency(2)
        .start();
    let token = mint("HS256", &Key::hs(256), &json!({}), &claims("erin", "corp"));
    for _ in 0..3 {
        assert_eq!(
            envoy
                .get("/api/a", &[("authorization", &bearer(&token))])
                .status,
            200
        );
    }
    assert_eq!(envoy.get("/api/a", &[]).status, 401);
    assert_eq!(envoy.get("/healthz", &[]).status, 200);
    // Counted in each VM and added to Envoy's counters on its tick, summed
    // over workers; a wait longer than a tick shows nothing more arrives.
    assert_eq!(
        envoy.stat_at_least("wasmcustom.edge_auth.allowed", 3),
        Some(3)
    );
    assert_eq!(
        envoy.stat_at_least("wasmcustom.edge_auth.denied.missing", 1),
        Some(1)
    );
    assert_eq!(
        envoy.stat_at_least("wasmcustom.edge_auth.bypassed", 1),
        Some(1)
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(envoy.stat("wasmcustom.edge_auth.allowed"), Some(3));
    assert!(
        !envoy
            .stats()
            .contains(&envoy.stat_name("wasmcustom.jwt_auth.")),
        "counted under the default prefix too:\n{}",
        envoy.stats()
    );
}

#[test]
fn invalid_tokens_are_401_invalid_token() {
    let envoy = start_main();
    let mut report = Report::default();
    let now = now();
    let good = claims("carol", "corp");
    let rs = Key::rsa2048();
    let cases: Vec<(&str, String, Option<&str>)> = vec![
        (
            "expired",
            mint(
                "RS256",
                &rs,
                &json!({}),
                &with(
                    good.clone(),
                    json!({"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}),
                ),
            ),
            Some("expired"),
        ),
        (
            "not yet valid",
            mint(
                "RS256",
                &rs,
                &json!({}),
                &with(good.clone(), json!({"nbf": now + 3600, "exp": now + 7200})),
            ),
            Some("not yet valid"),
        ),
        (
            "wrong issuer",
            mint(
                "RS256",
                &rs,
                &json!({}),
                &with(good.clone(), json!({"iss": "https://evil.test"})),
            ),
            Some("issuer"),
        ),
        (
            "no issuer",
            mint(
                "RS256",
                &rs,
                &json!({}),
                &with(good.clone(), json!({"iss": null})),
            ),
            Some("issuer"),
        ),
        (
            "wrong audience",
            mint(
                "RS256",
                &rs,
                &json!({}),
                &with(good.clone(), json!({"aud": "other-api"})),
            ),
            Some("audience"),
        ),
        (
            "no expiration",
            mint(
                "RS256",
                &rs,
                &json!({}),
                &with(good.clone(), json!({"exp": null})),
            ),
            Some("expiration"),
        ),
        (
            "tampered claims",
            tamper_claims(
                &mint("RS256", &rs, &json!({}), &good),
                &with(good.clone(), json!({"sub": "admin"})),
            ),
            Some("signature"),
        ),
        (
            "tampered signature",
            tamper_signature(&mint("ES256", &Key::p256(), &json!({}), &good)),
            Some("signature"),
        ),
        (
            "signed by another RSA key with our kid",
            mint(
                "RS256",
                &Key::rsa2048_b().with_kid("rsa-2048"),
                &json!({}),
                &good,
            ),
            Some("signature"),
        ),
        (
            "unknown kid",
            mint("RS256", &Key::rsa2048_b(), &json!({}), &good),
            None,
        ),
        (
            "HS256 with a wrong secret",
            mint(
                "HS256",
                &Key::hmac([7u8; 32]).with_kid("hs256"),
                &json!({}),
                &good,
            ),
            Some("signature"),
        ),
        ("alg none", mint_unsigned("none", &json!({}), &good), None),
        ("alg None", mint_unsigned("None", &json!({}), &good), None),
        (
            "alg NONE",
            mint_unsigned("NONE", &json!({"kid": "rsa-2048"}), &good),
            None,
        ),
        (
            "alg none with a signature attached",
            {
                let signed = mint("RS256", &rs, &json!({}), &good);
                let sig = signed.rsplit('.').next().unwrap().to_string();
                format!(
                    "{}{sig}",
                    mint_unsigned("none", &json!({"kid": "rsa-2048"}), &good)
                )
            },
            None,
        ),
        (
            "header alg RS256, HMAC signature",
            mint(
                "HS256",
                &Key::hs(256),
                &json!({"alg": "RS256", "kid": "rsa-2048"}),
                &good,
            ),
            None,
        ),
        ("garbage", "not-a-jwt".to_string(), None),
        (
            "two segments",
            {
                let t = mint("RS256", &rs, &json!({}), &good);
                t.rsplit_once('.').unwrap().0.to_string()
            },
            None,
        ),
        (
            "empty signature",
            {
                let t = mint("RS256", &rs, &json!({}), &good);
                format!("{}.", t.rsplit_once('.').unwrap().0)
            },
            None,
        ),
        (
            "claims not an object",
            mint("RS256", &rs, &json!({}), &json!(["sub", "x"])),
            None,
        ),
        (
            "unsupported alg HS1",
            mint_unsigned("HS1", &json!({"kid": "hs256"}), &good) + "AAAA",
            None,
        ),
    ];
    for (name, token, desc) in &cases {
        let (path, marker) = target("/api/secret");
        let resp = envoy.get(&path, &[("authorization", &bearer(token))]);
        report.case(name, expect_invalid(&envoy, &resp, &marker, *desc));
    }
    // HS/RS key confusion: the RSA public key's bytes used as an HMAC secret,
    // with and without the RSA key's kid.
    let public_jwk_text = testkit::jwt::committed_jwk::RSA2048.to_string();
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("committed JWK text", public_jwk_text.clone().into_bytes()),
        (
            "committed JWK text trimmed",
            public_jwk_text.trim().as_bytes().to_vec(),
        ),
        ("compact JWK JSON", rs.jwk(None).to_string().into_bytes()),
        ("public PEM", rs.public_pem().into_bytes()),
        (
            "modulus n",
            b64url_decode(rs.jwk(None)["n"].as_str().unwrap()),
        ),
        (
            "n as base64url text",
            rs.jwk(None)["n"].as_str().unwrap().as_bytes().to_vec(),
        ),
    ];
    for (name, secret) in secrets {
        for alg in ["HS256", "HS384", "HS512"] {
            for kid in [Some("rsa-2048"), None] {
                let key = match kid {
                    Some(k) => Key::hmac(&secret).with_kid(k),
                    None => Key::hmac(&secret),
                };
                let token = mint(alg, &key, &json!({}), &good);
                let (path, marker) = target("/api/secret");
                let resp = envoy.get(&path, &[("authorization", &bearer(&token))]);
                report.case(
                    &format!("key confusion {alg} {name} kid={kid:?}"),
                    expect_invalid(&envoy, &resp, &marker, None),
                );
            }
        }
    }
    report.finish("invalid tokens");
}

#[test]
fn bypass_route_and_path_tricks() {
    let envoy = start_main();
    let mut report = Report::default();
    // Letter case is no way around a rule: `/HEALTHZ` is the bypassed path
    // to a case-insensitive router, and so to the filter.
    for p in [
        "/healthz",
        "/healthz/live",
        "//healthz",
        "/healthz/./x",
        "/HEALTHZ",
    ] {
        let (path, marker) = target(p);
        let resp = envoy.get(&path, &[]);
        report.case(p, expect_identity(&envoy, &resp, &marker, &[], &[]));
    }
    // Paths that mention /healthz but are not under it after normalization
    // must require a token.
    for p in [
        "/healthz/../api",
        "/healthz/%2e%2e/api",
        "/./healthz/../../api",
        "/api/healthz",
    ] {
        let (path, marker) = target(p);
        let resp = envoy.get(&path, &[]);
        report.case(p, expect_missing(&envoy, &resp, &marker));
    }
    // An encoded slash never reaches filter-rule matching or the upstream.
    for p in [
        "/healthz%2F..%2Fapi",
        "/healthz%2f..%2fapi",
        "/healthz%5C..%5Capi",
    ] {
        let (path, marker) = target(p);
        let resp = envoy.get(&path, &[]);
        report.case(
            p,
            if resp.status == 200 {
                Err(format!("got 200 for {p}"))
            } else {
                expect_not_forwarded(&envoy, &marker)
            },
        );
    }
    // The query string is not part of the path.
    let (path, marker) = target("/api");
    let path = path.replace('?', "?next=/healthz&");
    let resp = envoy.get(&path, &[]);
    report.case(
        "query mentioning /healthz",
        expect_missing(&envoy, &resp, &marker),
    );
    report.finish("bypass route");
}

#[test]
fn no_identity_leaks_across_requests_or_workers() {
    let envoy = start_main();
    let mut report = Report::default();
    // Keep-alive: an authenticated request, then unauthenticated ones.
    let token = mint(
        "EdDSA",
        &Key::ed25519(),
        &json!({}),
        &claims("dave", "corp"),
    );
    let mut conn = Connection::open(envoy.port());
    let (path, marker) = target("/api/a");
    let resp = conn.send("GET", &path, &[("authorization", &bearer(&token))], b"");
    report.case(
        "keep-alive 1: token",
        expect_identity(&envoy, &resp, &marker, &["dave"], &["corp"]),
    );
    let (path, marker) = target("/api/b");
    let resp = conn.send("GET", &path, &[], b"");
    report.case(
        "keep-alive 2: no token",
        expect_missing(&envoy, &resp, &marker),
    );
    let mut conn = Connection::open(envoy.port());
    let (path, marker) = target("/api/a");
    let resp = conn.send("GET", &path, &[("authorization", &bearer(&token))], b"");
    report.case(
        "keep-alive 3: token",
        expect_identity(&envoy, &resp, &marker, &["dave"], &["corp"]),
    );
    let (path, marker) = target("/healthz");
    let resp = conn.send("GET", &path, &[], b"");
    report.case(
        "keep-alive 4: bypass",
        expect_identity(&envoy, &resp, &marker, &[], &[]),
    );
    // Parallel clients with different identities (two workers, two VMs).
    let port = envoy.port();
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                s.spawn(move || {
                    for i in 0..15 {
                        let sub = format!("user-{t}-{i}");
                        let alg = ALGS[(t * 15 + i) % ALGS.len()];
                        let token =
                            mint(alg, &Key::for_alg(alg), &json!({}), &claims(&sub, "corp"));
                        let resp = request(
                            port,
                            "GET",
                            &format!("/api/par?t={t}&i={i}"),
                            &[("authorization", &bearer(&token)), ("x-user-id", "mallory")],
                        );
                        if resp.status != 200 {
                            return Err(format!("{sub} ({alg}): status {}", resp.status));
                        }
                        let got = Echo::parse(&resp.body).header("x-user-id");
                        if got != [sub.clone()] {
                            return Err(format!("{sub} ({alg}): upstream saw {got:?}"));
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, r) in results.into_iter().enumerate() {
        report.case(&format!("parallel client {i}"), r);
    }
    report.finish("isolation");
}

#[test]
fn invalid_plugin_config_is_refused_naming_the_field() {
    let base = main_config();
    let mut unknown_top = base.clone();
    unknown_top["bogus_option"] = json!(true);
    let mut unknown_provider_field = base.clone();
    unknown_provider_field["providers"][0]["issuerr"] = json!(ISS);
    let mut weak_rsa = base.clone();
    weak_rsa["providers"][0]["jwks"] = jwks([Key::rsa1024().jwk(Some("RS256"))]);
    let mut unknown_rule_provider = base.clone();
    unknown_rule_provider["rules"][2]["requires"]["providers"] = json!(["main", "nosuch"]);
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "unknown top-level field",
            unknown_top.to_string(),
            vec!["bogus_option"],
        ),
        (
            "unknown provider field",
            unknown_provider_field.to_string(),
            vec!["issuerr"],
        ),
        (
            "RSA 1024 key",
            weak_rsa.to_string(),
            vec!["providers[0].jwks"],
        ),
        (
            "rule naming an unknown provider",
            unknown_rule_provider.to_string(),
            vec!["rules[2]", "nosuch"],
        ),
        (
            "not JSON",
            "{\"providers\": [".to_string(),
            vec!["jwt-auth"],
        ),
    ];
    let mut report = Report::default();
    for (name, config, needles) in cases {
        let result = Envoy::builder()
            .plugin_config(config)
            .concurrency(2)
            .try_start();
        let r = match result {
            Ok(envoy) => {
                let (path, _) = target("/api");
                let resp = envoy.get(&path, &[]);
                Err(format!(
                    "Envoy started (LIVE) and answered {} {:?}",
                    resp.status, resp.body
                ))
            }
            Err(log) => {
                let missing: Vec<&str> = needles
                    .iter()
                    .copied()
                    .filter(|n| !log.contains(n))
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    let lines: Vec<&str> = log
                        .lines()
                        .filter(|l| {
                            l.contains("wasm") || l.contains("jwt") || l.contains("critical")
                        })
                        .collect();
                    Err(format!(
                        "log does not name {missing:?}; relevant lines:\n{}",
                        lines.join("\n")
                    ))
                }
            }
        };
        report.case(name, r);
    }
    report.finish("invalid plugin configurations");
}

// ------------------------------------------------------ the demo envoy.yaml --

/// The plugin configuration inside envoy.yaml's `value: |` block.
fn demo_plugin_config() -> Value {
    let yaml = std::fs::read_to_string(workspace_root().join("envoy.yaml")).expect("envoy.yaml");
    let mut lines = yaml.lines().skip_while(|l| l.trim() != "value: |");
    let key_indent = lines
        .next()
        .map(|l| l.len() - l.trim_start().len())
        .expect("envoy.yaml has a `value: |` block");
    let block: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > key_indent)
        .collect();
    serde_json::from_str(&block.join("\n")).expect("envoy.yaml plugin configuration is JSON")
}

#[test]
fn demo_envoy_yaml_validates_and_its_config_works() {
    // The whole bootstrap, as `envoy --mode validate` sees it, with the wasm
    // path this test run uses.
    let yaml = std::fs::read_to_string(workspace_root().join("envoy.yaml")).expect("envoy.yaml");
    let rel = "target/wasm32-wasip1/release/jwt_auth_wasm.wasm";
    assert!(yaml.contains(rel), "envoy.yaml no longer loads {rel}");
    let wasm = default_wasm_path();
    let dir = std::env::temp_dir().join(format!("jwt-auth-demo-{}", random_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("envoy.yaml");
    std::fs::write(&cfg, yaml.replace(rel, &wasm.display().to_string())).unwrap();
    let out = Command::new(envoy_bin())
        .args(["--mode", "validate", "--disable-hot-restart", "-c"])
        .arg(&cfg)
        .output()
        .expect("run envoy --mode validate");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "envoy --mode validate -c envoy.yaml failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Its plugin configuration, live, with the demo token.
    let config = demo_plugin_config();
    assert_eq!(
        config["providers"][0]["jwks"],
        demo_jwks(),
        "envoy.yaml JWKS != testkit keys"
    );
    let envoy = Envoy::builder().plugin_config_json(&config).start();
    let mut report = Report::default();
    let token = demo_token(&DemoClaims {
        sub: "alice".into(),
        provider: "demo".into(),
        ..DemoClaims::default()
    });
    let (path, marker) = target("/hello");
    let resp = envoy.get(&path, &[("authorization", &bearer(&token))]);
    report.case(
        "demo token",
        expect_identity(&envoy, &resp, &marker, &["alice"], &["demo"]),
    );
    let (path, marker) = target("/healthz");
    let resp = envoy.get(&path, &[("x-user-id", "mallory")]);
    report.case("healthz", expect_identity(&envoy, &resp, &marker, &[], &[]));
    let (path, marker) = target("/hello");
    let resp = envoy.get(&path, &[]);
    report.case("no token", expect_missing(&envoy, &resp, &marker));
    let refresh = mint(
        "HS256",
        &Key::demo_hs256(),
        &json!({}),
        &with(
            demo_claims(&DemoClaims::default()),
            json!({"type": "refresh"}),
        ),
    );
    let (path, marker) = target("/hello");
    let resp = envoy.get(&path, &[("authorization", &bearer(&refresh))]);
    report.case(
        "required claim type=access",
        expect_invalid(&envoy, &resp, &marker, None),
    );
    let rs = mint(
        "RS256",
        &Key::rsa2048(),
        &json!({}),
        &demo_claims(&DemoClaims::default()),
    );
    let (path, marker) = target("/hello");
    let resp = envoy.get(&path, &[("authorization", &bearer(&rs))]);
    report.case(
        "RS256 example key",
        expect_identity(&envoy, &resp, &marker, &["demo-user"], &["demo"]),
    );
    report.finish("demo envoy.yaml");
}

#[test]
fn demo_token_binary_prints_a_working_token() {
    let out = Command::new(workspace_bin("testkit", "demo-token"))
        .args([
            "--sub",
            "erin",
            "--provider",
            "demo",
            "--exp-in",
            "120",
            "--jti",
            "j-1",
        ])
        .output()
        .expect("run demo-token");
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let (_, c, _) = decode_parts(&token);
    assert_eq!(c["sub"], json!("erin"));
    assert_eq!(c["jti"], json!("j-1"));
    let exp = c["exp"].as_i64().unwrap();
    assert!((now() + 100..=now() + 130).contains(&exp), "exp {exp}");
}

#[test]
fn cors_preflight_passes_without_a_token_and_is_counted() {
    let envoy = start_main();
    let mut report = Report::default();
    let preflight = [
        ("origin", "https://app.test"),
        ("access-control-request-method", "POST"),
    ];
    let (path, marker) = target("/api/items");
    let mut headers = preflight.to_vec();
    headers.push(("x-user-id", "forged"));
    let resp = envoy.request("OPTIONS", &path, &headers);
    report.case(
        "preflight passes, forged identity stripped",
        expect_identity(&envoy, &resp, &marker, &[], &[]),
    );
    let (path, marker) = target("/api/items");
    let resp = envoy.request("OPTIONS", &path, &preflight[..1]);
    report.case(
        "origin alone is no preflight",
        expect_missing(&envoy, &resp, &marker),
    );
    let (path, marker) = target("/api/items");
    let mut headers = preflight.to_vec();
    headers.push(("authorization", "Bearer not.a.token"));
    let resp = envoy.request("OPTIONS", &path, &headers);
    report.case(
        "a preflight's bad token is refused",
        expect_invalid(&envoy, &resp, &marker, None),
    );
    report.finish("cors preflight");
    assert_eq!(
        envoy.stat_at_least("wasmcustom.jwt_auth.bypassed.cors_preflight", 1),
        Some(1)
    );

    let off = Envoy::builder()
        .plugin_config_json(&with(
            main_config(),
            json!({"bypass_cors_preflight": false}),
        ))
        .start();
    let (path, marker) = target("/api/items");
    let resp = off.request("OPTIONS", &path, &preflight);
    let mut report = Report::default();
    report.case("bypass turned off", expect_missing(&off, &resp, &marker));
    report.finish("cors preflight bypass off");
}

#[test]
fn decisions_are_counted_per_provider_in_prometheus() {
    let envoy = start_main();
    let good = mint("HS256", &Key::hs(256), &json!({}), &claims("erin", "corp"));
    let mut late = claims("erin", "corp");
    late["exp"] = json!(now() - 3600);
    let expired = mint("HS256", &Key::hs(256), &json!({}), &late);
    for (token, status) in [(&good, 200), (&good, 200), (&expired, 401)] {
        let resp = envoy.get("/api/a", &[("authorization", &bearer(token))]);
        assert_eq!(resp.status, status, "{:?}", resp.body);
    }
    assert_eq!(envoy.get("/api/a", &[]).status, 401);
    assert_eq!(
        envoy.stat_at_least("wasmcustom.jwt_auth.allowed.main", 2),
        Some(2)
    );
    assert_eq!(
        envoy.stat_at_least("wasmcustom.jwt_auth.denied.main.expired", 1),
        Some(1)
    );
    let prometheus = envoy.admin_get("/stats/prometheus");
    for line in [
        "jwt_auth_allowed_main{} 2",
        "jwt_auth_denied_main_expired{} 1",
        "jwt_auth_denied_expired{} 1",
        "jwt_auth_denied_missing{} 1",
    ] {
        let line = envoy.prometheus_name(line);
        assert!(
            prometheus.lines().any(|l| l == line),
            "no {line:?} in /stats/prometheus:\n{prometheus}"
        );
    }
    // Declared (at 0) by the native build, never added to by either.
    let not_counted = envoy.prometheus_name("jwt_auth_denied_main_missing{}");
    assert!(
        !prometheus
            .lines()
            .any(|l| l.starts_with(&not_counted) && !l.ends_with(" 0")),
        "a missing token is no provider's verdict:\n{prometheus}"
    );
}

/// A gRPC call through `envoy` (grpcio, `make grpcio`): the status code
/// name, the details and the `www-authenticate` the client received.
fn grpc_call(envoy: &Envoy, authorization: &str) -> Vec<String> {
    grpc::call(envoy.port(), authorization, "")
}

#[test]
fn a_grpc_call_is_refused_with_a_grpc_status() {
    let envoy = start_main();
    assert_eq!(
        grpc_call(&envoy, ""),
        [
            "UNAUTHENTICATED",
            "token required",
            &format!("Bearer realm=\"{REALM}\""),
        ]
    );
    let mut late = claims("erin", "corp");
    late["exp"] = json!(now() - 3600);
    let expired = mint("HS256", &Key::hs(256), &json!({}), &late);
    assert_eq!(
        grpc_call(&envoy, &bearer(&expired)),
        [
            "UNAUTHENTICATED",
            "token expired",
            &format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"token expired\""
            ),
        ]
    );
    let seen = envoy.upstream().requests_matching("/demo.Echo/Say");
    assert!(seen.is_empty(), "refused calls reached the upstream");
}
