//! Wiring: the routes over the state (`state.rs`), the server and its background tasks, and `spawn_app` (what
//! `serve` and the tests both use). Nothing imports this module but the binary's commands and the tests.

use crate::api;
use crate::error::extractor_error;
use crate::settings::Settings;
use crate::state::{build_state, AppState};
use crate::tokens::refresher;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use std::time::Duration;

/// JSON request bodies are small here; anything larger is refused before parsing.
const JSON_LIMIT: usize = 64 * 1024;

pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(state)
            .app_data(
                web::JsonConfig::default()
                    .limit(JSON_LIMIT)
                    .error_handler(|e, _| extractor_error(e)),
            )
            .app_data(web::QueryConfig::default().error_handler(|e, _| extractor_error(e)))
            .app_data(web::PathConfig::default().error_handler(|e, _| extractor_error(e)))
            .app_data(web::PayloadConfig::new(JSON_LIMIT))
            .configure(api::install::configure)
            .configure(api::token_access::configure)
            .configure(api::installations::configure)
            .configure(api::webhooks::configure)
            .configure(api::ops::configure)
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(crate::error::AppError::NotFound(
                    "no such route".into(),
                ))
            }));
    }
}

/// A running oauth-backend.
pub struct RunningApp {
    pub base_url: String,
    pub port: u16,
    pub state: web::Data<AppState>,
    handle: actix_web::dev::ServerHandle,
}

impl RunningApp {
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

/// Builds the state, binds (port 0: a free port), starts the server and the background refresher on the
/// current runtime.
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
    // Every process follows the change feed: an uninstall or a new token anywhere reaches its cache.
    tokio::spawn(crate::tokens::sync::run(
        state.tokens.clone(),
        state.settings.database_url.clone(),
        Duration::from_millis(state.settings.cache_sync_interval_ms),
        Duration::from_secs(state.settings.cache_max_stale_secs),
    ));
    if state.settings.purge_interval_secs > 0 {
        tokio::spawn(crate::purge::run(
            state.tokens.db.clone(),
            crate::purge::Retention::from_settings(&state.settings),
            Duration::from_secs(state.settings.purge_interval_secs),
        ));
    }
    if state.settings.refresher_interval_secs > 0 {
        refresher::spawn(
            &state.tokens,
            Duration::from_secs(state.settings.refresher_interval_secs),
            state.settings.refresh_margin_secs,
            state.settings.refresher_concurrency,
            state.settings.db_pool_size,
        )?;
    }
    let data = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(service_common::http::problem_errors))
            .wrap(from_fn(service_common::http::access_log))
            .wrap(from_fn(service_common::http::request_id))
            .configure(configure(data.clone()))
    })
    // HTTP/1.1, and HTTP/2 without TLS for internal callers whose pools multiplex many requests on one connection.
    .listen_auto_h2c(listener)?
    // A stop (SIGTERM, Ctrl-C) drains requests under way for at most 4 s, so the process ends within 5 s.
    .shutdown_timeout(4)
    .run();
    let running = RunningApp {
        base_url: service_common::http::base_url(&state.settings.host, port),
        port,
        state,
        handle: server.handle(),
    };
    Ok((running, server))
}
