//! Real gRPC parts for the end-to-end tests, made with grpcio from `.venv`
//! (`make grpcio`): a client that makes one unary call, and a server that
//! answers with the metadata it received. Without grpcio they panic, so a
//! test that needs them fails.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::workspace_root;

/// A unary call to `/demo.Echo/Say` with an `authorization` and an
/// `x-user-id` of the client's own when given. Prints `OK` and the reply,
/// or the status code name, the details and the `www-authenticate` the
/// client received.
const CLIENT: &str = r#"
import sys, grpc
port, auth, forged = sys.argv[1], sys.argv[2], sys.argv[3]
channel = grpc.insecure_channel("127.0.0.1:" + port)
say = channel.unary_unary("/demo.Echo/Say",
    request_serializer=lambda b: b, response_deserializer=lambda b: b)
metadata = [("authorization", auth)] if auth else []
if forged:
    metadata.append(("x-user-id", forged))
try:
    reply = say(b"", timeout=10, metadata=metadata)
    print("OK")
    print(reply.decode())
except grpc.RpcError as e:
    www = dict(e.trailing_metadata() or ()).get("www-authenticate", "")
    print(e.code().name)
    print(e.details())
    print(www)
"#;

/// A server for `/demo.Echo/Say` that answers with the `x-user-id` and the
/// number of `authorization` values it received. Prints its port, and stops
/// when its standard input closes.
const SERVER: &str = r#"
import sys, grpc
from concurrent import futures
def say(request, context):
    md = context.invocation_metadata()
    users = [v for k, v in md if k == "x-user-id"]
    tokens = [v for k, v in md if k == "authorization"]
    return ("x-user-id=%s authorization=%d" % (",".join(users), len(tokens))).encode()
handler = grpc.method_handlers_generic_handler(
    "demo.Echo", {"Say": grpc.unary_unary_rpc_method_handler(say)})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((handler,))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
sys.stdin.read()
server.stop(0)
"#;

fn python() -> PathBuf {
    workspace_root().join(".venv/bin/python")
}

/// One call through the proxy on `port` (see [`CLIENT`]); the lines it
/// printed. `authorization` and `forged_user` are left out when empty.
pub fn call(port: u16, authorization: &str, forged_user: &str) -> Vec<String> {
    let out = Command::new(python())
        .args(["-c", CLIENT, &port.to_string(), authorization, forged_user])
        .output()
        .unwrap_or_else(|e| panic!("{} ({e}): run `make grpcio`", python().display()));
    assert!(
        out.status.success(),
        "grpcio client failed (run `make grpcio`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A running gRPC server (see [`SERVER`]) on a free loopback port;
/// stopped on drop.
pub struct GrpcServer {
    child: Child,
    port: u16,
}

impl GrpcServer {
    pub fn start() -> GrpcServer {
        let mut child = Command::new(python())
            .args(["-c", SERVER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{} ({e}): run `make grpcio`", python().display()));
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        let Ok(port) = line.trim().parse() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("grpcio server did not start (run `make grpcio`): {line:?}");
        };
        GrpcServer { child, port }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
