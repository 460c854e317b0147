//! Token parsing, signature verification, JWK/JWKS and claim checks.
