//! The `grantry` binary: `serve` runs the API; `token create` mints an API token.

mod config;

use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use grantry_core::flows::{FlowSettings, Flows};
use grantry_core::service::Records;
use grantry_core::store::{ApiToken, Store};
use grantry_core::{timestamp, Clock, Id, SystemClock};
use grantry_crypto::{generate_api_token, hash_api_token, Keyring};
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
        /// Refuse outgoing requests to loopback and private networks too (link-local
        /// and cloud metadata addresses are always refused).
        #[arg(long, env = "GRANTRY_DENY_PRIVATE_NETWORKS", default_value_t = false, action = clap::ArgAction::Set)]
        deny_private_networks: bool,
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
        /// admin, editor or viewer.
        #[arg(long, default_value = "admin", value_parser = ["admin", "editor", "viewer"])]
        role: String,
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
        Command::Serve { storage, listen, public_url, refresh_margin, http_timeout, deny_private_networks } => {
            let options = ServeOptions { listen, public_url, refresh_margin, http_timeout, deny_private_networks };
            serve(Config::load(storage)?, options).await
        }
        Command::Token { command: TokenCommand::Create { storage, name, role } } => {
            create_token(Config::load(storage)?, name, role).await
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

struct ServeOptions {
    listen: String,
    public_url: Option<String>,
    refresh_margin: u32,
    http_timeout: u32,
    deny_private_networks: bool,
}

async fn serve(config: Config, options: ServeOptions) -> anyhow::Result<()> {
    let master_key = config.master_key()?;
    let store = open_store(&config).await?;
    check_master_key(store.as_ref(), &master_key.id()).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    bootstrap_token(store.as_ref(), clock.as_ref()).await?;
    let listen = &options.listen;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let public_url = options.public_url.unwrap_or_else(|| format!("http://{address}")).trim_end_matches('/').to_owned();
    let store_port: Arc<dyn Store> = store.clone();
    let sealer: Arc<dyn grantry_core::Sealer> = Arc::new(Keyring::new(&master_key));
    let records = Arc::new(Records::new(store_port.clone(), sealer.clone(), clock.clone()));
    let outbound = grantry_server::outbound::Outbound::new(
        std::time::Duration::from_secs(u64::from(options.http_timeout.max(1))),
        grantry_server::outbound::AddressPolicy { deny_private: options.deny_private_networks },
    )
    .map_err(anyhow::Error::msg)?;
    let settings = FlowSettings {
        public_url: public_url.clone(),
        refresh_margin: time::Duration::seconds(i64::from(options.refresh_margin)),
        retry_backoff: vec![std::time::Duration::from_millis(200), std::time::Duration::from_millis(800)],
    };
    let outbound = Arc::new(outbound);
    let flows = Arc::new(Flows::new(records.clone(), sealer, clock, outbound.clone(), settings));
    let state = grantry_server::AppState {
        records,
        flows,
        store: store_port,
        public_url,
        outbound,
        ui: Default::default(),
        tokens: Default::default(),
    };
    tracing::info!("Grantry listening on http://{address} (data in {})", config.database_url_for_humans());
    axum::serve(listener, grantry_server::router(state)).with_graceful_shutdown(shutdown_signal()).await?;
    store.close().await;
    tracing::info!("Grantry stopped");
    Ok(())
}

/// On the first start there is no token: create the admin token, either the
/// operator's `GRANTRY_BOOTSTRAP_TOKEN` or a random one printed once.
async fn bootstrap_token(store: &dyn Store, clock: &dyn Clock) -> anyhow::Result<()> {
    if store.count_api_tokens().await? > 0 {
        return Ok(());
    }
    let (token, chosen) = match std::env::var("GRANTRY_BOOTSTRAP_TOKEN") {
        Ok(t) if !t.trim().is_empty() => (secrecy::SecretString::from(t.trim().to_owned()), true),
        _ => (generate_api_token(), false),
    };
    store
        .insert_api_token(&ApiToken {
            id: Id::generate(),
            name: "bootstrap admin".into(),
            role: "admin".into(),
            token_hash: hash_api_token(token.expose_secret()),
            created_at: timestamp(clock.now()),
        })
        .await?;
    if chosen {
        tracing::info!("created the admin API token from GRANTRY_BOOTSTRAP_TOKEN");
    } else {
        tracing::info!("created an admin API token; it is printed once on stdout and stored only as a hash");
        println!("Admin API token (shown only this once): {}", token.expose_secret());
    }
    Ok(())
}

async fn create_token(config: Config, name: String, role: String) -> anyhow::Result<()> {
    let name = name.trim().to_owned();
    if name.is_empty() {
        bail!("--name must not be blank");
    }
    let store = open_store(&config).await?;
    let token = generate_api_token();
    store
        .insert_api_token(&ApiToken {
            id: Id::generate(),
            name,
            role,
            token_hash: hash_api_token(token.expose_secret()),
            created_at: timestamp(SystemClock.now()),
        })
        .await?;
    store.close().await;
    println!("{}", token.expose_secret());
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
