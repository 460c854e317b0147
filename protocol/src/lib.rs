//! Revocation feed wire format.
