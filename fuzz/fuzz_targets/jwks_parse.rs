//! JWKS documents: `KeySet::from_jwks` (config path, all-or-nothing) and
//! `KeySet::from_jwks_lenient` (remote path, keeps the good keys).
//!
//! Oracles: both agree with loading each entry on its own (strict: every
//! entry or the first error; lenient: each entry's key or error, in order,
//! except that it refuses every `oct` entry, which the inline JWKS takes: a
//! remote JWKS never supplies an HMAC secret); keys + errors account for every entry;
//! messages are one line; and a token signed by a test key verifies against
//! the fuzzed set only if the set holds that very key (a mutated key never
//! verifies). Also the remote-JWKS helpers of `jwt_auth_core::jwks` on the
//! raw bytes.
#![no_main]

use std::sync::OnceLock;

use fuzz_support::{hmac_token, hs_secret, key_set, SIGNED_TOKENS};
use jwt_auth_core::jwt::{parse, Algorithm, Jwk, KeyMaterial, KeySet, REMOTE_OCT_REFUSED};
use jwt_auth_core::remote_keys::{
    decode_record, encode_record, jwks_path_from_discovery, max_age, parse_jwks, url_path,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn tokens() -> &'static Vec<String> {
    static TOKENS: OnceLock<Vec<String>> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let mut t: Vec<String> = SIGNED_TOKENS.iter().map(|s| s.trim().to_string()).collect();
        for (alg, bits, name) in [
            (Algorithm::Hs256, 256, "HS256"),
            (Algorithm::Hs384, 384, "HS384"),
            (Algorithm::Hs512, 512, "HS512"),
        ] {
            t.push(hmac_token(
                alg,
                &hs_secret(bits),
                &format!(r#"{{"alg":"{name}","kid":"hs{bits}"}}"#),
                r#"{"sub":"alice"}"#,
            ));
        }
        t
    })
}

fn fixture_material() -> Vec<&'static KeyMaterial> {
    key_set().keys().iter().map(|k| k.material()).collect()
}

/// The same key for verification purposes. HMAC pads a key shorter than
/// the hash block with zero bytes, so `k` and `k || 00` are one HMAC key
/// (RFC 2104 §2): not a finding, the JWKS is trusted configuration.
fn same_key(a: &KeyMaterial, b: &KeyMaterial) -> bool {
    match (a, b) {
        (KeyMaterial::Oct(a), KeyMaterial::Oct(b)) => {
            let trim = |s: &[u8]| -> Vec<u8> {
                let end = s.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
                s[..end].to_vec()
            };
            a.len() <= 128 && b.len() <= 128 && trim(a.as_bytes()) == trim(b.as_bytes())
        }
        _ => a == b,
    }
}

fn one_line(s: &str) {
    assert!(!s.contains(['\r', '\n']), "message spans lines: {s:?}");
}

fuzz_target!(|data: &[u8]| {
    // The remote-JWKS side (src/jwks.rs): a fetched body, an OIDC discovery
    // document, Cache-Control, and the shared-data record.
    if let Ok((keys, _)) = parse_jwks(data) {
        assert!(keys.verification_key_count() > 0, "unusable JWKS accepted");
    }
    if let Ok(path) = jwks_path_from_discovery(data) {
        assert!(path.starts_with('/'));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = max_age(text);
        let _ = url_path(text);
    }
    let id = *b"provider";
    assert_eq!(
        decode_record(&encode_record(&id, 7, data), &id),
        Some((7, data))
    );
    assert_eq!(
        decode_record(&encode_record(&id, 7, data), b"another!"),
        None
    );

    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let strict = KeySet::from_jwks(&doc);
    let (lenient, errors) = KeySet::from_jwks_lenient(&doc);
    for e in &errors {
        one_line(&e.to_string());
    }
    if let Err(e) = &strict {
        one_line(&e.to_string());
    }
    match doc.get("keys").and_then(Value::as_array) {
        Some(entries) => {
            let loaded: Vec<Result<Jwk, String>> = entries.iter().map(Jwk::from_value).collect();
            match (&strict, loaded.iter().position(Result::is_err)) {
                (Ok(set), None) => {
                    let all: Vec<&Jwk> = loaded.iter().flatten().collect();
                    assert_eq!(set.keys().iter().collect::<Vec<_>>(), all);
                }
                (Err(e), Some(first)) => {
                    assert_eq!(e.index, first, "strict stopped elsewhere");
                    assert_eq!(loaded[first].as_ref().err(), Some(&e.message));
                }
                _ => panic!("strict disagrees with loading each entry"),
            }
            let mut kept = lenient.keys().iter();
            let mut refused = errors.iter();
            for (index, (entry, one)) in entries.iter().zip(&loaded).enumerate() {
                let oct = entry.get("kty").and_then(Value::as_str) == Some("oct");
                match (oct, one) {
                    (false, Ok(key)) => assert_eq!(kept.next(), Some(key), "lenient lost a key"),
                    (true, _) | (false, Err(_)) => {
                        let e = refused.next().expect("lenient kept a refused entry");
                        assert_eq!(e.index, index);
                        let want = if oct {
                            REMOTE_OCT_REFUSED
                        } else {
                            one.as_ref().err().map_or("", String::as_str)
                        };
                        assert_eq!(e.message, want);
                    }
                }
            }
            assert!(kept.next().is_none() && refused.next().is_none());
            assert_eq!(lenient.len() + errors.len(), entries.len());
        }
        None => {
            let e = strict
                .as_ref()
                .err()
                .expect("a document without keys accepted");
            assert!(lenient.is_empty());
            assert_eq!(errors.first(), Some(e), "strict and lenient disagree");
        }
    }
    assert!(lenient.verification_key_count() <= lenient.len());
    let known = fixture_material();
    for key in lenient.keys() {
        let der = key.spki_der();
        assert_eq!(der.is_none(), key.material().kty() == "oct");
        let _ = lenient.kids().count();
    }
    for text in tokens() {
        let Ok(token) = parse(text, 8192) else {
            continue;
        };
        if lenient.verify(&token).is_ok() {
            assert!(
                lenient
                    .keys()
                    .iter()
                    .any(|k| k.fits(token.header.alg)
                        && known.iter().any(|m| same_key(m, k.material()))),
                "a token verified with a key that is not the one it was signed with"
            );
        }
    }
});
