//! PayTR's notification URL (`PUBLIC_BASE_URL/payments/paytr/callback`): form-encoded, answered with the plain
//! text `OK` once handled. A repeat of a handled callback is answered `OK` again and changes nothing; a callback
//! whose hash does not verify is refused and changes nothing. A notification of a payment that stored a card
//! (PayTR's card storage) also carries the customer's `utoken`, which is kept.

use crate::api::State;
use crate::error::ApiError;
use crate::payments::events;
use crate::store::payments as store;
use crate::store::providers;
use actix_web::{web, HttpResponse};
use std::collections::HashMap;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/payments/paytr/callback")
            .app_data(web::PayloadConfig::new(16 * 1024))
            .app_data(
                web::FormConfig::default()
                    .limit(16 * 1024)
                    .error_handler(|e, _| crate::error::extractor_error(e)),
            )
            .route(web::post().to(receive)),
    );
}

/// PayTR's callback (form-encoded); answered with the plain text `OK` once handled.
#[utoipa::path(post, path = "/payments/paytr/callback", tag = "payments",
    request_body(content = Object, content_type = "application/x-www-form-urlencoded", description = "merchant_oid, status, total_amount, hash, …"),
    responses((status = 200, description = "`OK`", content_type = "text/plain"), (status = "4XX", body = shared_types::Problem)))]
pub async fn receive(
    state: State,
    form: web::Form<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let f = form.into_inner();
    let field = |k: &str| {
        f.get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty() && v.len() <= 200)
    };
    let (Some(oid), Some(status), Some(total), Some(hash)) = (
        field("merchant_oid"),
        field("status"),
        field("total_amount"),
        field("hash"),
    ) else {
        return Err(ApiError::InvalidRequest(
            "a PayTR callback carries merchant_oid, status, total_amount and hash".into(),
        ));
    };
    let lookup = oid.to_owned();
    let charge = state
        .db
        .run(move |c| store::charge_by_gateway_ref(c, store::Gateway::Paytr, &lookup))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no PayTR payment `{oid}`")))?;
    let location = charge.location_id.clone();
    let provider = state
        .db
        .run(move |c| providers::get(c, &location))
        .await?
        .ok_or_else(|| ApiError::NotFound("the payment's provider was removed".into()))?;
    let gateway = crate::payments::paytr_for(&state, &provider, charge.live_mode)?;
    if !gateway.callback_is_genuine(oid, status, total, hash) {
        tracing::warn!(merchant_oid = %oid, "PayTR callback with a wrong hash refused");
        return Err(ApiError::InvalidSignature(
            "the callback's hash does not verify with this merchant's key".into(),
        ));
    }
    // A success must be this charge: its amount (minor units; `payment_amount` is the order's, `total_amount`
    // may add instalment fees), currency and test mode. Anything else is an alarm, never a payment; it is
    // acknowledged (PayTR would repeat it forever) and left for a person.
    if status == "success" {
        let amount = field("payment_amount").or(field("total_amount"));
        let minor_ok = amount.and_then(|a| a.parse::<i64>().ok()) == Some(charge.amount_minor);
        let currency_ok = field("currency")
            .is_none_or(|c| crate::payments::paytr::same_currency(c, &charge.currency));
        let mode_ok = field("test_mode").is_none_or(|t| (t == "1") != charge.live_mode);
        if !(minor_ok && currency_ok && mode_ok) {
            tracing::error!(merchant_oid = %oid, charge = %charge.id, ?amount, currency = ?field("currency"),
                test_mode = ?field("test_mode"), expected_minor = charge.amount_minor, expected_currency = %charge.currency,
                "PayTR callback reports a payment that does not match the charge: not settled");
            return Ok(HttpResponse::Ok().content_type("text/plain").body("OK"));
        }
    }
    // A payment that stored a card (card setup, `store_card=1`) brings the contact's `utoken` (not in the
    // hash, but only a genuine notification of this charge gets here).
    if let (Some(utoken), "success") = (field("utoken"), status) {
        crate::payments::paytr_cards::remember_token(&state, &provider, &charge, utoken).await?;
    }
    let (outcome, failure) = match status {
        "success" => (store::ChargeStatus::Succeeded, None),
        _ => (
            store::ChargeStatus::Failed,
            field("failed_reason_msg")
                .map(str::to_owned)
                .or(Some("PayTR reported the payment failed".into())),
        ),
    };
    let (id, location) = (charge.id.clone(), charge.location_id.clone());
    state
        .db
        .run(move |c| events::settle_and_report(c, &location, &id, outcome, failure.as_deref()))
        .await?;
    // The first period of a subscription bought on the page: the subscription is created now (or the
    // checkout marked failed). An error is answered to PayTR, which repeats the notification.
    crate::payments::paytr_subscriptions::on_notification(
        &state,
        &provider,
        &charge,
        status == "success",
    )
    .await?;
    tracing::info!(merchant_oid = %oid, status, "PayTR callback handled");
    Ok(HttpResponse::Ok().content_type("text/plain").body("OK"))
}
