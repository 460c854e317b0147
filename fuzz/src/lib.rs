//! Fixtures shared by the fuzz targets: one key set holding every key type
//! the filter supports, claim policies, a plugin policy with identity
//! headers, and an HMAC signer so a harness can make tokens that really
//! verify (the fuzzer cannot forge signatures, so without it the claim,
//! rule and identity-header code behind `KeySet::verify` stays unreached).
//!
//! Keys are the committed TEST keys of `testkit/keys/`; the HMAC secrets
//! follow `testkit::Key::hs`, so seeds minted with testkit verify here.

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use jwt_auth_core::config::Policy;
use jwt_auth_core::jwt::{Algorithm, ClaimPolicy, KeySet, TokenError};
use serde_json::{json, Map, Value};
use sha2::{Sha256, Sha384, Sha512};

/// The clock of every check: 2025-06-15. Seed tokens expire in 2033.
pub const NOW: u64 = 1_750_000_000;
/// Largest token the targets accept (the filter's default).
pub const MAX_TOKEN_BYTES: usize = 8192;

pub const ISSUER: &str = "https://issuer.example";
pub const OTHER_ISSUER: &str = "https://other.example";
pub const AUDIENCE: &str = "api";

pub const JWK_RSA2048: &str = include_str!("../../testkit/keys/rsa2048.jwk.json");
pub const JWK_P256: &str = include_str!("../../testkit/keys/p256.jwk.json");
pub const JWK_P384: &str = include_str!("../../testkit/keys/p384.jwk.json");
pub const JWK_P521: &str = include_str!("../../testkit/keys/p521.jwk.json");
pub const JWK_ED25519: &str = include_str!("../../testkit/keys/ed25519.jwk.json");
const DEMO_HS256_SECRET_B64: &str = include_str!("../../testkit/keys/demo-hs256.secret");

/// Tokens signed with the asymmetric test keys (made by `gen_seeds`, also
/// the first seeds of `token_parse_verify`). HMAC tokens are made at run time.
pub const SIGNED_TOKENS: [&str; 5] = [
    include_str!("../corpus/token_parse_verify/rs256.jwt"),
    include_str!("../corpus/token_parse_verify/es256.jwt"),
    include_str!("../corpus/token_parse_verify/es384.jwt"),
    include_str!("../corpus/token_parse_verify/es512.jwt"),
    include_str!("../corpus/token_parse_verify/eddsa.jwt"),
];

/// `testkit::Key::hs(bits)`: a fixed secret as long as the hash.
pub fn hs_secret(bits: u16) -> Vec<u8> {
    let len = usize::from(bits / 8);
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(bits as u8))
        .collect()
}

pub fn demo_secret() -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(DEMO_HS256_SECRET_B64.trim())
        .unwrap_or_default()
}

/// Every HMAC secret in [`jwks`]; a verified HS* token must be signed with
/// one of them (anything else would be algorithm confusion).
pub fn hmac_secrets() -> Vec<Vec<u8>> {
    vec![
        hs_secret(256),
        hs_secret(384),
        hs_secret(512),
        demo_secret(),
    ]
}

pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn parse_jwk(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// The public JWKs of the test keys, plus oct keys for HS256/384/512 and the
/// demo key, and a kid-less copy of the P-256 key (the "keys without a kid
/// are candidates for every token" path).
pub fn jwks() -> Value {
    let mut kidless_p256 = parse_jwk(JWK_P256);
    if let Some(obj) = kidless_p256.as_object_mut() {
        obj.remove("kid");
    }
    json!({"keys": [
        parse_jwk(JWK_RSA2048),
        parse_jwk(JWK_P256),
        parse_jwk(JWK_P384),
        parse_jwk(JWK_P521),
        parse_jwk(JWK_ED25519),
        {"kty": "oct", "kid": "hs256", "use": "sig", "k": b64url(hs_secret(256))},
        {"kty": "oct", "kid": "hs384", "alg": "HS384", "k": b64url(hs_secret(384))},
        {"kty": "oct", "kid": "hs512", "key_ops": ["verify"], "k": b64url(hs_secret(512))},
        {"kty": "oct", "kid": "demo-hs256", "alg": "HS256", "k": b64url(demo_secret())},
        kidless_p256,
    ]})
}

/// [`jwks`] loaded once. Panics (at start-up, not as a finding) if the
/// fixtures stop loading.
pub fn key_set() -> &'static KeySet {
    static SET: OnceLock<KeySet> = OnceLock::new();
    SET.get_or_init(|| match KeySet::from_jwks(&jwks()) {
        Ok(set) => set,
        Err(e) => panic!("fuzz fixture JWKS does not load: {e}"),
    })
}

/// Two policies: the filter's defaults with issuer and audience, and a strict
/// one with a lifetime bound and required claims.
pub fn claim_policies() -> &'static [ClaimPolicy; 2] {
    static POLICIES: OnceLock<[ClaimPolicy; 2]> = OnceLock::new();
    POLICIES.get_or_init(|| {
        let mut required = Map::new();
        required.insert("type".into(), json!("access"));
        required.insert("ver".into(), json!(2));
        [
            ClaimPolicy {
                issuer: Some(ISSUER.into()),
                audiences: vec![AUDIENCE.into()],
                require_expiration: true,
                clock_skew_seconds: 60,
                max_lifetime_seconds: None,
                required_claims: Map::new(),
            },
            ClaimPolicy {
                issuer: Some(ISSUER.into()),
                audiences: vec![AUDIENCE.into(), "admin-api".into()],
                require_expiration: true,
                clock_skew_seconds: 0,
                max_lifetime_seconds: Some(3600),
                required_claims: required,
            },
        ]
    })
}

/// HMAC over `input` for an HS* algorithm (any other alg: HS256).
pub fn hmac_sign(alg: Algorithm, secret: &[u8], input: &[u8]) -> Vec<u8> {
    fn mac<M: Mac + hmac::digest::KeyInit>(secret: &[u8], input: &[u8]) -> Vec<u8> {
        match <M as Mac>::new_from_slice(secret) {
            Ok(mut m) => {
                m.update(input);
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }
    match alg {
        Algorithm::Hs384 => mac::<Hmac<Sha384>>(secret, input),
        Algorithm::Hs512 => mac::<Hmac<Sha512>>(secret, input),
        _ => mac::<Hmac<Sha256>>(secret, input),
    }
}

/// A compact token from header and payload JSON text, HMAC-signed.
pub fn hmac_token(alg: Algorithm, secret: &[u8], header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64url(header), b64url(payload));
    let sig = hmac_sign(alg, secret, input.as_bytes());
    format!("{input}.{}", b64url(sig))
}

/// A `TokenError` phrase goes into `WWW-Authenticate`: fixed text only.
pub fn assert_header_safe_error(e: &TokenError) {
    let d = e.description();
    assert!(
        !d.is_empty()
            && d.chars().all(|c| c.is_ascii_graphic() || c == ' ')
            && !d.contains(['"', '\\']),
        "description not header-safe: {d:?}"
    );
    let l = e.label();
    assert!(
        l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "{l}"
    );
}

/// The plugin configuration of the `extract` target: two providers reading
/// the same `Authorization` header (told apart by `iss`), every kind of token
/// source, identity headers, and rules of every kind.
pub const DECIDE_CONFIG: &str = r#"{
  "realm": "fuzz",
  "providers": [
    {
      "name": "main",
      "issuer": "https://issuer.example",
      "audiences": ["api"],
      "jwks": {"keys": [
        {"kty": "oct", "kid": "hs256", "alg": "HS256", "k": "AB8-XXybutn4FzZVdJOy0fAPLk1si6rJ6AcmRWSDosE"}
      ]},
      "from_headers": [
        {"name": "Authorization", "value_prefix": "Bearer "},
        {"name": "x-token"}
      ],
      "from_params": ["access_token"],
      "from_cookies": ["session"],
      "claim_to_headers": [
        {"claim": "sub", "header": "x-user-id"},
        {"claim": "email", "header": "X-User-Email"},
        {"claim": "roles", "header": "x-roles"},
        {"claim": "org.id", "header": "x-org"}
      ],
      "payload_header": "x-jwt-payload"
    },
    {
      "name": "other",
      "issuer": "https://other.example",
      "jwks": {"keys": [
        {"kty": "oct", "kid": "hs256", "alg": "HS256", "k": "AB8-XXybutn4FzZVdJOy0fAPLk1si6rJ6AcmRWSDosE"}
      ]},
      "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
      "claim_to_headers": [
        {"claim": "sub", "header": "x-user-id"},
        {"claim": "tenant", "header": "x-tenant"}
      ],
      "forward": true,
      "max_token_bytes": 2048
    }
  ],
  "rules": [
    {"match": {"prefix": "/healthz"}, "requires": "none"},
    {"match": {"prefix": "/public"}, "requires": {"allow_missing": true}},
    {"match": {"prefix": "/admin"}, "requires": {"providers": ["main"], "permissions": {"claim": "scope", "all_of": ["admin"]}}},
    {"match": {"path": "/ops", "methods": ["post", "PUT"]}, "requires": {"claims": {"role": ["ops", "admin"]}}},
    {"match": {"prefix": "/other"}, "requires": {"providers": ["other"]}}
  ]
}"#;

/// The compiled [`DECIDE_CONFIG`].
pub fn decide_policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| match Policy::from_json(DECIDE_CONFIG.as_bytes()) {
        Ok(p) => p,
        Err(e) => panic!("fuzz fixture config does not load: {e}"),
    })
}

/// A JSON value built from fuzz data, depth-bounded so that serializing and
/// re-parsing it (serde_json stops at 128 levels) stays meaningful.
#[derive(Debug, Clone)]
pub struct JsonValue(pub Value);

impl<'a> Arbitrary<'a> for JsonValue {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        json_value(u, 0).map(JsonValue)
    }
}

fn json_value(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Value> {
    let kind: u8 = if depth >= 6 {
        u.int_in_range(0..=6)?
    } else {
        u.int_in_range(0..=8)?
    };
    Ok(match kind {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => json!(u.arbitrary::<i64>()?),
        3 => json!(u.arbitrary::<u64>()?),
        4 => {
            let f: f64 = u.arbitrary()?;
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        5 => Value::String(u.arbitrary()?),
        6 => Value::String(pick_str(u)?.to_string()),
        7 => {
            let n = u.int_in_range(0..=4)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(json_value(u, depth + 1)?);
            }
            Value::Array(items)
        }
        _ => {
            let n = u.int_in_range(0..=4)?;
            let mut map = Map::new();
            for _ in 0..n {
                let key = if u.arbitrary()? {
                    pick_str(u)?.to_string()
                } else {
                    u.arbitrary::<String>()?
                };
                map.insert(key, json_value(u, depth + 1)?);
            }
            Value::Object(map)
        }
    })
}

/// Strings that mean something to the filter, so the fuzzer does not have
/// to guess them.
pub fn pick_str(u: &mut Unstructured<'_>) -> arbitrary::Result<&'static str> {
    const WORDS: &[&str] = &[
        "",
        "api",
        "admin",
        "ops",
        "access",
        "sig",
        "verify",
        "none",
        "NONE",
        "HS256",
        "RS256",
        "ES256",
        "EdDSA",
        "hs256",
        "rsa-2048",
        "ec-p256",
        "demo-hs256",
        ISSUER,
        OTHER_ISSUER,
        "a\r\nx-user-id: admin",
        "x\u{0}y",
        "\n",
        "Bearer ",
        "1-2",
    ];
    u.choose(WORDS).copied()
}

pub mod request;
