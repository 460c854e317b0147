//! The little of protobuf's wire format that Envoy's foreign functions
//! take and return (`verify_signature`, `set_envoy_filter_state`): varints
//! and length-delimited fields, written and read without a protobuf crate.

/// Appends `n` as a base-128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Appends a length-delimited field: its key byte (`field << 3 | 2`), the
/// length and the bytes.
pub fn put_bytes(out: &mut Vec<u8>, key: u8, field: &[u8]) {
    out.push(key);
    put_varint(out, field.len() as u64);
    out.extend_from_slice(field);
}

/// Reads a varint off the front of `bytes`; `None` when it is cut short or
/// longer than 64 bits.
pub fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut n: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        n |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(n);
        }
    }
    None
}

/// Reads a length-delimited field's bytes off the front of `bytes`.
pub fn take_len<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(take_varint(bytes)?).ok()?;
    let field = bytes.get(..len)?;
    *bytes = bytes.get(len..)?;
    Some(field)
}
