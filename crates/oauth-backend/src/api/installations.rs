//! `GET /api/installations` and `GET /api/installations/{id}`: status, never tokens. `DELETE
//! /api/installations/{id}`: the app uninstalls itself from that location or company at HighLevel.

use super::{check_id, service_claims, State};
use crate::error::AppError;
use crate::service_auth::allows;
use crate::store;
use crate::store::tokens::INSTALLATION_SCOPE;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/installations", web::get().to(list))
        .route("/api/installations/{id}", web::get().to(get))
        .route("/api/installations/{id}", web::delete().to(uninstall));
}

#[derive(Deserialize)]
pub struct Filter {
    company_id: Option<String>,
    location_id: Option<String>,
}

/// Installations (status, never tokens), optionally of one company or location. Service JWT.
#[utoipa::path(get, path = "/api/installations", tag = "installations",
    params(("company_id" = Option<String>, Query), ("location_id" = Option<String>, Query)),
    responses((status = 200, description = "`{installations: [...]}`", body = Object), (status = "4XX", body = shared_types::Problem)),
    security(("service_jwt" = [])))]
pub async fn list(
    req: HttpRequest,
    state: State,
    filter: web::Query<Filter>,
) -> Result<HttpResponse, AppError> {
    let claims = service_claims(&req, &state)?;
    let Filter {
        company_id,
        location_id,
    } = filter.into_inner();
    for id in company_id.iter().chain(location_id.iter()) {
        check_id("filter", id)?;
    }
    let rows = state
        .tokens
        .db
        .run(move |c| {
            let list =
                store::installations::list(c, company_id.as_deref(), location_id.as_deref())?;
            list.into_iter()
                .map(|i| {
                    let exp = store::tokens::get(c, &i.id, INSTALLATION_SCOPE)?
                        .and_then(|t| t.expires_at);
                    Ok(i.status(exp)?)
                })
                .collect::<Result<Vec<_>, crate::db::DbError>>()
        })
        .await?;
    let visible: Vec<_> = rows
        .into_iter()
        .filter(|s| allows(&claims, &s.id))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"installations": visible})))
}

/// One installation's status. Service JWT.
#[utoipa::path(get, path = "/api/installations/{id}", tag = "installations", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = "4XX", body = shared_types::Problem)), security(("service_jwt" = [])))]
pub async fn get(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let claims = service_claims(&req, &state)?;
    check_id("installation id", &path)?;
    if !allows(&claims, &path) {
        return Err(AppError::CallerNotAllowed(claims.iss.clone()));
    }
    let id = path.into_inner();
    let lookup = id.clone();
    let status = state
        .tokens
        .db
        .run(move |c| {
            let Some(i) = store::installations::find(c, &lookup)? else {
                return Ok(None);
            };
            let exp = store::tokens::get(c, &i.id, INSTALLATION_SCOPE)?.and_then(|t| t.expires_at);
            Ok(Some(i.status(exp)?))
        })
        .await?
        .ok_or(AppError::InstallationNotFound(id))?;
    Ok(HttpResponse::Ok().json(status))
}

#[derive(Deserialize)]
pub struct UninstallQuery {
    /// Why, as HighLevel records it (required from a developer; a default is sent otherwise).
    reason: Option<String>,
}

/// `DELETE /api/installations/{id}[?reason=]`: HighLevel's `DELETE /marketplace/app/{appId}/installations` with
/// the installation's own token, then the installation is recorded `uninstalled` and its tokens destroyed.
/// Answers its status.
/// The app uninstalls itself from that location or company at HighLevel, then records it uninstalled.
#[utoipa::path(delete, path = "/api/installations/{id}", tag = "installations", params(("id" = String, Path), ("reason" = Option<String>, Query)),
    responses((status = 200, body = Object), (status = "4XX", body = shared_types::Problem), (status = "5XX", body = shared_types::Problem)), security(("service_jwt" = [])))]
pub async fn uninstall(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
    q: web::Query<UninstallQuery>,
) -> Result<HttpResponse, AppError> {
    let claims = service_claims(&req, &state)?;
    check_id("installation id", &path)?;
    if !allows(&claims, &path) {
        return Err(AppError::CallerNotAllowed(claims.iss.clone()));
    }
    if q.reason.as_ref().is_some_and(|r| r.len() > 500) {
        return Err(AppError::InvalidRequest(
            "reason is longer than 500 characters".into(),
        ));
    }
    let inst = state.tokens.uninstall(&path, q.reason.as_deref()).await?;
    tracing::info!(installation = %inst.id, caller = %claims.iss, "installation uninstalled on request");
    Ok(HttpResponse::Ok().json(inst.status(None)?))
}
