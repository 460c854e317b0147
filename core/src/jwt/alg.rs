//! The JWS algorithms we accept.

/// A JWS `alg` we know how to verify. `none` is deliberately absent so that
/// an unsigned token cannot even be represented past parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Hs256,
    Hs384,
    Hs512,
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
    EdDsa,
}

impl Algorithm {
    /// Every supported algorithm, for diagnostics and tests.
    pub const ALL: [Algorithm; 13] = [
        Algorithm::Hs256,
        Algorithm::Hs384,
        Algorithm::Hs512,
        Algorithm::Rs256,
        Algorithm::Rs384,
        Algorithm::Rs512,
        Algorithm::Ps256,
        Algorithm::Ps384,
        Algorithm::Ps512,
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::Es512,
        Algorithm::EdDsa,
    ];

    /// Looks up a registered JWS name. Case-sensitive, because RFC 7515 makes
    /// `alg` values case-sensitive and accepting "rs256" would only widen the
    /// surface for confusion.
    pub fn from_name(s: &str) -> Option<Algorithm> {
        // Every name is five bytes: each token's `alg` is compared as one
        // integer per candidate rather than as a byte string.
        let key = name_key(s.as_bytes().try_into().ok()?);
        let index = NAME_KEYS.iter().position(|k| *k == key)?;
        Algorithm::ALL.get(index).copied()
    }

    /// The registered JWS name, e.g. "RS256".
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Hs256 => "HS256",
            Algorithm::Hs384 => "HS384",
            Algorithm::Hs512 => "HS512",
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::Es512 => "ES512",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// True for the HMAC family, whose keys are shared secrets.
    pub fn is_symmetric(self) -> bool {
        matches!(self, Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512)
    }
}

const fn name_key(name: &[u8; 5]) -> u64 {
    u64::from_le_bytes([name[0], name[1], name[2], name[3], name[4], 0, 0, 0])
}

/// `name_key` of each of [`Algorithm::ALL`], in that order.
static NAME_KEYS: [u64; 13] = {
    let mut keys = [0; 13];
    let mut i = 0;
    while i < keys.len() {
        let name = Algorithm::ALL[i].name().as_bytes();
        keys[i] = name_key(&[name[0], name[1], name[2], name[3], name[4]]);
        i += 1;
    }
    keys
};

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        }
    }

    #[test]
    fn names_are_case_sensitive_and_none_is_unknown() {
        assert_eq!(Algorithm::from_name("rs256"), None);
        assert_eq!(Algorithm::from_name("EDDSA"), None);
        assert_eq!(Algorithm::from_name("none"), None);
        assert_eq!(Algorithm::from_name(""), None);
        assert_eq!(Algorithm::from_name("ES256K"), None);
        assert_eq!(Algorithm::from_name("HS25"), None);
        assert_eq!(Algorithm::from_name("HS256\0"), None);
    }
}
