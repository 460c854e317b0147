//! The proxy-wasm serialized header map, read in place and written whole.
//!
//! Envoy hands a map over as one buffer: a u32 count, then a (name length,
//! value length) u32 pair per header, then each name and value followed by a
//! NUL byte (all little endian). The SDK turns that into one owned `String`
//! and one `Vec` per header; reading it in place borrows every header from
//! the one buffer, so a request's headers cost one allocation instead of two
//! per header on the path every request takes. The same layout goes back in
//! one call when the filter changes headers ([`edited`]): one host call for
//! all of a request's removals and writes.

use jwt_auth_core::request::Header;

/// The headers in `bytes`, borrowed, or `None` when the buffer does not
/// follow the layout (never expected from a proxy; the caller then sees no
/// headers). A name that is not UTF-8 (never sent by Envoy, whose codecs
/// refuse such names) is skipped: no configuration can name it.
pub fn parse(bytes: &[u8]) -> Option<Vec<Header<'_>>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = usize::try_from(read_u32(bytes, 0)?).ok()?;
    let sizes_end = count.checked_mul(8)?.checked_add(4)?;
    if sizes_end > bytes.len() {
        return None;
    }
    let mut headers = Vec::with_capacity(count);
    let mut data = sizes_end;
    for i in 0..count {
        let name_len = usize::try_from(read_u32(bytes, 4 + i * 8)?).ok()?;
        let value_len = usize::try_from(read_u32(bytes, 8 + i * 8)?).ok()?;
        let name = bytes.get(data..data.checked_add(name_len)?)?;
        data = data.checked_add(name_len + 1)?;
        let value = bytes.get(data..data.checked_add(value_len)?)?;
        data = data.checked_add(value_len + 1)?;
        if let Ok(name) = std::str::from_utf8(name) {
            headers.push((name, value));
        }
    }
    // The terminating NUL of the last value is the last byte.
    (data <= bytes.len()).then_some(headers)
}

/// The request's headers with `remove` taken out and `set` written, in the
/// serialized layout: every value of a removed or written name goes, a
/// written name takes the place of its first occurrence (so `:path` keeps
/// its place) or comes last, and every other header keeps its position,
/// its duplicates and its exact bytes. `None` when a size does not fit the
/// layout's u32 fields.
pub fn edited(headers: &[Header<'_>], remove: &[String], set: &[(&str, &str)]) -> Option<Vec<u8>> {
    let mut out_headers: Vec<(&str, &[u8])> = Vec::with_capacity(headers.len() + set.len());
    let mut written = vec![false; set.len()];
    for &(name, value) in headers {
        if let Some(i) = set.iter().position(|(n, _)| *n == name) {
            if let (Some(done), Some((n, v))) = (written.get_mut(i), set.get(i)) {
                if !*done {
                    *done = true;
                    out_headers.push((n, v.as_bytes()));
                }
            }
            continue;
        }
        if !remove.iter().any(|r| r == name) {
            out_headers.push((name, value));
        }
    }
    for ((name, value), done) in set.iter().zip(&written) {
        if !done {
            out_headers.push((name, value.as_bytes()));
        }
    }
    serialize(&out_headers)
}

/// Headers in the serialized layout.
pub fn serialize(headers: &[Header<'_>]) -> Option<Vec<u8>> {
    let data: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
    let mut out = Vec::with_capacity(4 + headers.len() * 8 + data);
    out.extend_from_slice(&u32::try_from(headers.len()).ok()?.to_le_bytes());
    for (name, value) in headers {
        out.extend_from_slice(&u32::try_from(name.len()).ok()?.to_le_bytes());
        out.extend_from_slice(&u32::try_from(value.len()).ok()?.to_le_bytes());
    }
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    Some(out)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serialize(headers: &[(&str, &[u8])]) -> Vec<u8> {
        super::serialize(headers).unwrap()
    }

    #[test]
    fn the_layout_is_envoys() {
        let bytes = serialize(&[("ab", b"1"), ("c", b"")]);
        let expected: Vec<u8> = [
            &2u32.to_le_bytes()[..],
            &2u32.to_le_bytes(),
            &1u32.to_le_bytes(),
            &1u32.to_le_bytes(),
            &0u32.to_le_bytes(),
            b"ab\x001\x00c\x00\x00",
        ]
        .concat();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn an_edit_removes_writes_and_keeps_everything_else() {
        let headers: Vec<(&str, &[u8])> = vec![
            (":method", b"GET"),
            (":path", b"/x?access_token=t&a=1"),
            ("authorization", b"Bearer t"),
            ("x-user-id", b"mallory"),
            ("cookie", b"a=1"),
            ("x-user-id", b"again"),
            ("x-binary", b"\xff\x00"),
            ("cookie", b"b=2"),
        ];
        let remove = vec!["authorization".to_string(), "x-user-id".to_string()];
        let set = vec![
            ("x-user-id", "alice"),
            (":path", "/x?a=1"),
            ("x-auth-provider", "main"),
        ];
        let bytes = edited(&headers, &remove, &set).unwrap();
        let expected: Vec<(&str, &[u8])> = vec![
            (":method", b"GET"),
            (":path", b"/x?a=1"),
            ("x-user-id", b"alice"),
            ("cookie", b"a=1"),
            ("x-binary", b"\xff\x00"),
            ("cookie", b"b=2"),
            ("x-auth-provider", b"main"),
        ];
        assert_eq!(parse(&bytes).unwrap(), expected);
        // Nothing to change: the same headers.
        assert_eq!(
            parse(&edited(&headers, &[], &[]).unwrap()).unwrap(),
            headers
        );
    }

    #[test]
    fn reads_every_header_in_order_with_raw_values() {
        let headers: Vec<(&str, &[u8])> = vec![
            (":method", b"GET"),
            (":path", b"/a?b=c"),
            ("authorization", b"Bearer x.y.z"),
            ("x-empty", b""),
            ("x-binary", b"\xff\x00\xfe"),
            ("authorization", b"second"),
        ];
        assert_eq!(parse(&serialize(&headers)).unwrap(), headers);
    }

    #[test]
    fn empty_map_in_both_forms() {
        assert_eq!(parse(&[]).unwrap(), Vec::<Header<'_>>::new());
        assert_eq!(parse(&serialize(&[])).unwrap(), Vec::<Header<'_>>::new());
    }

    #[test]
    fn truncated_or_inconsistent_buffers_are_refused() {
        let good = serialize(&[("a", b"1"), ("bb", b"22")]);
        for cut in 1..good.len() {
            assert_eq!(parse(&good[..cut]), None, "cut at {cut}");
        }
        // A count far beyond the buffer, and lengths that overflow.
        let mut huge = good.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse(&huge), None);
        let mut long = good.clone();
        long[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse(&long), None);
    }

    #[test]
    fn a_name_that_is_not_utf8_is_skipped() {
        let mut bytes = serialize(&[("ab", b"1"), ("c", b"2")]);
        let at = 4 + 2 * 8;
        bytes[at] = 0xff;
        assert_eq!(parse(&bytes).unwrap(), vec![("c", &b"2"[..])]);
    }
}
