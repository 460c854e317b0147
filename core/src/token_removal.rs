//! Taking tokens out of a request before it goes upstream, so that a token
//! never reaches the upstream or its access logs unless a provider says
//! `forward`: the headers that carry it are removed, the query parameters
//! that carry it are dropped from `:path`, the cookies that carry it from
//! `cookie`. Everything else keeps its order and spelling.

use crate::extract::{self, Found, TokenSource};
use crate::identity;
use crate::request::Request;

/// What to take out.
#[derive(Debug, Clone, Copy)]
pub enum Carried<'t> {
    /// This token, wherever it came in (the same token may arrive twice).
    Found(&'t Found<'t>),
    /// Any value a source carries (a bypassed route reads no token, but
    /// passes none on either).
    Any,
}

impl Carried<'_> {
    fn matches(self, value: &str) -> bool {
        match self {
            Carried::Found(found) => same_text(value, found.token),
            Carried::Any => true,
        }
    }

    /// Whether `source` is where the token was read: a header source that
    /// found it carries it, with no need to read the header again.
    fn read_from(self, source: &TokenSource) -> bool {
        matches!(self, Carried::Found(found) if std::ptr::eq(found.source, source))
    }
}

/// `a == b`, settled without reading the text when both are the same slice
/// (the header the token was taken from).
fn same_text(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || a == b
}

/// The header writes that take `carried` out of `request`, for the places
/// `sources` read, handed to `out`: `(name, None)` removes the header,
/// `(name, Some(value))` writes it (`:path` without the parameters,
/// `cookie` without the cookies). Handed over rather than collected, so
/// taking out a token header allocates nothing here.
pub fn writes<'a>(
    sources: &'a [TokenSource],
    carried: Carried<'_>,
    request: &Request<'_>,
    mut out: impl FnMut(&'a str, Option<String>),
) {
    let mut params = Vec::new();
    let mut cookies = Vec::new();
    for source in sources {
        match source {
            TokenSource::Header { name, prefix } => {
                let carries = carried.read_from(source)
                    || request.headers.iter().any(|(n, v)| {
                        *n == name
                            && std::str::from_utf8(v)
                                .ok()
                                .and_then(|v| extract::strip_prefix(v, prefix.as_deref()))
                                .is_some_and(|v| carried.matches(v))
                    });
                if carries {
                    out(name.as_str(), None);
                }
            }
            TokenSource::Param(name) => params.push(name.as_str()),
            TokenSource::Cookie(name) => cookies.push(name.as_str()),
        }
    }
    if !params.is_empty() {
        if let Some(path) = path_without(request.path, &params, carried) {
            out(":path", Some(path));
        }
    }
    if !cookies.is_empty() {
        if let Some(cookie) = cookies_without(request, &cookies, carried) {
            out("cookie", cookie);
        }
    }
}

/// `path` without the query parameters named in `names` that carry
/// `carried`; `None` when there is none.
fn path_without(path: &str, names: &[&str], carried: Carried<'_>) -> Option<String> {
    // Envoy never hands over such a path. Other callers get it unchanged:
    // unlike a cookie header, `:path` cannot be dropped, and Envoy would
    // refuse the written value anyway.
    if !identity::header_safe(path) {
        return None;
    }
    let (base, rest) = path.split_once('?')?;
    let (query, fragment) = match rest.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (rest, None),
    };
    let (dropped, kept): (Vec<&str>, Vec<&str>) = query.split('&').partition(|pair| {
        let (k, v) = extract::query_pair(pair);
        names.contains(&k) && carried.matches(v)
    });
    if dropped.is_empty() {
        return None;
    }
    let mut out = base.to_string();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    Some(out)
}

/// The cookies of the request without those named in `names` that carry
/// `carried`: `Some(Some(rest))`, or `Some(None)` when nothing else is
/// left; `None` when no cookie carries it.
fn cookies_without(
    request: &Request<'_>,
    names: &[&str],
    carried: Carried<'_>,
) -> Option<Option<String>> {
    let mut kept = Vec::new();
    let mut dropped = false;
    for (_, value) in request.headers.iter().filter(|(n, _)| *n == "cookie") {
        // A cookie header that is not UTF-8 already refused the request
        // (or, on a bypassed route, is passed on untouched).
        let value = std::str::from_utf8(value).ok()?;
        for pair in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let carries = extract::cookie_pair(pair)
                .is_some_and(|(k, v)| names.contains(&k) && carried.matches(v));
            if carries {
                dropped = true;
            } else {
                kept.push(pair);
            }
        }
    }
    // What cannot be written back (see `path_without`) goes entirely.
    let rest = kept.join("; ");
    dropped.then(|| (!kept.is_empty() && identity::header_safe(&rest)).then_some(rest))
}
