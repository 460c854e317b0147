//! The `protected_resource` block: RFC 9728 metadata, each member checked
//! against what the RFC allows for it.

use serde_json::{Map, Value};

use super::error::ConfigError;
use super::raw::RawProtectedResource;
use super::values::is_quotable;
use crate::deny::is_scope_token;
use crate::protected_resource::ProtectedResource;

pub(super) fn compile_protected_resource(
    raw: RawProtectedResource,
    field: &str,
) -> Result<ProtectedResource, ConfigError> {
    let f = |name: &str| format!("{field}.{name}");
    let (origin, path) = https_url(&raw.resource, &f("resource"))?;
    let mut doc = Map::new();
    doc.insert("resource".into(), Value::String(raw.resource.clone()));
    if let Some(servers) = raw.authorization_servers {
        for (i, s) in servers.iter().enumerate() {
            https_url(s, &format!("{}[{i}]", f("authorization_servers")))?;
        }
        doc.insert("authorization_servers".into(), strings(servers));
    }
    if let Some(scopes) = raw.scopes_supported {
        for (i, s) in scopes.iter().enumerate() {
            if !is_scope_token(s) {
                return Err(ConfigError::new(
                    format!("{}[{i}]", f("scopes_supported")),
                    "must be a scope token (RFC 6749: printable ASCII, no space, quote or backslash)",
                ));
            }
        }
        doc.insert("scopes_supported".into(), strings(scopes));
    }
    if let Some(methods) = raw.bearer_methods_supported {
        for (i, m) in methods.iter().enumerate() {
            if !matches!(m.as_str(), "header" | "body" | "query") {
                return Err(ConfigError::new(
                    format!("{}[{i}]", f("bearer_methods_supported")),
                    format!("unknown method \"{m}\"; expected \"header\", \"body\" or \"query\""),
                ));
            }
        }
        doc.insert("bearer_methods_supported".into(), strings(methods));
    }
    if let Some(name) = raw.resource_name {
        if name.trim().is_empty() {
            return Err(ConfigError::new(f("resource_name"), "must not be empty"));
        }
        doc.insert("resource_name".into(), Value::String(name));
    }
    if let Some(url) = raw.resource_documentation {
        let web = url.starts_with("https://") || url.starts_with("http://");
        if !web || !is_quotable(&url) || url.contains(' ') {
            return Err(ConfigError::new(
                f("resource_documentation"),
                "must be an absolute http or https URL",
            ));
        }
        doc.insert("resource_documentation".into(), Value::String(url));
    }
    let (metadata_url, paths) = ProtectedResource::metadata_location(origin, path);
    Ok(ProtectedResource {
        resource: raw.resource.clone(),
        paths,
        metadata_url,
        document: Value::Object(doc).to_string(),
    })
}

/// An absolute https URL without query or fragment (RFC 9728 section 1.2
/// for resources, RFC 8414 section 2 for issuers), split into its origin
/// and path. It may sit in a quoted-string of `WWW-Authenticate` as is.
fn https_url<'u>(url: &'u str, field: &str) -> Result<(&'u str, &'u str), ConfigError> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(ConfigError::new(field, "must be an absolute https URL"));
    };
    if !is_quotable(url) || url.contains(' ') {
        return Err(ConfigError::new(
            field,
            "must be printable ASCII without spaces, quotes or backslashes",
        ));
    }
    if url.contains(['?', '#']) {
        return Err(ConfigError::new(
            field,
            "must have no query or fragment component",
        ));
    }
    let host_end = rest.find('/').unwrap_or(rest.len());
    let (host, path) = rest.split_at(host_end);
    if host.is_empty() || host.contains('@') {
        return Err(ConfigError::new(
            field,
            "must name a host (and no user information)",
        ));
    }
    let origin_len = "https://".len() + host.len();
    Ok((&url[..origin_len], path))
}

fn strings(items: Vec<String>) -> Value {
    Value::Array(items.into_iter().map(Value::String).collect())
}
