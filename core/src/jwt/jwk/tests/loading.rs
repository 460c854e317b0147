use super::*;

#[test]
fn loads_every_key_type() {
    let mut keys: Vec<Value> = ALL_FIXTURES.iter().map(|n| jwk(n)).collect();
    keys.push(oct_jwk(&secret64(), Some("hmac")));
    let set = KeySet::from_jwks(&jwks(keys)).unwrap();
    assert_eq!(set.len(), 9);
    assert!(!set.is_empty());
    let kids: Vec<&str> = set.kids().collect();
    assert_eq!(
        kids,
        [
            "rsa-2048",
            "rsa-2048-b",
            "rsa-2560",
            "rsa-3072",
            "ec-p256",
            "ec-p384",
            "ec-p521",
            "ed25519",
            "hmac"
        ]
    );
    let ktys: Vec<&str> = set.keys().iter().map(|k| k.material().kty()).collect();
    assert_eq!(
        ktys,
        ["RSA", "RSA", "RSA", "RSA", "EC", "EC", "EC", "OKP", "oct"]
    );
    assert!(matches!(set.keys()[6].material(), KeyMaterial::P521(_)));
}

#[test]
fn public_jwks_match_private_fixtures() {
    use p256::pkcs8::EncodePublicKey;
    for name in ALL_FIXTURES {
        let key = Jwk::from_value(&jwk(name)).unwrap();
        use testkit::jwt::KeyMaterial as M;
        let expected = match signing_key(name).material {
            M::Rsa(k) => k.to_public_key().to_public_key_der().unwrap().into_vec(),
            M::P256(k) => k.verifying_key().to_public_key_der().unwrap().into_vec(),
            M::P384(k) => k.verifying_key().to_public_key_der().unwrap().into_vec(),
            M::P521(k) => k.public_key().to_public_key_der().unwrap().into_vec(),
            M::Ed25519(k) => {
                let mut der = vec![
                    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
                ];
                der.extend_from_slice(k.verifying_key().as_bytes());
                der
            }
            M::Hmac(_) => unreachable!(),
        };
        assert_eq!(key.spki_der().unwrap(), expected, "{name}");
    }
}

#[test]
fn spki_der_parses_as_spki() {
    use p256::pkcs8::spki::SubjectPublicKeyInfoRef;
    let oids = [
        ("rsa2048", "1.2.840.113549.1.1.1"),
        ("p256", "1.2.840.10045.2.1"),
        ("p384", "1.2.840.10045.2.1"),
        ("p521", "1.2.840.10045.2.1"),
        ("ed25519", "1.3.101.112"),
    ];
    for (name, oid) in oids {
        let der = Jwk::from_value(&jwk(name)).unwrap().spki_der().unwrap();
        let spki = SubjectPublicKeyInfoRef::try_from(der.as_slice()).unwrap();
        assert_eq!(spki.algorithm.oid.to_string(), oid, "{name}");
    }
    let oct = Jwk::from_value(&oct_jwk(&secret64(), None)).unwrap();
    assert_eq!(oct.spki_der(), None);
}

#[test]
fn rsa_1024_is_refused_with_a_clear_message() {
    let err =
        KeySet::from_jwks(&jwks(vec![jwk("rsa2048"), jwk("p256"), jwk("rsa1024")])).unwrap_err();
    assert_eq!(err.index, 2);
    assert_eq!(err.kid.as_deref(), Some("rsa-1024"));
    assert_eq!(
        err.to_string(),
        "keys[2] (kid \"rsa-1024\"): RSA key has 1024 bits; at least 2048 are required"
    );
}

#[test]
fn bad_keys_are_refused() {
    let n = jwk("rsa2048")["n"].as_str().unwrap().to_string();
    let p256_x = jwk("p256")["x"].as_str().unwrap().to_string();
    let p256_y = jwk("p256")["y"].as_str().unwrap().to_string();
    let mut off_curve_y = URL_SAFE_NO_PAD_DECODE(&p256_y);
    off_curve_y[31] ^= 1;
    let cases: Vec<(Value, &str)> = vec![
        (json!("not an object"), "key is not a JSON object"),
        (jwk_with("rsa2048", json!({"kty": null})), "missing kty"),
        (
            jwk_with("rsa2048", json!({"kty": 1})),
            "kty is not a string",
        ),
        (
            jwk_with("rsa2048", json!({"kty": "RSA-ish"})),
            "unsupported kty \"RSA-ish\"",
        ),
        (jwk_with("rsa2048", json!({"n": null})), "missing n"),
        (jwk_with("rsa2048", json!({"e": null})), "missing e"),
        (
            jwk_with("rsa2048", json!({"n": format!("{n}!")})),
            "n is not base64url",
        ),
        (
            jwk_with("rsa2048", json!({"n": n.replace('_', "/")})),
            "n is not base64url",
        ),
        (jwk_with("rsa2048", json!({"e": ""})), "e is empty"),
        (
            jwk_with("rsa2048", json!({"e": "AAAC"})),
            "invalid RSA key: ",
        ),
        (
            jwk_with("rsa2048", json!({"d": "AQAB"})),
            "contains private key material",
        ),
        (
            jwk_with("rsa2048", json!({"alg": "ES256"})),
            "alg ES256 does not fit a RSA key",
        ),
        (
            jwk_with("rsa2048", json!({"alg": "XS256"})),
            "unsupported alg \"XS256\"",
        ),
        (
            jwk_with("rsa2048", json!({"alg": "none"})),
            "unsupported alg \"none\"",
        ),
        (
            jwk_with("rsa2048", json!({"kid": 5})),
            "kid is not a string",
        ),
        (
            jwk_with("rsa2048", json!({"use": ["sig"]})),
            "use is not a string",
        ),
        (
            jwk_with("rsa2048", json!({"key_ops": "verify"})),
            "key_ops is not an array",
        ),
        (
            jwk_with("rsa2048", json!({"key_ops": [1]})),
            "key_ops is not an array",
        ),
        (
            jwk_with("p256", json!({"crv": "secp256k1"})),
            "unsupported EC curve \"secp256k1\"",
        ),
        (jwk_with("p256", json!({"crv": null})), "missing crv"),
        (
            jwk_with("p256", json!({"crv": "P-384"})),
            "P-384 point is not on the curve",
        ),
        (
            jwk_with("p384", json!({"crv": "P-256"})),
            "P-256 coordinate x has 48 bytes; expected 32",
        ),
        (jwk_with("p256", json!({"y": null})), "missing y"),
        (
            jwk_with("p256", json!({"y": b64(&off_curve_y)})),
            "P-256 point is not on the curve",
        ),
        (
            jwk_with("p256", json!({"x": b64(&[0u8; 33])})),
            "P-256 coordinate x has 33 bytes",
        ),
        (
            jwk_with("p256", json!({"x": format!("+{}", &p256_x[1..])})),
            "x is not base64url",
        ),
        (
            jwk_with("p256", json!({"x": format!("{p256_x}===")})),
            "x is not base64url",
        ),
        (
            jwk_with("p256", json!({"d": "AAAA"})),
            "contains private key material",
        ),
        (
            jwk_with("p256", json!({"alg": "ES384"})),
            "alg ES384 does not fit a EC P-256 key",
        ),
        (
            jwk_with("p521", json!({"alg": "ES256"})),
            "alg ES256 does not fit a EC P-521 key",
        ),
        (
            jwk_with("ed25519", json!({"crv": "X25519"})),
            "unsupported OKP curve \"X25519\"",
        ),
        (
            jwk_with("ed25519", json!({"crv": "Ed448"})),
            "unsupported OKP curve \"Ed448\"",
        ),
        (
            jwk_with("ed25519", json!({"x": b64(&[1u8; 31])})),
            "Ed25519 key has 31 bytes",
        ),
        (
            jwk_with("ed25519", json!({"x": b64(&[0u8; 32])})),
            "Ed25519 key is a small-order point",
        ),
        (
            jwk_with("ed25519", json!({"x": b64(&[0xffu8; 32])})),
            "Ed25519 key is not canonically encoded",
        ),
        (
            jwk_with("ed25519", json!({"x": b64(&not_a_point())})),
            "Ed25519 key is not a valid curve point",
        ),
        (
            jwk_with("ed25519", json!({"alg": "ES256"})),
            "alg ES256 does not fit a OKP Ed25519 key",
        ),
        (json!({"kty": "oct"}), "missing k"),
        (json!({"kty": "oct", "k": ""}), "k is empty"),
        (
            oct_jwk(b"secret", None),
            "HMAC secret has 6 bytes; at least 32 are required",
        ),
        (
            oct_jwk(&[1u8; 31], None),
            "HMAC secret has 31 bytes; at least 32 are required",
        ),
        (
            jwk_with(
                "rsa2048",
                json!({"kty": "oct", "k": b64(&[1; 40]), "alg": "HS384"}),
            ),
            "HS384 secret has 40 bytes; at least 48 are required",
        ),
        (
            json!({"kty": "oct", "k": b64(&[1; 40]), "alg": "RS256"}),
            "alg RS256 does not fit a oct key",
        ),
    ];
    for (key, expected) in cases {
        let err = load_err(key.clone());
        assert!(
            err.starts_with(expected),
            "{key}: got {err:?}, want {expected:?}"
        );
        assert!(!err.contains('\n'));
    }
}

/// The first y (little-endian, small values) with no matching x on the curve.
fn not_a_point() -> [u8; 32] {
    (2u8..=255)
        .map(|y| {
            let mut b = [0u8; 32];
            b[0] = y;
            b
        })
        .find(|b| ed25519_dalek::VerifyingKey::from_bytes(b).is_err())
        .unwrap()
}

#[test]
fn lenient_encodings_that_carry_no_meaning_are_accepted() {
    // Padded base64url.
    let n = jwk("rsa2048")["n"].as_str().unwrap().to_string();
    let padded = format!("{n}{}", "=".repeat((4 - n.len() % 4) % 4));
    assert!(Jwk::from_value(&jwk_with("rsa2048", json!({"n": padded}))).is_ok());
    // A leading zero byte on n does not change the modulus.
    let mut raw = URL_SAFE_NO_PAD_DECODE(&n);
    raw.insert(0, 0);
    let key = Jwk::from_value(&jwk_with("rsa2048", json!({"n": b64(&raw)}))).unwrap();
    assert_eq!(key, Jwk::from_value(&jwk("rsa2048")).unwrap());
    // P-521 coordinates missing their leading zero byte.
    let x = URL_SAFE_NO_PAD_DECODE(jwk("p521")["x"].as_str().unwrap());
    assert_eq!((x.len(), x[0]), (66, 0));
    let short = Jwk::from_value(&jwk_with("p521", json!({"x": b64(&x[1..])}))).unwrap();
    assert_eq!(short, Jwk::from_value(&jwk("p521")).unwrap());
}

#[test]
fn oversized_rsa_is_refused() {
    let mut n = vec![0xffu8; MAX_RSA_BITS / 8 + 1];
    n[0] = 0x01;
    let err = load_err(jwk_with("rsa2048", json!({"n": b64(&n)})));
    assert_eq!(err, "RSA key has 8193 bits; at most 8192 are supported");
}

#[test]
fn jwks_document_errors() {
    for (doc, msg) in [
        (json!([]), "jwks: JWKS is not a JSON object"),
        (json!({}), "jwks: JWKS has no \"keys\" array"),
        (json!({"keys": {}}), "jwks: \"keys\" is not an array"),
        (jwk("rsa2048"), "jwks: JWKS has no \"keys\" array"),
    ] {
        let err = KeySet::from_jwks(&doc).unwrap_err();
        assert_eq!(err.index, JwkError::WHOLE_SET);
        assert_eq!(err.to_string(), msg);
        let (set, errors) = KeySet::from_jwks_lenient(&doc);
        assert!(set.is_empty());
        assert_eq!(errors, vec![err]);
    }
    let empty = KeySet::from_jwks(&json!({"keys": []})).unwrap();
    assert!(empty.is_empty());
}

#[test]
fn lenient_keeps_good_keys_and_reports_bad_ones() {
    let doc = jwks(vec![
        jwk_with("rsa2048", json!({"n": null})),
        jwk("rsa2048"),
        jwk("rsa1024"),
        jwk("p256"),
        json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}),
        json!({"kty": "foo", "kid": "weird"}),
        jwk_with("p256", json!({"crv": "P-999", "kid": "bad-crv"})),
        jwk("ed25519"),
        json!(17),
        jwk_with("rsa2048-b", json!({"use": "enc"})),
    ]);
    let (set, errors) = KeySet::from_jwks_lenient(&doc);
    assert_eq!(
        set.kids().collect::<Vec<_>>(),
        ["rsa-2048", "ec-p256", "ed25519", "rsa-2048-b"]
    );
    let summary: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        summary,
        [
            "keys[0] (kid \"rsa-2048\"): missing n",
            "keys[2] (kid \"rsa-1024\"): RSA key has 1024 bits; at least 2048 are required",
            "keys[4]: P-256 point is not on the curve",
            "keys[5] (kid \"weird\"): unsupported kty \"foo\"",
            "keys[6] (kid \"bad-crv\"): unsupported EC curve \"P-999\"",
            "keys[8]: key is not a JSON object",
        ]
    );
    // The strict path stops at the first bad key.
    assert_eq!(KeySet::from_jwks(&doc).unwrap_err().index, 0);
}

#[test]
fn hostile_strings_in_messages_stay_on_one_line() {
    let kid = format!("a\nb\"c{}", "x".repeat(200));
    let err = KeySet::from_jwks(&jwks(vec![json!({"kty": "zz\r\n", "kid": kid})])).unwrap_err();
    let text = err.to_string();
    assert!(!text.contains('\n') && !text.contains('\r'), "{text}");
    assert!(text.len() < 250, "{text}");
}

#[test]
fn debug_never_shows_secrets() {
    let secret = secret64();
    let set = KeySet::from_jwks(&jwks(vec![oct_jwk(&secret, Some("h")), jwk("rsa2048")])).unwrap();
    let debug = format!("{set:?}");
    assert!(debug.contains("redacted"), "{debug}");
    assert!(!debug.contains(&b64(&secret)));
    assert!(!debug.contains(
        &format!("{:?}", &secret[..4])
            .trim_end_matches(']')
            .to_string()
    ));
    assert!(!debug.contains(&format!("{}, {}, {}", secret[0], secret[1], secret[2])));
}

#[test]
fn hmac_secret_constructor() {
    assert!(Jwk::from_hmac_secret(vec![1; 32], None, None).is_ok());
    assert!(Jwk::from_hmac_secret(vec![1; 31], None, None).is_err());
    assert!(Jwk::from_hmac_secret(vec![1; 32], None, Some(Hs512)).is_err());
    assert!(Jwk::from_hmac_secret(vec![1; 64], Some("k".into()), Some(Hs512)).is_ok());
    assert!(Jwk::from_hmac_secret(vec![1; 64], None, Some(Rs256)).is_err());
    let set = KeySet::from_keys(vec![Jwk::from_hmac_secret(secret64(), None, None).unwrap()]);
    let t = token(Hs512, None, &json!({}), &SigningKey::hmac(secret64()));
    assert_eq!(verify_token(&set, &t), Ok(()));
}
