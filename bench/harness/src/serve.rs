//! A minimal single-threaded HTTP/1.1 server (tokio current_thread + hyper 1):
//! keep-alive connections, TCP_NODELAY, one task per connection on a LocalSet
//! so handlers can share `Rc` state without locks.

use std::convert::Infallible;
use std::future::Future;
use std::io::Write;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

pub type Body = Full<Bytes>;

/// Binds 127.0.0.1:`port` (0 = any free port), prints `listening PORT` on
/// stdout and serves forever.
pub fn serve<F, Fut>(port: u16, handler: F) -> Result<(), String>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + 'static,
    Fut: Future<Output = Response<Body>> + 'static,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| format!("bind 127.0.0.1:{port}: {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "listening {}", bound.port());
        let _ = stdout.flush();
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let handler = handler.clone();
            tokio::task::spawn_local(async move {
                let svc = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}

/// A response with a status, headers and a body; a header that is not valid
/// HTTP turns the answer into a 500 instead of a panic.
pub fn respond(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Response<Body> {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(body.into())).unwrap_or_else(|e| {
        let mut r = Response::new(Full::new(Bytes::from(format!("bad response: {e}\n"))));
        *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}
