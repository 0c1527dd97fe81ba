//! Wiring: the routes over the state (`state.rs`), the server and its background tasks, and `spawn_app` (what
//! `serve` and the tests both use). Nothing imports this module but the binary's commands and the tests.

use crate::api;
use crate::error::extractor_error;
use crate::settings::Settings;
use crate::state::{build_state, AppState};
use crate::tokens::refresher;
use actix_web::{web, App};
use std::time::Duration;

/// JSON request bodies are small here; anything larger is refused before parsing.
const JSON_LIMIT: usize = 64 * 1024;

pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    let metrics = state.metrics.clone();
    let ops = service_common::ops::Ops::new(state.tokens.db.clone(), move || metrics.render());
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
            // The hot path first: actix tries routes in order, and every token read would otherwise be matched
            // against the install routes before its own.
            .configure(api::token_access::configure)
            .configure(api::install::configure)
            .configure(api::installations::configure)
            .configure(api::webhooks::configure)
            .configure(api::webhook_deliveries::configure)
            .configure(api::ops::configure)
            .configure(ops.configure())
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(crate::error::AppError::NotFound(
                    "no such route".into(),
                ))
            }));
    }
}

/// A running oauth-backend.
pub type RunningApp = service_common::server::RunningApp<AppState>;

/// Builds the state, binds (port 0: a free port), starts the server and the background refresher on the
/// current runtime.
pub async fn spawn_app(settings: Settings) -> anyhow::Result<RunningApp> {
    let (running, server) = start(settings).await?;
    tokio::spawn(server);
    Ok(running)
}

pub async fn start(settings: Settings) -> anyhow::Result<(RunningApp, actix_web::dev::Server)> {
    let listener = service_common::server::bind(&settings.host, settings.port)?;
    let state = build_state(settings).await?;
    // Every process follows the change feed: an uninstall or a new token anywhere reaches its cache.
    let mut tasks = vec![tokio::spawn(crate::tokens::sync::run(
        state.tokens.clone(),
        state.settings.database_url.clone(),
        Duration::from_millis(state.settings.cache_sync_interval_ms),
        Duration::from_secs(state.settings.cache_max_stale_secs),
    ))];
    if state.settings.purge_interval_secs > 0 {
        tasks.push(tokio::spawn(crate::purge::run(
            state.tokens.db.clone(),
            crate::purge::Retention::from_settings(&state.settings),
            Duration::from_secs(state.settings.purge_interval_secs),
        )));
    }
    if state.forward.sends() {
        tokio::spawn(crate::forward::run(
            state.tokens.db.clone(),
            state.forward.clone(),
            state.metrics.clone(),
            Duration::from_millis(state.settings.webhook_forward_interval_ms),
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
    let parts = service_common::server::Parts {
        listener,
        host: state.settings.host.clone(),
        state,
        tasks,
        before_stop: |_| {},
        at_once: Some(api::token_access::answer_at_once),
    };
    Ok(service_common::server::serve(parts, move || {
        // The hot token read is answered ahead of the router: a cached read at once (`answer_at_once`),
        // any other read of a well-formed id by `api::token_access::HotRead`.
        App::new()
            .wrap(api::token_access::HotRead)
            .configure(configure(data.clone()))
    })?)
}
