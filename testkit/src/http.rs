//! A minimal, blocking HTTP/1.1 client and the wire helpers shared with the
//! test servers. Hand-rolled on purpose: tests need exact control over the
//! bytes sent (duplicate headers, odd casing, odd bytes) and an exact view of
//! what came back.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// How long a client read may block before the test fails instead of hanging.
pub const IO_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_HEAD_BYTES: usize = 1 << 20;

/// One HTTP response as received.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// Header names as sent by the server, in order, duplicates kept.
    pub headers: Vec<(String, String)>,
    /// Body decoded as UTF-8 (lossy).
    pub body: String,
    /// Body bytes exactly as received (after de-chunking).
    pub body_bytes: Vec<u8>,
}

impl Response {
    /// First value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order (case-insensitive name).
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body parsed as JSON; panics with the body if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): status {} body {:?}",
                self.status, self.body
            )
        })
    }

    /// The body parsed as an [`EchoUpstream`](crate::EchoUpstream) reply;
    /// panics if the request did not reach the echo upstream.
    pub fn echo(&self) -> Echo {
        assert_eq!(
            self.status, 200,
            "expected the echo upstream's 200, got {} with body {:?}",
            self.status, self.body
        );
        Echo::parse(&self.body)
    }
}

/// What the echo upstream saw, as reported in its JSON body.
#[derive(Debug, Clone)]
pub struct Echo {
    pub method: String,
    pub path: String,
    pub body: String,
    pub raw: Value,
}

impl Echo {
    pub fn parse(body: &str) -> Echo {
        let raw: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("echo body is not JSON ({e}): {body:?}"));
        assert!(
            raw.get("headers").is_some_and(Value::is_object),
            "not an echo reply (no headers object): {body}"
        );
        Echo {
            method: raw["method"].as_str().unwrap_or_default().to_string(),
            path: raw["path"].as_str().unwrap_or_default().to_string(),
            body: raw["body"].as_str().unwrap_or_default().to_string(),
            raw,
        }
    }

    /// Every value the upstream received for this header, in arrival order
    /// (empty when absent).
    pub fn header(&self, name: &str) -> Vec<String> {
        self.raw["headers"]
            .get(name.to_ascii_lowercase())
            .and_then(Value::as_array)
            .map(|vals| {
                vals.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the upstream received this header at all.
    pub fn has_header(&self, name: &str) -> bool {
        !self.header(name).is_empty()
    }

    /// Lowercased names of every header the upstream received.
    pub fn header_names(&self) -> Vec<String> {
        self.raw["headers"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// Sends one request on a fresh connection with `Connection: close` and
/// returns the response. `Host` is added unless given in `headers`.
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    request_with_body(port, method, path, headers, b"")
}

/// Like [`request`] with a body (a `Content-Length` is added when the body is
/// not empty and none is given).
pub fn request_with_body(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut conn = Connection::open(port);
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if !has(headers, "connection") {
        all.push(("Connection", "close"));
    }
    conn.send(method, path, &all, body)
}

/// Sends raw bytes on a fresh connection and parses the first response. For
/// malformed-request and odd-header tests. The write side stays open (Envoy
/// treats a half-close as the client going away).
pub fn raw_request(port: u16, bytes: &[u8]) -> Response {
    let mut conn = Connection::open(port);
    conn.send_raw(bytes, false)
}

/// Sends raw bytes on a fresh connection and reads one response; an error
/// when the server closed or reset the connection without one.
pub fn try_raw_request(port: u16, bytes: &[u8]) -> io::Result<Response> {
    let mut reader = BufReader::new(connect(port));
    reader.get_mut().write_all(bytes)?;
    read_response(&mut reader, false)
}

/// Sends raw bytes on a fresh connection and returns every byte the server
/// sent until it closed the connection, or until nothing more arrived for
/// 3 s (send `Connection: close` to make that quick).
pub fn raw_exchange(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut stream = connect(port);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    stream
        .write_all(bytes)
        .unwrap_or_else(|e| panic!("write to 127.0.0.1:{port}: {e}"));
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => panic!("read from 127.0.0.1:{port}: {e} (got so far {out:?})"),
        }
    }
    out
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_nodelay(true);
    stream
}

fn has(headers: &[(&str, &str)], name: &str) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// A persistent (keep-alive) client connection, to send several requests on
/// one connection and check no state leaks between them.
pub struct Connection {
    port: u16,
    reader: BufReader<TcpStream>,
}

impl Connection {
    pub fn open(port: u16) -> Connection {
        Connection {
            port,
            reader: BufReader::new(connect(port)),
        }
    }

    /// Sends one request and reads its response. `Host` is added unless
    /// given; `Content-Length` is added for a non-empty body unless given.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut req = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
        if !has(headers, "host") {
            req.extend_from_slice(format!("Host: 127.0.0.1:{}\r\n", self.port).as_bytes());
        }
        for (n, v) in headers {
            req.extend_from_slice(n.as_bytes());
            req.extend_from_slice(b": ");
            req.extend_from_slice(v.as_bytes());
            req.extend_from_slice(b"\r\n");
        }
        if !body.is_empty() && !has(headers, "content-length") && !has(headers, "transfer-encoding")
        {
            req.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(body);
        self.send_raw(&req, method.eq_ignore_ascii_case("HEAD"))
    }

    /// Writes raw bytes and reads one response.
    pub fn send_raw(&mut self, bytes: &[u8], head_only: bool) -> Response {
        let port = self.port;
        self.reader
            .get_mut()
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write to 127.0.0.1:{port}: {e}"));
        read_response(&mut self.reader, head_only)
            .unwrap_or_else(|e| panic!("reading response from 127.0.0.1:{port}: {e}"))
    }
}

/// Reads one response (status line, headers, body by Content-Length, chunked
/// or until EOF).
pub fn read_response<R: BufRead>(r: &mut R, head_only: bool) -> io::Result<Response> {
    let head = loop {
        let head = read_head(r)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"))?;
        // Skip interim 1xx responses.
        if head
            .first_line
            .split(' ')
            .nth(1)
            .is_some_and(|c| c.starts_with('1'))
        {
            continue;
        }
        break head;
    };
    let mut parts = head.first_line.splitn(3, ' ');
    let _version = parts.next();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {:?}", head.first_line)))?;
    let reason = parts.next().unwrap_or("").to_string();
    let no_body = head_only || status == 204 || status == 304;
    let body_bytes = if no_body {
        Vec::new()
    } else {
        read_body(r, &head.headers, true)?
    };
    Ok(Response {
        status,
        reason,
        headers: head.headers,
        body: String::from_utf8_lossy(&body_bytes).into_owned(),
        body_bytes,
    })
}

pub(crate) struct Head {
    pub first_line: String,
    pub headers: Vec<(String, String)>,
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads a message head. `Ok(None)` on a clean EOF before any byte.
pub(crate) fn read_head<R: BufRead>(r: &mut R) -> io::Result<Option<Head>> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut total = 0usize;
    loop {
        let mut line = Vec::new();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            if lines.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "EOF inside message head",
            ));
        }
        total += n;
        if total > MAX_HEAD_BYTES {
            return Err(bad("message head too large".into()));
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        if line.is_empty() {
            if lines.is_empty() {
                continue; // tolerate stray CRLF between messages
            }
            break;
        }
        lines.push(line);
    }
    let first_line = String::from_utf8_lossy(&lines[0]).into_owned();
    let mut headers = Vec::with_capacity(lines.len() - 1);
    for l in &lines[1..] {
        let Some(colon) = l.iter().position(|b| *b == b':') else {
            return Err(bad(format!(
                "header line without colon: {:?}",
                String::from_utf8_lossy(l)
            )));
        };
        let name = String::from_utf8_lossy(&l[..colon]).into_owned();
        let value = String::from_utf8_lossy(&l[colon + 1..])
            .trim_matches(|c| c == ' ' || c == '\t')
            .to_string();
        headers.push((name, value));
    }
    Ok(Some(Head {
        first_line,
        headers,
    }))
}

fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads a body framed by `Transfer-Encoding: chunked` or `Content-Length`;
/// without either, reads to EOF if `until_eof` (responses) or nothing
/// (requests).
pub(crate) fn read_body<R: BufRead>(
    r: &mut R,
    headers: &[(String, String)],
    until_eof: bool,
) -> io::Result<Vec<u8>> {
    let chunked = header_value(headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        let mut body = Vec::new();
        loop {
            let mut size_line = String::new();
            if r.read_line(&mut size_line)? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "EOF in chunk"));
            }
            let size_str = size_line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_str.trim(), 16)
                .map_err(|_| bad(format!("bad chunk size {size_line:?}")))?;
            if size == 0 {
                // Trailers until an empty line.
                loop {
                    let mut t = String::new();
                    if r.read_line(&mut t)? == 0 || t.trim().is_empty() {
                        break;
                    }
                }
                return Ok(body);
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            let mut crlf = String::new();
            r.read_line(&mut crlf)?;
        }
    }
    if let Some(len) = header_value(headers, "content-length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| bad(format!("bad content-length {len:?}")))?;
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        return Ok(body);
    }
    let mut body = Vec::new();
    if until_eof {
        match r.read_to_end(&mut body) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Err(e) => return Err(e),
        }
    }
    Ok(body)
}

/// A plain GET returning the body, for admin endpoints and the like.
pub fn get_text(port: u16, path: &str) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reader = BufReader::new(stream);
    let resp = read_response(&mut reader, false)?;
    Ok((resp.status, resp.body))
}
