//! `ext-authz --config FILE --port P`: an Envoy `ext_authz` HTTP service that
//! runs this project's own decision code (`Policy::from_json` + `decide`),
//! i.e. the architecture the filter replaces: one extra hop per request.
//!
//! Envoy forwards the original method, path and headers (the `authorization`
//! header is always included). Allowed: 200 with the identity headers (Envoy
//! copies those listed in `allowed_upstream_headers` to the upstream request)
//! and `x-envoy-auth-headers-to-remove` for the headers the filter would
//! remove. Denied: the filter's own status, `www-authenticate` and JSON body.

use std::rc::Rc;

use hyper::body::Incoming;
use hyper::Request;
use jwt_auth_core::config::Policy;
use jwt_auth_core::decision::{self, Decision, Env};
use jwt_auth_core::request::{self, header_refs};

use crate::serve::{respond, serve, Body};

pub fn run(args: &[String]) -> Result<(), String> {
    let file = crate::flag(args, "--config").ok_or("--config FILE is required")?;
    let port: u16 = crate::flag_num(args, "--port")?;
    let bytes = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
    let policy = Rc::new(Policy::from_json(&bytes).map_err(|e| e.to_string())?);
    serve(port, move |req| {
        let policy = Rc::clone(&policy);
        async move { check(&policy, &req) }
    })
}

fn check(policy: &Policy, req: &Request<Incoming>) -> hyper::Response<Body> {
    let headers: Vec<(String, Vec<u8>)> = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let request = request::Request {
        method: req.method().as_str(),
        path: req.uri().path_and_query().map_or("/", |p| p.as_str()),
        headers: &header_refs(&headers),
    };
    // No revocation, no remote keys, no accelerator, no cache: the core as a
    // plain native service would run it.
    let env = Env::basic(crate::unix_now());
    match decision::decide(policy, &request, &env) {
        Decision::Allow(allow) => {
            let remove = allow.remove_headers.join(",");
            let mut out: Vec<(&str, &str)> = allow.set_headers().collect();
            if !remove.is_empty() {
                out.push(("x-envoy-auth-headers-to-remove", &remove));
            }
            respond(200, &out, bytes::Bytes::new())
        }
        Decision::Deny(deny) => {
            let headers = deny.headers();
            let out: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            respond(deny.status(), &out, deny.body())
        }
        Decision::Reply(reply) => {
            let out: Vec<(&str, &str)> = reply
                .headers
                .iter()
                .map(|(n, v)| (*n, v.as_str()))
                .collect();
            respond(reply.status, &out, reply.body.unwrap_or_default())
        }
    }
}
