//! The proxy-wasm serialized header map, read in place.
//!
//! Envoy hands a map over as one buffer: a u32 count, then a (name length,
//! value length) u32 pair per header, then each name and value followed by a
//! NUL byte (all little endian). The SDK turns that into one owned `String`
//! and one `Vec` per header; reading it in place borrows every header from
//! the one buffer, so a request's headers cost one allocation instead of two
//! per header on the path every request takes.

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

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout Envoy writes.
    fn serialize(headers: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = (headers.len() as u32).to_le_bytes().to_vec();
        for (n, v) in headers {
            out.extend_from_slice(&(n.len() as u32).to_le_bytes());
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        }
        for (n, v) in headers {
            out.extend_from_slice(n.as_bytes());
            out.push(0);
            out.extend_from_slice(v);
            out.push(0);
        }
        out
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
