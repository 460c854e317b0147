//! The adversarial suite's setup, clients, cases and checks.

pub use std::io::{Cursor, Read, Write};
pub use std::net::TcpStream;
pub use std::sync::atomic::{AtomicU32, Ordering};
pub use std::time::Duration;

pub use serde_json::{json, Value};
pub use testkit::h2::{error_name, H2Connection, H2Outcome};
pub use testkit::*;

pub const ISS: &str = "https://issuer.test";
pub const ISS_MULTI: &str = "https://multi.test";
pub const AUD: &str = "api";
pub const REALM: &str = "api";
/// Every header the filter may write, and the underscore spellings it strips.
pub const IDENTITY: [&str; 8] = [
    "x-user-id",
    "x_user_id",
    "x-auth-provider",
    "x_auth_provider",
    "x-user-name",
    "x_user_name",
    "x-user-groups",
    "x_user_groups",
];
/// Every spoofed value contains this; the upstream must never see it.
pub const SPOOF: &str = "mallory";

// ------------------------------------------------------------- the setup --

pub fn main_key() -> Key {
    Key::hs(256)
}

pub fn multi_key() -> Key {
    Key::hs(384)
}

pub fn config() -> Value {
    json!({
        "realm": REALM,
        "providers": [
            {
                "name": "main",
                "issuer": ISS,
                "audiences": [AUD],
                "jwks": jwks([main_key().jwk(Some("HS256")), Key::rsa2048().jwk(None)]),
                // Below the default, so the limit is tested under Envoy's
                // own limit for request headers.
                "max_token_bytes": 8192,
                "claim_to_headers": [
                    {"claim": "sub", "header": "x-user-id"},
                    {"claim": "provider", "header": "x-auth-provider"},
                    {"claim": "name", "header": "x-user-name"},
                    {"claim": "groups", "header": "x-user-groups"}
                ]
            },
            {
                "name": "multi",
                "issuer": ISS_MULTI,
                "audiences": [AUD],
                "jwks": jwks([multi_key().jwk(Some("HS384"))]),
                "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
                "from_params": ["access_token"],
                "from_cookies": ["session"],
                "claim_to_headers": [{"claim": "sub", "header": "x-user-id"}]
            }
        ],
        "rules": [
            {"match": {"prefix": "/healthz"}, "requires": "none"},
            {"match": {"path": "/status"}, "requires": "none"},
            {"match": {"prefix": "/public"}, "requires": {"providers": ["main"], "allow_missing": true}},
            {"match": {"prefix": "/multi"}, "requires": {"providers": ["multi"]}},
            {"match": {"prefix": "/admin"}, "requires": {"providers": ["main"], "claims": {"role": "admin"}}},
            {"match": {"prefix": "/"}, "requires": {"providers": ["main"]}}
        ]
    })
}

/// Paths a request without a verified token may reach (bypass and
/// allow_missing rules above), as the upstream receives them: the rules
/// ignore letter case and an exact rule covers a trailing slash.
pub fn open_path(path: &str) -> bool {
    bypassed_path(path) || lowercase_path(path).starts_with("/public")
}

/// Paths of the bypass rules above.
pub fn bypassed_path(path: &str) -> bool {
    let path = lowercase_path(path);
    path.starts_with("/healthz") || path == "/status" || path == "/status/"
}

pub fn lowercase_path(path: &str) -> String {
    path.split('?').next().unwrap_or("").to_ascii_lowercase()
}

pub fn start(underscores: &str) -> Envoy {
    Envoy::builder()
        .plugin_config_json(&config())
        .concurrency(2)
        .headers_with_underscores_action(underscores)
        .start()
}

pub fn claims(sub: &str) -> Value {
    let now = now();
    json!({"iss": ISS, "aud": AUD, "sub": sub, "provider": "corp", "iat": now - 5,
           "nbf": now - 5, "exp": now + 600, "jti": random_id()})
}

pub fn with(mut base: Value, patch: Value) -> Value {
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

pub fn token_for(sub: &str) -> String {
    mint("HS256", &main_key(), &json!({}), &claims(sub))
}

pub fn multi_token(sub: &str) -> String {
    let mut c = claims(sub);
    c["iss"] = json!(ISS_MULTI);
    mint("HS384", &multi_key(), &json!({}), &c)
}

/// Signs exact header and payload JSON text with the main HS256 key.
pub fn signed_text(header: &str, payload: &str) -> String {
    sign_parts("HS256", &main_key(), header, payload)
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

// --------------------------------------------------------------- clients --

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

pub const BOTH: &[Proto] = &[Proto::H1, Proto::H2];
pub const H1_ONLY: &[Proto] = &[Proto::H1];

/// A request header: a name/value pair (both protocols), or a raw HTTP/1.1
/// header line written as is.
#[derive(Clone, Debug)]
pub enum Hdr {
    Pair(Vec<u8>, Vec<u8>),
    Line(Vec<u8>),
}

pub fn h(name: &str, value: &str) -> Hdr {
    Hdr::Pair(name.as_bytes().to_vec(), value.as_bytes().to_vec())
}

pub fn hb(name: &str, value: &[u8]) -> Hdr {
    Hdr::Pair(name.as_bytes().to_vec(), value.to_vec())
}

pub fn line(l: &[u8]) -> Hdr {
    Hdr::Line(l.to_vec())
}

#[derive(Debug)]
pub enum Outcome {
    Resp(Response),
    /// Reset, GOAWAY or a connection closed without a response.
    Refused(String),
}

impl Outcome {
    pub fn describe(&self) -> String {
        match self {
            Outcome::Resp(r) => format!(
                "{} {}",
                r.status,
                r.header("www-authenticate").unwrap_or_else(|| {
                    r.body.get(..r.body.len().min(60)).unwrap_or("").trim_end()
                })
            ),
            Outcome::Refused(why) => format!("refused: {why}"),
        }
    }
}

/// One request on a fresh HTTP/1.1 connection (`Connection: close`),
/// tolerant of the server answering and closing before reading it all.
pub fn send_h1(port: u16, method: &[u8], path: &[u8], headers: &[Hdr]) -> Outcome {
    let mut req = Vec::new();
    req.extend_from_slice(method);
    req.push(b' ');
    req.extend_from_slice(path);
    req.extend_from_slice(format!(" HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n").as_bytes());
    for hdr in headers {
        match hdr {
            Hdr::Pair(n, v) => {
                req.extend_from_slice(n);
                req.extend_from_slice(b": ");
                req.extend_from_slice(v);
            }
            Hdr::Line(l) => req.extend_from_slice(l),
        }
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(&req);
    // Stop at the first complete response: after refusing a malformed
    // request Envoy keeps the connection open for its delayed-close timeout.
    let mut bytes = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                bytes.extend_from_slice(&buf[..n]);
                if let Ok(r) = testkit::http::read_response(&mut Cursor::new(&bytes), false) {
                    if has_framing(&r) {
                        return Outcome::Resp(r);
                    }
                }
            }
            Err(_) => break,
        }
    }
    if bytes.is_empty() {
        return Outcome::Refused("connection closed without a response".into());
    }
    match testkit::http::read_response(&mut Cursor::new(&bytes), false) {
        Ok(r) => Outcome::Resp(r),
        Err(e) => Outcome::Refused(format!(
            "unparsable response ({e}): {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        )),
    }
}

/// Whether a parsed response had an explicit length (so it is complete).
pub fn has_framing(r: &Response) -> bool {
    r.header("content-length").is_some()
        || r.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

pub fn send_h2(port: u16, method: &str, path: &[u8], headers: &[Hdr]) -> Outcome {
    let mut pairs: Vec<(&[u8], &[u8])> = Vec::new();
    for hdr in headers {
        match hdr {
            Hdr::Pair(n, v) => pairs.push((n, v)),
            Hdr::Line(_) => panic!("raw header lines are HTTP/1.1 only"),
        }
    }
    // The path goes out as given (bytes), through a `:path` literal.
    let mut conn = H2Connection::open(port);
    match conn.send_bytes(method.as_bytes(), path, &pairs, b"") {
        H2Outcome::Response(r) => Outcome::Resp(r),
        H2Outcome::Reset(code) => Outcome::Refused(format!("RST_STREAM {}", error_name(code))),
        H2Outcome::GoAway { code, debug } => {
            Outcome::Refused(format!("GOAWAY {} {debug}", error_name(code)))
        }
        H2Outcome::Closed(why) => Outcome::Refused(format!("closed: {why}")),
    }
}

// ----------------------------------------------------------------- cases --

#[derive(Clone, Debug)]
pub enum Expect {
    /// 200 from the upstream; it saw exactly these values for these
    /// identity headers and none of the other identity headers.
    Allow(Vec<(&'static str, Vec<String>)>),
    /// 200 with this identity, and the upstream saw this path (query and
    /// marker removed).
    AllowAt(Vec<(&'static str, Vec<String>)>, &'static str),
    /// Like `Allow`, but these identity headers are not checked (their
    /// values are recorded for the report instead).
    AllowExcept(Vec<(&'static str, Vec<String>)>, &'static [&'static str]),
    /// The filter's refusal: status and RFC 6750 error (None: no error
    /// attribute, i.e. no credentials) and a phrase of the description.
    Deny(u16, Option<&'static str>, Option<&'static str>),
    /// Envoy refuses before or instead of the filter: one of these statuses,
    /// or (when `reset_ok`) a reset / close.
    Refused(&'static [u16], bool),
}

pub fn anon() -> Expect {
    Expect::Allow(vec![])
}

pub fn user(u: &str) -> Expect {
    Expect::Allow(vec![
        ("x-user-id", vec![u.to_string()]),
        ("x-auth-provider", vec!["corp".to_string()]),
    ])
}

pub fn ident(pairs: &[(&'static str, &str)]) -> Expect {
    Expect::Allow(
        pairs
            .iter()
            .map(|(n, v)| (*n, vec![v.to_string()]))
            .collect(),
    )
}

pub fn missing() -> Expect {
    Expect::Deny(401, None, None)
}

pub fn invalid(desc: &'static str) -> Expect {
    Expect::Deny(401, Some("invalid_token"), Some(desc))
}

pub struct Case {
    pub name: String,
    pub method: &'static str,
    /// The request target; `{mk}` is replaced by this case's marker
    /// parameter, otherwise the marker is appended as a query parameter.
    pub path: Vec<u8>,
    pub headers: Vec<Hdr>,
    pub protos: &'static [Proto],
    /// Per protocol, when the two differ.
    pub expect: Expect,
    pub expect_h2: Option<Expect>,
}

pub fn case(name: impl Into<String>, path: &str, headers: Vec<Hdr>, expect: Expect) -> Case {
    Case {
        name: name.into(),
        method: "GET",
        path: path.as_bytes().to_vec(),
        headers,
        protos: BOTH,
        expect,
        expect_h2: None,
    }
}

impl Case {
    pub fn h1_only(mut self) -> Self {
        self.protos = H1_ONLY;
        self
    }

    pub fn h2_expect(mut self, e: Expect) -> Self {
        self.expect_h2 = Some(e);
        self
    }
}

pub fn marker() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "mk={}x{}",
        N.fetch_add(1, Ordering::SeqCst),
        &random_id()[..8]
    )
}

pub fn with_marker(path: &[u8], mk: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(path);
    if text.contains("{mk}") {
        // Only valid UTF-8 paths use the placeholder.
        return text.replace("{mk}", mk).into_bytes();
    }
    let mut out = path.to_vec();
    out.push(if path.contains(&b'?') { b'&' } else { b'?' });
    out.extend_from_slice(mk.as_bytes());
    out
}

/// Runs every case over its protocols; returns one line per outcome and the
/// failures.
pub fn run(envoy: &Envoy, cases: &[Case]) -> (Vec<String>, Vec<String>) {
    let mut seen = Vec::new();
    let mut failures = Vec::new();
    for c in cases {
        for &proto in c.protos {
            let expect = match (proto, &c.expect_h2) {
                (Proto::H2, Some(e)) => e,
                _ => &c.expect,
            };
            let mk = marker();
            let path = with_marker(&c.path, &mk);
            let before = envoy.upstream().request_count();
            let outcome = match proto {
                Proto::H1 => send_h1(envoy.port(), c.method.as_bytes(), &path, &c.headers),
                Proto::H2 => send_h2(envoy.port(), c.method, &path, &c.headers),
            };
            let forwarded: Vec<Recorded> = envoy
                .upstream()
                .requests()
                .into_iter()
                .skip(before)
                .collect();
            let upstream_path = forwarded.first().map(|r| r.path.clone());
            seen.push(format!(
                "{proto:?} | {} | {} | upstream: {}",
                c.name,
                outcome.describe(),
                upstream_path.as_deref().unwrap_or("-")
            ));
            if let Err(why) = check(expect, &outcome, &forwarded, &mk, c) {
                failures.push(format!(
                    "[{proto:?}] {}: {why} (got {}; path {:?})",
                    c.name,
                    outcome.describe(),
                    String::from_utf8_lossy(&path)
                ));
            }
        }
    }
    (seen, failures)
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

pub fn check(
    expect: &Expect,
    outcome: &Outcome,
    forwarded: &[Recorded],
    mk: &str,
    c: &Case,
) -> Result<(), String> {
    // Invariants first.
    for r in forwarded {
        for (n, v) in &r.headers {
            ensure!(
                !v.to_ascii_lowercase().contains(SPOOF),
                "the upstream received a spoofed value: {n}: {v:?}"
            );
        }
        let authenticated = r.header("x-user-id").len() == 1;
        ensure!(
            authenticated || open_path(&r.path) || has_token(c),
            "no verified identity, yet forwarded on {:?}",
            r.path
        );
    }
    ensure!(
        forwarded.len() <= 1,
        "the upstream saw {} requests",
        forwarded.len()
    );
    match expect {
        Expect::Allow(identity)
        | Expect::AllowAt(identity, _)
        | Expect::AllowExcept(identity, _) => {
            let Outcome::Resp(resp) = outcome else {
                return Err("expected 200, got no response".into());
            };
            ensure!(
                resp.status == 200,
                "expected 200, got {} {:?}",
                resp.status,
                resp.body
            );
            let Some(r) = forwarded.first() else {
                return Err("200 but the upstream saw nothing".into());
            };
            ensure!(
                r.path.contains(mk),
                "the upstream saw another request: {}",
                r.path
            );
            for name in IDENTITY {
                if matches!(expect, Expect::AllowExcept(_, skip) if skip.contains(&name)) {
                    continue;
                }
                let want: Vec<String> = identity
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                let got = r.header(name);
                ensure!(got == want, "upstream {name}: {got:?}, expected {want:?}");
            }
            if let Expect::AllowAt(_, want_path) = expect {
                let got = r.path.split('?').next().unwrap_or("");
                ensure!(
                    got == *want_path,
                    "upstream path {got:?}, expected {want_path:?}"
                );
            }
            // The token is removed once verified (`forward` is off); a
            // bypassed route leaves every header alone.
            let bypassed = bypassed_path(&r.path);
            ensure!(
                bypassed || r.header("authorization").is_empty(),
                "the token header was forwarded"
            );
            Ok(())
        }
        Expect::Deny(status, error, desc) => {
            ensure!(forwarded.is_empty(), "forwarded to the upstream");
            let Outcome::Resp(resp) = outcome else {
                return Err(format!("expected {status}, got no response"));
            };
            ensure!(
                resp.status == *status,
                "expected {status}, got {} {:?}",
                resp.status,
                resp.body
            );
            let www = resp.headers_named("www-authenticate");
            match error {
                None => ensure!(
                    www == [format!("Bearer realm=\"{REALM}\"")],
                    "www-authenticate {www:?}"
                ),
                Some(e) => {
                    ensure!(
                        www.len() == 1 && www[0].contains(&format!("error=\"{e}\"")),
                        "www-authenticate {www:?}, expected error {e}"
                    );
                    if let Some(d) = desc {
                        ensure!(
                            www[0].contains(d),
                            "www-authenticate {www:?} does not say {d:?}"
                        );
                    }
                }
            }
            let body: Value = serde_json::from_str(&resp.body)
                .map_err(|e| format!("deny body not JSON ({e}): {:?}", resp.body))?;
            ensure!(body.get("error").is_some(), "deny body {body}");
            Ok(())
        }
        Expect::Refused(statuses, reset_ok) => {
            ensure!(forwarded.is_empty(), "forwarded to the upstream");
            match outcome {
                Outcome::Resp(r) => ensure!(
                    statuses.contains(&r.status),
                    "expected one of {statuses:?}, got {}",
                    r.status
                ),
                Outcome::Refused(why) => {
                    ensure!(*reset_ok, "expected one of {statuses:?}, got {why}")
                }
            }
            Ok(())
        }
    }
}

/// Whether the case sends something a provider could read as a token (for
/// the "no identity, yet forwarded" invariant: a verified token whose `sub`
/// the filter could not write, e.g. one with CR/LF, is still verified).
pub fn has_token(c: &Case) -> bool {
    c.headers.iter().any(|hdr| match hdr {
        Hdr::Pair(n, _) => n.eq_ignore_ascii_case(b"authorization"),
        Hdr::Line(l) => l.to_ascii_lowercase().starts_with(b"authorization"),
    })
}

pub fn finish(what: &str, seen: Vec<String>, failures: Vec<String>) {
    println!("--- {what}: {} outcomes ---", seen.len());
    for s in &seen {
        println!("{s}");
    }
    assert!(
        failures.is_empty(),
        "{what}: {} of {} outcomes wrong:\n  - {}",
        failures.len(),
        seen.len(),
        failures.join("\n  - ")
    );
}

pub fn b64std(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn thread_sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}
