//! The `revocation` block: the feed the filter polls and how it behaves
//! when the feed is away.

use super::error::ConfigError;
use super::raw::*;
use super::values::*;
use crate::revocation::feed::{FeedConfig, OnStale};

pub(super) fn compile_revocation(
    r: RawRevocation,
    clock_skew_seconds: u64,
    namespace: &str,
) -> Result<FeedConfig, ConfigError> {
    let field = |name: &str| format!("revocation.{name}");
    if r.cluster.is_empty() {
        return Err(ConfigError::new(
            field("cluster"),
            "must name an Envoy cluster",
        ));
    }
    if !r.path.starts_with('/') {
        return Err(ConfigError::new(field("path"), "must start with '/'"));
    }
    if r.poll_interval_ms < 100 {
        return Err(ConfigError::new(
            field("poll_interval_ms"),
            "must be at least 100",
        ));
    }
    if r.timeout_ms == 0 {
        return Err(ConfigError::new(
            field("timeout_ms"),
            "must be greater than 0",
        ));
    }
    if r.max_pending_entries == 0 {
        return Err(ConfigError::new(
            field("max_pending_entries"),
            "must be greater than 0",
        ));
    }
    if r.sync_interval_ms < 10 || r.sync_interval_ms > r.poll_interval_ms {
        return Err(ConfigError::new(
            field("sync_interval_ms"),
            "must be between 10 and poll_interval_ms",
        ));
    }
    let namespace = match r.namespace {
        Some(ns) => checked_namespace(ns, &field("namespace"))?,
        None => namespace.to_string(),
    };
    let on_stale = match r.on_stale.as_deref() {
        None | Some("serve") => OnStale::Serve,
        Some("deny") => OnStale::Deny,
        Some(other) => {
            return Err(ConfigError::new(
                field("on_stale"),
                format!("unknown policy \"{other}\"; expected \"serve\" or \"deny\""),
            ))
        }
    };
    // Shipped manifests and examples hold placeholders for the feed's
    // secrets: deployed as copied, the filter refuses to start rather than
    // run with a published key.
    for (name, value) in [
        ("bearer_token", &r.bearer_token),
        ("hmac_secret_base64", &r.hmac_secret_base64),
    ] {
        if value.as_deref().is_some_and(is_placeholder) {
            return Err(ConfigError::new(
                field(name),
                "is a placeholder; set it to the value in the feed's Secret",
            ));
        }
    }
    let hmac_secret = match &r.hmac_secret_base64 {
        None => None,
        Some(b64) => {
            let secret = decode_base64(b64)
                .ok_or_else(|| ConfigError::new(field("hmac_secret_base64"), "not valid base64"))?;
            if secret.is_empty() {
                return Err(ConfigError::new(
                    field("hmac_secret_base64"),
                    "must not be empty",
                ));
            }
            Some(secret)
        }
    };
    if r.bearer_token
        .as_deref()
        .is_some_and(|t| t.is_empty() || !is_quotable(t))
    {
        return Err(ConfigError::new(
            field("bearer_token"),
            "must be non-empty printable ASCII",
        ));
    }
    // A held poll answers at least every wait_ms; the data must not count
    // as stale in between.
    let max_wait_ms = r.max_staleness_seconds.saturating_mul(500);
    let wait_ms = match r.wait_ms {
        None => DEFAULT_FEED_WAIT_MS.min(max_wait_ms),
        Some(ms) if ms > max_wait_ms => {
            return Err(ConfigError::new(
                field("wait_ms"),
                format!("must be at most half of max_staleness_seconds ({max_wait_ms} ms)"),
            ))
        }
        Some(ms) => ms,
    };
    Ok(FeedConfig {
        wait_ms,
        accept_unbound_answers: r.accept_unbound_answers,
        authority: r.authority.unwrap_or_else(|| r.cluster.clone()),
        cluster: r.cluster,
        path: r.path,
        poll_interval_ms: r.poll_interval_ms,
        timeout_ms: r.timeout_ms,
        bearer_token: r.bearer_token,
        hmac_secret,
        max_staleness_seconds: r.max_staleness_seconds,
        on_stale,
        namespace,
        max_body_bytes: r.max_body_bytes,
        sync_interval_ms: r.sync_interval_ms,
        max_backoff_ms: r.max_backoff_ms,
        clock_skew_seconds,
        max_pending_entries: r.max_pending_entries,
    })
}
