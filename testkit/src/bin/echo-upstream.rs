//! `echo-upstream --port N`: the test echo server, for `make run`. Answers
//! every request with 200 and JSON `{"method", "path", "headers", "body"}`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut port: u16 = 8081;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => match args.next().and_then(|p| p.parse().ok()) {
                Some(p) => port = p,
                None => {
                    eprintln!("--port needs a number");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("usage: echo-upstream [--port N]   (default 8081, binds 127.0.0.1)");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}; try --help");
                return ExitCode::from(2);
            }
        }
    }
    let server = testkit::EchoUpstream::start_on(port);
    eprintln!("echo-upstream listening on 127.0.0.1:{}", server.port());
    loop {
        std::thread::park();
    }
}
