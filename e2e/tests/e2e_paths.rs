//! Nobody walks around the rules through the path: under Envoy's own path
//! defaults (no normalization at all), Istio-like defaults (normalization
//! only) and the recommended settings, over HTTP/1.1 and h2c, a request
//! without a token never reaches the upstream at a path that a lenient
//! backend would serve from a protected prefix, a token without the needed
//! permission never reaches a permission-protected path, and paths that are
//! not ambiguous reach the upstream with their exact bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::{json, Value};
use testkit::h2::{H2Connection, H2Outcome};
use testkit::*;

const ISS: &str = "https://paths.test";

fn plugin_config(key: &Key) -> Value {
    json!({
        "providers": [{"name": "main", "issuer": ISS, "jwks": jwks([key.jwk(Some("HS256"))]),
                       "claim_to_headers": [{"claim": "sub", "header": "x-user-id"}]}],
        "rules": [
            {"match": {"prefix": "/healthz"}, "requires": "none"},
            {"match": {"prefix": "/public"}, "requires": {"providers": ["main"], "allow_missing": true}},
            {"match": {"prefix": "/admin"}, "requires": {"permissions": {"claim": "scope", "all_of": ["admin"]}}},
            {"match": {"prefix": "/Internal", "case_sensitive": true},
             "requires": {"permissions": {"claim": "scope", "all_of": ["internal"]}}},
            {"match": {"path": "/ops", "methods": ["POST"]}, "requires": {"claims": {"role": ["ops"]}}},
            {"match": {"prefix": "/"}, "requires": {"providers": ["main"]}}
        ]
    })
}

/// The three connection-manager settings a filter meets.
fn settings() -> Vec<(&'static str, bool, bool, &'static str)> {
    vec![
        ("Envoy defaults", false, false, "KEEP_UNCHANGED"),
        ("Istio-like defaults", true, false, "KEEP_UNCHANGED"),
        ("recommended", true, true, "REJECT_REQUEST"),
    ]
}

/// The tricks: each a method and a request target.
fn tricks() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for target in ["admin", "admin/users", "x", "Internal/x"] {
        for escape in [
            "..%2F",
            "..%2f",
            "..%5C",
            "..%5c",
            "%2e%2e/",
            "%2E%2E/",
            ".%2e/",
            "%2e./",
            "%252e%252e/",
            "%252E%252E%252F",
            "..%252F",
            "..;/",
            "..;x=1/",
            "..\\",
            "../",
            "./../",
            "..//",
            "%2e%2e%2f",
            "..%c0%af",
        ] {
            for bypass in [
                "/healthz/",
                "/public/",
                "/healthz;x/",
                "/HEALTHZ/",
                "/healthz//",
            ] {
                out.push(("GET", format!("{bypass}{escape}{target}")));
            }
        }
    }
    for path in [
        "/healthz\\..\\admin",
        "/healthz%00/../admin",
        "/healthz/..%00/admin",
        "/healthz/%2e%2e%00/admin",
        "//admin",
        "///admin/x",
        "/ADMIN",
        "/Admin/users",
        "/admin;jsessionid=1",
        "/admin%3Bx",
        "/%61dmin",
        "/%41DMIN",
        "/admin%00",
        "/admin/",
        "/admin.json",
        "/internal/x",
        "/INTERNAL/x",
        "/Internal;x/y",
        "/%49nternal/x",
        "/Internal%2Fx",
        "/public/../Internal/x",
        "admin",
        "healthz/../admin",
        "*",
        "http://127.0.0.1/admin",
        "/healthz?/../admin",
        "/healthz#/../admin",
        "/public/%2e%2e%2fadmin",
    ] {
        out.push(("GET", path.to_string()));
    }
    for path in [
        "/ops",
        "/ops/",
        "/ops;x=1",
        "/OPS",
        "/Ops/",
        "/ops%2F",
        "/x/../ops",
        "/healthz/../ops",
        "/healthz/..;/ops",
        "/ops/.",
        "/ops//",
        "//ops",
        "/%6Fps",
    ] {
        out.push(("POST", path.to_string()));
    }
    out
}

/// What a lenient backend serves for `target`: it decodes percent-escapes
/// until nothing changes, takes `\` for `/`, cuts `;parameters`, resolves
/// dot segments (clamped at the root) and merges slashes. Letter case is
/// kept: the rules say which prefixes ignore it.
fn lenient_backend_path(target: &str) -> String {
    let mut text = target.to_string();
    if let Some(rest) = text.strip_prefix("http://") {
        text = rest.find('/').map_or("/".into(), |i| rest[i..].to_string());
    }
    let mut path = text.split(['?', '#']).next().unwrap().to_string();
    for _ in 0..4 {
        path = percent_decode(&path);
    }
    let path = path.replace('\\', "/");
    let mut segments: Vec<String> = Vec::new();
    for raw in path.split('/') {
        let segment = raw.split(';').next().unwrap().trim_end_matches('\0');
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s.to_string()),
        }
    }
    format!("/{}", segments.join("/"))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `path` is `prefix` or below it, ignoring letter case as a
/// case-insensitive router would.
fn under(path: &str, prefix: &str) -> bool {
    under_exactly(&path.to_ascii_lowercase(), &prefix.to_ascii_lowercase())
}

/// [`under`] for a backend that tells letter case apart (the one a
/// `case_sensitive` rule is written for).
fn under_exactly(path: &str, prefix: &str) -> bool {
    path == prefix
        || path.starts_with(&format!("{prefix}/"))
        || path.starts_with(&format!("{prefix}."))
}

/// A path a request without a token may reach: the bypass and the
/// optional prefix.
fn open_to_anyone(path: &str) -> bool {
    under(path, "/healthz") || under(path, "/public")
}

/// A path a token without `scope: admin`/`internal` and `role: ops` may
/// reach with `method`.
fn open_to_a_plain_token(method: &str, path: &str) -> bool {
    let protected = under(path, "/admin")
        || under_exactly(path, "/Internal")
        || (method == "POST" && path.eq_ignore_ascii_case("/ops"));
    !protected
}

enum Protocol {
    Http1,
    H2c,
}

/// Sends one request; returns the status (None when the connection was
/// refused or reset) and the target the upstream received, if it did.
fn send(
    envoy: &Envoy,
    protocol: &Protocol,
    method: &str,
    target: &str,
    token: Option<&str>,
) -> (Option<u16>, Option<String>) {
    envoy.upstream().clear();
    let auth = token.map(|t| format!("Bearer {t}"));
    let status = match protocol {
        Protocol::Http1 => {
            let mut head = format!("{method} {target} HTTP/1.1\r\nhost: paths.test\r\nconnection: close\r\ncontent-length: 0\r\n");
            if let Some(auth) = &auth {
                head.push_str(&format!("authorization: {auth}\r\n"));
            }
            head.push_str("\r\n");
            try_raw_request(envoy.port(), head.as_bytes())
                .ok()
                .map(|r| r.status)
        }
        Protocol::H2c => {
            let headers: Vec<(&[u8], &[u8])> = auth
                .iter()
                .map(|a| (&b"authorization"[..], a.as_bytes()))
                .collect();
            match H2Connection::open(envoy.port()).send(method, target, &headers, b"") {
                H2Outcome::Response(r) => Some(r.status),
                _ => None,
            }
        }
    };
    let seen = envoy.upstream().requests().first().map(|r| r.path.clone());
    (status, seen)
}

fn run_matrix(protocol: Protocol, name: &str) {
    let key = Key::hs(256);
    let plain = mint(
        "HS256",
        &key,
        &json!({}),
        &json!({"iss": ISS, "sub": "pat", "scope": "read", "exp": now() + 600}),
    );
    let mut report = Vec::new();
    let mut refused = 0;
    for (setting, normalize, merge, escaped) in settings() {
        let envoy = Envoy::builder()
            .plugin_config_json(&plugin_config(&key))
            .path_normalization(normalize, merge)
            .path_with_escaped_slashes_action(escaped)
            .concurrency(1)
            .start();
        for (method, target) in tricks() {
            let served = lenient_backend_path(&target);
            let (status, seen) = send(&envoy, &protocol, method, &target, None);
            if let Some(seen) = &seen {
                let reached = lenient_backend_path(seen);
                if !open_to_anyone(&reached) {
                    report.push(format!(
                        "{setting}: {method} {target} without a token reached the upstream as {seen} ({reached})"
                    ));
                }
            } else {
                refused += 1;
                assert!(
                    status.is_none_or(|s| s >= 400),
                    "{setting}: {method} {target}: status {status:?} without the upstream"
                );
            }
            let (_, seen) = send(&envoy, &protocol, method, &target, Some(&plain));
            if let Some(seen) = &seen {
                let reached = lenient_backend_path(seen);
                if !open_to_a_plain_token(method, &reached) {
                    report.push(format!(
                        "{setting}: {method} {target} with a plain token reached the upstream as {seen} ({reached}, served {served})"
                    ));
                }
            }
        }
        // Paths that are not ambiguous reach the upstream exactly as sent.
        for (method, target, token) in [
            ("GET", "/healthz/live", None),
            ("GET", "/public/a.css?v=1", None),
            ("GET", "/docs/Read-Me_1.0~x", Some(plain.as_str())),
            ("GET", "/HEALTHZ", None),
            ("POST", "/opsx", Some(plain.as_str())),
        ] {
            let (status, seen) = send(&envoy, &protocol, method, target, token);
            if status != Some(200) || seen.as_deref() != Some(target) {
                report.push(format!(
                    "{setting}: {method} {target} got {status:?} and reached the upstream as {seen:?}"
                ));
            }
        }
        if envoy.log().contains("panicked") {
            report.push(format!("{setting}: the filter panicked:\n{}", envoy.log()));
        }
    }
    assert!(report.is_empty(), "{name}:\n{}", report.join("\n"));
    assert!(refused > 0, "{name}: nothing was refused at all");
}

#[test]
fn no_path_walks_around_the_rules_over_http1() {
    run_matrix(Protocol::Http1, "HTTP/1.1");
}

#[test]
fn no_path_walks_around_the_rules_over_h2c() {
    run_matrix(Protocol::H2c, "h2c");
}

#[test]
fn an_ambiguous_path_gets_a_400_with_its_reason_and_a_counter() {
    let key = Key::hs(256);
    let envoy = Envoy::builder()
        .plugin_config_json(&plugin_config(&key))
        .path_normalization(false, false)
        .path_with_escaped_slashes_action("KEEP_UNCHANGED")
        .concurrency(1)
        .start();
    let resp = envoy.get("/healthz/..%2Fadmin", &[]);
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.header("www-authenticate"),
        Some(
            "Bearer realm=\"api\", error=\"invalid_request\", error_description=\"ambiguous path\""
        )
    );
    assert_eq!(resp.json()["error_description"], "ambiguous path");
    assert_eq!(envoy.upstream().request_count(), 0);
    let counted = time_until(Duration::from_secs(5), Duration::from_millis(50), || {
        envoy.stat("wasmcustom.jwt_auth.denied.ambiguous_path") == Some(1)
    });
    assert!(counted.is_some(), "{}", envoy.stats());
}

#[test]
fn a_large_token_from_a_group_heavy_provider_is_accepted() {
    let key = Key::hs(256);
    let envoy = Envoy::builder()
        .plugin_config_json(&plugin_config(&key))
        .concurrency(1)
        .start();
    let groups: Vec<String> = (0..700).map(|i| format!("group-{i:05}")).collect();
    let token = mint(
        "HS256",
        &key,
        &json!({}),
        &json!({"iss": ISS, "sub": "gwen", "groups": groups, "exp": now() + 600}),
    );
    assert!((12_000..16_000).contains(&token.len()), "{}", token.len());
    let resp = envoy.get("/x", &[("authorization", &format!("Bearer {token}"))]);
    assert_eq!(resp.echo().header("x-user-id"), vec!["gwen"]);
}
