//! Small threaded HTTP/1.1 servers on 127.0.0.1 for tests: a generic one with
//! a handler closure (JWKS endpoints, feeds, ...) and the echo upstream.

use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::http::{read_body, read_head};

/// One request as a test server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The request target exactly as sent (path and query).
    pub path: String,
    /// Header names as sent, in arrival order, duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// Every value of a header (case-insensitive), in arrival order.
    pub fn header(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// What a handler answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn json(status: u16, body: &Value) -> Reply {
        Reply::new(status, "application/json", body.to_string())
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync + 'static;

/// A threaded HTTP/1.1 server on 127.0.0.1:<free port> (keep-alive,
/// Content-Length and chunked request bodies) that records every request and
/// answers with the handler's [`Reply`]. Stops on drop.
pub struct HttpServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
    accept_thread: Option<thread::JoinHandle<()>>,
}

impl HttpServer {
    pub fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> HttpServer {
        Self::start_on(0, handler)
    }

    /// Starts on a given port (0 = any free port).
    pub fn start_on(
        port: u16,
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> HttpServer {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("bind 127.0.0.1:{port}: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local_addr: {e}"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let accept_thread = {
            let seen = seen.clone();
            let stop = stop.clone();
            thread::Builder::new()
                .name(format!("http-server-{}", addr.port()))
                .spawn(move || accept_loop(listener, handler, seen, stop))
                .unwrap_or_else(|e| panic!("spawn: {e}"))
        };
        HttpServer {
            addr,
            seen,
            stop,
            accept_thread: Some(accept_thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.seen).clone()
    }

    pub fn request_count(&self) -> usize {
        lock(&self.seen).len()
    }

    /// Forgets the recorded requests.
    pub fn clear(&self) {
        lock(&self.seen).clear();
    }

    /// Whether a request whose target starts with `prefix` was received.
    pub fn saw_path_prefix(&self, prefix: &str) -> bool {
        lock(&self.seen).iter().any(|r| r.path.starts_with(prefix))
    }

    /// Requests whose target contains `needle` (e.g. a unique marker query).
    pub fn requests_matching(&self, needle: &str) -> Vec<Recorded> {
        lock(&self.seen)
            .iter()
            .filter(|r| r.path.contains(needle))
            .cloned()
            .collect()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Unblock accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500));
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn accept_loop(
    listener: TcpListener,
    handler: Arc<Handler>,
    seen: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(conn) = conn else { continue };
        let handler = handler.clone();
        let seen = seen.clone();
        let stop = stop.clone();
        let _ = thread::Builder::new()
            .name("http-server-conn".into())
            .spawn(move || {
                let _ = serve_conn(conn, &*handler, &seen, &stop);
            });
    }
}

fn serve_conn(
    stream: TcpStream,
    handler: &Handler,
    seen: &Mutex<Vec<Recorded>>,
    stop: &AtomicBool,
) -> io::Result<()> {
    // Idle keep-alive connections end eventually so threads don't pile up;
    // long enough that a proxy never reuses a connection we just closed (the
    // test Envoy's upstream idle_timeout is far shorter).
    stream.set_read_timeout(Some(Duration::from_secs(300)))?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(head) = read_head(&mut reader)? else {
            return Ok(());
        };
        let mut parts = head.first_line.split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let version = parts.next().unwrap_or("HTTP/1.1").to_string();
        let expects_continue = head.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("expect") && v.eq_ignore_ascii_case("100-continue")
        });
        if expects_continue {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let body = read_body(&mut reader, &head.headers, false)?;
        let close = head.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("connection") && v.to_ascii_lowercase().contains("close")
        }) || version == "HTTP/1.0";
        let rec = Recorded {
            method,
            path,
            headers: head.headers,
            body,
        };
        let reply = handler(&rec);
        lock(seen).push(rec);
        let mut out = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
        for (n, v) in &reply.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str(&format!("content-length: {}\r\n", reply.body.len()));
        if close {
            out.push_str("connection: close\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&reply.body);
        writer.write_all(&bytes)?;
        writer.flush()?;
        if close {
            return Ok(());
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// The JSON an [`EchoUpstream`] answers for a request:
/// `{"method", "path", "headers": {"lowercased-name": [values in order]}, "body"}`.
pub fn echo_json(req: &Recorded) -> Value {
    let mut headers: Map<String, Value> = Map::new();
    for (n, v) in &req.headers {
        let entry = headers
            .entry(n.to_ascii_lowercase())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = entry {
            a.push(Value::String(v.clone()));
        }
    }
    json!({
        "method": req.method,
        "path": req.path,
        "headers": headers,
        "body": String::from_utf8_lossy(&req.body),
    })
}

/// The upstream the test Envoy routes to: answers every request with 200 and
/// [`echo_json`], and records what it saw.
pub struct EchoUpstream {
    server: HttpServer,
}

impl EchoUpstream {
    pub fn start() -> EchoUpstream {
        Self::start_on(0)
    }

    pub fn start_on(port: u16) -> EchoUpstream {
        EchoUpstream {
            server: HttpServer::start_on(port, |req| Reply::json(200, &echo_json(req))),
        }
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Every request that reached the upstream, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    pub fn request_count(&self) -> usize {
        self.server.request_count()
    }

    pub fn clear(&self) {
        self.server.clear()
    }

    pub fn saw_path_prefix(&self, prefix: &str) -> bool {
        self.server.saw_path_prefix(prefix)
    }

    /// Requests whose target contains `needle`. Tests put a unique marker in
    /// the query (`/x?case=17`) and assert on this to prove a request did or
    /// did not reach the upstream.
    pub fn requests_matching(&self, needle: &str) -> Vec<Recorded> {
        self.server.requests_matching(needle)
    }
}
