//! Signature checks by the proxy's native crypto: Envoy's `verify_signature`
//! foreign function runs EVP digest-verify for RSA PKCS#1 v1.5 and ECDSA,
//! 10-15 times faster than the same math inside wasm.
//!
//! Host-free: the protobuf messages, the JWS-to-DER signature conversion,
//! and the known-answer self-test that decides, per algorithm, whether the
//! host path is used at all. The call itself is behind [`NativeCrypto`].

use crate::jwt::{Algorithm, Jwk, SignatureAccelerator};
use crate::protobuf::{put_bytes, take_len, take_varint};

/// One call of the host's verifier.
pub trait NativeCrypto {
    /// `None` when the call failed (no such function, bad arguments).
    fn verify(
        &self,
        hash: &str,
        spki_der: &[u8],
        signature_der: &[u8],
        text: &[u8],
    ) -> Option<bool>;
}

/// `VerifySignatureArguments { string hash_function = 1; bytes public_key = 2;
/// bytes signature = 3; bytes text = 4; }`
pub fn encode_arguments(hash: &str, spki_der: &[u8], signature: &[u8], text: &[u8]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(hash.len() + spki_der.len() + signature.len() + text.len() + 16);
    put_bytes(&mut out, 0x0a, hash.as_bytes());
    put_bytes(&mut out, 0x12, spki_der);
    put_bytes(&mut out, 0x1a, signature);
    put_bytes(&mut out, 0x22, text);
    out
}

/// `VerifySignatureResult { bool result = 1; string error = 2; }`; unknown
/// fields are skipped as protobuf requires.
pub fn decode_result(mut bytes: &[u8]) -> Option<(bool, String)> {
    let mut result = false;
    let mut error = String::new();
    while !bytes.is_empty() {
        let key = take_varint(&mut bytes)?;
        match (key >> 3, key & 7) {
            (1, 0) => result = take_varint(&mut bytes)? != 0,
            (2, 2) => error = String::from_utf8_lossy(take_len(&mut bytes)?).into_owned(),
            (_, 0) => {
                take_varint(&mut bytes)?;
            }
            (_, 2) => {
                take_len(&mut bytes)?;
            }
            (_, 1) => bytes = bytes.get(8..)?,
            (_, 5) => bytes = bytes.get(4..)?,
            _ => return None,
        }
    }
    Some((result, error))
}

/// A JWS ECDSA signature (`r || s`, each exactly `size` bytes) as the DER
/// `SEQUENCE { INTEGER r, INTEGER s }` that EVP expects. `None` for a
/// wrong length or a zero `r` or `s`: invalid whatever the key.
pub fn ecdsa_raw_to_der(raw: &[u8], size: usize) -> Option<Vec<u8>> {
    if raw.len() != 2 * size {
        return None;
    }
    let (r, s) = raw.split_at(size);
    let mut body = Vec::with_capacity(2 * size + 8);
    for part in [r, s] {
        let start = part.iter().position(|&b| b != 0)?;
        let digits = part.get(start..)?;
        // A set high bit would read as negative: prefix a zero byte.
        let pad = digits.first().is_some_and(|b| b & 0x80 != 0);
        body.push(0x02);
        push_der_len(&mut body, digits.len() + usize::from(pad));
        if pad {
            body.push(0);
        }
        body.extend_from_slice(digits);
    }
    let mut der = Vec::with_capacity(body.len() + 4);
    der.push(0x30);
    push_der_len(&mut der, body.len());
    der.extend_from_slice(&body);
    Some(der)
}

fn push_der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        // Lengths here stay below 256 (P-521: 139 bytes at most).
        out.push(0x81);
        out.push(len as u8);
    }
}

/// What the host path handles: the hash name EVP takes and, for ECDSA, the
/// size of `r` and `s`.
fn native_form(alg: Algorithm) -> Option<(&'static str, Option<usize>)> {
    use Algorithm::*;
    Some(match alg {
        Rs256 => ("sha256", None),
        Rs384 => ("sha384", None),
        Rs512 => ("sha512", None),
        Es256 => ("sha256", Some(32)),
        Es384 => ("sha384", Some(48)),
        Es512 => ("sha512", Some(66)),
        _ => return None,
    })
}

/// Routes RS* and ES* signatures to the host for the algorithms whose
/// self-test passed.
pub struct Accelerator<C> {
    crypto: C,
    enabled: Vec<Algorithm>,
}

impl<C: NativeCrypto> Accelerator<C> {
    /// Runs the known-answer self-test: for each algorithm family one valid
    /// and one invalid signature must get exactly `true` and `false`.
    pub fn new(crypto: C) -> Self {
        let mut enabled = Vec::new();
        for (algs, spki, sig) in known_answers() {
            let Some(spki) = hex(spki) else { continue };
            let Some(sig) = hex(sig) else { continue };
            let mut bad = sig.clone();
            if let Some(last) = bad.last_mut() {
                *last ^= 1;
            }
            let probe = Accelerator {
                crypto: &crypto,
                enabled: vec![algs[0]],
            };
            let ok = probe.check(algs[0], &spki, KAT_MESSAGE, &sig) == Some(true)
                && probe.check(algs[0], &spki, KAT_MESSAGE, &bad) == Some(false);
            if ok {
                enabled.extend_from_slice(algs);
            }
        }
        Accelerator { crypto, enabled }
    }

    /// No algorithm goes to the host: every signature is checked in wasm.
    pub fn off(crypto: C) -> Self {
        Accelerator {
            crypto,
            enabled: Vec::new(),
        }
    }

    pub fn enabled(&self) -> &[Algorithm] {
        &self.enabled
    }

    fn check(&self, alg: Algorithm, spki: &[u8], input: &[u8], signature: &[u8]) -> Option<bool> {
        if !self.enabled.contains(&alg) {
            return None;
        }
        let (hash, ec_size) = native_form(alg)?;
        match ec_size {
            None => self.crypto.verify(hash, spki, signature, input),
            Some(size) => match ecdsa_raw_to_der(signature, size) {
                Some(der) => self.crypto.verify(hash, spki, &der, input),
                None => Some(false),
            },
        }
    }
}

/// The host's side of the signature layer (`jwt::verify`, which puts the
/// filter's own signature rules, such as low-S ECDSA, in front of it).
impl<C: NativeCrypto> SignatureAccelerator for Accelerator<C> {
    fn handles(&self, alg: Algorithm) -> bool {
        self.enabled.contains(&alg)
    }

    fn verify(
        &self,
        alg: Algorithm,
        key: &Jwk,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Option<bool> {
        // The key-type rules that prevent algorithm confusion apply first.
        if !key.fits(alg) {
            return Some(false);
        }
        self.check(alg, key.spki()?, signing_input, signature)
    }
}

impl<C: NativeCrypto> NativeCrypto for &C {
    fn verify(
        &self,
        hash: &str,
        spki_der: &[u8],
        signature_der: &[u8],
        text: &[u8],
    ) -> Option<bool> {
        (**self).verify(hash, spki_der, signature_der, text)
    }
}

const KAT_MESSAGE: &[u8] = b"jwt-auth-wasm known-answer test";

/// Public keys and signatures over [`KAT_MESSAGE`] (made once with the
/// openssl CLI; the private keys were discarded).
fn known_answers() -> [(&'static [Algorithm], &'static str, &'static str); 4] {
    use Algorithm::*;
    [
        (&[Rs256, Rs384, Rs512], KAT_RSA_SPKI, KAT_RSA_SIG),
        (&[Es256], KAT_P256_SPKI, KAT_P256_SIG),
        (&[Es384], KAT_P384_SPKI, KAT_P384_SIG),
        (&[Es512], KAT_P521_SPKI, KAT_P521_SIG),
    ]
}

fn hex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

const KAT_RSA_SPKI: &str = "30820122300d06092a864886f70d01010105000382010f003082010a028201010097f8b5e5c9647a904788d05bcb721f6d96271d4448779b519e7dbda3d0e9fed4f61a703bb8d4c803fa3d59b2bb72b66caca6f34811884bdebd475ee2907659eee653f1dbea3cae71a7f459b7c8c4917aec95dc10e660e729eed0215541eaacdbd77f2fa9a9531d3fd59c077178f0498274d4921027c0406b284fe35683df7ff53fd37a9829a9004a17dfe8675cff97623393844d029ff8a2cc83bdd6ed5548dfb9f700d359553320b2aabbac9ecdcdeeba58970d788fcbc9c5cc271261bf31323601379c605febe5292838624e45225c8dbfabdc5346e24778a22310d57408fc9feaf2a93a93e883c6f01376016fc157a6b470ba1651531dc66765251760cc9b0203010001";
const KAT_RSA_SIG: &str = "6bed067ed0aaf13875e59d8deb23b55d1e78528b07d982d5663d63d329937d823559bb2eba4501c1eb9d6c4c17dcac2d0025a9d757a0ac23d012e83ce3545f3cae1b7bf27582eb8440bc6cf8fd0d2d8f3a842a01bc1aea6cbdfcf13855d38f029b4d57521647719e09496238c6ed7d3c4286a6a623d9742f42dbc363a416184777e981d3c6030f05c9dd74e005bffea4f79a0fa25f6cdf8fe421c8d87c8a7b92489f6bee7f8a84213b44203a55356afe6ef7762872f0e5e092fc7b8a3e5919df56af17e12d2eaccc9021b4f1e1d79df415c5c7276510f370be87f702a72065128d2eb9d827cfaf491338aa99d346d8686c2ef25d75912b52481183a9634c27c4";
const KAT_P256_SPKI: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200049571cdd713bf5785767730839d464bd10706deee25e44cc1c593c44b65a9103967dffa3495a77894db36853196aeb61380807fac4fc897262de3d8a2c2aabd6d";
const KAT_P256_SIG: &str = "524284750816871dab8d4be7547a9ca389f9570aff63eb65180a9b8d29956ff76ff09446f0f0c00b8cc346f4072d3b40a1277f87edf57f100f5bd88eca1b24af";
const KAT_P384_SPKI: &str = "3076301006072a8648ce3d020106052b8104002203620004701aa1759532d31a58050fee1d9ca9b96d97628e2a85707f6e816ba7db5974250723f5c4b8e5b7c4b72664ed894f999044e085ccc50be7d224229398678c54679f1bd52fb4742fc45371831ac37a9e83c4948c9e2ef0e9bf6afd02e9ee0a121f";
const KAT_P384_SIG: &str = "585ed221d15f283d46e51ed883da5fdb588b092be130f8406e1cab8649e2e968a519e3bac0e0ad3741f1fafe443f60eb247ebf10f2ec710dd60cb926a72e38d9cfeb5b039127b62a177375aa889251a463f3c3557a7af8e04dd060d46ec45ca7";
const KAT_P521_SPKI: &str = "30819b301006072a8648ce3d020106052b81040023038186000401d3361c28f4ba297292043f797c549abab4401b369d99fc59ffe609a5c720c2456ab0c08f9221540c77dd3ed0eb605cd29ba649572672197d30f1f354c62123aa05012144962c582917906d38fad57325f5dd55fa0bd8dee66b8a0ddc68835fd176a3725343876a7b490aada929612b77e851379242901a115c8b09f0b235f894719cd0";
const KAT_P521_SIG: &str = "010e8015c7e9cf2e6a8673e1a35c362df198b4e2dc6f77d86743619ea4a8bada3a977bc2e92fcbca6a87d33afedee39dec83a61b19747f4a76734e7eaf2f3a9d9984008233938e9d2a3255116e64951d828825fdde08341fadce2e71b4d703fce28a22e0913f4154eef1d066ce9bcf855e576d8a3de90bc6af887e1205cb70d98cd3c03a";

#[cfg(test)]
mod tests;
