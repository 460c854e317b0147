//! Self-tests of the harness: the echo upstream and client alone, and a real
//! Envoy without the jwt-auth filter (so they pass whatever state src/ is in).

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;
use testkit::*;

#[test]
fn echo_upstream_reports_headers_in_order_with_duplicates() {
    let up = EchoUpstream::start();
    let resp = request(
        up.port(),
        "GET",
        "/a/b?c=d",
        &[("X-Dup", "one"), ("x-dup", "two"), ("X-Other", "v")],
    );
    let echo = resp.echo();
    assert_eq!(echo.method, "GET");
    assert_eq!(echo.path, "/a/b?c=d");
    assert_eq!(echo.header("x-dup"), vec!["one", "two"]);
    assert_eq!(echo.header("X-OTHER"), vec!["v"]);
    assert!(!echo.has_header("missing"));
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let seen = up.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("X-DUP"), vec!["one", "two"]);
    assert!(up.saw_path_prefix("/a/"));
    assert_eq!(up.requests_matching("c=d").len(), 1);
}

#[test]
fn echo_upstream_keep_alive_and_bodies() {
    let up = EchoUpstream::start();
    let mut conn = Connection::open(up.port());
    let r1 = conn.send("POST", "/one", &[], b"hello");
    assert_eq!(r1.echo().body, "hello");
    let r2 = conn.send("GET", "/two", &[], b"");
    assert_eq!(r2.echo().path, "/two");
    // Chunked request body.
    let r3 = conn.send_raw(
        b"POST /three HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        false,
    );
    assert_eq!(r3.echo().body, "abcde");
    assert_eq!(up.request_count(), 3);
    up.clear();
    assert_eq!(up.request_count(), 0);
}

#[test]
fn raw_request_and_exchange() {
    let up = EchoUpstream::start();
    let resp = raw_request(
        up.port(),
        b"GET /raw HTTP/1.1\r\nHost: x\r\nX-Odd:   spaced value  \r\nConnection: close\r\n\r\n",
    );
    assert_eq!(resp.echo().header("x-odd"), vec!["spaced value"]);
    let bytes = raw_exchange(up.port(), b"GET /r HTTP/1.0\r\n\r\n");
    assert!(bytes.starts_with(b"HTTP/1.1 200"), "{bytes:?}");
}

#[test]
fn http_server_custom_handler() {
    let server = HttpServer::start(|req| {
        if req.path == "/jwks" {
            Reply::json(200, &jwks([Key::p256().jwk(Some("ES256"))]))
        } else {
            Reply::new(404, "text/plain", "nope").header("x-why", "missing")
        }
    });
    let ok = request(server.port(), "GET", "/jwks", &[]);
    assert_eq!(ok.json()["keys"][0]["kid"], json!("ec-p256"));
    let nf = request(server.port(), "GET", "/other", &[]);
    assert_eq!(nf.status, 404);
    assert_eq!(nf.body, "nope");
    assert_eq!(nf.header("X-WHY"), Some("missing"));
}

#[test]
fn free_port_is_bindable() {
    let p = free_port();
    assert_ne!(p, 0);
    std::net::TcpListener::bind(("127.0.0.1", p)).expect("free port binds");
}

/// Envoy without the wasm filter: routing, duplicates, direct responses,
/// admin, stats, logs, extra clusters, keep-alive.
#[test]
fn envoy_without_wasm_routes_to_echo() {
    let side = EchoUpstream::start();
    let envoy = Envoy::builder()
        .without_wasm()
        .concurrency(2)
        .cluster("side_feed", side.port())
        .direct_response("/direct", 418, "teapot")
        .start();
    let resp = envoy.get(
        "/hello//there?q=1",
        &[("X-Dup", "a"), ("X-Dup", "b"), ("x-user-id", "client")],
    );
    let echo = resp.echo();
    // merge_slashes applies.
    assert_eq!(echo.path, "/hello/there?q=1");
    assert_eq!(echo.header("x-dup"), vec!["a", "b"]);
    // Without the filter Envoy passes it through: the e2e tests assert the
    // filter removes it.
    assert_eq!(echo.header("x-user-id"), vec!["client"]);
    assert_eq!(envoy.upstream().requests_matching("q=1").len(), 1);

    let direct = envoy.get("/direct/x", &[]);
    assert_eq!(direct.status, 418);
    assert_eq!(direct.body, "teapot");
    assert_eq!(envoy.upstream().requests_matching("/direct").len(), 0);

    // Normalization: dot segments resolved, escaped slashes rejected.
    let dots = envoy.get("/a/../b/./c", &[]);
    assert_eq!(dots.echo().path, "/b/c");
    let escaped = envoy.get("/healthz%2F..%2Fsecret", &[]);
    assert_eq!(escaped.status, 400, "{escaped:?}");
    assert!(!envoy.upstream().saw_path_prefix("/healthz"));

    // Keep-alive through Envoy.
    let mut conn = Connection::open(envoy.port());
    for i in 0..3 {
        let r = conn.send("GET", &format!("/ka/{i}"), &[], b"");
        assert_eq!(r.echo().path, format!("/ka/{i}"));
    }

    assert!(envoy.stats().contains("cluster.side_feed."));
    assert!(
        envoy
            .stat("cluster.upstream.upstream_rq_total")
            .unwrap_or(0)
            >= 4
    );
    assert!(envoy.admin_get("/clusters").contains("side_feed::"));
    assert!(
        envoy.wait_for_log("starting main dispatch loop", Duration::from_secs(5)),
        "log lacks the dispatch loop line"
    );
    let cfg = std::fs::read_to_string(envoy.config_path()).expect("config");
    assert!(cfg.contains("\"normalize_path\": true"));
}

#[test]
fn envoy_refuses_broken_wasm_and_try_start_reports_log() {
    let dir = std::env::temp_dir().join(format!("testkit-broken-{}", random_id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let bad = dir.join("broken.wasm");
    std::fs::File::create(&bad)
        .and_then(|mut f| f.write_all(b"\0asm this is not a wasm module"))
        .expect("write");
    let err = match Envoy::builder().wasm_path(&bad).concurrency(1).try_start() {
        Ok(_) => panic!("Envoy accepted a broken wasm module"),
        Err(log) => log,
    };
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        err.to_lowercase().contains("wasm"),
        "log does not name wasm:\n{err}"
    );
}

#[test]
fn envoy_is_killed_on_drop() {
    let envoy = Envoy::builder().without_wasm().concurrency(1).start();
    let port = envoy.port();
    let pid = envoy.pid();
    drop(envoy);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "listener still open"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true),
        "envoy {pid} still running"
    );
}
