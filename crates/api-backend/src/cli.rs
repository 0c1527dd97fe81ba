//! The `api-backend` command line.

use crate::settings::Settings;
use clap::{Parser, Subcommand};
use service_common::logging::{init_logging, LogFormat};

/// HighLevel API service: products, prices, media and the payments custom provider, with every HighLevel
/// refusal explained. Tokens come from oauth-backend.
///
/// Settings come from the environment (and the optional file named by CONFIG_FILE): PORT (8082), DATABASE_URL,
/// HIGHLEVEL_API_URL, OAUTH_BACKEND_URL, SERVICE_JWT_SECRET, HIGHLEVEL_SSO_KEY, CORS_ALLOWED_ORIGINS,
/// PUBLIC_BASE_URL, HIGHLEVEL_CLIENT_ID (optional: spots tokens of another app), TOKEN_ENCRYPTION_KEYS
/// (optional: seals PayTR credentials), LOG_FORMAT, RUST_LOG, DB_POOL_SIZE (10), HIGHLEVEL_TIMEOUT_MS (15000),
/// RATE_LIMIT_BURST (100), RATE_LIMIT_INTERVAL_MS (10000), RATE_LIMIT_MAX_WAIT_MS (30000), SESSION_TTL_SECS (3600),
/// MEDIA_BUFFER_BUDGET (256MiB: media uploads held at once, spooled to MEDIA_SPOOL_DIR, default the system's
/// temporary folder; past it an upload gets 503 with Retry-After), IDEMPOTENCY_RETENTION (24h: how long a
/// finished Idempotency-Key answer is kept for replays before it is purged), IDEMPOTENCY_LEASE (6s: a crashed
/// replica's keys are taken over once this has run out).
#[derive(Debug, Parser)]
#[command(name = "api-backend", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Apply pending database migrations and exit (needs DATABASE_URL).
    Migrate,
    /// Explain what an installation's token is, what it may call, and what would fail and why. Exits 1 when
    /// something would fail. Needs OAUTH_BACKEND_URL and SERVICE_JWT_SECRET.
    Doctor {
        /// The installation id (from `oauth-backend installations`).
        #[arg(long)]
        installation: String,
        /// Check the Location token api-backend would use for this location.
        #[arg(long)]
        location: Option<String>,
        /// Check only this endpoint (e.g. `whitelabel.create`, `products.create`).
        #[arg(long)]
        endpoint: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the OpenAPI document (the one `GET /openapi.json` serves) as pretty JSON and exit. Needs no
    /// settings and starts no server: frontends generate their typed client from it
    /// (scripts/gen-frontend-client.sh).
    Openapi,
}

/// Runs a command; the number is the process's exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let settings = Settings::load()?;
            init_logging(settings.log_format);
            let (running, server) = crate::app::start(settings).await?;
            tracing::info!(url = %running.base_url, "api-backend listening");
            server.await?;
            tracing::info!("api-backend stopped");
            Ok(0)
        }
        Command::Migrate => {
            service_common::cli::migrate(crate::settings::DEFAULTS, crate::db::MIGRATIONS)
                .map_err(|e| anyhow::anyhow!(e))?;
            Ok(0)
        }
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::openapi::document())?
            );
            Ok(0)
        }
        Command::Doctor {
            installation,
            location,
            endpoint,
            json,
        } => {
            init_logging(LogFormat::Pretty);
            let get = |name| service_common::settings::one(name, crate::settings::DEFAULTS);
            let secret = service_common::settings::required(
                "SERVICE_JWT_SECRET",
                crate::settings::DEFAULTS,
            )?;
            let oauth = get("OAUTH_BACKEND_URL")?.unwrap_or_default();
            let bridge = crate::bridge::Bridge::new(
                &oauth,
                &secret.into(),
                std::time::Duration::from_secs(15),
            )?;
            let inst = bridge
                .installation(&installation)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.problem().detail))?;
            let report = crate::doctor::report(
                &bridge,
                &inst,
                location.as_deref(),
                get("HIGHLEVEL_CLIENT_ID")?.as_deref(),
                endpoint.as_deref(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.problem().detail))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", crate::doctor::render(&report));
            }
            Ok(if report.ok { 0 } else { 1 })
        }
    }
}
