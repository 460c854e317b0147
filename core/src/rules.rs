//! Per-route rules: which requests need which token, and which permissions.

use serde_json::Value;

use crate::claim_path::ClaimPath;
use crate::extract::TokenSource;
use crate::jwt::JsonObject;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
}

/// One rule of the ordered list; the first match wins.
#[derive(Debug, Clone)]
pub struct Rule {
    /// A canonical path (see [`crate::path`]).
    pub path: PathMatch,
    /// Whether letter case must match too. By default it need not: routers
    /// and file systems that ignore case serve `/ADMIN` as `/admin`, and a
    /// rule must cover every spelling its backend serves.
    pub case_sensitive: bool,
    /// Uppercase methods; empty means any method.
    pub methods: Vec<String>,
    pub requires: Requirement,
}

#[derive(Debug, Clone)]
pub enum Requirement {
    /// Bypass: no token needed; identity headers are still stripped.
    None,
    Token {
        /// Indices into the policy's providers; any of them will do.
        providers: Vec<usize>,
        /// Where those providers read tokens, each place once, in provider
        /// order: worked out with the configuration, not per request.
        sources: Vec<TokenSource>,
        /// A request without any token passes with no identity; a present
        /// but bad token is still refused.
        allow_missing: bool,
        permissions: Option<PermissionRule>,
        claims: Vec<ClaimCondition>,
    },
}

/// `permissions: {claim, all_of, any_of}`. The claim is an array of strings
/// or a space-delimited string (the OAuth `scope` form).
#[derive(Debug, Clone)]
pub struct PermissionRule {
    pub claim: ClaimPath,
    pub all_of: Vec<String>,
    pub any_of: Vec<String>,
}

/// `claims: {"role": ["admin", "ops"]}`: the claim equals one of the values.
#[derive(Debug, Clone)]
pub struct ClaimCondition {
    pub path: ClaimPath,
    pub allowed: Vec<Value>,
}

impl PermissionRule {
    /// The scopes a token granted all of would pass with, for
    /// `WWW-Authenticate`'s `scope` (RFC 6750 section 3): `all_of`, then
    /// `any_of`; values that are not scope tokens are left out.
    pub fn scope(&self) -> Option<String> {
        let scopes: Vec<&str> = self
            .all_of
            .iter()
            .chain(&self.any_of)
            .map(String::as_str)
            .filter(|s| crate::deny::is_scope_token(s))
            .collect();
        (!scopes.is_empty()).then(|| scopes.join(" "))
    }
}

impl Rule {
    /// Whether the rule covers a request; `path` is the request's canonical
    /// path ([`crate::path::canonical`]).
    pub fn matches(&self, method: &str, path: &str) -> bool {
        let path_ok = match &self.path {
            // Whole segments only: `/healthz` covers `/healthz` and
            // `/healthz/live` but not `/healthzadmin`, so a bypass rule
            // never reaches further than its author meant. `.` also ends a
            // segment, because frameworks serve `/admin.json` (suffix
            // patterns) as `/admin`: a rule on `/admin` must cover it. A
            // prefix ending in `/` is a plain string prefix.
            PathMatch::Prefix(p) => self.strip(path, p).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with(['/', '.']) || p.ends_with('/')
            }),
            // With or without one trailing slash: backends serve `/ops/` as
            // `/ops`.
            PathMatch::Exact(p) => self
                .strip(without_trailing_slash(path), without_trailing_slash(p))
                .is_some_and(str::is_empty),
        };
        path_ok && (self.methods.is_empty() || self.methods.iter().any(|m| m == method))
    }

    /// `path` after `prefix`, compared with or without letter case.
    fn strip<'p>(&self, path: &'p str, prefix: &str) -> Option<&'p str> {
        let head = path.get(..prefix.len())?;
        let same = if self.case_sensitive {
            head == prefix
        } else {
            head.eq_ignore_ascii_case(prefix)
        };
        if same {
            path.get(prefix.len()..)
        } else {
            None
        }
    }
}

fn without_trailing_slash(path: &str) -> &str {
    match path.strip_suffix('/') {
        Some(rest) if !rest.is_empty() => rest,
        _ => path,
    }
}

/// The first rule matching the request, if any.
pub fn find<'p>(rules: &'p [Rule], method: &str, path: &str) -> Option<&'p Rule> {
    rules.iter().find(|r| r.matches(method, path))
}

impl PermissionRule {
    pub fn allows(&self, claims: &JsonObject) -> bool {
        let value = self.claim.get(claims);
        let held = held_permissions(value.as_ref());
        let has = |p: &String| held.iter().any(|h| h == p);
        self.all_of.iter().all(has) && (self.any_of.is_empty() || self.any_of.iter().any(has))
    }
}

fn held_permissions(claim: Option<&Value>) -> Vec<&str> {
    match claim {
        Some(Value::String(s)) => s.split(' ').filter(|p| !p.is_empty()).collect(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

impl ClaimCondition {
    pub fn allows(&self, claims: &JsonObject) -> bool {
        match self.path.get(claims) {
            Some(v) => self.allowed.contains(&v),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(path: PathMatch, methods: &[&str]) -> Rule {
        Rule {
            path,
            case_sensitive: false,
            methods: methods.iter().map(|m| m.to_string()).collect(),
            requires: Requirement::None,
        }
    }

    /// Whether `rule` covers a request for the raw target `path`.
    fn covers(rule: &Rule, method: &str, path: &str) -> bool {
        let path = crate::path::canonical(path, crate::path::EscapedSlashes::Reject).unwrap();
        rule.matches(method, &path)
    }

    #[test]
    fn prefix_exact_and_methods() {
        let p = rule(PathMatch::Prefix("/healthz".into()), &[]);
        assert!(covers(&p, "GET", "/healthz"));
        assert!(covers(&p, "POST", "/healthz/live?x=1"));
        assert!(!covers(&p, "GET", "/health"));
        assert!(!covers(&p, "GET", "/healthzadmin"), "whole segments only");
        assert!(!covers(&p, "GET", "/healthz-internal/x"));
        assert!(covers(&p, "GET", "/healthz?x"));
        assert!(covers(&p, "GET", "/healthz;v=1"), "matrix parameters");
        assert!(covers(&p, "GET", "/healthz.json"), "suffix patterns");
        assert!(!covers(&p, "GET", "/healthz/../admin"), "dot segments");
        let slash = rule(PathMatch::Prefix("/api/".into()), &[]);
        assert!(covers(&slash, "GET", "/api/v1"));
        assert!(!covers(&slash, "GET", "/api"));
        let root = rule(PathMatch::Prefix("/".into()), &[]);
        assert!(covers(&root, "GET", "/anything"));
        let e = rule(PathMatch::Exact("/login".into()), &["POST"]);
        assert!(covers(&e, "POST", "/login?next=/"));
        assert!(covers(&e, "POST", "/login#top"));
        assert!(!covers(&e, "GET", "/login"));
        assert!(!covers(&e, "POST", "/login/x"));
    }

    #[test]
    fn every_spelling_of_a_path_is_covered() {
        let ops = rule(PathMatch::Exact("/ops".into()), &["POST"]);
        for path in [
            "/ops",
            "/ops/",
            "/ops;x=1",
            "/OPS",
            "/Ops/",
            "//ops",
            "/x/../ops",
        ] {
            assert!(covers(&ops, "POST", path), "{path}");
        }
        assert!(!covers(&ops, "POST", "/ops/x"));
        assert!(!covers(&ops, "POST", "/opsx"));
        let admin = rule(PathMatch::Prefix("/admin".into()), &[]);
        for path in [
            "/ADMIN",
            "/Admin/users",
            "/admin;jsessionid=1/x",
            "/%61dmin",
        ] {
            assert!(covers(&admin, "GET", path), "{path}");
        }
        let root = rule(PathMatch::Exact("/".into()), &[]);
        assert!(covers(&root, "GET", "/") && covers(&root, "GET", "//"));
        assert!(!covers(&root, "GET", "/a"));
    }

    #[test]
    fn case_sensitive_rules_match_case_exactly() {
        let mut r = rule(PathMatch::Prefix("/Admin".into()), &[]);
        r.case_sensitive = true;
        assert!(covers(&r, "GET", "/Admin/x"));
        assert!(!covers(&r, "GET", "/admin/x"));
        let mut e = rule(PathMatch::Exact("/Ops".into()), &[]);
        e.case_sensitive = true;
        assert!(covers(&e, "GET", "/Ops/"));
        assert!(!covers(&e, "GET", "/OPS"));
    }

    #[test]
    fn first_match_wins() {
        let rules = vec![
            rule(PathMatch::Prefix("/a".into()), &["GET"]),
            rule(PathMatch::Prefix("/".into()), &[]),
        ];
        assert!(std::ptr::eq(
            find(&rules, "GET", "/a/b").unwrap(),
            &rules[0]
        ));
        assert!(std::ptr::eq(
            find(&rules, "PUT", "/a/b").unwrap(),
            &rules[1]
        ));
        assert!(find(&rules[..1], "GET", "/b").is_none());
    }

    fn perms(all: &[&str], any: &[&str]) -> PermissionRule {
        PermissionRule {
            claim: ClaimPath::new("permissions"),
            all_of: all.iter().map(|s| s.to_string()).collect(),
            any_of: any.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn permissions_from_array_or_scope_string() {
        let arr = json!({"permissions": ["read", "write"]});
        let arr = &JsonObject::of(&arr);
        assert!(perms(&["read"], &[]).allows(arr));
        assert!(perms(&["read", "write"], &["x", "write"]).allows(arr));
        assert!(!perms(&["admin"], &[]).allows(arr));
        assert!(!perms(&[], &["admin", "ops"]).allows(arr));
        let scope = json!({"scope": "read  write", "permissions": "readwrite"});
        let scope = &JsonObject::of(&scope);
        let mut r = perms(&["write"], &[]);
        r.claim = ClaimPath::new("scope");
        assert!(r.allows(scope));
        assert!(!perms(&["read"], &[]).allows(scope), "no substring match");
        assert!(!perms(&["read"], &[]).allows(&JsonObject::of(&json!({}))));
    }

    #[test]
    fn claim_conditions() {
        let c = json!({"type": "access", "role": "ops", "org": {"tier": 2}});
        let c = &JsonObject::of(&c);
        let cond = |path: &str, allowed: Value| ClaimCondition {
            path: ClaimPath::new(path),
            allowed: match allowed {
                Value::Array(a) => a,
                v => vec![v],
            },
        };
        assert!(cond("type", json!("access")).allows(c));
        assert!(!cond("type", json!("refresh")).allows(c));
        assert!(cond("role", json!(["admin", "ops"])).allows(c));
        assert!(cond("org.tier", json!(2)).allows(c));
        assert!(!cond("org.tier", json!("2")).allows(c), "types must match");
        assert!(!cond("missing", json!("x")).allows(c));
    }
}
