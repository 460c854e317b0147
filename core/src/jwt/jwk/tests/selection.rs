use super::*;

fn rsa_pair_set() -> KeySet {
    KeySet::from_jwks(&jwks(vec![jwk("rsa2048-b"), jwk("rsa2048")])).unwrap()
}

#[test]
fn every_algorithm_end_to_end() {
    let set = KeySet::from_jwks(&jwks(vec![
        jwk("rsa2048"),
        jwk("p256"),
        jwk("p384"),
        jwk("p521"),
        jwk("ed25519"),
        oct_jwk(&secret64(), Some("hmac")),
    ]))
    .unwrap();
    let cases = [
        (Hs256, "hmac"),
        (Hs384, "hmac"),
        (Hs512, "hmac"),
        (Rs256, "rsa-2048"),
        (Rs384, "rsa-2048"),
        (Rs512, "rsa-2048"),
        (Ps256, "rsa-2048"),
        (Ps384, "rsa-2048"),
        (Ps512, "rsa-2048"),
        (Es256, "ec-p256"),
        (Es384, "ec-p384"),
        (Es512, "ec-p521"),
        (EdDsa, "ed25519"),
    ];
    for (alg, kid) in cases {
        let key = match kid {
            "hmac" => SigningKey::hmac(secret64()),
            "rsa-2048" => signing_key("rsa2048"),
            "ec-p256" => signing_key("p256"),
            "ec-p384" => signing_key("p384"),
            "ec-p521" => signing_key("p521"),
            _ => signing_key("ed25519"),
        };
        let claims = json!({"sub": "alice", "n": 1});
        for with_kid in [Some(kid), None] {
            let t = token(alg, with_kid, &claims, &key);
            assert_eq!(verify_token(&set, &t), Ok(()), "{alg:?} {with_kid:?}");
        }
        // Tampered payload: same header and signature, other claims.
        let t = token(alg, Some(kid), &claims, &key);
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = b64(json!({"sub": "mallory", "n": 1}).to_string().as_bytes());
        parts[1] = &forged;
        let forged_token = parts.join(".");
        assert_eq!(
            verify_token(&set, &forged_token),
            Err(TokenError::BadSignature),
            "{alg:?}"
        );
    }
}

#[test]
fn kid_selection() {
    let set = rsa_pair_set();
    let good = signing_key("rsa2048");
    // kid match.
    assert_eq!(
        verify_token(&set, &token(Rs256, Some("rsa-2048"), &json!({}), &good)),
        Ok(())
    );
    // kid miss.
    assert_eq!(
        verify_token(&set, &token(Rs256, Some("nope"), &json!({}), &good)),
        Err(TokenError::UnknownKid)
    );
    // kid of the other key: only that key is tried.
    assert_eq!(
        verify_token(&set, &token(Rs256, Some("rsa-2048-b"), &json!({}), &good)),
        Err(TokenError::BadSignature)
    );
    // No kid: every fitting key is tried, including the second one.
    assert_eq!(
        verify_token(&set, &token(Rs256, None, &json!({}), &good)),
        Ok(())
    );
    assert_eq!(
        verify_token(
            &set,
            &token(Rs256, None, &json!({}), &signing_key("rsa2048-b"))
        ),
        Ok(())
    );
    // No kid and no key verifies.
    assert_eq!(
        verify_token(
            &set,
            &token(Rs256, None, &json!({}), &signing_key("rsa3072"))
        ),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn key_without_kid_serves_tokens_with_kid() {
    let set = KeySet::from_jwks(&jwks(vec![
        jwk("rsa2048-b"),
        jwk_with("rsa2048", json!({"kid": null})),
    ]))
    .unwrap();
    let good = signing_key("rsa2048");
    assert_eq!(
        verify_token(&set, &token(Rs256, Some("anything"), &json!({}), &good)),
        Ok(())
    );
    // kid names the other key: the kid-less key is still a candidate.
    assert_eq!(
        verify_token(&set, &token(Rs256, Some("rsa-2048-b"), &json!({}), &good)),
        Ok(())
    );
    // Unknown kid, kid-less key present but the signature is wrong.
    assert_eq!(
        verify_token(
            &set,
            &token(Rs256, Some("x"), &json!({}), &signing_key("rsa3072"))
        ),
        Err(TokenError::BadSignature)
    );
    // Unknown kid, kid-less key of another type: nothing to try.
    assert_eq!(
        verify_token(
            &set,
            &token(Es256, Some("x"), &json!({}), &signing_key("p256"))
        ),
        Err(TokenError::UnknownKid)
    );
}

#[test]
fn no_key_for_algorithm() {
    let set = rsa_pair_set();
    for (alg, key) in [
        (Es256, signing_key("p256")),
        (EdDsa, signing_key("ed25519")),
        (Hs256, SigningKey::hmac(secret64())),
    ] {
        assert_eq!(
            verify_token(&set, &token(alg, None, &json!({}), &key)),
            Err(TokenError::NoMatchingKey),
            "{alg:?}"
        );
        // A kid that exists but names a key of another type.
        assert_eq!(
            verify_token(&set, &token(alg, Some("rsa-2048"), &json!({}), &key)),
            Err(TokenError::NoMatchingKey),
            "{alg:?}"
        );
    }
    assert_eq!(
        KeySet::default().verify(
            &parse(
                &token(Rs256, None, &json!({}), &signing_key("rsa2048")),
                9999
            )
            .unwrap()
        ),
        Err(TokenError::NoMatchingKey)
    );
    assert_eq!(
        KeySet::default().verify(
            &parse(
                &token(Rs256, Some("k"), &json!({}), &signing_key("rsa2048")),
                9999
            )
            .unwrap()
        ),
        Err(TokenError::UnknownKid)
    );
}

#[test]
fn rsa_public_key_as_hmac_secret_never_verifies() {
    let set = KeySet::from_jwks(&jwks(vec![jwk("rsa2048")])).unwrap();
    let public = Jwk::from_value(&jwk("rsa2048")).unwrap();
    let spki = public.spki_der().unwrap();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&spki)
    );
    let n = URL_SAFE_NO_PAD_DECODE(jwk("rsa2048")["n"].as_str().unwrap());
    let jwk_text = jwk("rsa2048").to_string();
    for secret in [spki, pem.into_bytes(), n, jwk_text.into_bytes()] {
        for alg in [Hs256, Hs384, Hs512] {
            for kid in [Some("rsa-2048"), None] {
                let t = token(
                    alg,
                    kid,
                    &json!({"sub": "x"}),
                    &SigningKey::hmac(secret.clone()),
                );
                assert_eq!(
                    verify_token(&set, &t),
                    Err(TokenError::NoMatchingKey),
                    "{alg:?}"
                );
            }
        }
    }
}

#[test]
fn ec_curve_mismatch() {
    let set = KeySet::from_jwks(&jwks(vec![jwk("p384")])).unwrap();
    // ES256 token signed by a P-256 key, set only has P-384.
    let t = token(Es256, None, &json!({}), &signing_key("p256"));
    assert_eq!(verify_token(&set, &t), Err(TokenError::NoMatchingKey));
    // A P-384 signature labelled ES512 or ES256 never reaches the P-384 key.
    for alg in [Es256, Es512] {
        let header = json!({"alg": alg.name(), "kid": "ec-p384"});
        let t = token_with_header(&header, &json!({}), Es384, &signing_key("p384"));
        assert_eq!(
            verify_token(&set, &t),
            Err(TokenError::NoMatchingKey),
            "{alg:?}"
        );
    }
    let t = token(Es384, Some("ec-p384"), &json!({}), &signing_key("p384"));
    assert_eq!(verify_token(&set, &t), Ok(()));
}

#[test]
fn jwk_alg_restricts_the_key() {
    let set = KeySet::from_jwks(&jwks(vec![jwk_with("rsa2048", json!({"alg": "RS256"}))])).unwrap();
    let key = signing_key("rsa2048");
    assert_eq!(
        verify_token(&set, &token(Rs256, None, &json!({}), &key)),
        Ok(())
    );
    for alg in [Rs384, Rs512, Ps256] {
        assert_eq!(
            verify_token(&set, &token(alg, Some("rsa-2048"), &json!({}), &key)),
            Err(TokenError::NoMatchingKey),
            "{alg:?}"
        );
    }
    let set = KeySet::from_jwks(&jwks(vec![oct_jwk(&secret64(), None)
        .as_object()
        .cloned()
        .map(|mut o| {
            o.insert("alg".into(), json!("HS512"));
            Value::Object(o)
        })
        .unwrap()]))
    .unwrap();
    let hmac = SigningKey::hmac(secret64());
    assert_eq!(
        verify_token(&set, &token(Hs512, None, &json!({}), &hmac)),
        Ok(())
    );
    assert_eq!(
        verify_token(&set, &token(Hs256, None, &json!({}), &hmac)),
        Err(TokenError::NoMatchingKey)
    );
}

#[test]
fn use_and_key_ops_other_than_signing_skip_the_key() {
    let key = signing_key("rsa2048");
    for changes in [
        json!({"use": "enc"}),
        json!({"use": "SIG"}),
        json!({"key_ops": ["encrypt", "wrapKey"]}),
        json!({"key_ops": []}),
    ] {
        let set = KeySet::from_jwks(&jwks(vec![jwk_with("rsa2048", changes.clone())])).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.verification_key_count(), 0);
        assert_eq!(
            verify_token(&set, &token(Rs256, Some("rsa-2048"), &json!({}), &key)),
            Err(TokenError::NoMatchingKey),
            "{changes}"
        );
        assert_eq!(
            verify_token(&set, &token(Rs256, None, &json!({}), &key)),
            Err(TokenError::NoMatchingKey),
            "{changes}"
        );
    }
    for changes in [
        json!({"use": "sig"}),
        json!({"key_ops": ["verify"]}),
        json!({"use": null}),
    ] {
        let set = KeySet::from_jwks(&jwks(vec![jwk_with("rsa2048", changes.clone())])).unwrap();
        assert_eq!(
            verify_token(&set, &token(Rs256, None, &json!({}), &key)),
            Ok(()),
            "{changes}"
        );
    }
}

#[test]
fn embedded_jwk_header_is_not_trusted() {
    // The attacker signs with their own key and ships it in the header.
    let attacker = signing_key("rsa2048-b");
    let header = json!({"alg": "RS256", "kid": "rsa-2048", "jwk": jwk("rsa2048-b"),
                        "jku": "https://evil/jwks", "x5c": []});
    let t = token_with_header(&header, &json!({}), Rs256, &attacker);
    let set = KeySet::from_jwks(&jwks(vec![jwk("rsa2048")])).unwrap();
    assert_eq!(verify_token(&set, &t), Err(TokenError::BadSignature));
}

#[test]
fn short_secret_for_longer_hash_is_no_match() {
    let set = KeySet::from_jwks(&jwks(vec![oct_jwk(&[5u8; 32], None)])).unwrap();
    let key = SigningKey::hmac(vec![5u8; 32]);
    assert_eq!(
        verify_token(&set, &token(Hs256, None, &json!({}), &key)),
        Ok(())
    );
    assert_eq!(
        verify_token(&set, &token(Hs384, None, &json!({}), &key)),
        Err(TokenError::NoMatchingKey)
    );
}

#[test]
fn remote_jwks_refuses_oct_keys_and_keeps_the_rest() {
    let doc = jwks(vec![
        oct_jwk(&secret64(), Some("hmac")),
        jwk("p256"),
        json!({"kty": "oct", "k": "c2hvcnQ"}),
    ]);
    let (set, errors) = KeySet::from_jwks_lenient(&doc);
    assert_eq!(set.kids().collect::<Vec<_>>(), ["ec-p256"]);
    let summary: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        summary,
        [
            format!("keys[0] (kid \"hmac\"): {REMOTE_OCT_REFUSED}"),
            format!("keys[2]: {REMOTE_OCT_REFUSED}"),
        ]
    );
    // A token signed with the published secret finds no key.
    let t = token(
        Hs256,
        Some("hmac"),
        &json!({}),
        &SigningKey::hmac(secret64()),
    );
    assert_eq!(verify_token(&set, &t), Err(TokenError::UnknownKid));
    // The inline JWKS (configuration) still takes oct keys.
    let inline = KeySet::from_jwks(&jwks(vec![oct_jwk(&secret64(), Some("hmac"))])).unwrap();
    assert_eq!(verify_token(&inline, &t), Ok(()));
}

#[test]
fn high_s_twin_is_a_bad_signature() {
    use crate::jwt::test_support::other_s;
    for (alg, name, kid) in [
        (Es256, "p256", "ec-p256"),
        (Es384, "p384", "ec-p384"),
        (Es512, "p521", "ec-p521"),
    ] {
        let set = KeySet::from_jwks(&jwks(vec![jwk(name)])).unwrap();
        let good = token(alg, Some(kid), &json!({"sub": "a"}), &signing_key(name));
        let (head, sig) = good.rsplit_once('.').unwrap();
        let twin = format!(
            "{head}.{}",
            b64(&other_s(alg, &URL_SAFE_NO_PAD_DECODE(sig)))
        );
        assert_eq!(verify_token(&set, &good), Ok(()), "{alg:?}");
        assert_eq!(
            verify_token(&set, &twin),
            Err(TokenError::BadSignature),
            "{alg:?}"
        );
    }
}

/// Keys of one type under distinct kids, none of them `rsa2048`'s.
fn decoys(count: usize, with_kid: bool) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let kid = if with_kid {
                json!(format!("decoy-{i}"))
            } else {
                Value::Null
            };
            jwk_with("rsa2048-b", json!({ "kid": kid }))
        })
        .collect()
}

#[test]
fn keys_tried_per_token_are_bounded() {
    let signer = signing_key("rsa2048");
    // The signing key behind MAX_KEYS_PER_TOKEN others that fit: a
    // token without kid is refused after the bound.
    let mut keys = decoys(MAX_KEYS_PER_TOKEN, true);
    keys.push(jwk("rsa2048"));
    let set = KeySet::from_jwks(&jwks(keys.clone())).unwrap();
    assert_eq!(set.crowded_algorithms().len(), 6, "RS* and PS*");
    assert!(set
        .crowded_algorithms()
        .iter()
        .all(|&(_, n)| n == MAX_KEYS_PER_TOKEN + 1));
    let no_kid = token(Rs256, None, &json!({}), &signer);
    assert_eq!(verify_token(&set, &no_kid), Err(TokenError::BadSignature));
    // Its kid still finds it.
    let with_kid = token(Rs256, Some("rsa-2048"), &json!({}), &signer);
    assert_eq!(verify_token(&set, &with_kid), Ok(()));
    // Within the bound it is found without a kid.
    keys.remove(0);
    let set = KeySet::from_jwks(&jwks(keys)).unwrap();
    assert!(set.crowded_algorithms().is_empty());
    assert_eq!(verify_token(&set, &no_kid), Ok(()));
}

#[test]
fn a_kid_match_is_tried_before_keys_without_kid() {
    // More kid-less keys than the bound, ahead of the named key in the
    // JWKS: the named key is still among those tried.
    let mut keys = decoys(MAX_KEYS_PER_TOKEN + 2, false);
    keys.push(jwk("rsa2048"));
    let set = KeySet::from_jwks(&jwks(keys)).unwrap();
    let signer = signing_key("rsa2048");
    assert_eq!(
        verify_token(&set, &token(Rs256, Some("rsa-2048"), &json!({}), &signer)),
        Ok(())
    );
    // An unknown kid meets the kid-less keys, at most the bound of them.
    assert_eq!(
        verify_token(&set, &token(Rs256, Some("other"), &json!({}), &signer)),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn the_bound_counts_verifications() {
    use std::cell::Cell;
    /// Counts the signatures it is asked about and refuses them all.
    struct Counting(Cell<usize>);
    impl SignatureAccelerator for Counting {
        fn handles(&self, _alg: Algorithm) -> bool {
            true
        }
        fn verify(&self, _: Algorithm, _: &Jwk, _: &[u8], _: &[u8]) -> Option<bool> {
            self.0.set(self.0.get() + 1);
            Some(false)
        }
    }
    let set = KeySet::from_jwks(&jwks(decoys(10, true))).unwrap();
    let garbage = token(Ps512, None, &json!({}), &signing_key("rsa2048"));
    let host = Counting(Cell::new(0));
    assert_eq!(
        set.verify_with(&parse(&garbage, 16 * 1024).unwrap(), Some(&host)),
        Err(TokenError::BadSignature)
    );
    assert_eq!(host.0.get(), MAX_KEYS_PER_TOKEN);
}
