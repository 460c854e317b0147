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

/// Envoy writes its log file every 50 ms (the test kit's flush interval).
const WAIT: std::time::Duration = std::time::Duration::from_secs(5);

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
        envoy.wait_for_log("Dynamic module ABI version v0.2.0 matched.", WAIT),
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
    assert!(
        envoy.wait_for_log("Dynamic module ABI version v0.1.0 is deprecated", WAIT),
        "{}",
        envoy.log()
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

/// `envoy --mode validate` of a config for the native module, with the
/// built library on the search path; returns Envoy's output.
fn validate(config: &Path) -> String {
    let so = default_native_path();
    let out = std::process::Command::new(envoy_bin())
        .args(["--mode", "validate", "--disable-hot-restart", "-c"])
        .arg(config)
        .env("ENVOY_DYNAMIC_MODULES_SEARCH_PATH", so.parent().unwrap())
        .output()
        .expect("run envoy --mode validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{}:\n{text}", config.display());
    text
}

#[test]
fn the_plain_envoy_example_validates_with_the_module_loaded() {
    let example = workspace_root().join("deploy/envoy/envoy-native.yaml");
    let out = validate(&example);
    assert!(
        out.contains("jwt-auth: configuration loaded (dynamic module): 1 provider(s) (1 with remote keys), 1 rule(s)"),
        "{out}"
    );
    // Every RSA and ECDSA algorithm passed its known-answer self-test.
    assert!(
        out.contains(
            "jwt-auth: native signature verification for RS256, RS384, RS512, ES256, ES384, \
             ES512 (AWS-LC)"
        ),
        "{out}"
    );
}

#[test]
fn the_demo_config_turned_native_validates_with_the_same_plugin_configuration() {
    // What `make run MODULE=native` runs.
    let dir = std::env::temp_dir().join(format!("jwt-auth-demo-native-{}", random_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_yaml = dir.join("envoy-native.yaml");
    let status = std::process::Command::new("python3")
        .arg(workspace_root().join("tools/native_envoy_yaml.py"))
        .arg(workspace_root().join("envoy.yaml"))
        .arg(&out_yaml)
        .status()
        .expect("python3");
    assert!(status.success());
    let converted = std::fs::read_to_string(&out_yaml).unwrap();
    assert!(!converted.contains("envoy.filters.http.wasm"));
    let out = validate(&out_yaml);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.contains("revocation on"), "{out}");
}

#[test]
fn the_shipped_module_matches_its_checksum_and_loads() {
    // `make release` (a prerequisite of `make test`) puts it in dist/.
    use sha2::{Digest, Sha256};
    let dist = workspace_root().join("dist");
    let so = dist.join("libjwt_auth_dynamic_module.so");
    let bytes =
        std::fs::read(&so).unwrap_or_else(|e| panic!("{}: {e} (run `make release`)", so.display()));
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let listed =
        std::fs::read_to_string(dist.join("libjwt_auth_dynamic_module.so.sha256")).unwrap();
    assert_eq!(listed, format!("{digest}  libjwt_auth_dynamic_module.so\n"));
    let envoy = Envoy::builder()
        .native_path(&so)
        .plugin_config_json(&config())
        .start();
    assert!(envoy.wait_for_log("Dynamic module ABI version v0.2.0 matched.", WAIT));
    assert_eq!(envoy.get("/x", &[]).status, 401);
}

/// Beside each artifact, `make release` ships the notices of what is linked
/// into it: every crate with its licence, then the licence texts, AWS-LC's
/// (statically linked C) among them for the native library.
#[test]
fn the_release_carries_the_third_party_notices() {
    let dist = workspace_root().join("dist");
    for (artifact, linked, text) in [
        (
            "libjwt_auth_dynamic_module.so",
            "- aws-lc-sys ",
            "AWS Libcrypto (AWS-LC)",
        ),
        ("plugin.wasm", "- jwt-compact ", "Apache License"),
    ] {
        let path = dist.join(format!("{artifact}.third-party.txt"));
        let notices = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run `make release`)", path.display()));
        assert!(
            notices.contains(linked),
            "{artifact}: {linked:?} not listed"
        );
        assert!(
            notices.contains(text),
            "{artifact}: no {text:?} licence text"
        );
        // Our own crates are not third-party software.
        assert!(!notices.contains("- jwt-auth-core "), "{artifact}");
    }
}
