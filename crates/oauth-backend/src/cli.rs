//! The `oauth-backend` command line.

use crate::crypto::keyring::{KeyRing, TokenKind};
use crate::db::Db;
use crate::service_auth::ServiceAuth;
use crate::settings::{LogFormat, Settings};
use crate::store;
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};

/// HighLevel token service: installs, encrypted token custody, exactly-once refresh, token access, webhooks.
///
/// Settings come from the environment (and the optional file named by CONFIG_FILE): PORT, DATABASE_URL,
/// HIGHLEVEL_API_URL, HIGHLEVEL_AUTHORIZE_URL, HIGHLEVEL_CLIENT_ID, HIGHLEVEL_CLIENT_SECRET, HIGHLEVEL_APP_ID,
/// HIGHLEVEL_REDIRECT_URI, HIGHLEVEL_SCOPES, TOKEN_ENCRYPTION_KEYS, SERVICE_JWT_SECRET,
/// WEBHOOK_ED25519_PUBLIC_KEY, WEBHOOK_RSA_PUBLIC_KEY, POST_INSTALL_REDIRECT_URL, LOG_FORMAT, RUST_LOG,
/// REFRESH_MARGIN_SECS (600), REFRESHER_INTERVAL_SECS (60), REFRESHER_CONCURRENCY (16), TOKEN_CACHE (true), WEBHOOK_TOLERANCE_SECS (300), DB_POOL_SIZE (10),
/// HIGHLEVEL_TIMEOUT_MS (10000).
///
/// Cache coherence across replicas: CACHE_SYNC_INTERVAL_MS (200) is how often each process reads the change
/// feed (uninstalls, needs_reauth, new tokens anywhere; PostgreSQL also wakes it at once with NOTIFY);
/// CACHE_MAX_STALE_SECS (60): a process that cannot read the feed that long stops serving tokens from memory.
///
/// Retention: PURGE_INTERVAL_SECS (3600; 0 turns the purge off) runs a purge of expired OAuth states,
/// webhook replay records older than WEBHOOK_RETENTION_DAYS (7), audit rows older than AUDIT_RETENTION_DAYS (90)
/// and change-feed rows older than an hour; forwarded webhooks delivered more than WEBHOOK_DELIVERED_RETENTION_DAYS
/// (7) ago, dead ones after WEBHOOK_DEAD_RETENTION_DAYS (30).
///
/// Webhook forwarding: WEBHOOK_FORWARD_URLS (comma-separated `url` or `Type|Type=url`), WEBHOOK_FORWARD_SECRET
/// (`whsec_…`), WEBHOOK_FORWARD_RETRY (`1s,1h,3d`: first wait, longest wait, total), WEBHOOK_FORWARD_TIMEOUT_MS
/// (10000), WEBHOOK_FORWARD_INTERVAL_MS (1000).
#[derive(Debug, Parser)]
#[command(name = "oauth-backend", version)]
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
    /// Print a service JWT for a job or an operator (needs SERVICE_JWT_SECRET).
    ServiceToken {
        /// The caller's name, recorded in the audit log.
        #[arg(long)]
        caller: String,
        /// Lifetime: `90s`, `15m` or `1h` (at most one hour).
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// Limit the token to these installations (repeat the flag).
        #[arg(long = "installation")]
        installations: Vec<String>,
    },
    /// Re-encrypt every stored token under the first key of TOKEN_ENCRYPTION_KEYS.
    RotateKeys,
    /// List installations and their status (never tokens); `installations uninstall ID` uninstalls the app
    /// from one at HighLevel.
    #[command(args_conflicts_with_subcommands = true)]
    Installations {
        #[command(subcommand)]
        action: Option<InstallationsAction>,
        #[arg(long)]
        company_id: Option<String>,
        #[arg(long)]
        location_id: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// HighLevel webhooks forwarded to the app: `webhooks deliveries list|replay ID`.
    Webhooks {
        #[command(subcommand)]
        action: WebhooksAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhooksAction {
    /// The outbox of forwarded webhooks.
    Deliveries {
        #[command(subcommand)]
        action: DeliveriesAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesAction {
    /// List deliveries, newest first (needs DATABASE_URL).
    List {
        /// Only those in this state: pending, delivered or dead.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long, default_value_t = 0)]
        offset: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Queue a dead (or delivered) delivery again; a running oauth-backend sends it within
    /// WEBHOOK_FORWARD_INTERVAL_MS (needs DATABASE_URL).
    Replay {
        /// The delivery id (`whd_…`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum InstallationsAction {
    /// Uninstall the app from this installation's location or company at HighLevel
    /// (`DELETE /marketplace/app/{appId}/installations`), then record it uninstalled (needs the full settings).
    Uninstall {
        /// The installation id (`inst_…`).
        id: String,
        /// Why, as HighLevel records it.
        #[arg(long)]
        reason: Option<String>,
    },
}

/// Parses `90s`, `15m`, `1h` (any `humantime` duration) or plain seconds.
pub fn parse_ttl(s: &str) -> Result<i64, String> {
    s.parse::<i64>()
        .or_else(|_| humantime::parse_duration(s).map(|d| d.as_secs() as i64))
        .map_err(|_| format!("`{s}` is not a duration like 90s, 15m or 1h"))
}

pub use service_common::logging::init_logging;

/// A setting for the smaller subcommands, which need only one or two.
fn setting(name: &str) -> anyhow::Result<String> {
    Ok(service_common::settings::required(
        name,
        crate::settings::DEFAULTS,
    )?)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let settings = Settings::load()?;
            init_logging(settings.log_format);
            let (running, server) = crate::app::start(settings).await?;
            tracing::info!(url = %running.base_url, "oauth-backend listening");
            server.await?;
            // Graceful stop (SIGTERM / Ctrl-C): the reads served so far reach the audit log.
            running.state.audit.flush().await;
            tracing::info!("oauth-backend stopped");
            Ok(())
        }
        Command::Migrate => {
            service_common::cli::migrate(crate::settings::DEFAULTS, crate::db::MIGRATIONS)
                .map_err(|e| anyhow::anyhow!(e))
        }
        Command::ServiceToken {
            caller,
            ttl,
            installations,
        } => {
            let auth = ServiceAuth::new(&SecretString::from(setting("SERVICE_JWT_SECRET")?));
            let ttl = parse_ttl(&ttl).map_err(anyhow::Error::msg)?;
            let limit = (!installations.is_empty()).then_some(installations);
            println!("{}", auth.issue(&caller, ttl, limit)?);
            Ok(())
        }
        Command::RotateKeys => {
            init_logging(LogFormat::Pretty);
            let keys = KeyRing::parse(&setting("TOKEN_ENCRYPTION_KEYS")?)?;
            let db = Db::connect(&setting("DATABASE_URL")?, 2)?;
            db.migrate(crate::db::MIGRATIONS)?;
            let (rewrapped, skipped) = rotate_keys(&db, &keys)?;
            println!("{rewrapped} token row(s) re-encrypted under key `{}`; {skipped} changed meanwhile and were skipped (run again)", keys.primary_id());
            Ok(())
        }
        Command::Installations {
            action: Some(InstallationsAction::Uninstall { id, reason }),
            ..
        } => {
            let settings = Settings::load()?;
            init_logging(settings.log_format);
            let state = crate::state::build_state(settings).await?;
            let inst = state
                .tokens
                .uninstall(&id, reason.as_deref())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("installation {} is {}", inst.id, inst.state.as_str());
            state.audit.flush().await;
            Ok(())
        }
        Command::Webhooks {
            action: WebhooksAction::Deliveries { action },
        } => {
            let db = Db::connect(&setting("DATABASE_URL")?, 1)?;
            db.migrate(crate::db::MIGRATIONS)?;
            let mut conn = db.conn()?;
            deliveries(&mut conn, action)
        }
        Command::Installations {
            action: None,
            company_id,
            location_id,
            json,
        } => {
            let db = Db::connect(&setting("DATABASE_URL")?, 1)?;
            let mut conn = db.conn()?;
            let list = store::installations::list(
                &mut conn,
                company_id.as_deref(),
                location_id.as_deref(),
            )?;
            let statuses: Vec<shared_types::InstallationStatus> = list
                .iter()
                .map(|i| {
                    let exp =
                        store::tokens::get(&mut conn, &i.id, store::tokens::INSTALLATION_SCOPE)
                            .ok()
                            .flatten()
                            .and_then(|t| t.expires_at);
                    i.status(exp)
                })
                .collect::<Result<_, _>>()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&statuses)?);
            } else {
                println!(
                    "{:<38} {:<13} {:<9} {:<26} {:<26} {:<26} expires_at",
                    "id", "state", "class", "company", "location", "plan"
                );
                for s in statuses {
                    println!(
                        "{:<38} {:<13} {:<9} {:<26} {:<26} {:<26} {}",
                        s.id,
                        s.state.as_str(),
                        s.auth_class.as_str(),
                        s.company_id,
                        s.location_id.unwrap_or_default(),
                        s.plan_id.unwrap_or_default(),
                        s.expires_at.map(|e| e.to_rfc3339()).unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
    }
}

fn deliveries(conn: &mut crate::db::DbConn, action: DeliveriesAction) -> anyhow::Result<()> {
    use store::webhook_deliveries as outbox;
    match action {
        DeliveriesAction::List {
            state,
            limit,
            offset,
            json,
        } => {
            let state = match state.as_deref() {
                None => None,
                Some(s) => Some(outbox::DeliveryState::parse(s).ok_or_else(|| {
                    anyhow::anyhow!("--state must be pending, delivered or dead")
                })?),
            };
            anyhow::ensure!(limit > 0 && offset >= 0, "--limit must be positive");
            let rows = outbox::list(conn, state, limit, offset)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            println!(
                "{:<36} {:<9} {:<8} {:<26} {:<38} {:<24} last_error",
                "id", "state", "attempts", "type", "installation", "occurred_at"
            );
            for d in rows {
                let at = chrono::DateTime::from_timestamp_millis(d.occurred_at)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .unwrap_or_default();
                println!(
                    "{:<36} {:<9} {:<8} {:<26} {:<38} {:<24} {}",
                    d.id,
                    d.state.as_str(),
                    d.attempts,
                    d.event_type,
                    d.installation_id.unwrap_or_default(),
                    at,
                    d.last_error.unwrap_or_default()
                );
            }
            Ok(())
        }
        DeliveriesAction::Replay { id } => {
            let replayed = outbox::replay(conn, &id, crate::store::now_ms())?;
            match outbox::get(conn, &id)? {
                None => anyhow::bail!("no webhook delivery with id `{id}`"),
                Some(_) if replayed => println!("delivery {id} queued again"),
                Some(_) => println!("delivery {id} is pending already"),
            }
            Ok(())
        }
    }
}

/// Re-encrypts every token row under the key ring's first key. Rows that changed while we worked are skipped
/// (they were just written under the first key anyway, by whoever changed them).
pub fn rotate_keys(db: &Db, keys: &KeyRing) -> anyhow::Result<(usize, usize)> {
    let mut conn = db.conn()?;
    let rows = store::tokens::all(&mut conn)?;
    let (mut done, mut skipped) = (0, 0);
    for row in rows {
        let name = format!("{}/{}", row.installation_id, row.scope_key);
        let rewrap = |enc: &Option<String>, kind| -> anyhow::Result<Option<String>> {
            match enc {
                None => Ok(None),
                Some(e) => {
                    let plain = keys.decrypt(e, &name, kind)?;
                    Ok(Some(keys.encrypt(plain.expose_secret(), &name, kind)))
                }
            }
        };
        let access = rewrap(&row.access_token_enc, TokenKind::Access)?;
        let refresh = rewrap(&row.refresh_token_enc, TokenKind::Refresh)?;
        if store::tokens::rewrap(&mut conn, &row, access, refresh)? {
            done += 1;
        } else {
            skipped += 1;
        }
    }
    Ok((done, skipped))
}
