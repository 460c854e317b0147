//! RFC 9728 protected resource metadata: the document the filter serves at
//! `/.well-known/oauth-protected-resource`, so that OAuth clients (MCP
//! clients among them) find which authorization servers issue tokens for
//! this resource, and the URL of that document that every refusal names in
//! `WWW-Authenticate` (RFC 9728 section 5.1).

/// The well-known path of the document (RFC 9728 section 3).
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The compiled `protected_resource` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedResource {
    /// The resource identifier, as configured.
    pub resource: String,
    /// The request paths answered with the document: the well-known path,
    /// and the path-suffixed form when the resource has a path (section
    /// 3.1: `/.well-known/oauth-protected-resource/<resource path>`).
    pub paths: Vec<String>,
    /// Where the document is, for `resource_metadata="..."`.
    pub metadata_url: String,
    /// The JSON document, serialized once.
    pub document: String,
}

/// An answer the filter gives itself, without the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<String>,
}

impl ProtectedResource {
    /// The document's URL for a resource identifier split into its origin
    /// (`https://host[:port]`) and path: the well-known path goes between
    /// them, and a path of `/` alone counts as none.
    pub fn metadata_location(origin: &str, path: &str) -> (String, Vec<String>) {
        let suffix = path.trim_end_matches('/');
        let mut paths = vec![WELL_KNOWN.to_string()];
        if !suffix.is_empty() {
            paths.push(format!("{WELL_KNOWN}{suffix}"));
        }
        let url = format!("{origin}{WELL_KNOWN}{suffix}");
        (url, paths)
    }

    /// The answer to a request for the document, or `None` when the
    /// request is for something else. GET and HEAD get the document, any
    /// other method 405.
    pub fn answer(&self, method: &str, path: &str) -> Option<Reply> {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        if !self.paths.iter().any(|p| p == path) {
            return None;
        }
        let json = ("content-type", "application/json".to_string());
        Some(match method {
            "GET" | "HEAD" => Reply {
                status: 200,
                headers: vec![json],
                body: (method == "GET").then(|| self.document.clone()),
            },
            _ => Reply {
                status: 405,
                headers: vec![json, ("allow", "GET, HEAD".to_string())],
                body: Some(
                    serde_json::json!({
                        "error": "method_not_allowed",
                        "error_description": "the metadata is read with GET",
                    })
                    .to_string(),
                ),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(url_path: &str) -> ProtectedResource {
        let (metadata_url, paths) =
            ProtectedResource::metadata_location("https://api.test:8443", url_path);
        ProtectedResource {
            resource: format!("https://api.test:8443{url_path}"),
            paths,
            metadata_url,
            document: "{}".into(),
        }
    }

    #[test]
    fn the_well_known_path_goes_between_host_and_path() {
        let r = resource("/mcp/v1");
        assert_eq!(
            r.metadata_url,
            "https://api.test:8443/.well-known/oauth-protected-resource/mcp/v1"
        );
        assert_eq!(
            r.paths,
            [
                "/.well-known/oauth-protected-resource",
                "/.well-known/oauth-protected-resource/mcp/v1"
            ]
        );
        for bare in ["", "/"] {
            let r = resource(bare);
            assert_eq!(
                r.metadata_url,
                "https://api.test:8443/.well-known/oauth-protected-resource"
            );
            assert_eq!(r.paths, ["/.well-known/oauth-protected-resource"]);
        }
    }

    #[test]
    fn get_and_head_read_it_and_other_methods_are_refused() {
        let r = resource("/mcp");
        let get = r
            .answer("GET", "/.well-known/oauth-protected-resource/mcp?x=1")
            .unwrap();
        assert_eq!((get.status, get.body.as_deref()), (200, Some("{}")));
        assert_eq!(get.headers, [("content-type", "application/json".into())]);
        let head = r
            .answer("HEAD", "/.well-known/oauth-protected-resource")
            .unwrap();
        assert_eq!((head.status, head.body), (200, None));
        let post = r
            .answer("POST", "/.well-known/oauth-protected-resource")
            .unwrap();
        assert_eq!(post.status, 405);
        assert!(post.headers.contains(&("allow", "GET, HEAD".into())));
        for other in [
            "/mcp",
            "/.well-known/oauth-protected-resource/other",
            "/.well-known/oauth-protected-resourcex",
        ] {
            assert_eq!(r.answer("GET", other), None, "{other}");
        }
    }
}
