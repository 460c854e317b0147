//! `feed --port P --entries N`: a static revocation feed for the
//! revocation-scale benchmark (feed protocol of issue 3).
//!
//! - `GET /v1/revocations` (no `since`, or a cursor it does not know): a
//!   `reset: true` snapshot holding the N generated jtis (32 hex characters
//!   each, like a UUID without dashes) plus everything revoked since.
//! - `GET /v1/revocations?since=e1-V`: the jtis revoked after version V.
//! - `POST /admin/revoke?jti=X`: revokes one more jti (URL-safe characters
//!   only); answers the new cursor.
//! - `GET /admin/stats`: `{"polls", "resets", "version", "entries",
//!   "snapshot_bytes"}` (the size of a reset body, about).
//!
//! The snapshot body is generated once at start, so a poll costs a copy.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request};

use crate::serve::{respond, serve, Body};

const EPOCH: &str = "e1";

struct Feed {
    /// The generated entries, comma-joined JSON objects.
    base: Bytes,
    base_count: usize,
    /// Entries revoked through the admin endpoint; version = 1 + len.
    added: Vec<String>,
    exp: u64,
    polls: u64,
    resets: u64,
}

impl Feed {
    fn version(&self) -> usize {
        1 + self.added.len()
    }

    fn poll(&mut self, since: Option<&str>) -> Vec<u8> {
        self.polls += 1;
        let version = self.version();
        let known = since
            .and_then(|c| {
                c.strip_prefix(EPOCH)?
                    .strip_prefix('-')?
                    .parse::<usize>()
                    .ok()
            })
            .filter(|v| (1..=version).contains(v));
        let mut body = Vec::new();
        match known {
            Some(v) => {
                body.extend_from_slice(
                    format!("{{\"cursor\":\"{EPOCH}-{version}\",\"reset\":false,\"revoked\":[")
                        .as_bytes(),
                );
                body.extend_from_slice(self.added[v - 1..].join(",").as_bytes());
            }
            None => {
                self.resets += 1;
                body.reserve(self.base.len() + 128 + 64 * self.added.len());
                body.extend_from_slice(
                    format!("{{\"cursor\":\"{EPOCH}-{version}\",\"reset\":true,\"revoked\":[")
                        .as_bytes(),
                );
                body.extend_from_slice(&self.base);
                if !self.base.is_empty() && !self.added.is_empty() {
                    body.push(b',');
                }
                body.extend_from_slice(self.added.join(",").as_bytes());
            }
        }
        body.extend_from_slice(b"],\"revoked_subjects\":[]}");
        body
    }
}

/// A deterministic, well-spread 64-bit value (splitmix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn entry(jti: &str, exp: u64) -> String {
    format!("{{\"jti\":\"{jti}\",\"exp\":{exp}}}")
}

fn generate(count: usize, exp: u64) -> Bytes {
    let mut out = String::with_capacity(count * 62);
    for i in 0..count as u64 {
        if i > 0 {
            out.push(',');
        }
        let jti = format!("{:016x}{:016x}", mix(2 * i), mix(2 * i + 1));
        out.push_str(&entry(&jti, exp));
    }
    Bytes::from(out)
}

fn query<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })
}

pub fn run(args: &[String]) -> Result<(), String> {
    let port: u16 = crate::flag_num(args, "--port")?;
    let entries: usize = crate::flag_num(args, "--entries")?;
    let exp = crate::unix_now() + 2 * 86_400;
    let feed = Rc::new(RefCell::new(Feed {
        base: generate(entries, exp),
        base_count: entries,
        added: Vec::new(),
        exp,
        polls: 0,
        resets: 0,
    }));
    serve(port, move |req| {
        let feed = Rc::clone(&feed);
        async move { handle(&feed, &req) }
    })
}

fn handle(feed: &RefCell<Feed>, req: &Request<Incoming>) -> hyper::Response<Body> {
    let json = [("content-type", "application/json")];
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/v1/revocations") => {
            let body = feed.borrow_mut().poll(query(req, "since"));
            respond(200, &json, body)
        }
        (&Method::POST, "/admin/revoke") => match query(req, "jti").filter(|j| !j.is_empty()) {
            Some(jti) => {
                let mut f = feed.borrow_mut();
                let line = entry(jti, f.exp);
                f.added.push(line);
                let body = format!("{{\"cursor\":\"{EPOCH}-{}\"}}\n", f.version());
                respond(200, &json, body)
            }
            None => respond(400, &json, "{\"error\":\"jti required\"}\n"),
        },
        (&Method::GET, "/admin/stats") => {
            let f = feed.borrow();
            let body = format!(
                "{{\"polls\":{},\"resets\":{},\"version\":{},\"entries\":{},\"snapshot_bytes\":{}}}\n",
                f.polls,
                f.resets,
                f.version(),
                f.base_count + f.added.len(),
                f.base.len() + 64
            );
            respond(200, &json, Bytes::from(body))
        }
        _ => respond(404, &json, "{\"error\":\"not found\"}\n"),
    }
}
