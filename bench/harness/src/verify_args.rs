//! `verify-args ALG...`: arguments for Envoy's `verify_signature` foreign
//! function carrying a real, valid signature, for `make bench-host-calls`
//! (bench/host-probe calls the function with them).
//!
//! For each algorithm (RS256, ES256): a token signed with testkit's key, the
//! public key as the filter derives it from the JWK (`Jwk::spki`, DER
//! SubjectPublicKeyInfo), and the `VerifySignatureArguments` message built by
//! the filter's own encoder (`host_crypto::encode_arguments`) in three key forms:
//!
//! - `der`: the DER key in `public_key` (field 2), what the filter sends;
//! - `pem`: the same key as PEM text in `public_key_pem` (field 5);
//! - `pem_in_key_field`: the PEM text in `public_key` (field 2);
//!
//! and for RSA two more, the PKCS#1 `RSAPublicKey` without the SPKI wrapper:
//! `pkcs1_der` in `public_key` and `pkcs1_pem` (`RSA PUBLIC KEY`) in
//! `public_key_pem`.
//!
//! Output: `{"expect_hex": "0801", "algs": {"RS256": {"der": HEX, "pem":
//! HEX, "pem_in_key_field": HEX, "pkcs1_der": HEX, "pkcs1_pem": HEX,
//! "key_der_bytes": N, "key_pem_bytes": N}}}`; `expect_hex` is
//! `VerifySignatureResult { result: true }` serialized.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jwt_auth_core::host_crypto::{ecdsa_raw_to_der, encode_arguments};
use jwt_auth_core::jwt::Jwk;
use serde_json::{json, Map, Value};
use testkit::{b64url_decode, mint, Key};

/// `VerifySignatureResult { bool result = 1; }` with `result` true; an empty
/// `error` is not serialized.
const VALID: &str = "0801";

/// Protobuf tags (field << 3 | length-delimited) of `public_key` and
/// `public_key_pem` in `VerifySignatureArguments`.
const TAG_PUBLIC_KEY: u8 = 0x12;
const TAG_PUBLIC_KEY_PEM: u8 = 0x2a;

pub fn run(args: &[String]) -> Result<(), String> {
    if args.is_empty() {
        return Err("verify-args ALG... (RS256, ES256)".into());
    }
    let mut algs = Map::new();
    for alg in args {
        algs.insert(alg.clone(), arguments(alg)?);
    }
    println!("{}", json!({"expect_hex": VALID, "algs": algs}));
    Ok(())
}

fn arguments(alg: &str) -> Result<Value, String> {
    // The hash name EVP takes and, for ECDSA, the size of `r` and `s`.
    let (hash, ec_size) = match alg {
        "RS256" => ("sha256", None),
        "ES256" => ("sha256", Some(32)),
        other => return Err(format!("verify-args: unsupported algorithm {other:?}")),
    };
    let key = Key::for_alg(alg);
    let token = mint(alg, &key, &Value::Null, &json!({"sub": "host-probe"}));
    let (input, signature) = token
        .rsplit_once('.')
        .ok_or("verify-args: minted token has no signature")?;
    let raw = b64url_decode(signature);
    let signature = match ec_size {
        None => raw,
        Some(size) => ecdsa_raw_to_der(&raw, size).ok_or("verify-args: bad ECDSA signature")?,
    };
    let jwk = Jwk::from_value(&key.jwk(Some(alg)))?;
    let der = jwk.spki().ok_or("verify-args: key has no SPKI")?;
    let spki_pem = pem("PUBLIC KEY", der);
    let text = input.as_bytes();
    let in_key_field = encode_arguments(hash, spki_pem.as_bytes(), &signature, text);
    let mut out = json!({
        "der": hex(&encode_arguments(hash, der, &signature, text)),
        "pem": hex(&moved_to_pem_field(in_key_field.clone(), hash)?),
        "pem_in_key_field": hex(&in_key_field),
        "key_der_bytes": der.len(),
        "key_pem_bytes": spki_pem.len(),
    });
    if ec_size.is_none() {
        let pkcs1 = spki_key_bits(der).ok_or("verify-args: unexpected SPKI layout")?;
        let pkcs1_pem = pem("RSA PUBLIC KEY", pkcs1);
        let message = encode_arguments(hash, pkcs1_pem.as_bytes(), &signature, text);
        out["pkcs1_der"] = json!(hex(&encode_arguments(hash, pkcs1, &signature, text)));
        out["pkcs1_pem"] = json!(hex(&moved_to_pem_field(message, hash)?));
    }
    Ok(out)
}

/// The `subjectPublicKey` BIT STRING's content of a DER SubjectPublicKeyInfo
/// (`SEQUENCE { AlgorithmIdentifier, BIT STRING }`): for RSA, the PKCS#1
/// `RSAPublicKey`.
fn spki_key_bits(spki: &[u8]) -> Option<&[u8]> {
    let (_, body) = der_tlv(spki)?;
    let (algorithm_len, _) = der_tlv(body)?;
    let (_, bits) = der_tlv(body.get(algorithm_len..)?)?;
    // The first content byte counts the unused bits: 0 for a key.
    bits.split_first()
        .and_then(|(&unused, key)| (unused == 0).then_some(key))
}

/// One DER TLV at the start of `der`: (its whole length, its content).
fn der_tlv(der: &[u8]) -> Option<(usize, &[u8])> {
    let first = usize::from(*der.get(1)?);
    let (header, len) = if first < 0x80 {
        (2, first)
    } else {
        let count = first & 0x7f;
        let bytes = der.get(2..2 + count)?;
        let len = bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
        (2 + count, len)
    };
    Some((header + len, der.get(header..header + len)?))
}

/// The same message with the key under `public_key_pem` instead of
/// `public_key`: `encode_arguments` writes `hash_function` first (tag, one
/// length byte, the name), then the key, so only that one tag byte changes.
fn moved_to_pem_field(mut message: Vec<u8>, hash: &str) -> Result<Vec<u8>, String> {
    let at = 2 + hash.len();
    match message.get_mut(at) {
        Some(tag) if *tag == TAG_PUBLIC_KEY => {
            *tag = TAG_PUBLIC_KEY_PEM;
            Ok(message)
        }
        _ => Err("verify-args: unexpected VerifySignatureArguments layout".into()),
    }
}

/// DER as a PEM block with that label, 64 characters a line.
fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
