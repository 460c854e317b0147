//! Tokens assembled from fuzzed header and payload JSON text, base64url-
//! encoded by the harness so the fuzzer works on the JSON, not on base64.
//!
//! Input: byte 0 = signature mode, byte 1 = secret / variant, then
//! `header JSON \0 payload JSON [\0 raw signature]`.
//!
//! Modes: 0 HMAC with one of the configured secrets (the legitimate path);
//! 1 HMAC keyed with the RSA public key (modulus, JWK text or a public
//! JWK's `n`): algorithm confusion; 2 HMAC with a secret the attacker also
//! put in the header (`jwk.k`) or a random one: key injection; 3 raw
//! signature bytes; 4 empty signature.
//!
//! Oracles: only mode 0 may verify; in mode 0 an HS256 token without a kid
//! or with kid "hs256" signed with that secret must verify (no false
//! refusal); whatever check_claims accepts meets the policy (iss, aud, exp
//! with skew, nbf, lifetime, required claims).
#![no_main]

use fuzz_support::{
    assert_header_safe_error, b64url, claim_policies, hmac_secrets, hmac_sign, key_set,
    JWK_RSA2048, MAX_TOKEN_BYTES, NOW,
};
use jwt_auth_core::jwt::{check_claims, parse, Algorithm, ClaimPolicy, KeyMaterial};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fn rsa_modulus() -> Vec<u8> {
    for key in key_set().keys() {
        if let KeyMaterial::Rsa(_) = key.material() {
            if let Some(der) = key.spki_der() {
                return der;
            }
        }
    }
    Vec::new()
}

fn as_f64(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn check_accepted(claims: &Map<String, Value>, policy: &ClaimPolicy, now: u64) {
    let skew = policy.clock_skew_seconds as f64;
    let now = now as f64;
    if let Some(iss) = &policy.issuer {
        assert_eq!(
            claims.get("iss").and_then(Value::as_str),
            Some(iss.as_str())
        );
    }
    if !policy.audiences.is_empty() {
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => policy.audiences.contains(a),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .any(|a| policy.audiences.iter().any(|w| w == a)),
            _ => false,
        };
        assert!(ok, "wrong audience accepted");
    }
    let exp = claims
        .get("exp")
        .map(|v| as_f64(v).expect("exp accepted but not a number"));
    if policy.require_expiration {
        let exp = exp.expect("missing exp accepted");
        // f64 rounding: allow one second of slack.
        assert!(exp + skew + 1.0 >= now, "expired token accepted");
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = as_f64(nbf).expect("nbf accepted but not a number");
        assert!(nbf <= now + skew + 1.0, "not-yet-valid token accepted");
    }
    if let Some(max) = policy.max_lifetime_seconds {
        let iat = claims
            .get("iat")
            .and_then(as_f64)
            .expect("lifetime unbounded");
        assert!(
            exp.unwrap_or(f64::MAX) - iat <= max as f64 + 1.0,
            "lifetime too long"
        );
    }
    for (name, want) in &policy.required_claims {
        let have = claims.get(name).expect("required claim missing");
        match (have.as_f64(), want.as_f64()) {
            (Some(h), Some(w)) => assert!(h == w, "{name}: {have} accepted for {want}"),
            _ => assert_eq!(have, want),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [mode, variant, rest @ ..] = data else {
        return;
    };
    let mut parts = rest.splitn(3, |&b| b == 0);
    let header = parts.next().unwrap_or_default();
    let payload = parts.next().unwrap_or_default();
    let raw_sig = parts.next().unwrap_or_default();
    let input = format!("{}.{}", b64url(header), b64url(payload));

    // The alg the header claims decides which HMAC a signer would use.
    let header_json: Option<Value> = serde_json::from_slice(header).ok();
    let alg = header_json
        .as_ref()
        .and_then(|h| h.get("alg"))
        .and_then(Value::as_str)
        .and_then(Algorithm::from_name)
        .unwrap_or(Algorithm::Hs256);
    let secrets = hmac_secrets();
    let mode = mode % 5;
    let signature = match mode {
        0 => hmac_sign(
            alg,
            &secrets[usize::from(*variant) % secrets.len()],
            input.as_bytes(),
        ),
        1 => {
            let key: Vec<u8> = match variant % 3 {
                0 => rsa_modulus(),
                1 => JWK_RSA2048.as_bytes().to_vec(),
                _ => serde_json::from_str::<Value>(JWK_RSA2048)
                    .ok()
                    .and_then(|v| {
                        v.get("n")
                            .and_then(Value::as_str)
                            .map(|s| s.as_bytes().to_vec())
                    })
                    .unwrap_or_default(),
            };
            hmac_sign(alg, &key, input.as_bytes())
        }
        2 => {
            // An attacker's own key, offered in the header (jwk / x5c / jku ...).
            let injected = header_json
                .as_ref()
                .and_then(|h| h.get("jwk"))
                .and_then(|j| j.get("k"))
                .and_then(Value::as_str)
                .map(|k| k.as_bytes().to_vec());
            let key = injected.unwrap_or_else(|| vec![*variant; 64]);
            hmac_sign(alg, &key, input.as_bytes())
        }
        3 => raw_sig.to_vec(),
        _ => Vec::new(),
    };
    let text = format!("{input}.{}", b64url(&signature));

    let token = match parse(&text, MAX_TOKEN_BYTES) {
        Ok(t) => t,
        Err(e) => {
            assert_header_safe_error(&e);
            return;
        }
    };
    assert_eq!(token.signing_input(), input);
    let verified = key_set().verify(&token);
    match &verified {
        Ok(()) => assert_eq!(
            mode, 0,
            "token verified without a configured key (mode {mode})"
        ),
        Err(e) => {
            assert_header_safe_error(e);
            let kid = token.header.kid.as_deref();
            if mode == 0
                && token.header.alg == Algorithm::Hs256
                && usize::from(*variant) % secrets.len() == 0
                && matches!(kid, None | Some("hs256"))
            {
                panic!("HS256 token signed with the hs256 secret refused: {e:?}");
            }
        }
    }
    if verified.is_err() {
        return;
    }
    for policy in claim_policies() {
        match check_claims(&token.claims, policy, NOW) {
            // The oracle reads the claims with serde_json, not with the
            // filter's reader (a number beyond f64 leaves it nothing to read).
            Ok(()) => {
                if let Value::Object(claims) = token.claims.to_value() {
                    check_accepted(&claims, policy, NOW);
                }
            }
            Err(e) => assert_header_safe_error(&e),
        }
    }
});
