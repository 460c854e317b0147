//! Debian's `redis-server` on a free loopback port, with its data in a
//! directory of its own and every write fsynced before it is acknowledged
//! (`appendfsync always`), so that a test can kill it with SIGKILL and start
//! it again on the same port with nothing lost: what a restart of a
//! production Redis with persistence looks like to its clients. Extra
//! arguments (given after these defaults, so they win) turn that off where
//! a test wants speed instead (`--appendonly no`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{free_port, random_id};

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server; panics when `redis-server` is missing (a test that
    /// needs it must fail, not skip) or does not answer in time.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments. The free port is
    /// found by binding and releasing it and another process could take it
    /// in between, hence a few tries on fresh ports.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let dir = std::env::temp_dir()
            .join("jwt-auth-testkit")
            .join(format!("redis-{}", random_id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let mut server = RedisServer {
            child: None,
            port: 0,
            dir,
            extra: extra.iter().map(|a| a.to_string()).collect(),
        };
        let mut last_err = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.run() {
                Ok(()) => return server,
                Err(e) => last_err = e,
            }
        }
        panic!("redis-server did not start: {last_err}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// SIGKILL: no shutdown path runs; acknowledged writes are on disk.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data directory (after
    /// [`RedisServer::kill`]), and waits until it answers with its data
    /// loaded.
    pub fn restart(&mut self) {
        if let Err(e) = self.run() {
            panic!("{e}");
        }
    }

    /// (Re)starts the process on this port and waits until it answers.
    fn run(&mut self) -> Result<(), String> {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", ""])
            .args(["--appendonly", "yes"])
            .args(["--appendfsync", "always"])
            .args(["--daemonize", "no"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}): install it with \
                     `apt-get install -y redis-server` (`make feed-redis-server` does)"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.answers() {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(format!("redis-server exited with {status}"));
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Err(format!("redis-server did not answer on port {}", self.port))
    }

    /// Sends one inline command and returns the first line of the reply.
    pub fn command(&self, line: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("connect to redis-server: {e}"));
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        s.write_all(format!("{line}\r\n").as_bytes())
            .unwrap_or_else(|e| panic!("write to redis-server: {e}"));
        let mut reply = String::new();
        BufReader::new(s)
            .read_line(&mut reply)
            .unwrap_or_else(|e| panic!("read from redis-server: {e}"));
        reply.trim_end().to_string()
    }

    /// Whether it answers PING with PONG (a server still loading its data
    /// answers with an error).
    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok()
            && s.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
