//! `GET /api/webhooks/deliveries` and `POST /api/webhooks/deliveries/{id}/replay`: the webhooks forwarded to
//! the app, their state, and a replay of a dead (or delivered) one. Operator routes: a service JWT not limited
//! to some installations.

use super::{check_id, service_claims, State};
use crate::error::AppError;
use crate::store::now_ms;
use crate::store::webhook_deliveries::{self as outbox, DeliveryState};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/webhooks/deliveries", web::get().to(list))
        .route(
            "/api/webhooks/deliveries/{id}/replay",
            web::post().to(replay),
        );
}

/// Rows answered per page at most.
pub const MAX_LIMIT: i64 = 200;

/// Deliveries cover every installation: a caller limited to some (`installations` claim) may not see them.
fn operator(req: &HttpRequest, state: &State) -> Result<(), AppError> {
    let claims = service_claims(req, state)?;
    if claims.installations.is_some() {
        return Err(AppError::CallerNotAllowed(claims.iss.clone()));
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct Page {
    state: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// Forwarded webhooks, newest first: `{deliveries: [...], next_offset}` (`next_offset` is null on the last
/// page). Each has `id`, `event_id` (its `webhook-id`), `webhook_id` (HighLevel's), `event_type`, `url`,
/// `installation_id`, `location_id`, `company_id`, `state` (`pending` | `delivered` | `dead`), `attempts`,
/// `next_attempt_at`, `last_status`, `last_error`, `occurred_at` (HighLevel's timestamp), `created_at`,
/// `delivered_at` (epoch ms). Service JWT without an `installations` limit.
#[utoipa::path(get, path = "/api/webhooks/deliveries", tag = "webhooks",
    params(("state" = Option<String>, Query, description = "pending, delivered or dead"),
        ("limit" = Option<i64>, Query, description = "1-200, default 50"),
        ("offset" = Option<i64>, Query, description = "rows to skip, default 0")),
    responses((status = 200, description = "`{deliveries: [...], next_offset}`", body = Object),
        (status = "4XX", body = shared_types::Problem)),
    security(("service_jwt" = [])))]
pub async fn list(
    req: HttpRequest,
    state: State,
    page: web::Query<Page>,
) -> Result<HttpResponse, AppError> {
    operator(&req, &state)?;
    let Page {
        state: filter,
        limit,
        offset,
    } = page.into_inner();
    let filter = match filter.as_deref() {
        None => None,
        Some(s) => Some(DeliveryState::parse(s).ok_or_else(|| {
            AppError::InvalidRequest("`state` must be pending, delivered or dead".into())
        })?),
    };
    let limit = limit.unwrap_or(50);
    let offset = offset.unwrap_or(0);
    if !(1..=MAX_LIMIT).contains(&limit) || offset < 0 {
        return Err(AppError::InvalidRequest(format!(
            "`limit` must be 1-{MAX_LIMIT} and `offset` at least 0"
        )));
    }
    let rows = state
        .tokens
        .db
        .run(move |c| outbox::list(c, filter, limit + 1, offset))
        .await?;
    let more = rows.len() as i64 > limit;
    let rows: Vec<_> = rows.into_iter().take(limit as usize).collect();
    Ok(HttpResponse::Ok().json(json!({
        "deliveries": rows,
        "next_offset": more.then_some(offset + limit),
    })))
}

/// Queues a dead or delivered delivery again, with a fresh retry window and the same `webhook-id` (the app
/// tells a repeat by it); a pending one is left as it is. Answers the delivery. Service JWT without an
/// `installations` limit.
#[utoipa::path(post, path = "/api/webhooks/deliveries/{id}/replay", tag = "webhooks",
    params(("id" = String, Path)),
    responses((status = 200, description = "the delivery, now `pending`", body = Object),
        (status = 404, body = shared_types::Problem), (status = "4XX", body = shared_types::Problem)),
    security(("service_jwt" = [])))]
pub async fn replay(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    operator(&req, &state)?;
    check_id("delivery id", &path)?;
    let id = path.into_inner();
    let lookup = id.clone();
    let row = state
        .tokens
        .db
        .run(move |c| {
            outbox::replay(c, &lookup, now_ms())?;
            outbox::get(c, &lookup)
        })
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no webhook delivery with id `{id}`")))?;
    state.forward.wake.notify_one();
    Ok(HttpResponse::Ok().json(row))
}
