//! One entry of `rules`: the paths it matches and what it requires.

use serde_json::Value;

use super::error::strip_position;
use super::error::ConfigError;
use super::policy::Provider;
use super::raw::*;
use super::values::*;
use crate::claim_path::ClaimPath;
use crate::extract::TokenSource;
use crate::path::EscapedSlashes;
use crate::rules::{ClaimCondition, PathMatch, PermissionRule, Requirement, Rule};

pub(super) fn compile_rule(
    r: RawRule,
    providers: &[Provider],
    field: &str,
) -> Result<Rule, ConfigError> {
    let m = r.matcher;
    let path = match (m.prefix, m.path) {
        (Some(p), None) => PathMatch::Prefix(p),
        (None, Some(p)) => PathMatch::Exact(p),
        _ => {
            return Err(ConfigError::new(
                format!("{field}.match"),
                "exactly one of \"prefix\" or \"path\" is required",
            ))
        }
    };
    let path_str = match &path {
        PathMatch::Prefix(p) | PathMatch::Exact(p) => p,
    };
    if !path_str.starts_with('/') {
        return Err(ConfigError::new(
            format!("{field}.match"),
            "paths must start with '/'",
        ));
    }
    // Requests are matched on their canonical path, so a rule's own path
    // must be one: a rule on `/a/../b` or `/a;x` could never match.
    let canonical = crate::path::canonical(path_str, EscapedSlashes::Reject);
    if canonical.as_deref() != Ok(path_str.as_str()) || path_str.contains('?') {
        return Err(ConfigError::new(
            format!("{field}.match"),
            format!(
                "\"{path_str}\" is not a canonical path (no percent-escapes, '\\', ';', '?', '//', '.' or '..' segments)"
            ),
        ));
    }
    let methods = match m.methods {
        None => Vec::new(),
        Some(methods) => {
            if methods.is_empty() {
                return Err(ConfigError::new(
                    format!("{field}.match.methods"),
                    "must not be empty when present",
                ));
            }
            methods.iter().map(|s| s.to_ascii_uppercase()).collect()
        }
    };
    let requires = compile_requirement(r.requires, providers, &format!("{field}.requires"))?;
    Ok(Rule {
        path,
        case_sensitive: m.case_sensitive,
        methods,
        requires,
    })
}

pub(super) fn compile_requirement(
    value: Value,
    providers: &[Provider],
    field: &str,
) -> Result<Requirement, ConfigError> {
    if let Value::String(s) = &value {
        return if s == "none" {
            Ok(Requirement::None)
        } else {
            Err(ConfigError::new(
                field,
                format!("unknown requirement \"{s}\"; expected \"none\" or an object"),
            ))
        };
    }
    let raw: RawRequirement = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let f = if path == "." {
            field.to_string()
        } else {
            format!("{field}.{path}")
        };
        ConfigError::new(f, strip_position(&e.into_inner().to_string()))
    })?;
    let indices = match raw.providers {
        None => (0..providers.len()).collect(),
        Some(names) => {
            if names.is_empty() {
                return Err(ConfigError::new(
                    format!("{field}.providers"),
                    "must name at least one provider",
                ));
            }
            let mut out = Vec::with_capacity(names.len());
            for (i, name) in names.iter().enumerate() {
                match providers.iter().position(|p| p.name == *name) {
                    Some(idx) => out.push(idx),
                    None => {
                        return Err(ConfigError::new(
                            format!("{field}.providers[{i}]"),
                            format!("unknown provider \"{name}\""),
                        ))
                    }
                }
            }
            out
        }
    };
    let permissions = match raw.permissions {
        None => None,
        Some(p) => {
            if p.all_of.is_empty() && p.any_of.is_empty() {
                return Err(ConfigError::new(
                    format!("{field}.permissions"),
                    "needs \"all_of\" or \"any_of\"",
                ));
            }
            Some(PermissionRule {
                claim: ClaimPath::new(&p.claim),
                all_of: p.all_of,
                any_of: p.any_of,
            })
        }
    };
    let mut claims = Vec::with_capacity(raw.claims.len());
    for (name, value) in raw.claims {
        let allowed = match value {
            Value::Array(items) if !items.is_empty() && items.iter().all(is_scalar) => items,
            v if is_scalar(&v) => vec![v],
            _ => {
                return Err(ConfigError::new(
                    format!("{field}.claims.{name}"),
                    "must be a string, number, boolean or a non-empty list of them",
                ))
            }
        };
        claims.push(ClaimCondition {
            path: ClaimPath::new(&name),
            allowed,
        });
    }
    Ok(Requirement::Token {
        sources: sources_of(indices.iter().filter_map(|&i| providers.get(i))),
        providers: indices,
        allow_missing: raw.allow_missing,
        permissions,
        claims,
    })
}

/// The places `providers` read tokens, each once, in provider order:
/// worked out with the configuration, not per request.
pub(super) fn sources_of<'p>(providers: impl Iterator<Item = &'p Provider>) -> Vec<TokenSource> {
    let mut sources: Vec<TokenSource> = Vec::new();
    for source in providers.flat_map(|p| p.sources.iter()) {
        if !sources.contains(source) {
            sources.push(source.clone());
        }
    }
    sources
}
