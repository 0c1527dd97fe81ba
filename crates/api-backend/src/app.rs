//! Wiring: the routes over the state (`state.rs`), the server, and `spawn_app` (what `serve` and the tests both
//! use). Nothing imports this module but the binary and the tests.

use crate::api;
use crate::error::{extractor_error, json_error, ApiError};
use crate::settings::Settings;
use crate::state::{build_state, AppState};
use actix_web::{web, App};

/// JSON bodies (products, prices, provider, sessions) are small; uploads go through multipart.
pub const JSON_LIMIT: usize = 256 * 1024;

pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    let ops = {
        let (metered, checked) = (state.clone(), state.clone());
        service_common::ops::Ops::new(state.db.clone(), move || metered.metrics.render(&metered))
            .ready_also(move || {
                let state = checked.clone();
                Box::pin(async move {
                    if state.bridge.ping().await {
                        Ok(())
                    } else {
                        Err(ApiError::OauthBackendUnavailable(
                            "GET /healthz on OAUTH_BACKEND_URL did not answer".into(),
                        )
                        .problem())
                    }
                })
            })
    };
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
            .configure(ops.configure())
            .configure(api::payments::configure)
            .configure(api::proxy::configure)
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::NotFound("no such route".into()))
            }));
    }
}

fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut c = actix_cors::Cors::default()
        .allowed_methods(vec!["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
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

/// A running api-backend. Its stop first answers the requests still waiting for room under HighLevel's
/// rate limit with 503 at once (their keys released), as on SIGTERM; undelivered payment events stay in the
/// database for the next start.
pub type RunningApp = service_common::server::RunningApp<AppState>;

/// Builds the state, binds (port 0: a free port) and starts the server on the current runtime.
pub async fn spawn_app(settings: Settings) -> anyhow::Result<RunningApp> {
    let (running, server) = start(settings).await?;
    tokio::spawn(server);
    Ok(running)
}

pub async fn start(settings: Settings) -> anyhow::Result<(RunningApp, actix_web::dev::Server)> {
    let listener = service_common::server::bind(&settings.host, settings.port)?;
    let state = build_state(settings).await?;
    let events = tokio::spawn(crate::payments::events::run(
        state.clone().into_inner(),
        state.settings.payment_events_interval,
    ));
    let renewals = tokio::spawn(crate::payments::renewals::run(
        state.clone().into_inner(),
        state.settings.subscriptions_interval,
    ));
    let retention = state.settings.idempotency_retention;
    let purge = tokio::spawn(crate::store::idempotency::run_purge(
        state.db.clone(),
        retention,
        crate::store::idempotency::purge_interval(retention),
    ));
    let data = state.clone();
    let origins = state.settings.cors_allowed_origins.clone();
    let parts = service_common::server::Parts {
        listener,
        host: state.settings.host.clone(),
        state,
        tasks: vec![events, purge, renewals],
        before_stop: |state| state.hl.pacer.stop_waiting(),
        at_once: None,
    };
    Ok(service_common::server::serve(parts, move || {
        App::new()
            .wrap(cors(&origins))
            .configure(configure(data.clone()))
    })?)
}
