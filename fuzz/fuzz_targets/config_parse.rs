//! Plugin configuration bytes: `config::Policy::from_json`.
//!
//! Oracles for an accepted configuration: it fails closed where it must
//! (at least one provider, each with a usable verification key), the headers
//! it will write are valid lowercase names and never routing headers, the
//! realm is quotable, rules only name existing providers, and `decide` on it
//! does not panic.
#![no_main]

use jwt_auth_core::config::{KeySource, Policy};
use jwt_auth_core::decision::{decide, Env};
use jwt_auth_core::request::{header_refs, Request};
use jwt_auth_core::rules::Requirement;
use libfuzzer_sys::fuzz_target;

fn check_requirement(r: &Requirement, providers: usize) {
    if let Requirement::Token { providers: p, .. } = r {
        assert!(!p.is_empty());
        assert!(
            p.iter().all(|&i| i < providers),
            "rule names a missing provider"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(policy) = Policy::from_json(data) else {
        return;
    };
    assert!(!policy.providers.is_empty());
    assert!(policy
        .realm
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'));
    for p in &policy.providers {
        if let KeySource::Inline(keys) = &p.keys {
            assert!(keys.verification_key_count() > 0, "provider without keys");
        }
        assert!(p.max_token_bytes > 0);
        assert!(!p.sources.is_empty(), "provider without a token source");
    }
    for h in &policy.strip_headers {
        assert!(!h.is_empty());
        assert!(
            h.bytes().all(|b| b.is_ascii_digit()
                || b.is_ascii_lowercase()
                || b"!#$%&'*+-.^_`|~".contains(&b)),
            "bad header name {h:?}"
        );
        assert!(!matches!(
            h.as_str(),
            "host" | "content-length" | "transfer-encoding" | "connection" | "te" | "upgrade"
        ));
    }
    check_requirement(&policy.default_requirement, policy.providers.len());
    for rule in &policy.rules {
        check_requirement(&rule.requires, policy.providers.len());
        assert!(rule.methods.iter().all(|m| *m == m.to_ascii_uppercase()));
    }

    let headers = vec![
        ("authorization".to_string(), b"Bearer a.b.c".to_vec()),
        ("x-user-id".to_string(), b"spoofed".to_vec()),
    ];
    let env = Env::basic(1_750_000_000);
    for path in ["/", "/healthz", "/admin/x?access_token=a.b.c"] {
        let request = Request {
            method: "GET",
            path,
            headers: &header_refs(&headers),
        };
        let _ = decide(&policy, &request, &env);
    }
});
