//! What one request, connection or plugin knows stays there: nothing
//! carries over on a kept-alive connection, and plugins sharing a proxy keep
//! their keys and revocations apart.

use super::harness::*;

/// (path, headers, expected x-user-id: None = 401, "" = none).
type Step<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<&'a str>);

/// Several requests on ONE connection per protocol, alternating identities,
/// spoofs and refusals: nothing carries over between requests or streams.
#[test]
fn no_state_carries_over_on_one_connection() {
    let envoy = start("DROP_HEADER");
    let alice = bearer(&token_for("alice"));
    let bob = bearer(&token_for("bob"));
    let steps: Vec<Step> = vec![
        ("/api/1", vec![("authorization", &alice)], Some("alice")),
        ("/api/2", vec![("x-user-id", "mallory")], None),
        ("/healthz", vec![("x-user-id", "mallory")], Some("")),
        (
            "/api/3",
            vec![("authorization", &bob), ("x-user-id", "mallory")],
            Some("bob"),
        ),
        ("/public/4", vec![], Some("")),
        ("/api/5", vec![("authorization", "Bearer x.y.z")], None),
        ("/api/6", vec![("authorization", &alice)], Some("alice")),
    ];
    let mut failures = Vec::new();
    // HTTP/1.1 keep-alive.
    let mut conn = Connection::open(envoy.port());
    for (i, (path, headers, want)) in steps.iter().enumerate() {
        let resp = conn.send("GET", path, headers, b"");
        check_step("H1", i, &resp, *want, &mut failures);
    }
    // HTTP/2: streams 1, 3, 5, ... on one connection.
    let mut conn = H2Connection::open(envoy.port());
    for (i, (path, headers, want)) in steps.iter().enumerate() {
        let hs: Vec<(&[u8], &[u8])> = headers
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        let resp = conn.send("GET", path, &hs, b"").response();
        check_step("H2", i, &resp, *want, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn check_step(
    proto: &str,
    i: usize,
    resp: &Response,
    want: Option<&str>,
    failures: &mut Vec<String>,
) {
    match want {
        None => {
            if resp.status != 401 {
                failures.push(format!(
                    "{proto} step {i}: expected 401, got {}",
                    resp.status
                ));
            }
        }
        Some(u) => {
            if resp.status != 200 {
                failures.push(format!(
                    "{proto} step {i}: expected 200, got {} {}",
                    resp.status, resp.body
                ));
                return;
            }
            let got = Echo::parse(&resp.body).header("x-user-id");
            let want: Vec<String> = if u.is_empty() {
                vec![]
            } else {
                vec![u.to_string()]
            };
            if got != want {
                failures.push(format!(
                    "{proto} step {i}: upstream x-user-id {got:?}, expected {want:?}"
                ));
            }
        }
    }
}

/// Two plugins of one proxy (same VM, as Istio runs WasmPlugins), each with
/// a provider named `main` and the default namespace, trusting different
/// identity providers and polling different feeds: neither ever takes the
/// other's keys or revocations, however often both refresh.
#[test]
fn plugins_sharing_a_proxy_keep_their_keys_and_revocations_apart() {
    const FEED_SECRET: &[u8] = b"two-plugin-feed-secret-32-bytes!";
    const READ: &str = "two-plugin-read-token";
    let (key_a, key_b) = (Key::rsa2048().with_kid("k"), Key::rsa2048_b().with_kid("k"));
    let idp = |key: &Key| {
        let body = jwks_json([key.jwk(Some("RS256"))]);
        HttpServer::start(move |_| Reply::new(200, "application/json", body.clone()))
    };
    let (idp_a, idp_b) = (idp(&key_a), idp(&key_b));
    let (feed_a, feed_b) = (
        FakeFeed::start(FEED_SECRET, READ),
        FakeFeed::start(FEED_SECRET, READ),
    );
    feed_a.revoke_jti("revoked-for-a");
    feed_b.revoke_jti("revoked-for-b");
    let plugin = |idp: &str, feed: &str, header: &str, requires: Value| {
        json!({
            "providers": [{"name": "main",
                "remote_jwks": {"cluster": idp, "refresh_seconds": 1, "min_refresh_seconds": 1},
                "claim_to_headers": [{"claim": "sub", "header": header}]}],
            "rules": [{"match": {"prefix": "/"}, "requires": requires}],
            "revocation": {"cluster": feed, "poll_interval_ms": 200, "sync_interval_ms": 50,
                "wait_ms": 0, "bearer_token": READ,
                "hmac_secret_base64": b64std(FEED_SECRET)}
        })
    };
    let envoy = Envoy::builder()
        .plugin_config_json(&plugin("idp_a", "feed_a", "x-user-id", json!({})))
        .another_plugin(
            "second",
            &plugin("idp_b", "feed_b", "x-second-user", json!("none")),
        )
        .cluster("idp_a", idp_a.port())
        .cluster("idp_b", idp_b.port())
        .cluster("feed_a", feed_a.port())
        .cluster("feed_b", feed_b.port())
        .concurrency(2)
        .start();
    let token = |key: &Key, jti: &str| {
        mint(
            "RS256",
            key,
            &json!({}),
            &json!({"sub": "u", "jti": jti, "exp": now() + 600}),
        )
    };
    let status = |t: &str| {
        let auth = format!("Bearer {t}");
        envoy
            .get("/x", &[("authorization", &auth), ("connection", "close")])
            .status
    };
    let ours = token(&key_a, "fine");
    assert!(
        wait_until(Duration::from_secs(10), || (0..4)
            .all(|_| status(&ours) == 200)),
        "the first plugin never got its keys: {}",
        envoy.log()
    );
    assert!(
        wait_until(Duration::from_secs(5), || (0..4)
            .all(|_| status(&token(&key_a, "revoked-for-a")) == 401)),
        "the first plugin's feed never applied"
    );
    // Both plugins refresh their keys and poll their feeds every second or
    // faster for three seconds: the first plugin never trusts the second
    // provider's key, and never takes the second feed's revocations.
    let theirs = token(&key_b, "fine");
    let not_ours = token(&key_a, "revoked-for-b");
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < until {
        assert_eq!(
            status(&theirs),
            401,
            "a key of the other plugin's provider verified"
        );
        assert_eq!(
            status(&not_ours),
            200,
            "the other plugin's revocation applied"
        );
        assert_eq!(status(&ours), 200);
    }
}
