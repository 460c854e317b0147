//! Writes the seed corpora under `fuzz/corpus/<target>/`.
//!
//!     cd fuzz && cargo run --features seeds --bin gen_seeds
//!
//! Deterministic except the PS* tokens (PSS salts are random); the RS256,
//! ES* and EdDSA seeds are also compiled into the targets as
//! `fuzz_support::SIGNED_TOKENS`, so they must keep existing (the first
//! build of this crate needs them: they are committed).

use std::fs;
use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use fuzz_support::request::{check, RequestInput};
use fuzz_support::{b64url, hs_secret, jwks, DECIDE_CONFIG, ISSUER, NOW};
use jwt_auth_core::revocation::codec::{encode_batch, encode_meta, Meta};
use jwt_auth_core::revocation::set::{digest, Entry};
use revocation_protocol::{FeedResponse, RevokedSubject, RevokedToken};
use serde_json::{json, Value};
use testkit::{mint, sign_parts, Key};

fn corpus(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

fn write(target: &str, name: &str, bytes: impl AsRef<[u8]>) {
    let path = corpus(target).join(name);
    fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Claims that pass both claim policies of the targets.
fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": ["api"], "sub": "alice", "jti": "t-1",
        "iat": NOW - 60, "nbf": NOW - 60, "exp": 2_000_000_000u64,
        "type": "access", "ver": 2, "scope": "read admin",
        "email": "alice@example.com", "roles": ["a", "b"], "org": {"id": "o1"}
    })
}

fn short_lived() -> Value {
    let mut c = claims();
    c["exp"] = json!(NOW + 1800);
    c
}

fn tokens() {
    let t = "token_parse_verify";
    for (alg, file) in [
        ("RS256", "rs256"),
        ("RS384", "rs384"),
        ("RS512", "rs512"),
        ("PS256", "ps256"),
        ("PS512", "ps512"),
        ("ES256", "es256"),
        ("ES384", "es384"),
        ("ES512", "es512"),
        ("EdDSA", "eddsa"),
        ("HS256", "hs256"),
        ("HS384", "hs384"),
        ("HS512", "hs512"),
    ] {
        write(
            t,
            &format!("{file}.jwt"),
            mint(alg, &Key::for_alg(alg), &json!({}), &claims()),
        );
    }
    let hs = Key::for_alg("HS256");
    write(
        t,
        "hs256-short.jwt",
        mint("HS256", &hs, &json!({}), &short_lived()),
    );
    write(
        t,
        "hs256-nokid.jwt",
        mint("HS256", &hs.clone().without_kid(), &json!({}), &claims()),
    );
    write(
        t,
        "demo-hs256.jwt",
        mint("HS256", &Key::demo_hs256(), &json!({}), &claims()),
    );
    write(
        t,
        "alg-none.jwt",
        testkit::mint_unsigned("none", &json!({}), &claims()),
    );
    write(
        t,
        "alg-NoNe.jwt",
        format!(
            "{}sig",
            testkit::mint_unsigned("NoNe", &json!({}), &claims())
        ),
    );
    write(
        t,
        "tampered.jwt",
        testkit::tamper_signature(&mint("ES256", &Key::p256(), &json!({}), &claims())),
    );
    let mut expired = claims();
    expired["exp"] = json!(NOW - 3600);
    write(t, "expired.jwt", mint("HS256", &hs, &json!({}), &expired));
    write(
        t,
        "unknown-kid.jwt",
        mint("HS256", &hs.clone().with_kid("nope"), &json!({}), &claims()),
    );
    write(
        t,
        "crit.jwt",
        mint("HS256", &hs, &json!({"crit": ["exp"], "exp": 1}), &claims()),
    );
    write(
        t,
        "b64-false.jwt",
        mint("HS256", &hs, &json!({"b64": false}), &claims()),
    );
    // RS256 public key used as an HS256 secret (alg confusion).
    let confused = Key::hmac(Key::rsa2048().public_pem()).with_kid("rsa-2048");
    write(
        t,
        "alg-confusion.jwt",
        mint("HS256", &confused, &json!({}), &claims()),
    );
    // The token brings its own key.
    let attacker = Key::hmac([7u8; 32]);
    let jwk = json!({"kty": "oct", "k": b64url([7u8; 32])});
    write(
        t,
        "jwk-injection.jwt",
        mint(
            "HS256",
            &attacker,
            &json!({"jwk": jwk, "jku": "https://evil.example/jwks"}),
            &claims(),
        ),
    );
    write(
        t,
        "float-times.jwt",
        sign_parts(
            "HS256",
            &hs,
            r#"{"alg":"HS256","kid":"hs256"}"#,
            r#"{"iss":"https://issuer.example","aud":"api","exp":2e9,"iat":1.75e9}"#,
        ),
    );
}

fn structured() {
    let t = "token_structured";
    let seed = |name: &str, mode: u8, variant: u8, header: &str, payload: &Value, raw: &[u8]| {
        let mut bytes = vec![mode, variant];
        bytes.extend_from_slice(header.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(payload.to_string().as_bytes());
        if !raw.is_empty() {
            bytes.push(0);
            bytes.extend_from_slice(raw);
        }
        write(t, name, bytes);
    };
    seed(
        "hs256",
        0,
        0,
        r#"{"alg":"HS256","typ":"JWT","kid":"hs256"}"#,
        &claims(),
        b"",
    );
    seed(
        "hs256-short",
        0,
        0,
        r#"{"alg":"HS256"}"#,
        &short_lived(),
        b"",
    );
    seed(
        "hs384",
        0,
        1,
        r#"{"alg":"HS384","kid":"hs384"}"#,
        &claims(),
        b"",
    );
    seed(
        "hs512",
        0,
        2,
        r#"{"alg":"HS512","kid":"hs512"}"#,
        &claims(),
        b"",
    );
    seed(
        "demo",
        0,
        3,
        r#"{"alg":"HS256","kid":"demo-hs256"}"#,
        &claims(),
        b"",
    );
    seed(
        "alg-confusion",
        1,
        0,
        r#"{"alg":"HS256","kid":"rsa-2048"}"#,
        &claims(),
        b"",
    );
    seed(
        "alg-confusion-jwk",
        1,
        1,
        r#"{"alg":"HS256"}"#,
        &claims(),
        b"",
    );
    seed(
        "jwk-injection",
        2,
        0,
        r#"{"alg":"HS256","jwk":{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"x5u":"https://evil.example/c.pem","x5c":["MIIB"]}"#,
        &claims(),
        b"",
    );
    seed(
        "raw-es256",
        3,
        0,
        r#"{"alg":"ES256","kid":"ec-p256"}"#,
        &claims(),
        &[1u8; 64],
    );
    seed("none", 4, 0, r#"{"alg":"none"}"#, &claims(), b"");
    seed(
        "crit",
        0,
        0,
        r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
        &claims(),
        b"",
    );
    seed(
        "nested",
        0,
        0,
        r#"{"alg":"HS256","kid":"hs256","typ":"at+jwt"}"#,
        &json!({"iss": ISSUER, "aud": "api", "exp": 1.9e9, "nbf": NOW, "type": "access", "ver": 2.0, "iat": NOW - 10}),
        b"",
    );
}

fn jwks_seeds() {
    let t = "jwks_parse";
    write(t, "fixture.json", jwks().to_string());
    for (name, jwk) in [
        ("rsa2048", fuzz_support::JWK_RSA2048),
        ("p256", fuzz_support::JWK_P256),
        ("p384", fuzz_support::JWK_P384),
        ("p521", fuzz_support::JWK_P521),
        ("ed25519", fuzz_support::JWK_ED25519),
    ] {
        write(t, &format!("{name}.json"), format!("{{\"keys\":[{jwk}]}}"));
    }
    write(
        t,
        "rsa1024.json",
        format!("{{\"keys\":[{}]}}", Key::rsa1024().jwk(Some("RS256"))),
    );
    write(
        t,
        "mixed.json",
        json!({"keys": [
            Key::hs(256).jwk(Some("HS256")),
            Key::hs(256).jwk(Some("HS512")),
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "tiny"},
            {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA", "d": "AAAA"},
            {"kty": "OKP", "crv": "Ed25519", "x": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
            {"kty": "oct", "k": "c2VjcmV0", "use": "enc"},
            {"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "k\n2", "use": "sig", "key_ops": ["verify", 1]}
        ]})
        .to_string(),
    );
    write(
        t,
        "padded.json",
        r#"{"keys":[{"kty":"oct","k":"MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=","alg":"HS256"}]}"#,
    );
    write(t, "empty.json", r#"{"keys":[]}"#);
    write(t, "not-array.json", r#"{"keys":{}}"#);
}

fn configs() {
    let t = "config_parse";
    write(t, "decide.json", DECIDE_CONFIG);
    write(
        t,
        "minimal.json",
        json!({"providers": [{"name": "p", "jwks": {"keys": [Key::hs(256).jwk(Some("HS256"))]}}]})
            .to_string(),
    );
    write(t, "revocation.json", json!({
        "realm": "api",
        "providers": [{"name": "p", "issuer": ISSUER, "jwks": {"keys": [Key::p256().jwk(None), Key::rsa2048().jwk(Some("PS256"))]},
            "max_lifetime_seconds": 3600, "clock_skew_seconds": 5, "required_claims": {"type": "access", "n": 1, "b": true},
            "from_cookies": ["session"], "from_params": ["token"]}],
        "rules": [{"match": {"path": "/x", "methods": ["GET"]}, "requires": {"allow_missing": true, "permissions": {"any_of": ["a"]}}}],
        "revocation": {"cluster": "feed", "authority": "feed.local", "poll_interval_ms": 500, "timeout_ms": 200,
            "bearer_token": "t0k", "hmac_secret_base64": "c2VjcmV0LXNlY3JldA==", "max_staleness_seconds": 10,
            "on_stale": "deny", "namespace": "ns.1", "max_body_bytes": 1048576, "sync_interval_ms": 50, "max_backoff_ms": 5000}
    }).to_string());
    write(
        t,
        "bad-header.json",
        json!({"providers": [{"name": "p", "jwks": {"keys": [Key::hs(256).jwk(None)]},
        "claim_to_headers": [{"claim": "sub", "header": "Host"}]}]})
        .to_string(),
    );
    write(t, "unknown-field.json", r#"{"providers":[],"extra":1}"#);
}

fn feeds() {
    let t = "feed_body";
    let token = |jti: &str| RevokedToken {
        jti: jti.into(),
        iss: None,
        exp: 2_000_000_000,
    };
    let delta = FeedResponse {
        cursor: "1700000000-42".into(),
        reset: false,
        revoked: vec![token("a1b2"), token("c3")],
        revoked_subjects: vec![RevokedSubject {
            sub: "bob".into(),
            iss: Some("https://auth.example.com".into()),
            before: NOW,
            exp: 2_000_000_000,
        }],
        more: false,
    };
    write(t, "delta.json", delta.to_json());
    let snapshot = FeedResponse {
        cursor: "7".into(),
        reset: true,
        revoked: vec![token("x")],
        revoked_subjects: vec![],
        more: false,
    };
    write(t, "snapshot.json", snapshot.to_json());
    write(t, "empty.json", r#"{"cursor":"0"}"#);
    write(
        t,
        "unknown-fields.json",
        r#"{"cursor":"5","v":2,"revoked":[{"jti":"a","exp":1,"why":"x"}],"revoked_subjects":[]}"#,
    );
    write(
        t,
        "bad-types.json",
        r#"{"cursor":"","reset":"yes","revoked":[{"jti":"","exp":-1}]}"#,
    );
    write(t, "cursor-pair.txt", "1700000000-42\n1700000000-41");
}

fn codec() {
    let t = "shared_codec";
    write(t, "empty-batch.bin", encode_batch(0, std::iter::empty()));
    write(
        t,
        "batch.bin",
        encode_batch(
            7,
            [
                Entry::Token {
                    id: digest("a1b2"),
                    exp: 2_000_000_000,
                },
                Entry::Subject {
                    id: digest("bob"),
                    before: NOW,
                    exp: 2_000_000_000,
                },
                Entry::Token {
                    id: u128::MAX,
                    exp: u64::MAX,
                },
            ]
            .into_iter(),
        ),
    );
    write(
        t,
        "meta.bin",
        encode_meta(&Meta {
            version: 9,
            base: 2,
            snapshot: 8,
            oldest_delta: 3,
            last_sync_ms: NOW * 1000,
            held: 3,
            cursor: "1700000000-42".into(),
            epoch: "1700000000".into(),
            reset_time: NOW,
            writers: vec![(3, 7)],
            snapshot_writer: 7,
            scoped: true,
        }),
    );
    write(t, "meta-default.bin", encode_meta(&Meta::default()));
}

/// Random inputs for the Arbitrary-driven `extract` target, one kept per
/// distinct decision label (plus the first few), so the seeds already reach
/// the authenticated paths.
fn requests() {
    let t = "extract";
    let mut state: u64 = 0x243f_6a88_85a3_08d3;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..200_000u32 {
        let len = 64 + (next() % 512) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let mut u = Unstructured::new(&bytes);
        let Ok(input) = RequestInput::arbitrary(&mut u) else {
            continue;
        };
        let label = check(&input);
        if seen.insert(label.clone()) {
            write(t, &format!("{label}-{i}.bin"), &bytes);
        }
    }
    eprintln!("extract seeds: {seen:?}");
}

fn main() {
    let _ = hs_secret(256);
    tokens();
    structured();
    jwks_seeds();
    configs();
    feeds();
    codec();
    requests();
}
