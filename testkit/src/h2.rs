//! A minimal, blocking HTTP/2 cleartext client (h2c with prior knowledge,
//! RFC 9113 §3.3) for the adversarial tests. Hand-rolled like the HTTP/1.1
//! client, and for the same reason: tests need exact control over the bytes
//! sent. Header names and values go out as HPACK literals exactly as given
//! (no lowercasing, no validation, no Huffman), so a test can send what a
//! well-behaved client library refuses to: uppercase names, non-UTF-8 bytes,
//! duplicate pseudo-headers, CR/LF.
//!
//! One request per stream, one stream at a time; responses are decoded with a
//! full HPACK decoder (static and dynamic table, Huffman). A stream reset or
//! a GOAWAY is an [`H2Outcome`], not a panic: refusing a malformed request
//! that way is a legitimate answer.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::Duration;

use crate::http::{Response, IO_TIMEOUT};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PUSH_PROMISE: u8 = 5;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The receive window the client announces (stream and connection).
const WINDOW: u32 = 1 << 24;

/// How a request on an HTTP/2 connection ended.
#[derive(Debug, Clone)]
pub enum H2Outcome {
    /// A complete response (interim 1xx responses skipped); `reason` is empty.
    Response(Response),
    /// The server reset the stream (RST_STREAM) with this error code.
    Reset(u32),
    /// The server sent GOAWAY without processing the stream.
    GoAway { code: u32, debug: String },
    /// The connection closed (or failed) before a complete response.
    Closed(String),
}

impl H2Outcome {
    /// The response, panicking with the outcome otherwise.
    pub fn response(self) -> Response {
        match self {
            H2Outcome::Response(r) => r,
            other => panic!("expected an HTTP/2 response, got {other:?}"),
        }
    }

    /// The status of a response, `None` for a reset, GOAWAY or close.
    pub fn status(&self) -> Option<u16> {
        match self {
            H2Outcome::Response(r) => Some(r.status),
            _ => None,
        }
    }
}

/// The name of an HTTP/2 error code (RFC 9113 §7).
pub fn error_name(code: u32) -> &'static str {
    match code {
        0 => "NO_ERROR",
        1 => "PROTOCOL_ERROR",
        2 => "INTERNAL_ERROR",
        3 => "FLOW_CONTROL_ERROR",
        4 => "SETTINGS_TIMEOUT",
        5 => "STREAM_CLOSED",
        6 => "FRAME_SIZE_ERROR",
        7 => "REFUSED_STREAM",
        8 => "CANCEL",
        9 => "COMPRESSION_ERROR",
        10 => "CONNECT_ERROR",
        11 => "ENHANCE_YOUR_CALM",
        12 => "INADEQUATE_SECURITY",
        13 => "HTTP_1_1_REQUIRED",
        _ => "UNKNOWN",
    }
}

/// One request on a fresh h2c connection: `:method`, `:scheme http`,
/// `:authority 127.0.0.1:port` and `:path`, then `headers` as given.
pub fn h2_request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> H2Outcome {
    let headers: Vec<(&[u8], &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect();
    H2Connection::open(port).send(method, path, &headers, b"")
}

/// [`h2_request`] with raw header bytes.
pub fn h2_request_bytes(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&[u8], &[u8])],
) -> H2Outcome {
    H2Connection::open(port).send(method, path, headers, b"")
}

/// A client connection (prior knowledge, no TLS) that sends requests one
/// after the other on new streams.
pub struct H2Connection {
    port: u16,
    stream: TcpStream,
    buf: Vec<u8>,
    next_stream: u32,
    peer_max_frame: usize,
    decoder: Decoder,
    /// Set once the connection is unusable (GOAWAY, close).
    dead: Option<String>,
}

struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

impl H2Connection {
    /// Connects and exchanges the preface and SETTINGS. Panics when the
    /// server is unreachable or does not speak HTTP/2.
    pub fn open(port: u16) -> H2Connection {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_nodelay(true);
        let mut conn = H2Connection {
            port,
            stream,
            buf: Vec::new(),
            next_stream: 1,
            peer_max_frame: 16_384,
            decoder: Decoder::default(),
            dead: None,
        };
        let mut hello = PREFACE.to_vec();
        // SETTINGS: ENABLE_PUSH 0, INITIAL_WINDOW_SIZE.
        let mut settings = Vec::new();
        settings.extend_from_slice(&[0, 2, 0, 0, 0, 0]);
        settings.extend_from_slice(&[0, 4]);
        settings.extend_from_slice(&WINDOW.to_be_bytes());
        frame_into(&mut hello, SETTINGS, 0, 0, &settings);
        frame_into(
            &mut hello,
            8, // WINDOW_UPDATE on the connection
            0,
            0,
            &(WINDOW - 65_535).to_be_bytes(),
        );
        conn.stream
            .write_all(&hello)
            .unwrap_or_else(|e| panic!("h2c preface to 127.0.0.1:{port}: {e}"));
        // The server's first frame must be SETTINGS.
        match conn.read_frame() {
            Ok(f) if f.kind == SETTINGS && f.flags & ACK == 0 => conn.on_settings(&f),
            Ok(f) => panic!(
                "127.0.0.1:{port} did not answer the h2c preface with SETTINGS (frame type {})",
                f.kind
            ),
            Err(e) => panic!("127.0.0.1:{port} did not answer the h2c preface: {e}"),
        }
        conn
    }

    fn on_settings(&mut self, f: &Frame) {
        for s in f.payload.chunks_exact(6) {
            let id = u16::from_be_bytes([s[0], s[1]]);
            let value = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
            if id == 5 {
                self.peer_max_frame = value as usize;
            }
        }
        let mut ack = Vec::new();
        frame_into(&mut ack, SETTINGS, ACK, 0, &[]);
        let _ = self.stream.write_all(&ack);
    }

    /// Sends one request (pseudo-headers first, then `headers` verbatim;
    /// a `:authority` in `headers` replaces the default one) and waits for
    /// how it ends.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&[u8], &[u8])],
        body: &[u8],
    ) -> H2Outcome {
        self.send_bytes(method.as_bytes(), path.as_bytes(), headers, body)
    }

    /// [`send`](Self::send) with `:method` and `:path` as raw bytes.
    pub fn send_bytes(
        &mut self,
        method: &[u8],
        path: &[u8],
        headers: &[(&[u8], &[u8])],
        body: &[u8],
    ) -> H2Outcome {
        if let Some(why) = &self.dead {
            return H2Outcome::Closed(format!("connection already unusable: {why}"));
        }
        let id = self.next_stream;
        self.next_stream += 2;
        let authority = format!("127.0.0.1:{}", self.port);
        let mut block = Vec::new();
        encode_literal(&mut block, b":method", method);
        encode_literal(&mut block, b":scheme", b"http");
        if !headers.iter().any(|(n, _)| *n == b":authority") {
            encode_literal(&mut block, b":authority", authority.as_bytes());
        }
        encode_literal(&mut block, b":path", path);
        for (n, v) in headers {
            encode_literal(&mut block, n, v);
        }
        let mut out = Vec::new();
        let max = self.peer_max_frame.max(1);
        let chunks: Vec<&[u8]> = if block.is_empty() {
            vec![&[][..]]
        } else {
            block.chunks(max).collect()
        };
        for (i, chunk) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            let mut flags = if last { END_HEADERS } else { 0 };
            let kind = if i == 0 { HEADERS } else { CONTINUATION };
            if i == 0 && body.is_empty() {
                flags |= END_STREAM;
            }
            frame_into(&mut out, kind, flags, id, chunk);
        }
        if !body.is_empty() {
            let parts: Vec<&[u8]> = body.chunks(max).collect();
            for (i, part) in parts.iter().enumerate() {
                let flags = if i + 1 == parts.len() { END_STREAM } else { 0 };
                frame_into(&mut out, DATA, flags, id, part);
            }
        }
        if let Err(e) = self.stream.write_all(&out) {
            // The server may have answered and closed already (e.g. headers
            // too large): read what it sent.
            if let Some(outcome) = self.read_outcome(id) {
                return outcome;
            }
            self.dead = Some(format!("write: {e}"));
            return H2Outcome::Closed(format!("write failed: {e}"));
        }
        self.read_outcome(id)
            .unwrap_or_else(|| H2Outcome::Closed("no response".into()))
    }

    /// Reads frames until the stream `id` ends; `None` if the connection
    /// ended first without a word about the stream.
    fn read_outcome(&mut self, id: u32) -> Option<H2Outcome> {
        let mut status: Option<u16> = None;
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut body = Vec::new();
        let mut block: Option<(Vec<u8>, bool)> = None; // (fragments, end_stream)
        loop {
            let f = match self.read_frame() {
                Ok(f) => f,
                Err(e) => {
                    self.dead = Some(format!("read: {e}"));
                    return Some(H2Outcome::Closed(format!("{e}")));
                }
            };
            match f.kind {
                SETTINGS if f.flags & ACK == 0 => self.on_settings(&f),
                PING if f.flags & ACK == 0 => {
                    let mut pong = Vec::new();
                    frame_into(&mut pong, PING, ACK, 0, &f.payload);
                    let _ = self.stream.write_all(&pong);
                }
                GOAWAY => {
                    let last = read_u31(&f.payload, 0);
                    let code = read_u32(&f.payload, 4);
                    let debug =
                        String::from_utf8_lossy(f.payload.get(8..).unwrap_or(&[])).into_owned();
                    self.dead = Some(format!("GOAWAY {}", error_name(code)));
                    if last < id {
                        return Some(H2Outcome::GoAway { code, debug });
                    }
                }
                RST_STREAM if f.stream == id => {
                    return Some(H2Outcome::Reset(read_u32(&f.payload, 0)));
                }
                PUSH_PROMISE => {
                    self.dead = Some("server push".into());
                    return Some(H2Outcome::Closed("unexpected PUSH_PROMISE".into()));
                }
                HEADERS if f.stream == id => {
                    let mut p = strip_padding(&f)?;
                    if f.flags & PRIORITY != 0 {
                        p = p.get(5..)?.to_vec();
                    }
                    block = Some((p, f.flags & END_STREAM != 0));
                }
                CONTINUATION if f.stream == id => {
                    let Some((p, _)) = block.as_mut() else {
                        return Some(H2Outcome::Closed("CONTINUATION without HEADERS".into()));
                    };
                    p.extend_from_slice(&f.payload);
                }
                DATA if f.stream == id => {
                    let p = strip_padding(&f)?;
                    body.extend_from_slice(&p);
                    if !f.payload.is_empty() {
                        let inc = (f.payload.len() as u32).to_be_bytes();
                        let mut wu = Vec::new();
                        frame_into(&mut wu, 8, 0, 0, &inc);
                        frame_into(&mut wu, 8, 0, id, &inc);
                        let _ = self.stream.write_all(&wu);
                    }
                    if f.flags & END_STREAM != 0 {
                        return Some(finish(status, headers, body));
                    }
                }
                _ => {}
            }
            let ends_block = matches!(f.kind, HEADERS | CONTINUATION)
                && f.stream == id
                && f.flags & END_HEADERS != 0;
            if let Some((p, end_stream)) = block.take_if(|_| ends_block) {
                if let Some(outcome) = self.on_block(&p, &mut status, &mut headers)? {
                    return Some(outcome);
                }
                if end_stream && status.is_some() {
                    return Some(finish(status, headers, body));
                }
            }
        }
    }

    /// Decodes one header block into the response; `Some(Some(outcome))`
    /// on a decoding failure, `Some(None)` to go on.
    fn on_block(
        &mut self,
        block: &[u8],
        status: &mut Option<u16>,
        headers: &mut Vec<(String, String)>,
    ) -> Option<Option<H2Outcome>> {
        let fields = match self.decoder.decode(block) {
            Ok(f) => f,
            Err(e) => {
                self.dead = Some(format!("HPACK: {e}"));
                return Some(Some(H2Outcome::Closed(format!(
                    "HPACK decoding failed: {e}"
                ))));
            }
        };
        let mut this_status = None;
        let mut these = Vec::new();
        for (n, v) in fields {
            let n = String::from_utf8_lossy(&n).into_owned();
            let v = String::from_utf8_lossy(&v).into_owned();
            if n == ":status" {
                this_status = v.parse::<u16>().ok();
            } else {
                these.push((n, v));
            }
        }
        match this_status {
            // Interim response: forget it.
            Some(s) if (100..200).contains(&s) => {}
            Some(s) => {
                *status = Some(s);
                *headers = these;
            }
            // Trailers.
            None => headers.extend(these),
        }
        Some(None)
    }

    fn read_frame(&mut self) -> io::Result<Frame> {
        while self.buf.len() < 9 {
            self.fill()?;
        }
        let len = (usize::from(self.buf[0]) << 16)
            | (usize::from(self.buf[1]) << 8)
            | usize::from(self.buf[2]);
        while self.buf.len() < 9 + len {
            self.fill()?;
        }
        let kind = self.buf[3];
        let flags = self.buf[4];
        let stream = read_u31(&self.buf, 5);
        let payload = self.buf[9..9 + len].to_vec();
        self.buf.drain(..9 + len);
        Ok(Frame {
            kind,
            flags,
            stream,
            payload,
        })
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut tmp = [0u8; 16_384];
        match self.stream.read(&mut tmp) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            )),
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Changes the read timeout (default [`IO_TIMEOUT`]).
    pub fn set_read_timeout(&mut self, t: Duration) {
        let _ = self.stream.set_read_timeout(Some(t));
    }
}

fn finish(status: Option<u16>, headers: Vec<(String, String)>, body: Vec<u8>) -> H2Outcome {
    match status {
        Some(status) => H2Outcome::Response(Response {
            status,
            reason: String::new(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            body_bytes: body,
        }),
        None => H2Outcome::Closed("stream ended without a :status".into()),
    }
}

fn strip_padding(f: &Frame) -> Option<Vec<u8>> {
    if f.flags & PADDED == 0 {
        return Some(f.payload.clone());
    }
    let pad = usize::from(*f.payload.first()?);
    let end = f.payload.len().checked_sub(pad)?;
    Some(f.payload.get(1..end)?.to_vec())
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

fn read_u31(b: &[u8], at: usize) -> u32 {
    read_u32(b, at) & 0x7fff_ffff
}

fn frame_into(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
}

// ------------------------------------------------------------------ HPACK --

/// Appends a "literal header field without indexing, new name" (RFC 7541
/// §6.2.2) with both strings sent raw (no Huffman).
pub fn encode_literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    encode_int(out, 0x00, 7, name.len());
    out.extend_from_slice(name);
    encode_int(out, 0x00, 7, value.len());
    out.extend_from_slice(value);
}

/// An HPACK integer with an `n`-bit prefix; `first` holds the bits above it.
pub fn encode_int(out: &mut Vec<u8>, first: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

fn decode_int(b: &[u8], pos: &mut usize, n: u32) -> Result<usize, String> {
    let max = (1usize << n) - 1;
    let first = *b.get(*pos).ok_or("truncated integer")?;
    *pos += 1;
    let mut value = usize::from(first) & max;
    if value < max {
        return Ok(value);
    }
    let mut shift = 0u32;
    loop {
        let byte = *b.get(*pos).ok_or("truncated integer")?;
        *pos += 1;
        if shift > 28 {
            return Err("integer too large".into());
        }
        value += (usize::from(byte) & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
}

const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

type Field = (Vec<u8>, Vec<u8>);

/// An HPACK decoder (RFC 7541) with its dynamic table.
pub struct Decoder {
    dynamic: std::collections::VecDeque<Field>,
    size: usize,
    max_size: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            dynamic: std::collections::VecDeque::new(),
            size: 0,
            max_size: 4096,
        }
    }
}

impl Decoder {
    /// Decodes one complete header block.
    pub fn decode(&mut self, b: &[u8]) -> Result<Vec<Field>, String> {
        let mut pos = 0;
        let mut out = Vec::new();
        while pos < b.len() {
            let first = b[pos];
            if first & 0x80 != 0 {
                let i = decode_int(b, &mut pos, 7)?;
                out.push(self.entry(i)?);
            } else if first & 0x40 != 0 {
                let i = decode_int(b, &mut pos, 6)?;
                let name = if i == 0 {
                    decode_string(b, &mut pos)?
                } else {
                    self.entry(i)?.0
                };
                let value = decode_string(b, &mut pos)?;
                self.insert((name.clone(), value.clone()));
                out.push((name, value));
            } else if first & 0x20 != 0 {
                let size = decode_int(b, &mut pos, 5)?;
                if size > 4096 {
                    return Err(format!("table size update to {size} above 4096"));
                }
                self.max_size = size;
                self.evict();
            } else {
                // Without indexing (0000) or never indexed (0001).
                let i = decode_int(b, &mut pos, 4)?;
                let name = if i == 0 {
                    decode_string(b, &mut pos)?
                } else {
                    self.entry(i)?.0
                };
                let value = decode_string(b, &mut pos)?;
                out.push((name, value));
            }
        }
        Ok(out)
    }

    fn entry(&self, i: usize) -> Result<Field, String> {
        if i == 0 {
            return Err("index 0".into());
        }
        if let Some((n, v)) = STATIC_TABLE.get(i - 1) {
            return Ok((n.as_bytes().to_vec(), v.as_bytes().to_vec()));
        }
        self.dynamic
            .get(i - 1 - STATIC_TABLE.len())
            .cloned()
            .ok_or_else(|| format!("index {i} outside the tables"))
    }

    fn insert(&mut self, field: Field) {
        self.size += field.0.len() + field.1.len() + 32;
        self.dynamic.push_front(field);
        self.evict();
    }

    fn evict(&mut self) {
        while self.size > self.max_size {
            match self.dynamic.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + 32,
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }
}

fn decode_string(b: &[u8], pos: &mut usize) -> Result<Vec<u8>, String> {
    let huffman = b.get(*pos).ok_or("truncated string")? & 0x80 != 0;
    let len = decode_int(b, pos, 7)?;
    let raw = b
        .get(*pos..*pos + len)
        .ok_or("string longer than the block")?;
    *pos += len;
    if huffman {
        huffman_decode(raw)
    } else {
        Ok(raw.to_vec())
    }
}

/// Code lengths of the HPACK Huffman code (RFC 7541 Appendix B), symbols
/// 0..=256 (256 is EOS). The code is canonical, so the lengths define it.
const HUFFMAN_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, //
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, //
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, //
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, //
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, //
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, //
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, //
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, //
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, //
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, //
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, //
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, //
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, //
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, //
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, //
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, //
    30,
];

/// (length, code) -> symbol, and the code of every symbol.
struct Huffman {
    lookup: HashMap<(u8, u32), u16>,
    codes: Vec<u32>,
}

fn huffman() -> &'static Huffman {
    static TABLE: OnceLock<Huffman> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut order: Vec<u16> = (0..257).collect();
        order.sort_by_key(|&s| (HUFFMAN_LENGTHS[usize::from(s)], s));
        let mut codes = vec![0u32; 257];
        let mut lookup = HashMap::new();
        let mut code: u32 = 0;
        let mut prev_len = HUFFMAN_LENGTHS[usize::from(order[0])];
        for (i, &s) in order.iter().enumerate() {
            let len = HUFFMAN_LENGTHS[usize::from(s)];
            if i > 0 {
                code = (code + 1) << (len - prev_len);
            }
            prev_len = len;
            codes[usize::from(s)] = code;
            lookup.insert((len, code), s);
        }
        Huffman { lookup, codes }
    })
}

/// Decodes a Huffman-coded HPACK string.
pub fn huffman_decode(input: &[u8]) -> Result<Vec<u8>, String> {
    let table = huffman();
    let mut out = Vec::with_capacity(input.len() * 8 / 5);
    let mut code: u32 = 0;
    let mut len: u8 = 0;
    for byte in input {
        for bit in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> bit) & 1);
            len += 1;
            if len > 30 {
                return Err("invalid Huffman code".into());
            }
            if let Some(&sym) = table.lookup.get(&(len, code)) {
                if sym == 256 {
                    return Err("EOS in a Huffman string".into());
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
            }
        }
    }
    // Padding: fewer than 8 bits, all ones (a prefix of EOS).
    if len >= 8 || code != (1u32 << len) - 1 {
        return Err("bad Huffman padding".into());
    }
    Ok(out)
}

/// Encodes with the HPACK Huffman code (for tests of the decoder).
pub fn huffman_encode(input: &[u8]) -> Vec<u8> {
    let table = huffman();
    let mut out = Vec::new();
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in input {
        let len = u32::from(HUFFMAN_LENGTHS[usize::from(b)]);
        acc = (acc << len) | u64::from(table.codes[usize::from(b)]);
        bits += len;
        while bits >= 8 {
            out.push((acc >> (bits - 8)) as u8);
            bits -= 8;
            acc &= (1u64 << bits) - 1;
        }
    }
    if bits > 0 {
        let pad = 8 - bits;
        out.push(((acc << pad) | ((1u64 << pad) - 1)) as u8);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("{e}")))
            .collect()
    }

    #[test]
    fn huffman_codes_match_rfc_7541() {
        let t = huffman();
        for (sym, code) in [
            (0usize, 0x1ff8u32),
            (10, 0x3fff_fffc),
            (32, 0x14),
            (48, 0x0),
            (97, 0x3),
            (92, 0x7fff0),
            (127, 0xfff_fffc),
            (195, 0x7fff1),
            (255, 0x3ff_ffee),
            (256, 0x3fff_ffff),
        ] {
            assert_eq!(t.codes[sym], code, "symbol {sym}");
        }
    }

    #[test]
    fn huffman_rfc_examples() {
        // RFC 7541 C.4.1 and C.6.1.
        assert_eq!(
            huffman_decode(&hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff")).unwrap(),
            b"www.example.com"
        );
        assert_eq!(huffman_decode(&hex("6402")).unwrap(), b"302");
        assert_eq!(
            huffman_decode(&hex(
                "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff"
            ))
            .unwrap(),
            b"Mon, 21 Oct 2013 20:13:21 GMT"
        );
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(huffman_decode(&huffman_encode(&all)).unwrap(), all);
        assert!(huffman_decode(&[0x00]).is_err(), "zero padding");
    }

    #[test]
    fn decoder_rfc_c3_requests_with_dynamic_table() {
        let mut d = Decoder::default();
        let one = d
            .decode(&hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"))
            .unwrap();
        assert_eq!(
            one[3],
            (b":authority".to_vec(), b"www.example.com".to_vec())
        );
        let two = d
            .decode(&hex("8286 84be 5808 6e6f 2d63 6163 6865"))
            .unwrap();
        assert_eq!(
            two[3],
            (b":authority".to_vec(), b"www.example.com".to_vec())
        );
        assert_eq!(two[4], (b"cache-control".to_vec(), b"no-cache".to_vec()));
        let three = d
            .decode(&hex(
                "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
            ))
            .unwrap();
        assert_eq!(
            three[3],
            (b":authority".to_vec(), b"www.example.com".to_vec())
        );
        assert_eq!(three[4], (b"custom-key".to_vec(), b"custom-value".to_vec()));
    }

    #[test]
    fn integers_round_trip() {
        for (n, v) in [(5u32, 10usize), (5, 1337), (7, 127), (4, 15), (6, 1 << 20)] {
            let mut out = Vec::new();
            encode_int(&mut out, 0, n, v);
            let mut pos = 0;
            assert_eq!(decode_int(&out, &mut pos, n).unwrap(), v);
            assert_eq!(pos, out.len());
        }
        let mut out = Vec::new();
        encode_int(&mut out, 0, 5, 1337);
        assert_eq!(out, [31, 154, 10], "RFC 7541 C.1.2");
    }
}
