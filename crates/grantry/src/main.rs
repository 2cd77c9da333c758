//! The `grantry` binary: `serve` runs the API; `token create|list|revoke`
//! manage API tokens offline.

mod config;

use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use grantry_core::access::Caller;
use grantry_core::flows::{FlowSettings, Flows};
use grantry_core::ports::{Clock, Store, SystemClock};
use grantry_core::service::Records;
use grantry_core::tokens::{ApiTokens, Bootstrap, NewToken};
use grantry_core::Id;
use grantry_crypto::Keyring;
use grantry_store::SqliteStore;
use secrecy::ExposeSecret;

use crate::config::{Config, StorageArgs};

#[derive(Parser)]
#[command(name = "grantry", version, about = "Keeps the OAuth credentials integrations need, and keeps them fresh.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the API server.
    Serve {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(flatten)]
        options: ServeOptions,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint a new API token and print it alone on stdout.
    Create {
        #[command(flatten)]
        storage: StorageArgs,
        /// A name that says who or what uses the token.
        #[arg(long)]
        name: String,
        /// admin, editor, viewer or integration.
        #[arg(long, default_value = "admin", value_parser = ["admin", "editor", "viewer", "integration"])]
        role: String,
        /// When the token stops working (RFC 3339, e.g. 2027-01-01T00:00:00Z).
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// List the tokens: id, name, role, created, expires (never a value).
    List {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Revoke a token by its id; a running server stops accepting it within 1 s.
    Revoke {
        #[command(flatten)]
        storage: StorageArgs,
        id: String,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GRANTRY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse().command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("grantry: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve { storage, options } => serve(Config::load(storage)?, options).await,
        Command::Token { command: TokenCommand::Create { storage, name, role, expires_at } } => {
            create_token(Config::load(storage)?, name, role, expires_at).await
        }
        Command::Token { command: TokenCommand::List { storage } } => list_tokens(Config::load(storage)?).await,
        Command::Token { command: TokenCommand::Revoke { storage, id } } => {
            revoke_token(Config::load(storage)?, id).await
        }
    }
}

async fn open_store(config: &Config) -> anyhow::Result<Arc<SqliteStore>> {
    let store = SqliteStore::open(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database at {}", config.database_url_for_humans()))?;
    Ok(Arc::new(store))
}

/// Refuses a master key other than the one this database's secrets were sealed with.
async fn check_master_key(store: &dyn Store, key_id: &str) -> anyhow::Result<()> {
    match store.meta_get("master_key_id").await? {
        None => store.meta_set("master_key_id", key_id).await?,
        Some(stored) if stored == key_id => {}
        Some(stored) => bail!(
            "master key mismatch: this database's secrets were sealed with master key {stored}, \
             but the configured master key is {key_id}. Start with the original key \
             (GRANTRY_MASTER_KEY, GRANTRY_MASTER_KEY_FILE or <data-dir>/master.key); nothing was changed."
        ),
    }
    Ok(())
}

#[derive(Args)]
struct ServeOptions {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "GRANTRY_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// The URL at which browsers and providers reach this server
    /// [default: http:// and the listening address, so http://127.0.0.1:8080]
    #[arg(long, env = "GRANTRY_PUBLIC_URL")]
    public_url: Option<String>,
    /// Refresh access tokens that expire within this many seconds.
    #[arg(long, env = "GRANTRY_REFRESH_MARGIN", default_value_t = 60)]
    refresh_margin: u32,
    /// Timeout of every outgoing request, in seconds.
    #[arg(long, env = "GRANTRY_HTTP_TIMEOUT", default_value_t = 10)]
    http_timeout: u32,
    /// Loopback, private or special networks outgoing requests may reach
    /// (comma-separated CIDRs, e.g. 127.0.0.0/8,10.0.0.0/8). Public addresses
    /// are always reachable; link-local, metadata, multicast and the like never.
    #[arg(long, env = "GRANTRY_ALLOWED_NETWORKS", default_value = "")]
    allowed_networks: String,
    /// Origins besides the public URL's that an authorize call's return_to
    /// may lead to (comma-separated, e.g. https://app.example).
    #[arg(long, env = "GRANTRY_RETURN_TO_ORIGINS", default_value = "")]
    return_to_origins: String,
    /// Reverse proxies in front of Grantry (comma-separated CIDRs) whose
    /// X-Forwarded-For names the client that failed attempts are counted for.
    #[arg(long, env = "GRANTRY_TRUSTED_PROXIES", default_value = "")]
    trusted_proxies: String,
}

fn comma_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn networks(text: &str, variable: &str) -> anyhow::Result<Vec<grantry_server::outbound::Network>> {
    comma_list(text)
        .map(grantry_server::outbound::Network::parse)
        .collect::<Result<Vec<_>, String>>()
        .map_err(|e| anyhow::anyhow!("{variable}: {e}"))
}

async fn serve(config: Config, options: ServeOptions) -> anyhow::Result<()> {
    let allowed = networks(&options.allowed_networks, "GRANTRY_ALLOWED_NETWORKS")?;
    let trusted_proxies = networks(&options.trusted_proxies, "GRANTRY_TRUSTED_PROXIES")?;
    let return_to_origins = comma_list(&options.return_to_origins)
        .map(|o| match url::Url::parse(o) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                Ok(u.origin().ascii_serialization())
            }
            _ => Err(anyhow::anyhow!("GRANTRY_RETURN_TO_ORIGINS: `{o}` is not an origin such as https://app.example")),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let master_key = config.master_key()?;
    let store = open_store(&config).await?;
    check_master_key(store.as_ref(), &master_key.id()).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store_port: Arc<dyn Store> = store.clone();
    let api_tokens = Arc::new(ApiTokens::new(store_port.clone(), clock.clone()));
    bootstrap_token(&api_tokens).await?;
    let listen = &options.listen;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let public_url = options.public_url.unwrap_or_else(|| format!("http://{address}")).trim_end_matches('/').to_owned();
    let sealer: Arc<dyn grantry_core::ports::Sealer> = Arc::new(Keyring::new(&master_key));
    let records = Arc::new(Records::new(store_port.clone(), sealer.clone(), clock.clone()));
    let outbound = grantry_server::outbound::Outbound::new(
        std::time::Duration::from_secs(u64::from(options.http_timeout.max(1))),
        grantry_server::outbound::AddressPolicy { allowed },
    )
    .map_err(anyhow::Error::msg)?;
    let settings = FlowSettings {
        public_url: public_url.clone(),
        refresh_margin: time::Duration::seconds(i64::from(options.refresh_margin)),
        retry_backoff: vec![std::time::Duration::from_millis(200), std::time::Duration::from_millis(800)],
        return_to_origins,
    };
    let outbound = Arc::new(outbound);
    let flows = Arc::new(Flows::new(records.clone(), sealer, clock.clone(), outbound.clone(), settings));
    let sealed = flows.seal_captured_parameters().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    if sealed > 0 {
        tracing::info!("sealed the captured callback values of {sealed} generic authorizations");
    }
    let state = grantry_server::AppState {
        records,
        flows,
        public_url,
        outbound,
        ui: Default::default(),
        api_tokens,
        clock,
        bearer_failures: Default::default(),
        sign_in_failures: Default::default(),
        trusted_proxies: Arc::new(trusted_proxies),
    };
    tracing::info!("Grantry listening on http://{address} (data in {})", config.database_url_for_humans());
    let app = grantry_server::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    store.close().await;
    tracing::info!("Grantry stopped");
    Ok(())
}

/// The shortest bootstrap token accepted: a guessable first admin token would open everything.
const MIN_BOOTSTRAP_TOKEN: usize = 32;

/// On the first start there is no token: create the admin token, either the
/// operator's `GRANTRY_BOOTSTRAP_TOKEN` or a random one printed once.
async fn bootstrap_token(tokens: &ApiTokens) -> anyhow::Result<()> {
    let chosen = std::env::var("GRANTRY_BOOTSTRAP_TOKEN").ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    if let Some(t) = &chosen {
        if t.chars().count() < MIN_BOOTSTRAP_TOKEN {
            bail!(
                "GRANTRY_BOOTSTRAP_TOKEN must be at least {MIN_BOOTSTRAP_TOKEN} characters (it has {}); \
                 make one with `head -c 32 /dev/urandom | base64`",
                t.chars().count()
            );
        }
    }
    match tokens.bootstrap(chosen.map(secrecy::SecretString::from)).await.map_err(|e| anyhow::anyhow!("{e}"))? {
        Bootstrap::Existed => {}
        Bootstrap::Chosen => tracing::info!("created the admin API token from GRANTRY_BOOTSTRAP_TOKEN"),
        Bootstrap::Generated(token) => {
            tracing::info!("created an admin API token; it is printed once on stdout and stored only as a hash");
            println!("Admin API token (shown only this once): {}", token.expose_secret());
        }
    }
    Ok(())
}

/// The token service of the command line, acting as the operator.
async fn token_service(config: &Config) -> anyhow::Result<(ApiTokens, Arc<SqliteStore>)> {
    let store = open_store(config).await?;
    Ok((ApiTokens::new(store.clone(), Arc::new(SystemClock)), store))
}

async fn create_token(config: Config, name: String, role: String, expires_at: Option<String>) -> anyhow::Result<()> {
    if name.trim().is_empty() {
        bail!("--name must not be blank");
    }
    let mut body = serde_json::json!({"name": name, "role": role});
    if let Some(at) = expires_at {
        body["expires_at"] = serde_json::json!(at);
    }
    let new = NewToken::parse(&body, SystemClock.now()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (tokens, store) = token_service(&config).await?;
    let (_, value) = tokens.mint(&Caller::operator(), new).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    store.close().await;
    println!("{}", value.expose_secret());
    Ok(())
}

async fn list_tokens(config: Config) -> anyhow::Result<()> {
    let (tokens, store) = token_service(&config).await?;
    let list = tokens.list(&Caller::operator()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    store.close().await;
    println!("{:<36}  {:<11}  {:<24}  {:<24}  name", "id", "role", "created_at", "expires_at");
    for t in list {
        println!(
            "{:<36}  {:<11}  {:<24}  {:<24}  {}",
            t.id,
            t.role,
            t.created_at,
            t.expires_at.as_deref().unwrap_or("never"),
            t.name
        );
    }
    Ok(())
}

async fn revoke_token(config: Config, id: String) -> anyhow::Result<()> {
    let (tokens, store) = token_service(&config).await?;
    let revoked = tokens.revoke(&Caller::operator(), &Id::from_string(id.trim())).await;
    store.close().await;
    match revoked {
        Err(grantry_core::Error::NotFound(message)) => bail!("{message}; `grantry token list` shows them"),
        other => other.map_err(|e| anyhow::anyhow!("{e}"))?,
    }
    println!("revoked {}", id.trim());
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
