//! Starts a real Envoy with the jwt-auth filter (the wasm build or the
//! native dynamic module, [`Module`]) in front of an echo upstream, on loopback ports chosen by the kernel, and kills it on drop.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::envoy_process::{tail, EnvoyProcess, ProcessOptions};
use crate::http::{self, Response};
use crate::module::{default_native_path, Module};
use crate::server::EchoUpstream;

/// How long [`EnvoyBuilder::start`] waits for the admin `/ready` to say LIVE.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The filter's wasm: `$JWT_AUTH_WASM`, else
/// `<workspace>/target/wasm32-wasip1/release/jwt_auth_wasm.wasm`. Panics when
/// missing.
pub fn default_wasm_path() -> PathBuf {
    crate::built_file(
        "JWT_AUTH_WASM",
        "target/wasm32-wasip1/release/jwt_auth_wasm.wasm",
        "build the jwt-auth wasm filter with `make build` \
         (cargo build --release --target wasm32-wasip1 --lib)",
    )
}

/// The filter an Envoy runs, resolved to a file.
enum Filter {
    Wasm(PathBuf),
    Native(PathBuf),
}

#[derive(Debug, Clone)]
enum Wasm {
    Default,
    Path(PathBuf),
    /// A native module file (`lib<name>.so`) instead of the default one.
    NativePath(PathBuf),
    None,
}

#[derive(Debug, Clone)]
struct DirectResponse {
    prefix: String,
    status: u16,
    body: String,
}

/// Configures and starts an [`Envoy`]. Defaults: the built filter, plugin
/// configuration `{}`, `--concurrency 2`, vm_id `jwt_auth`, root_id
/// `jwt_auth`, an [`EchoUpstream`] started and owned by the Envoy, log level
/// info, `normalize_path` and `merge_slashes` on,
/// `path_with_escaped_slashes_action: REJECT_REQUEST`,
/// `headers_with_underscores_action: DROP_HEADER`.
#[derive(Debug, Clone)]
pub struct EnvoyBuilder {
    plugin_config: String,
    wasm: Wasm,
    module: Module,
    concurrency: u32,
    clusters: Vec<ClusterSpec>,
    direct_responses: Vec<DirectResponse>,
    vm_id: String,
    root_id: String,
    upstream_port: Option<u16>,
    log_level: String,
    component_log_level: Option<String>,
    escaped_slashes_action: String,
    normalize_path: bool,
    merge_slashes: bool,
    underscores_action: String,
    route_timeout: String,
    /// Further plugins of the same module after the first: (root_id,
    /// configuration), in the same VM (same vm_id), as Istio runs several
    /// WasmPlugins.
    more_plugins: Vec<(String, String)>,
    /// HTTP filters between the wasm filter(s) and the router.
    filters_after: Vec<Value>,
    /// The access log's text format; Envoy's default when `None`.
    access_log_format: Option<String>,
    /// The upstream speaks HTTP/2 without TLS (a gRPC server).
    upstream_h2: bool,
}

impl Default for EnvoyBuilder {
    fn default() -> Self {
        EnvoyBuilder {
            plugin_config: "{}".into(),
            wasm: Wasm::Default,
            module: Module::from_env(),
            concurrency: 2,
            clusters: Vec::new(),
            direct_responses: Vec::new(),
            vm_id: "jwt_auth".into(),
            root_id: "jwt_auth".into(),
            upstream_port: None,
            log_level: "info".into(),
            component_log_level: None,
            escaped_slashes_action: "REJECT_REQUEST".into(),
            normalize_path: true,
            merge_slashes: true,
            underscores_action: "DROP_HEADER".into(),
            route_timeout: "15s".into(),
            more_plugins: Vec::new(),
            filters_after: Vec::new(),
            access_log_format: None,
            upstream_h2: false,
        }
    }
}

impl EnvoyBuilder {
    /// The plugin configuration text, handed to the filter as the
    /// `google.protobuf.StringValue` `configuration`.
    pub fn plugin_config(mut self, config: impl Into<String>) -> Self {
        self.plugin_config = config.into();
        self
    }

    /// [`plugin_config`](Self::plugin_config) from a JSON value.
    pub fn plugin_config_json(self, config: &Value) -> Self {
        self.plugin_config(config.to_string())
    }

    /// Load this wasm instead of the default one.
    pub fn wasm_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.wasm = Wasm::Path(path.into());
        self
    }

    /// Which build of the filter runs (default: `$JWT_AUTH_MODULE`, see
    /// [`Module::from_env`]); [`wasm_path`](Self::wasm_path) always means
    /// the wasm build.
    pub fn module(mut self, module: Module) -> Self {
        self.module = module;
        self
    }

    /// Load this native module (`lib<name>.so`) instead of the default one.
    pub fn native_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.wasm = Wasm::NativePath(path.into());
        self
    }

    /// No wasm filter at all (harness self-tests).
    pub fn without_wasm(mut self) -> Self {
        self.wasm = Wasm::None;
        self
    }

    /// `--concurrency N` (worker threads; each runs its own wasm VM).
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = n;
        self
    }

    /// An extra STATIC cluster `name` -> 127.0.0.1:`port` (JWKS endpoints,
    /// revocation feeds, ...), HTTP/1.1.
    pub fn cluster(mut self, name: &str, port: u16) -> Self {
        self.clusters.push(ClusterSpec {
            name: name.into(),
            ports: vec![port],
            health_path: None,
        });
        self
    }

    /// A cluster `name` of several endpoints, balanced by Envoy (round
    /// robin) and checked by Envoy's active HTTP health checks on
    /// `health_path` every 250 ms: one failed check takes an endpoint out,
    /// one passed check brings it back.
    pub fn balanced_cluster(mut self, name: &str, ports: &[u16], health_path: &str) -> Self {
        self.clusters.push(ClusterSpec {
            name: name.into(),
            ports: ports.to_vec(),
            health_path: Some(health_path.into()),
        });
        self
    }

    /// A route, before the default one, on which Envoy answers itself
    /// (`direct_response`) instead of routing to the upstream. The wasm
    /// filter still runs first.
    pub fn direct_response(mut self, prefix: &str, status: u16, body: &str) -> Self {
        self.direct_responses.push(DirectResponse {
            prefix: prefix.into(),
            status,
            body: body.into(),
        });
        self
    }

    pub fn vm_id(mut self, vm_id: &str) -> Self {
        self.vm_id = vm_id.into();
        self
    }

    pub fn root_id(mut self, root_id: &str) -> Self {
        self.root_id = root_id.into();
        self
    }

    /// Route to an upstream on this port instead of starting an owned
    /// [`EchoUpstream`].
    pub fn upstream_port(mut self, port: u16) -> Self {
        self.upstream_port = Some(port);
        self
    }

    /// `-l LEVEL` (default info).
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.into();
        self
    }

    /// `--component-log-level`, e.g. `wasm:debug`.
    pub fn component_log_level(mut self, levels: &str) -> Self {
        self.component_log_level = Some(levels.into());
        self
    }

    /// Another plugin of the same module, after the first, with its own
    /// root_id and configuration and the same vm_id.
    pub fn another_plugin(mut self, root_id: &str, config: &Value) -> Self {
        self.more_plugins
            .push((root_id.to_string(), config.to_string()));
        self
    }

    /// An HTTP filter (its `{name, typed_config}`) after the wasm filter
    /// and before the router, as RBAC runs behind the filter.
    pub fn filter_after(mut self, filter: Value) -> Self {
        self.filters_after.push(filter);
        self
    }

    /// The file access log's text format (a line per request, e.g.
    /// `user=%FILTER_STATE(envoy.string:PLAIN)%\n`).
    pub fn access_log_format(mut self, format: &str) -> Self {
        self.access_log_format = Some(format.into());
        self
    }

    /// The upstream speaks HTTP/2 over cleartext (h2c), as a gRPC server.
    pub fn upstream_h2(mut self) -> Self {
        self.upstream_h2 = true;
        self
    }

    /// The HCM's `normalize_path` and `merge_slashes` (default both true).
    pub fn path_normalization(mut self, normalize_path: bool, merge_slashes: bool) -> Self {
        self.normalize_path = normalize_path;
        self.merge_slashes = merge_slashes;
        self
    }

    /// The HCM's `path_with_escaped_slashes_action` (default REJECT_REQUEST).
    pub fn path_with_escaped_slashes_action(mut self, action: &str) -> Self {
        self.escaped_slashes_action = action.into();
        self
    }

    /// The HCM's `headers_with_underscores_action` (default DROP_HEADER).
    pub fn headers_with_underscores_action(mut self, action: &str) -> Self {
        self.underscores_action = action.into();
        self
    }

    fn filter_file(&self) -> Option<Filter> {
        match &self.wasm {
            Wasm::Default => Some(match self.module {
                Module::Wasm => Filter::Wasm(default_wasm_path()),
                Module::Native => Filter::Native(default_native_path()),
            }),
            Wasm::Path(p) => {
                if !p.is_file() {
                    panic!("wasm file {} does not exist", p.display());
                }
                Some(Filter::Wasm(p.clone()))
            }
            Wasm::NativePath(p) => Some(Filter::Native(p.clone())),
            Wasm::None => None,
        }
    }

    /// The build this builder starts (wasm for an explicit wasm file).
    pub fn effective_module(&self) -> Module {
        match &self.wasm {
            Wasm::Default => self.module,
            Wasm::NativePath(_) => Module::Native,
            _ => Module::Wasm,
        }
    }

    /// The bootstrap configuration this builder writes (JSON, which is also
    /// YAML), for an upstream on `upstream_port`.
    pub fn bootstrap(&self, upstream_port: u16, access_log: &Path) -> Value {
        bootstrap(self, self.filter_file().as_ref(), upstream_port, access_log)
    }

    /// The environment Envoy needs for the filter of this builder's
    /// [`bootstrap`](Self::bootstrap): for the native build, where it finds
    /// the module. For a test that starts the Envoy process itself.
    pub fn process_env(&self) -> Vec<(String, String)> {
        process_env(self.filter_file().as_ref())
    }

    /// Starts Envoy and waits until it is LIVE; panics (with the log tail) if
    /// it refuses the configuration or is not ready in time.
    pub fn start(self) -> Envoy {
        match self.try_start() {
            Ok(e) => e,
            Err(log) => panic!("Envoy did not start:\n{}", tail(&log, 80)),
        }
    }

    /// Starts Envoy; `Err(log text)` when it exits (e.g. refuses the
    /// configuration) or is not LIVE within [`READY_TIMEOUT`].
    pub fn try_start(self) -> Result<Envoy, String> {
        let filter = self.filter_file();
        let dir = make_temp_dir();
        let (owned_upstream, upstream_port) = match self.upstream_port {
            Some(p) => (None, p),
            None => {
                let u = EchoUpstream::start();
                let p = u.port();
                (Some(u), p)
            }
        };
        let access_log = dir.join("access.log");
        let config = bootstrap(&self, filter.as_ref(), upstream_port, &access_log);
        let config_path = dir.join("envoy.yaml");
        let text = serde_json::to_string_pretty(&config)
            .unwrap_or_else(|e| panic!("serialize bootstrap: {e}"));
        fs::write(&config_path, text).unwrap_or_else(|e| panic!("write config: {e}"));
        let opts = ProcessOptions {
            concurrency: self.concurrency,
            log_level: self.log_level.clone(),
            component_log_level: self.component_log_level.clone(),
            env: process_env(filter.as_ref()),
            ..ProcessOptions::default()
        };
        let process = EnvoyProcess::start(&config_path, &dir, &opts, READY_TIMEOUT)?;
        let port = process
            .listener_port(Some("main"))
            .map_err(|why| format!("{why}\n{}", process.log()))?;
        Ok(Envoy {
            process,
            dir,
            config_path,
            access_log,
            port,
            upstream: owned_upstream,
            upstream_port,
            keep_dir: false,
            module: self.effective_module(),
        })
    }
}

fn bootstrap(
    b: &EnvoyBuilder,
    filter: Option<&Filter>,
    upstream_port: u16,
    access_log: &Path,
) -> Value {
    let mut routes: Vec<Value> = b
        .direct_responses
        .iter()
        .map(|d| {
            json!({
                "match": {"prefix": d.prefix},
                "direct_response": {"status": d.status, "body": {"inline_string": d.body}},
            })
        })
        .collect();
    routes.push(json!({
        "match": {"prefix": "/"},
        "route": {"cluster": "upstream", "timeout": b.route_timeout},
    }));
    let mut http_filters = Vec::new();
    if let Some(filter) = filter {
        let plugins = std::iter::once((b.root_id.as_str(), b.plugin_config.as_str())).chain(
            b.more_plugins
                .iter()
                .map(|(root, config)| (root.as_str(), config.as_str())),
        );
        for (root_id, config) in plugins {
            http_filters.push(match filter {
                Filter::Wasm(wasm) => wasm_filter(b, wasm, root_id, config),
                Filter::Native(so) => native_filter(so, config),
            });
        }
    }
    http_filters.extend(b.filters_after.iter().cloned());
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }));
    let mut upstream = cluster(&ClusterSpec {
        name: "upstream".into(),
        ports: vec![upstream_port],
        health_path: None,
    });
    if b.upstream_h2 {
        upstream["typed_extension_protocol_options"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["explicit_http_config"] =
            json!({"http2_protocol_options": {}});
    }
    let mut clusters = vec![upstream];
    clusters.extend(b.clusters.iter().map(cluster));
    let mut file_log = json!({
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": access_log.display().to_string(),
    });
    if let Some(format) = &b.access_log_format {
        file_log["log_format"] = json!({"text_format_source": {"inline_string": format}});
    }
    json!({
        "admin": {"address": addr(0)},
        "static_resources": {
            "listeners": [{
                "name": "main",
                "address": addr(0),
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress_http",
                        "codec_type": "AUTO",
                        "normalize_path": b.normalize_path,
                        "merge_slashes": b.merge_slashes,
                        "path_with_escaped_slashes_action": b.escaped_slashes_action,
                        // `x_user_id` is `x-user-id` to CGI/WSGI-style upstreams.
                        "common_http_protocol_options": {
                            "headers_with_underscores_action": b.underscores_action,
                        },
                        "access_log": [{
                            "name": "envoy.access_loggers.file",
                            "typed_config": file_log,
                        }],
                        "route_config": {
                            "name": "local",
                            "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}],
                        },
                        "http_filters": http_filters,
                    },
                }]}],
            }],
            "clusters": clusters,
        },
    })
}

/// One wasm HTTP filter running the module with this root_id and
/// configuration.
fn wasm_filter(b: &EnvoyBuilder, wasm: &Path, root_id: &str, config: &str) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "jwt_auth",
                "root_id": root_id,
                "failure_policy": "FAIL_CLOSED",
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": config,
                },
                "vm_config": {
                    "vm_id": b.vm_id,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm.display().to_string()}},
                },
            },
        },
    })
}

/// Envoy finds a dynamic module by name (`lib<name>.so`) on
/// `ENVOY_DYNAMIC_MODULES_SEARCH_PATH`; the wasm build needs nothing.
fn process_env(filter: Option<&Filter>) -> Vec<(String, String)> {
    match filter {
        Some(Filter::Native(so)) => {
            let dir = so.parent().unwrap_or_else(|| Path::new("."));
            vec![(
                "ENVOY_DYNAMIC_MODULES_SEARCH_PATH".to_string(),
                dir.display().to_string(),
            )]
        }
        _ => Vec::new(),
    }
}

/// One dynamic-module HTTP filter loading the native module (by name, from
/// `ENVOY_DYNAMIC_MODULES_SEARCH_PATH`) with this configuration.
fn native_filter(so: &Path, config: &str) -> Value {
    let stem = so
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = stem.strip_prefix("lib").unwrap_or(&stem).to_string();
    json!({
        "name": "envoy.filters.http.dynamic_modules",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": {"name": name},
            "filter_name": "jwt_auth",
            "filter_config": {
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": config,
            },
        },
    })
}

fn addr(port: u16) -> Value {
    json!({"socket_address": {"address": "127.0.0.1", "port_value": port}})
}

/// A cluster the builder adds: its endpoints and, for a balanced one, the
/// path of its active health checks.
#[derive(Debug, Clone)]
struct ClusterSpec {
    name: String,
    ports: Vec<u16>,
    health_path: Option<String>,
}

fn cluster(spec: &ClusterSpec) -> Value {
    let endpoints: Vec<Value> = spec
        .ports
        .iter()
        .map(|p| json!({"endpoint": {"address": addr(*p)}}))
        .collect();
    let mut cluster = json!({
        "name": spec.name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "common_http_protocol_options": {"idle_timeout": "10s"},
                "explicit_http_config": {"http_protocol_options": {}},
            },
        },
        "load_assignment": {
            "cluster_name": spec.name,
            "endpoints": [{"lb_endpoints": endpoints}],
        },
    });
    if let Some(path) = &spec.health_path {
        // Checked as often with no traffic as with: a long-polled cluster
        // sees a request every few seconds only.
        cluster["health_checks"] = json!([{
            "timeout": "0.5s",
            "interval": "0.25s",
            "no_traffic_interval": "0.25s",
            "unhealthy_threshold": 1,
            "healthy_threshold": 1,
            "http_health_check": {"path": path},
        }]);
    }
    cluster
}

fn make_temp_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join("jwt-auth-testkit").join(format!(
        "envoy-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// A running Envoy. Killed (and its temp dir removed, unless the test is
/// panicking) on drop; on a panic the log tail is printed to stderr.
pub struct Envoy {
    process: EnvoyProcess,
    dir: PathBuf,
    config_path: PathBuf,
    access_log: PathBuf,
    port: u16,
    upstream: Option<EchoUpstream>,
    upstream_port: u16,
    keep_dir: bool,
    module: Module,
}

impl Envoy {
    pub fn builder() -> EnvoyBuilder {
        EnvoyBuilder::default()
    }

    /// Starts Envoy with the default filter and this plugin configuration.
    pub fn with_config(plugin_config: &Value) -> Envoy {
        Envoy::builder().plugin_config_json(plugin_config).start()
    }

    /// The listener port (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn admin_port(&self) -> u16 {
        self.process.admin_port()
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The owned echo upstream (panics if started with `upstream_port`).
    pub fn upstream(&self) -> &EchoUpstream {
        self.upstream
            .as_ref()
            .unwrap_or_else(|| panic!("this Envoy routes to an external upstream"))
    }

    pub fn upstream_port(&self) -> u16 {
        self.upstream_port
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The Envoy log (`--log-path`) followed by its stderr.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The access log (one line per request).
    pub fn access_log(&self) -> String {
        fs::read_to_string(&self.access_log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`; false on timeout.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// GET on the admin interface; returns the body (panics if unreachable).
    pub fn admin_get(&self, path: &str) -> String {
        self.process.admin_get(path)
    }

    /// Any request on the admin interface (e.g. `POST /logging?wasm=debug`).
    pub fn admin_request(&self, method: &str, path: &str) -> Response {
        self.process.admin_request(method, path)
    }

    /// Admin `/stats` text.
    pub fn stats(&self) -> String {
        self.admin_get("/stats")
    }

    /// The build this Envoy runs.
    pub fn module(&self) -> Module {
        self.module
    }

    /// A filter metric's name in `/stats`, given as the wasm build names it
    /// (`wasmcustom.<namespace>.<name>`): the native module's counters are
    /// the same under Envoy's `dynamicmodulescustom` namespace.
    pub fn stat_name(&self, wasm_name: &str) -> String {
        match wasm_name.strip_prefix("wasmcustom.") {
            Some(rest) => format!("{}.{rest}", self.module.stat_namespace()),
            None => wasm_name.to_string(),
        }
    }

    /// A filter metric's name in `/stats/prometheus`, given as the wasm
    /// build names it there (`jwt_auth_allowed`).
    pub fn prometheus_name(&self, wasm_name: &str) -> String {
        format!("{}{wasm_name}", self.module.prometheus_prefix())
    }

    /// One counter or gauge from `/stats` by exact name (a filter metric
    /// named as the wasm build names it, see [`Envoy::stat_name`]).
    pub fn stat(&self, name: &str) -> Option<u64> {
        self.process.stat(&self.stat_name(name))
    }

    /// Waits (up to five seconds) until the counter or gauge `name` is at
    /// least `at_least`, and returns its value then. Decision counters reach
    /// Envoy on each VM's tick, so a test reads them after a wait.
    pub fn stat_at_least(&self, name: &str, at_least: u64) -> Option<u64> {
        let mut last = None;
        crate::wait_until(std::time::Duration::from_secs(5), || {
            last = self.stat(name);
            last.is_some_and(|v| v >= at_least)
        });
        last
    }

    /// A request to the listener (`Connection: close`).
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        http::request(self.port, method, path, headers)
    }

    /// `GET path` to the listener.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", path, headers)
    }

    /// Keep the temp dir (config, logs) after drop, and print where it is.
    pub fn keep_files(&mut self) {
        self.keep_dir = true;
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        // The process prints its log tail if the test is panicking.
        self.process.kill();
        if thread::panicking() {
            eprintln!("--- Envoy files kept in {} ---", self.dir.display());
        } else if self.keep_dir {
            eprintln!("Envoy files kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
