//! `revocation-feed` command line: `serve` runs the feed server, `revoke`
//! writes one revocation through a running server's admin API.

use base64::Engine;
use clap::{ArgGroup, Args, Parser, Subcommand};
use log::LevelFilter;
use revocation_feed::client::{self, HttpClient};
use revocation_feed::embedded::EmbeddedStore;
use revocation_feed::redis_store::{RedisConfig, RedisStore};
use revocation_feed::{logger, secrets, ApiConfig, AppState, FeedLimits, Server, Store};
use revocation_protocol::{AdminRequest, Revocation, RevokedSubject, RevokedToken};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "revocation-feed",
    version,
    about = "Revocation feed server for jwt-auth-wasm",
    long_about = "Revocation feed server for jwt-auth-wasm.\n\n\
        `serve` answers the filter's polls (GET /v1/revocations?since=<cursor>) and takes \
        revocations through the admin API (POST /v1/revocations). `revoke` writes one \
        revocation through a running server.\n\n\
        Every flag can also be given as the environment variable shown next to it; prefer \
        the environment for tokens and secrets, since command lines are visible to other \
        users of the host."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the feed server.
    Serve(Box<ServeArgs>),
    /// Revoke one token (--jti) or every token of a subject issued before a time (--sub --before),
    /// of one issuer (--iss) or of every issuer.
    Revoke(RevokeArgs),
}

#[derive(Args)]
#[command(group(ArgGroup::new("storage").required(true).args(["data", "redis"])))]
struct ServeArgs {
    /// Embedded storage: directory of the append-only log (created if missing). Exactly one
    /// of --data and --redis is required.
    #[arg(long, env = "REVOCATION_FEED_DATA", value_name = "DIR")]
    data: Option<PathBuf>,

    /// Redis storage: redis://[user:password@]host:port[/db]. Any number of servers may share
    /// one Redis; durability is whatever that Redis's persistence settings give.
    #[arg(long, env = "REVOCATION_FEED_REDIS", value_name = "URL")]
    redis: Option<String>,

    /// Prefix of the Redis keys, so several feeds can share one Redis.
    #[arg(
        long,
        env = "REVOCATION_FEED_REDIS_PREFIX",
        value_name = "P",
        default_value = "revocation-feed"
    )]
    redis_prefix: String,

    /// Redis: how long writes stay in the stream for deltas. A proxy whose cursor is older
    /// gets a full snapshot instead.
    #[arg(
        long,
        env = "REVOCATION_FEED_REDIS_HISTORY_SECONDS",
        value_name = "N",
        default_value_t = 3600
    )]
    redis_history_seconds: u64,

    /// Address and port to listen on.
    #[arg(
        long,
        env = "REVOCATION_FEED_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8080"
    )]
    listen: SocketAddr,

    /// Bearer token a proxy must send to poll the feed. Without it the feed is open to
    /// anyone who can reach it.
    #[arg(
        long,
        env = "REVOCATION_FEED_READ_TOKEN",
        value_name = "T",
        hide_env_values = true
    )]
    read_token: Option<String>,

    /// Bearer token for the admin API (POST /v1/revocations). Without it the admin API
    /// answers 403 and the server is read-only.
    #[arg(
        long,
        env = "REVOCATION_FEED_ADMIN_TOKEN",
        value_name = "T",
        hide_env_values = true
    )]
    admin_token: Option<String>,

    /// HMAC-SHA256 key, base64; when set, every feed response carries
    /// x-revocation-signature: sha256=<hex HMAC of the body>.
    #[arg(
        long,
        env = "REVOCATION_FEED_HMAC_SECRET_BASE64",
        value_name = "S",
        hide_env_values = true
    )]
    hmac_secret_base64: Option<String>,

    /// Largest admin request body in bytes; larger ones get 413.
    #[arg(
        long,
        env = "REVOCATION_FEED_MAX_BODY_BYTES",
        value_name = "N",
        default_value_t = revocation_feed::api::DEFAULT_MAX_BODY_BYTES
    )]
    max_body_bytes: usize,

    /// Seconds between maintenance passes: drop expired entries, and compact the log when a
    /// quarter of it is dead (embedded) or trim the stream and the snapshot set (Redis).
    /// 0 turns maintenance off.
    #[arg(
        long,
        env = "REVOCATION_FEED_COMPACT_INTERVAL_SECONDS",
        value_name = "N",
        default_value_t = 300
    )]
    compact_interval_seconds: u64,

    /// An entry is still served until exp + this many seconds, to cover clock skew between
    /// this server and the proxies.
    #[arg(
        long,
        env = "REVOCATION_FEED_EXPIRY_GRACE_SECONDS",
        value_name = "N",
        default_value_t = 60
    )]
    expiry_grace_seconds: u64,

    /// Most entries in one response (page size). A longer delta is cut and continued from
    /// the returned cursor; a snapshot is cut into pages (`more: true`) only for clients
    /// that ask for pages (`paged=1`), others get it whole.
    #[arg(
        long,
        env = "REVOCATION_FEED_MAX_ENTRIES_PER_RESPONSE",
        value_name = "N",
        default_value_t = 50_000,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    max_entries_per_response: u32,

    /// Longest a poll that asks to wait (wait_ms) is held while there is nothing newer than
    /// its cursor; longer waits are cut to it. 0 answers every poll at once.
    #[arg(
        long,
        env = "REVOCATION_FEED_MAX_WAIT_MS",
        value_name = "MS",
        default_value_t = revocation_feed::api::DEFAULT_MAX_WAIT_MS,
        value_parser = clap::value_parser!(u64).range(0..=600_000)
    )]
    max_wait_ms: u64,

    /// Most polls held at once; a poll beyond it is answered at once. Each held poll keeps
    /// a connection (a file descriptor) open.
    #[arg(
        long,
        env = "REVOCATION_FEED_MAX_WAITING_POLLS",
        value_name = "N",
        default_value_t = revocation_feed::api::DEFAULT_MAX_WAITING_POLLS
    )]
    max_waiting_polls: usize,

    /// Accept short, repetitive or placeholder tokens and HMAC keys, which the server
    /// otherwise refuses (see feed/README.md). For a local demo only: it is refused unless
    /// --listen is a loopback address.
    #[arg(long, env = "REVOCATION_FEED_INSECURE_DEMO_SECRETS")]
    insecure_demo_secrets: bool,

    /// Log level on stderr: error, warn, info, debug or off.
    #[arg(
        long,
        env = "REVOCATION_FEED_LOG_LEVEL",
        value_name = "LEVEL",
        default_value = "info"
    )]
    log_level: LevelFilter,
}

#[derive(Args)]
#[command(group(ArgGroup::new("what").required(true).args(["jti", "sub"])))]
struct RevokeArgs {
    /// Base URL of the feed server (http://host:port); the admin path is added.
    #[arg(long, env = "REVOCATION_FEED_URL", value_name = "URL")]
    url: String,

    /// The server's admin token.
    #[arg(
        long,
        env = "REVOCATION_FEED_ADMIN_TOKEN",
        value_name = "T",
        hide_env_values = true
    )]
    admin_token: String,

    /// Revoke the token with this jti.
    #[arg(long, value_name = "J")]
    jti: Option<String>,

    /// Revoke every token of this subject issued before --before.
    #[arg(long, value_name = "S", requires = "before")]
    sub: Option<String>,

    /// With --sub: Unix seconds; tokens with iat before it are refused.
    #[arg(long, value_name = "N", requires = "sub")]
    before: Option<u64>,

    /// Refuse only tokens whose iss claim is exactly this issuer (a jti or a sub is unique
    /// only within its issuer). Without it the revocation applies to every issuer.
    #[arg(long, value_name = "ISS")]
    iss: Option<String>,

    /// Unix seconds after which the revocation may be forgotten (the token's exp, or the
    /// latest exp of the subject's tokens issued before --before).
    #[arg(long, value_name = "N")]
    exp: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("revocation-feed: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve(*args)),
        Command::Revoke(args) => runtime.block_on(revoke(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("revocation-feed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn non_empty(name: &str, v: Option<String>) -> Result<Option<String>, String> {
    match v {
        Some(s) if s.is_empty() => Err(format!("{name} must not be empty")),
        other => Ok(other),
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    logger::init(args.log_level);
    let hmac_secret = match args.hmac_secret_base64.as_deref() {
        None => None,
        Some(s) => {
            let key = base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|e| format!("--hmac-secret-base64 is not valid base64: {e}"))?;
            if key.is_empty() {
                return Err("--hmac-secret-base64 must not be empty".into());
            }
            Some(key)
        }
    };
    let cfg = ApiConfig {
        read_token: non_empty("--read-token", args.read_token)?,
        admin_token: non_empty("--admin-token", args.admin_token)?,
        hmac_secret,
        max_body_bytes: args.max_body_bytes,
        max_wait_ms: args.max_wait_ms,
        max_waiting_polls: args.max_waiting_polls,
    };
    refuse_weak_secrets(&cfg, args.insecure_demo_secrets, args.listen)?;
    let limits = FeedLimits {
        grace_seconds: args.expiry_grace_seconds,
        max_entries_per_response: args.max_entries_per_response as usize,
    };
    let store = match (&args.data, &args.redis) {
        (Some(dir), _) => Store::Embedded(
            EmbeddedStore::open(dir, limits, revocation_feed::api::unix_now())
                .map_err(|e| e.to_string())?,
        ),
        (None, Some(url)) => Store::Redis(
            RedisStore::connect(
                &RedisConfig {
                    url: url.clone(),
                    prefix: args.redis_prefix.clone(),
                    history_seconds: args.redis_history_seconds,
                },
                limits,
            )
            .await
            .map_err(|e| e.to_string())?,
        ),
        (None, None) => return Err("one of --data or --redis is required".into()),
    };
    if cfg.read_token.is_none() {
        log::warn!("no --read-token: the feed is readable by anyone who can reach it");
    }
    if cfg.admin_token.is_none() {
        log::warn!("no --admin-token: the admin API is disabled");
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let kind = store.kind();
    let state = AppState::new(store, cfg);
    let every = (args.compact_interval_seconds > 0)
        .then(|| Duration::from_secs(args.compact_interval_seconds));
    let server = Server::spawn(listener, state.clone(), every)
        .map_err(|e| format!("cannot start the server: {e}"))?;
    log::info!(
        "revocation-feed listening on http://{} ({kind} store)",
        server.addr
    );
    wait_for_signal().await;
    log::info!("shutting down");
    server.stop().await;
    state.store.clone().close();
    Ok(())
}

/// Stops the start when a credential breaks the rule of
/// `revocation_feed::secrets`, naming every one; with
/// `--insecure-demo-secrets` (loopback only) they are accepted with a warning.
fn refuse_weak_secrets(cfg: &ApiConfig, insecure: bool, listen: SocketAddr) -> Result<(), String> {
    if insecure && !listen.ip().is_loopback() {
        return Err(format!(
            "--insecure-demo-secrets is only accepted with a loopback --listen address, not {listen}"
        ));
    }
    let weak = secrets::weak_secrets(cfg);
    if weak.is_empty() {
        return Ok(());
    }
    if insecure {
        for w in &weak {
            log::warn!("{w}; accepted only because of --insecure-demo-secrets");
        }
        return Ok(());
    }
    let list: Vec<String> = weak.iter().map(|w| format!("\n  {w}")).collect();
    Err(format!(
        "refusing to start with weak credentials:{}\nreplace them with random values (feed/README.md, \"Credentials\")",
        list.concat()
    ))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            log::warn!("cannot watch SIGTERM ({e}); only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn revoke(args: RevokeArgs) -> Result<(), String> {
    logger::init(LevelFilter::Warn);
    let iss = args.iss;
    let entry = match (args.jti, args.sub, args.before) {
        (Some(jti), None, None) => Revocation::Token(RevokedToken {
            jti,
            iss,
            exp: args.exp,
        }),
        (None, Some(sub), Some(before)) => Revocation::Subject(RevokedSubject {
            sub,
            iss,
            before,
            exp: args.exp,
        }),
        _ => return Err("give either --jti, or --sub with --before".into()),
    };
    // Checked with the server's own rules, so a bad value is reported here
    // with the same words instead of as a 400 from the server.
    let request = AdminRequest::parse(
        &AdminRequest {
            revocations: vec![entry],
        }
        .to_json(),
    )
    .map_err(|e| {
        let flag = e.field.rsplit('.').next().unwrap_or(&e.field);
        format!("--{flag}: {}", e.message)
    })?;
    let answer = client::revoke(&HttpClient::new(), &args.url, &args.admin_token, &request).await?;
    println!(
        "revoked ({} entr{}); feed cursor {}",
        answer.accepted,
        if answer.accepted == 1 { "y" } else { "ies" },
        answer.cursor
    );
    Ok(())
}
