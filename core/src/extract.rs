//! Where a token comes from: request headers (with a scheme prefix such as
//! `Bearer `), query parameters, or cookies.

use crate::request::Request;

/// One place a provider reads its token from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// A header (lowercase name); the value must start with `prefix`
    /// (compared case-insensitively, as auth schemes are) when one is set.
    Header {
        name: String,
        prefix: Option<String>,
    },
    /// A query parameter of the request path.
    Param(String),
    /// A cookie.
    Cookie(String),
}

impl TokenSource {
    /// `Authorization: Bearer <token>`, the RFC 6750 default.
    pub fn default_bearer() -> Self {
        TokenSource::Header {
            name: "authorization".to_string(),
            prefix: Some("Bearer ".to_string()),
        }
    }

    pub fn header(name: String, prefix: Option<String>) -> Self {
        TokenSource::Header {
            name,
            prefix: prefix.filter(|p| !p.is_empty()),
        }
    }

    pub fn header_name(&self) -> Option<&str> {
        match self {
            TokenSource::Header { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// A token found in a request, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<'r> {
    pub token: &'r str,
    pub source: &'r TokenSource,
}

/// Why no single token could be taken from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractError {
    /// Two different tokens were offered (RFC 6750 §2: a client must use
    /// exactly one method); guessing which one counts would be unsafe.
    Multiple,
    /// A credential that is not valid text (non-UTF-8 bytes).
    Unreadable,
}

/// Looks for a token in every given source. Returns the one token found,
/// `None` when there is none, or an error when several different ones are
/// present.
pub fn extract<'r>(
    request: &Request<'r>,
    sources: &'r [TokenSource],
) -> Result<Option<Found<'r>>, ExtractError> {
    let mut found: Option<Found<'r>> = None;
    let mut offer = |token: &'r str, source: &'r TokenSource| -> Result<(), ExtractError> {
        match &found {
            Some(f) if f.token != token => Err(ExtractError::Multiple),
            Some(_) => Ok(()),
            None => {
                found = Some(Found { token, source });
                Ok(())
            }
        }
    };
    for source in sources {
        match source {
            TokenSource::Header { name, prefix } => {
                for (_, value) in request.headers.iter().filter(|(n, _)| *n == name) {
                    let Ok(value) = std::str::from_utf8(value) else {
                        return Err(ExtractError::Unreadable);
                    };
                    if let Some(token) = strip_prefix(value, prefix.as_deref()) {
                        offer(token, source)?;
                    }
                }
            }
            TokenSource::Param(name) => {
                for value in query_values(request.path, name) {
                    offer(value, source)?;
                }
            }
            TokenSource::Cookie(name) => {
                for (_, value) in request.headers.iter().filter(|(n, _)| *n == "cookie") {
                    let Ok(value) = std::str::from_utf8(value) else {
                        return Err(ExtractError::Unreadable);
                    };
                    for token in cookie_values(value, name) {
                        offer(token, source)?;
                    }
                }
            }
        }
    }
    Ok(found)
}

/// The token after a case-insensitive scheme prefix; surrounding spaces are
/// not part of a token.
pub(crate) fn strip_prefix<'v>(value: &'v str, prefix: Option<&str>) -> Option<&'v str> {
    let value = value.trim_matches([' ', '\t']);
    match prefix {
        None => Some(value),
        Some(prefix) => {
            let head = value.get(..prefix.len()).unwrap_or("");
            if head.eq_ignore_ascii_case(prefix) {
                value.get(prefix.len()..).map(|t| t.trim_start_matches(' '))
            } else if prefix.ends_with(' ') && value.eq_ignore_ascii_case(prefix.trim_end()) {
                // "Bearer" with nothing after it: a present but empty token.
                Some("")
            } else {
                None
            }
        }
    }
}

/// Raw values of a query parameter. Tokens are base64url, which needs no
/// percent-encoding, so a value holding `%` is passed on as is and fails
/// token parsing: a clear refusal instead of a second decoding rule.
fn query_values<'p>(path: &'p str, name: &'p str) -> impl Iterator<Item = &'p str> + 'p {
    let query = path
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(""))
        .unwrap_or("");
    query.split('&').filter_map(move |pair| {
        let (k, v) = query_pair(pair);
        (k == name).then_some(v)
    })
}

/// Name and raw value of one `&`-separated query pair (`name` alone: empty
/// value). The decision's token removal reads pairs the same way.
pub(crate) fn query_pair(pair: &str) -> (&str, &str) {
    pair.split_once('=').unwrap_or((pair, ""))
}

fn cookie_values<'c>(header: &'c str, name: &'c str) -> impl Iterator<Item = &'c str> + 'c {
    header.split(';').filter_map(move |pair| {
        let (k, v) = cookie_pair(pair)?;
        (k == name).then_some(v)
    })
}

/// Name and value of one `;`-separated cookie pair, spaces and quotes
/// around them dropped; `None` without `=`. The decision's token removal
/// reads pairs the same way.
pub(crate) fn cookie_pair(pair: &str) -> Option<(&str, &str)> {
    let (k, v) = pair.trim().split_once('=')?;
    Some((k.trim(), v.trim().trim_matches('"')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Header;

    fn req<'a>(path: &'a str, headers: &'a [Header<'a>]) -> Request<'a> {
        Request {
            method: "GET",
            path,
            headers,
        }
    }

    fn h<'a>(name: &'a str, value: &'a str) -> Header<'a> {
        (name, value.as_bytes())
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let src = TokenSource::default_bearer();
        for v in ["Bearer abc", "bearer abc", "BEARER abc", "  Bearer   abc "] {
            let headers = [h("authorization", v)];
            let found = extract(&req("/", &headers), std::slice::from_ref(&src))
                .unwrap()
                .unwrap();
            assert_eq!(found.token, "abc", "{v}");
        }
    }

    #[test]
    fn other_schemes_are_not_tokens() {
        let src = TokenSource::default_bearer();
        let headers = [h("authorization", "Basic dXNlcjpwYXNz")];
        assert_eq!(
            extract(&req("/", &headers), std::slice::from_ref(&src)).unwrap(),
            None
        );
        let headers = [h("authorization", "Bearerabc")];
        assert_eq!(
            extract(&req("/", &headers), std::slice::from_ref(&src)).unwrap(),
            None
        );
    }

    #[test]
    fn empty_bearer_is_an_empty_token() {
        let src = TokenSource::default_bearer();
        for v in ["Bearer", "Bearer ", "bearer  "] {
            let headers = [h("authorization", v)];
            let found = extract(&req("/", &headers), std::slice::from_ref(&src))
                .unwrap()
                .unwrap();
            assert_eq!(found.token, "", "{v:?}");
        }
    }

    #[test]
    fn two_different_tokens_are_refused() {
        let src = TokenSource::default_bearer();
        let headers = [
            h("authorization", "Bearer a"),
            h("authorization", "Bearer b"),
        ];
        assert_eq!(
            extract(&req("/", &headers), std::slice::from_ref(&src)),
            Err(ExtractError::Multiple)
        );
        let headers = [
            h("authorization", "Bearer a"),
            h("authorization", "Bearer a"),
        ];
        assert_eq!(
            extract(&req("/", &headers), std::slice::from_ref(&src))
                .unwrap()
                .unwrap()
                .token,
            "a"
        );
    }

    #[test]
    fn header_without_prefix_and_custom_prefix() {
        let raw = TokenSource::header("x-jwt".into(), None);
        let headers = [h("x-jwt", "tok")];
        assert_eq!(
            extract(&req("/", &headers), std::slice::from_ref(&raw))
                .unwrap()
                .unwrap()
                .token,
            "tok"
        );
        let custom = TokenSource::header("x-auth".into(), Some("JWT ".into()));
        let headers = [h("x-auth", "jwt tok2")];
        assert_eq!(
            extract(&req("/", &headers), std::slice::from_ref(&custom))
                .unwrap()
                .unwrap()
                .token,
            "tok2"
        );
    }

    #[test]
    fn query_parameters() {
        let src = TokenSource::Param("access_token".into());
        let found = extract(
            &req("/a?x=1&access_token=tok#frag", &[]),
            std::slice::from_ref(&src),
        )
        .unwrap();
        assert_eq!(found.unwrap().token, "tok");
        assert_eq!(
            extract(
                &req("/a?access_tokenx=tok", &[]),
                std::slice::from_ref(&src)
            )
            .unwrap(),
            None
        );
        assert_eq!(
            extract(&req("/access_token=tok", &[]), std::slice::from_ref(&src)).unwrap(),
            None
        );
        assert_eq!(
            extract(
                &req("/a?access_token=a&access_token=b", &[]),
                std::slice::from_ref(&src)
            ),
            Err(ExtractError::Multiple)
        );
    }

    #[test]
    fn cookies() {
        let src = TokenSource::Cookie("session".into());
        let headers = [h("cookie", "a=1; session=tok; b=2")];
        assert_eq!(
            extract(&req("/", &headers), std::slice::from_ref(&src))
                .unwrap()
                .unwrap()
                .token,
            "tok"
        );
        let headers = [h("cookie", "xsession=tok")];
        assert_eq!(
            extract(&req("/", &headers), std::slice::from_ref(&src)).unwrap(),
            None
        );
    }

    #[test]
    fn tokens_in_several_places() {
        let a = TokenSource::default_bearer();
        let b = TokenSource::Param("access_token".into());
        let headers = [h("authorization", "Bearer one")];
        let both = [a.clone(), b];
        assert_eq!(
            extract(&req("/?access_token=two", &headers), &both),
            Err(ExtractError::Multiple)
        );
        let found = extract(&req("/?access_token=one", &headers), &both).unwrap();
        assert_eq!(found.unwrap().source, &a);
    }

    #[test]
    fn non_utf8_credential_is_unreadable() {
        let src = TokenSource::default_bearer();
        let headers: [Header<'_>; 1] = [("authorization", b"Bearer \xff\xfe")];
        assert_eq!(
            extract(&req("/", &headers), std::slice::from_ref(&src)),
            Err(ExtractError::Unreadable)
        );
    }
}
