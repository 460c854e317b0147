//! Raw token text: `jwt::parse` → `KeySet::verify` (every key type) →
//! `jwt::check_claims` under two policies.
//!
//! Oracles besides "never panics": a verified HS* token is signed with one of
//! the configured secrets (no algorithm confusion with a public key), error
//! phrases stay header-safe, and the size limit is applied first.
#![no_main]

use fuzz_support::{
    assert_header_safe_error, claim_policies, hmac_secrets, hmac_sign, key_set, MAX_TOKEN_BYTES,
    NOW,
};
use jwt_auth_core::jwt::{check_claims, parse, TokenError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Header values that are not UTF-8 never reach the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if !text.is_empty() {
        assert_eq!(
            parse(text, text.len() - 1).err(),
            Some(TokenError::TooLarge),
            "size limit not applied first"
        );
    }
    let token = match parse(text, MAX_TOKEN_BYTES) {
        Ok(token) => token,
        Err(e) => {
            assert_header_safe_error(&e);
            return;
        }
    };
    assert!(!token.signature().is_empty());
    assert!(text.starts_with(token.signing_input()));

    match key_set().verify(&token) {
        Ok(()) => {
            if token.header.alg.is_symmetric() {
                let input = token.signing_input().as_bytes();
                assert!(
                    hmac_secrets()
                        .iter()
                        .any(|s| hmac_sign(token.header.alg, s, input) == token.signature()),
                    "HS token verified without any configured secret"
                );
            }
        }
        Err(e) => assert_header_safe_error(&e),
    }
    // Claims are only checked after verification in the filter, but the
    // checks must be total on any claim set.
    for policy in claim_policies() {
        for now in [NOW, 0, u64::MAX] {
            if let Err(e) = check_claims(&token.claims, policy, now) {
                assert_header_safe_error(&e);
            }
        }
    }
});
