//! Tokens of every size, in every place and more than once, and claims
//! and JOSE headers crafted to confuse the checks.

use super::harness::*;

/// A token of exactly `len` bytes, valid for alice, made by padding a claim.
fn token_of_len(len: usize) -> String {
    for hpad in 0..4 {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": "hs256", "x": "y".repeat(hpad)});
        let mut lo = 0usize;
        let mut hi = len;
        while lo <= hi {
            let mid = (lo + hi) / 2;
            let c = with(claims("alice"), json!({"pad": "p".repeat(mid)}));
            let t = sign_parts("HS256", &main_key(), &header.to_string(), &c.to_string());
            match t.len().cmp(&len) {
                std::cmp::Ordering::Equal => return t,
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => {
                    if mid == 0 {
                        break;
                    }
                    hi = mid - 1
                }
            }
        }
    }
    panic!("no token of exactly {len} bytes");
}

/// Token sizes, repeated and competing credentials, odd bytes.
#[test]
fn token_sizes_duplicates_and_places() {
    let envoy = start("DROP_HEADER");
    let alice_t = token_for("alice");
    let alice = bearer(&alice_t);
    let bob = bearer(&token_for("bob"));
    let at_limit = token_of_len(8192);
    let over_limit = token_of_len(8193);
    assert_eq!((at_limit.len(), over_limit.len()), (8192, 8193));
    let junk = |n: usize| "A".repeat(n);
    let too_big = || Expect::Refused(&[431, 413, 400], true);
    let multiple = || Expect::Deny(400, Some("invalid_request"), Some("multiple tokens"));
    let mut cases = vec![
        case(
            "empty token 'Bearer '",
            "/api",
            vec![h("authorization", "Bearer ")],
            invalid("malformed"),
        ),
        case(
            "'Bearer' alone",
            "/api",
            vec![h("authorization", "Bearer")],
            invalid("malformed"),
        ),
        case(
            "token of exactly 8192 bytes",
            "/api",
            vec![h("authorization", &bearer(&at_limit))],
            user("alice"),
        ),
        case(
            "token of 8193 bytes",
            "/api",
            vec![h("authorization", &bearer(&over_limit))],
            invalid("too large"),
        ),
        case(
            "token of 50 KiB",
            "/api",
            vec![h("authorization", &bearer(&junk(50 << 10)))],
            invalid("too large"),
        ),
        // Envoy's own limit (max_request_headers_kb, 60 KiB) answers first.
        case(
            "token of 1 MiB",
            "/api",
            vec![h("authorization", &bearer(&junk(1 << 20)))],
            too_big(),
        ),
        case(
            "token of 1 MiB on a bypass",
            "/healthz",
            vec![h("authorization", &bearer(&junk(1 << 20)))],
            too_big(),
        ),
        case(
            "scheme in lowercase",
            "/api",
            vec![h("authorization", &format!("bearer {alice_t}"))],
            user("alice"),
        ),
        case(
            "two spaces",
            "/api",
            vec![h("authorization", &format!("Bearer  {alice_t}"))],
            user("alice"),
        ),
        case(
            "tab after scheme",
            "/api",
            vec![h("authorization", &format!("Bearer\t{alice_t}"))],
            missing(),
        ),
        case(
            "Basic scheme",
            "/api",
            vec![h("authorization", "Basic YWxpY2U6eA==")],
            missing(),
        ),
        case(
            "padding '='",
            "/api",
            vec![h("authorization", &format!("{alice}="))],
            invalid("malformed"),
        ),
        case(
            "two tokens in one value",
            "/api",
            vec![h("authorization", &format!("{alice}, {bob}"))],
            invalid("malformed"),
        ),
        case(
            "JWE-like (5 segments)",
            "/api",
            vec![h("authorization", "Bearer a.b.c.d.e")],
            invalid("malformed"),
        ),
        case(
            "non-UTF-8 token",
            "/api",
            vec![hb("authorization", b"Bearer \xff\xfe\xfd")],
            invalid("malformed"),
        ),
        case(
            "non-UTF-8 after a valid token",
            "/api",
            vec![hb("authorization", &[alice.as_bytes(), b"\xff"].concat())],
            invalid("malformed"),
        ),
        case(
            "non-UTF-8 on a bypass",
            "/healthz",
            vec![hb("authorization", b"Bearer \xff")],
            anon(),
        ),
        case(
            "non-UTF-8 on allow_missing",
            "/public/x",
            vec![hb("authorization", b"Bearer \xc3\x28")],
            invalid("malformed"),
        ),
    ];
    // NOTE: Envoy keeps `authorization` as one header entry and joins
    // repeated ones with "," before any filter runs, so the filter sees
    // "Bearer A,Bearer A" — one malformed token — even for identical
    // copies. The filter's own "same token twice is fine, two different
    // tokens are 400" logic never sees two entries of this header.
    for (name, headers, expect) in [
        (
            "same token twice",
            vec![h("authorization", &alice), h("authorization", &alice)],
            invalid("malformed"),
        ),
        (
            "same token 50 times",
            (0..50).map(|_| h("authorization", &alice)).collect(),
            invalid("too large"),
        ),
        (
            "alice then bob",
            vec![h("authorization", &alice), h("authorization", &bob)],
            invalid("malformed"),
        ),
        (
            "valid then tampered",
            vec![
                h("authorization", &alice),
                h("authorization", &bearer(&tamper_signature(&alice_t))),
            ],
            invalid("malformed"),
        ),
        // "Basic ...,Bearer ..." does not start with "Bearer ": no token.
        (
            "Basic then Bearer",
            vec![
                h("authorization", "Basic YWxpY2U6eA=="),
                h("authorization", &alice),
            ],
            missing(),
        ),
        // An empty value adds nothing to the joined header.
        (
            "empty then Bearer",
            vec![h("authorization", ""), h("authorization", &alice)],
            user("alice"),
        ),
    ] {
        cases.push(case(name, "/api", headers, expect));
    }
    // A provider that reads the header, `access_token` and the `session`
    // cookie (route /multi).
    let m1 = multi_token("bob");
    let m2 = multi_token("carol");
    let mb = bearer(&m1);
    let q1 = format!("/multi/x?access_token={m1}&{{mk}}");
    let q12 = format!("/multi/x?access_token={m1}&access_token={m2}&{{mk}}");
    let q2 = format!("/multi/x?access_token={m2}&{{mk}}");
    let bob_only = || ident(&[("x-user-id", "bob")]);
    cases.extend([
        case(
            "multi: header only",
            "/multi/x",
            vec![h("authorization", &mb)],
            bob_only(),
        ),
        case("multi: query only", &q1, vec![], bob_only()),
        case(
            "multi: cookie only",
            "/multi/x",
            vec![h("cookie", &format!("a=1; session={m1}"))],
            bob_only(),
        ),
        case(
            "multi: same token in all three",
            &q1,
            vec![
                h("authorization", &mb),
                h("cookie", &format!("session={m1}")),
            ],
            bob_only(),
        ),
        case(
            "multi: header bob, query carol",
            &q2,
            vec![h("authorization", &mb)],
            multiple(),
        ),
        case(
            "multi: header bob, cookie carol",
            "/multi/x",
            vec![
                h("authorization", &mb),
                h("cookie", &format!("session={m2}")),
            ],
            multiple(),
        ),
        case("multi: query twice, different", &q12, vec![], multiple()),
        case(
            "multi: two session cookies",
            "/multi/x",
            vec![h("cookie", &format!("session={m1}; session={m2}"))],
            multiple(),
        ),
        // HTTP/2 allows splitting cookies into crumbs (RFC 9113 §8.2.3);
        // Envoy joins them, so the filter sees both.
        case(
            "multi: session in two cookie headers",
            "/multi/x",
            vec![
                h("cookie", &format!("session={m1}")),
                h("cookie", &format!("session={m2}")),
            ],
            multiple(),
        ),
        case(
            "multi: header valid, cookie garbage",
            "/multi/x",
            vec![h("authorization", &mb), h("cookie", "session=garbage")],
            multiple(),
        ),
        case(
            "multi: main provider's token",
            "/multi/x",
            vec![h("authorization", &alice)],
            invalid(""),
        ),
        case(
            "multi: non-UTF-8 cookie",
            "/multi/x",
            vec![hb("cookie", b"session=\xff")],
            invalid("malformed"),
        ),
    ]);
    let (seen, mut failures) = run(&envoy, &cases);
    // Without `forward`, a token read from the query string or a cookie
    // leaves it too: the upstream (and its access log) never sees it, and
    // the other parameters and cookies arrive as sent.
    for r in envoy.upstream().requests() {
        let cookies: Vec<&str> = r
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .map(|(_, v)| v.as_str())
            .collect();
        for token in [&m1, &m2] {
            if r.path.contains(token.as_str()) || cookies.iter().any(|c| c.contains(token.as_str()))
            {
                failures.push(format!("token forwarded: {} cookies {cookies:?}", r.path));
            }
        }
        if r.path.starts_with("/multi/") && !r.path.contains("mk=") {
            failures.push(format!("other parameters lost: {}", r.path));
        }
        if r.path.starts_with("/multi/x") && cookies.iter().any(|c| c.contains("session=")) {
            failures.push(format!("session cookie forwarded: {cookies:?}"));
        }
    }
    finish("token sizes, duplicates and places", seen, failures);
}

/// Claims that end up in headers, and odd JSON and JOSE headers.
#[test]
fn claims_and_jose_header_tricks() {
    let trap = HttpServer::start(|_req: &Recorded| {
        Reply::json(
            200,
            &jwks([Key::rsa2048_b().with_kid("attacker").jwk(Some("RS256"))]),
        )
    });
    let envoy = Envoy::builder()
        .plugin_config_json(&config())
        .concurrency(2)
        .cluster("trap", trap.port())
        .start();
    let tok = |c: Value| bearer(&mint("HS256", &main_key(), &json!({}), &c));
    let now = now();
    let base = || claims("alice");
    let auth = |t: String| vec![h("authorization", &t), h("x-user-name", "mallory")];
    let name_not_written = || user("alice");
    let mut cases = vec![
        // Values with CR, LF or NUL are never written; the client's copy of
        // the header is removed all the same. The request is allowed: the
        // token is valid, only the header is missing.
        case(
            "name with CRLF injection",
            "/api",
            auth(tok(with(base(), json!({"name": "x\r\nx-admin: mallory"})))),
            name_not_written(),
        ),
        case(
            "name with LF",
            "/api",
            auth(tok(with(base(), json!({"name": "a\nb"})))),
            name_not_written(),
        ),
        case(
            "name with CR",
            "/api",
            auth(tok(with(base(), json!({"name": "a\rb"})))),
            name_not_written(),
        ),
        case(
            "name with NUL",
            "/api",
            auth(tok(with(base(), json!({"name": "a\u{0}b"})))),
            name_not_written(),
        ),
        case(
            "groups with a CRLF element",
            "/api",
            auth(tok(with(base(), json!({"groups": ["ok", "x\r\ny"]})))),
            name_not_written(),
        ),
        // NOTE: a `sub` the filter cannot write leaves the upstream with an
        // authenticated request and NO x-user-id at all.
        case(
            "sub with CRLF",
            "/api",
            vec![h(
                "authorization",
                &tok(with(base(), json!({"sub": "alice\r\nx-admin: 1"}))),
            )],
            Expect::Allow(vec![("x-auth-provider", vec!["corp".into()])]),
        ),
        // Long values (the token stays under the 8 KiB limit).
        case(
            "name of 5500 bytes",
            "/api",
            auth(tok(with(base(), json!({"name": "n".repeat(5500)})))),
            ident(&[
                ("x-user-id", "alice"),
                ("x-auth-provider", "corp"),
                ("x-user-name", &"n".repeat(5500)),
            ]),
        ),
        case(
            "sub of 5500 bytes",
            "/api",
            vec![h(
                "authorization",
                &tok(with(base(), json!({"sub": "s".repeat(5500)}))),
            )],
            user(&"s".repeat(5500)),
        ),
        // A group named "x,admin" would read as two groups upstream: the
        // groups header is not written at all.
        case(
            "group name with a comma",
            "/api",
            auth(tok(with(base(), json!({"groups": ["users", "x,admin"]})))),
            ident(&[("x-user-id", "alice"), ("x-auth-provider", "corp")]),
        ),
        case(
            "numeric and boolean claims",
            "/api",
            auth(tok(with(
                base(),
                json!({"name": 42, "groups": [true, 1.5]}),
            ))),
            ident(&[
                ("x-user-id", "alice"),
                ("x-auth-provider", "corp"),
                ("x-user-name", "42"),
                ("x-user-groups", "true,1.5"),
            ]),
        ),
        case(
            "object claim (not written)",
            "/api",
            auth(tok(with(base(), json!({"name": {"first": "a"}})))),
            name_not_written(),
        ),
        // exp and other dates as strings: not NumericDate, refused.
        case(
            "exp as a string",
            "/api",
            vec![h(
                "authorization",
                &tok(with(base(), json!({"exp": (now + 600).to_string()}))),
            )],
            invalid(""),
        ),
        case(
            "nbf as a string",
            "/api",
            vec![h("authorization", &tok(with(base(), json!({"nbf": "0"}))))],
            invalid(""),
        ),
        case(
            "iat as a string",
            "/api",
            vec![h("authorization", &tok(with(base(), json!({"iat": "0"}))))],
            invalid(""),
        ),
        case(
            "exp absent",
            "/api",
            vec![h("authorization", &tok(with(base(), json!({"exp": null}))))],
            invalid("expiration"),
        ),
        case(
            "exp as a float",
            "/api",
            vec![h(
                "authorization",
                &tok(with(base(), json!({"exp": (now + 600) as f64 + 0.5}))),
            )],
            user("alice"),
        ),
        // Every HTTP parser strips leading and trailing whitespace (RFC
        // 9110 §5.5): a token for "  alice " would be "alice" upstream, so
        // the subject is not written at all.
        case(
            "sub with surrounding spaces",
            "/api",
            vec![h(
                "authorization",
                &tok(with(base(), json!({"sub": "  alice "}))),
            )],
            ident(&[("x-auth-provider", "corp")]),
        ),
        case(
            "sub not a string",
            "/api",
            vec![h("authorization", &tok(with(base(), json!({"sub": 7}))))],
            user("7"),
        ),
    ];
    // Whitespace and non-ASCII in claims: written as they are.
    let ws = tok(with(base(), json!({"name": "  padded  "})));
    let utf = tok(with(base(), json!({"name": "José 🙂"})));
    for (name, t) in [
        ("name with surrounding spaces", ws),
        ("non-ASCII name", utf),
    ] {
        // x-user-name is recorded below (the echo server trims, lossy UTF-8).
        cases.push(case(
            name,
            "/api",
            auth(t),
            Expect::AllowExcept(
                vec![
                    ("x-user-id", vec!["alice".into()]),
                    ("x-auth-provider", vec!["corp".into()]),
                ],
                &["x-user-name"],
            ),
        ));
    }
    // Duplicate keys in the signed JSON: the LAST one wins everywhere.
    let hdr = r#"{"alg":"HS256","typ":"JWT","kid":"hs256"}"#;
    let exp = now + 600;
    let p = |extra: &str| {
        format!(
            r#"{{"iss":"{ISS}","aud":"{AUD}","provider":"corp","iat":{},"exp":{exp}{extra}}}"#,
            now - 5
        )
    };
    cases.extend([
        case("duplicate sub a, b", "/api", vec![h("authorization", &bearer(&signed_text(hdr, &p(r#","sub":"a","sub":"b""#))))], user("b")),
        case("duplicate iss (last wrong)", "/api", vec![h("authorization", &bearer(&signed_text(hdr, &p(r#","sub":"a","iss":"https://evil.test""#))))], invalid("issuer")),
        case("duplicate exp (first expired)", "/api", vec![h("authorization", &bearer(&signed_text(hdr, &format!(r#"{{"exp":1,"iss":"{ISS}","aud":"{AUD}","sub":"a","provider":"corp","exp":{exp}}}"#))))], user("a")),
        case("duplicate exp (last expired)", "/api", vec![h("authorization", &bearer(&signed_text(hdr, &p(r#","sub":"a","exp":1"#))))], invalid("expired")),
        case("duplicate alg none then HS256", "/api", vec![h("authorization", &bearer(&signed_text(r#"{"alg":"none","alg":"HS256","kid":"hs256"}"#, &p(r#","sub":"a""#))))], user("a")),
        case("duplicate alg HS256 then none", "/api", vec![h("authorization", &bearer(&signed_text(r#"{"alg":"HS256","alg":"none","kid":"hs256"}"#, &p(r#","sub":"a""#))))], invalid("none")),
    ]);
    // alg and kid tricks, key-carrying header parameters.
    let attacker = Key::rsa2048_b().with_kid("attacker");
    let attacker_token = |extra: Value| bearer(&mint("RS256", &attacker, &extra, &base()));
    let jku = format!("http://127.0.0.1:{}/jwks.json", trap.port());
    let hs = |extra: Value| bearer(&mint("HS256", &main_key(), &extra, &base()));
    cases.extend([
        case(
            "alg 'HS256 '",
            "/api",
            vec![h("authorization", &hs(json!({"alg": "HS256 "})))],
            invalid("unsupported algorithm"),
        ),
        case(
            "alg 'hs256'",
            "/api",
            vec![h("authorization", &hs(json!({"alg": "hs256"})))],
            invalid("unsupported algorithm"),
        ),
        case(
            "alg 'HS256\\u0000'",
            "/api",
            vec![h("authorization", &hs(json!({"alg": "HS256\u{0}"})))],
            invalid("unsupported algorithm"),
        ),
        case(
            "alg as an array",
            "/api",
            vec![h("authorization", &hs(json!({"alg": ["HS256"]})))],
            invalid("malformed"),
        ),
        case(
            "alg nested in an object",
            "/api",
            vec![h("authorization", &hs(json!({"alg": {"alg": "HS256"}})))],
            invalid("malformed"),
        ),
        case(
            "kid path traversal",
            "/api",
            vec![h(
                "authorization",
                &hs(json!({"kid": "../../../../etc/passwd"})),
            )],
            invalid("unknown kid"),
        ),
        case(
            "kid with NUL",
            "/api",
            vec![h("authorization", &hs(json!({"kid": "hs256\u{0}"})))],
            invalid("unknown kid"),
        ),
        case(
            "kid as a number",
            "/api",
            vec![h("authorization", &hs(json!({"kid": 256})))],
            invalid("malformed"),
        ),
        case(
            "crit [exp]",
            "/api",
            vec![h("authorization", &hs(json!({"crit": ["exp"], "exp": 1})))],
            invalid("critical"),
        ),
        case(
            "crit []",
            "/api",
            vec![h("authorization", &hs(json!({"crit": []})))],
            invalid(""),
        ),
        case(
            "b64 false",
            "/api",
            vec![h(
                "authorization",
                &hs(json!({"b64": false, "crit": ["b64"]})),
            )],
            invalid(""),
        ),
        // A valid token with jku/x5u/jwk present: the parameters are ignored.
        case(
            "valid token with jku, x5u",
            "/api",
            vec![h("authorization", &hs(json!({"jku": jku, "x5u": jku})))],
            user("alice"),
        ),
        case(
            "attacker key, jku to its JWKS",
            "/api",
            vec![h("authorization", &attacker_token(json!({"jku": jku})))],
            invalid("unknown kid"),
        ),
        case(
            "attacker key, jku via cluster name",
            "/api",
            vec![h(
                "authorization",
                &attacker_token(json!({"jku": "http://trap/jwks.json"})),
            )],
            invalid("unknown kid"),
        ),
        case(
            "attacker key, x5u",
            "/api",
            vec![h("authorization", &attacker_token(json!({"x5u": jku})))],
            invalid("unknown kid"),
        ),
        case(
            "attacker key embedded as jwk",
            "/api",
            vec![h(
                "authorization",
                &attacker_token(json!({"jwk": attacker.jwk(Some("RS256"))})),
            )],
            invalid("unknown kid"),
        ),
        case(
            "attacker key, our kid, embedded jwk",
            "/api",
            vec![h(
                "authorization",
                &bearer(&mint(
                    "RS256",
                    &attacker.clone().with_kid("rsa-2048"),
                    &json!({"jwk": attacker.jwk(Some("RS256"))}),
                    &base(),
                )),
            )],
            invalid("bad signature"),
        ),
        case(
            "attacker key, x5c",
            "/api",
            vec![h(
                "authorization",
                &attacker_token(json!({"x5c": ["MIIB"]})),
            )],
            invalid("unknown kid"),
        ),
    ]);
    let (seen, failures) = run(&envoy, &cases);
    // What the upstream saw for the whitespace / non-ASCII / control names:
    // the filter writes the value as is; Envoy forwards it as is.
    let mut notes = Vec::new();
    for r in envoy.upstream().requests() {
        if let Some(v) = r.header("x-user-name").first() {
            if v.len() < 64 {
                notes.push(format!("x-user-name at the upstream: {v:?}"));
            }
        }
    }
    for n in &notes {
        println!("{n}");
    }
    // The trap JWKS server was never contacted, directly or through the
    // `trap` cluster.
    thread_sleep_ms(300);
    assert_eq!(
        trap.request_count(),
        0,
        "the filter fetched a key from a URL in a token: {:?}",
        trap.requests()
    );
    finish("claims and JOSE header tricks", seen, failures);
}
