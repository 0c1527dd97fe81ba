//! Wiring: the application state, the routes, and `spawn_app` (what `serve` and the tests both use).

use crate::api;
use crate::bridge::Bridge;
use crate::db::{Db, MIGRATIONS};
use crate::error::{extractor_error, json_error, ApiError};
use crate::metrics::Metrics;
use crate::sessions::Sessions;
use crate::settings::Settings;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use highlevel_client::{ClientConfig, HighLevelClient, PacingConfig};
use secrecy::ExposeSecret;
use service_common::db::redact_url;
use service_common::KeyRing;
use std::sync::Arc;
use std::time::Duration;

/// JSON bodies (products, prices, provider, sessions) are small; uploads go through multipart.
pub const JSON_LIMIT: usize = 256 * 1024;

pub struct AppState {
    pub settings: Settings,
    pub db: Db,
    pub bridge: Arc<Bridge>,
    pub hl: HighLevelClient,
    pub sessions: Sessions,
    pub metrics: Metrics,
    /// Seals gateway credentials; present when TOKEN_ENCRYPTION_KEYS is set.
    pub keys: Option<KeyRing>,
}

/// The HighLevel client as the settings describe it.
pub fn highlevel_client(
    settings: &Settings,
) -> Result<HighLevelClient, highlevel_client::ClientBuildError> {
    HighLevelClient::new(ClientConfig {
        api_url: settings.highlevel_api_url.clone(),
        timeout: settings.highlevel_timeout,
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

pub fn bridge(settings: &Settings) -> Arc<Bridge> {
    Arc::new(Bridge::new(
        &settings.oauth_backend_url,
        &settings.service_jwt_secret,
        Duration::from_secs(15),
    ))
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
    Ok(web::Data::new(AppState {
        bridge: bridge(&settings),
        hl: highlevel_client(&settings)?,
        sessions: Sessions::new(
            &settings.service_jwt_secret,
            settings.sso_key.clone(),
            settings.session_ttl_secs,
        ),
        metrics: Metrics::new(),
        settings,
        db,
        keys,
    }))
}

pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(state)
            .app_data(
                web::JsonConfig::default()
                    .limit(JSON_LIMIT)
                    .error_handler(|e, _| json_error(e)),
            )
            .app_data(web::QueryConfig::default().error_handler(|e, _| extractor_error(e)))
            .app_data(web::PathConfig::default().error_handler(|e, _| extractor_error(e)))
            .app_data(web::PayloadConfig::new(JSON_LIMIT))
            .configure(api::sessions::configure)
            .configure(api::products::configure)
            .configure(api::prices::configure)
            .configure(api::media::configure)
            .configure(api::provider::configure)
            .configure(api::diagnostics::configure)
            .configure(api::ops::configure)
            .configure(crate::payments::query::configure)
            .configure(crate::payments::page::configure)
            .configure(crate::payments::paytr::callback::configure)
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::NotFound("no such route".into()))
            }));
    }
}

fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut c = actix_cors::Cors::default()
        .allowed_methods(vec!["GET", "POST", "PUT", "DELETE", "OPTIONS"])
        .allowed_headers(vec![
            "authorization",
            "content-type",
            "idempotency-key",
            "x-request-id",
        ])
        .expose_headers(vec!["retry-after", "idempotent-replayed"])
        .supports_credentials()
        .max_age(600);
    for o in origins {
        c = c.allowed_origin(o);
    }
    c
}

/// A running api-backend.
pub struct RunningApp {
    pub base_url: String,
    pub port: u16,
    pub state: web::Data<AppState>,
    handle: actix_web::dev::ServerHandle,
    events: tokio::task::JoinHandle<()>,
}

impl RunningApp {
    /// Stops serving (finishing requests under way) and stops delivering payment events; undelivered events
    /// stay in the database for the next start.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
        self.events.abort();
    }
}

/// Builds the state, binds (port 0: a free port) and starts the server on the current runtime.
pub async fn spawn_app(settings: Settings) -> anyhow::Result<RunningApp> {
    let (running, server) = start(settings).await?;
    tokio::spawn(server);
    Ok(running)
}

pub async fn start(settings: Settings) -> anyhow::Result<(RunningApp, actix_web::dev::Server)> {
    let listener = service_common::http::listen(&settings.host, settings.port).map_err(|e| {
        anyhow::anyhow!("cannot listen on {}:{}: {e}", settings.host, settings.port)
    })?;
    let port = listener.local_addr()?.port();
    let state = build_state(settings).await?;
    let events = tokio::spawn(crate::payments::events::run(
        state.clone(),
        state.settings.payment_events_interval,
    ));
    let data = state.clone();
    let origins = state.settings.cors_allowed_origins.clone();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(cors(&origins))
            .wrap(from_fn(service_common::http::problem_errors))
            .wrap(from_fn(service_common::http::access_log))
            .wrap(from_fn(service_common::http::request_id))
            .configure(configure(data.clone()))
    })
    // HTTP/1.1, and HTTP/2 without TLS for callers that multiplex many waiting requests on one connection.
    .listen_auto_h2c(listener)?
    // A stop (SIGTERM, Ctrl-C) drains requests under way for at most 4 s, so the process ends within 5 s.
    .shutdown_timeout(4)
    .run();
    let running = RunningApp {
        base_url: service_common::http::base_url(&state.settings.host, port),
        port,
        state,
        handle: server.handle(),
        events,
    };
    Ok((running, server))
}
