//! `feed --port P --entries N`: a static revocation feed for the
//! revocation-scale benchmark.
//!
//! - `GET /v1/revocations` (no `since`, or a cursor it does not know): a
//!   `reset: true` snapshot holding the N generated jtis (32 hex characters
//!   each, like a UUID without dashes) plus everything revoked since.
//! - With `paged=1` (a filter that accepts pages), the snapshot comes in
//!   pages of `--page-entries` jtis (default 50,000, about 3 MB): `more:
//!   true` and a continuation cursor `e1-V~K` (the snapshot at version V,
//!   from entry K) until the last page, whose cursor is `e1-V`. Without it
//!   the snapshot is one body, which Envoy's HTTP client drops above about
//!   32 MiB (some 500,000 jtis).
//! - `GET /v1/revocations?since=e1-V`: the jtis revoked after version V.
//! - `POST /admin/revoke?jti=X[&count=N]`: revokes one more jti (URL-safe
//!   characters only), or N of them (`X-0` ... `X-<N-1>`, one delta);
//!   answers the new cursor.
//! - `GET /admin/stats`: `{"polls", "resets", "pages", "version", "entries",
//!   "snapshot_bytes"}` (pages: continuation pages served; snapshot_bytes:
//!   the size of a whole reset body, about).
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
    /// Byte offset in `base` where each entry starts, plus the end.
    offsets: Vec<usize>,
    page_entries: usize,
    pages: u64,
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

    /// Entries `from..to` of the snapshot (generated ones, then added ones),
    /// comma-joined.
    fn entries(&self, from: usize, to: usize, out: &mut Vec<u8>) {
        let n = self.base_count;
        let (b0, b1) = (from.min(n), to.min(n));
        if b0 < b1 {
            // Each entry but the last is followed by its comma.
            let end = if b1 == n {
                self.offsets[n]
            } else {
                self.offsets[b1] - 1
            };
            out.extend_from_slice(&self.base[self.offsets[b0]..end]);
        }
        let (a0, a1) = (from.max(n) - n, to.max(n) - n);
        if a0 < a1 {
            if b0 < b1 {
                out.push(b',');
            }
            out.extend_from_slice(self.added[a0..a1].join(",").as_bytes());
        }
    }

    /// One page of the snapshot at `version` from entry `from`.
    fn page(&mut self, version: usize, from: usize) -> Vec<u8> {
        let total = self.base_count + version - 1;
        let to = (from + self.page_entries).min(total);
        let more = to < total;
        let cursor = if more {
            format!("{EPOCH}-{version}~{to}")
        } else {
            format!("{EPOCH}-{version}")
        };
        if from == 0 {
            self.resets += 1;
        } else {
            self.pages += 1;
        }
        let mut body = Vec::with_capacity(64 * (to - from) + 128);
        body.extend_from_slice(
            format!(
                "{{\"cursor\":\"{cursor}\",\"reset\":{},\"revoked\":[",
                from == 0
            )
            .as_bytes(),
        );
        self.entries(from, to, &mut body);
        body.extend_from_slice(b"],\"revoked_subjects\":[]");
        if more {
            body.extend_from_slice(b",\"more\":true");
        }
        body.push(b'}');
        body
    }

    fn poll_paged(&mut self, since: Option<&str>) -> Vec<u8> {
        let version = self.version();
        let continued = since
            .and_then(|c| c.strip_prefix(EPOCH)?.strip_prefix('-')?.split_once('~'))
            .and_then(|(v, k)| Some((v.parse::<usize>().ok()?, k.parse::<usize>().ok()?)))
            .filter(|(v, k)| (1..=version).contains(v) && *k < self.base_count + v - 1);
        match continued {
            Some((v, k)) => {
                self.polls += 1;
                self.page(v, k)
            }
            None if self.known(since).is_some() => self.poll(since),
            None => {
                self.polls += 1;
                self.page(version, 0)
            }
        }
    }

    /// The version of a delta cursor this feed can continue.
    fn known(&self, since: Option<&str>) -> Option<usize> {
        since
            .and_then(|c| {
                c.strip_prefix(EPOCH)?
                    .strip_prefix('-')?
                    .parse::<usize>()
                    .ok()
            })
            .filter(|v| (1..=self.version()).contains(v))
    }

    fn poll(&mut self, since: Option<&str>) -> Vec<u8> {
        self.polls += 1;
        let version = self.version();
        let known = self.known(since);
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

/// The entries comma-joined, and where each one starts (plus the end).
fn generate(count: usize, exp: u64) -> (Bytes, Vec<usize>) {
    let mut out = String::with_capacity(count * 62);
    let mut offsets = Vec::with_capacity(count + 1);
    for i in 0..count as u64 {
        if i > 0 {
            out.push(',');
        }
        offsets.push(out.len());
        let jti = format!("{:016x}{:016x}", mix(2 * i), mix(2 * i + 1));
        out.push_str(&entry(&jti, exp));
    }
    offsets.push(out.len());
    (Bytes::from(out), offsets)
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
    let page_entries: usize = match crate::flag(args, "--page-entries") {
        Some(_) => crate::flag_num(args, "--page-entries")?,
        None => 50_000,
    };
    if page_entries == 0 {
        return Err("--page-entries must be at least 1".into());
    }
    let exp = crate::unix_now() + 2 * 86_400;
    let (base, offsets) = generate(entries, exp);
    let feed = Rc::new(RefCell::new(Feed {
        base,
        base_count: entries,
        offsets,
        page_entries,
        pages: 0,
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
            let since = query(req, "since");
            let body = if query(req, "paged") == Some("1") {
                feed.borrow_mut().poll_paged(since)
            } else {
                feed.borrow_mut().poll(since)
            };
            respond(200, &json, body)
        }
        (&Method::POST, "/admin/revoke") => match query(req, "jti").filter(|j| !j.is_empty()) {
            Some(jti) => {
                let mut f = feed.borrow_mut();
                // `count=N` revokes N jtis at once (`<jti>-0` ...), which
                // the next poll brings as one delta.
                match query(req, "count").and_then(|c| c.parse::<usize>().ok()) {
                    Some(count) if count > 1 => {
                        for i in 0..count {
                            let line = entry(&format!("{jti}-{i}"), f.exp);
                            f.added.push(line);
                        }
                    }
                    _ => {
                        let line = entry(jti, f.exp);
                        f.added.push(line);
                    }
                }
                let body = format!("{{\"cursor\":\"{EPOCH}-{}\"}}\n", f.version());
                respond(200, &json, body)
            }
            None => respond(400, &json, "{\"error\":\"jti required\"}\n"),
        },
        (&Method::GET, "/admin/stats") => {
            let f = feed.borrow();
            let body = format!(
                "{{\"polls\":{},\"resets\":{},\"pages\":{},\"version\":{},\"entries\":{},\"snapshot_bytes\":{}}}\n",
                f.polls,
                f.resets,
                f.pages,
                f.version(),
                f.base_count + f.added.len(),
                f.base.len() + 64
            );
            respond(200, &json, Bytes::from(body))
        }
        _ => respond(404, &json, "{\"error\":\"not found\"}\n"),
    }
}
