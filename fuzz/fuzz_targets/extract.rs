//! Requests built from fuzz data (method, path, raw header bytes, tokens in
//! headers, query and cookies): `extract::extract` with a fixed set of token
//! sources, and `decision::decide` on a fixed policy (fuzz_support's
//! DECIDE_CONFIG). Tokens the input asks for are HS256-signed by the harness,
//! so authenticated decisions are reached too.
//!
//! Invariants (see fuzz_support::request::check): never panics; an Allow
//! never writes a header value with CR/LF/NUL; every identity header the
//! client sent is removed or overwritten; only a good signature
//! authenticates; bypass/anonymous only on the routes configured for them;
//! stale revocation data with on_stale=deny admits no token; deny responses
//! are header-safe.
#![no_main]

use fuzz_support::request::{check, RequestInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: RequestInput| {
    check(&input);
});
