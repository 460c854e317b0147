//! Adversarial end-to-end suite: the built filter inside a
//! real Envoy with the shipped `envoy.yaml` HTTP settings (`normalize_path`,
//! `merge_slashes`, `path_with_escaped_slashes_action: REJECT_REQUEST`,
//! `headers_with_underscores_action: DROP_HEADER`, `codec_type: AUTO`), every
//! case sent over HTTP/1.1 AND HTTP/2 cleartext (prior knowledge, the
//! hand-rolled client of `testkit::h2`).
//!
//! Each case states the expected answer and what the upstream may see:
//! - `Allow`: 200 from the echo upstream, which saw exactly the listed
//!   identity headers (every other identity header name absent);
//! - `Deny`: this status and RFC 6750 error from the filter, never forwarded;
//! - `Refused`: Envoy itself refuses (one of the listed statuses, or a stream
//!   reset / closed connection), never forwarded.
//!
//! On top of that, two invariants hold for EVERY case: no header the
//! upstream receives carries a spoofed value (all spoofs contain "mallory"),
//! and a request without a verified token reaches the upstream only on a path
//! (as Envoy forwarded it) under a bypass or `allow_missing` rule.
//!
//! Behaviour found here that is worth knowing is pinned by the cases and
//! summarized in the `NOTE:` comments; run with `--nocapture` to print the
//! observed outcome of every case.
//!
//! The cases are grouped by theme: forged identity headers (`spoofing`),
//! paths (`paths`), tokens and claims (`tokens`), and what must not leak
//! between requests and plugins (`isolation`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;
mod isolation;
mod paths;
mod spoofing;
mod tokens;
