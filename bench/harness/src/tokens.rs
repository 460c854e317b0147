//! `tokens ALG... [--jtis N]`: one long-lived token per algorithm, signed with
//! testkit's committed test keys, and the public JWK (with `alg` and `kid`)
//! that verifies it. With `--jtis N`, N more tokens per algorithm, each with
//! its own `jti` (for the revoke-to-refused measurement).
//!
//! Output (one JSON object on stdout):
//! `{"issuer": .., "audience": .., "sub": .., "exp": .., "algs": {"HS256":
//! {"jwk": {..}, "token": "..", "jti_tokens": [{"jti": "..", "token": ".."}]}}}`

use serde_json::{json, Map, Value};
use testkit::{mint, Key};

pub const ISSUER: &str = "https://bench.test";
pub const AUDIENCE: &str = "api";
pub const SUBJECT: &str = "bench-user";
const SUPPORTED: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "ES512", "EdDSA",
];

pub fn run(args: &[String]) -> Result<(), String> {
    let mut algs = Vec::new();
    let mut jtis = 0usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--jtis" {
            let v = it.next().ok_or("--jtis needs a value")?;
            jtis = v
                .parse()
                .map_err(|_| format!("--jtis: not a number: {v}"))?;
        } else if SUPPORTED.contains(&a.as_str()) {
            algs.push(a.clone());
        } else {
            return Err(format!("unknown algorithm {a:?} (one of {SUPPORTED:?})"));
        }
    }
    if algs.is_empty() {
        return Err("tokens ALG... [--jtis N]".into());
    }
    let now = crate::unix_now();
    let exp = now + 86_400;
    let mut out = Map::new();
    for alg in &algs {
        let key = Key::for_alg(alg);
        let claims = |jti: &str| {
            json!({"iss": ISSUER, "aud": AUDIENCE, "sub": SUBJECT,
                   "iat": now, "exp": exp, "jti": jti})
        };
        let token = mint(alg, &key, &Value::Null, &claims(&format!("bench-{alg}")));
        let jti_tokens: Vec<Value> = (0..jtis)
            .map(|i| {
                let jti = format!("bench-{alg}-{now}-{i}");
                json!({"jti": jti, "token": mint(alg, &key, &Value::Null, &claims(&jti))})
            })
            .collect();
        out.insert(
            alg.clone(),
            json!({"jwk": key.jwk(Some(alg)), "token": token, "jti_tokens": jti_tokens}),
        );
    }
    let doc = json!({"issuer": ISSUER, "audience": AUDIENCE, "sub": SUBJECT,
                     "exp": exp, "algs": out});
    println!("{doc}");
    Ok(())
}
