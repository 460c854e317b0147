//! Claims to identity headers: which verified claim becomes which request
//! header for the upstream.

use serde_json::Value;

use crate::jwt::JsonObject;
use crate::rules::ClaimPath;

/// One `claim_to_headers` entry: a claim (a dotted path for nested claims)
/// and the lowercase header it is written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimHeader {
    pub claim: ClaimPath,
    pub header: String,
}

impl ClaimHeader {
    pub fn new(claim: &str, header: String) -> Self {
        ClaimHeader {
            claim: ClaimPath::new(claim),
            header,
        }
    }

    /// The header value for these claims, if the claim is present and can be
    /// written safely.
    pub fn value(&self, claims: &JsonObject) -> Option<String> {
        render(&self.claim.get(claims)?)
    }
}

/// Follows a dotted path through nested objects.
pub fn lookup(claims: &JsonObject, path: &[String]) -> Option<Value> {
    let (first, rest) = path.split_first()?;
    let mut value = claims.value(first)?;
    for key in rest {
        value = value.get_mut(key).map(Value::take)?;
    }
    Some(value)
}

/// Strings, numbers and booleans as text; arrays of them joined with `,`.
/// A value an upstream could read in two ways gives no header at all:
/// objects and nulls; text holding a control character, tab included (CR,
/// LF and NUL would allow header injection, and Envoy refuses the others);
/// text with leading or trailing whitespace (HTTP parsers trim it, so
/// `"admin\t"` would arrive as `admin`); and an array element holding the
/// separator (`"dev,admin"` would read as two groups) or surrounded by
/// whitespace.
pub fn render(value: &Value) -> Option<String> {
    let text = match value {
        Value::Array(items) => {
            let parts = items.iter().map(scalar).collect::<Option<Vec<_>>>()?;
            if parts.iter().any(|p| p.contains(',') || !exact_value(p)) {
                return None;
            }
            parts.join(",")
        }
        other => scalar(other)?,
    };
    exact_value(&text).then_some(text)
}

/// Whether an HTTP parser hands `text` on as it is: no control character
/// and no whitespace to trim at either end.
fn exact_value(text: &str) -> bool {
    !text.bytes().any(|b| b < 0x20 || b == 0x7f) && text.trim_matches([' ', '\t']) == text
}

/// Whether Envoy takes `text` as a header value: no control character but
/// tab (CR, LF and NUL would also allow header injection).
pub fn header_safe(text: &str) -> bool {
    !text.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> JsonObject {
        JsonObject::of(&v)
    }

    #[test]
    fn scalars_and_arrays() {
        let c = claims(json!({"sub": "alice", "n": 42, "admin": true, "roles": ["a", "b", 3]}));
        let get = |claim: &str| ClaimHeader::new(claim, "x".into()).value(&c);
        assert_eq!(get("sub").as_deref(), Some("alice"));
        assert_eq!(get("n").as_deref(), Some("42"));
        assert_eq!(get("admin").as_deref(), Some("true"));
        assert_eq!(get("roles").as_deref(), Some("a,b,3"));
        assert_eq!(get("missing"), None);
    }

    #[test]
    fn nested_paths_and_dotted_names() {
        let c = claims(
            json!({"org": {"id": "o1", "team": {"name": "t"}}, "https://x.io/tenant": "t9"}),
        );
        let get = |claim: &str| ClaimHeader::new(claim, "x".into()).value(&c);
        assert_eq!(get("org.id").as_deref(), Some("o1"));
        assert_eq!(get("org.team.name").as_deref(), Some("t"));
        assert_eq!(get("org.nope"), None);
        assert_eq!(get("org"), None, "objects are not written");
        assert_eq!(get("https://x.io/tenant").as_deref(), Some("t9"));
    }

    #[test]
    fn values_an_upstream_could_read_two_ways_are_never_written() {
        let c = claims(json!({
            "groups": ["dev,admin", "ops"],
            "spaced": ["dev", " admin"],
            "tab": "admin\t",
            "lead": " admin",
            "inner": "Ada Lovelace",
            "plain": ["dev", "ops"]
        }));
        let get = |claim: &str| ClaimHeader::new(claim, "x".into()).value(&c);
        for claim in ["groups", "spaced", "tab", "lead"] {
            assert_eq!(get(claim), None, "{claim}");
        }
        assert_eq!(get("inner").as_deref(), Some("Ada Lovelace"));
        assert_eq!(get("plain").as_deref(), Some("dev,ops"));
    }

    #[test]
    fn injection_is_never_written() {
        let c = claims(
            json!({"a": "x\r\nx-admin: 1", "b": "x\ny", "c": "x\u{0}y", "d": ["ok", "x\ry"], "e": null, "f": [{"o": 1}]}),
        );
        for claim in ["a", "b", "c", "d", "e", "f"] {
            assert_eq!(
                ClaimHeader::new(claim, "x".into()).value(&c),
                None,
                "{claim}"
            );
        }
    }
}
