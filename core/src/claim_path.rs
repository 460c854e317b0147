//! Claim names as configured: `"realm_access.roles"` names a nested claim,
//! `"https://example.com/roles"` a top-level one with dots in its name.
//! Rules and identity headers both read claims through it.

use serde_json::Value;

use crate::jwt::JsonObject;

/// A claim name, split once at load time for nested lookups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath {
    name: String,
    segments: Vec<String>,
}

impl ClaimPath {
    pub fn new(name: &str) -> Self {
        ClaimPath {
            name: name.to_string(),
            segments: name.split('.').map(str::to_string).collect(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A top-level claim whose name holds a dot (providers use URL-like
    /// claim names) is found before the nested path.
    pub fn get(&self, claims: &JsonObject) -> Option<Value> {
        claims
            .value(&self.name)
            .or_else(|| lookup(claims, &self.segments))
    }
}

/// Follows a dotted path through nested objects.
fn lookup(claims: &JsonObject, path: &[String]) -> Option<Value> {
    let (first, rest) = path.split_first()?;
    let mut value = claims.value(first)?;
    for key in rest {
        value = value.get_mut(key).map(Value::take)?;
    }
    Some(value)
}
