//! Registered and required claim checks (RFC 7519 §4.1), run after the
//! signature has been verified.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use super::object::{self, JsonObject};
use super::TokenError;

/// `TokenError::Malformed` texts with this prefix are claim type errors; the
/// description turns them into "claim type mismatch".
pub(super) const CLAIM_TYPE_PREFIX: &str = "claim ";

/// What the claims of a token must satisfy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClaimPolicy {
    /// Exact `iss` required when set.
    pub issuer: Option<String>,
    /// When non-empty, `aud` (string or array) must contain one of these.
    /// When empty, `aud` is not checked.
    pub audiences: Vec<String>,
    pub require_expiration: bool,
    /// Tolerance for clock differences, applied to `exp`, `nbf` and `iat`.
    pub clock_skew_seconds: u64,
    /// When set, `exp - iat` must not exceed it, and both claims are required.
    pub max_lifetime_seconds: Option<u64>,
    /// Claims that must be present with exactly this value (string, number
    /// or bool; numbers compare by value, so 1 equals 1.0).
    pub required_claims: Map<String, Value>,
}

/// Checks `claims` against `policy` at unix time `now` (seconds).
///
/// Order: `exp`, `nbf`, `iat`, lifetime, `iss`, `aud`, required claims; the
/// first failure is returned. Time claims may be integers or floats; any other
/// type is `Malformed` even when the policy does not ask for that claim, since
/// a token carrying a nonsensical `exp` is not one to trust.
pub fn check_claims(claims: &JsonObject, policy: &ClaimPolicy, now: u64) -> Result<(), TokenError> {
    let now = i128::from(now);
    let skew = i128::from(policy.clock_skew_seconds);

    let exp = numeric_claim(claims, "exp", "claim exp is not a number")?;
    let nbf = numeric_claim(claims, "nbf", "claim nbf is not a number")?;
    let iat = numeric_claim(claims, "iat", "claim iat is not a number")?;

    match exp {
        // Expired when now > exp + skew, i.e. exp < now - skew; the second
        // at exp + skew itself is still valid.
        Some(exp) if compare(exp, now - skew) == Ordering::Less => return Err(TokenError::Expired),
        Some(_) => {}
        None if policy.require_expiration || policy.max_lifetime_seconds.is_some() => {
            return Err(TokenError::MissingExpiration)
        }
        None => {}
    }
    if let Some(nbf) = nbf {
        // Not yet valid when now + skew < nbf.
        if compare(nbf, now + skew) == Ordering::Greater {
            return Err(TokenError::NotYetValid);
        }
    }
    if let Some(iat) = iat {
        if compare(iat, now + skew) == Ordering::Greater {
            return Err(TokenError::IssuedInFuture);
        }
    }
    if let Some(max) = policy.max_lifetime_seconds {
        // Without iat the lifetime cannot be bounded, so the token is refused
        // as if it were too long-lived.
        let (Some(exp), Some(iat)) = (exp, iat) else {
            return Err(TokenError::LifetimeTooLong);
        };
        if lifetime_exceeds(exp, iat, i128::from(max)) {
            return Err(TokenError::LifetimeTooLong);
        }
    }

    if let Some(issuer) = &policy.issuer {
        if claims.str("iss").as_deref() != Some(issuer.as_str()) {
            return Err(TokenError::WrongIssuer);
        }
    }

    if !policy.audiences.is_empty() {
        let wanted = |aud: &str| policy.audiences.iter().any(|a| a == aud);
        // The usual single audience is read without building a value.
        let ok = match claims.raw("aud") {
            Some(raw) if raw.starts_with('"') => object::as_str(raw).is_some_and(|a| wanted(&a)),
            Some(raw) => match object::value_of(raw) {
                Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str().is_some_and(wanted)),
                _ => false,
            },
            None => false,
        };
        if !ok {
            return Err(TokenError::WrongAudience);
        }
    }

    for (name, expected) in &policy.required_claims {
        let matches = claims
            .value(name)
            .is_some_and(|actual| values_equal(&actual, expected));
        if !matches {
            return Err(TokenError::ClaimMismatch(name.clone()));
        }
    }
    Ok(())
}

/// A JSON number kept exact when it is an integer.
#[derive(Clone, Copy, Debug)]
enum Num {
    Int(i128),
    Float(f64),
}

fn to_num(n: &Number) -> Option<Num> {
    if let Some(i) = n.as_i64() {
        Some(Num::Int(i128::from(i)))
    } else if let Some(u) = n.as_u64() {
        Some(Num::Int(i128::from(u)))
    } else {
        n.as_f64().filter(|f| f.is_finite()).map(Num::Float)
    }
}

fn numeric_claim(
    claims: &JsonObject,
    name: &str,
    error: &'static str,
) -> Result<Option<Num>, TokenError> {
    match claims.raw(name) {
        None => Ok(None),
        Some(raw) => object::as_number(raw)
            .as_ref()
            .and_then(to_num)
            .map(Some)
            .ok_or(TokenError::Malformed(error)),
    }
}

/// Orders a claim against an integer instant; floats compare as f64, which is
/// exact for any realistic unix time.
fn compare(claim: Num, t: i128) -> Ordering {
    match claim {
        Num::Int(i) => i.cmp(&t),
        // Finite by construction, so partial_cmp always answers.
        Num::Float(f) => f.partial_cmp(&(t as f64)).unwrap_or(Ordering::Equal),
    }
}

fn lifetime_exceeds(exp: Num, iat: Num, max: i128) -> bool {
    match (exp, iat) {
        (Num::Int(exp), Num::Int(iat)) => exp - iat > max,
        _ => as_f64(exp) - as_f64(iat) > max as f64,
    }
}

fn as_f64(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    }
}

/// Strings and bools compare exactly, numbers by value (so a configured `1`
/// matches a token's `1.0`); anything else by JSON equality.
fn values_equal(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Number(a), Value::Number(e)) => match (to_num(a), to_num(e)) {
            (Some(Num::Int(a)), Some(Num::Int(e))) => a == e,
            (Some(a), Some(e)) => as_f64(a) == as_f64(e),
            _ => false,
        },
        _ => actual == expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn check(v: Value, policy: &ClaimPolicy) -> Result<(), TokenError> {
        check_claims(&JsonObject::of(&v), policy, NOW)
    }

    fn skew(s: u64) -> ClaimPolicy {
        ClaimPolicy {
            clock_skew_seconds: s,
            ..ClaimPolicy::default()
        }
    }

    #[test]
    fn empty_policy_accepts_empty_claims() {
        assert_eq!(check(json!({}), &ClaimPolicy::default()), Ok(()));
    }

    #[test]
    fn exp_boundaries() {
        let n = NOW as i64;
        for s in [0u64, 60] {
            let p = skew(s);
            let s = s as i64;
            // Valid through the second exp + skew, expired one second later.
            assert_eq!(check(json!({"exp": n - s}), &p), Ok(()), "skew {s}");
            assert_eq!(
                check(json!({"exp": n - s - 1}), &p),
                Err(TokenError::Expired),
                "skew {s}"
            );
            assert_eq!(check(json!({"exp": n + 1000}), &p), Ok(()));
            // Floats: fractional seconds count.
            assert_eq!(
                check(json!({"exp": (n - s) as f64 - 0.5}), &p),
                Err(TokenError::Expired)
            );
            assert_eq!(check(json!({"exp": (n - s) as f64 + 0.5}), &p), Ok(()));
            assert_eq!(check(json!({"exp": (n - s) as f64}), &p), Ok(()));
        }
        assert_eq!(
            check(json!({"exp": -1}), &skew(0)),
            Err(TokenError::Expired)
        );
        assert_eq!(check(json!({"exp": 0}), &skew(u64::MAX)), Ok(()));
        assert_eq!(check(json!({"exp": u64::MAX}), &skew(0)), Ok(()));
    }

    #[test]
    fn exp_required() {
        let p = ClaimPolicy {
            require_expiration: true,
            ..ClaimPolicy::default()
        };
        assert_eq!(check(json!({}), &p), Err(TokenError::MissingExpiration));
        assert_eq!(check(json!({"exp": NOW}), &p), Ok(()));
        assert_eq!(check(json!({}), &ClaimPolicy::default()), Ok(()));
    }

    #[test]
    fn non_numeric_time_claims_are_malformed() {
        for name in ["exp", "nbf", "iat"] {
            for bad in [
                json!("1700000000"),
                json!(null),
                json!(true),
                json!([1]),
                json!({}),
            ] {
                let mut c = Map::new();
                c.insert(name.to_string(), bad.clone());
                let err = check(Value::Object(c), &ClaimPolicy::default()).unwrap_err();
                assert!(
                    matches!(err, TokenError::Malformed(m) if m.starts_with(CLAIM_TYPE_PREFIX) && m.contains(name)),
                    "{name} {bad}"
                );
                assert_eq!(err.description(), "claim type mismatch");
            }
        }
    }

    #[test]
    fn nbf_boundaries() {
        let n = NOW as i64;
        for s in [0u64, 30] {
            let p = skew(s);
            let s = s as i64;
            assert_eq!(check(json!({"nbf": n + s}), &p), Ok(()));
            assert_eq!(
                check(json!({"nbf": n + s + 1}), &p),
                Err(TokenError::NotYetValid)
            );
            assert_eq!(
                check(json!({"nbf": (n + s) as f64 + 0.25}), &p),
                Err(TokenError::NotYetValid)
            );
            assert_eq!(check(json!({"nbf": n - 100}), &p), Ok(()));
        }
    }

    #[test]
    fn iat_boundaries() {
        let n = NOW as i64;
        for s in [0u64, 30] {
            let p = skew(s);
            let s = s as i64;
            assert_eq!(check(json!({"iat": n + s}), &p), Ok(()));
            assert_eq!(
                check(json!({"iat": n + s + 1}), &p),
                Err(TokenError::IssuedInFuture)
            );
            assert_eq!(
                check(json!({"iat": (n + s) as f64 + 0.001}), &p),
                Err(TokenError::IssuedInFuture)
            );
            assert_eq!(check(json!({"iat": 0}), &p), Ok(()));
        }
    }

    #[test]
    fn max_lifetime() {
        let n = NOW as i64;
        let p = ClaimPolicy {
            max_lifetime_seconds: Some(3600),
            ..ClaimPolicy::default()
        };
        assert_eq!(check(json!({"iat": n, "exp": n + 3600}), &p), Ok(()));
        assert_eq!(
            check(json!({"iat": n, "exp": n + 3601}), &p),
            Err(TokenError::LifetimeTooLong)
        );
        assert_eq!(
            check(json!({"iat": n as f64, "exp": n as f64 + 3600.5}), &p),
            Err(TokenError::LifetimeTooLong)
        );
        assert_eq!(
            check(json!({"iat": n - 10, "exp": n as f64 + 3589.5}), &p),
            Ok(())
        );
        // Both claims are needed to bound the lifetime.
        assert_eq!(
            check(json!({"iat": n}), &p),
            Err(TokenError::MissingExpiration)
        );
        assert_eq!(
            check(json!({"exp": n + 10}), &p),
            Err(TokenError::LifetimeTooLong)
        );
        // Not checked without a limit.
        assert_eq!(
            check(json!({"iat": n, "exp": n + 10_000_000}), &skew(0)),
            Ok(())
        );
    }

    #[test]
    fn issuer() {
        let p = ClaimPolicy {
            issuer: Some("https://issuer.example".to_string()),
            ..ClaimPolicy::default()
        };
        assert_eq!(check(json!({"iss": "https://issuer.example"}), &p), Ok(()));
        for bad in [
            json!({"iss": "https://issuer.example/"}),
            json!({"iss": "HTTPS://ISSUER.EXAMPLE"}),
            json!({"iss": ["https://issuer.example"]}),
            json!({"iss": null}),
            json!({}),
        ] {
            assert_eq!(
                check(bad.clone(), &p),
                Err(TokenError::WrongIssuer),
                "{bad}"
            );
        }
        // Not checked when not configured.
        assert_eq!(check(json!({"iss": "anyone"}), &skew(0)), Ok(()));
    }

    #[test]
    fn audience() {
        let p = ClaimPolicy {
            audiences: vec!["api".to_string(), "web".to_string()],
            ..ClaimPolicy::default()
        };
        for good in [
            json!({"aud": "api"}),
            json!({"aud": "web"}),
            json!({"aud": ["other", "web"]}),
            json!({"aud": [1, "api"]}),
        ] {
            assert_eq!(check(good.clone(), &p), Ok(()), "{good}");
        }
        for bad in [
            json!({"aud": "API"}),
            json!({"aud": ["other"]}),
            json!({"aud": []}),
            json!({"aud": 1}),
            json!({"aud": {"api": true}}),
            json!({}),
        ] {
            assert_eq!(
                check(bad.clone(), &p),
                Err(TokenError::WrongAudience),
                "{bad}"
            );
        }
        assert_eq!(check(json!({"aud": "anything"}), &skew(0)), Ok(()));
    }

    #[test]
    fn required_claims() {
        let p = ClaimPolicy {
            required_claims: claims(
                json!({"role": "admin", "level": 3, "verified": true, "ratio": 0.5}),
            ),
            ..ClaimPolicy::default()
        };
        let ok = json!({"role": "admin", "level": 3, "verified": true, "ratio": 0.5, "extra": 1});
        assert_eq!(check(ok, &p), Ok(()));
        assert_eq!(
            check(
                json!({"role": "admin", "level": 3.0, "verified": true, "ratio": 0.5}),
                &p
            ),
            Ok(())
        );
        let mismatches = [
            (
                json!({"role": "Admin", "level": 3, "verified": true, "ratio": 0.5}),
                "role",
            ),
            (
                json!({"role": ["admin"], "level": 3, "verified": true, "ratio": 0.5}),
                "role",
            ),
            (json!({"level": 3, "verified": true, "ratio": 0.5}), "role"),
            (
                json!({"role": "admin", "level": "3", "verified": true, "ratio": 0.5}),
                "level",
            ),
            (
                json!({"role": "admin", "level": 4, "verified": true, "ratio": 0.5}),
                "level",
            ),
            (
                json!({"role": "admin", "level": 3, "verified": "true", "ratio": 0.5}),
                "verified",
            ),
            (
                json!({"role": "admin", "level": 3, "verified": false, "ratio": 0.5}),
                "verified",
            ),
            (
                json!({"role": "admin", "level": 3, "verified": true, "ratio": 0.25}),
                "ratio",
            ),
        ];
        for (c, name) in mismatches {
            assert_eq!(
                check(c.clone(), &p),
                Err(TokenError::ClaimMismatch(name.to_string())),
                "{c}"
            );
        }
    }

    #[test]
    fn first_failure_wins_in_documented_order() {
        let n = NOW as i64;
        let p = ClaimPolicy {
            issuer: Some("i".to_string()),
            audiences: vec!["a".to_string()],
            require_expiration: true,
            clock_skew_seconds: 0,
            max_lifetime_seconds: Some(10),
            required_claims: claims(json!({"r": 1})),
        };
        let all_bad = json!({"exp": n - 1, "nbf": n + 5, "iat": n + 5, "iss": "x", "aud": "y"});
        assert_eq!(check(all_bad, &p), Err(TokenError::Expired));
        let c = json!({"exp": n + 5, "nbf": n + 5, "iat": n + 5, "iss": "x", "aud": "y"});
        assert_eq!(check(c, &p), Err(TokenError::NotYetValid));
        let c = json!({"exp": n + 5, "iat": n + 5, "iss": "x", "aud": "y"});
        assert_eq!(check(c, &p), Err(TokenError::IssuedInFuture));
        let c = json!({"exp": n + 50, "iat": n, "iss": "x", "aud": "y"});
        assert_eq!(check(c, &p), Err(TokenError::LifetimeTooLong));
        let c = json!({"exp": n + 5, "iat": n, "iss": "x", "aud": "y"});
        assert_eq!(check(c, &p), Err(TokenError::WrongIssuer));
        let c = json!({"exp": n + 5, "iat": n, "iss": "i", "aud": "y"});
        assert_eq!(check(c, &p), Err(TokenError::WrongAudience));
        let c = json!({"exp": n + 5, "iat": n, "iss": "i", "aud": "a"});
        assert_eq!(
            check(c, &p),
            Err(TokenError::ClaimMismatch("r".to_string()))
        );
        let c = json!({"exp": n + 5, "iat": n, "iss": "i", "aud": "a", "r": 1});
        assert_eq!(check(c, &p), Ok(()));
    }
}
