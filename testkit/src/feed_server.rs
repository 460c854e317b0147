//! The reference feed server (`revocation-feed serve`, this workspace's
//! binary) as a child process on a free loopback port, stopped on drop. Its
//! log goes to a file, read back by [`FeedServer::log`].

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use serde_json::json;

use crate::{free_port, random_id, workspace_bin};

/// The secrets a feed server and the filters polling it share.
#[derive(Debug, Clone, Copy)]
pub struct FeedSecrets {
    /// What polls carry as `Authorization: Bearer`.
    pub read_token: &'static str,
    /// What the admin API asks for.
    pub admin_token: &'static str,
    /// The HMAC key of the answers' signatures, base64.
    pub hmac_secret_base64: &'static str,
}

pub struct FeedServer {
    child: Option<Child>,
    port: u16,
    secrets: FeedSecrets,
    log: PathBuf,
}

impl FeedServer {
    /// Starts `serve` with `store` (`--data <dir>` or `--redis <url>`) and
    /// `env`, and waits until `/healthz` answers 200.
    pub fn start(store: &[&str], env: &[(&str, &str)], secrets: FeedSecrets) -> FeedServer {
        let bin = workspace_bin("revocation-feed", "revocation-feed");
        let port = free_port();
        let log = std::env::temp_dir()
            .join("jwt-auth-testkit")
            .join(format!("feed-{}.log", random_id()));
        if let Some(dir) = log.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let stderr =
            std::fs::File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let child = Command::new(bin)
            .arg("serve")
            .args(store)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("REVOCATION_FEED_READ_TOKEN", secrets.read_token)
            .env("REVOCATION_FEED_ADMIN_TOKEN", secrets.admin_token)
            .env(
                "REVOCATION_FEED_HMAC_SECRET_BASE64",
                secrets.hmac_secret_base64,
            )
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn revocation-feed: {e}"));
        let mut server = FeedServer {
            child: Some(child),
            port,
            secrets,
            log,
        };
        let up = (0..200).any(|_| {
            thread::sleep(Duration::from_millis(50));
            server.healthy()
        });
        if !up {
            server.kill();
            panic!("revocation-feed did not come up; log:\n{}", server.log());
        }
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether `/healthz` answers 200 (the store answers too).
    pub fn healthy(&self) -> bool {
        crate::http::get_text(self.port, "/healthz").is_ok_and(|(s, _)| s == 200)
    }

    /// SIGKILL: no shutdown path runs, held polls are cut off.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Revokes `jtis` (expiring at `exp`) in one admin request. `Err` with
    /// the status or the connection error when the server did not accept
    /// them: a store that is down answers 503, a killed server not at all.
    pub fn try_revoke(&self, jtis: &[String], exp: i64) -> Result<(), String> {
        let list: Vec<_> = jtis.iter().map(|j| json!({"jti": j, "exp": exp})).collect();
        let body = serde_json::to_vec(&list).unwrap_or_default();
        let head = format!(
            "POST {} HTTP/1.1\r\nhost: 127.0.0.1:{}\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            revocation_protocol::REVOCATIONS_PATH,
            self.port,
            self.secrets.admin_token,
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(&body);
        match send(self.port, &request) {
            Ok(r) if r.status == 201 => Ok(()),
            Ok(r) => Err(format!("status {}: {}", r.status, r.body)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The sum of the `/metrics` samples of `name` whose labels contain
    /// `labels` (e.g. `outcome="reset"`); 0 when there are none.
    pub fn metric(&self, name: &str, labels: &str) -> u64 {
        let Ok((200, text)) = crate::http::get_text(self.port, "/metrics") else {
            return 0;
        };
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains(labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    }
}

/// One request on a fresh connection; an error, not a panic, when nothing
/// listens.
fn send(port: u16, request: &[u8]) -> std::io::Result<crate::http::Response> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request)?;
    crate::http::read_response(&mut std::io::BufReader::new(stream), false)
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}
