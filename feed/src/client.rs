//! A small HTTP/1.1 client (plain http only) for the `revoke` command, the
//! tests and the benchmark. TLS is left out on purpose: the admin API is meant
//! to be reached inside the cluster or through a sidecar that terminates TLS,
//! and a TLS stack would double the build.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use revocation_protocol::{AdminRequest, AdminResponse, ErrorBody, REVOCATIONS_PATH};
use std::time::Duration;

/// A pooled keep-alive client.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl HttpResponse {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A client with keep-alive and a 5 s connect timeout.
    pub fn new() -> HttpClient {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        HttpClient {
            inner: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// Sends one request and reads the whole answer.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<HttpResponse, String> {
        let mut builder = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let req = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| format!("bad request for {url}: {e}"))?;
        let resp = self
            .inner
            .request(req)
            .await
            .map_err(|e| format!("request to {url} failed: {}", chain(&e)))?;
        let status = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("reading the answer from {url} failed: {e}"))?
            .to_bytes();
        Ok(HttpResponse {
            status,
            headers: parts.headers,
            body,
        })
    }
}

/// An error with its causes, since hyper's outer errors ("client error
/// (Connect)") do not say what went wrong.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

/// The admin endpoint for a server base URL (`http://host:port` or with a
/// path prefix); a URL that already ends with the endpoint path is kept.
pub fn admin_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with(REVOCATIONS_PATH) {
        base.to_string()
    } else {
        format!("{base}{REVOCATIONS_PATH}")
    }
}

/// Posts `request` to the admin API.
pub async fn revoke(
    client: &HttpClient,
    base_url: &str,
    admin_token: &str,
    request: &AdminRequest,
) -> Result<AdminResponse, String> {
    let url = admin_url(base_url);
    if !url.starts_with("http://") {
        return Err(format!("{url}: only http:// URLs are supported"));
    }
    let auth = format!("Bearer {admin_token}");
    let resp = client
        .request(
            Method::POST,
            &url,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(request.to_json()),
        )
        .await?;
    if (200..300).contains(&resp.status) {
        return serde_json::from_slice(&resp.body)
            .map_err(|e| format!("unexpected answer from {url}: {e}"));
    }
    let detail = serde_json::from_slice::<ErrorBody>(&resp.body)
        .map(|b| b.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(&resp.body).into_owned());
    Err(format!("{url} answered {}: {detail}", resp.status))
}
