//! A request as the decision sees it: method, `:path` and the headers, as
//! the proxy hands them over.

/// What the decision needs of a request. Header names are lowercase (as
/// Envoy hands them over); values are raw bytes because a client may send
/// anything.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The `:path` pseudo-header: path plus query string.
    pub path: &'a str,
    pub headers: &'a [Header<'a>],
}

impl<'a> Request<'a> {
    /// A request from its headers as the proxy hands them over: method and
    /// path are the `:method` and `:path` pseudo-headers (empty when absent
    /// or not UTF-8).
    pub fn from_headers(headers: &'a [Header<'a>]) -> Self {
        Request {
            method: pseudo(headers, ":method"),
            path: pseudo(headers, ":path"),
            headers,
        }
    }
}

fn pseudo<'h>(headers: &[Header<'h>], name: &str) -> &'h str {
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .unwrap_or("")
}

/// One request header as the proxy hands it over: the name, and the value
/// as raw bytes (a value may hold any byte). Borrowed, so reading a
/// request's headers costs no allocation per header.
pub type Header<'a> = (&'a str, &'a [u8]);

/// Borrows owned headers as [`Header`]s (for callers that build them).
pub fn header_refs(owned: &[(String, Vec<u8>)]) -> Vec<Header<'_>> {
    owned
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_and_path_come_from_the_pseudo_headers() {
        let headers: Vec<Header<'_>> = vec![
            (":path", b"/a?b=1"),
            (":method", b"GET"),
            ("x-path", b"/other"),
        ];
        let r = Request::from_headers(&headers);
        assert_eq!((r.method, r.path, r.headers.len()), ("GET", "/a?b=1", 3));
        let odd: Vec<Header<'_>> = vec![(":path", b"/\xff")];
        let r = Request::from_headers(&odd);
        assert_eq!((r.method, r.path), ("", ""));
    }
}
