//! `POST /payments/query`: the queryUrl HighLevel calls with the connected `apiKey` and a `type`. The key
//! identifies the location and the mode (test or live); the body is read into one typed variant per `type`
//! (`payments::requests::Query`) and handed to the domain operation that answers it.

use crate::api::State;
use crate::error::ApiError;
use crate::payments::requests::{Query, TYPES};
use crate::payments::{access, charges, record::gateway_serves, refunds, subscriptions};
use actix_web::{web, HttpResponse};
use serde_json::Value;
use shared_types::Problem;

/// HighLevel's query bodies are small.
const QUERY_LIMIT: usize = 16 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/payments/query")
            .app_data(web::PayloadConfig::new(QUERY_LIMIT))
            .route(web::post().to(query)),
    );
}

/// The queryUrl HighLevel calls with the connected `apiKey` and a `type`: `verify`, `list_payment_methods`,
/// `charge_payment`, `create_subscription`, `cancel_subscription` or `refund`, answered in HighLevel's shapes.
#[utoipa::path(post, path = "/payments/query", tag = "payments",
    request_body(content = Object, description = "`{type, apiKey, …}` as HighLevel sends it"),
    responses((status = 200, description = "HighLevel's shape for the type", body = Object), (status = "4XX", body = Problem)))]
pub async fn query(state: State, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let b = match serde_json::from_slice::<Value>(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return Err(ApiError::InvalidRequest(
                "the body must be a JSON object with `type` and `apiKey`".into(),
            ))
        }
    };
    // The key first: nothing about the body is answered to a caller without one.
    let key = b["apiKey"]
        .as_str()
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .ok_or(ApiError::ProviderKeyInvalid)?;
    let (provider, live) = access::provider_for_api_key(&state, key).await?;
    let kind = b["type"].as_str().unwrap_or_default().to_owned();
    if !TYPES.contains(&kind.as_str()) {
        return Err(ApiError::InvalidRequest(format!(
            "unknown query type `{}`: {}",
            kind.chars().take(40).collect::<String>(),
            TYPES.join(", ")
        )));
    }
    // The location a request names, if any, must be the key's own.
    if let Some(l) = b["locationId"].as_str().filter(|l| !l.is_empty()) {
        if l != provider.location_id {
            return Err(ApiError::LocationNotAllowed(
                "this api key belongs to another location".into(),
            ));
        }
    }
    let q: Query =
        serde_json::from_value(b).map_err(|e| ApiError::Validation(format!("`{kind}`: {e}")))?;
    q.check()?;
    if q.charges() {
        gateway_serves(&provider, live)?;
    }
    // Cards on file only where the location's gateway keeps them (PayTR: with its Direct API permissions).
    if matches!(
        q,
        Query::ListPaymentMethods(_) | Query::ChargePayment(_) | Query::CreateSubscription(_)
    ) {
        crate::payments::checkout::require_card_on_file(&provider)?;
    }
    let answer = match &q {
        Query::Verify(v) => charges::verify(&state, &provider, live, v).await?,
        Query::ListPaymentMethods(v) => charges::list_methods(&state, &provider, live, v).await?,
        Query::ChargePayment(v) => charges::charge_payment(&state, &provider, live, v).await?,
        Query::CreateSubscription(v) => {
            subscriptions::create_subscription(&state, &provider, live, v).await?
        }
        Query::CancelSubscription(v) => {
            subscriptions::cancel_subscription(&state, &provider, v).await?
        }
        Query::Refund(v) => refunds::refund(&state, &provider, v).await?,
    };
    tracing::info!(kind = q.kind(), location = %provider.location_id, live, "queryUrl answered");
    Ok(HttpResponse::Ok().json(answer))
}
