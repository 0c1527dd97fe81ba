//! `POST /api/sessions`: a short-lived session from HighLevel's encrypted user context.

use super::bodies::{SessionInput, SessionOut};
use super::State;
use crate::error::ApiError;
use actix_web::{web, HttpResponse};
use shared_types::Problem;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/sessions", web::post().to(open));
}

/// Open a session. A location user may act on their location only; an agency user on their company's.
#[utoipa::path(post, path = "/api/sessions", tag = "sessions", request_body = SessionInput,
    responses((status = 201, body = SessionOut), (status = "4XX", body = Problem)))]
pub async fn open(state: State, body: web::Json<SessionInput>) -> Result<HttpResponse, ApiError> {
    let (token, claims, ctx) = state.sessions.open(&body.sso)?;
    tracing::info!(user = %ctx.user_id, company = %ctx.company_id, kind = %ctx.kind, "session opened");
    Ok(HttpResponse::Created().json(SessionOut {
        token,
        expires_at: chrono::DateTime::from_timestamp(claims.exp, 0)
            .unwrap_or_default()
            .to_rfc3339(),
        company_id: claims.company_id,
        location_id: claims.location_id,
        user_id: claims.sub,
        role: claims.role,
    }))
}
