//! `GET /api/token-access/{id}` and `POST /api/token-access/{id}/refresh`, for internal callers with a service JWT.

use super::{check_id, service_claims, State};
use crate::error::AppError;
use crate::service_auth::allows;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use shared_types::RefreshRequest;
use std::time::Instant;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/token-access/{installation_id}",
        web::get().to(get_token),
    )
    .route(
        "/api/token-access/{installation_id}/refresh",
        web::post().to(refresh),
    );
}

fn json_body(answer: shared_types::TokenAccess) -> bytes::Bytes {
    serde_json::to_vec(&answer)
        .map(bytes::Bytes::from)
        .unwrap_or_default()
}

#[derive(Deserialize)]
pub struct LocationQuery {
    location_id: Option<String>,
}

/// Verifies the caller and audits the outcome, whatever it is.
async fn audited<F, Fut>(
    req: &HttpRequest,
    state: &State,
    id: &str,
    location: Option<&str>,
    serve: F,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<bytes::Bytes, AppError>>,
{
    let started = Instant::now();
    check_id("installation id", id)?;
    if let Some(l) = location {
        check_id("location_id", l)?;
    }
    let claims = service_claims(req, state)?;
    let result = if allows(&claims, id) {
        serve().await
    } else {
        Err(AppError::CallerNotAllowed(claims.iss.clone()))
    };
    let outcome = match &result {
        Ok(_) => "served",
        Err(e) => e.problem_code(),
    };
    state.audit.record(&claims, id, location, outcome);
    state
        .metrics
        .token_access_seconds
        .observe(started.elapsed().as_secs_f64());
    result.map(|body| {
        HttpResponse::Ok()
            .content_type("application/json")
            .insert_header(("cache-control", "no-store"))
            .body(body)
    })
}

/// A token for the installation with at least 60 s of life; with `location_id`, always a Location token.
#[utoipa::path(get, path = "/api/token-access/{installation_id}", tag = "tokens",
    params(("installation_id" = String, Path), ("location_id" = Option<String>, Query)),
    responses((status = 200, description = "TokenAccess", body = Object), (status = "4XX", body = shared_types::Problem), (status = "5XX", body = shared_types::Problem)),
    security(("service_jwt" = [])))]
pub async fn get_token(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
    query: web::Query<LocationQuery>,
) -> Result<HttpResponse, AppError> {
    let location = query.location_id.as_deref();
    audited(&req, &state, &path, location, || async {
        match state.tokens.cached(&path, location) {
            Some(hit) => {
                state.metrics.cache_hits.inc();
                Ok(hit.body.clone())
            }
            None => {
                state.metrics.cache_misses.inc();
                state.tokens.access(&path, location).await.map(json_body)
            }
        }
    })
    .await
}

/// HighLevel refused `rejected_token`: refreshed only if it is still the current token; the current token
/// either way.
#[utoipa::path(post, path = "/api/token-access/{installation_id}/refresh", tag = "tokens",
    params(("installation_id" = String, Path), ("location_id" = Option<String>, Query)),
    request_body(content = Object, description = "`{rejected_token}`"),
    responses((status = 200, description = "TokenAccess", body = Object), (status = "4XX", body = shared_types::Problem), (status = "5XX", body = shared_types::Problem)),
    security(("service_jwt" = [])))]
pub async fn refresh(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
    query: web::Query<LocationQuery>,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, AppError> {
    let location = query.location_id.as_deref();
    if body.rejected_token.is_empty() || body.rejected_token.len() > 8192 {
        return Err(AppError::InvalidRequest(
            "rejected_token must be the token HighLevel refused".into(),
        ));
    }
    audited(&req, &state, &path, location, || async {
        state
            .tokens
            .refresh_rejected(&path, location, &body.rejected_token)
            .await
            .map(json_body)
    })
    .await
}
