//! `jwt-auth-bench`: the native pieces of `make bench` (see bench/README.md).
//!
//! ```text
//! jwt-auth-bench tokens ALG... [--jtis N]        tokens and public JWKs as JSON
//! jwt-auth-bench probe-config FILE               0 = the filter accepts the config
//! jwt-auth-bench ext-authz --config FILE --port P
//!     Envoy ext_authz HTTP service running this project's decision code
//! jwt-auth-bench feed --port P --entries N [--page-entries N]
//!     a static revocation feed holding N revoked jtis, plus POST /admin/revoke
//! jwt-auth-bench verify-args ALG...             `verify_signature` arguments
//!     (valid signature; DER and PEM keys) for bench/host-probe, as JSON
//! ```
//!
//! The servers are single-threaded (tokio current_thread, hyper 1 HTTP/1.1):
//! the benchmark pins them to one core next to the load generator.

mod authz;
mod feed;
mod serve;
mod tokens;
mod verify_args;

use std::process::ExitCode;

const USAGE: &str = "\
usage: jwt-auth-bench tokens ALG... [--jtis N]
       jwt-auth-bench probe-config FILE
       jwt-auth-bench ext-authz --config FILE --port PORT
       jwt-auth-bench feed --port PORT --entries N [--page-entries N]
       jwt-auth-bench verify-args ALG...";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("tokens") => tokens::run(&args[1..]),
        Some("probe-config") => probe_config(&args[1..]),
        Some("ext-authz") => authz::run(&args[1..]),
        Some("feed") => feed::run(&args[1..]),
        Some("verify-args") => verify_args::run(&args[1..]),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jwt-auth-bench: {e}");
            ExitCode::from(2)
        }
    }
}

/// Whether this build of the filter's core accepts a plugin configuration
/// (the wasm is built from the same source tree). Prints the error if not.
fn probe_config(args: &[String]) -> Result<(), String> {
    let [file] = args else {
        return Err("probe-config FILE".into());
    };
    let bytes = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
    jwt_auth_core::config::Policy::from_json(&bytes)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `--name value` from an argument list.
pub(crate) fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

pub(crate) fn flag_num<T: std::str::FromStr>(args: &[String], name: &str) -> Result<T, String> {
    let v = flag(args, name).ok_or_else(|| format!("{name} is required"))?;
    v.parse().map_err(|_| format!("{name}: not a number: {v}"))
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
