//! `/healthz` (process up), `/readyz` (database and oauth-backend reachable), `/metrics`, `/openapi.json`.

use super::State;
use crate::error::ApiError;
use actix_web::{web, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/healthz",
        web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ok"})) }),
    )
    .route("/readyz", web::get().to(ready))
    .route("/metrics", web::get().to(metrics))
    .route("/openapi.json", web::get().to(openapi));
}

async fn ready(state: State) -> Result<HttpResponse, ApiError> {
    state.db.ping().await.map_err(|e| {
        tracing::error!(error = %e, "readiness: database unreachable");
        ApiError::DatabaseUnavailable
    })?;
    if !state.bridge.ping().await {
        return Err(ApiError::OauthBackendUnavailable(
            "GET /healthz on OAUTH_BACKEND_URL did not answer".into(),
        ));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}

async fn metrics(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(&state))
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(crate::openapi::document())
}
