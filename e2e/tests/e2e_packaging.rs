//! The release as users install it, against real components:
//!
//! - `make release` / `make oci` output (dist/): the optimized module, its
//!   checksum and manifest, and the two OCI image layouts in the formats
//!   Istio's wasm fetcher accepts, rebuilt here to prove they are reproducible;
//! - a real registry (Debian's docker-registry, the CNCF Distribution
//!   registry) on a loopback port: `make push-layouts` pushes both images
//!   with skopeo, and they are pulled back and checked byte for byte;
//! - Envoy loading the module over HTTP (`vm_config.code.remote`, the
//!   configuration of examples/envoy-remote.yaml) and enforcing tokens, and
//!   what it does when the sha256 does not match;
//! - the Istio manifests of deploy/istio: they parse, the WasmPlugin settings
//!   are the documented ones, their pluginConfig passes `jwt-auth-check
//!   --validate`, and the clusters it names exist in the manifests.
//!
//! `make test` builds dist/ first (mk/release.mk adds `oci` to TEST_DEPS);
//! run `make oci` before `cargo test --test e2e_packaging` by hand. A missing
//! artifact or tool fails the test, it never skips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use testkit::{
    demo_token, free_port, workspace_bin, workspace_root, DemoClaims, EchoUpstream, EnvoyProcess,
    HttpServer, ProcessOptions, Reply,
};

const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MT_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MT_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const MT_WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
const MT_WASM_CONTENT: &str = "application/vnd.module.wasm.content.layer.v1+wasm";

/// Upper bound for dist/plugin.wasm: 1 MB, the budget since ES384/ES512
/// verify in wasm with the p384/p521 crates (see deploy/README.md for what
/// the module is made of).
const SIZE_BUDGET_BYTES: usize = 1_000_000;

// ---------------------------------------------------------------- helpers

fn root() -> PathBuf {
    workspace_root()
}

fn dist(name: &str) -> PathBuf {
    root().join("dist").join(name)
}

fn read_dist(name: &str) -> Vec<u8> {
    let path = dist(name);
    fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} — build the release first: `make oci` (make test does it)",
            path.display()
        )
    })
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn digests() -> Value {
    serde_json::from_slice(&read_dist("oci/digests.json")).expect("dist/oci/digests.json")
}

fn recorded_digest(variant: &str) -> String {
    digests()[variant]["manifest_digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no {variant}.manifest_digest in dist/oci/digests.json"))
        .to_string()
}

/// A command from PATH; panics (never skips) when it is not installed.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed — `make release-tools` installs it (Debian packages)")
        })
}

/// Runs a command; panics with its output when it fails. Returns stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A temporary directory, removed on drop unless the test is panicking.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "jwt-auth-packaging-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("kept {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

// ------------------------------------------------------------ OCI images

/// Reads one OCI image layout: (manifest digest, manifest bytes, blob reader
/// that checks each blob against its digest).
fn read_layout(dir: &Path) -> (String, Vec<u8>, impl Fn(&Value) -> Vec<u8> + '_) {
    let index: Value = serde_json::from_slice(
        &fs::read(dir.join("index.json"))
            .unwrap_or_else(|e| panic!("{}/index.json: {e}", dir.display())),
    )
    .expect("index.json is JSON");
    let layout: Value =
        serde_json::from_slice(&fs::read(dir.join("oci-layout")).expect("oci-layout")).unwrap();
    assert_eq!(layout["imageLayoutVersion"], "1.0.0");
    let manifests = index["manifests"].as_array().expect("index.manifests");
    assert_eq!(
        manifests.len(),
        1,
        "{}: one image per layout",
        dir.display()
    );
    let blob = move |desc: &Value| -> Vec<u8> {
        let digest = desc["digest"].as_str().expect("descriptor digest");
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        let data = fs::read(dir.join("blobs/sha256").join(hex))
            .unwrap_or_else(|e| panic!("blob {digest} in {}: {e}", dir.display()));
        assert_eq!(
            sha256_hex(&data),
            hex,
            "blob content does not match {digest}"
        );
        assert_eq!(
            desc["size"].as_u64(),
            Some(data.len() as u64),
            "size of blob {digest}"
        );
        data
    };
    let manifest = blob(&manifests[0]);
    assert_eq!(manifests[0]["mediaType"], MT_MANIFEST);
    (
        manifests[0]["digest"].as_str().unwrap().to_string(),
        manifest,
        blob,
    )
}

/// Checks an image in one of the two formats Istio's fetcher accepts and
/// returns the module inside, found the way the fetcher finds it.
fn check_image(variant: &str, manifest_bytes: &[u8], blob: &dyn Fn(&Value) -> Vec<u8>) -> Vec<u8> {
    let m: Value = serde_json::from_slice(manifest_bytes).expect("manifest is JSON");
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["mediaType"], MT_MANIFEST);
    assert_eq!(
        m["annotations"]["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    let layers = m["layers"].as_array().expect("layers");
    match variant {
        "compat" => {
            assert_eq!(m["annotations"]["module.wasm.image/variant"], "compat");
            assert_eq!(m["config"]["mediaType"], MT_IMAGE_CONFIG);
            assert_eq!(layers.len(), 1, "compat image: exactly one layer");
            assert_eq!(layers[0]["mediaType"], MT_TAR_GZIP);
            let config: Value = serde_json::from_slice(&blob(&m["config"])).unwrap();
            assert_eq!(config["os"], "wasip1");
            assert_eq!(config["architecture"], "wasm");
            let mut tar_bytes = Vec::new();
            flate2::read::GzDecoder::new(&blob(&layers[0])[..])
                .read_to_end(&mut tar_bytes)
                .expect("layer is gzip");
            assert_eq!(
                config["rootfs"]["diff_ids"],
                json!([format!("sha256:{}", sha256_hex(&tar_bytes))]),
                "config diff_ids = digest of the uncompressed layer"
            );
            let mut archive = tar::Archive::new(&tar_bytes[..]);
            let mut found = Vec::new();
            for entry in archive.entries().expect("layer is a tar") {
                let mut entry = entry.expect("tar entry");
                let name = entry.path().unwrap().to_string_lossy().into_owned();
                let header = entry.header();
                assert_eq!(header.mtime().unwrap(), 0, "{name}: fixed mtime");
                assert_eq!(header.uid().unwrap(), 0, "{name}: uid 0");
                assert_eq!(header.mode().unwrap(), 0o644, "{name}: mode");
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                found.push((name, data));
            }
            assert_eq!(found.len(), 1, "the layer holds only plugin.wasm");
            assert_eq!(found[0].0, "plugin.wasm");
            found.remove(0).1
        }
        "wasm" => {
            assert_eq!(m["config"]["mediaType"], MT_WASM_CONFIG);
            // Istio: "number of layers must be 2".
            assert_eq!(layers.len(), 2, "wasm artifact: exactly two layers");
            assert_eq!(layers[0]["mediaType"], MT_WASM_CONFIG);
            assert_eq!(layers[1]["mediaType"], MT_WASM_CONTENT);
            let runtime: Value = serde_json::from_slice(&blob(&layers[0])).unwrap();
            assert_eq!(runtime["type"], "envoy_proxy");
            assert_eq!(runtime["config"]["root_ids"], json!(["jwt_auth"]));
            assert_eq!(blob(&m["config"]), blob(&layers[0]));
            blob(&layers[1])
        }
        other => panic!("unknown variant {other}"),
    }
}

#[test]
fn release_artifacts_are_consistent() {
    let wasm = read_dist("plugin.wasm");
    assert!(
        wasm.starts_with(b"\0asm\x01\0\0\0"),
        "dist/plugin.wasm is a wasm module"
    );
    let sha = sha256_hex(&wasm);
    assert_eq!(
        String::from_utf8(read_dist("plugin.wasm.sha256")).unwrap(),
        format!("{sha}  plugin.wasm\n"),
        "dist/plugin.wasm.sha256 (sha256sum format)"
    );
    let version = env!("CARGO_PKG_VERSION");
    let manifest: Value = serde_json::from_slice(&read_dist("manifest.json")).unwrap();
    assert_eq!(manifest["version"], version);
    assert_eq!(manifest["sha256"], sha.as_str());
    assert_eq!(manifest["size"], wasm.len());
    assert_eq!(manifest["file"], "plugin.wasm");
    let build_date = manifest["build_date"].as_str().expect("build_date");
    assert!(
        build_date.len() == 20 && build_date.ends_with('Z') && build_date.as_bytes()[10] == b'T',
        "build_date is RFC 3339 UTC: {build_date}"
    );
    assert!(
        manifest["raw_size"].as_u64().unwrap() > wasm.len() as u64,
        "wasm-opt made the module smaller: {manifest}"
    );
    let versioned = format!("jwt-auth-wasm-{version}.wasm");
    assert_eq!(manifest["versioned_file"], versioned.as_str());
    assert!(
        read_dist(&versioned) == wasm,
        "dist/{versioned} = dist/plugin.wasm"
    );
    assert!(
        wasm.len() <= SIZE_BUDGET_BYTES,
        "dist/plugin.wasm is {} bytes, over the {SIZE_BUDGET_BYTES} byte budget",
        wasm.len()
    );
    let d = digests();
    assert_eq!(
        d["wasm_sha256"],
        sha.as_str(),
        "dist/oci was built from this plugin.wasm"
    );
    assert_eq!(d["version"], version);
}

#[test]
fn oci_layouts_are_reproducible_and_in_istio_formats() {
    let wasm = read_dist("plugin.wasm");
    for variant in ["compat", "wasm"] {
        let dir = dist(&format!("oci/{variant}"));
        let (digest, manifest, blob) = read_layout(&dir);
        assert_eq!(digest, recorded_digest(variant), "{variant}: digests.json");
        let inner = check_image(variant, &manifest, &blob);
        assert!(
            inner == wasm,
            "{variant}: the module inside is dist/plugin.wasm"
        );
    }
    // The same input gives byte-identical layouts, hence the same digests.
    let tmp = TempDir::new("oci");
    let out = run(Command::new(tool("python3"))
        .arg(root().join("tools/oci_layout.py"))
        .arg("build")
        .arg("--wasm")
        .arg(dist("plugin.wasm"))
        .arg("--version")
        .arg(env!("CARGO_PKG_VERSION"))
        .arg("--out")
        .arg(tmp.path())
        .env_remove("SOURCE_DATE_EPOCH"));
    for variant in ["compat", "wasm"] {
        let digest = recorded_digest(variant);
        assert!(
            out.contains(&digest),
            "build prints the {variant} digest:\n{out}"
        );
        let (again, _, _) = read_layout(&tmp.path().join(variant));
        assert_eq!(
            again, digest,
            "{variant}: rebuilding gives the same manifest digest"
        );
        for entry in fs::read_dir(dist(&format!("oci/{variant}/blobs/sha256"))).unwrap() {
            let name = entry.unwrap().file_name();
            assert!(
                tmp.path()
                    .join(variant)
                    .join("blobs/sha256")
                    .join(&name)
                    .is_file(),
                "{variant}: blob {name:?} is reproduced"
            );
        }
    }
}

// -------------------------------------------------------------- registry

/// Debian's docker-registry (CNCF Distribution) on a loopback port with its
/// storage in a temporary folder. Killed on drop.
struct Registry {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: TempDir,
}

impl Registry {
    fn start() -> Registry {
        let bin = tool("docker-registry");
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = TempDir::new("registry");
            let port = free_port();
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\n\
                     log:\n  level: warn\n  accesslog:\n    disabled: true\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                     http:\n  addr: 127.0.0.1:{port}\n  secret: e2e-packaging-test\n",
                    dir.path().join("data").display()
                ),
            )
            .unwrap();
            let log = dir.path().join("registry.log");
            let child = Command::new(&bin)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(fs::File::create(&log).unwrap())
                .stderr(fs::File::create(dir.path().join("registry.err")).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
            let mut reg = Registry {
                child,
                port,
                log,
                _dir: dir,
            };
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Ok((200, _)) = testkit::http::get_text(port, "/v2/") {
                    return reg;
                }
                if reg.child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    last_log = reg.logs();
                    break; // port taken between free_port() and bind, or no start: retry
                }
                thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("docker-registry did not start:\n{last_log}");
    }

    fn logs(&self) -> String {
        let err = self.log.with_file_name("registry.err");
        format!(
            "{}{}",
            fs::read_to_string(&self.log).unwrap_or_default(),
            fs::read_to_string(err).unwrap_or_default()
        )
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("--- docker-registry log ---\n{}", self.logs());
        }
    }
}

#[test]
fn registry_push_pull_roundtrip() {
    let wasm = read_dist("plugin.wasm");
    let registry = Registry::start();
    let repo = format!("127.0.0.1:{}/jwt-auth-wasm", registry.port);

    // Push with the Makefile's own recipe (skopeo, --preserve-digests, checks
    // the digest the registry answers).
    let out = run(Command::new(tool("make"))
        .arg("-s")
        .arg("-C")
        .arg(root())
        .arg("push-layouts")
        .arg(format!("REGISTRY={repo}:e2e"))
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL"));
    let tags = [("compat", "e2e"), ("wasm", "e2e-wasm")];
    for (variant, tag) in tags {
        let digest = recorded_digest(variant);
        assert!(
            out.contains(&format!("pushed {repo}:{tag}@{digest}")),
            "make push reports {variant} as {repo}:{tag}@{digest}:\n{out}"
        );
        assert!(
            out.contains(&format!("sha256: {}", digest.trim_start_matches("sha256:"))),
            "make push prints the WasmPlugin sha256:\n{out}"
        );
    }

    let skopeo = tool("skopeo");
    let tmp = TempDir::new("pull");
    for (variant, tag) in tags {
        let digest = recorded_digest(variant);
        let reference = format!("docker://{repo}:{tag}");

        // What the registry serves, as Istio's fetcher asks for it.
        let resp = testkit::request(
            registry.port,
            "GET",
            &format!("/v2/jwt-auth-wasm/manifests/{tag}"),
            &[(
                "accept",
                "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
                 application/vnd.docker.distribution.manifest.v2+json",
            )],
        );
        assert_eq!(resp.status, 200, "GET manifest {tag}: {}", resp.body);
        assert_eq!(resp.header("content-type"), Some(MT_MANIFEST));
        assert_eq!(resp.header("docker-content-digest"), Some(digest.as_str()));
        assert_eq!(
            sha256_hex(&resp.body_bytes),
            digest.trim_start_matches("sha256:")
        );

        let raw = run(Command::new(&skopeo)
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(&reference));
        assert_eq!(
            format!("sha256:{}", sha256_hex(raw.as_bytes())),
            digest,
            "{variant}: skopeo inspect --raw"
        );

        // Pull back into a fresh layout and check it like the local one.
        let pulled = tmp.path().join(variant);
        run(Command::new(&skopeo)
            .args([
                "copy",
                "--quiet",
                "--preserve-digests",
                "--src-tls-verify=false",
            ])
            .arg(&reference)
            .arg(format!("oci:{}:{tag}", pulled.display())));
        let (pulled_digest, manifest, blob) = read_layout(&pulled);
        assert_eq!(
            pulled_digest, digest,
            "{variant}: digest after the round trip"
        );
        let inner = check_image(variant, &manifest, &blob);
        assert!(
            inner == wasm,
            "{variant}: pulled module is byte-identical to dist/plugin.wasm"
        );
    }
}

// ------------------------------------------------------ Envoy, remote code

/// The bootstrap of examples/envoy-remote.yaml, with kernel-chosen listener
/// and admin ports and its clusters pointed at the test's servers.
fn remote_bootstrap(wasm_port: u16, upstream_port: u16, sha256: &str) -> Value {
    let text = fs::read_to_string(root().join("examples/envoy-remote.yaml")).unwrap();
    let mut b: Value = serde_norway::from_str(&text).expect("examples/envoy-remote.yaml is YAML");
    b["admin"]["address"]["socket_address"]["port_value"] = json!(0);
    let listener = &mut b["static_resources"]["listeners"][0];
    listener["address"]["socket_address"]["port_value"] = json!(0);
    let wasm = &mut listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"][0]
        ["typed_config"]["config"];
    assert_eq!(
        wasm["failure_policy"], "FAIL_CLOSED",
        "the example fails closed"
    );
    let remote = &mut wasm["vm_config"]["code"]["remote"];
    assert!(remote.is_object(), "the example loads remote code");
    remote["http_uri"]["uri"] = json!(format!("http://127.0.0.1:{wasm_port}/plugin.wasm"));
    remote["sha256"] = json!(sha256);
    // The example's back-off (1 s, 3 retries) made short: the test waits it out.
    remote["retry_policy"] = json!({"num_retries": 1, "retry_back_off": {"base_interval": "0.1s", "max_interval": "0.2s"}});
    for cluster in b["static_resources"]["clusters"].as_array_mut().unwrap() {
        let port = match cluster["name"].as_str().unwrap() {
            "echo" => upstream_port,
            "wasm_server" => wasm_port,
            other => panic!("unexpected cluster {other} in the example"),
        };
        cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
            ["socket_address"]["port_value"] = json!(port);
    }
    b
}

/// Serves dist/plugin.wasm at /plugin.wasm, like a release download server.
fn module_server() -> HttpServer {
    let wasm = read_dist("plugin.wasm");
    HttpServer::start(move |req| {
        if req.method == "GET" && req.path == "/plugin.wasm" {
            Reply::new(200, "application/wasm", wasm.clone())
        } else {
            Reply::new(404, "text/plain", "not found")
        }
    })
}

/// Envoy started from a bootstrap written here (testkit's builder has no
/// remote code). Killed on drop; its log is printed when a test panics.
struct RawEnvoy {
    process: EnvoyProcess,
    port: u16,
    _dir: TempDir,
}

impl RawEnvoy {
    fn start(bootstrap: &Value) -> RawEnvoy {
        let dir = TempDir::new("envoy");
        let config = dir.path().join("envoy.json");
        fs::write(&config, serde_json::to_string_pretty(bootstrap).unwrap()).unwrap();
        let opts = ProcessOptions {
            component_log_level: Some("config:debug".to_string()),
            ..ProcessOptions::default()
        };
        let process = EnvoyProcess::start(&config, dir.path(), &opts, Duration::from_secs(30))
            .unwrap_or_else(|log| panic!("Envoy did not start:\n{log}"));
        let port = process
            .listener_port(None)
            .unwrap_or_else(|e| panic!("{e}"));
        RawEnvoy {
            process,
            port,
            _dir: dir,
        }
    }

    fn stat(&self, name: &str) -> u64 {
        self.process
            .stat(name)
            .unwrap_or_else(|| panic!("no stat {name} in:\n{}", self.process.admin_get("/stats")))
    }

    fn log(&self) -> String {
        self.process.log()
    }

    /// Whether the log shows `needle` within a few seconds: Envoy writes
    /// its log file every 50 ms, so a line logged just before LIVE may not
    /// be there yet.
    fn logged(&self, needle: &str) -> bool {
        testkit::wait_until(Duration::from_secs(5), || self.log().contains(needle))
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> testkit::Response {
        testkit::request(self.port, "GET", path, headers)
    }
}

#[test]
fn envoy_loads_the_module_over_http_and_enforces_tokens() {
    let sha = sha256_hex(&read_dist("plugin.wasm"));
    let server = module_server();
    let upstream = EchoUpstream::start();
    let envoy = RawEnvoy::start(&remote_bootstrap(server.port(), upstream.port(), &sha));

    let fetches = server.requests();
    assert!(
        fetches
            .iter()
            .any(|r| r.method == "GET" && r.path == "/plugin.wasm"),
        "Envoy downloaded the module: {fetches:?}"
    );
    assert_eq!(envoy.stat("wasm.remote_load_fetch_successes"), 1);

    let resp = envoy.get("/hello?case=no-token", &[]);
    assert_eq!(resp.status, 401, "no token: {}", resp.body);
    assert!(upstream.requests_matching("case=no-token").is_empty());

    let token = demo_token(&DemoClaims::default());
    let auth = format!("Bearer {token}");
    let echo = envoy
        .get("/hello?case=token", &[("authorization", &auth)])
        .echo();
    assert_eq!(echo.header("x-user-id"), vec!["demo-user"]);
    assert_eq!(echo.header("x-auth-provider"), vec!["demo"]);

    let resp = envoy.get(
        "/hello?case=bad",
        &[("authorization", "Bearer not.a.token")],
    );
    assert_eq!(resp.status, 401);
    assert_eq!(
        envoy.get("/healthz", &[]).status,
        200,
        "the example's open route"
    );
}

#[test]
fn envoy_refuses_a_module_with_the_wrong_sha256() {
    let wasm = read_dist("plugin.wasm");
    let mut wrong = Sha256::digest(&wasm);
    wrong[0] ^= 0xff;
    let wrong: String = wrong.iter().map(|b| format!("{b:02x}")).collect();
    let server = module_server();
    let upstream = EchoUpstream::start();
    let token = demo_token(&DemoClaims::default());
    let auth = format!("Bearer {token}");

    // FAIL_CLOSED (the example's policy): Envoy does not reject the
    // configuration; it comes up LIVE with the listener open and answers
    // every request through the filter chain with 503, token or not.
    let envoy = RawEnvoy::start(&remote_bootstrap(server.port(), upstream.port(), &wrong));
    assert!(
        envoy.logged("data is invalid"),
        "Envoy logs the checksum mismatch (config:debug)"
    );
    assert!(envoy.logged("Retry limit exceeded for fetching data from remote data source"));
    assert!(envoy.logged("Plugin jwt_auth failed to load"));
    assert_eq!(
        server.requests_matching("/plugin.wasm").len(),
        2,
        "one download and one retry (num_retries: 1)"
    );
    assert!(envoy.stat("wasm.remote_load_fetch_failures") >= 1);
    assert_eq!(envoy.stat("wasm.remote_load_fetch_successes"), 0);
    for (case, headers) in [
        ("token", vec![("authorization", auth.as_str())]),
        ("none", vec![]),
    ] {
        let resp = envoy.get(&format!("/hello?case=closed-{case}"), &headers);
        assert_eq!(resp.status, 503, "fail closed ({case}): {}", resp.body);
    }
    assert_eq!(
        envoy.get("/healthz", &[]).status,
        503,
        "even open routes: no filter, no traffic"
    );
    assert_eq!(upstream.request_count(), 0, "nothing reached the upstream");
    // Envoy does not download it again by itself.
    thread::sleep(Duration::from_millis(500));
    assert_eq!(server.requests_matching("/plugin.wasm").len(), 2);
    drop(envoy);

    // FAIL_OPEN, for contrast: the same failure lets requests through with no
    // authentication at all. Never use it for this filter.
    let mut open = remote_bootstrap(server.port(), upstream.port(), &wrong);
    open["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"][0]["typed_config"]["config"]["failure_policy"] = json!("FAIL_OPEN");
    let envoy = RawEnvoy::start(&open);
    let resp = envoy.get("/hello?case=open-none", &[]);
    assert_eq!(
        resp.status, 200,
        "FAIL_OPEN passes unauthenticated requests"
    );
    assert_eq!(upstream.requests_matching("case=open-none").len(), 1);
}

// ---------------------------------------------------------------- Istio

/// Every YAML document of every file in deploy/istio, as (file, document).
fn istio_documents() -> Vec<(String, Value)> {
    let dir = root().join("deploy/istio");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in deploy/istio");
    let mut docs = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for de in serde_norway::Deserializer::from_str(&text) {
            let doc = Value::deserialize(de)
                .unwrap_or_else(|e| panic!("deploy/istio/{name} is not valid YAML: {e}"));
            if doc.is_null() {
                continue;
            }
            for field in ["apiVersion", "kind"] {
                assert!(doc[field].is_string(), "{name}: a document without {field}");
            }
            assert!(
                doc["metadata"]["name"].is_string(),
                "{name}: a document without a name"
            );
            docs.push((name.clone(), doc));
        }
    }
    docs
}

/// Runs `jwt-auth-check --config FILE --validate` on a plugin configuration.
fn validate_plugin_config(what: &str, config: &Value) {
    let (valid, output) = plugin_config_is_valid(config);
    assert!(
        valid,
        "{what}: jwt-auth-check --validate refused the plugin configuration:\n{output}\n{}",
        serde_json::to_string_pretty(config).unwrap()
    );
}

/// Whether `jwt-auth-check --validate` accepts a plugin configuration, and
/// what it said.
fn plugin_config_is_valid(config: &Value) -> (bool, String) {
    let tmp = TempDir::new("validate");
    let file = tmp.path().join("plugin.json");
    fs::write(&file, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    let out = Command::new(workspace_bin("jwt-auth-check", "jwt-auth-check"))
        .arg("--config")
        .arg(&file)
        .arg("--validate")
        .output()
        .expect("run jwt-auth-check");
    let said = format!(
        "{}{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// `outbound|<port>|<subset>|<host>` -> (port, host).
fn istio_cluster(name: &str) -> (u64, String) {
    let parts: Vec<&str> = name.split('|').collect();
    assert!(
        parts.len() == 4 && parts[0] == "outbound" && parts[2].is_empty(),
        "{name:?} is not an Istio outbound cluster name outbound|<port>||<host>"
    );
    (
        parts[1].parse().unwrap_or_else(|_| panic!("{name}: port")),
        parts[3].to_string(),
    )
}

#[test]
fn istio_manifests_parse_and_their_plugin_config_validates() {
    let docs = istio_documents();
    // host -> ports, from ServiceEntries and Services in the manifests.
    let mut endpoints: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut tls_origination = Vec::new();
    for (_, doc) in &docs {
        let meta = &doc["metadata"];
        match doc["kind"].as_str().unwrap() {
            "ServiceEntry" => {
                let ports: Vec<u64> = doc["spec"]["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["number"].as_u64().unwrap())
                    .collect();
                for h in doc["spec"]["hosts"].as_array().unwrap() {
                    endpoints.insert(h.as_str().unwrap().into(), ports.clone());
                }
            }
            "Service" => {
                let host = format!(
                    "{}.{}.svc.cluster.local",
                    meta["name"].as_str().unwrap(),
                    meta["namespace"].as_str().expect("Service namespace")
                );
                let ports = doc["spec"]["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["port"].as_u64().unwrap())
                    .collect();
                endpoints.insert(host, ports);
            }
            "Secret" => {
                // A Secret with values would install (or overwrite) the
                // operator's credentials with published ones.
                let name = meta["name"].as_str().unwrap_or("?");
                assert!(
                    doc["data"].is_null() && doc["stringData"].is_null(),
                    "deploy/istio ships Secret {name} with values"
                );
            }
            "DestinationRule" => {
                let host = doc["spec"]["host"].as_str().unwrap().to_string();
                for pls in doc["spec"]["trafficPolicy"]["portLevelSettings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if pls["tls"]["mode"] == "SIMPLE" {
                        tls_origination
                            .push((host.clone(), pls["port"]["number"].as_u64().unwrap()));
                    }
                }
            }
            _ => {}
        }
    }
    let plugins: Vec<&(String, Value)> = docs
        .iter()
        .filter(|(_, d)| d["kind"] == "WasmPlugin")
        .collect();
    assert!(!plugins.is_empty(), "deploy/istio has a WasmPlugin");
    let kinds: Vec<&str> = docs
        .iter()
        .map(|(_, d)| d["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "ServiceEntry",
        "DestinationRule",
        "Deployment",
        "Service",
        "AuthorizationPolicy",
    ] {
        assert!(kinds.contains(&kind), "deploy/istio has a {kind}");
    }

    for (file, plugin) in plugins {
        let what = format!("deploy/istio/{file}");
        assert_eq!(
            plugin["apiVersion"], "extensions.istio.io/v1alpha1",
            "{what}"
        );
        let spec = &plugin["spec"];
        assert_eq!(spec["phase"], "AUTHN", "{what}: phase");
        assert_eq!(spec["failStrategy"], "FAIL_CLOSE", "{what}: failStrategy");
        assert!(
            spec["url"].as_str().unwrap().starts_with("oci://"),
            "{what}: url"
        );
        let sha = spec["sha256"]
            .as_str()
            .expect("sha256 (a string: quote it in YAML if all digits)");
        assert!(
            sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
            "{what}: sha256 is 64 hex digits without 'sha256:': {sha}"
        );
        assert!(
            ["IfNotPresent", "Always"].contains(&spec["imagePullPolicy"].as_str().unwrap_or("")),
            "{what}: imagePullPolicy"
        );
        assert!(
            spec["selector"]["matchLabels"].is_object() != spec["targetRefs"].is_array(),
            "{what}: either selector or targetRefs"
        );
        let shipped = &spec["pluginConfig"];
        assert!(shipped.is_object(), "{what}: pluginConfig");
        // As shipped the feed's secrets are placeholders the filter refuses;
        // with the Secret's values filled in, the configuration is valid.
        assert!(
            !plugin_config_is_valid(shipped).0,
            "{what}: the shipped pluginConfig must be refused until its secrets are filled in"
        );
        let mut filled = shipped.clone();
        let feed = &mut filled["revocation"];
        assert_eq!(feed["bearer_token"], "<REPLACE with read-token>", "{what}");
        assert_eq!(
            feed["hmac_secret_base64"], "<REPLACE with hmac-secret-base64>",
            "{what}"
        );
        feed["bearer_token"] =
            json!("6b1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f");
        feed["hmac_secret_base64"] = json!("q3Xy9uVd2mTa7LkPz0BwRc5HsJf8GnEe1YiOoKtUbQA=");
        validate_plugin_config(&what, &filled);
        let config = &filled;

        // Every callout cluster is one Istio generates from these manifests.
        let mut callouts = Vec::new();
        for p in config["providers"].as_array().unwrap() {
            if p["remote_jwks"].is_object() {
                callouts.push(("remote_jwks", p["remote_jwks"].clone()));
            }
        }
        assert!(!callouts.is_empty(), "{what}: a provider with remote_jwks");
        assert!(config["revocation"].is_object(), "{what}: revocation");
        callouts.push(("revocation", config["revocation"].clone()));
        for (name, c) in &callouts {
            let (port, host) = istio_cluster(c["cluster"].as_str().unwrap());
            assert!(
                endpoints.get(&host).is_some_and(|ports| ports.contains(&port)),
                "{what}: {name} cluster {} has no ServiceEntry/Service port in deploy/istio ({endpoints:?})",
                c["cluster"]
            );
            assert_eq!(
                c["authority"].as_str(),
                Some(host.as_str()),
                "{what}: {name} authority"
            );
            if host.ends_with(".svc.cluster.local") {
                continue;
            }
            assert!(
                tls_origination.contains(&(host.clone(), port)),
                "{what}: {name} goes to {host}:{port} outside the mesh: a DestinationRule must originate TLS"
            );
        }
    }
    // The admin API admits only the operators' principal.
    let policies: Vec<&Value> = docs
        .iter()
        .map(|(_, d)| d)
        .filter(|d| d["kind"] == "AuthorizationPolicy")
        .collect();
    let admin = policies.iter().flat_map(|p| {
        p["spec"]["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r.to_string().contains("POST"))
    });
    let principals: Vec<String> = admin
        .flat_map(|r| r["from"].as_array().into_iter().flatten())
        .flat_map(|f| f["source"]["principals"].as_array().into_iter().flatten())
        .map(|p| p.as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        principals,
        ["cluster.local/ns/jwt-auth/sa/revocation-feed-admin"],
        "{policies:?}"
    );
}

#[test]
fn envoy_remote_example_plugin_config_validates() {
    let file = "examples/envoy-remote.yaml";
    let text = fs::read_to_string(root().join(file)).unwrap();
    let b: Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    let value = b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["http_filters"][0]["typed_config"]["config"]["configuration"]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("{file}: no plugin configuration"));
    let config: Value =
        serde_json::from_str(value).unwrap_or_else(|e| panic!("{file}: plugin configuration: {e}"));
    validate_plugin_config(file, &config);
}

/// The shipped module exports only the callbacks the filter implements:
/// Envoy calls every exported callback on every request (the SDK exports
/// all of them), so an unused one costs a VM call for nothing, and a
/// missing one would silently never run.
#[test]
fn shipped_module_exports_only_the_callbacks_it_implements() {
    let listed = run(Command::new("python3")
        .arg(root().join("tools/wasm_exports.py"))
        .arg("--list")
        .arg(dist("plugin.wasm")));
    let mut exports: Vec<&str> = listed.lines().collect();
    exports.sort_unstable();
    let mut expected = vec![
        "_initialize",
        "memory",
        "proxy_abi_version_0_2_1",
        "proxy_on_configure",
        "proxy_on_context_create",
        "proxy_on_delete",
        "proxy_on_http_call_response",
        "proxy_on_memory_allocate",
        "proxy_on_request_headers",
        "proxy_on_tick",
        "proxy_on_vm_start",
    ];
    expected.sort_unstable();
    assert_eq!(exports, expected);
}
