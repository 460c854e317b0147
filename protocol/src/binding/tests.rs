// Tests may unwrap: a panic is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::{sign, SIGNATURE_HEADER};

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const BODY: &[u8] =
    br#"{"cursor":"4be3a1f07c9d2e18-7","reset":false,"revoked":[],"revoked_subjects":[]}"#;
const SINCE: &str = "4be3a1f07c9d2e18-7";
const NONCE: &str = "8f14e45fceea167a5a36dedd4bea2543";
const EPOCH: &str = "4be3a1f07c9d2e18";
const TIME: u64 = 1_767_225_600;

fn header() -> String {
    bound_signature(KEY, SINCE, NONCE, EPOCH, TIME, &body_digest(BODY)).unwrap()
}

fn verify(header: &str, body: &[u8], since: &str, nonce: &str) -> Result<Binding, BindingError> {
    verify_bound_signature(KEY, Some(header), body, since, nonce)
}

/// The header with one field's value replaced.
fn with_field(header: &str, key: &str, value: &str) -> String {
    header
        .split(',')
        .map(|item| match item.split_once('=') {
            Some((k, _)) if k == key => format!("{k}={value}"),
            _ => item.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn a_bound_answer_verifies_and_reports_time_and_epoch() {
    let h = header();
    assert!(
        h.starts_with(&format!("v=2,t={TIME},epoch={EPOCH},sig=")),
        "{h}"
    );
    let sig = h.rsplit_once("sig=").unwrap().1;
    assert_eq!(sig.len(), 64);
    assert!(sig.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    assert_eq!(
        verify(&h, BODY, SINCE, NONCE),
        Ok(Binding {
            time: TIME,
            epoch: EPOCH.into()
        })
    );
}

#[test]
fn the_mac_input_is_the_documented_one() {
    // An independent construction of the version 2 MAC input, so that the
    // wire format cannot change by accident.
    use hmac::{Mac, SimpleHmac};
    use sha2::{Digest, Sha256};
    let mut input = b"jwt-auth-wasm revocation binding v2\0".to_vec();
    for field in [SINCE, NONCE, EPOCH] {
        input.extend_from_slice(&(field.len() as u64).to_be_bytes());
        input.extend_from_slice(field.as_bytes());
    }
    input.extend_from_slice(&TIME.to_be_bytes());
    input.extend_from_slice(&Sha256::digest(BODY));
    let mut mac = <SimpleHmac<Sha256> as Mac>::new_from_slice(KEY).unwrap();
    mac.update(&input);
    let mut hex = String::new();
    push_hex(&mut hex, &mac.finalize().into_bytes());
    assert_eq!(header(), format!("v=2,t={TIME},epoch={EPOCH},sig={hex}"));
}

#[test]
fn another_nonce_since_or_body_is_a_mismatch() {
    let h = header();
    let other_nonce = "8f14e45fceea167a5a36dedd4bea2544";
    assert_eq!(
        verify(&h, BODY, SINCE, other_nonce),
        Err(BindingError::Mismatch)
    );
    assert_eq!(
        verify(&h, BODY, "4be3a1f07c9d2e18-6", NONCE),
        Err(BindingError::Mismatch)
    );
    assert_eq!(verify(&h, BODY, "", NONCE), Err(BindingError::Mismatch));
    let mut body = BODY.to_vec();
    body.push(b' ');
    assert_eq!(verify(&h, &body, SINCE, NONCE), Err(BindingError::Mismatch));
    assert_eq!(verify(&h, b"", SINCE, NONCE), Err(BindingError::Mismatch));
}

#[test]
fn an_altered_time_or_epoch_or_another_key_is_a_mismatch() {
    let h = header();
    for altered in [
        with_field(&h, "t", &(TIME + 1).to_string()),
        with_field(&h, "t", &(TIME - 3600).to_string()),
        with_field(&h, "epoch", "4be3a1f07c9d2e19"),
        with_field(&h, "epoch", "ffffffffffffffff"),
    ] {
        assert_ne!(altered, h);
        assert_eq!(
            verify(&altered, BODY, SINCE, NONCE),
            Err(BindingError::Mismatch),
            "{altered}"
        );
    }
    assert_eq!(
        verify_bound_signature(
            b"another key, just as long as KEY",
            Some(&h),
            BODY,
            SINCE,
            NONCE
        ),
        Err(BindingError::Mismatch)
    );
    // A binding built for another epoch or time verifies, reporting those:
    // judging them is the filter's part.
    let later = bound_signature(KEY, SINCE, NONCE, "00aa", TIME + 5, &body_digest(BODY)).unwrap();
    assert_eq!(
        verify(&later, BODY, SINCE, NONCE),
        Ok(Binding {
            time: TIME + 5,
            epoch: "00aa".into()
        })
    );
}

#[test]
fn fields_cannot_be_shifted_into_one_another() {
    // Without length prefixes "a" + "bc" and "ab" + "c" would hash alike.
    let d = body_digest(BODY);
    let a = bound_signature(KEY, "a", "bcbcbcbcbcbcbcbc", EPOCH, TIME, &d).unwrap();
    let b = bound_signature(KEY, "ab", "cbcbcbcbcbcbcbc", EPOCH, TIME, &d).unwrap();
    assert_ne!(a, b);
    assert_eq!(
        verify(&a, BODY, "ab", "cbcbcbcbcbcbcbc"),
        Err(BindingError::Mismatch)
    );
}

#[test]
fn a_v1_only_answer_is_unbound() {
    let v1 = sign(KEY, BODY);
    assert_eq!(
        verify_bound_signature(KEY, None, BODY, SINCE, NONCE),
        Err(BindingError::Unbound)
    );
    assert_eq!(BindingError::Unbound.label(), "unbound");
    assert_eq!(BindingError::Mismatch.label(), "replayed");
    // The body-only signature put in the binding header is not a binding.
    assert!(matches!(
        verify(&v1, BODY, SINCE, NONCE),
        Err(BindingError::Malformed(_))
    ));
    assert!(BindingError::Unbound.to_string().contains(BINDING_HEADER));
    assert_ne!(BINDING_HEADER, SIGNATURE_HEADER);
}

#[test]
fn malformed_headers_are_named_as_such() {
    let h = header();
    let sig = h.rsplit_once("sig=").unwrap().1.to_string();
    let cases = [
        String::new(),
        "garbage".to_string(),
        with_field(&h, "v", "1"),
        with_field(&h, "v", "3"),
        h.replacen("v=2,", "", 1),
        h.replacen(&format!(",t={TIME}"), "", 1),
        h.replacen(&format!(",epoch={EPOCH}"), "", 1),
        h.replacen(&format!(",sig={sig}"), "", 1),
        format!("{h},t={TIME}"),
        format!("{h},extra=1"),
        with_field(&h, "t", ""),
        with_field(&h, "t", &format!("+{TIME}")),
        with_field(&h, "t", "-1"),
        with_field(&h, "t", "1.5"),
        with_field(&h, "t", "99999999999999999999"),
        with_field(&h, "epoch", ""),
        with_field(&h, "epoch", "a b"),
        with_field(&h, "epoch", "a;b"),
        with_field(&h, "epoch", &"e".repeat(MAX_EPOCH_BYTES + 1)),
        with_field(&h, "sig", &sig[..63]),
        with_field(&h, "sig", &format!("{sig}0")),
        with_field(&h, "sig", &format!("sha256={sig}")),
        with_field(&h, "sig", &sig.replace(|c: char| c.is_ascii_digit(), "g")),
    ];
    for case in cases {
        assert!(
            matches!(
                verify(&case, BODY, SINCE, NONCE),
                Err(BindingError::Malformed(_))
            ),
            "{case:?}"
        );
    }
}

#[test]
fn field_order_spacing_and_hex_case_do_not_matter() {
    let h = header();
    let fields: Vec<&str> = h.split(',').collect();
    let reordered = format!(
        " {} , {} ,{}, {} ",
        fields[3], fields[1], fields[0], fields[2]
    );
    assert!(verify(&reordered, BODY, SINCE, NONCE).is_ok());
    let sig = h.rsplit_once("sig=").unwrap().1.to_uppercase();
    assert!(verify(&with_field(&h, "sig", &sig), BODY, SINCE, NONCE).is_ok());
}

#[test]
fn epochs_that_cannot_be_carried_are_refused_when_building() {
    let d = body_digest(BODY);
    for epoch in ["", "a,b", "a=b", "a b", "é"] {
        assert_eq!(
            bound_signature(KEY, SINCE, NONCE, epoch, TIME, &d),
            None,
            "{epoch:?}"
        );
    }
    let longest = "e".repeat(MAX_EPOCH_BYTES);
    assert!(bound_signature(KEY, SINCE, NONCE, &longest, TIME, &d).is_some());
    assert!(bound_signature(KEY, SINCE, NONCE, "a.b_c-9", TIME, &d).is_some());
}

#[test]
fn an_answer_to_a_poll_without_since_or_nonce_binds_them_empty() {
    let d = body_digest(BODY);
    let h = bound_signature(KEY, "", "", EPOCH, TIME, &d).unwrap();
    assert!(verify(&h, BODY, "", "").is_ok());
    assert_eq!(verify(&h, BODY, "", NONCE), Err(BindingError::Mismatch));
    // Any byte in `since` is bound as it is.
    let odd = "a\nb,c=d~e%41";
    let h = bound_signature(KEY, odd, NONCE, EPOCH, TIME, &d).unwrap();
    assert!(verify(&h, BODY, odd, NONCE).is_ok());
}

#[test]
fn nonces_are_bounded_lowercase_hex() {
    assert_eq!(check_nonce(NONCE), Ok(()));
    assert_eq!(check_nonce(&"0".repeat(NONCE_MIN_LEN)), Ok(()));
    assert_eq!(check_nonce(&"f".repeat(NONCE_MAX_LEN)), Ok(()));
    for bad in [
        String::new(),
        "0".repeat(NONCE_MIN_LEN - 1),
        "0".repeat(NONCE_MAX_LEN + 1),
        NONCE.to_uppercase(),
        format!("{}g", &NONCE[..31]),
        format!("{} ", &NONCE[..31]),
        format!("{}%", &NONCE[..31]),
    ] {
        assert!(check_nonce(&bad).is_err(), "{bad:?}");
    }
    let n = encode_nonce(&[
        0x00, 0x01, 0xab, 0xff, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0x10, 0xfe,
    ]);
    assert_eq!(n, "0001abff0908070605040302010010fe");
    assert_eq!(n.len(), 2 * NONCE_BYTES);
    assert_eq!(check_nonce(&n), Ok(()));
}

#[test]
fn the_poll_path_carries_cursor_pages_nonce_and_wait() {
    assert_eq!(
        poll_request_path("/v1/revocations", None, NONCE, None),
        format!("/v1/revocations?paged=1&nonce={NONCE}")
    );
    assert_eq!(
        poll_request_path("/v1/revocations", Some("e-1~5.2"), NONCE, Some(25_000)),
        format!("/v1/revocations?since=e-1~5.2&paged=1&nonce={NONCE}&wait_ms=25000")
    );
    assert_eq!(
        poll_request_path("/feed?tenant=a", Some("a b"), NONCE, Some(0)),
        format!("/feed?tenant=a&since=a%20b&paged=1&nonce={NONCE}&wait_ms=0")
    );
}
