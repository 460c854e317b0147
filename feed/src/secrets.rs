//! The credentials the server refuses to start with: anything short, made of
//! a few characters, or holding a word that marks a placeholder, so that a
//! value copied from documentation or a manifest never guards a real feed.
//!
//! The rule, for `--read-token` and `--admin-token` (as given) and for the
//! HMAC key (its decoded bytes):
//!
//! - at least [`MIN_TOKEN_CHARS`] characters (tokens) or
//!   [`MIN_HMAC_KEY_BYTES`] bytes (key);
//! - at least [`MIN_DISTINCT`] distinct characters or bytes;
//! - none of [`PLACEHOLDER_WORDS`], in any letter case;
//! - the read token differs from the admin token (every proxy holds the
//!   read token; it must not be able to write).
//!
//! `openssl rand -hex 32` (tokens) and `openssl rand -base64 32` (key) always
//! pass: hex digits spell none of the words.

use crate::api::ApiConfig;
use std::fmt;

/// Fewest characters of a bearer token.
pub const MIN_TOKEN_CHARS: usize = 32;

/// Fewest bytes of the HMAC key (the SHA-256 output size).
pub const MIN_HMAC_KEY_BYTES: usize = 32;

/// Fewest distinct characters (tokens) or bytes (key).
pub const MIN_DISTINCT: usize = 8;

/// Words that mark a value as a placeholder or a demo value.
pub const PLACEHOLDER_WORDS: &[&str] = &[
    "replace",
    "change",
    "example",
    "placeholder",
    "secret",
    "password",
    "default",
    "sample",
    "dummy",
    "demo",
    "test",
];

/// Names of the settings, as an operator sets them.
pub const READ_TOKEN_SETTING: &str = "--read-token (REVOCATION_FEED_READ_TOKEN)";
/// See [`READ_TOKEN_SETTING`].
pub const ADMIN_TOKEN_SETTING: &str = "--admin-token (REVOCATION_FEED_ADMIN_TOKEN)";
/// See [`READ_TOKEN_SETTING`].
pub const HMAC_SETTING: &str = "--hmac-secret-base64 (REVOCATION_FEED_HMAC_SECRET_BASE64)";

/// A refused credential: the setting, and what is wrong with its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeakSecret {
    /// The flag and environment variable, e.g. [`READ_TOKEN_SETTING`].
    pub setting: &'static str,
    /// Why it is refused.
    pub why: String,
}

impl fmt::Display for WeakSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting, self.why)
    }
}

/// Every credential of `cfg` that breaks the rule (all of them, so that one
/// start reports everything to fix).
pub fn weak_secrets(cfg: &ApiConfig) -> Vec<WeakSecret> {
    let mut found = Vec::new();
    let tokens = [
        (READ_TOKEN_SETTING, &cfg.read_token),
        (ADMIN_TOKEN_SETTING, &cfg.admin_token),
    ];
    for (setting, token) in tokens {
        if let Some(token) = token {
            found.extend(
                weakness(token.as_bytes(), token.chars().count(), false)
                    .map(|why| WeakSecret { setting, why }),
            );
        }
    }
    if let Some(key) = &cfg.hmac_secret {
        found.extend(weakness(key, key.len(), true).map(|why| WeakSecret {
            setting: HMAC_SETTING,
            why,
        }));
    }
    if cfg.read_token.is_some() && cfg.read_token == cfg.admin_token {
        found.push(WeakSecret {
            setting: READ_TOKEN_SETTING,
            why: format!(
                "equals {ADMIN_TOKEN_SETTING}: every proxy holds the read token, so it must not also be able to write"
            ),
        });
    }
    found
}

/// What is wrong with a value of `len` characters (or bytes, for a `key`).
fn weakness(value: &[u8], len: usize, key: bool) -> Option<String> {
    let (min, unit, make) = if key {
        (MIN_HMAC_KEY_BYTES, "bytes", "openssl rand -base64 32")
    } else {
        (MIN_TOKEN_CHARS, "characters", "openssl rand -hex 32")
    };
    if len < min {
        return Some(format!(
            "{len} {unit}, at least {min} are required (make one with `{make}`)"
        ));
    }
    let mut seen = [false; 256];
    for b in value {
        seen[usize::from(*b)] = true;
    }
    let distinct = seen.iter().filter(|s| **s).count();
    if distinct < MIN_DISTINCT {
        return Some(format!(
            "only {distinct} distinct {unit}, at least {MIN_DISTINCT} are required (make one with `{make}`)"
        ));
    }
    placeholder_word(value).map(|word| {
        format!(
            "contains \"{word}\", which marks a placeholder or demo value (make one with `{make}`)"
        )
    })
}

/// The first placeholder word in `value`, ignoring ASCII letter case.
fn placeholder_word(value: &[u8]) -> Option<&'static str> {
    let lower = value.to_ascii_lowercase();
    PLACEHOLDER_WORDS
        .iter()
        .copied()
        .find(|word| lower.windows(word.len()).any(|w| w == word.as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const HEX64: &str = "9c1f4e2ab7d3056f8e41c2a9b06d7e35f1a8c4d29e0b6357a1c8f4e2d9b0a761";

    fn cfg(read: Option<&str>, admin: Option<&str>, key: Option<&[u8]>) -> ApiConfig {
        ApiConfig {
            read_token: read.map(str::to_string),
            admin_token: admin.map(str::to_string),
            hmac_secret: key.map(<[u8]>::to_vec),
            ..ApiConfig::default()
        }
    }

    fn reasons(c: &ApiConfig) -> Vec<String> {
        weak_secrets(c).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn strong_values_and_absent_ones_pass() {
        let key: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        assert!(weak_secrets(&cfg(None, None, None)).is_empty());
        let admin = &HEX64[..32].repeat(2);
        assert!(weak_secrets(&cfg(Some(HEX64), Some(admin), Some(&key))).is_empty());
    }

    #[test]
    fn short_repetitive_and_placeholder_values_are_named() {
        let r = reasons(&cfg(Some("demo-read-token"), None, None));
        assert_eq!(r.len(), 1);
        assert!(r[0].starts_with(READ_TOKEN_SETTING), "{r:?}");
        assert!(r[0].contains("15 characters, at least 32"), "{r:?}");
        let r = reasons(&cfg(None, Some(&"ab".repeat(20)), None));
        assert!(r[0].starts_with(ADMIN_TOKEN_SETTING) && r[0].contains("only 2 distinct"));
        for word in PLACEHOLDER_WORDS {
            let token = format!("{}{}", word.to_uppercase(), &HEX64[..40]);
            let r = reasons(&cfg(Some(&token), None, None));
            assert!(r[0].contains(&format!("\"{word}\"")), "{word}: {r:?}");
        }
    }

    #[test]
    fn the_hmac_key_is_judged_by_its_bytes() {
        let r = reasons(&cfg(None, None, Some(b"demo-feed-signing-secret")));
        assert!(r[0].starts_with(HMAC_SETTING) && r[0].contains("24 bytes, at least 32"));
        // The placeholder the manifests used to ship: exactly 32 bytes.
        let r = reasons(&cfg(None, None, Some(b"replace-me-with-32-random-bytes!")));
        assert!(r[0].contains("\"replace\""), "{r:?}");
        let r = reasons(&cfg(None, None, Some(&[7u8; 64])));
        assert!(r[0].contains("only 1 distinct bytes"), "{r:?}");
    }

    #[test]
    fn the_read_token_must_not_be_the_admin_token() {
        let r = reasons(&cfg(Some(HEX64), Some(HEX64), None));
        assert_eq!(r.len(), 1);
        assert!(r[0].contains("must not also be able to write"), "{r:?}");
    }
}
