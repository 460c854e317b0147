//! `jwt-auth-check`, the offline twin of the filter: the same decision code
//! on a config, a request and a time, with the documented exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};
use testkit::*;

const ISS: &str = "https://check.test";

fn write(dir: &std::path::Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, value.to_string()).unwrap();
    path
}

fn check(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_jwt-auth-check"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn config(keys: Value) -> Value {
    json!({
        "realm": "api",
        "providers": [{"name": "main", "issuer": ISS, "audiences": ["api"], "jwks": keys,
                       "claim_to_headers": [{"claim": "sub", "header": "x-user-id"}],
                       "claims_to_filter_state": [{"claim": "sub", "name": "envoy.string"}]}],
        "protected_resource": {"resource": "https://api.example.com", "authorization_servers": [ISS]},
        "rules": [{"match": {"prefix": "/healthz"}, "requires": "none"},
                  {"match": {"prefix": "/admin"}, "requires": {"permissions": {"all_of": ["admin"]}}}]
    })
}

#[test]
fn validate_allow_deny_and_exit_codes() {
    let dir = tempfile_dir();
    let key = Key::hs(256);
    let cfg = write(&dir, "plugin.json", &config(jwks([key.jwk(Some("HS256"))])));
    let cfg = cfg.to_str().unwrap();

    let (code, out, _) = check(&["--config", cfg, "--validate"]);
    assert_eq!((code, out["valid"].clone()), (0, json!(true)));

    let (code, out, _) = check(&[
        "--config",
        cfg,
        "--path",
        "/.well-known/oauth-protected-resource",
    ]);
    assert_eq!(
        (code, &out["decision"], &out["status"]),
        (0, &json!("reply"), &json!(200)),
        "{out}"
    );

    let now = 1_900_000_000i64;
    let token = mint(
        "HS256",
        &key,
        &json!({}),
        &json!({"iss": ISS, "aud": "api", "sub": "ann", "exp": now + 60}),
    );
    let auth = format!("authorization: Bearer {token}");
    let (code, out, _) = check(&[
        "--config",
        cfg,
        "--now",
        &now.to_string(),
        "--path",
        "/x",
        "--header",
        &auth,
        "--header",
        "X-User-Id: mallory",
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["decision"], "allow");
    assert_eq!(out["status"], 200);
    assert_eq!(out["set_headers"]["x-user-id"], "ann");
    assert_eq!(out["filter_state"], json!({"envoy.string": "ann"}));
    assert!(out["removed_headers"]
        .as_array()
        .unwrap()
        .contains(&json!("authorization")));

    // The same token an hour later: why was it refused?
    let later = (now + 3600).to_string();
    let (code, out, _) = check(&[
        "--config", cfg, "--now", &later, "--path", "/x", "--header", &auth,
    ]);
    assert_eq!(code, 1);
    assert_eq!(out["decision"], "deny");
    assert_eq!(out["status"], 401);
    assert_eq!(out["reason"], "token expired");

    let (code, out, _) = check(&[
        "--config",
        cfg,
        "--now",
        &now.to_string(),
        "--path",
        "/admin",
        "--header",
        &auth,
    ]);
    assert_eq!((code, out["status"].clone()), (1, json!(403)));
    let (code, out, _) = check(&["--config", cfg, "--path", "/healthz"]);
    assert_eq!((code, out["reason"].clone()), (0, json!("bypassed")));
    assert_eq!(
        (out["canonical_path"].clone(), out["rule"].clone()),
        (json!("/healthz"), json!(0))
    );

    // The path the rules saw, for the spellings that reach other rules.
    let (code, out, _) = check(&["--config", cfg, "--path", "/healthz/..;/ADMIN?x=1"]);
    assert_eq!(code, 1);
    assert_eq!(out["canonical_path"], "/ADMIN");
    assert_eq!(out["rule"], 1);
    assert_eq!(out["reason"], "token required");
    let (code, out, _) = check(&["--config", cfg, "--path", "/healthz/..%2Fadmin"]);
    assert_eq!((code, out["status"].clone()), (1, json!(400)));
    assert_eq!(out["reason"], "ambiguous path");
    assert_eq!(out["canonical_path"], Value::Null);
    assert_eq!(out["path_problem"], "escaped slash");
    let (_, out, _) = check(&["--config", cfg, "--path", "/x"]);
    assert_eq!(out["rule"], "default");
    let (code, out, _) = check(&["--config", cfg, "--method", "post", "--path", "/x"]);
    assert_eq!((code, out["reason"].clone()), (1, json!("token required")));

    // Bad configuration and bad arguments: exit 2, message on stderr.
    let bad = write(
        &dir,
        "bad.json",
        &json!({"providers": [{"name": "m", "jwks": {"keys": []}, "audience": "x"}]}),
    );
    let (code, _, err) = check(&["--config", bad.to_str().unwrap(), "--validate"]);
    assert_eq!(code, 2);
    assert!(err.contains("providers[0].audience"), "{err}");
    let (code, _, err) = check(&["--config", cfg, "--bogus"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown argument"), "{err}");
    let (code, _, _) = check(&["--validate"]);
    assert_eq!(code, 2);
    let (code, _, err) = check(&["--config", "/nonexistent.json", "--validate"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn remote_jwks_from_a_file() {
    let dir = tempfile_dir();
    let key = Key::rsa2048().with_kid("r1");
    let mut cfg = config(json!({"keys": []}));
    cfg["providers"][0].as_object_mut().unwrap().remove("jwks");
    cfg["providers"][0]["remote_jwks"] = json!({"cluster": "idp"});
    let cfg = write(&dir, "remote.json", &cfg);
    let keys = write(&dir, "jwks.json", &jwks([key.jwk(Some("RS256"))]));
    let now = 1_900_000_000i64;
    let token = mint(
        "RS256",
        &key,
        &json!({}),
        &json!({"iss": ISS, "aud": "api", "sub": "rita", "exp": now + 60}),
    );
    let auth = format!("authorization: Bearer {token}");
    let base = [
        "--config",
        cfg.to_str().unwrap(),
        "--now",
        "1900000000",
        "--header",
        auth.as_str(),
    ];
    let (code, out, _) = check(&base);
    assert_eq!(
        (code, out["reason"].clone()),
        (1, json!("signing keys unavailable"))
    );
    let with_keys = format!("main={}", keys.to_str().unwrap());
    let (code, out, _) = check(&[&base[..], &["--jwks-file", &with_keys]].concat());
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["set_headers"]["x-user-id"], "rita");
    let (code, _, err) = check(&[&base[..], &["--jwks-file", "nobody=/x"]].concat());
    assert_eq!(code, 2);
    assert!(err.contains("no provider named"), "{err}");
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jwt-auth-check-{}", random_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Replaces the README's `"<REPLACE ...>"` placeholders with real values,
/// by field name. Returns how many were replaced.
fn fill_placeholders(value: &mut Value, secret_k: &str) -> usize {
    match value {
        Value::Object(members) => members
            .iter_mut()
            .map(|(name, member)| match member {
                Value::String(s) if s.starts_with("<REPLACE") => {
                    *s = match name.as_str() {
                        "k" => secret_k.to_string(),
                        "hmac_secret_base64" => "c2VjcmV0LWZvci10aGUtZmVlZA==".to_string(),
                        _ => "read-token".to_string(),
                    };
                    1
                }
                other => fill_placeholders(other, secret_k),
            })
            .sum(),
        Value::Array(items) => items
            .iter_mut()
            .map(|i| fill_placeholders(i, secret_k))
            .sum(),
        _ => 0,
    }
}

/// The configuration examples in the README, validated as a user would
/// before deploying: the whole document, and the `remote_jwks` and
/// `revocation` fragments inside a minimal configuration. Their secrets are
/// placeholders the validator refuses, so that an example deployed as
/// copied never runs with a key published in the README.
#[test]
fn readme_configuration_examples_validate() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```json\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .collect();
    let fragment = |name: &str| -> Value {
        let prefix = format!("\"{name}\":");
        let block = blocks
            .iter()
            .find(|b| b.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {name} example in the README"));
        serde_json::from_str(&format!("{{{block}}}")).unwrap()
    };
    let whole: Value = serde_json::from_str(
        blocks
            .iter()
            .find(|b| b.starts_with('{') && b.contains("\"providers\""))
            .expect("no whole configuration in the README"),
    )
    .unwrap();
    let mut remote = config(jwks([Key::hs(256).jwk(Some("HS256"))]));
    let provider = &mut remote["providers"][0];
    provider.as_object_mut().unwrap().remove("jwks");
    provider["remote_jwks"] = fragment("remote_jwks")["remote_jwks"].clone();
    let mut revocation = config(jwks([Key::hs(256).jwk(Some("HS256"))]));
    revocation["revocation"] = fragment("revocation")["revocation"].clone();

    let dir = tempfile_dir();
    let secret_k = Key::hs(256).jwk(Some("HS256"))["k"]
        .as_str()
        .unwrap()
        .to_string();
    for (name, mut example, placeholders) in [
        ("whole", whole, 3),
        ("remote_jwks", remote, 0),
        ("revocation", revocation, 2),
    ] {
        let file = write(&dir, &format!("{name}.json"), &example);
        let (code, _, err) = check(&["--config", file.to_str().unwrap(), "--validate"]);
        if placeholders > 0 {
            assert_eq!(
                code, 2,
                "README {name} example accepted with its placeholders"
            );
            assert!(
                err.contains("placeholder") || err.contains("base64"),
                "{err}"
            );
        }
        assert_eq!(
            fill_placeholders(&mut example, &secret_k),
            placeholders,
            "{name}"
        );
        let file = write(&dir, &format!("{name}.json"), &example);
        let (code, out, err) = check(&["--config", file.to_str().unwrap(), "--validate"]);
        assert_eq!(
            (code, out["valid"].clone()),
            (0, json!(true)),
            "README {name} example refused: {out} {err}"
        );
    }
}

/// An Istio WasmPlugin manifest is checked as it will be applied: its
/// `spec.pluginConfig`, with errors naming the field.
#[test]
fn validates_a_wasmplugin_manifest_and_yaml() {
    let dir = tempfile_dir();
    let yaml = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    // As shipped, the feed's secrets are placeholders: refused, naming the
    // field. With the Secret's values filled in (as the manifest's own
    // command does), the manifest validates.
    let shipped =
        std::fs::read_to_string(workspace_root().join("deploy/istio/wasmplugin.yaml")).unwrap();
    let (code, _, err) = check(&["--config", &yaml("shipped.yaml", &shipped), "--validate"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("revocation.bearer_token: is a placeholder"),
        "{err}"
    );
    let filled = shipped
        .replace(
            "<REPLACE with read-token>",
            "6b1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f",
        )
        .replace(
            "<REPLACE with hmac-secret-base64>",
            "q3Xy9uVd2mTa7LkPz0BwRc5HsJf8GnEe1YiOoKtUbQA=",
        );
    let (code, out, err) = check(&["--config", &yaml("filled.yaml", &filled), "--validate"]);
    assert_eq!((code, out["valid"].clone()), (0, json!(true)), "{err}");
    assert_eq!(out["providers"], 1);
    // The configuration itself in YAML. `NO` stays text here but becomes
    // `false` once Kubernetes (YAML 1.1) applies it: a note says so.
    let plain = yaml(
        "plugin.yaml",
        "realm: api\nproviders:\n- name: main\n  issuer: https://check.test\n  required_claims: {country: NO}\n  jwks:\n    keys:\n    - {kty: oct, alg: HS256, k: ewsyLdZyFFlLAEtOhHl8BRniPyW7cPGlR6aH9XUxhow}\n",
    );
    let (code, out, err) = check(&["--config", &plain, "--validate"]);
    assert_eq!((code, out["valid"].clone()), (0, json!(true)), "{err}");
    assert!(
        err.contains("note: providers[0].required_claims.country is the text \"NO\""),
        "{err}"
    );

    // `kubectl get -o yaml` output (a List) with a merge key.
    let listed = yaml(
        "list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: extensions.istio.io/v1alpha1\n  kind: WasmPlugin\n  metadata: {name: jwt-auth}\n  spec:\n    pluginConfig:\n      providers:\n      - &main\n        name: main\n        issuer: https://check.test\n        jwks: {keys: [{kty: oct, alg: HS256, k: ewsyLdZyFFlLAEtOhHl8BRniPyW7cPGlR6aH9XUxhow}]}\n      - <<: *main\n        name: second\n        issuer: https://other.test\n",
    );
    let (code, out, err) = check(&["--config", &listed, "--validate"]);
    assert_eq!((code, out["providers"].clone()), (0, json!(2)), "{err}");

    // Refused with exit status 2 and a message that says why.
    for (name, text, why) in [
        (
            "bad.yaml",
            "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: jwt-auth}\nspec:\n  pluginConfig:\n    providers:\n    - name: main\n      jwks: {keys: []}\n      clock_skew_seconds: soon\n",
            "providers[0].clock_skew_seconds",
        ),
        (
            "two.yaml",
            "kind: WasmPlugin\nspec: {pluginConfig: {}}\n---\nkind: WasmPlugin\nspec: {pluginConfig: {}}\n",
            "plugin 1 of 2: invalid configuration: missing field `providers`",
        ),
        ("broken.yaml", "- a\n- b\n: [\n", "not JSON or YAML"),
        (
            "secret.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n",
            "no WasmPlugin in the file (found kind \"Secret\")",
        ),
        ("empty.yaml", "# nothing yet\n", "the file is empty"),
    ] {
        let (code, _, err) = check(&["--config", &yaml(name, text), "--validate"]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(why), "{name}: {err}");
    }

    // Several WasmPlugins are validated together, and plugins sharing a
    // namespace (whose metrics would add up) are named.
    let plugin = |ns: &str, issuer: &str| {
        format!(
            "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {{name: p}}\nspec:\n  pluginConfig:\n    namespace: {ns}\n    providers:\n    - name: main\n      issuer: {issuer}\n      jwks: {{keys: [{{kty: oct, alg: HS256, k: ewsyLdZyFFlLAEtOhHl8BRniPyW7cPGlR6aH9XUxhow}}]}}\n"
        )
    };
    let shared = yaml(
        "shared.yaml",
        &format!(
            "{}---\n{}",
            plugin("edge", "https://a.test"),
            plugin("edge", "https://b.test")
        ),
    );
    let (code, out, err) = check(&["--config", &shared, "--validate"]);
    assert_eq!((code, out["valid"].clone()), (0, json!(true)), "{err}");
    assert_eq!(out["plugins"].as_array().map(Vec::len), Some(2));
    assert!(
        err.contains("warning: plugins 1 and 2 share the namespace \"edge\""),
        "{err}"
    );
    let apart = yaml(
        "apart.yaml",
        &format!(
            "{}---\n{}",
            plugin("a", "https://a.test"),
            plugin("b", "https://b.test")
        ),
    );
    let (code, _, err) = check(&["--config", &apart, "--validate"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "{err}");
    // A decision needs one configuration.
    let (code, _, err) = check(&["--config", &shared, "--path", "/x"]);
    assert_eq!(code, 2);
    assert!(err.contains("2 plugin configurations"), "{err}");
}

/// An Envoy configuration is checked by the `configuration` of its wasm
/// filter, whether the file is YAML or JSON.
#[test]
fn validates_the_plugin_configuration_inside_an_envoy_configuration() {
    let root = workspace_root();
    let root = root.display();
    let yaml_text = std::fs::read_to_string(format!("{root}/envoy.yaml")).unwrap();
    let (code, out, err) = check(&["--config", &format!("{root}/envoy.yaml"), "--validate"]);
    assert_eq!((code, out["valid"].clone()), (0, json!(true)), "{err}");

    // The same file as JSON, then with a plugin configuration error.
    let dir = tempfile_dir();
    let mut envoy: Value = serde_norway::from_str(&yaml_text).unwrap();
    let file = write(&dir, "envoy.json", &envoy);
    let (code, out, err) = check(&["--config", file.to_str().unwrap(), "--validate"]);
    assert_eq!((code, out["valid"].clone()), (0, json!(true)), "{err}");
    let filter = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["http_filters"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["name"] != "envoy.filters.http.router")
        .unwrap();
    let value = &mut filter["typed_config"]["config"]["configuration"]["value"];
    let mut plugin: Value = serde_json::from_str(value.as_str().unwrap()).unwrap();
    plugin["providers"][0]["clock_skew_seconds"] = json!("soon");
    *value = json!(plugin.to_string());
    let file = write(&dir, "broken-envoy.json", &envoy);
    let (code, _, err) = check(&["--config", file.to_str().unwrap(), "--validate"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("providers[0].clock_skew_seconds"), "{err}");

    let no_wasm = write(&dir, "plain-envoy.json", &json!({"static_resources": {}}));
    let (code, _, err) = check(&["--config", no_wasm.to_str().unwrap(), "--validate"]);
    assert_eq!(code, 2);
    assert!(err.contains("without a wasm HTTP filter"), "{err}");
}
