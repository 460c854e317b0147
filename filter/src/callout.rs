//! HTTP calls from a root context (revocation feed, JWKS): starting one and
//! reading its answer without ever aborting the VM on odd bytes.

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, Status};

pub fn dispatch(
    cluster: &str,
    headers: &[(String, String)],
    timeout_ms: u64,
) -> Result<u32, Status> {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    hostcalls::dispatch_http_call(
        cluster,
        headers,
        None,
        Vec::new(),
        Duration::from_millis(timeout_ms),
    )
}

/// A callout's answer. `status` is `None` when the call failed without one
/// (connection refused, reset).
pub struct Answer {
    pub status: Option<u16>,
    headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// Reads the answer; a body over `max_body` is not copied into the VM
    /// and `Err(size)` is returned.
    pub fn read(num_headers: usize, body_size: usize, max_body: usize) -> Result<Answer, usize> {
        let headers = if num_headers == 0 {
            Vec::new()
        } else {
            hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders).unwrap_or_default()
        };
        let mut answer = Answer {
            status: None,
            headers,
            body: Vec::new(),
        };
        answer.status = answer.header(":status").and_then(|s| s.parse().ok());
        if body_size > max_body {
            return Err(body_size);
        }
        if body_size > 0 {
            answer.body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
                .ok()
                .flatten()
                .unwrap_or_default();
        }
        Ok(answer)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}
