//! `jwt-auth-check`: runs the filter's own decision code on a configuration,
//! a request and a time, so an operator can answer "why was this token
//! refused?" and CI can validate a configuration before deploying it.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use jwt_auth_core::config::Policy;
use jwt_auth_core::decision::{decide, Decision, Env, RemoteKeys};
use jwt_auth_core::jwt::KeySet;
use jwt_auth_core::path::canonical;
use jwt_auth_core::remote_keys::parse_jwks;
use jwt_auth_core::request::{header_refs, Request};
use jwt_auth_core::rules;
use serde::Deserialize;
use serde_json::{json, Map, Value};

const USAGE: &str = "\
usage: jwt-auth-check --config PLUGIN.json --validate
       jwt-auth-check --config PLUGIN.json [--now UNIX_SECONDS] [--method GET]
                      [--path /x] [--header 'name: value']...

Runs the same decision code as the jwt-auth-wasm filter.

  --config FILE     plugin configuration: the JSON given to Envoy, the same
                    in YAML, an Envoy configuration with one wasm filter
                    (its configuration is read), or an Istio WasmPlugin
                    manifest (one WasmPlugin; its spec.pluginConfig)
  --validate        only validate the configuration
  --now SECONDS     the time to decide at (default: this machine's clock)
  --method METHOD   request method (default GET)
  --path PATH       request path with query string (default /)
  --header 'N: V'   a request header; repeat for more (names are lowercased)
  --jwks-file NAME=FILE
                    keys of provider NAME when its config uses remote_jwks
                    (the JWKS document as the identity provider serves it)

Prints one JSON object: decision (allow, deny, or reply for the protected
resource metadata the filter answers itself), status, reason, set_headers,
removed_headers, filter_state (claims_to_filter_state objects written),
canonical_path (the path the rules saw) and rule (the index of the rule it
matched, or \"default\").
Exit status: 0 allow or reply, 1 deny, 2 bad configuration or bad arguments.";

struct Args {
    config: String,
    validate: bool,
    now: Option<u64>,
    method: String,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    jwks_files: Vec<(String, String)>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut config = None;
    let mut parsed = Args {
        config: String::new(),
        validate: false,
        now: None,
        method: "GET".to_string(),
        path: "/".to_string(),
        headers: Vec::new(),
        jwks_files: Vec::new(),
    };
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--config" => config = Some(value("--config")?),
            "--validate" => parsed.validate = true,
            "--now" => {
                let v = value("--now")?;
                parsed.now = Some(v.parse().map_err(|_| format!("--now: not a number: {v}"))?);
            }
            "--method" => parsed.method = value("--method")?.to_ascii_uppercase(),
            "--path" => parsed.path = value("--path")?,
            "--header" => {
                let v = value("--header")?;
                let (name, val) = v
                    .split_once(':')
                    .ok_or(format!("--header: expected 'name: value', got {v:?}"))?;
                parsed.headers.push((
                    name.trim().to_ascii_lowercase(),
                    val.trim_start().as_bytes().to_vec(),
                ));
            }
            "--jwks-file" => {
                let v = value("--jwks-file")?;
                let (name, file) = v
                    .split_once('=')
                    .ok_or(format!("--jwks-file: expected NAME=FILE, got {v:?}"))?;
                parsed.jwks_files.push((name.to_string(), file.to_string()));
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    parsed.config = config.ok_or("--config is required")?;
    Ok(parsed)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("jwt-auth-check: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let bytes = match std::fs::read(&args.config) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("jwt-auth-check: cannot read {}: {e}", args.config);
            return ExitCode::from(2);
        }
    };
    let configs = match plugin_configs(bytes) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jwt-auth-check: {}: {e}", args.config);
            return ExitCode::from(2);
        }
    };
    let mut policies = Vec::with_capacity(configs.len());
    for (i, bytes) in configs.iter().enumerate() {
        match Policy::from_json(bytes) {
            Ok(p) => policies.push(p),
            Err(e) if configs.len() == 1 => {
                eprintln!("jwt-auth-check: {e}");
                return ExitCode::from(2);
            }
            Err(e) => {
                eprintln!("jwt-auth-check: plugin {} of {}: {e}", i + 1, configs.len());
                return ExitCode::from(2);
            }
        }
    }
    warn_shared_namespaces(&policies);
    if args.validate {
        let summary = |p: &Policy| json!({"providers": p.providers.len(), "rules": p.rules.len()});
        let out = match policies.as_slice() {
            [policy] => {
                let mut one = summary(policy);
                one["valid"] = json!(true);
                one
            }
            all => json!({"valid": true, "plugins": all.iter().map(summary).collect::<Vec<_>>()}),
        };
        println!("{out}");
        return ExitCode::SUCCESS;
    }
    let [policy] = policies.as_slice() else {
        eprintln!(
            "jwt-auth-check: {}: {} plugin configurations; a decision needs one at a time",
            args.config,
            policies.len()
        );
        return ExitCode::from(2);
    };
    let now = args.now.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    let mut headers = vec![
        (":method".to_string(), args.method.as_bytes().to_vec()),
        (":path".to_string(), args.path.as_bytes().to_vec()),
    ];
    headers.extend(args.headers);
    let request = Request {
        method: &args.method,
        path: &args.path,
        headers: &header_refs(&headers),
    };
    let keys = match load_remote_keys(policy, &args.jwks_files) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("jwt-auth-check: {e}");
            return ExitCode::from(2);
        }
    };
    let env = Env {
        remote_keys: &keys,
        ..Env::basic(now)
    };
    let decision = decide(policy, &request, &env);
    let mut out = report(policy, &decision);
    // What the rules saw: the canonical path, and the rule it matched.
    match canonical(&args.path, policy.escaped_slashes) {
        Ok(path) => {
            let rule = rules::find(&policy.rules, &args.method, &path)
                .and_then(|r| policy.rules.iter().position(|q| std::ptr::eq(q, r)));
            out["canonical_path"] = json!(path);
            out["rule"] = rule.map_or(json!("default"), |i| json!(i));
        }
        Err(e) => {
            out["canonical_path"] = Value::Null;
            out["path_problem"] = json!(e.detail());
        }
    }
    println!("{out}");
    match decision {
        Decision::Allow(_) | Decision::Reply(_) => ExitCode::SUCCESS,
        Decision::Deny(_) => ExitCode::from(1),
    }
}

/// Key sets read from files, by provider index.
struct FileKeys(Vec<Option<KeySet>>);

impl RemoteKeys for FileKeys {
    fn keys(&self, provider: usize) -> Option<&KeySet> {
        self.0.get(provider).and_then(Option::as_ref)
    }
}

/// The plugin configurations as JSON: a JSON configuration is passed
/// through untouched (so errors point into the file as written); an Envoy
/// configuration (JSON or YAML) gives the `configuration` of its wasm
/// filter; other YAML is read as a WasmPlugin manifest's
/// `spec.pluginConfig` (also inside a `kind: List`, as `kubectl get -o
/// yaml` writes it) or as the configuration itself.
fn plugin_configs(bytes: Vec<u8>) -> Result<Vec<Vec<u8>>, String> {
    if bytes.trim_ascii_start().first() == Some(&b'{') {
        return match serde_json::from_slice::<Value>(&bytes) {
            Ok(envoy) if envoy.get("static_resources").is_some() => envoy_filter_configs(&envoy),
            _ => Ok(vec![bytes]),
        };
    }
    let mut documents = Vec::new();
    for document in serde_norway::Deserializer::from_slice(&bytes) {
        let mut yaml = serde_norway::Value::deserialize(document)
            .map_err(|e| format!("not JSON or YAML: {e}"))?;
        // `<<: *anchor` merge keys, as kubectl expands them.
        yaml.apply_merge()
            .map_err(|e| format!("YAML merge key: {e}"))?;
        let value = serde_json::to_value(yaml).map_err(|e| format!("not JSON or YAML: {e}"))?;
        match value {
            Value::Null => {}
            Value::Object(ref o) if o.get("kind").is_some_and(|k| k == "List") => {
                documents.extend(
                    o.get("items")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .cloned(),
                );
            }
            other => documents.push(other),
        }
    }
    let plugins: Vec<&Value> = documents
        .iter()
        .filter(|d| d["kind"] == "WasmPlugin")
        .collect();
    if let [envoy] = documents.as_slice() {
        if envoy.get("static_resources").is_some() {
            return envoy_filter_configs(envoy);
        }
    }
    let configs: Vec<&Value> = match (plugins.as_slice(), documents.as_slice()) {
        ([], []) => return Err("the file is empty".to_string()),
        ([], [manifest]) if manifest.get("apiVersion").is_some() => {
            return Err(format!(
                "no WasmPlugin in the file (found kind {})",
                manifest["kind"]
            ))
        }
        ([], [config]) => vec![config],
        ([], _) => return Err("expected one configuration or WasmPlugin manifests".to_string()),
        (plugins, _) => plugins
            .iter()
            .map(|plugin| {
                plugin["spec"]
                    .get("pluginConfig")
                    .ok_or("a WasmPlugin has no spec.pluginConfig")
            })
            .collect::<Result<_, _>>()?,
    };
    let mut out = Vec::with_capacity(configs.len());
    for config in configs {
        let mut notes = Vec::new();
        yaml11_booleans(config, "", &mut notes);
        for (path, text) in notes {
            eprintln!(
                "jwt-auth-check: note: {path} is the text {text:?} here; Kubernetes (YAML 1.1) reads it as a boolean unless it is quoted"
            );
        }
        out.push(serde_json::to_vec(config).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// Plugins of one proxy that share a namespace count into the same metrics
/// (their shared-data keys stay apart: they carry the providers' and feeds'
/// identities).
fn warn_shared_namespaces(policies: &[Policy]) {
    for (i, a) in policies.iter().enumerate() {
        for (j, b) in policies.iter().enumerate().skip(i + 1) {
            if a.namespace == b.namespace {
                eprintln!(
                    "jwt-auth-check: warning: plugins {} and {} share the namespace \"{}\": their metrics add up; give each plugin its own \"namespace\"",
                    i + 1,
                    j + 1,
                    a.namespace
                );
            }
        }
    }
}

/// The plugin configurations of the wasm HTTP filters in an Envoy
/// configuration: each `config.configuration` StringValue, JSON text.
fn envoy_filter_configs(envoy: &Value) -> Result<Vec<Vec<u8>>, String> {
    fn find<'v>(value: &'v Value, found: &mut Vec<&'v Value>) {
        match value {
            Value::Object(members) => {
                let is_wasm = members.get("@type").and_then(Value::as_str)
                    == Some("type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm");
                if is_wasm {
                    found.push(value);
                } else {
                    members.values().for_each(|m| find(m, found));
                }
            }
            Value::Array(items) => items.iter().for_each(|i| find(i, found)),
            _ => {}
        }
    }
    let mut filters = Vec::new();
    find(envoy, &mut filters);
    if filters.is_empty() {
        return Err("an Envoy configuration without a wasm HTTP filter".to_string());
    }
    filters
        .iter()
        .map(|filter| {
            filter["config"]["configuration"]["value"]
                .as_str()
                .map(|text| text.as_bytes().to_vec())
                .ok_or_else(|| {
                    "a wasm filter has no config.configuration value (a StringValue)".to_string()
                })
        })
        .collect()
}

/// Strings that Kubernetes' YAML 1.1 reader takes for booleans when
/// unquoted (`country: NO` becomes `false` once applied), with their paths.
fn yaml11_booleans(value: &Value, path: &str, out: &mut Vec<(String, String)>) {
    const WORDS: [&str; 16] = [
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
        "OFF",
    ];
    match value {
        Value::String(s) if WORDS.contains(&s.as_str()) => {
            out.push((path.to_string(), s.clone()));
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                yaml11_booleans(item, &format!("{path}[{i}]"), out);
            }
        }
        Value::Object(members) => {
            for (name, member) in members {
                let path = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                yaml11_booleans(member, &path, out);
            }
        }
        _ => {}
    }
}

fn load_remote_keys(policy: &Policy, files: &[(String, String)]) -> Result<FileKeys, String> {
    let mut keys = vec![None; policy.providers.len()];
    for (name, file) in files {
        let index = policy
            .provider_index(name)
            .ok_or(format!("--jwks-file: no provider named {name:?}"))?;
        let body = std::fs::read(file).map_err(|e| format!("cannot read {file}: {e}"))?;
        let (set, problems) = parse_jwks(&body).map_err(|e| format!("{file}: {e}"))?;
        for p in problems {
            eprintln!("jwt-auth-check: {file}: key skipped: {p}");
        }
        if let Some(slot) = keys.get_mut(index) {
            *slot = Some(set);
        }
    }
    Ok(FileKeys(keys))
}

fn report(policy: &Policy, decision: &Decision) -> Value {
    match decision {
        Decision::Allow(a) => {
            let set: Map<String, Value> = a
                .set_headers()
                .map(|(n, v)| (n.to_string(), Value::String(v.to_string())))
                .collect();
            let provider = a
                .provider
                .and_then(|i| policy.providers.get(i))
                .map(|p| p.name.as_str());
            json!({
                "decision": "allow",
                "status": 200,
                "reason": a.kind.label(),
                "provider": provider,
                "set_headers": set,
                "removed_headers": a.remove_headers,
                "filter_state": a
                    .filter_state()
                    .iter()
                    .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                    .collect::<Map<String, Value>>(),
            })
        }
        Decision::Reply(r) => json!({
            "decision": "reply",
            "status": r.status,
            "reason": decision.label(),
            "set_headers": {},
            "removed_headers": [],
        }),
        Decision::Deny(d) => json!({
            "decision": "deny",
            "status": d.status(),
            "reason": d.description(),
            "label": d.label(),
            "www_authenticate": d.www_authenticate(),
            "set_headers": {},
            "removed_headers": [],
        }),
    }
}
