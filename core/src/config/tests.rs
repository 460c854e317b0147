use super::*;
use serde_json::{json, Value};

use crate::extract::TokenSource;
use crate::revocation::feed::OnStale;
use crate::rules::PathMatch;

fn hs_key() -> Value {
    json!({"kty": "oct", "kid": "k1", "alg": "HS256", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYnl0ZXM"})
}

fn base() -> Value {
    json!({
        "realm": "api",
        "providers": [{
            "name": "main",
            "issuer": "https://auth.example.com",
            "audiences": ["api"],
            "jwks": {"keys": [hs_key()]},
            "claim_to_headers": [{"claim": "sub", "header": "X-User-Id"}, {"claim": "provider", "header": "x-auth-provider"}],
            "payload_header": "x-jwt-payload"
        }],
        "rules": [
            {"match": {"prefix": "/healthz"}, "requires": "none"},
            {"match": {"prefix": "/", "methods": ["get"]}, "requires": {"providers": ["main"], "allow_missing": false}}
        ]
    })
}

fn load(v: &Value) -> Result<Policy, ConfigError> {
    Policy::from_json(v.to_string().as_bytes())
}

fn error_of(v: Value) -> ConfigError {
    match load(&v) {
        Ok(_) => panic!("config should be refused: {v}"),
        Err(e) => e,
    }
}

#[test]
fn contract_example_loads_with_defaults() {
    let p = load(&base()).unwrap();
    assert_eq!(p.realm, "api");
    let main = &p.providers[0];
    assert_eq!(main.max_token_bytes, 64 * 1024);
    assert_eq!(p.escaped_slashes, EscapedSlashes::Reject);
    assert!(!p.rules[0].case_sensitive);
    assert_eq!(main.claims.clock_skew_seconds, 60);
    assert!(main.claims.require_expiration);
    assert!(!main.forward);
    assert_eq!(main.sources, vec![TokenSource::default_bearer()]);
    assert_eq!(
        p.strip_headers,
        vec!["x-auth-provider", "x-jwt-payload", "x-user-id"],
        "lowercased, deduplicated, payload header included"
    );
    assert_eq!(p.rules.len(), 2);
    assert_eq!(p.rules[1].methods, vec!["GET"]);
    assert!(matches!(p.rules[0].requires, Requirement::None));
    assert!(p.bypass_cors_preflight);
}

#[test]
fn full_provider_contract() {
    let mut v = base();
    v["providers"][0]["from_headers"] =
        json!([{"name": "authorization", "value_prefix": "Bearer "}]);
    v["providers"][0]["from_params"] = json!(["access_token"]);
    v["providers"][0]["from_cookies"] = json!(["access_token"]);
    v["providers"][0]["clock_skew_seconds"] = json!(5);
    v["providers"][0]["require_expiration"] = json!(false);
    v["providers"][0]["max_lifetime_seconds"] = json!(86400);
    v["providers"][0]["max_token_bytes"] = json!(4096);
    v["providers"][0]["required_claims"] = json!({"type": "access"});
    v["providers"][0]["forward"] = json!(true);
    let p = load(&v).unwrap();
    let main = &p.providers[0];
    assert_eq!(main.sources.len(), 3);
    assert_eq!(main.claims.clock_skew_seconds, 5);
    assert_eq!(main.claims.max_lifetime_seconds, Some(86400));
    assert_eq!(main.max_token_bytes, 4096);
    assert!(main.forward);
}

#[test]
fn errors_name_the_field() {
    let mut cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut v = base();
                v["bogus"] = json!(1);
                v
            },
            "bogus",
        ),
        (
            {
                let mut v = base();
                v["providers"][0]["audience"] = json!("api");
                v
            },
            "providers[0].audience",
        ),
        (
            {
                let mut v = base();
                v["providers"][0]["clock_skew_seconds"] = json!("60");
                v
            },
            "providers[0].clock_skew_seconds",
        ),
        (
            {
                let mut v = base();
                v["providers"][0]["jwks"] =
                    json!({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]});
                v
            },
            "providers[0].jwks",
        ),
        (
            {
                let mut v = base();
                v["providers"][0].as_object_mut().unwrap().remove("jwks");
                v
            },
            "providers[0].jwks",
        ),
        (
            {
                let mut v = base();
                v["rules"][1]["requires"]["providers"] = json!(["nope"]);
                v
            },
            "rules[1].requires.providers[0]",
        ),
        (
            {
                let mut v = base();
                v["rules"][1]["requires"]["allow_mising"] = json!(true);
                v
            },
            "rules[1].requires.allow_mising",
        ),
        (
            {
                let mut v = base();
                v["rules"][0]["requires"] = json!("nothing");
                v
            },
            "rules[0].requires",
        ),
        (
            {
                let mut v = base();
                v["rules"][0]["match"] = json!({"prefix": "/a", "path": "/a"});
                v
            },
            "rules[0].match",
        ),
        (
            {
                let mut v = base();
                v["rules"][0]["match"] = json!({"prefix": "a"});
                v
            },
            "rules[0].match",
        ),
        (
            {
                let mut v = base();
                v["providers"][0]["claim_to_headers"][0]["header"] = json!("x user");
                v
            },
            "providers[0].claim_to_headers[0].header",
        ),
        (
            {
                let mut v = base();
                v["providers"][0]["claim_to_headers"][0]["header"] = json!("authorization");
                v
            },
            "providers[0].claim_to_headers",
        ),
        (
            {
                let mut v = base();
                v["providers"][0]["claim_to_headers"][0]["header"] = json!("host");
                v
            },
            "providers[0].claim_to_headers",
        ),
        (
            {
                let mut v = base();
                v["providers"][0]["required_claims"] = json!({"type": ["a"]});
                v
            },
            "providers[0].required_claims.type",
        ),
        (
            {
                let mut v = base();
                v["providers"][0]["max_token_bytes"] = json!(0);
                v
            },
            "providers[0].max_token_bytes",
        ),
        (
            {
                let mut v = base();
                v["providers"][0]["name"] = json!("has space");
                v
            },
            "providers[0].name",
        ),
        (
            {
                let mut v = base();
                let p = v["providers"][0].clone();
                v["providers"].as_array_mut().unwrap().push(p);
                v
            },
            "providers[1].name",
        ),
        (
            {
                let mut v = base();
                v["providers"] = json!([]);
                v
            },
            "providers",
        ),
        (
            {
                let mut v = base();
                v["realm"] = json!("a\"b");
                v
            },
            "realm",
        ),
        (
            {
                let mut v = base();
                v["rules"][1]["requires"]["permissions"] = json!({"claim": "scope"});
                v
            },
            "rules[1].requires.permissions",
        ),
        (
            {
                let mut v = base();
                v["rules"][1]["requires"]["claims"] = json!({"role": {"a": 1}});
                v
            },
            "rules[1].requires.claims.role",
        ),
        (
            {
                let mut v = base();
                v["escaped_slashes"] = json!("decode");
                v
            },
            "escaped_slashes",
        ),
    ];
    for path in [
        "/a/../b", "/a;x", "/a%2F", "/a//b", "/a/./b", "/a?x", "/a\\b",
    ] {
        let mut v = base();
        v["rules"][0]["match"] = json!({ "prefix": path });
        cases.push((v, "rules[0].match"));
    }
    let mut wrong = Vec::new();
    for (v, field) in cases {
        let e = error_of(v.clone());
        if e.field != field {
            wrong.push(format!("expected {field:?}, got {e}"));
        }
        assert!(!e.message.is_empty());
        assert!(e.to_string().starts_with("invalid configuration: "), "{e}");
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn unknown_field_message_names_it() {
    let mut v = base();
    v["providers"][0]["audience"] = json!("api");
    let e = error_of(v);
    assert!(e.to_string().contains("unknown field `audience`"), "{e}");
    assert!(!e.to_string().contains("line"), "no parser positions: {e}");
}

#[test]
fn cors_preflight_bypass_is_a_boolean_and_a_misspelling_is_named() {
    let mut v = base();
    v["bypass_cors_preflight"] = json!(false);
    assert!(!load(&v).unwrap().bypass_cors_preflight);
    v["bypass_cors_preflight"] = json!("no");
    assert_eq!(error_of(v).field, "bypass_cors_preflight");
    let mut v = base();
    v["bypass_cors_preflights"] = json!(true);
    let e = error_of(v);
    assert!(
        e.to_string()
            .contains("unknown field `bypass_cors_preflights`"),
        "{e}"
    );
}

#[test]
fn not_json_is_refused() {
    assert!(Policy::from_json(b"").is_err());
    assert!(Policy::from_json(b"{\"providers\": [] } trailing").is_err());
    assert!(Policy::from_json(b"[]").is_err());
}

#[test]
fn rules_absent_means_secure_default() {
    let mut v = base();
    v.as_object_mut().unwrap().remove("rules");
    let p = load(&v).unwrap();
    assert!(p.rules.is_empty());
    match &p.default_requirement {
        Requirement::Token {
            providers,
            allow_missing,
            ..
        } => {
            assert_eq!(providers, &vec![0]);
            assert!(!allow_missing);
        }
        Requirement::None => panic!("default must require a token"),
    }
}

#[test]
fn requirement_providers_default_to_all() {
    let mut v = base();
    v["rules"][1]["requires"] =
        json!({"permissions": {"any_of": ["read"]}, "claims": {"role": ["a", "b"], "tier": 2}});
    let p = load(&v).unwrap();
    match &p.rules[1].requires {
        Requirement::Token {
            providers,
            permissions,
            claims,
            ..
        } => {
            assert_eq!(providers, &vec![0]);
            assert_eq!(permissions.as_ref().unwrap().claim.name(), "permissions");
            assert_eq!(claims.len(), 2);
        }
        Requirement::None => panic!("expected a token requirement"),
    }
}

#[test]
fn revocation_block() {
    let mut v = base();
    v["revocation"] = json!({"cluster": "revocation_feed", "authority": "revocation-feed", "path": "/v1/revocations",
        "poll_interval_ms": 1000, "timeout_ms": 500, "bearer_token": "t", "hmac_secret_base64": "c2VjcmV0",
        "max_staleness_seconds": 30, "on_stale": "deny"});
    let r = load(&v).unwrap().revocation.unwrap();
    assert_eq!(r.hmac_secret.as_deref(), Some(&b"secret"[..]));
    assert_eq!(r.on_stale, OnStale::Deny);
    assert_eq!(r.namespace, "jwt_auth");
    assert_eq!(r.clock_skew_seconds, 60);
    v["revocation"] = json!({"cluster": "c"});
    let r = load(&v).unwrap().revocation.unwrap();
    assert_eq!(r.authority, "c");
    assert_eq!(r.path, "/v1/revocations");
    assert_eq!(r.on_stale, OnStale::Serve);
    assert_eq!((r.wait_ms, r.accept_unbound_answers), (15_000, false));
    assert_eq!(r.call_timeout_ms(), 15_500);
    v["revocation"] = json!({"cluster": "c", "max_staleness_seconds": 10});
    let r = load(&v).unwrap().revocation.unwrap();
    assert_eq!(r.wait_ms, 5_000, "at most half of the staleness allowance");
    v["revocation"] = json!({"cluster": "c", "wait_ms": 0, "accept_unbound_answers": true});
    let r = load(&v).unwrap().revocation.unwrap();
    assert_eq!((r.wait_ms, r.accept_unbound_answers), (0, true));
    for (block, field) in [
        (
            json!({"cluster": "c", "wait_ms": 16_000}),
            "revocation.wait_ms",
        ),
        (
            json!({"cluster": "c", "bearer_token": "<REPLACE with read-token>"}),
            "revocation.bearer_token",
        ),
        (
            json!({"cluster": "c", "bearer_token": "replace-me-feed-read-token"}),
            "revocation.bearer_token",
        ),
        (
            json!({"cluster": "c", "hmac_secret_base64": "<REPLACE with hmac-secret-base64>"}),
            "revocation.hmac_secret_base64",
        ),
        (json!({"cluster": ""}), "revocation.cluster"),
        (
            json!({"cluster": "c", "on_stale": "panic"}),
            "revocation.on_stale",
        ),
        (
            json!({"cluster": "c", "hmac_secret_base64": "!!"}),
            "revocation.hmac_secret_base64",
        ),
        (
            json!({"cluster": "c", "poll_interval_ms": 5}),
            "revocation.poll_interval_ms",
        ),
        (json!({"cluster": "c", "path": "x"}), "revocation.path"),
        (
            json!({"cluster": "c", "namespace": "a b"}),
            "revocation.namespace",
        ),
        (
            json!({"cluster": "c", "pol_interval_ms": 5}),
            "revocation.pol_interval_ms",
        ),
        (json!({"authority": "a"}), "revocation"),
    ] {
        let mut v = base();
        v["revocation"] = block;
        assert_eq!(error_of(v).field, field);
    }
}

#[test]
fn remote_jwks_block() {
    let mut v = base();
    v["providers"][0].as_object_mut().unwrap().remove("jwks");
    v["providers"][0]["remote_jwks"] = json!({"cluster": "idp", "discovery": true});
    let p = load(&v).unwrap();
    match &p.providers[0].keys {
        KeySource::Remote(r) => {
            assert_eq!(r.authority, "idp");
            assert_eq!(r.path, "/.well-known/jwks.json");
            assert_eq!(r.refresh_seconds, 600);
            assert_eq!(r.timeout_ms, 2000);
            assert_eq!(r.unknown_kid_refetch_seconds, 30);
            assert!(r.discovery);
        }
        KeySource::Inline(_) => panic!("expected remote keys"),
    }
    assert_eq!(p.namespace, "jwt_auth");
    let cases = [
        (json!({"cluster": ""}), "providers[0].remote_jwks.cluster"),
        (
            json!({"cluster": "c", "path": "x"}),
            "providers[0].remote_jwks.path",
        ),
        (
            json!({"cluster": "c", "min_refresh_seconds": 0}),
            "providers[0].remote_jwks.min_refresh_seconds",
        ),
        (
            json!({"cluster": "c", "refresh": 5}),
            "providers[0].remote_jwks.refresh",
        ),
    ];
    for (block, field) in cases {
        let mut v = base();
        v["providers"][0].as_object_mut().unwrap().remove("jwks");
        v["providers"][0]["remote_jwks"] = block;
        assert_eq!(error_of(v).field, field);
    }
    let mut both = base();
    both["providers"][0]["remote_jwks"] = json!({"cluster": "idp"});
    assert_eq!(error_of(both).field, "providers[0].remote_jwks");
    let mut discovery_without_issuer = base();
    discovery_without_issuer["providers"][0]
        .as_object_mut()
        .unwrap()
        .remove("jwks");
    discovery_without_issuer["providers"][0]
        .as_object_mut()
        .unwrap()
        .remove("issuer");
    discovery_without_issuer["providers"][0]["remote_jwks"] =
        json!({"cluster": "idp", "discovery": true});
    assert_eq!(
        error_of(discovery_without_issuer).field,
        "providers[0].remote_jwks.discovery"
    );
}

#[test]
fn namespace_is_shared_and_checked() {
    let mut v = base();
    v["namespace"] = json!("team-a.jwt");
    v["revocation"] = json!({"cluster": "c"});
    let p = load(&v).unwrap();
    assert_eq!(p.namespace, "team-a.jwt");
    assert_eq!(p.revocation.unwrap().namespace, "team-a.jwt");
    v["namespace"] = json!("bad space");
    assert_eq!(error_of(v).field, "namespace");
}

#[test]
fn native_verification_defaults_on_and_is_a_bool() {
    assert!(load(&base()).unwrap().native_verification);
    let mut v = base();
    v["native_verification"] = json!(false);
    assert!(!load(&v).unwrap().native_verification);
    v["native_verification"] = json!("no");
    assert_eq!(error_of(v).field, "native_verification");
}

#[test]
fn path_switches_load() {
    let mut v = base();
    v["escaped_slashes"] = json!("match_decoded");
    v["rules"][0]["match"] = json!({"path": "/Ops", "case_sensitive": true});
    let p = load(&v).unwrap();
    assert_eq!(p.escaped_slashes, EscapedSlashes::MatchDecoded);
    assert!(p.rules[0].case_sensitive);
    assert_eq!(p.rules[0].path, PathMatch::Exact("/Ops".into()));
}

#[test]
fn claims_to_filter_state_takes_only_keys_envoy_can_set() {
    let mut v = base();
    v["providers"][0]["claims_to_filter_state"] = json!([{"claim": "sub", "name": "envoy.string"}]);
    let p = load(&v).unwrap();
    assert_eq!(
        p.providers[0].claims_to_filter_state[0].name,
        "envoy.string"
    );
    for (entries, field, needle) in [
        (
            json!([{"claim": "sub", "name": "jwt.sub"}]),
            "providers[0].claims_to_filter_state[0].name",
            "\"jwt.sub\" cannot be set",
        ),
        (
            json!([{"claim": "sub", "name": "envoy.tcp_proxy.cluster"}]),
            "providers[0].claims_to_filter_state[0].name",
            "registered object factory",
        ),
        (
            json!([{"claim": "sub", "name": "envoy.string"}, {"claim": "iss", "name": "envoy.string"}]),
            "providers[0].claims_to_filter_state[1].name",
            "already written",
        ),
        (
            json!([{"claim": "a..b", "name": "envoy.string"}]),
            "providers[0].claims_to_filter_state[0].claim",
            "dotted path",
        ),
        (
            json!([{"claim": "sub", "name": "envoy.string", "span": 1}]),
            "providers[0].claims_to_filter_state[0].span",
            "unknown field",
        ),
    ] {
        let mut v = base();
        v["providers"][0]["claims_to_filter_state"] = entries;
        let e = error_of(v);
        assert_eq!(e.field, field, "{e}");
        assert!(e.message.contains(needle), "{e}");
    }
}

#[test]
fn protected_resource_members_are_checked_by_name() {
    let mut v = base();
    v["protected_resource"] = json!({
        "resource": "https://api.example.com/mcp",
        "authorization_servers": ["https://auth.example.com"],
        "scopes_supported": ["files:read", "admin"],
        "bearer_methods_supported": ["header"],
        "resource_name": "Example API",
        "resource_documentation": "https://docs.example.com/api"
    });
    let p = load(&v).unwrap();
    let r = p.protected_resource.unwrap();
    assert_eq!(
        r.metadata_url,
        "https://api.example.com/.well-known/oauth-protected-resource/mcp"
    );
    let doc: Value = serde_json::from_str(&r.document).unwrap();
    assert_eq!(doc["scopes_supported"], json!(["files:read", "admin"]));
    assert_eq!(doc["resource_name"], "Example API");
    for (member, value, field, needle) in [
        (
            "resource",
            json!("http://api.example.com"),
            "protected_resource.resource",
            "https",
        ),
        (
            "resource",
            json!("https://api.example.com/a#f"),
            "protected_resource.resource",
            "fragment",
        ),
        (
            "resource",
            json!("https:///x"),
            "protected_resource.resource",
            "host",
        ),
        (
            "resource",
            json!("https://a\"b"),
            "protected_resource.resource",
            "quotes",
        ),
        (
            "authorization_servers",
            json!(["https://ok", "auth"]),
            "protected_resource.authorization_servers[1]",
            "https",
        ),
        (
            "scopes_supported",
            json!(["a b"]),
            "protected_resource.scopes_supported[0]",
            "scope token",
        ),
        (
            "bearer_methods_supported",
            json!(["cookie"]),
            "protected_resource.bearer_methods_supported[0]",
            "\"cookie\"",
        ),
        (
            "resource_name",
            json!(" "),
            "protected_resource.resource_name",
            "empty",
        ),
        (
            "resource_documentation",
            json!("docs"),
            "protected_resource.resource_documentation",
            "URL",
        ),
        (
            "extra",
            json!(1),
            "protected_resource.extra",
            "unknown field",
        ),
    ] {
        let mut v = base();
        v["protected_resource"] = json!({"resource": "https://api.example.com"});
        v["protected_resource"][member] = value;
        let e = error_of(v);
        assert_eq!(e.field, field, "{e}");
        assert!(e.message.contains(needle), "{e}");
    }
    let mut v = base();
    v["protected_resource"] = json!({"authorization_servers": []});
    assert!(error_of(v).message.contains("resource"));
}
