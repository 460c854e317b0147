use super::*;
use crate::jwt::test_support::{
    b64, jwk, jwk_with, jwks, oct_jwk, secret64, signing_key, token, token_with_header, SigningKey,
};
use crate::jwt::{parse, Algorithm::*};
use base64::Engine as _;
use serde_json::{json, Value};

use super::material::JWK_B64;
use crate::jwt::{Algorithm, SignatureAccelerator, TokenError};

const ALL_FIXTURES: [&str; 8] = [
    "rsa2048",
    "rsa2048-b",
    "rsa2560",
    "rsa3072",
    "p256",
    "p384",
    "p521",
    "ed25519",
];

fn load_err(key: Value) -> String {
    Jwk::from_value(&key).unwrap_err()
}

fn verify_token(set: &KeySet, token: &str) -> Result<(), TokenError> {
    set.verify(&parse(token, 16 * 1024).unwrap())
}

#[allow(non_snake_case)]
pub(super) fn URL_SAFE_NO_PAD_DECODE(s: &str) -> Vec<u8> {
    JWK_B64.decode(s).unwrap()
}

mod loading;
mod selection;
