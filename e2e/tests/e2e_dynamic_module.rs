//! The native build's contract with Envoy 1.40's dynamic-module loader:
//! the ABI version it reports, what Envoy does with another one (it only
//! warns), and how the module itself refuses an Envoy that lacks a callback
//! it calls, loudly, before any request.
//!
//! Needs the release module (`make build-native`) and Envoy (`make .venv`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use serde_json::json;
use testkit::*;

fn config() -> serde_json::Value {
    let key = Key::hs(256);
    json!({"providers": [{"name": "p", "jwks": jwks([key.jwk(Some("HS256"))])}]})
}

/// A copy of the built module, as `lib<name>.so` in a fresh directory,
/// with `from` replaced by `to` (same length) where it first follows
/// `after` (or anywhere, when `after` is empty).
fn patched_module(name: &str, after: &[u8], from: &[u8], to: &[u8]) -> PathBuf {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(default_native_path()).unwrap();
    let start = find(&bytes, after, 0).expect("marker in the module");
    let at = find(&bytes, from, start).expect("text to patch in the module");
    bytes[at..at + from.len()].copy_from_slice(to);
    let dir = std::env::temp_dir().join(format!("jwt-auth-module-{}", random_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("lib{name}.so"));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return Some(from);
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn remove_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn envoy_1_40_reports_the_modules_abi_version_as_matched() {
    let envoy = Envoy::builder()
        .module(Module::Native)
        .plugin_config_json(&config())
        .start();
    assert!(
        envoy
            .log()
            .contains("Dynamic module ABI version v0.2.0 matched."),
        "{}",
        envoy.log()
    );
    assert_eq!(envoy.get("/x", &[]).status, 401);
}

#[test]
fn envoy_only_warns_about_another_abi_version() {
    // What Envoy's loader does with a module reporting another version:
    // a warning, and the module loads. Hence the module's own check below.
    let so = patched_module("jwt_auth_other_abi", b"", b"v0.2.0\0", b"v0.1.0\0");
    let envoy = Envoy::builder()
        .native_path(&so)
        .plugin_config_json(&config())
        .start();
    let log = envoy.log();
    assert!(
        log.contains("Dynamic module ABI version v0.1.0 is deprecated"),
        "{log}"
    );
    assert_eq!(envoy.get("/x", &[]).status, 401);
    drop(envoy);
    remove_dir(&so);
}

#[test]
fn an_envoy_without_a_callback_the_module_calls_refuses_to_start_naming_it() {
    // The module resolves every callback it calls when Envoy loads it; one
    // renamed in its table stands for an Envoy (another version) without it.
    let so = patched_module(
        "jwt_auth_missing_callback",
        b"jwt-auth-callbacks\0",
        b"envoy_dynamic_module_callback_http_clear_route_cache\0",
        b"envoy_dynamic_module_callback_http_clear_route_cachX\0",
    );
    let result = Envoy::builder()
        .native_path(&so)
        .plugin_config_json(&config())
        .try_start();
    let log = match result {
        Ok(envoy) => panic!("Envoy started with the module:\n{}", envoy.log()),
        Err(log) => log,
    };
    assert!(
        log.contains(
            "jwt-auth: this Envoy has no dynamic-module callback \
             envoy_dynamic_module_callback_http_clear_route_cachX; the module is built for \
             Envoy 1.40 (ABI v0.2.0)"
        ),
        "{log}"
    );
    assert!(
        log.contains("Failed to initialize dynamic module"),
        "Envoy says why it stops:\n{log}"
    );
    remove_dir(&so);
}

#[test]
fn a_configuration_the_module_cannot_compile_is_refused_naming_the_field() {
    let result = Envoy::builder()
        .module(Module::Native)
        .plugin_config_json(&json!({"providers": [{"name": "p"}]}))
        .try_start();
    let log = match result {
        Ok(envoy) => panic!("Envoy started:\n{}", envoy.log()),
        Err(log) => log,
    };
    assert!(
        log.contains("jwt-auth: invalid configuration: providers[0].jwks: a key set is required"),
        "{log}"
    );
}
