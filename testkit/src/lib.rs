//! Test harness for jwt-auth-wasm: a real Envoy with the filter in front of an
//! echo upstream, a raw HTTP/1.1 client, and JWT minting with committed test
//! keys.
//!
//! ```no_run
//! use serde_json::json;
//! use testkit::*;
//!
//! let key = Key::rsa2048();
//! let config = json!({"providers": [{"name": "p", "issuer": "iss",
//!     "jwks": jwks([key.jwk(Some("RS256"))])}]});
//! let envoy = Envoy::with_config(&config);
//! let token = mint("RS256", &key, &json!({}), &json!({"iss": "iss", "sub": "a", "exp": now() + 60}));
//! let resp = envoy.get("/x", &[("authorization", &format!("Bearer {token}"))]);
//! assert_eq!(resp.echo().header("x-user-id"), vec!["a"]);
//! ```

pub mod bench;
pub mod envoy;
pub mod envoy_process;
pub mod feed;
pub mod feed_server;
pub mod grpc;
pub mod h2;
pub mod http;
pub mod jwt;
pub mod module;
pub mod redis;
pub mod server;

use std::net::TcpListener;
use std::path::{Path, PathBuf};

pub use envoy::{default_wasm_path, Envoy, EnvoyBuilder};
pub use envoy_process::{envoy_bin, EnvoyProcess, ProcessOptions};
pub use feed::{FakeFeed, FeedMode, ReplayingPath};
pub use feed_server::{FeedSecrets, FeedServer};
pub use http::{
    raw_exchange, raw_request, request, request_with_body, try_raw_request, Connection, Echo,
    Response,
};
pub use jwt::{
    b64url, b64url_decode, decode_parts, demo_claims, demo_jwks, demo_token, ecdsa_other_s, jwks,
    jwks_json, mint, mint_unsigned, now, random_id, sign_parts, tamper_claims, tamper_signature,
    DemoClaims, Key,
};
pub use module::{default_native_path, Module};
pub use redis::RedisServer;
pub use server::{echo_json, EchoUpstream, HttpServer, Recorded, Reply};

/// The cargo workspace root (the directory above `testkit/`).
/// A file the build makes: `$var` when set, else `default` under the
/// workspace root. Panics (with `hint`, how to make it) when it is missing:
/// tests must fail, never skip.
pub(crate) fn built_file(var: &str, default: &str, hint: &str) -> PathBuf {
    let path = match std::env::var_os(var) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_root().join(default),
    };
    if !path.is_file() {
        panic!("{} not found — {hint} or set {var}", path.display());
    }
    path
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A binary of this workspace (debug profile), built first when it is not
/// there yet, so a suite run on its own (`cargo test -p jwt-auth-e2e`) runs
/// the same binary `cargo test --workspace` builds.
pub fn workspace_bin(package: &str, name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target.join("debug").join(name);
    if !path.is_file() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--quiet", "-p", package, "--bin", name])
            .current_dir(workspace_root())
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build {name}: {e}"));
        assert!(
            status.success(),
            "cargo build -p {package} --bin {name} failed"
        );
    }
    path
}

/// A TCP port on 127.0.0.1 that was free a moment ago. Prefer binding port 0
/// directly where possible (the servers and Envoy here do) to avoid races.
pub fn free_port() -> u16 {
    let l = TcpListener::bind(("127.0.0.1", 0)).unwrap_or_else(|e| panic!("bind :0: {e}"));
    l.local_addr()
        .unwrap_or_else(|e| panic!("local_addr: {e}"))
        .port()
}

/// Polls `f` every 50 ms until it holds or `limit` passes; true if it held.
pub fn wait_until(limit: std::time::Duration, f: impl FnMut() -> bool) -> bool {
    time_until(limit, std::time::Duration::from_millis(50), f).is_some()
}

/// Polls `f` every `every` until it holds or `limit` passes; how long it
/// took, measured when `f` returned true.
pub fn time_until(
    limit: std::time::Duration,
    every: std::time::Duration,
    mut f: impl FnMut() -> bool,
) -> Option<std::time::Duration> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(every);
    }
    None
}
