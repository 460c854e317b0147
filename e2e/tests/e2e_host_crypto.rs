//! The accelerated signature path inside the real Envoy: the self-test
//! enables the host's native verifier for RS* and ES* (Envoy's own crypto
//! for the wasm module, AWS-LC in the dynamic module), and tokens, valid or
//! broken in every way an ECDSA signature can be, get the same answers as
//! the pure-Rust path, which runs the same table inside Envoy with
//! `native_verification: false`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;
use testkit::*;

const ISS: &str = "https://native.test";

fn config(cache: usize, native: bool) -> serde_json::Value {
    json!({
        "realm": "api",
        "native_verification": native,
        "providers": [{
            "name": "p", "issuer": ISS, "audiences": ["api"],
            "jwks": {"keys": [
                Key::rsa2048().with_kid("rsa").jwk(None),
                Key::p256().with_kid("p256").jwk(Some("ES256")),
                Key::p384().with_kid("p384").jwk(Some("ES384")),
                Key::p521().with_kid("p521").jwk(Some("ES512")),
                Key::ed25519().with_kid("ed").jwk(Some("EdDSA"))
            ]},
            "claim_to_headers": [{"claim": "sub", "header": "x-user-id"}],
            "token_cache": {"max_entries": cache}
        }]
    })
}

fn claims() -> serde_json::Value {
    json!({"iss": ISS, "aud": "api", "sub": "native-user", "exp": now() + 600, "iat": now() - 5})
}

/// A token whose signature bytes are replaced.
fn with_signature(token: &str, sig: &[u8]) -> String {
    let (head, _) = token.rsplit_once('.').unwrap();
    format!("{head}.{}", b64url(sig))
}

#[test]
fn native_path_is_enabled_and_agrees_on_every_case() {
    for (cache, native) in [(0, true), (1000, true), (0, false)] {
        let envoy = Envoy::builder()
            .plugin_config_json(&config(cache, native))
            .start();
        let expected_log = if native {
            "native signature verification for RS256, RS384, RS512, ES256, ES384, ES512"
        } else {
            "native signature verification turned off (native_verification: false)"
        };
        assert!(
            envoy.wait_for_log(expected_log, std::time::Duration::from_secs(5)),
            "log does not say {expected_log:?}:\n{}",
            envoy.log()
        );
        let mut failures = Vec::new();
        for (alg, key) in [
            ("RS256", Key::rsa2048().with_kid("rsa")),
            ("RS512", Key::rsa2048().with_kid("rsa")),
            ("PS256", Key::rsa2048().with_kid("rsa")),
            ("ES256", Key::p256().with_kid("p256")),
            ("ES384", Key::p384().with_kid("p384")),
            ("ES512", Key::p521().with_kid("p521")),
            ("EdDSA", Key::ed25519().with_kid("ed")),
        ] {
            let good = mint(alg, &key, &json!({}), &claims());
            let (_, _, sig) = decode_parts(&good);
            let n = sig.len();
            let half = n / 2;
            let mut cases: Vec<(&str, String, u16)> = vec![
                ("valid", good.clone(), 200),
                ("valid again", good.clone(), 200),
            ];
            let mut flipped = sig.clone();
            flipped[n - 1] ^= 1;
            cases.push(("last bit flipped", with_signature(&good, &flipped), 401));
            cases.push(("truncated", with_signature(&good, &sig[..n - 1]), 401));
            cases.push((
                "extended",
                with_signature(&good, &[sig.clone(), vec![0]].concat()),
                401,
            ));
            cases.push((
                "r zero",
                with_signature(&good, &[vec![0; half], sig[half..].to_vec()].concat()),
                401,
            ));
            cases.push((
                "s zero",
                with_signature(&good, &[sig[..half].to_vec(), vec![0; n - half]].concat()),
                401,
            ));
            cases.push(("all 0xff", with_signature(&good, &vec![0xff; n]), 401));
            cases.push((
                "r = 1, s high bit",
                with_signature(&good, &{
                    let mut v = vec![0u8; n];
                    v[half - 1] = 1;
                    v[half] = 0x80;
                    v
                }),
                401,
            ));
            for (what, token, status) in cases {
                let auth = format!("Bearer {token}");
                let r = envoy.get("/x", &[("authorization", &auth)]);
                if r.status != status {
                    failures.push(format!(
                        "cache {cache} native {native} {alg} {what}: {} {}",
                        r.status, r.body
                    ));
                } else if status == 200 && r.echo().header("x-user-id") != vec!["native-user"] {
                    failures.push(format!(
                        "cache {cache} native {native} {alg} {what}: identity missing"
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }
}

/// ECDSA takes `s` and `n - s` alike; the filter takes only the low one, so
/// a token has one spelling: the high-S twin of a valid token is refused on
/// the native path and in wasm, also once the valid token is in the cache.
#[test]
fn high_s_twin_is_refused_on_both_paths() {
    for native in [true, false] {
        let envoy = Envoy::builder()
            .plugin_config_json(&config(1000, native))
            .start();
        let mut failures = Vec::new();
        for (alg, key) in [
            ("ES256", Key::p256().with_kid("p256")),
            ("ES384", Key::p384().with_kid("p384")),
            ("ES512", Key::p521().with_kid("p521")),
        ] {
            let good = mint(alg, &key, &json!({}), &claims());
            let twin = ecdsa_other_s(&good);
            assert_ne!(twin, good);
            for (what, token, status) in [
                ("high-S twin, cold", &twin, 401),
                ("low-S", &good, 200),
                ("high-S twin, valid one cached", &twin, 401),
            ] {
                let auth = format!("Bearer {token}");
                let r = envoy.get("/x", &[("authorization", &auth)]);
                let described = r
                    .header("www-authenticate")
                    .is_some_and(|h| h.contains("bad signature"));
                if r.status != status || (status == 401 && !described) {
                    failures.push(format!(
                        "native {native} {alg} {what}: {} {:?} {}",
                        r.status,
                        r.header("www-authenticate"),
                        r.body
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "{failures:#?}\n{}", envoy.log());
    }
}
