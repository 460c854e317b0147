//! A JSON object read once and kept as text: the token's header and its
//! claims.
//!
//! Parsing validates the whole document and records where each top-level
//! member sits; a value is parsed only when a check, a rule or a header
//! mapping asks for it. A token carries claims nobody reads (`scope` on a
//! route without permissions, `jti` without revocation, whatever the issuer
//! adds), and building a tree of owned strings and maps for all of them was
//! most of the cost of reading a token.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::IgnoredAny;
use serde_json::{Number, Value};

/// A validated JSON object, its text and the place of each top-level member.
#[derive(Clone, PartialEq, Eq)]
pub struct JsonObject {
    text: String,
    /// Top-level members in document order.
    members: Vec<Member>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Member {
    /// The name's length and first bytes: most lookups are settled by these
    /// two numbers, without reading the name (claim names are short).
    len: usize,
    prefix: u64,
    name: Name,
    /// The member's value as JSON text, within `text`.
    value: Range<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Name {
    /// Within `text`, between the quotes: the name had no escape.
    At(Range<usize>),
    /// Unescaped, when the document spelled the name with escapes.
    Unescaped(Box<str>),
}

/// Why bytes are not a [`JsonObject`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectError {
    NotJson,
    /// Valid JSON, but not an object.
    NotObject,
}

impl JsonObject {
    /// Validates `bytes` as one JSON object (UTF-8, nothing after it).
    pub fn parse(bytes: Vec<u8>) -> Result<JsonObject, ObjectError> {
        let text = String::from_utf8(bytes).map_err(|_| ObjectError::NotJson)?;
        // serde_json decides what is JSON; the scan below then only ever
        // sees valid documents. Skipping values, serde_json checks less than
        // when it reads them (nesting depth, surrogate pairs in `\u`
        // escapes): the scan refuses what reading would refuse.
        serde_json::from_slice::<IgnoredAny>(text.as_bytes()).map_err(|_| ObjectError::NotJson)?;
        let members = locate_members(&text)?;
        Ok(JsonObject { text, members })
    }

    /// The value of member `name` as JSON text. When a name occurs more than
    /// once the last one counts, as when the object is read into a map.
    pub fn raw(&self, name: &str) -> Option<&str> {
        let (len, prefix) = (name.len(), prefix(name));
        self.members
            .iter()
            .rev()
            .filter(|m| m.len == len && m.prefix == prefix)
            .find(|m| len <= PREFIX_BYTES || self.name_of(m) == name)
            .and_then(|m| self.text.get(m.value.clone()))
    }

    /// The value of member `name`, parsed.
    pub fn value(&self, name: &str) -> Option<Value> {
        value_of(self.raw(name)?)
    }

    /// The value of member `name` when it is a string.
    pub fn str(&self, name: &str) -> Option<Cow<'_, str>> {
        as_str(self.raw(name)?)
    }

    /// The object as it was sent.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The whole object, parsed (for display; checks read single members).
    pub fn to_value(&self) -> Value {
        value_of(&self.text).unwrap_or(Value::Null)
    }

    fn name_of<'s>(&'s self, member: &'s Member) -> &'s str {
        member.name.spelled(&self.text)
    }
}

impl Name {
    /// The name as its text, escapes resolved; `text` is the document.
    fn spelled<'s>(&'s self, text: &'s str) -> &'s str {
        match self {
            Name::At(range) => text.get(range.clone()).unwrap_or(""),
            Name::Unescaped(name) => name,
        }
    }
}

#[cfg(test)]
impl JsonObject {
    /// The object `value` is, as a token would carry it.
    pub fn of(value: &Value) -> JsonObject {
        let object = JsonObject::parse(value.to_string().into_bytes());
        object.unwrap_or_else(|e| panic!("{value} is not an object: {e:?}"))
    }
}

const PREFIX_BYTES: usize = 8;

/// The first eight bytes of a name, zero-padded, little-endian.
#[inline]
fn prefix(name: &str) -> u64 {
    let bytes = name.as_bytes();
    if let Some(first) = bytes.first_chunk::<PREFIX_BYTES>() {
        return u64::from_le_bytes(*first);
    }
    bytes
        .iter()
        .rev()
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

impl fmt::Debug for JsonObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonObject({})", self.text)
    }
}

/// A JSON string value's text, borrowed when it holds no escape. `raw` is
/// one validated JSON value, so a quoted run without `\` is exactly the
/// string (control characters cannot occur unescaped in valid JSON).
pub fn as_str(raw: &str) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        match value_of(raw)? {
            Value::String(s) => Some(Cow::Owned(s)),
            _ => None,
        }
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// A JSON number value (`None` for any other type, or a number out of the
/// range of f64).
pub fn as_number(raw: &str) -> Option<Number> {
    // The usual claim (a time in whole seconds) without the general parser.
    // Validated JSON, so a run of digits is a non-negative integer.
    if raw.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = raw.parse::<u64>() {
            return Some(Number::from(n));
        }
    }
    match value_of(raw)? {
        Value::Number(n) => Some(n),
        _ => None,
    }
}

/// A member's JSON text (from [`JsonObject::raw`]) parsed. Every read parses
/// a [`Value`] through the byte-slice reader, as the rest of the crate does:
/// another target type or reader would be another copy of the parser in the
/// module.
pub fn value_of(raw: &str) -> Option<Value> {
    serde_json::from_slice(raw.as_bytes()).ok()
}

/// The name at `range` (between its quotes), escapes resolved.
fn unescape_name(text: &str, range: Range<usize>) -> Result<Box<str>, ObjectError> {
    let quoted = text.get(range.start.saturating_sub(1)..range.end + 1);
    match quoted.and_then(as_str) {
        Some(name) => Ok(name.into()),
        None => Err(ObjectError::NotJson),
    }
}

/// Containers (objects and arrays) nested deeper than this are refused, as
/// serde_json refuses them when it reads a value (the top-level object
/// counts).
const MAX_NESTING: usize = 127;

/// The top-level members of `text`, which must be valid JSON: `NotObject`
/// when it is not an object; `NotJson` when it nests deeper than
/// [`MAX_NESTING`] or holds a `\u` escape that is half a surrogate pair.
fn locate_members(text: &str) -> Result<Vec<Member>, ObjectError> {
    let json = text.as_bytes();
    let mut at = skip_whitespace(json, 0);
    if json.get(at) != Some(&b'{') {
        return Err(ObjectError::NotObject);
    }
    let mut members = Vec::with_capacity(8);
    at = skip_whitespace(json, at + 1);
    if json.get(at) == Some(&b'}') {
        return Ok(members);
    }
    loop {
        let name_end = string_end(json, at).ok_or(ObjectError::NotJson)?;
        // Between the quotes.
        let name = at + 1..name_end - 1;
        at = skip_whitespace(json, name_end);
        // The colon.
        at = skip_whitespace(json, at + 1);
        let value_end = value_end(json, at).ok_or(ObjectError::NotJson)?;
        members.push(member(text, name, at..value_end)?);
        at = skip_whitespace(json, value_end);
        match json.get(at) {
            Some(b',') => at = skip_whitespace(json, at + 1),
            _ => return Ok(members),
        }
    }
}

/// The member whose name is at `name` (between its quotes) and whose value
/// is the text at `value`.
fn member(text: &str, name: Range<usize>, value: Range<usize>) -> Result<Member, ObjectError> {
    let name = match text.get(name.clone()) {
        Some(plain) if !plain.contains('\\') => Name::At(name),
        _ => Name::Unescaped(unescape_name(text, name)?),
    };
    let spelled = name.spelled(text);
    Ok(Member {
        len: spelled.len(),
        prefix: prefix(spelled),
        name,
        value,
    })
}

fn skip_whitespace(json: &[u8], mut at: usize) -> usize {
    while matches!(json.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// Just past the closing quote of the string starting at `at`; `None` when
/// a `\u` escape is half a surrogate pair (a high one not followed by an
/// escaped low one, or a low one alone), which no UTF-8 text can hold.
fn string_end(json: &[u8], at: usize) -> Option<usize> {
    if json.get(at) != Some(&b'"') {
        return None;
    }
    let mut i = at + 1;
    loop {
        match json.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' if json.get(i + 1) == Some(&b'u') => match hex_unit(json, i + 2)? {
                0xD800..=0xDBFF => {
                    let low = match (json.get(i + 6), json.get(i + 7)) {
                        (Some(b'\\'), Some(b'u')) => hex_unit(json, i + 8)?,
                        _ => return None,
                    };
                    if !(0xDC00..=0xDFFF).contains(&low) {
                        return None;
                    }
                    i += 12;
                }
                0xDC00..=0xDFFF => return None,
                _ => i += 6,
            },
            // The escaped character can be neither the closing quote nor a
            // second backslash that would escape it.
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The four hex digits at `at` as a UTF-16 code unit.
fn hex_unit(json: &[u8], at: usize) -> Option<u32> {
    let digits = std::str::from_utf8(json.get(at..at + 4)?).ok()?;
    u32::from_str_radix(digits, 16).ok()
}

/// Just past the end of the value starting at `at`.
fn value_end(json: &[u8], at: usize) -> Option<usize> {
    match json.get(at)? {
        b'"' => string_end(json, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match json.get(i)? {
                    b'"' => {
                        i = string_end(json, i)?;
                        continue;
                    }
                    b'{' | b'[' => {
                        depth += 1;
                        // The top-level object is one more level.
                        if depth >= MAX_NESTING {
                            return None;
                        }
                    }
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        // A number or a literal: up to the next delimiter.
        _ => {
            let mut i = at;
            while !matches!(
                json.get(i),
                None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            ) {
                i += 1;
            }
            Some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(text: &str) -> JsonObject {
        JsonObject::parse(text.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn members_read_as_their_values() {
        let o = object(
            r#"{"sub":"u-1","exp":1700000000,"aud":["a","b"],"nested":{"k":[1,{"x":null}]},"ok":true}"#,
        );
        assert_eq!(o.raw("sub"), Some(r#""u-1""#));
        assert_eq!(o.str("sub").as_deref(), Some("u-1"));
        assert!(matches!(o.str("sub"), Some(Cow::Borrowed(_))));
        assert_eq!(
            o.raw("exp").and_then(as_number),
            Some(Number::from(1_700_000_000u64))
        );
        assert_eq!(o.value("aud"), Some(json!(["a", "b"])));
        assert_eq!(o.value("nested"), Some(json!({"k": [1, {"x": null}]})));
        assert_eq!(o.value("ok"), Some(json!(true)));
        assert_eq!(o.str("exp"), None, "a number is not a string");
        assert_eq!(o.raw("missing"), None);
        assert_eq!(o.raw("Sub"), None, "names are case-sensitive");
        assert_eq!(
            o.to_value(),
            json!({"sub": "u-1", "exp": 1_700_000_000u64, "aud": ["a", "b"],
                   "nested": {"k": [1, {"x": null}]}, "ok": true})
        );
    }

    #[test]
    fn whitespace_and_escapes() {
        let o = object(" {\n \"a\\u0062\" : \"x\\\"y\" ,\t\"c\":\"\\u00e9t\u{e9}\" } ");
        assert_eq!(
            o.str("ab").as_deref(),
            Some("x\"y"),
            "escaped name, escaped value"
        );
        assert!(matches!(o.str("ab"), Some(Cow::Owned(_))));
        assert_eq!(o.str("c").as_deref(), Some("\u{e9}t\u{e9}"));
        assert_eq!(o.raw("a\\u0062"), None, "names are compared unescaped");
    }

    #[test]
    fn names_are_matched_whole() {
        let o = object(
            r#"{"ab":1,"abc":2,"a\u0000":3,"https://x.io/tenant":4,"https://x.io/tenanT":5}"#,
        );
        assert_eq!(o.raw("ab"), Some("1"));
        assert_eq!(o.raw("abc"), Some("2"));
        assert_eq!(o.raw("a"), None);
        assert_eq!(o.raw("abcd"), None);
        assert_eq!(
            o.raw("a\u{0}"),
            Some("3"),
            "a NUL is part of the name, not padding"
        );
        assert_eq!(
            o.raw("https://x.io/tenant"),
            Some("4"),
            "longer than the prefix"
        );
        assert_eq!(o.raw("https://x.io/tenanT"), Some("5"));
        assert_eq!(o.raw("https://x.io/tenanx"), None);
    }

    #[test]
    fn the_last_of_repeated_names_counts() {
        let o = object(r#"{"role":"user","role":"admin"}"#);
        assert_eq!(o.str("role").as_deref(), Some("admin"));
        let map: serde_json::Map<String, Value> =
            serde_json::from_str(r#"{"role":"user","role":"admin"}"#).unwrap();
        assert_eq!(
            map.get("role"),
            Some(&json!("admin")),
            "same as a map would"
        );
    }

    #[test]
    fn only_json_objects() {
        for (text, error) in [
            ("", ObjectError::NotJson),
            ("{", ObjectError::NotJson),
            (r#"{"a":1,}"#, ObjectError::NotJson),
            (r#"{"a":1} x"#, ObjectError::NotJson),
            (r#"{"a":01}"#, ObjectError::NotJson),
            ("{\"a\":\"line\nbreak\"}", ObjectError::NotJson),
            ("{\"a\":\"\u{1}\"}", ObjectError::NotJson),
            (r#"{a:1}"#, ObjectError::NotJson),
            ("[1]", ObjectError::NotObject),
            ("\"text\"", ObjectError::NotObject),
            ("12", ObjectError::NotObject),
            ("null", ObjectError::NotObject),
        ] {
            assert_eq!(
                JsonObject::parse(text.as_bytes().to_vec()),
                Err(error),
                "{text:?}"
            );
        }
        assert_eq!(
            JsonObject::parse(b"{\"a\":\"\xff\"}".to_vec()),
            Err(ObjectError::NotJson),
            "not UTF-8"
        );
        assert_eq!(object("{}").raw("a"), None);
    }

    /// What serde_json refuses when it reads a value but not when it skips
    /// one: nesting too deep, half a surrogate pair.
    #[test]
    fn refused_as_reading_would_refuse() {
        let reads = |doc: &str| serde_json::from_str::<serde_json::Map<String, Value>>(doc).is_ok();
        let mut docs: Vec<String> = (120..135)
            .map(|n| format!("{{\"a\":{}1{}}}", "[".repeat(n), "]".repeat(n)))
            .collect();
        docs.push(format!(
            "{{\"a\":{}{}}}",
            "{\"b\":".repeat(130),
            "1".to_string() + &"}".repeat(130)
        ));
        for s in [
            r#"\ud800"#,
            r#"\ud800x"#,
            r#"\ud800\u0041"#,
            r#"\ud800\n"#,
            r#"\udc00"#,
            r#"\udfff\ud800"#,
            r#"\ud83d\ude00"#,
            r#"\uD83D\uDE00"#,
            r#"a\u00e9\ud7ff\ue000"#,
        ] {
            docs.push(format!(r#"{{"v":"{s}"}}"#));
            docs.push(format!(r#"{{"{s}":1}}"#));
            docs.push(format!(r#"{{"v":[{{"w":"{s}"}}]}}"#));
        }
        let refused = docs.iter().filter(|d| !reads(d)).count();
        assert!(
            refused >= 25 && refused < docs.len(),
            "{refused} of {}",
            docs.len()
        );
        for doc in docs {
            let parsed = JsonObject::parse(doc.clone().into_bytes());
            assert_eq!(parsed.is_ok(), reads(&doc), "{doc}");
            if parsed.is_err() {
                assert_eq!(parsed, Err(ObjectError::NotJson), "{doc}");
            }
        }
    }

    #[test]
    fn values_out_of_range_fail_only_when_read() {
        let o = object(r#"{"exp":1e400,"sub":"s"}"#);
        assert_eq!(o.raw("exp").and_then(as_number), None);
        assert_eq!(o.value("exp"), None);
        assert_eq!(o.str("sub").as_deref(), Some("s"));
    }

    /// Every member as serde_json reads it, whatever the nesting, spacing,
    /// escapes and brackets inside strings.
    #[test]
    fn members_agree_with_serde_json() {
        let tricky = concat!(
            " {\"a\" :[1,\"]\",{\"b\":\"}\\\"\"}] ,\"s\":\"x\\\\\",",
            "\"n\":-1.5e+3,\"t\":true,\"f\":false,\"z\":null,\"e\":{},\"l\":[],",
            "\"\\u0041\":\"\\ud83d\\ude00\",\"deep\":[[[{\"x\":[{}]}]]]}\r\n"
        );
        let mut docs = vec![tricky.to_string()];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..300 {
            docs.push(random_object(&mut seed));
        }
        for doc in docs {
            let map: serde_json::Map<String, Value> = serde_json::from_str(&doc).unwrap();
            let o = JsonObject::parse(doc.clone().into_bytes()).unwrap();
            for (name, value) in &map {
                assert_eq!(o.value(name).as_ref(), Some(value), "{name} in {doc}");
            }
            assert_eq!(o.to_value(), Value::Object(map), "{doc}");
        }
    }

    fn next(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    fn random_object(seed: &mut u64) -> String {
        let n = next(seed) % 6;
        let members: Vec<String> = (0..n)
            .map(|_| {
                format!(
                    "{}{}:{}{}",
                    space(seed),
                    random_string(seed),
                    space(seed),
                    random_value(seed, 3)
                )
            })
            .collect();
        format!("{}{{{}}}{}", space(seed), members.join(","), space(seed))
    }

    fn random_value(seed: &mut u64, depth: u32) -> String {
        let pick = next(seed) % if depth == 0 { 5 } else { 7 };
        let v = match pick {
            0 => random_string(seed),
            1 => [
                "0",
                "-12",
                "3.25",
                "1e9",
                "-0.5E-3",
                "18446744073709551615",
                "1E+2",
            ][(next(seed) % 7) as usize]
                .to_string(),
            2 => "true".to_string(),
            3 => "false".to_string(),
            4 => "null".to_string(),
            5 => {
                let items: Vec<String> = (0..next(seed) % 4)
                    .map(|_| random_value(seed, depth - 1))
                    .collect();
                format!("[{}]", items.join(","))
            }
            _ => {
                let items: Vec<String> = (0..next(seed) % 4)
                    .map(|_| format!("{}:{}", random_string(seed), random_value(seed, depth - 1)))
                    .collect();
                format!("{{{}}}", items.join(","))
            }
        };
        format!("{}{v}{}", space(seed), space(seed))
    }

    fn random_string(seed: &mut u64) -> String {
        const PARTS: [&str; 12] = [
            "a", "sub", "}", "]", "{", "[", ",", ":", "\\\"", "\\\\", "\\u00e9", "\\n",
        ];
        let parts: Vec<&str> = (0..next(seed) % 5)
            .map(|_| PARTS[(next(seed) % PARTS.len() as u64) as usize])
            .collect();
        format!("\"{}\"", parts.concat())
    }

    fn space(seed: &mut u64) -> &'static str {
        [" ", "", "\n\t", ""][(next(seed) % 4) as usize]
    }

    #[test]
    fn string_text() {
        assert_eq!(as_str(r#""""#).as_deref(), Some(""));
        assert_eq!(as_str(r#""a\/b""#).as_deref(), Some("a/b"));
        assert_eq!(as_str("1"), None);
        assert_eq!(as_str("[\"a\"]"), None);
        assert_eq!(as_str("null"), None);
    }
}
