//! Strict parsing of the JWS compact serialization (RFC 7515 §7.1).
//!
//! The token layer is the filter's own; jwt-compact is its signature layer
//! only (`verify.rs`). jwt-compact's `UntrustedToken` cannot give what the
//! filter reads:
//! - the claims come out of it only through `deserialize_claims_unchecked`,
//!   as its `Claims<T>` (serde, `exp`/`nbf`/`iat` as chrono times, the other
//!   members flattened into `T`); the payload's bytes are private to it. The
//!   filter keeps the payload's exact text (`payload_header` forwards it as
//!   signed) and reads it through the located-JSON [`JsonObject`], which
//!   parses a member only when a check, a rule or a header asks for it;
//!   serde's flattening builds every member as an owned value, the cost that
//!   reader was made to remove;
//! - its validator decodes the claims before it checks the signature, so a
//!   forged token with an odd claim would be refused for the claim: the
//!   filter never reads claims it has not verified, and answers `bad
//!   signature` for it;
//! - the rules below (size before decoding, `alg: none` in any case, `crit`,
//!   `b64`, header members by the last of repeated names) would all have to
//!   sit in front of it on a second decoding of the same segments.

use super::object::{self, JsonObject, ObjectError};
use super::{Algorithm, TokenError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

/// The protected header fields we use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub typ: Option<String>,
}

/// A parsed token whose signature has not been checked yet.
///
/// Header parameters that could carry a key (`jwk`, `jku`, `x5u`, `x5c`) are
/// not even kept: keys come only from the configured [`super::KeySet`], so a
/// token can never vouch for itself.
#[derive(Clone, Debug)]
pub struct UntrustedToken<'a> {
    pub header: Header,
    pub claims: JsonObject,
    signing_input: &'a str,
    signature: Vec<u8>,
}

impl<'a> UntrustedToken<'a> {
    /// `header.payload` exactly as received: the bytes the signature covers.
    pub fn signing_input(&self) -> &'a str {
        self.signing_input
    }

    /// The decoded signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}

/// Parses a compact JWS strictly.
///
/// Rules, in the order they are applied:
/// - longer than `max_bytes` → `TooLarge`, before anything else is looked at;
/// - exactly three segments separated by '.', each only base64url characters
///   (`A-Z a-z 0-9 - _`): no padding, whitespace, '+' or '/';
/// - header: canonical base64url of a JSON object; `alg` a string; "none" in any
///   case → `AlgNone`; unknown → `UnsupportedAlgorithm`; `kid`/`typ` strings if present;
///   `crit` must be a non-empty array of strings and, since we implement no
///   extension, any name in it → `UnknownCrit`; `b64` other than `true` is refused;
/// - payload: canonical base64url of a JSON object;
/// - signature: canonical base64url, non-empty.
pub fn parse(token: &str, max_bytes: usize) -> Result<UntrustedToken<'_>, TokenError> {
    if token.len() > max_bytes {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed(
            "token must have exactly three segments",
        ));
    };
    for segment in [header_b64, payload_b64, signature_b64] {
        if !segment.bytes().all(is_base64url_byte) {
            return Err(TokenError::Malformed(
                "segment has a non-base64url character",
            ));
        }
    }

    let header_json = decode_object(header_b64, Segment::Header)?;
    let header = parse_header(&header_json)?;
    let claims = decode_object(payload_b64, Segment::Payload)?;

    if signature_b64.is_empty() {
        return Err(TokenError::Malformed("empty signature"));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| TokenError::Malformed("signature is not base64url"))?;

    // Header and payload are ASCII, so this length is a char boundary; `get`
    // keeps the slice panic-free regardless.
    let signing_input = token
        .get(..header_b64.len() + 1 + payload_b64.len())
        .ok_or(TokenError::Malformed(
            "token must have exactly three segments",
        ))?;

    Ok(UntrustedToken {
        header,
        claims,
        signing_input,
        signature,
    })
}

fn is_base64url_byte(b: u8) -> bool {
    BASE64URL[usize::from(b)]
}

/// `A-Z a-z 0-9 - _` by byte value: one lookup per token byte (this loop
/// runs over every token the filter sees).
static BASE64URL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
        b += 1;
    }
    table
};

enum Segment {
    Header,
    Payload,
}

fn decode_object(segment: &str, which: Segment) -> Result<JsonObject, TokenError> {
    let (bad_b64, bad_json, not_object) = match which {
        Segment::Header => (
            "header is not base64url",
            "header is not JSON",
            "header is not a JSON object",
        ),
        Segment::Payload => (
            "payload is not base64url",
            "payload is not JSON",
            "payload is not a JSON object",
        ),
    };
    // The engine refuses non-canonical encodings (stray trailing bits), so one
    // token has exactly one spelling.
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Malformed(bad_b64))?;
    JsonObject::parse(bytes).map_err(|e| match e {
        ObjectError::NotJson => TokenError::Malformed(bad_json),
        ObjectError::NotObject => TokenError::Malformed(not_object),
    })
}

fn parse_header(json: &JsonObject) -> Result<Header, TokenError> {
    let alg = match json.raw("alg") {
        Some(raw) => object::as_str(raw).ok_or(TokenError::Malformed("alg is not a string"))?,
        None => return Err(TokenError::Malformed("header has no alg")),
    };
    if alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::AlgNone);
    }
    let alg = Algorithm::from_name(&alg).ok_or(TokenError::UnsupportedAlgorithm)?;

    if let Some(crit) = json.raw("crit") {
        match object::value_of(crit) {
            Some(Value::Array(names))
                if !names.is_empty() && names.iter().all(Value::is_string) =>
            {
                // RFC 7515 §4.1.11: a recipient must reject a token whose
                // crit lists an extension it does not understand; we
                // understand none.
                return Err(TokenError::UnknownCrit);
            }
            _ => {
                return Err(TokenError::Malformed(
                    "crit is not a non-empty array of strings",
                ))
            }
        }
    }

    // RFC 7797 unencoded payloads change what the signature covers; without
    // support for them, anything but the default would be misverified.
    match json.raw("b64") {
        None | Some("true") => {}
        Some(_) => return Err(TokenError::Malformed("b64 header is not supported")),
    }

    let kid = optional_string(json, "kid", "kid is not a string")?;
    let typ = optional_string(json, "typ", "typ is not a string")?;
    Ok(Header { alg, kid, typ })
}

fn optional_string(
    json: &JsonObject,
    name: &str,
    error: &'static str,
) -> Result<Option<String>, TokenError> {
    match json.raw(name) {
        None => Ok(None),
        Some(raw) => object::as_str(raw)
            .map(|s| Some(s.into_owned()))
            .ok_or(TokenError::Malformed(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn seg(v: &Value) -> String {
        b64(v.to_string().as_bytes())
    }

    fn tok(header: &Value, payload: &Value) -> String {
        format!("{}.{}.{}", seg(header), seg(payload), b64(b"signature"))
    }

    fn ok_token() -> String {
        tok(
            &json!({"alg": "RS256", "kid": "k1", "typ": "JWT"}),
            &json!({"sub": "a"}),
        )
    }

    #[test]
    fn parses_a_good_token() {
        let t = ok_token();
        let parsed = parse(&t, 8192).unwrap();
        assert_eq!(parsed.header.alg, Algorithm::Rs256);
        assert_eq!(parsed.header.kid.as_deref(), Some("k1"));
        assert_eq!(parsed.header.typ.as_deref(), Some("JWT"));
        assert_eq!(parsed.claims.value("sub"), Some(json!("a")));
        assert_eq!(parsed.signature(), b"signature");
        let dot = t.rfind('.').unwrap();
        assert_eq!(parsed.signing_input(), &t[..dot]);
    }

    #[test]
    fn size_limit_is_checked_first() {
        let t = ok_token();
        assert!(parse(&t, t.len()).is_ok());
        assert_eq!(parse(&t, t.len() - 1).unwrap_err(), TokenError::TooLarge);
        // Even garbage is refused as too large, not as malformed.
        assert_eq!(parse("!!!!", 3).unwrap_err(), TokenError::TooLarge);
    }

    #[test]
    fn segment_count() {
        let t = ok_token();
        let mut it = t.split('.');
        let (h, p, s) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        for bad in [
            format!("{h}.{p}"),
            format!("{h}.{p}.{s}.{s}"),
            format!("{h}.{p}.{s}."),
            h.to_string(),
            String::new(),
            format!(".{p}.{s}"),
            format!("{h}..{s}"),
        ] {
            assert!(
                matches!(parse(&bad, 8192), Err(TokenError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn empty_signature_is_malformed() {
        let t = tok(&json!({"alg": "HS256"}), &json!({}));
        let dot = t.rfind('.').unwrap();
        assert_eq!(
            parse(&t[..=dot], 8192).unwrap_err(),
            TokenError::Malformed("empty signature")
        );
    }

    #[test]
    fn refuses_non_base64url_characters() {
        let t = ok_token();
        let dot = t.find('.').unwrap();
        let variants = [
            format!("{t}="),
            format!("{}=.{}", &t[..dot], &t[dot + 1..]),
            format!(" {t}"),
            format!("{t} "),
            format!("{t}\n"),
            format!("{}\t{}", &t[..dot], &t[dot..]),
            format!("{}+{}", &t[..dot], &t[dot..]),
            format!("{}/{}", &t[..dot], &t[dot..]),
            format!("{}é{}", &t[..dot], &t[dot..]),
        ];
        for bad in variants {
            assert_eq!(
                parse(&bad, 8192).unwrap_err(),
                TokenError::Malformed("segment has a non-base64url character"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn padded_standard_base64_header_is_refused() {
        // A header whose standard encoding needs padding and uses '+' or '/'.
        let header = br#"{"alg":"RS256","x":"???>>>"}"#;
        let std = base64::engine::general_purpose::STANDARD.encode(header);
        assert!(std.contains('=') || std.contains('+') || std.contains('/'));
        let t = format!("{std}.{}.{}", seg(&json!({})), b64(b"s"));
        assert!(matches!(parse(&t, 8192), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn bad_base64_is_malformed() {
        // Length 1 mod 4 can never be valid base64.
        let t = format!("A.{}.{}", seg(&json!({})), b64(b"s"));
        assert_eq!(
            parse(&t, 8192).unwrap_err(),
            TokenError::Malformed("header is not base64url")
        );
        // Non-canonical trailing bits: "QR" decodes leniently to "A" but the
        // canonical spelling is "QQ".
        let h = seg(&json!({"alg": "RS256"}));
        let t = format!("{h}.{}.QR", seg(&json!({})));
        assert_eq!(
            parse(&t, 8192).unwrap_err(),
            TokenError::Malformed("signature is not base64url")
        );
        let t = format!("{h}.e31.{}", b64(b"s"));
        assert_eq!(
            parse(&t, 8192).unwrap_err(),
            TokenError::Malformed("payload is not base64url")
        );
    }

    #[test]
    fn header_and_payload_must_be_objects() {
        let h = json!({"alg": "RS256"});
        for v in [json!([1]), json!("s"), json!(1), json!(null), json!(true)] {
            assert_eq!(
                parse(&tok(&v, &json!({})), 8192).unwrap_err(),
                TokenError::Malformed("header is not a JSON object")
            );
            assert_eq!(
                parse(&tok(&h, &v), 8192).unwrap_err(),
                TokenError::Malformed("payload is not a JSON object")
            );
        }
        let t = format!("{}.{}.{}", b64(b"{not json"), seg(&json!({})), b64(b"s"));
        assert_eq!(
            parse(&t, 8192).unwrap_err(),
            TokenError::Malformed("header is not JSON")
        );
        let t = format!("{}.{}.{}", seg(&h), b64(b"{\"a\":1}x"), b64(b"s"));
        assert_eq!(
            parse(&t, 8192).unwrap_err(),
            TokenError::Malformed("payload is not JSON")
        );
        let t = format!("{}.{}.{}", seg(&h), b64(b"\xff\xfe"), b64(b"s"));
        assert_eq!(
            parse(&t, 8192).unwrap_err(),
            TokenError::Malformed("payload is not JSON")
        );
    }

    #[test]
    fn alg_none_in_any_case() {
        for none in ["none", "None", "NONE", "nOnE"] {
            let t = tok(&json!({"alg": none}), &json!({}));
            assert_eq!(parse(&t, 8192).unwrap_err(), TokenError::AlgNone, "{none}");
            // The usual unsigned form has an empty signature; still AlgNone.
            let dot = t.rfind('.').unwrap();
            assert_eq!(parse(&t[..=dot], 8192).unwrap_err(), TokenError::AlgNone);
        }
    }

    #[test]
    fn alg_rules() {
        for alg in ["rs256", "HS1", "ES256K", "", "RSA-OAEP"] {
            let t = tok(&json!({"alg": alg}), &json!({}));
            assert_eq!(
                parse(&t, 8192).unwrap_err(),
                TokenError::UnsupportedAlgorithm,
                "{alg}"
            );
        }
        let t = tok(&json!({"alg": 256}), &json!({}));
        assert_eq!(
            parse(&t, 8192).unwrap_err(),
            TokenError::Malformed("alg is not a string")
        );
        let t = tok(&json!({"typ": "JWT"}), &json!({}));
        assert_eq!(
            parse(&t, 8192).unwrap_err(),
            TokenError::Malformed("header has no alg")
        );
        for alg in Algorithm::ALL {
            let t = tok(&json!({"alg": alg.name()}), &json!({}));
            assert_eq!(parse(&t, 8192).unwrap().header.alg, alg);
        }
    }

    #[test]
    fn crit_rules() {
        let t = tok(
            &json!({"alg": "RS256", "crit": ["exp"], "exp": 1}),
            &json!({}),
        );
        assert_eq!(parse(&t, 8192).unwrap_err(), TokenError::UnknownCrit);
        let t = tok(
            &json!({"alg": "RS256", "crit": ["b64"], "b64": false}),
            &json!({}),
        );
        assert_eq!(parse(&t, 8192).unwrap_err(), TokenError::UnknownCrit);
        for bad in [json!("exp"), json!([]), json!([1]), json!({}), json!(null)] {
            let t = tok(&json!({"alg": "RS256", "crit": bad}), &json!({}));
            assert!(
                matches!(parse(&t, 8192), Err(TokenError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn b64_false_without_crit_is_refused() {
        let t = tok(&json!({"alg": "RS256", "b64": false}), &json!({}));
        assert!(matches!(parse(&t, 8192), Err(TokenError::Malformed(_))));
        let t = tok(&json!({"alg": "RS256", "b64": true}), &json!({}));
        assert!(parse(&t, 8192).is_ok());
    }

    #[test]
    fn kid_and_typ_must_be_strings() {
        let t = tok(&json!({"alg": "RS256", "kid": 1}), &json!({}));
        assert_eq!(
            parse(&t, 8192).unwrap_err(),
            TokenError::Malformed("kid is not a string")
        );
        let t = tok(&json!({"alg": "RS256", "typ": ["JWT"]}), &json!({}));
        assert_eq!(
            parse(&t, 8192).unwrap_err(),
            TokenError::Malformed("typ is not a string")
        );
    }

    #[test]
    fn embedded_key_headers_are_ignored() {
        let t = tok(
            &json!({"alg": "RS256", "jwk": {"kty": "oct", "k": "AAAA"}, "jku": "http://x",
                    "x5u": "http://y", "x5c": ["AAAA"]}),
            &json!({}),
        );
        let parsed = parse(&t, 8192).unwrap();
        assert_eq!(parsed.header.kid, None);
    }
}
