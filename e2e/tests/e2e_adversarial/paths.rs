//! Paths spelled to walk around a rule: the rule decides on the path the
//! upstream is sent, and a bypassed route passes no token on.

use super::harness::*;

/// Path tricks against the rules, with the shipped normalization settings:
/// a bypass is never reachable for a path Envoy forwards as a protected one.
#[test]
fn path_tricks() {
    let envoy = start("DROP_HEADER");
    let alice = bearer(&token_for("alice"));
    let admin = bearer(&mint(
        "HS256",
        &main_key(),
        &json!({}),
        &with(claims("root"), json!({"role": "admin"})),
    ));
    let bad = || Expect::Refused(&[400], true);
    let denied = || Expect::Deny(403, Some("insufficient_scope"), None);
    // (path, expectation without a token, with alice (no admin role), with admin)
    let table: Vec<(&str, Expect, Expect, Expect)> = vec![
        ("/healthz/../admin", missing(), denied(), user("root")),
        ("//admin", missing(), denied(), user("root")),
        ("/%2e%2e/admin", missing(), denied(), user("root")),
        ("/healthz/%2e%2e/admin", missing(), denied(), user("root")),
        ("/healthz/%2E%2E/admin", missing(), denied(), user("root")),
        ("/healthz/.%2e/admin", missing(), denied(), user("root")),
        ("/healthz/./../admin", missing(), denied(), user("root")),
        // Dot-segments are removed before slashes are merged: `..` takes
        // out the empty segment, the request is for /healthz/admin and is
        // forwarded as such (RFC 3986 §5.2.4), so the bypass is right.
        (
            "/healthz//../admin",
            Expect::AllowAt(vec![], "/healthz/admin"),
            anon(),
            anon(),
        ),
        ("/./healthz/../../admin", missing(), denied(), user("root")),
        ("/healthz%2F..%2Fadmin", bad(), bad(), bad()),
        ("/healthz%2f..%2fadmin", bad(), bad(), bad()),
        ("/healthz%5C..%5Cadmin", bad(), bad(), bad()),
        ("/healthz/..%2fadmin", bad(), bad(), bad()),
        (
            "/healthz?{mk}",
            Expect::AllowAt(vec![], "/healthz"),
            Expect::AllowAt(vec![], "/healthz"),
            anon(),
        ),
        ("/admin?{mk}", missing(), denied(), user("root")),
        (
            "/admin?{mk}&next=/healthz",
            missing(),
            denied(),
            user("root"),
        ),
        ("/admin?/healthz&{mk}", missing(), denied(), user("root")),
        // Letter case and a trailing slash do not take a path out of its
        // rule: case-insensitive routers serve these as the bypassed paths.
        ("/HEALTHZ", anon(), anon(), anon()),
        ("/Healthz/live", anon(), anon(), anon()),
        ("/healthZ", anon(), anon(), anon()),
        ("/STATUS", anon(), anon(), anon()),
        ("/status/", anon(), anon(), anon()),
        ("/ADMIN", missing(), denied(), user("root")),
        ("/Admin/x", missing(), denied(), user("root")),
        ("/status/../admin", missing(), denied(), user("root")),
        (
            "/status?{mk}",
            Expect::AllowAt(vec![], "/status"),
            anon(),
            anon(),
        ),
        // `%68` is an encoded `h`: normalized to /healthz, and forwarded so.
        (
            "/%68ealthz",
            Expect::AllowAt(vec![], "/healthz"),
            anon(),
            anon(),
        ),
        ("/admin%2e", missing(), denied(), user("root")),
        // `;` is an ordinary path character to Envoy and the filter: the
        // request is /healthz;x=y everywhere, a bypassed path.
        (
            "/healthz;x=y",
            Expect::AllowAt(vec![], "/healthz;x=y"),
            anon(),
            anon(),
        ),
        ("/admin;x=y", missing(), denied(), user("root")),
        // The Tomcat/Spring trick: Envoy's normalization treats `..;` as a
        // dot-segment, so this is /admin to Envoy, the filter and upstream.
        (
            "/healthz/..;/admin",
            missing(),
            denied(),
            Expect::AllowAt(
                vec![
                    ("x-user-id", vec!["root".into()]),
                    ("x-auth-provider", vec!["corp".into()]),
                ],
                "/admin",
            ),
        ),
        // An encoded NUL is refused by Envoy.
        ("/healthz/%00/../../admin", bad(), bad(), bad()),
        ("/healthz/%2e%2e%2fadmin", bad(), bad(), bad()),
        ("/public/../admin", missing(), denied(), user("root")),
        ("/public/%2e%2e/api", missing(), user("alice"), user("root")),
    ];
    let mut cases = Vec::new();
    for (path, none, with_alice, with_admin) in table {
        cases.push(case(format!("{path} no token"), path, vec![], none));
        cases.push(case(
            format!("{path} alice"),
            path,
            vec![h("authorization", &alice)],
            with_alice,
        ));
        cases.push(case(
            format!("{path} admin"),
            path,
            vec![h("authorization", &admin)],
            with_admin,
        ));
    }
    // Fragments: Envoy refuses a request target with `#`.
    for path in [
        "/healthz?{mk}#/../admin",
        "/admin?{mk}#/healthz",
        "/admin#/../healthz?{mk}",
    ] {
        cases.push(case(format!("fragment {path}"), path, vec![], bad()));
    }
    // Backslashes are slashes to Envoy's normalization.
    for path in ["/healthz\\..\\admin", "/healthz/..\\admin"] {
        cases.push(case(format!("backslash {path}"), path, vec![], missing()));
    }
    cases.push(case("backslash first", "\\admin", vec![], bad()));
    // Absolute-form request targets (HTTP/1.1).
    cases.push(
        case(
            "absolute-form /healthz/../admin",
            "http://127.0.0.1/healthz/../admin",
            vec![],
            missing(),
        )
        .h1_only(),
    );
    cases.push(
        case(
            "absolute-form /healthz",
            "http://127.0.0.1/healthz",
            vec![],
            anon(),
        )
        .h1_only(),
    );
    // Raw bytes in the path.
    // HTTP/1.1 refuses it; HTTP/2 takes it and normalizes it to /admin.
    let mut c = case("non-UTF-8 path", "", vec![], bad()).h2_expect(missing());
    c.path = b"/healthz/\xff/../../admin".to_vec();
    cases.push(c);
    let (seen, failures) = run(&envoy, &cases);
    finish("path tricks", seen, failures);
}

/// A bypassed route passes no token on: the upstream and its logs see
/// neither the `Authorization` header nor a token in the query or a cookie.
#[test]
fn a_bypassed_route_passes_no_token_on() {
    let envoy = start("DROP_HEADER");
    let t = token_for("alice");
    let marker = format!("bp-{}", random_id());
    let resp = envoy.get(
        &format!("/healthz?access_token={t}&{marker}"),
        &[
            ("authorization", &bearer(&t)),
            ("cookie", &format!("session={t}; theme=dark")),
        ],
    );
    assert_eq!(resp.status, 200);
    let seen = envoy.upstream().requests_matching(&marker);
    let [req] = seen.as_slice() else {
        panic!("expected one request at the upstream, got {seen:?}");
    };
    assert!(req.header("authorization").is_empty(), "{req:?}");
    assert!(!req.path.contains(&t), "{}", req.path);
    assert!(req.path.ends_with(&marker), "{}", req.path);
    assert!(!req.header("cookie").concat().contains(&t), "{req:?}");
    assert_eq!(req.header("cookie"), vec!["theme=dark".to_string()]);
}
