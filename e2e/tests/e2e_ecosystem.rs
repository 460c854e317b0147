//! End-to-end tests of the filter with Envoy's other filters and clients:
//! Envoy's RBAC filter deciding on a claim this filter put in filter state,
//! the access log showing it, the RFC 9728 metadata document and the
//! `WWW-Authenticate` that points to it, and an allowed gRPC call reaching a
//! real gRPC server with the identity metadata.
//!
//! Runs against the build `JWT_AUTH_MODULE` names (wasm or native): needs
//! that build (`make build`, `make build-native`), Envoy (`make .venv`) and
//! grpcio in `.venv` (`make grpcio`); without them the tests fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::*;

const ISS: &str = "https://issuer.test";
const AUD: &str = "api";
const RESOURCE: &str = "https://api.example.test/mcp";
const METADATA_URL: &str = "https://api.example.test/.well-known/oauth-protected-resource/mcp";

fn provider() -> Value {
    json!({
        "name": "main",
        "issuer": ISS,
        "audiences": [AUD],
        "jwks": jwks([Key::hs(256).jwk(Some("HS256"))]),
        "claim_to_headers": [{"claim": "sub", "header": "x-user-id"}],
    })
}

fn token(sub: &str, scope: &str) -> String {
    let now = now();
    let claims = json!({
        "iss": ISS, "aud": AUD, "sub": sub, "scope": scope, "tenant": format!("t-{sub}"),
        "iat": now, "exp": now + 600, "jti": random_id(),
    });
    format!(
        "Bearer {}",
        mint("HS256", &Key::hs(256), &json!({}), &claims)
    )
}

/// A unique path per case, so the upstream's record and the access log
/// speak of this very request.
fn marked(prefix: &str) -> String {
    format!("{prefix}?case={}", random_id())
}

/// The access log line of the request whose path holds `marker`; the file
/// is written a moment after the response.
fn access_log_line(envoy: &Envoy, marker: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = envoy.access_log();
        if let Some(line) = log.lines().find(|l| l.contains(marker)) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no access log line for {marker}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ------------------------------------------------------------ filter state --

/// Envoy's RBAC filter, to go after this one: only requests whose
/// `principal` matches pass.
fn rbac_allowing(principal: Value) -> Value {
    json!({
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": "ALLOW", "policies": {"only": {
                "permissions": [{"any": true}],
                "principals": [principal],
            }}},
        },
    })
}

/// Only `alice` may pass, read from the filter state object `envoy.string`.
fn rbac_on_filter_state() -> Value {
    rbac_allowing(json!({"filter_state": {
        "key": "envoy.string",
        "string_match": {"exact": "alice"},
    }}))
}

#[test]
fn rbac_after_the_filter_decides_on_a_claim_in_filter_state() {
    let mut p = provider();
    p["claims_to_filter_state"] = json!([
        {"claim": "sub", "name": "envoy.string"},
        {"claim": "tenant", "name": "envoy.hashable_string"},
    ]);
    let envoy = Envoy::builder()
        .plugin_config_json(&json!({
            "providers": [p],
            "rules": [
                {"match": {"prefix": "/healthz"}, "requires": "none"},
                {"match": {"prefix": "/"}, "requires": {"providers": ["main"]}},
            ],
        }))
        .filter_after(rbac_on_filter_state())
        .access_log_format(
            "path=%REQ(:PATH)% code=%RESPONSE_CODE% sub=%FILTER_STATE(envoy.string:PLAIN)% tenant=%FILTER_STATE(envoy.hashable_string:PLAIN)%\n",
        )
        .start();
    let cases = [
        // (who, path prefix, status, what the access log shows)
        ("alice", "/x", 200, "sub=alice tenant=t-alice"),
        ("bob", "/x", 403, "sub=bob tenant=t-bob"),
        // Refused by this filter: nothing was written.
        ("", "/x", 401, "sub=- tenant=-"),
        // A bypassed route writes no filter state, so RBAC finds none.
        ("alice", "/healthz", 403, "sub=- tenant=-"),
    ];
    for (who, prefix, status, logged) in cases {
        let path = marked(prefix);
        let auth = if who.is_empty() {
            String::new()
        } else {
            token(who, "")
        };
        let headers: Vec<(&str, &str)> = if who.is_empty() {
            vec![]
        } else {
            vec![("authorization", &auth)]
        };
        let resp = envoy.get(&path, &headers);
        assert_eq!(resp.status, status, "{who} {prefix}: {}", resp.body);
        let reached = !envoy.upstream().requests_matching(&path).is_empty();
        assert_eq!(reached, status == 200, "{who} {prefix}: upstream reached");
        if status == 403 {
            assert_eq!(resp.body, "RBAC: access denied", "{who} {prefix}");
        }
        let line = access_log_line(&envoy, &path);
        assert!(
            line.ends_with(&format!("code={status} {logged}")),
            "{who} {prefix}: {line}"
        );
    }
    assert!(
        !envoy.log().contains("not set"),
        "Envoy refused a filter state write:\n{}",
        envoy.log()
    );
}

/// Without filter state, RBAC can match the identity header this filter
/// writes: safe only because the filter strips a client-sent one first.
#[test]
fn rbac_on_the_identity_header_refuses_a_forged_one() {
    let envoy = Envoy::builder()
        .plugin_config_json(&json!({
            "providers": [provider()],
            "rules": [
                {"match": {"prefix": "/healthz"}, "requires": "none"},
                {"match": {"prefix": "/"}, "requires": {"providers": ["main"], "allow_missing": true}},
            ],
        }))
        .filter_after(rbac_allowing(json!({"header": {
            "name": "x-user-id",
            "string_match": {"exact": "alice"},
        }})))
        .access_log_format("path=%REQ(:PATH)% code=%RESPONSE_CODE% user=%REQ(x-user-id)%\n")
        .start();
    let alice = token("alice", "");
    for (auth, forged, status, logged) in [
        (Some(alice.as_str()), None, 200, "user=alice"),
        (Some(alice.as_str()), Some("mallory"), 200, "user=alice"),
        (None, Some("alice"), 403, "user=-"),
        (
            Some(token("bob", "").as_str()),
            Some("alice"),
            403,
            "user=bob",
        ),
    ] {
        let path = marked("/x");
        let mut headers = Vec::new();
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        if let Some(f) = forged {
            headers.push(("x-user-id", f));
        }
        let resp = envoy.get(&path, &headers);
        assert_eq!(resp.status, status, "{headers:?}: {}", resp.body);
        if status == 200 {
            assert_eq!(resp.echo().header("x-user-id"), ["alice"]);
        }
        let line = access_log_line(&envoy, &path);
        assert!(line.ends_with(&format!("code={status} {logged}")), "{line}");
    }
    // A forged header on a bypassed route is stripped too.
    let resp = envoy.get(&marked("/healthz"), &[("x-user-id", "alice")]);
    assert_eq!(resp.status, 403);
}

#[test]
fn a_filter_state_name_envoy_cannot_set_is_refused_at_load() {
    let mut p = provider();
    p["claims_to_filter_state"] = json!([{"claim": "sub", "name": "jwt.sub"}]);
    let log = Envoy::builder()
        .plugin_config_json(&json!({"providers": [p]}))
        .try_start()
        .err()
        .expect("Envoy accepted a filter state name without a factory");
    assert!(
        log.contains("providers[0].claims_to_filter_state[0].name")
            && log.contains("\"jwt.sub\" cannot be set"),
        "{log}"
    );
}

// ------------------------------------------------------ resource metadata --

fn protected_config() -> Value {
    json!({
        "providers": [provider()],
        "protected_resource": {
            "resource": RESOURCE,
            "authorization_servers": [ISS],
            "scopes_supported": ["files:read", "files:write"],
            "bearer_methods_supported": ["header"],
            "resource_name": "Example files",
        },
        "rules": [
            {"match": {"prefix": "/files"}, "requires": {"permissions": {"claim": "scope", "all_of": ["files:read"]}}},
            {"match": {"prefix": "/"}, "requires": {"providers": ["main"]}},
        ],
    })
}

#[test]
fn the_protected_resource_metadata_is_served_and_refusals_point_to_it() {
    let envoy = Envoy::builder()
        .plugin_config_json(&protected_config())
        .start();
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let resp = envoy.get(path, &[]);
        assert_eq!(resp.status, 200, "{path}: {}", resp.body);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        let doc = resp.json();
        // RFC 9728 section 2: `resource` is required and is the resource
        // identifier; the others, when present, are JSON arrays of strings.
        assert_eq!(doc["resource"], RESOURCE, "{doc}");
        for member in [
            "authorization_servers",
            "scopes_supported",
            "bearer_methods_supported",
        ] {
            let items = doc[member]
                .as_array()
                .unwrap_or_else(|| panic!("{member}: {doc}"));
            assert!(
                !items.is_empty() && items.iter().all(Value::is_string),
                "{doc}"
            );
        }
        assert_eq!(doc["authorization_servers"], json!([ISS]));
        assert_eq!(doc["resource_name"], "Example files");
        let head = envoy.request("HEAD", path, &[]);
        assert_eq!((head.status, head.body.as_str()), (200, ""), "HEAD {path}");
        let post = envoy.request("POST", path, &[]);
        assert_eq!(post.status, 405, "POST {path}");
        assert_eq!(post.header("allow"), Some("GET, HEAD"));
    }
    assert!(!envoy
        .upstream()
        .saw_path_prefix("/.well-known/oauth-protected-resource"));
    assert_eq!(
        envoy.stat_at_least("wasmcustom.jwt_auth.resource_metadata", 6),
        Some(6),
        "two paths, three methods each"
    );
    // The name an operator reads in /stats: Envoy's namespace for the
    // build's own metrics, then the filter's.
    let counter = match envoy.module() {
        Module::Wasm => "wasmcustom.jwt_auth.resource_metadata",
        Module::Native => "dynamicmodulescustom.jwt_auth.resource_metadata",
    };
    assert!(
        envoy.stats().lines().any(|l| l == format!("{counter}: 6")),
        "no {counter}: 6 in /stats"
    );

    let missing = envoy.get("/files/a", &[]);
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.header("www-authenticate"),
        Some(format!("Bearer realm=\"api\", resource_metadata=\"{METADATA_URL}\"").as_str())
    );
    let bad = envoy.get("/files/a", &[("authorization", "Bearer x.y.z")]);
    assert_eq!(bad.status, 401);
    assert!(bad
        .header("www-authenticate")
        .unwrap()
        .ends_with(&format!(", resource_metadata=\"{METADATA_URL}\"")));
    let narrow = token("alice", "files:write");
    let scope = envoy.get("/files/a", &[("authorization", &narrow)]);
    assert_eq!(scope.status, 403);
    assert_eq!(
        scope.header("www-authenticate"),
        Some(format!("Bearer realm=\"api\", error=\"insufficient_scope\", error_description=\"insufficient permissions\", scope=\"files:read\", resource_metadata=\"{METADATA_URL}\"").as_str())
    );
    let wide = token("alice", "files:read files:write");
    assert_eq!(
        envoy.get("/files/a", &[("authorization", &wide)]).status,
        200
    );

    // A gRPC refusal carries it in its trailers-only answer.
    let call = grpc::call(envoy.port(), "", "");
    assert_eq!(
        call,
        [
            "UNAUTHENTICATED",
            "token required",
            &format!("Bearer realm=\"api\", resource_metadata=\"{METADATA_URL}\""),
        ]
    );
}

// ----------------------------------------------------------- gRPC upstream --

#[test]
fn an_allowed_grpc_call_reaches_a_grpc_server_with_the_identity() {
    let server = grpc::GrpcServer::start();
    let envoy = Envoy::builder()
        .plugin_config_json(&json!({"providers": [provider()]}))
        .upstream_port(server.port())
        .upstream_h2()
        .start();
    let alice = token("alice", "");
    assert_eq!(
        grpc::call(envoy.port(), &alice, ""),
        ["OK", "x-user-id=alice authorization=0"]
    );
    // The client's own x-user-id is stripped; only the verified one arrives.
    assert_eq!(
        grpc::call(envoy.port(), &alice, "mallory"),
        ["OK", "x-user-id=alice authorization=0"]
    );
    let refused = grpc::call(envoy.port(), "", "alice");
    assert_eq!(refused[0], "UNAUTHENTICATED", "{refused:?}");
}
