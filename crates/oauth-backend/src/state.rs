//! The application state every handler reads, and how it is built from the settings (database, migrations,
//! key ring, HighLevel's OAuth client, webhook keys, the webhook forwarder). Below the routes: it imports no route module, and
//! `app.rs` wires the routes over it.

use crate::audit::AuditSink;
use crate::crypto::keyring::KeyRing;
use crate::db::{redact_url, Db};
use crate::forward::Forwarder;
use crate::metrics::Metrics;
use crate::service_auth::ServiceAuth;
use crate::settings::Settings;
use crate::tokens::TokenService;
use crate::webhook_signature::WebhookVerifier;
use actix_web::web;
use highlevel_client::OAuthClient;
use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;

pub struct AppState {
    pub settings: Settings,
    pub tokens: Arc<TokenService>,
    pub auth: ServiceAuth,
    pub audit: AuditSink,
    pub metrics: Arc<Metrics>,
    pub webhooks: WebhookVerifier,
    pub forward: Arc<Forwarder>,
}

/// Connects to the database, applies migrations and checks every key and secret. Any problem is reported
/// here, at start-up, in one line.
pub async fn build_state(settings: Settings) -> anyhow::Result<web::Data<AppState>> {
    let keys = KeyRing::parse(settings.token_encryption_keys.expose_secret())?;
    let webhooks = WebhookVerifier::new(
        &settings.webhook_ed25519_public_key,
        &settings.webhook_rsa_public_key,
    )
    .map_err(anyhow::Error::msg)?;
    // Before the database: a client that cannot be built (no CA certificates) stops start-up, never a
    // fallback client without timeouts.
    let hl = OAuthClient::new(
        &settings.highlevel_api_url,
        &settings.client_id,
        settings.client_secret.clone(),
        Duration::from_millis(settings.highlevel_timeout_ms),
    )?;
    let forward = Arc::new(Forwarder::new(&settings)?);
    let db = Db::connect(&settings.database_url, settings.db_pool_size).map_err(|e| {
        tracing::error!(database = %redact_url(&settings.database_url), error = %e, "cannot open the database");
        e
    })?;
    let migrate_db = db.clone();
    let applied =
        tokio::task::spawn_blocking(move || migrate_db.migrate(crate::db::MIGRATIONS)).await??;
    if !applied.is_empty() {
        tracing::info!(?applied, "migrations applied");
    }
    let metrics = Arc::new(Metrics::new());
    let mut tokens = TokenService::new(
        db.clone(),
        keys,
        hl,
        metrics.clone(),
        settings.redirect_uri.clone(),
        settings.app_id.clone(),
    );
    tokens.cache = crate::tokens::cache::TokenCache::new(settings.token_cache);
    tokens.suspended_retry_ms = settings.suspended_retry_secs.max(0) * 1000;
    tokens.absent = crate::tokens::absent_cache(std::time::Duration::from_secs(
        settings.absent_location_ttl_secs,
    ));
    let tokens = Arc::new(tokens);
    Ok(web::Data::new(AppState {
        auth: ServiceAuth::new(&settings.service_jwt_secret),
        audit: AuditSink::start(db, metrics.clone()),
        settings,
        tokens,
        metrics,
        webhooks,
        forward,
    }))
}
