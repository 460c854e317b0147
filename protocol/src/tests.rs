// Tests may unwrap: a panic is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn field_of(r: Result<FeedResponse, ProtocolError>) -> String {
    match r {
        Err(ProtocolError::Invalid(e)) => e.field,
        other => format!("unexpected: {other:?}"),
    }
}

fn admin_err(body: &str) -> FieldError {
    match AdminRequest::parse(body.as_bytes()) {
        Err(e) => e,
        Ok(r) => FieldError::new("unexpected-ok", format!("{r:?}")),
    }
}

#[test]
fn parses_the_documented_example() {
    let body = br#"{"cursor": "1042", "reset": false,
        "revoked": [{"jti": "a1b2", "exp": 1767225600}],
        "revoked_subjects": [{"sub": "8b8ec006", "before": 1767139200, "exp": 1767225600}]}"#;
    let r = FeedResponse::parse(body).unwrap();
    assert_eq!(r.cursor, "1042");
    assert!(!r.reset);
    assert_eq!(
        r.revoked,
        vec![RevokedToken {
            jti: "a1b2".into(),
            iss: None,
            exp: 1767225600
        }]
    );
    assert_eq!(
        r.revoked_subjects,
        vec![RevokedSubject {
            sub: "8b8ec006".into(),
            iss: None,
            before: 1767139200,
            exp: 1767225600
        }]
    );
}

fn scoped_token(jti: &str, iss: &str, exp: u64) -> RevokedToken {
    RevokedToken {
        jti: jti.into(),
        iss: Some(iss.into()),
        exp,
    }
}

fn scoped_subject(sub: &str, iss: &str, before: u64, exp: u64) -> RevokedSubject {
    RevokedSubject {
        sub: sub.into(),
        iss: Some(iss.into()),
        before,
        exp,
    }
}

#[test]
fn parses_the_documented_example_with_issuers() {
    let body = br#"{"cursor": "1042", "reset": false,
        "revoked": [{"jti": "a1b2", "exp": 1767225600},
                    {"jti": "c3d4", "iss": "https://idp.example.com", "exp": 1767225600}],
        "revoked_subjects": [{"sub": "8b8e", "before": 1767139200, "exp": 1767225600},
                             {"sub": "8b8e", "iss": "https://idp.example.com",
                              "before": 1767139200, "exp": 1767225600}]}"#;
    let r = FeedResponse::parse(body).unwrap();
    assert_eq!(r.revoked[0].iss, None);
    assert_eq!(
        r.revoked[1],
        scoped_token("c3d4", "https://idp.example.com", 1767225600)
    );
    assert_eq!(r.revoked_subjects[0].iss, None);
    assert_eq!(
        r.revoked_subjects[1],
        scoped_subject("8b8e", "https://idp.example.com", 1767139200, 1767225600)
    );
}

#[test]
fn issuer_is_written_only_when_present() {
    let unscoped = FeedResponse {
        cursor: "c".into(),
        reset: false,
        revoked: vec![RevokedToken {
            jti: "a".into(),
            iss: None,
            exp: 5,
        }],
        revoked_subjects: vec![RevokedSubject {
            sub: "u".into(),
            iss: None,
            before: 4,
            exp: 5,
        }],
        more: false,
    };
    // The bytes of an answer without issuers, as they were before the field.
    assert_eq!(
        unscoped.to_json(),
        br#"{"cursor":"c","reset":false,"revoked":[{"jti":"a","exp":5}],"revoked_subjects":[{"sub":"u","before":4,"exp":5}]}"#
    );
    let scoped = FeedResponse {
        revoked: vec![scoped_token("a", "https://a.example/", 5)],
        revoked_subjects: vec![scoped_subject("u", "iss \"q\"\n", 4, 5)],
        ..unscoped
    };
    let bytes = scoped.to_json();
    assert_eq!(
        bytes,
        br#"{"cursor":"c","reset":false,"revoked":[{"jti":"a","iss":"https://a.example/","exp":5}],"revoked_subjects":[{"sub":"u","iss":"iss \"q\"\n","before":4,"exp":5}]}"#
    );
    assert_eq!(FeedResponse::parse(&bytes).unwrap(), scoped);
    let entries = [
        Revocation::Token(scoped.revoked[0].clone()),
        Revocation::Subject(scoped.revoked_subjects[0].clone()),
    ];
    assert_eq!(encode_feed("c", false, entries.iter()), bytes);
    // serde's own encoding of an entry agrees with the hand-written one.
    for t in [&scoped.revoked[0], &unscoped_token()] {
        let mut hand = Vec::new();
        write_token(&mut hand, t);
        assert_eq!(serde_json::to_vec(t).unwrap(), hand);
    }
    assert_eq!(entries[0].iss(), Some("https://a.example/"));
    assert_eq!(
        Revocation::Token(unscoped_token()).iss(),
        None,
        "an entry without iss applies to every issuer"
    );
}

fn unscoped_token() -> RevokedToken {
    RevokedToken {
        jti: "a".into(),
        iss: None,
        exp: 5,
    }
}

#[test]
fn feed_refuses_a_bad_issuer_naming_it() {
    for bad in [r#""""#, "null", "7", "{}", "[]", "true"] {
        let body = format!(
            r#"{{"cursor":"c","revoked":[{{"jti":"a","exp":1}},{{"jti":"b","iss":{bad},"exp":1}}]}}"#
        );
        assert_eq!(
            field_of(FeedResponse::parse(body.as_bytes())),
            "revoked[1].iss",
            "iss {bad}"
        );
        let body = format!(
            r#"{{"cursor":"c","revoked_subjects":[{{"sub":"s","iss":{bad},"before":1,"exp":2}}]}}"#
        );
        assert_eq!(
            field_of(FeedResponse::parse(body.as_bytes())),
            "revoked_subjects[0].iss",
            "iss {bad}"
        );
    }
    // Unknown fields beside it are still ignored.
    let r = FeedResponse::parse(
        br#"{"cursor":"c","revoked":[{"jti":"a","iss":"A","aud":"x","exp":1}]}"#,
    )
    .unwrap();
    assert_eq!(r.revoked, vec![scoped_token("a", "A", 1)]);
}

#[test]
fn the_issuer_is_part_of_an_entry_identity() {
    use std::collections::HashSet;
    let set: HashSet<Revocation> = [
        Revocation::Token(scoped_token("1", "A", 9)),
        Revocation::Token(scoped_token("1", "B", 9)),
        Revocation::Token(RevokedToken {
            jti: "1".into(),
            iss: None,
            exp: 9,
        }),
        Revocation::Token(scoped_token("1", "A", 9)),
        Revocation::Subject(scoped_subject("1", "A", 1, 9)),
    ]
    .into_iter()
    .collect();
    assert_eq!(set.len(), 4);
}

#[test]
fn admin_accepts_an_issuer_on_both_kinds() {
    let body = br#"[{"jti":"a","iss":"https://a.example","exp":5},
                    {"sub":"u","iss":"B","before":4,"exp":5},
                    {"iss":"C","exp":6,"jti":"b"}]"#;
    let r = AdminRequest::parse(body).unwrap();
    assert_eq!(
        r.revocations,
        vec![
            Revocation::Token(scoped_token("a", "https://a.example", 5)),
            Revocation::Subject(scoped_subject("u", "B", 4, 5)),
            Revocation::Token(scoped_token("b", "C", 6)),
        ]
    );
    assert_eq!(AdminRequest::parse(&r.to_json()).unwrap(), r);
    assert_eq!(
        AdminRequest::parse(br#"{"sub":"u","iss":"B","before":4,"exp":5}"#)
            .unwrap()
            .revocations,
        vec![Revocation::Subject(scoped_subject("u", "B", 4, 5))]
    );
    let ok = "i".repeat(MAX_ID_BYTES);
    assert!(
        AdminRequest::parse(format!(r#"{{"jti":"a","iss":"{ok}","exp":5}}"#).as_bytes()).is_ok()
    );
}

#[test]
fn admin_names_a_bad_issuer() {
    let long = "i".repeat(MAX_ID_BYTES + 1);
    let long_case = format!(r#"{{"sub":"u","iss":"{long}","before":1,"exp":5}}"#);
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"jti":"a","iss":"","exp":5}"#,
            "iss",
            "must be a non-empty string",
        ),
        (
            r#"{"jti":"a","iss":null,"exp":5}"#,
            "iss",
            "must be a non-empty string",
        ),
        (
            r#"{"jti":"a","iss":7,"exp":5}"#,
            "iss",
            "must be a non-empty string",
        ),
        (
            r#"{"jti":"a","iss":["A"],"exp":5}"#,
            "iss",
            "must be a non-empty string",
        ),
        (
            r#"{"sub":"u","iss":"","before":1,"exp":5}"#,
            "iss",
            "must be a non-empty string",
        ),
        (&long_case, "iss", "must be at most 1024 bytes"),
        (
            r#"[{"jti":"a","exp":5},{"jti":"b","iss":false,"exp":5}]"#,
            "revocations[1].iss",
            "revocations[1].iss: must be a non-empty string",
        ),
        (r#"{"iss":"A","exp":5}"#, "jti", "is required"),
        (
            r#"{"jti":"a","issuer":"A","exp":5}"#,
            "issuer",
            "unknown field",
        ),
    ];
    for (body, field, msg) in cases {
        let e = admin_err(body);
        assert_eq!(e.field, *field, "body {body}: {e}");
        assert!(e.to_string().contains(msg), "body {body}: {e}");
    }
}

#[test]
fn optional_fields_default_and_unknown_fields_are_ignored() {
    let r = FeedResponse::parse(
        br#"{"cursor":"c","future":{"x":1},"revoked":[{"jti":"j","exp":0,"note":"n"}]}"#,
    )
    .unwrap();
    assert!(!r.reset);
    assert_eq!(r.revoked.len(), 1);
    assert_eq!(r.revoked[0].exp, 0);
    assert!(r.revoked_subjects.is_empty());
}

#[test]
fn rejects_non_json() {
    assert!(matches!(
        FeedResponse::parse(b"not json"),
        Err(ProtocolError::NotJson(_))
    ));
    assert!(matches!(
        FeedResponse::parse(b""),
        Err(ProtocolError::NotJson(_))
    ));
}

#[test]
fn rejects_bad_shapes_naming_the_field() {
    let cases: &[(&str, &str)] = &[
        (r#"[]"#, ""),
        (r#"{"reset":true}"#, "cursor"),
        (r#"{"cursor":""}"#, "cursor"),
        (r#"{"cursor":17}"#, "cursor"),
        (r#"{"cursor":"c","reset":"yes"}"#, "reset"),
        (r#"{"cursor":"c","revoked":{}}"#, "revoked"),
        (r#"{"cursor":"c","revoked":null}"#, "revoked"),
        (
            r#"{"cursor":"c","revoked":[{"jti":"","exp":1}]}"#,
            "revoked[0].jti",
        ),
        (
            r#"{"cursor":"c","revoked":[{"jti":"a","exp":1},{"exp":1}]}"#,
            "revoked[1].jti",
        ),
        (
            r#"{"cursor":"c","revoked":[{"jti":"a","exp":-1}]}"#,
            "revoked[0].exp",
        ),
        (
            r#"{"cursor":"c","revoked":[{"jti":"a","exp":1.5}]}"#,
            "revoked[0].exp",
        ),
        (
            r#"{"cursor":"c","revoked":[{"jti":"a","exp":1e3}]}"#,
            "revoked[0].exp",
        ),
        (
            r#"{"cursor":"c","revoked":[{"jti":"a","exp":"1"}]}"#,
            "revoked[0].exp",
        ),
        (
            r#"{"cursor":"c","revoked":[{"jti":"a"}]}"#,
            "revoked[0].exp",
        ),
        (r#"{"cursor":"c","revoked":[7]}"#, "revoked[0]"),
        (
            r#"{"cursor":"c","revoked_subjects":[{"sub":"","before":1,"exp":2}]}"#,
            "revoked_subjects[0].sub",
        ),
        (
            r#"{"cursor":"c","revoked_subjects":[{"sub":"s","before":-5,"exp":2}]}"#,
            "revoked_subjects[0].before",
        ),
        (
            r#"{"cursor":"c","revoked_subjects":[{"sub":"s","before":5}]}"#,
            "revoked_subjects[0].exp",
        ),
    ];
    for (body, field) in cases {
        assert_eq!(
            field_of(FeedResponse::parse(body.as_bytes())),
            *field,
            "body {body}"
        );
    }
}

#[test]
fn rejects_oversized_cursor() {
    let body = format!(r#"{{"cursor":"{}"}}"#, "c".repeat(MAX_CURSOR_BYTES + 1));
    assert_eq!(field_of(FeedResponse::parse(body.as_bytes())), "cursor");
}

#[test]
fn round_trips_through_to_json() {
    let r = FeedResponse {
        cursor: "ab-12".into(),
        reset: true,
        revoked: vec![RevokedToken {
            jti: "quote\" back\\ nl\n ctl\u{1} é".into(),
            iss: None,
            exp: u64::MAX,
        }],
        revoked_subjects: vec![RevokedSubject {
            sub: "s".into(),
            iss: None,
            before: 0,
            exp: 10,
        }],
        more: false,
    };
    let bytes = r.to_json();
    assert_eq!(FeedResponse::parse(&bytes).unwrap(), r);
    // The same content through the borrowed encoder gives the same bytes.
    let entries = [
        Revocation::Subject(r.revoked_subjects[0].clone()),
        Revocation::Token(r.revoked[0].clone()),
    ];
    assert_eq!(encode_feed(&r.cursor, true, entries.iter()), bytes);
}

#[test]
fn empty_response_encodes_all_fields() {
    let bytes = encode_feed("7", false, [].iter());
    assert_eq!(
        bytes,
        br#"{"cursor":"7","reset":false,"revoked":[],"revoked_subjects":[]}"#
    );
}

#[test]
fn hmac_matches_rfc4231_vectors() {
    let cases: &[(&[u8], &[u8], &str)] = &[
        (
            &[0x0b; 20],
            b"Hi There",
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        (
            b"Jefe",
            b"what do ya want for nothing?",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
        (
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        ),
    ];
    for (key, data, hex) in cases {
        assert_eq!(sign(key, data), format!("sha256={hex}"));
    }
}

#[test]
fn hmac_with_a_block_sized_key_matches_the_hmac_crate() {
    use hmac::Mac;
    for len in [0usize, 1, 63, 64, 65, 200] {
        let key = vec![0x5c_u8; len];
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(b"body");
        let want: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(hmac_sha256(&key, &[b"body"]), want, "key length {len}");
    }
}

#[test]
fn verify_accepts_own_signature_and_rejects_tampering() {
    let secret = b"s3cret";
    let body = br#"{"cursor":"1","reset":true,"revoked":[],"revoked_subjects":[]}"#;
    let header = sign(secret, body);
    assert!(header.starts_with("sha256="));
    assert_eq!(header.len(), 7 + 64);
    assert!(header[7..]
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert!(verify_signature(secret, body, &header));
    assert!(verify_signature(secret, body, &format!("  {header} ")));
    assert!(verify_signature(
        secret,
        body,
        &header.to_uppercase().replace("SHA256=", "sha256=")
    ));
    assert!(!verify_signature(b"other", body, &header));
    assert!(!verify_signature(secret, b"{}", &header));
    assert!(!verify_signature(secret, body, &header[7..]));
    assert!(!verify_signature(secret, body, &header[..header.len() - 1]));
    assert!(!verify_signature(secret, body, "sha256=zz"));
    assert!(!verify_signature(secret, body, ""));
    let mut flipped = header.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
    assert!(!verify_signature(
        secret,
        body,
        &String::from_utf8(flipped).unwrap()
    ));
}

#[test]
fn admin_accepts_single_entries_and_lists() {
    let r = AdminRequest::parse(br#"{"jti":"a","exp":5}"#).unwrap();
    assert_eq!(
        r.revocations,
        vec![Revocation::Token(RevokedToken {
            jti: "a".into(),
            iss: None,
            exp: 5
        })]
    );
    let r = AdminRequest::parse(br#"{"sub":"u","before":4,"exp":5}"#).unwrap();
    assert_eq!(
        r.revocations,
        vec![Revocation::Subject(RevokedSubject {
            sub: "u".into(),
            iss: None,
            before: 4,
            exp: 5
        })]
    );
    let list = br#"[{"jti":"a","exp":5},{"sub":"u","before":4,"exp":5}]"#;
    let r = AdminRequest::parse(list).unwrap();
    assert_eq!(r.revocations.len(), 2);
    let wrapped = br#"{"revocations":[{"jti":"a","exp":5},{"sub":"u","before":4,"exp":5}]}"#;
    assert_eq!(AdminRequest::parse(wrapped).unwrap(), r);
    // to_json gives back something parse accepts unchanged.
    assert_eq!(AdminRequest::parse(&r.to_json()).unwrap(), r);
}

#[test]
fn admin_names_the_bad_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("nope", "", "not valid JSON"),
        ("17", "", "must be a revocation object"),
        (r#"{"exp":5}"#, "jti", "is required"),
        (r#"{"jti":"a"}"#, "exp", "is required"),
        (
            r#"{"jti":"a","exp":0}"#,
            "exp",
            "must be a positive integer",
        ),
        (
            r#"{"jti":"a","exp":-3}"#,
            "exp",
            "must be a positive integer",
        ),
        (
            r#"{"jti":"a","exp":2.5}"#,
            "exp",
            "must be a positive integer",
        ),
        (
            r#"{"jti":"a","exp":"5"}"#,
            "exp",
            "must be a positive integer",
        ),
        (r#"{"jti":"","exp":5}"#, "jti", "must be a non-empty string"),
        (r#"{"jti":7,"exp":5}"#, "jti", "must be a non-empty string"),
        (
            r#"{"jti":"a","exp":5,"expires":6}"#,
            "expires",
            "unknown field",
        ),
        (
            r#"{"jti":"a","exp":5,"before":6}"#,
            "before",
            "unknown field",
        ),
        (r#"{"jti":"a","sub":"b","exp":5}"#, "sub", "not both"),
        (r#"{"sub":"u","exp":5}"#, "before", "is required"),
        (
            r#"{"sub":"u","before":0,"exp":5}"#,
            "before",
            "must be a positive integer",
        ),
        ("[]", "revocations", "at least one"),
        (r#"{"revocations":{}}"#, "revocations", "must be an array"),
        (r#"{"revocations":[],"x":1}"#, "x", "unknown field"),
        (
            r#"[{"jti":"a","exp":5},{"jti":"b","exp":5},{"jti":"c","exp":5},{"jti":"d","exp":-1}]"#,
            "revocations[3].exp",
            "revocations[3].exp: must be a positive integer",
        ),
        (
            r#"[{"jti":"a","exp":5},"x"]"#,
            "revocations[1]",
            "must be an object",
        ),
        (
            r#"{"revocations":[{"sub":"u","before":1,"exp":2,"iat":3}]}"#,
            "revocations[0].iat",
            "unknown field",
        ),
    ];
    for (body, field, msg) in cases {
        let e = admin_err(body);
        assert_eq!(e.field, *field, "body {body}: {e}");
        assert!(e.to_string().contains(msg), "body {body}: {e}");
    }
}

#[test]
fn admin_caps_id_length() {
    let long = "x".repeat(MAX_ID_BYTES + 1);
    let e = admin_err(&format!(r#"{{"jti":"{long}","exp":5}}"#));
    assert_eq!(e.field, "jti");
    let ok = "x".repeat(MAX_ID_BYTES);
    assert!(AdminRequest::parse(format!(r#"{{"jti":"{ok}","exp":5}}"#).as_bytes()).is_ok());
}

#[test]
fn error_body_carries_the_field() {
    let e = FieldError::new("revocations[3].exp", MSG_POSITIVE);
    let body = ErrorBody::from(&e);
    assert_eq!(body.field.as_deref(), Some("revocations[3].exp"));
    assert_eq!(body.error, "revocations[3].exp: must be a positive integer");
    let json = serde_json::to_string(&ErrorBody::from(&FieldError::new("", "bad"))).unwrap();
    assert_eq!(json, r#"{"error":"bad"}"#);
}

#[test]
fn request_path_encodes_the_cursor() {
    assert_eq!(
        feed_request_path("/v1/revocations", None),
        "/v1/revocations"
    );
    assert_eq!(
        feed_request_path("/v1/revocations", Some("ab12-1700000000000-3")),
        "/v1/revocations?since=ab12-1700000000000-3"
    );
    assert_eq!(
        feed_request_path("/feed?x=1", Some("a b&c=d/é")),
        "/feed?x=1&since=a%20b%26c%3Dd%2F%C3%A9"
    );
}

#[test]
fn more_is_optional_and_round_trips() {
    let plain = br#"{"cursor":"7","reset":true}"#;
    assert!(!FeedResponse::parse(plain).unwrap().more);
    let page = FeedResponse {
        cursor: "e-9~4".into(),
        reset: true,
        revoked: vec![RevokedToken {
            jti: "a".into(),
            iss: None,
            exp: 5,
        }],
        revoked_subjects: vec![],
        more: true,
    };
    let bytes = page.to_json();
    assert_eq!(
        bytes,
        br#"{"cursor":"e-9~4","reset":true,"revoked":[{"jti":"a","exp":5}],"revoked_subjects":[],"more":true}"#
    );
    assert_eq!(FeedResponse::parse(&bytes).unwrap(), page);
    let entries = [Revocation::Token(page.revoked[0].clone())];
    assert_eq!(
        encode_feed_page(&page.cursor, true, true, entries.iter()),
        bytes
    );
    // Without more, the bytes are those of the unpaged encoder.
    assert_eq!(
        encode_feed_page("7", false, false, [].iter()),
        encode_feed("7", false, [].iter())
    );
    assert_eq!(
        field_of(FeedResponse::parse(br#"{"cursor":"7","more":"yes"}"#)),
        "more"
    );
}

#[test]
fn paged_path_and_cursor_base() {
    assert_eq!(
        paged_request_path("/v1/revocations", None),
        "/v1/revocations?paged=1"
    );
    assert_eq!(
        paged_request_path("/v1/revocations", Some("e-5~3")),
        "/v1/revocations?since=e-5~3&paged=1"
    );
    assert_eq!(cursor_base("e-5~3"), "e-5");
    assert_eq!(cursor_base("e-1700-0~17.2"), "e-1700-0");
    assert_eq!(cursor_base("e-5"), "e-5");
}
