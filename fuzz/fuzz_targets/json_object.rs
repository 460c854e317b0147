//! JSON bytes: `jwt::JsonObject::parse`, the reader of every token's header
//! and claims, against serde_json reading the same bytes into a map.
//!
//! Oracles: it accepts exactly the documents serde_json reads as one JSON
//! object (numbers beyond f64 aside, which serde_json refuses in a map and
//! the object leaves to the claim that reads them: nesting depth and
//! surrogate pairs are checked as reading checks them); every member reads as
//! serde_json reads it, the last of repeated names winning; string and
//! number accessors agree with the parsed values.
#![no_main]

use jwt_auth_core::jwt::{as_number, as_str, JsonObject, ObjectError};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let parsed = JsonObject::parse(data.to_vec());
    // Skipping a string, serde_json does not check its UTF-8; JSON text is
    // UTF-8 throughout.
    let is_json = std::str::from_utf8(data).is_ok()
        && serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok();
    let as_map = serde_json::from_slice::<Map<String, Value>>(data);
    match (&parsed, &as_map) {
        (Ok(_), _) if !is_json => panic!("accepted what serde_json refuses"),
        // Reading into a map refuses more than skipping does; the object
        // refuses the same, but for numbers beyond f64, which only the claim
        // that reads them refuses.
        (Ok(_), Err(e)) => assert!(
            e.to_string().starts_with("number out of range"),
            "accepted what serde_json refuses to read: {e}"
        ),
        (Ok(_), Ok(_)) => {}
        (Err(ObjectError::NotJson), _) => {
            assert!(as_map.is_err(), "refused an object serde_json reads")
        }
        (Err(ObjectError::NotObject), _) => {
            assert!(is_json);
            assert!(as_map.is_err(), "refused an object as not an object");
        }
    }
    let (Ok(object), Ok(map)) = (parsed, as_map) else {
        return;
    };
    for (name, value) in &map {
        assert_eq!(object.value(name).as_ref(), Some(value), "member {name:?}");
        let raw = object.raw(name).expect("a member of the map has raw text");
        assert_eq!(as_str(raw).as_deref(), value.as_str(), "string {name:?}");
        assert_eq!(
            as_number(raw).as_ref(),
            value.as_number(),
            "number {name:?}"
        );
    }
    assert_eq!(object.to_value(), Value::Object(map));
});
