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
/// (optional: seals PayTR credentials), LOG_FORMAT, RUST_LOG, DB_POOL_SIZE (10), HIGHLEVEL_TIMEOUT_MS (15000: one
/// call, or a proxied answer's head), HIGHLEVEL_IDLE_TIMEOUT_MS (15000: a proxied answer's longest pause), RATE_LIMIT_BURST (100), RATE_LIMIT_INTERVAL_MS (10000), RATE_LIMIT_MAX_WAIT_MS (30000), SESSION_TTL_SECS (3600),
/// MEDIA_BUFFER_BUDGET (256MiB: media uploads held at once, spooled to MEDIA_SPOOL_DIR, default the system's
/// temporary folder; past it an upload gets 503 with Retry-After), IDEMPOTENCY_RETENTION (24h: how long a
/// finished Idempotency-Key answer is kept for replays before it is purged), IDEMPOTENCY_LEASE (6s: a crashed
/// replica's keys are taken over once this has run out), SUBSCRIPTIONS_INTERVAL (1m: how often subscriptions due
/// are renewed; 0 turns the loop off), SUBSCRIPTIONS_CONCURRENCY (4), SUBSCRIPTION_RETRY_DELAYS (1d,3d,7d: when
/// a declined renewal is tried again, before the subscription becomes unpaid).
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
    /// Subscriptions this service renews (HighLevel's `create_subscription`).
    #[command(subcommand)]
    Subscriptions(SubscriptionsCommand),
}

#[derive(Debug, Subcommand)]
pub enum SubscriptionsCommand {
    /// Run one renewal pass (what the service does every SUBSCRIPTIONS_INTERVAL): charge every period due,
    /// then deliver the payment events queued. Safe beside running services and other passes: each period is
    /// claimed in the database and charged once. Needs the service's settings. Prints a JSON report.
    RunDue {
        /// The pass's clock (RFC 3339), for operators and tests; now by default.
        #[arg(long)]
        now: Option<String>,
    },
    /// The location's subscriptions, the newest first (needs DATABASE_URL).
    List {
        #[arg(long)]
        location: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
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
        Command::Subscriptions(SubscriptionsCommand::RunDue { now }) => {
            let now = match now {
                Some(t) => chrono::DateTime::parse_from_rfc3339(&t)
                    .map_err(|e| {
                        anyhow::anyhow!("--now must be RFC 3339 (2026-12-01T00:00:00Z): {e}")
                    })?
                    .timestamp_millis(),
                None => crate::store::now_ms(),
            };
            let settings = Settings::load()?;
            init_logging(settings.log_format);
            let state = crate::state::build_state(settings).await?;
            let report = crate::payments::renewals::run_due(&state, now)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.problem().detail))?;
            let delivered = crate::payments::events::run_once(&state).await;
            println!(
                "{}",
                serde_json::json!({"renewals": report, "eventsDelivered": delivered})
            );
            Ok(if report.errors == 0 { 0 } else { 1 })
        }
        Command::Subscriptions(SubscriptionsCommand::List { location, json }) => {
            init_logging(LogFormat::Pretty);
            let url =
                service_common::settings::required("DATABASE_URL", crate::settings::DEFAULTS)?;
            let db = crate::db::Db::connect(&url, 1)?;
            let list = db
                .run(move |c| crate::store::subscriptions::of_location(c, &location, 1000))
                .await?;
            let time = |ms: Option<i64>| {
                ms.and_then(chrono::DateTime::from_timestamp_millis)
                    .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
            };
            if json {
                let rows: Vec<_> = list
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "id": s.id, "ghlSubscriptionId": s.ghl_subscription_id, "status": s.status,
                            "live": s.live_mode, "amountMinor": s.amount_minor, "currency": s.currency,
                            "interval": s.interval_unit, "intervalCount": s.interval_count,
                            "cyclesPaid": s.cycles_paid, "totalCycles": s.total_cycles,
                            "failedAttempts": s.failed_attempts, "trialEnd": time(s.trial_end),
                            "nextCharge": time(s.next_charge_at), "nextAttempt": time(s.attempt_at),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for s in &list {
                    println!(
                        "{} {} {} {} {} every {} {} paid {}/{} next {}",
                        s.id,
                        s.ghl_subscription_id.as_deref().unwrap_or("-"),
                        s.status,
                        s.amount_minor,
                        s.currency,
                        s.interval_count,
                        s.interval_unit,
                        s.cycles_paid,
                        s.total_cycles.map_or("∞".to_owned(), |n| n.to_string()),
                        time(s.attempt_at),
                    );
                }
            }
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
