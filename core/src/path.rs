//! The path rules decide on: `:path` as a backend will serve it.
//!
//! Backends and the frameworks in front of them do not agree on what a path
//! means: many decode `%2F` before resolving `..`, Tomcat and Jetty treat
//! `..;` as `..`, Spring serves `/ops;x=1` as `/ops`, some decode twice, some
//! take `\` for `/`. A rule that looks at the raw bytes can be walked around
//! by any of them, whatever Envoy's path settings are. So the filter derives
//! one canonical path itself and matches rules on that alone:
//!
//! 1. the query and fragment are dropped;
//! 2. percent-escapes are decoded (`%2E` is `.`, `%41` is `A`, ...) and `\`
//!    is `/`;
//! 3. `;parameters` are cut from every segment, so `..;` is `..` and
//!    `/ops;x=1` is `/ops`;
//! 4. `.` and `..` segments are resolved (RFC 3986 section 5.2.4) and
//!    repeated slashes merged.
//!
//! A path whose meaning depends on who reads it is refused instead
//! ([`PathError`]): an escaped `/` or `\` (one backend splits a segment there,
//! another does not), a `%25` that decodes to another escape (double
//! encoding), bytes that do not decode to UTF-8, control characters, a
//! malformed escape, `..` above the root, and a target that does not start
//! with `/`. [`EscapedSlashes::MatchDecoded`] lets a deployment that serves
//! escaped slashes on purpose match on the decoded form instead.
//!
//! The canonical path is only for matching: the request goes upstream with
//! the bytes it came with.

use std::borrow::Cow;
use std::fmt;

/// What an escaped `/` or `\` (`%2F`, `%5C`) in a path means to the filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EscapedSlashes {
    /// The path is refused as ambiguous.
    #[default]
    Reject,
    /// The escape is decoded and splits the segment, as a backend that
    /// decodes before it resolves the path would read it.
    MatchDecoded,
}

/// Why a path was refused as ambiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// `%2F` or `%5C` under [`EscapedSlashes::Reject`].
    EscapedSlash,
    /// `%25` followed by two hex digits: an escape of an escape.
    DoubleEncoding,
    /// `%` not followed by two hex digits.
    BadEscape,
    /// The decoded path is not UTF-8.
    NotUtf8,
    /// A control character (or DEL), raw or decoded.
    ControlCharacter,
    /// More `..` than segments.
    AboveRoot,
    /// The target does not start with `/` (`*`, an absolute URL, a relative
    /// reference).
    NotAbsolute,
}

impl PathError {
    /// What is wrong, for logs and `jwt-auth-check`.
    pub fn detail(self) -> &'static str {
        match self {
            PathError::EscapedSlash => "escaped slash",
            PathError::DoubleEncoding => "double percent-encoding",
            PathError::BadEscape => "malformed percent-escape",
            PathError::NotUtf8 => "not UTF-8 once decoded",
            PathError::ControlCharacter => "control character",
            PathError::AboveRoot => "dot segments above the root",
            PathError::NotAbsolute => "does not start with '/'",
        }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.detail())
    }
}

/// The canonical form of a request target (`:path`), or why it is
/// ambiguous. A path that needs no change is borrowed.
pub fn canonical(target: &str, escaped: EscapedSlashes) -> Result<Cow<'_, str>, PathError> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with(['/', '\\']) {
        return Err(PathError::NotAbsolute);
    }
    if is_plain(path) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode(path, escaped)?;
    let text = std::str::from_utf8(&decoded).map_err(|_| PathError::NotUtf8)?;
    resolve(text).map(Cow::Owned)
}

/// Nothing to decode, cut or resolve: printable ASCII without `%`, `\`,
/// `;`, `//` or a segment starting with `.`. Most paths are like this, and
/// take no allocation.
fn is_plain(path: &str) -> bool {
    let bytes = path.as_bytes();
    let mut previous = 0u8;
    for &b in bytes {
        let special = matches!(b, b'%' | b'\\' | b';') || !(0x21..0x7f).contains(&b);
        if special || (previous == b'/' && matches!(b, b'/' | b'.')) {
            return false;
        }
        previous = b;
    }
    true
}

/// Percent-decodes `path` and turns `\` into `/`, refusing what is
/// ambiguous.
fn decode(path: &str, escaped: EscapedSlashes) -> Result<Vec<u8>, PathError> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        let byte = match b {
            b'%' => {
                let value = hex_pair(bytes, i).ok_or(PathError::BadEscape)?;
                i += 2;
                match value {
                    b'/' | b'\\' if escaped == EscapedSlashes::Reject => {
                        return Err(PathError::EscapedSlash)
                    }
                    b'/' | b'\\' => b'/',
                    b'%' if hex_pair(bytes, i).is_some() => return Err(PathError::DoubleEncoding),
                    other => other,
                }
            }
            b'\\' => b'/',
            other => other,
        };
        if byte < 0x20 || byte == 0x7f {
            return Err(PathError::ControlCharacter);
        }
        out.push(byte);
    }
    Ok(out)
}

fn hex_pair(bytes: &[u8], at: usize) -> Option<u8> {
    let digit = |b: u8| char::from(b).to_digit(16);
    let high = digit(*bytes.get(at)?)?;
    let low = digit(*bytes.get(at + 1)?)?;
    u8::try_from(high * 16 + low).ok()
}

/// Cuts `;parameters`, resolves dot segments and merges slashes; keeps one
/// trailing slash when the path had one.
fn resolve(path: &str) -> Result<String, PathError> {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing = false;
    for raw in path.split('/').skip(1) {
        let segment = raw.split(';').next().unwrap_or("");
        trailing = false;
        match segment {
            "" | "." => trailing = true,
            ".." => {
                segments.pop().ok_or(PathError::AboveRoot)?;
                trailing = true;
            }
            name => segments.push(name),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if trailing || segments.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(path: &str) -> Result<String, PathError> {
        canonical(path, EscapedSlashes::Reject).map(Cow::into_owned)
    }

    #[test]
    fn plain_paths_are_borrowed_unchanged() {
        for path in [
            "/",
            "/healthz",
            "/api/v1.0/users",
            "/a/b/",
            "/x.json",
            "/a-b_c~d",
        ] {
            assert!(matches!(
                canonical(path, EscapedSlashes::Reject),
                Ok(Cow::Borrowed(p)) if p == path
            ));
        }
        assert_eq!(canon("/a?x=../../b#f").unwrap(), "/a", "query and fragment");
    }

    #[test]
    fn what_backends_read_the_same_is_one_path() {
        let cases = [
            ("/ops;x=1", "/ops"),
            ("/ops;x=1/y;z", "/ops/y"),
            ("/healthz/..;/admin", "/admin"),
            ("/healthz/../admin", "/admin"),
            ("/healthz/%2e%2e/admin", "/admin"),
            ("/healthz/%2E%2E/admin", "/admin"),
            ("/healthz/.%2e/admin", "/admin"),
            ("/a/./b", "/a/b"),
            ("//admin", "/admin"),
            ("/admin//x", "/admin/x"),
            ("\\admin", "/admin"),
            ("/healthz\\..\\admin", "/admin"),
            ("/%61dmin", "/admin"),
            ("/ops/", "/ops/"),
            ("/a/b/..", "/a/"),
            ("/a/.", "/a/"),
            ("/..a/b", "/..a/b"),
            ("/.../x", "/.../x"),
            ("/caf%C3%A9", "/café"),
            ("/100%25", "/100%"),
            ("/a%3Bx/..", "/"),
        ];
        for (path, want) in cases {
            assert_eq!(canon(path).as_deref(), Ok(want), "{path}");
        }
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        let cases = [
            ("/healthz/..%2Fadmin", PathError::EscapedSlash),
            ("/healthz/..%2fadmin", PathError::EscapedSlash),
            ("/healthz/..%5Cadmin", PathError::EscapedSlash),
            ("/healthz/%252e%252e/admin", PathError::DoubleEncoding),
            ("/a%252F", PathError::DoubleEncoding),
            ("/a%2525", PathError::DoubleEncoding),
            ("/a%zz", PathError::BadEscape),
            ("/a%2", PathError::BadEscape),
            ("/a%", PathError::BadEscape),
            ("/admin%00", PathError::ControlCharacter),
            ("/admin%0a", PathError::ControlCharacter),
            ("/a\tb", PathError::ControlCharacter),
            ("/a%7F", PathError::ControlCharacter),
            ("/%C3", PathError::NotUtf8),
            ("/%FF", PathError::NotUtf8),
            ("/..", PathError::AboveRoot),
            ("/a/../../b", PathError::AboveRoot),
            ("/%2e%2e/admin", PathError::AboveRoot),
            ("admin", PathError::NotAbsolute),
            ("*", PathError::NotAbsolute),
            ("http://h/admin", PathError::NotAbsolute),
            ("", PathError::NotAbsolute),
        ];
        for (path, error) in cases {
            assert_eq!(canon(path), Err(error), "{path}");
        }
    }

    #[test]
    fn escaped_slashes_may_be_matched_decoded() {
        let decoded = |p| canonical(p, EscapedSlashes::MatchDecoded).map(Cow::into_owned);
        assert_eq!(decoded("/healthz/..%2Fadmin").as_deref(), Ok("/admin"));
        assert_eq!(decoded("/a%5Cb").as_deref(), Ok("/a/b"));
        assert_eq!(decoded("/a%2Fb").as_deref(), Ok("/a/b"));
        // Everything else stays refused.
        assert_eq!(decoded("/a%252F"), Err(PathError::DoubleEncoding));
        assert_eq!(decoded("/%2e%2e%2f"), Err(PathError::AboveRoot));
    }
}
