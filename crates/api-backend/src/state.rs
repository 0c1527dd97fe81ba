//! The application state every handler reads, and how it is built from the settings (database, migrations,
//! clients, keys). Below the routes: it imports no route module, and `app.rs` wires the routes over it.

use crate::bridge::Bridge;
use crate::db::{Db, MIGRATIONS};
use crate::metrics::Metrics;
use crate::sessions::Sessions;
use crate::settings::Settings;
use crate::upload_budget::MediaBudget;
use actix_web::web;
use highlevel_client::{ClientConfig, HighLevelClient, PacingConfig};
use secrecy::ExposeSecret;
use service_common::db::redact_url;
use service_common::KeyRing;
use std::sync::Arc;
use std::time::Duration;

pub struct AppState {
    pub settings: Settings,
    pub db: Db,
    pub bridge: Arc<Bridge>,
    pub hl: HighLevelClient,
    pub sessions: Sessions,
    pub metrics: Metrics,
    /// Seals gateway credentials; present when TOKEN_ENCRYPTION_KEYS is set.
    pub keys: Option<KeyRing>,
    pub paytr_http: reqwest::Client,
    /// This instance's leases on running `Idempotency-Key` requests.
    pub leases: crate::store::idempotency::Leases,
    /// Bytes of media uploads held at once (MEDIA_BUFFER_BUDGET).
    pub media_budget: MediaBudget,
    /// Locations lately seen installed (a provider serves only while its location is installed).
    pub seen_installed: moka::sync::Cache<String, ()>,
}

/// The HighLevel client as the settings describe it.
pub fn highlevel_client(
    settings: &Settings,
) -> Result<HighLevelClient, highlevel_client::ClientBuildError> {
    HighLevelClient::new(ClientConfig {
        api_url: settings.highlevel_api_url.clone(),
        backend_url: settings.highlevel_backend_url.clone(),
        timeout: settings.highlevel_timeout,
        idle_timeout: settings.highlevel_idle_timeout,
        app_client_id: settings.highlevel_client_id.clone(),
        pacing: PacingConfig {
            max: settings.rate_limit_burst,
            interval: settings.rate_limit_interval,
            max_wait: settings.rate_limit_max_wait,
            ..PacingConfig::default()
        },
        request_id: Some(service_common::http::current_request_id),
        ..ClientConfig::default()
    })
}

pub fn bridge(settings: &Settings) -> anyhow::Result<Arc<Bridge>> {
    Ok(Arc::new(Bridge::new(
        &settings.oauth_backend_url,
        &settings.service_jwt_secret,
        Duration::from_secs(15),
    )?))
}

/// The one HTTP client every PayTR call uses (built once, with timeouts, or start-up fails).
pub fn paytr_http() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the HTTP client for PayTR: {e}"))
}

/// Connects to the database, applies migrations and checks every key and secret; any problem is reported
/// here, at start-up, in one line.
pub async fn build_state(settings: Settings) -> anyhow::Result<web::Data<AppState>> {
    let keys = match &settings.token_encryption_keys {
        Some(k) => Some(KeyRing::parse(k.expose_secret())?),
        None => None,
    };
    let db = Db::connect(&settings.database_url, settings.db_pool_size).map_err(|e| {
        tracing::error!(database = %redact_url(&settings.database_url), error = %e, "cannot open the database");
        e
    })?;
    let migrate_db = db.clone();
    let applied = tokio::task::spawn_blocking(move || migrate_db.migrate(MIGRATIONS)).await??;
    if !applied.is_empty() {
        tracing::info!(?applied, "migrations applied");
    }
    let mut hl = highlevel_client(&settings)?;
    if db.backend == service_common::db::Backend::Postgres {
        // Replicas on one PostgreSQL database share HighLevel's budget there; a SQLite deployment is one
        // process and paces in memory.
        hl.pacer = Arc::new(highlevel_client::pacing::Pacer::shared(
            hl.pacer.config().clone(),
            Arc::new(crate::store::rate_budget::PgRateBudget::new(db.clone())),
            settings.highlevel_timeout + settings.rate_limit_interval,
        ));
        tokio::spawn(crate::store::rate_budget::run_purge(db.clone()));
    }
    Ok(web::Data::new(AppState {
        bridge: bridge(&settings)?,
        paytr_http: paytr_http()?,
        hl,
        sessions: Sessions::new(
            &settings.service_jwt_secret,
            settings.sso_key.clone(),
            settings.session_ttl_secs,
        ),
        metrics: Metrics::new(),
        leases: crate::store::idempotency::Leases::new(settings.idempotency_lease),
        media_budget: MediaBudget::new(
            settings.media_buffer_budget,
            settings.media_spool_dir.clone(),
        ),
        seen_installed: moka::sync::Cache::builder()
            .time_to_live(settings.provider_installed_check)
            .max_capacity(100_000)
            .build(),
        settings,
        db,
        keys,
    }))
}
