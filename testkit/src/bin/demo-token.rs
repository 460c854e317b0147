//! `demo-token [--sub S] [--provider P] [--exp-in SECONDS] [--jti ID]`: prints
//! an HS256 token signed with the demo secret of `envoy.yaml` (iss
//! https://auth.example.com, aud api, type access).

use std::process::ExitCode;

use testkit::jwt::{demo_token, DemoClaims};

const USAGE: &str = "usage: demo-token [--sub SUB] [--provider NAME] [--exp-in SECONDS] [--jti ID]
defaults: --sub demo-user --provider demo --exp-in 3600, a random jti";

fn main() -> ExitCode {
    let mut opts = DemoClaims::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        let Some(value) = inline.or_else(|| args.next()) else {
            eprintln!("{flag} needs a value\n{USAGE}");
            return ExitCode::from(2);
        };
        match flag.as_str() {
            "--sub" => opts.sub = value,
            "--provider" => opts.provider = value,
            "--jti" => opts.jti = Some(value),
            "--exp-in" => match value.parse() {
                Ok(n) => opts.exp_in = n,
                Err(_) => {
                    eprintln!("--exp-in needs a whole number of seconds, got {value:?}");
                    return ExitCode::from(2);
                }
            },
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    println!("{}", demo_token(&opts));
    ExitCode::SUCCESS
}
