//! Wiring: the routes over the state (`state.rs`), the server, and `spawn_app` (what `serve` and the tests both
//! use). Nothing imports this module but the binary and the tests.

use crate::api;
use crate::error::{extractor_error, json_error, ApiError};
use crate::settings::Settings;
use crate::state::{build_state, AppState};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};

/// JSON bodies (products, prices, provider, sessions) are small; uploads go through multipart.
pub const JSON_LIMIT: usize = 256 * 1024;

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

/// A running api-backend.
pub struct RunningApp {
    pub base_url: String,
    pub port: u16,
    pub state: web::Data<AppState>,
    handle: actix_web::dev::ServerHandle,
    events: tokio::task::JoinHandle<()>,
    purge: tokio::task::JoinHandle<()>,
}

impl RunningApp {
    /// Stops serving (finishing requests under way) and stops delivering payment events; undelivered events
    /// stay in the database for the next start. Requests still waiting for room under HighLevel's rate limit
    /// are answered 503 at once (their keys released), as on SIGTERM.
    pub async fn stop(&self) {
        self.state.hl.pacer.stop_waiting();
        self.handle.stop(true).await;
        self.events.abort();
        self.purge.abort();
    }
}

/// SIGTERM (a redeploy) or SIGINT (Ctrl-C). The handlers are in place when this returns (before the server
/// answers anything); the future completes when a signal arrives.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let streams = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        );
        async move {
            match streams {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => std::future::pending::<()>().await,
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
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
    let retention = state.settings.idempotency_retention;
    let purge = tokio::spawn(crate::store::idempotency::run_purge(
        state.db.clone(),
        retention,
        crate::store::idempotency::purge_interval(retention),
    ));
    // Before the server can answer anything: a SIGTERM from then on is ours to handle.
    let signalled = stop_signal();
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
    // Signals are ours (below): a stop first answers the requests waiting for a rate-limit slot.
    .disable_signals()
    .run();
    let handle = server.handle();
    let stopping = (state.clone(), handle.clone());
    tokio::spawn(async move {
        signalled.await;
        tracing::info!("stopping: answering requests that wait for HighLevel's rate limit with 503, draining the rest");
        stopping.0.hl.pacer.stop_waiting();
        stopping.1.stop(true).await;
    });
    let running = RunningApp {
        base_url: service_common::http::base_url(&state.settings.host, port),
        port,
        state,
        handle,
        events,
        purge,
    };
    Ok((running, server))
}
