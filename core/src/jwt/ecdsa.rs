//! ECDSA verification over P-384 and P-521 (ES384, ES512) in little code.
//!
//! The p384 and p521 crates verify faster, but their generated field
//! arithmetic is fully unrolled: together about 180 KB of the shipped module,
//! a quarter of it. On Envoy these curves are verified by the host's native
//! crypto (see the host accelerator), so this is the path for hosts without
//! it, for `native_verification: false` and for the native tools. It uses
//! crypto-bigint's Montgomery arithmetic with the modulus chosen at run time,
//! so one instantiation (576-bit numbers) serves both curves and both the field
//! and the group order. (P-256 keeps the p256 crate, which is small.)
//!
//! Every input here is public (key, message, signature), so variable-time
//! code leaks nothing secret. Verification follows SEC 1 v2 §4.1.4; tests
//! compare every result with the p384 and p521 crates.

use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::U576;

const LIMBS: usize = U576::LIMBS;
/// Bytes of a U576.
const WIDE: usize = 72;

type Residue = DynResidue<LIMBS>;
type Modulus = DynResidueParams<LIMBS>;

/// A short-Weierstrass curve y² = x³ - 3x + b over a prime field, of prime
/// order (cofactor 1), as the NIST P-curves are.
pub struct Curve {
    pub name: &'static str,
    /// Bytes of a coordinate and of each half of a JWS signature.
    pub size: usize,
    /// DER SubjectPublicKeyInfo up to the point: SEQUENCE, AlgorithmIdentifier
    /// (id-ecPublicKey, the curve's OID), BIT STRING header.
    spki_prefix: &'static [u8],
    p: Modulus,
    n: Modulus,
    b: U576,
    gx: U576,
    gy: U576,
}

/// Hex digits of a U576 for a value given in 96 digits (P-384 sizes).
macro_rules! u576_from_384 {
    ($hex:literal) => {
        U576::from_be_hex(concat!(
            "000000000000000000000000000000000000000000000000",
            $hex
        ))
    };
}

/// Curve parameters from SEC 2 v2 §2.5.1 / FIPS 186-4 D.1.2.4.
pub static P384: Curve = Curve {
    name: "P-384",
    size: 48,
    spki_prefix: &[
        0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05,
        0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
    ],
    p: DynResidueParams::new(&u576_from_384!("fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff")),
    n: DynResidueParams::new(&u576_from_384!("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973")),
    b: u576_from_384!("b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef"),
    gx: u576_from_384!("aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7"),
    gy: u576_from_384!("3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f"),
};

/// Curve parameters from SEC 2 v2 §2.6.1 / FIPS 186-4 D.1.2.5.
pub static P521: Curve = Curve {
    name: "P-521",
    size: 66,
    spki_prefix: &[
        0x30, 0x81, 0x9b, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
        0x05, 0x2b, 0x81, 0x04, 0x00, 0x23, 0x03, 0x81, 0x86, 0x00,
    ],
    p: DynResidueParams::new(&U576::from_be_hex("00000000000001ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")),
    n: DynResidueParams::new(&U576::from_be_hex("00000000000001fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409")),
    b: U576::from_be_hex("0000000000000051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00"),
    gx: U576::from_be_hex("00000000000000c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66"),
    gy: U576::from_be_hex("000000000000011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650"),
};

/// A validated public key: a point on its curve other than the identity.
#[derive(Clone)]
pub struct EcPublicKey {
    curve: &'static Curve,
    /// SEC1 uncompressed encoding, 0x04 || x || y: what equality compares and
    /// what the SubjectPublicKeyInfo for the host carries.
    sec1: Vec<u8>,
    x: U576,
    y: U576,
}

impl PartialEq for EcPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.curve.name == other.curve.name && self.sec1 == other.sec1
    }
}

impl Eq for EcPublicKey {}

impl std::fmt::Debug for EcPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "EcPublicKey({}, {} bytes)",
            self.curve.name,
            self.sec1.len()
        )
    }
}

/// Big-endian bytes (at most 72) as a U576; `None` when longer.
fn wide(bytes: &[u8]) -> Option<U576> {
    let mut buf = [0u8; WIDE];
    let start = WIDE.checked_sub(bytes.len())?;
    buf[start..].copy_from_slice(bytes);
    Some(U576::from_be_slice(&buf))
}

impl EcPublicKey {
    /// The key at affine (x, y), each exactly `curve.size` big-endian bytes.
    /// Refuses coordinates not below the field prime and points not on the
    /// curve (invalid-curve attacks); the identity has no affine form.
    pub fn from_coordinates(curve: &'static Curve, x: &[u8], y: &[u8]) -> Option<EcPublicKey> {
        if x.len() != curve.size || y.len() != curve.size {
            return None;
        }
        let (xi, yi) = (wide(x)?, wide(y)?);
        if xi >= *curve.p.modulus() || yi >= *curve.p.modulus() {
            return None;
        }
        let fx = Residue::new(&xi, curve.p);
        let fy = Residue::new(&yi, curve.p);
        let three_x = fx.add(&fx).add(&fx);
        let rhs = fx
            .square()
            .mul(&fx)
            .sub(&three_x)
            .add(&Residue::new(&curve.b, curve.p));
        if fy.square() != rhs {
            return None;
        }
        let mut sec1 = Vec::with_capacity(1 + 2 * curve.size);
        sec1.push(0x04);
        sec1.extend_from_slice(x);
        sec1.extend_from_slice(y);
        Some(EcPublicKey {
            curve,
            sec1,
            x: xi,
            y: yi,
        })
    }

    /// DER SubjectPublicKeyInfo (RFC 5480), for the host's verifier.
    pub fn spki_der(&self) -> Vec<u8> {
        [self.curve.spki_prefix, &self.sec1].concat()
    }

    /// Verifies a JWS signature (r || s, each `curve.size` bytes) over a
    /// message digest no wider than the group order (SHA-384 for P-384,
    /// SHA-512 for P-521: neither needs truncating).
    pub fn verify_digest(&self, digest: &[u8], signature: &[u8]) -> bool {
        let curve = self.curve;
        let n = curve.n.modulus();
        // A digest wider than the order would need truncating (SEC 1
        // §4.1.4 step 5); the JWS pairs never do, so it is refused.
        if signature.len() != 2 * curve.size || digest.len() * 8 > n.bits() {
            return false;
        }
        let (Some(r), Some(s), Some(e)) = (
            wide(&signature[..curve.size]),
            wide(&signature[curve.size..]),
            wide(digest),
        ) else {
            return false;
        };
        if r == U576::ZERO || s == U576::ZERO || r >= *n || s >= *n {
            return false;
        }
        // e < 2^384 < 2n for P-384 and e < 2^512 < n for P-521: one
        // subtraction reduces it.
        let e = if e >= *n { e.wrapping_sub(n) } else { e };
        let (w, invertible) = Residue::new(&s, curve.n).invert();
        if !bool::from(invertible) {
            return false;
        }
        let u1 = Residue::new(&e, curve.n).mul(&w).retrieve();
        let u2 = Residue::new(&r, curve.n).mul(&w).retrieve();
        let g = Point::affine(curve, &curve.gx, &curve.gy);
        let q = Point::affine(curve, &self.x, &self.y);
        let Some(x) = Point::double_mul(&g, &u1, &q, &u2).affine_x() else {
            return false;
        };
        // x < p < 2n for both curves, so x mod n needs at most one subtraction.
        let v = if x >= *n { x.wrapping_sub(n) } else { x };
        v == r
    }
}

/// A point in Jacobian coordinates (X/Z², Y/Z³); Z = 0 is the identity.
#[derive(Clone, Copy)]
struct Point {
    x: Residue,
    y: Residue,
    z: Residue,
}

impl Point {
    fn affine(curve: &Curve, x: &U576, y: &U576) -> Point {
        Point {
            x: Residue::new(x, curve.p),
            y: Residue::new(y, curve.p),
            z: Residue::one(curve.p),
        }
    }

    fn identity(like: &Point) -> Point {
        let zero = Residue::zero(*like.x.params());
        Point {
            x: Residue::one(*like.x.params()),
            y: Residue::one(*like.x.params()),
            z: zero,
        }
    }

    fn is_identity(&self) -> bool {
        is_zero(&self.z)
    }

    /// "dbl-2001-b" for a = -3 (Bernstein, Lange: Explicit-Formulas Database).
    fn double(&self) -> Point {
        if self.is_identity() {
            return *self;
        }
        let delta = self.z.square();
        let gamma = self.y.square();
        let beta = self.x.mul(&gamma);
        let t = self.x.sub(&delta).mul(&self.x.add(&delta));
        let alpha = t.add(&t).add(&t);
        let beta4 = times4(&beta);
        let x3 = alpha.square().sub(&beta4).sub(&beta4);
        let z3 = self.y.add(&self.z).square().sub(&gamma).sub(&delta);
        let gamma_sq4 = times4(&gamma.square());
        let y3 = alpha.mul(&beta4.sub(&x3)).sub(&gamma_sq4).sub(&gamma_sq4);
        Point {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// "add-2007-bl", with the cases that formula does not cover (either
    /// point the identity, equal points, opposite points) handled first.
    fn add(&self, other: &Point) -> Point {
        if self.is_identity() {
            return *other;
        }
        if other.is_identity() {
            return *self;
        }
        let z1z1 = self.z.square();
        let z2z2 = other.z.square();
        let u1 = self.x.mul(&z2z2);
        let u2 = other.x.mul(&z1z1);
        let s1 = self.y.mul(&other.z).mul(&z2z2);
        let s2 = other.y.mul(&self.z).mul(&z1z1);
        let h = u2.sub(&u1);
        let r_half = s2.sub(&s1);
        if is_zero(&h) {
            return if is_zero(&r_half) {
                self.double()
            } else {
                Point::identity(self)
            };
        }
        let i = h.add(&h).square();
        let j = h.mul(&i);
        let r = r_half.add(&r_half);
        let v = u1.mul(&i);
        let x3 = r.square().sub(&j).sub(&v).sub(&v);
        let s1j = s1.mul(&j);
        let y3 = r.mul(&v.sub(&x3)).sub(&s1j).sub(&s1j);
        let z3 = self.z.add(&other.z).square().sub(&z1z1).sub(&z2z2).mul(&h);
        Point {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// a·A + b·B in one pass over both scalars, two bits at a time
    /// (Shamir's trick with a joint 2-bit window): 15 additions to build the
    /// table, then per two bits two doublings and at most one addition.
    fn double_mul(pa: &Point, a: &U576, pb: &Point, b: &U576) -> Point {
        // table[i + 4j] = i·A + j·B
        let mut table = [Point::identity(pa); 16];
        for k in 1..16 {
            table[k] = if k % 4 == 0 {
                table[k - 4].add(pb)
            } else {
                table[k - 1].add(pa)
            };
        }
        let digit = |v: &U576, at: usize| usize::from(v.bit_vartime(at)) << (at % 2);
        let mut acc = Point::identity(pa);
        let windows = a.bits().max(b.bits()).div_ceil(2);
        for w in (0..windows).rev() {
            acc = acc.double().double();
            let (lo, hi) = (2 * w, 2 * w + 1);
            let k = digit(a, lo) + digit(a, hi) + 4 * (digit(b, lo) + digit(b, hi));
            if k != 0 {
                acc = acc.add(&table[k]);
            }
        }
        acc
    }

    /// The affine x coordinate; `None` for the identity.
    fn affine_x(&self) -> Option<U576> {
        let (z_inv, invertible) = self.z.invert();
        if self.is_identity() || !bool::from(invertible) {
            return None;
        }
        Some(self.x.mul(&z_inv.square()).retrieve())
    }
}

fn times4(v: &Residue) -> Residue {
    let two = v.add(v);
    two.add(&two)
}

/// Zero in Montgomery form (x·R mod p) is zero itself: no reduction needed.
fn is_zero(v: &Residue) -> bool {
    *v.as_montgomery() == U576::ZERO
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_bytes(curve: &'static Curve, sec1: &[u8]) -> EcPublicKey {
        let (x, y) = sec1[1..].split_at(curve.size);
        EcPublicKey::from_coordinates(curve, x, y).unwrap()
    }

    /// Verifying with a known private key: SEC1 test key d, its public key
    /// from the p384/p521 crates, signatures from them too.
    macro_rules! cross_check {
        ($name:ident, $krate:ident, $curve:expr, $hash:ty, $size:expr) => {
            #[test]
            fn $name() {
                use sha2::Digest;
                use $krate::ecdsa::signature::hazmat::RandomizedPrehashSigner;
                let mut rng = crate::jwt::test_support::TestRng(7);
                let curve: &'static Curve = $curve;
                for seed in 1u8..=4 {
                    let mut d = [0u8; $size];
                    for (i, b) in d.iter_mut().enumerate() {
                        *b = seed.wrapping_mul(31).wrapping_add(i as u8);
                    }
                    d[0] = 0;
                    let sk = $krate::ecdsa::SigningKey::from_slice(&d).unwrap();
                    let vk = $krate::ecdsa::VerifyingKey::from(&sk);
                    let point = vk.to_encoded_point(false);
                    let key = key_bytes(curve, point.as_bytes());
                    for msg in [&b"a"[..], b"", b"header.payload", &[seed; 300]] {
                        let digest = <$hash>::digest(msg);
                        let sig: $krate::ecdsa::Signature =
                            sk.sign_prehash_with_rng(&mut rng, &digest).unwrap();
                        let mut raw = sig.to_bytes().to_vec();
                        assert!(
                            key.verify_digest(&digest, &raw),
                            "{} seed {seed}",
                            curve.name
                        );
                        // The other digest, a flipped bit in r and in s, and
                        // s replaced by n - s all fail, as they do in the crate.
                        let other = <$hash>::digest(b"other");
                        assert!(!key.verify_digest(&other, &raw));
                        for at in [0, $size - 1, $size, 2 * $size - 1] {
                            raw[at] ^= 0x01;
                            assert!(!key.verify_digest(&digest, &raw), "bit at {at}");
                            raw[at] ^= 0x01;
                        }
                        // ECDSA accepts s and n - s alike; so must we.
                        let s = wide(&raw[$size..]).unwrap();
                        let high = curve.n.modulus().wrapping_sub(&s);
                        let negated = [&raw[..$size], &high.to_be_bytes_vec(curve.size)].concat();
                        assert!(vk.verify_prehash_raw(&digest, &negated));
                        assert!(key.verify_digest(&digest, &negated));
                    }
                }
            }
        };
    }

    trait Bytes {
        fn to_be_bytes_vec(&self, len: usize) -> Vec<u8>;
    }

    impl Bytes for U576 {
        fn to_be_bytes_vec(&self, len: usize) -> Vec<u8> {
            let mut out = Vec::new();
            for limb in self.as_words().iter().rev() {
                out.extend_from_slice(&limb.to_be_bytes());
            }
            out[out.len() - len..].to_vec()
        }
    }

    trait RawVerify {
        fn verify_prehash_raw(&self, digest: &[u8], raw: &[u8]) -> bool;
    }

    impl RawVerify for p384::ecdsa::VerifyingKey {
        fn verify_prehash_raw(&self, digest: &[u8], raw: &[u8]) -> bool {
            use p384::ecdsa::signature::hazmat::PrehashVerifier;
            p384::ecdsa::Signature::from_slice(raw)
                .is_ok_and(|sig| self.verify_prehash(digest, &sig).is_ok())
        }
    }

    impl RawVerify for p521::ecdsa::VerifyingKey {
        fn verify_prehash_raw(&self, digest: &[u8], raw: &[u8]) -> bool {
            use p521::ecdsa::signature::hazmat::PrehashVerifier;
            p521::ecdsa::Signature::from_slice(raw)
                .is_ok_and(|sig| self.verify_prehash(digest, &sig).is_ok())
        }
    }

    /// Keys G (d = 1) and -G (d = n - 1) put the key point itself, or its
    /// negation, into the Shamir table next to G: the equal and opposite
    /// point cases of the addition.
    macro_rules! edge_keys {
        ($name:ident, $krate:ident, $curve:expr, $size:expr) => {
            #[test]
            fn $name() {
                use $krate::ecdsa::signature::hazmat::RandomizedPrehashSigner;
                let curve: &'static Curve = $curve;
                let mut rng = crate::jwt::test_support::TestRng(11);
                let n_minus_1 = curve.n.modulus().wrapping_sub(&U576::ONE);
                for d in [U576::ONE, n_minus_1] {
                    let sk =
                        $krate::ecdsa::SigningKey::from_slice(&d.to_be_bytes_vec($size)).unwrap();
                    let vk = $krate::ecdsa::VerifyingKey::from(&sk);
                    let key = key_bytes(curve, vk.to_encoded_point(false).as_bytes());
                    // All-ones is above n for P-384: the e >= n reduction.
                    for fill in [0xffu8, 0x5a] {
                        let digest = vec![fill; curve.n.modulus().bits() / 8];
                        let sig: $krate::ecdsa::Signature =
                            sk.sign_prehash_with_rng(&mut rng, &digest).unwrap();
                        let raw = sig.to_bytes().to_vec();
                        assert!(vk.verify_prehash_raw(&digest, &raw));
                        assert!(key.verify_digest(&digest, &raw), "{} d {d}", curve.name);
                        let mut other = digest.clone();
                        other[0] ^= 1;
                        assert!(!key.verify_digest(&other, &raw));
                    }
                }
            }
        };
    }

    edge_keys!(p384_keys_g_and_minus_g, p384, &P384, 48);
    edge_keys!(p521_keys_g_and_minus_g, p521, &P521, 66);

    #[test]
    fn refuses_digests_wider_than_the_order() {
        let curve = &P521;
        let sec1 = [
            vec![4u8],
            curve.gx.to_be_bytes_vec(66),
            curve.gy.to_be_bytes_vec(66),
        ]
        .concat();
        let key = key_bytes(curve, &sec1);
        assert!(!key.verify_digest(&[1u8; 66], &[1u8; 132]));
    }

    cross_check!(
        p384_agrees_with_the_p384_crate,
        p384,
        &P384,
        sha2::Sha384,
        48
    );
    cross_check!(
        p521_agrees_with_the_p521_crate,
        p521,
        &P521,
        sha2::Sha512,
        66
    );

    #[test]
    fn generator_has_the_group_order() {
        for curve in [&P384, &P521] {
            let g = Point::affine(curve, &curve.gx, &curve.gy);
            let n = *curve.n.modulus();
            let n_minus_1 = n.wrapping_sub(&U576::ONE);
            assert!(
                Point::double_mul(&g, &n, &g, &U576::ZERO).is_identity(),
                "{}",
                curve.name
            );
            let minus_g = Point::double_mul(&g, &n_minus_1, &g, &U576::ZERO);
            assert!(!minus_g.is_identity());
            assert_eq!(
                minus_g.affine_x(),
                g.affine_x(),
                "(n-1)G = -G shares x with G"
            );
            assert!(minus_g.add(&g).is_identity());
            // G + G through add() is the doubling.
            assert_eq!(g.add(&g).affine_x(), g.double().affine_x());
        }
    }

    #[test]
    fn refuses_points_off_the_curve_and_out_of_range() {
        for curve in [&P384, &P521] {
            let gx = curve.gx.to_be_bytes_vec(curve.size);
            let gy = curve.gy.to_be_bytes_vec(curve.size);
            assert!(EcPublicKey::from_coordinates(curve, &gx, &gy).is_some());
            let mut bad = gy.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(EcPublicKey::from_coordinates(curve, &gx, &bad).is_none());
            // y + p is the same residue but not a canonical coordinate.
            let p = curve.p.modulus();
            let y_plus_p = curve.gy.wrapping_add(p).to_be_bytes_vec(curve.size);
            if wide(&y_plus_p).is_some_and(|v| v > curve.gy) {
                assert!(EcPublicKey::from_coordinates(curve, &gx, &y_plus_p).is_none());
            }
            assert!(EcPublicKey::from_coordinates(curve, &gx[1..], &gy).is_none());
            let zeros = vec![0u8; curve.size];
            assert!(EcPublicKey::from_coordinates(curve, &zeros, &zeros).is_none());
        }
    }

    #[test]
    fn refuses_zero_and_out_of_range_scalars() {
        let curve = &P384;
        let key = key_bytes(
            curve,
            &[
                vec![4u8],
                curve.gx.to_be_bytes_vec(48),
                curve.gy.to_be_bytes_vec(48),
            ]
            .concat(),
        );
        let digest = [7u8; 48];
        let n = curve.n.modulus().to_be_bytes_vec(48);
        let one = U576::ONE.to_be_bytes_vec(48);
        let zero = vec![0u8; 48];
        for (r, s) in [(&zero, &one), (&one, &zero), (&n, &one), (&one, &n)] {
            assert!(!key.verify_digest(&digest, &[r.clone(), s.clone()].concat()));
        }
        assert!(!key.verify_digest(&digest, &[0u8; 95]));
        assert!(!key.verify_digest(&[0u8; 49], &[1u8; 96]));
    }
}
