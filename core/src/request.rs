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
