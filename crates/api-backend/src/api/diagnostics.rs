//! `GET /api/locations/{locationId}/diagnostics`: the doctor's report for the installation serving a location.

use super::{Located, State};
use crate::doctor::{report, Report};
use crate::error::ApiError;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use shared_types::Problem;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/locations/{locationId}/diagnostics",
        web::get().to(diagnostics),
    );
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Only {
    /// Check only this endpoint (a name from the report, e.g. `whitelabel.create`).
    pub endpoint: Option<String>,
}

/// What the location's token is and may do; what would fail and why.
#[utoipa::path(get, path = "/api/locations/{locationId}/diagnostics", tag = "diagnostics",
    params(("locationId" = String, Path), Only),
    responses((status = 200, body = Report), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn diagnostics(
    at: Located,
    state: State,
    path: web::Path<String>,
    q: web::Query<Only>,
) -> Result<HttpResponse, ApiError> {
    let location = path.into_inner();
    let tokens = at.tokens(&state);
    let inst = state.bridge.installation(&tokens.installation).await?;
    let r = report(
        &state.bridge,
        &inst,
        Some(&location),
        state.settings.highlevel_client_id.as_deref(),
        q.endpoint.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(r))
}
