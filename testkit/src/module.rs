//! Which build of the filter an [`crate::Envoy`] runs: the proxy-wasm
//! module or the native dynamic module, the same configuration and the
//! same expected behaviour either way.
//!
//! `JWT_AUTH_MODULE=wasm|native` picks the default for every Envoy a test
//! starts (unset: wasm), so a suite runs unchanged against either build;
//! [`crate::EnvoyBuilder::module`] picks one explicitly.

use std::path::PathBuf;

use crate::built_file;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    /// `envoy.filters.http.wasm` running `jwt_auth_wasm.wasm` in V8.
    Wasm,
    /// `envoy.filters.http.dynamic_modules` loading
    /// `libjwt_auth_dynamic_module.so`.
    Native,
}

impl Module {
    /// `$JWT_AUTH_MODULE`; panics on a value other than `wasm` or `native`
    /// (a typo must not quietly test the other build).
    pub fn from_env() -> Module {
        match std::env::var("JWT_AUTH_MODULE").as_deref() {
            Err(_) | Ok("") | Ok("wasm") => Module::Wasm,
            Ok("native") => Module::Native,
            Ok(other) => panic!("JWT_AUTH_MODULE={other:?}: expected \"wasm\" or \"native\""),
        }
    }

    /// The namespace Envoy puts in front of the filter's own metrics:
    /// `wasmcustom` for wasm, `dynamicmodulescustom` for dynamic modules
    /// (Envoy 1.40 has no setting for it).
    pub fn stat_namespace(self) -> &'static str {
        match self {
            Module::Wasm => "wasmcustom",
            Module::Native => "dynamicmodulescustom",
        }
    }

    /// What `/stats/prometheus` puts in front of a metric of the filter:
    /// Envoy drops the `wasmcustom` namespace and the `envoy_` prefix for
    /// wasm metrics, and keeps both for a dynamic module's.
    pub fn prometheus_prefix(self) -> &'static str {
        match self {
            Module::Wasm => "",
            Module::Native => "envoy_dynamicmodulescustom_",
        }
    }
}

/// The native module: `$JWT_AUTH_DYNAMIC_MODULE`, else
/// `<workspace>/target/release/libjwt_auth_dynamic_module.so`. Panics when
/// missing.
pub fn default_native_path() -> PathBuf {
    built_file(
        "JWT_AUTH_DYNAMIC_MODULE",
        "target/release/libjwt_auth_dynamic_module.so",
        "build the jwt-auth dynamic module with `make build-native` \
         (cargo build --release -p jwt-auth-dynamic-module)",
    )
}
