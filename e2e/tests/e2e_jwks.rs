//! End-to-end remote keys, several providers and permission rules: the real
//! Envoy at `--concurrency 2` fetches a JWKS from a server written here.
//! Assertions are on statuses, on what the upstream received, and on how
//! many requests the JWKS server saw.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::*;

const ISS: &str = "https://idp.test/realms/main";

#[derive(Clone)]
struct Idp {
    jwks: Arc<Mutex<Value>>,
    status: Arc<Mutex<u16>>,
    cache_control: Arc<Mutex<Option<String>>>,
}

impl Idp {
    fn new(keys: Vec<Value>) -> Idp {
        Idp {
            jwks: Arc::new(Mutex::new(jwks(keys))),
            status: Arc::new(Mutex::new(200)),
            cache_control: Arc::new(Mutex::new(None)),
        }
    }

    fn serve_on(&self, port: u16) -> HttpServer {
        let idp = self.clone();
        HttpServer::start_on(port, move |req: &Recorded| {
            let status = *idp.status.lock().unwrap();
            if status != 200 {
                return Reply::json(status, &json!({"error": "down"}));
            }
            if req.path == "/realms/main/.well-known/openid-configuration" {
                return Reply::json(
                    200,
                    &json!({"issuer": ISS, "jwks_uri": "https://idp.test/realms/main/certs"}),
                );
            }
            let mut reply = Reply::json(200, &idp.jwks.lock().unwrap());
            if let Some(cc) = idp.cache_control.lock().unwrap().clone() {
                reply = reply.header("cache-control", &cc);
            }
            reply
        })
    }

    fn set_keys(&self, keys: Vec<Value>) {
        *self.jwks.lock().unwrap() = jwks(keys);
    }
}

fn rsa_a() -> Key {
    Key::rsa2048().with_kid("key-a")
}

fn rsa_b() -> Key {
    Key::rsa2048_b().with_kid("key-b")
}

fn claims(sub: &str) -> Value {
    let now = now();
    json!({"iss": ISS, "aud": "api", "sub": sub, "iat": now - 5, "exp": now + 3600})
}

fn token(key: &Key, sub: &str) -> String {
    mint("RS256", key, &json!({}), &claims(sub))
}

fn remote(port_cluster: &str, extra: Value) -> Value {
    let mut remote = json!({"cluster": port_cluster, "authority": "idp.test",
        "path": "/realms/main/certs", "refresh_seconds": 600, "timeout_ms": 1500,
        "unknown_kid_refetch_seconds": 2, "max_backoff_ms": 1000});
    for (k, v) in extra.as_object().unwrap() {
        remote[k] = v.clone();
    }
    json!({
        "realm": "api",
        "providers": [{
            "name": "idp", "issuer": ISS, "audiences": ["api"],
            "remote_jwks": remote,
            "claim_to_headers": [{"claim": "sub", "header": "x-user-id"}]
        }]
    })
}

fn start(config: &Value, idp_port: u16) -> Envoy {
    Envoy::builder()
        .plugin_config_json(config)
        .concurrency(2)
        .cluster("idp", idp_port)
        .start()
}

fn get(envoy: &Envoy, token: &str) -> Response {
    let auth = format!("Bearer {token}");
    envoy.get("/r", &[("authorization", &auth), ("connection", "close")])
}

fn jwks_fetches(server: &HttpServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path == "/realms/main/certs")
        .count()
}

#[test]
fn keys_fetched_once_per_proxy_and_rotation_picked_up() {
    let idp = Idp::new(vec![rsa_a().jwk(Some("RS256"))]);
    let server = idp.serve_on(0);
    let envoy = start(&remote("idp", json!({"refresh_seconds": 2})), server.port());
    let a = token(&rsa_a(), "alice");
    assert!(
        wait_until(Duration::from_secs(5), || get(&envoy, &a).status == 200),
        "{}",
        envoy.log()
    );
    let r = get(&envoy, &a);
    assert_eq!(r.echo().header("x-user-id"), vec!["alice"]);

    // Refresh every 2 s: over 6 s one fetcher makes about 3 fetches (one
    // more when the fetching VM changes); one fetch per VM (3 VMs) would
    // make about 9.
    let before = jwks_fetches(&server);
    thread::sleep(Duration::from_secs(6));
    let fetched = jwks_fetches(&server) - before;
    assert!((2..=5).contains(&fetched), "{fetched} JWKS fetches in 6 s");

    // Rotation: the IdP signs with a new key; the unknown kid triggers an
    // early refetch and the new token is accepted within the rate limit.
    // Rotate right after a scheduled refresh, so the next one (2 s later)
    // cannot pick the new key up before the first request below.
    let seen = jwks_fetches(&server);
    assert!(
        wait_until(Duration::from_secs(4), || jwks_fetches(&server) > seen),
        "no scheduled refresh within 4 s"
    );
    idp.set_keys(vec![rsa_b().jwk(Some("RS256"))]);
    let b = token(&rsa_b(), "bob");
    let first = get(&envoy, &b);
    assert_eq!(first.status, 401);
    assert!(first
        .header("www-authenticate")
        .unwrap()
        .contains("unknown kid"));
    assert!(
        wait_until(Duration::from_secs(3), || get(&envoy, &b).status == 200),
        "rotation not picked up; log:\n{}",
        envoy.log()
    );
    // Each worker takes the new set from shared data on its own tick, so
    // the retired key goes worker by worker: wait for it to be refused,
    // then every connection (spread over both workers) must agree.
    assert!(
        wait_until(Duration::from_secs(2), || get(&envoy, &a).status == 401),
        "the retired key is still accepted; log:\n{}",
        envoy.log()
    );
    thread::sleep(Duration::from_millis(500));
    for _ in 0..8 {
        assert_eq!(get(&envoy, &a).status, 401, "the retired key is gone");
        assert_eq!(get(&envoy, &b).status, 200, "the new key is in use");
    }
    assert!(
        envoy
            .stat("wasmcustom.jwt_auth.jwks.idp.fetch_ok")
            .unwrap_or(0)
            >= 2
    );
    assert_eq!(envoy.stat("wasmcustom.jwt_auth.jwks.idp.keys"), Some(1));
}

#[test]
fn server_down_at_start_then_up() {
    let idp = Idp::new(vec![rsa_a().jwk(Some("RS256"))]);
    let port = free_port();
    let envoy = start(&remote("idp", json!({"timeout_ms": 2500})), port);
    let a = token(&rsa_a(), "alice");
    let started = Instant::now();
    let r = get(&envoy, &a);
    let waited = started.elapsed();
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("error_description=\"signing keys unavailable\""),
        "{:?}",
        r.header("www-authenticate")
    );
    assert!(
        waited >= Duration::from_millis(2400),
        "the request waited for keys: {waited:?}"
    );
    assert!(
        envoy.upstream().request_count() == 0,
        "never an allow without keys"
    );

    // A request that arrives while keys are missing waits and is let
    // through once they arrive.
    let waiter = thread::spawn({
        let port = envoy.port();
        let auth = format!("Bearer {a}");
        move || request(port, "GET", "/r", &[("authorization", &auth)])
    });
    thread::sleep(Duration::from_millis(200));
    let _server = idp.serve_on(port);
    let resumed = waiter.join().unwrap();
    assert_eq!(
        resumed.status, 200,
        "paused request resumed when keys arrived: {}",
        resumed.body
    );
    assert_eq!(resumed.echo().header("x-user-id"), vec!["alice"]);
    assert!(wait_until(Duration::from_secs(5), || get(&envoy, &a)
        .status
        == 200));
}

#[test]
fn server_down_later_keeps_last_good_keys_and_kid_floods_are_rate_limited() {
    let idp = Idp::new(vec![rsa_a().jwk(Some("RS256"))]);
    let server = idp.serve_on(0);
    let envoy = start(&remote("idp", json!({})), server.port());
    let a = token(&rsa_a(), "alice");
    assert!(wait_until(Duration::from_secs(5), || get(&envoy, &a)
        .status
        == 200));

    // A flood of tokens with random kids: at most one early refetch per
    // 2 s interval, not one per token.
    let before = jwks_fetches(&server);
    let started = Instant::now();
    let body = b64url(claims("mallory").to_string());
    for i in 0..200 {
        // The kid is looked up before any signature check, so the
        // signature bytes do not matter here.
        let header = json!({"alg": "RS256", "kid": format!("random-{i}-{}", random_id())});
        let forged = format!(
            "{}.{body}.{}",
            b64url(header.to_string()),
            b64url([7u8; 256])
        );
        let r = get(&envoy, &forged);
        assert_eq!(r.status, 401);
        assert!(r
            .header("www-authenticate")
            .unwrap()
            .contains("unknown kid"));
    }
    let elapsed = started.elapsed().as_secs() + 1;
    let fetched = jwks_fetches(&server) - before;
    assert!(
        fetched as u64 <= elapsed / 2 + 2,
        "{fetched} JWKS fetches for 200 random kids in {elapsed} s"
    );

    // The server fails from now on: tokens are still verified with the
    // last good keys.
    *idp.status.lock().unwrap() = 500;
    // Unknown kids keep asking for a refetch (each VM signals at most once
    // a second, the fetcher fetches at most once per 2 s), until one fails.
    assert!(
        wait_until(Duration::from_secs(10), || {
            let forced = format!(
                "{}.{body}.{}",
                b64url(json!({"alg": "RS256", "kid": random_id()}).to_string()),
                b64url([7u8; 256])
            );
            get(&envoy, &forced);
            envoy
                .stat("wasmcustom.jwt_auth.jwks.idp.fetch_failed")
                .unwrap_or(0)
                > 0
        }),
        "no failed fetch recorded"
    );
    for _ in 0..10 {
        assert_eq!(get(&envoy, &a).status, 200, "last good keys kept");
    }
    assert!(envoy.wait_for_log("keeping the last good keys", Duration::from_secs(5)));
}

#[test]
fn openid_discovery_finds_the_keys() {
    let idp = Idp::new(vec![rsa_a().jwk(Some("RS256"))]);
    let server = idp.serve_on(0);
    let envoy = start(
        &remote("idp", json!({"discovery": true, "path": "/wrong"})),
        server.port(),
    );
    let a = token(&rsa_a(), "alice");
    assert!(
        wait_until(Duration::from_secs(5), || get(&envoy, &a).status == 200),
        "log:\n{}",
        envoy.log()
    );
    assert!(server.saw_path_prefix("/realms/main/.well-known/openid-configuration"));
    assert!(!server.saw_path_prefix("/wrong"));
}

#[test]
fn mixed_good_and_bad_keys_keep_the_good_ones() {
    let weak = Key::rsa1024().with_kid("weak").jwk(Some("RS256"));
    let idp = Idp::new(vec![weak, rsa_a().jwk(Some("RS256"))]);
    let server = idp.serve_on(0);
    let envoy = start(&remote("idp", json!({})), server.port());
    let a = token(&rsa_a(), "alice");
    assert!(wait_until(Duration::from_secs(5), || get(&envoy, &a)
        .status
        == 200));
    assert!(
        envoy.wait_for_log("JWKS key skipped", Duration::from_secs(5)),
        "the bad key is logged"
    );
}

#[test]
fn issuer_selects_provider_and_permissions_are_403() {
    let partner_iss = "https://partner.test";
    let config = json!({
        "realm": "api",
        "providers": [
            {"name": "main", "issuer": ISS, "audiences": ["api"],
             "jwks": {"keys": [rsa_a().jwk(Some("RS256"))]},
             "claim_to_headers": [{"claim": "sub", "header": "x-user-id"}, {"claim": "iss", "header": "x-auth-issuer"}]},
            {"name": "partner", "issuer": partner_iss, "audiences": ["api"],
             "jwks": {"keys": [rsa_b().jwk(Some("RS256"))]},
             "claim_to_headers": [{"claim": "sub", "header": "x-user-id"}, {"claim": "iss", "header": "x-auth-issuer"}]}
        ],
        "rules": [
            {"match": {"prefix": "/admin"}, "requires": {"providers": ["main"], "permissions": {"claim": "scope", "all_of": ["admin"]}}},
            {"match": {"prefix": "/ops"}, "requires": {"claims": {"role": ["ops", "sre"]}}},
            {"match": {"prefix": "/"}, "requires": {"providers": ["main", "partner"]}}
        ]
    });
    let envoy = Envoy::builder()
        .plugin_config_json(&config)
        .concurrency(2)
        .start();
    let mut partner_claims = claims("pat");
    partner_claims["iss"] = json!(partner_iss);
    let partner = mint("RS256", &rsa_b(), &json!({}), &partner_claims);
    let auth = |t: &str| format!("Bearer {t}");
    let r = envoy.get("/x", &[("authorization", &auth(&partner))]);
    assert_eq!(r.status, 200);
    assert_eq!(r.echo().header("x-auth-issuer"), vec![partner_iss]);
    // Signed by main's key but claiming the partner's issuer: only the
    // partner's keys are tried, so it fails.
    let forged = mint("RS256", &rsa_a(), &json!({}), &partner_claims);
    assert_eq!(
        envoy.get("/x", &[("authorization", &auth(&forged))]).status,
        401
    );

    let mut admin = claims("root");
    admin["scope"] = json!("read admin");
    let admin = mint("RS256", &rsa_a(), &json!({}), &admin);
    let plain = token(&rsa_a(), "joe");
    let cases: Vec<(&str, Option<String>, u16, &str)> = vec![
        ("/admin", Some(admin.clone()), 200, ""),
        ("/admin", Some(plain.clone()), 403, "insufficient_scope"),
        ("/admin", Some(partner.clone()), 401, "invalid_token"),
        ("/admin", None, 401, ""),
        ("/admin", Some("x.y.z".into()), 401, "invalid_token"),
        ("/ops", Some(plain.clone()), 403, "insufficient_scope"),
        ("/ops", None, 401, ""),
    ];
    for (path, tok, status, error) in cases {
        let headers: Vec<(&str, String)> = tok.iter().map(|t| ("authorization", auth(t))).collect();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let r = envoy.get(path, &headers);
        assert_eq!(r.status, status, "{path} {tok:?}: {}", r.body);
        let www = r.header("www-authenticate").unwrap_or("");
        if status == 403 {
            assert!(www.contains("error=\"insufficient_scope\""), "{www}");
            assert_eq!(r.json()["error"], "insufficient_scope");
            assert_eq!(r.header("content-type"), Some("application/json"));
        } else if status == 401 && !error.is_empty() {
            assert!(www.contains(&format!("error=\"{error}\"")), "{www}");
        }
    }
    assert!(
        envoy
            .stat_at_least("wasmcustom.jwt_auth.denied.insufficient_permissions", 1)
            .unwrap_or(0)
            >= 1
    );
}
