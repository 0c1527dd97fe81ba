//! `POST /payments/query`: the queryUrl HighLevel calls with the connected `apiKey` and a `type`. The key
//! identifies the location and the mode (test or live); everything is scoped to that location.

use super::events::{self, charge_snapshot};
use super::gateway::{Gateway, GatewayError, Outcome, Sandbox};
use super::money;
use super::record::gateway_serves;
use crate::api::State;
use crate::error::ApiError;
use crate::store::events as outbox;
use crate::store::now_ms;
use crate::store::payments::{self, Charge, Subscription};
use crate::store::providers::{self, ProviderRow};
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};
use service_common::crypto::{constant_time_eq, token_hash};
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

/// The provider the key belongs to, and whether it is the live key.
async fn provider_for(state: &State, api_key: &str) -> Result<(ProviderRow, bool), ApiError> {
    let hash = token_hash(api_key);
    let lookup = hash.clone();
    let found = state
        .db
        .run(move |c| providers::by_api_key_hash(c, &lookup))
        .await?;
    match found {
        Some((row, live)) => {
            let stored = if live {
                &row.live_api_key_hash
            } else {
                &row.test_api_key_hash
            };
            if constant_time_eq(stored, &hash) {
                super::installed::check_installed(state, &row).await?;
                return Ok((row, live));
            }
            Err(ApiError::ProviderKeyInvalid)
        }
        None => Err(ApiError::ProviderKeyInvalid),
    }
}

fn text<'a>(b: &'a Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    b.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .ok_or_else(|| {
            ApiError::Validation(format!(
                "`{key}` is required (a string of at most 200 characters)"
            ))
        })
}

fn opt_text<'a>(b: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    b.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 200)
}

/// HighLevel's decimal `amount` (major units).
fn amount_major(b: &Map<String, Value>) -> Result<f64, ApiError> {
    b.get("amount").and_then(Value::as_f64).ok_or_else(|| {
        ApiError::Validation("`amount` must be a positive number in major units (49.99)".into())
    })
}

/// HighLevel's `amount` and `currency`, the amount in the currency's minor units.
fn money_of(b: &Map<String, Value>) -> Result<(i64, money::Cur), ApiError> {
    let cur = money::currency(text(b, "currency")?)?;
    Ok((money::to_minor(amount_major(b)?, cur)?, cur))
}

/// The queryUrl HighLevel calls with the connected `apiKey` and a `type`: `verify`, `list_payment_methods`,
/// `charge_payment`, `create_subscription`, `cancel_subscription` or `refund`, answered in HighLevel's shapes.
#[utoipa::path(post, path = "/payments/query", tag = "payments",
    request_body(content = Object, description = "`{type, apiKey, …}` as HighLevel sends it"),
    responses((status = 200, description = "HighLevel's shape for the type", body = Object), (status = "4XX", body = Problem)))]
pub async fn query(state: State, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let b: Map<String, Value> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(ApiError::InvalidRequest(
                "the body must be a JSON object with `type` and `apiKey`".into(),
            ))
        }
    };
    let key = b
        .get("apiKey")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .ok_or(ApiError::ProviderKeyInvalid)?;
    let (provider, live) = provider_for(&state, key).await?;
    let kind = b.get("type").and_then(Value::as_str).unwrap_or_default();
    // The location a request names, if any, must be the key's own.
    if let Some(l) = opt_text(&b, "locationId") {
        if l != provider.location_id {
            return Err(ApiError::LocationNotAllowed(
                "this api key belongs to another location".into(),
            ));
        }
    }
    if matches!(kind, "charge_payment" | "create_subscription") {
        gateway_serves(&provider, live)?;
    }
    let answer = match kind {
        "verify" => verify(&state, &provider, &b).await?,
        "list_payment_methods" => list_methods(&state, &provider, live, &b).await?,
        "charge_payment" => charge(&state, &provider, live, &b).await?,
        "create_subscription" => create_subscription(&state, &provider, live, &b).await?,
        "cancel_subscription" => cancel_subscription(&state, &provider, &b).await?,
        "refund" => refund(&state, &provider, &b).await?,
        other => {
            return Err(ApiError::InvalidRequest(format!(
                "unknown query type `{}`: verify, list_payment_methods, charge_payment, create_subscription, cancel_subscription or refund",
                other.chars().take(40).collect::<String>()
            )))
        }
    };
    tracing::info!(kind, location = %provider.location_id, live, "queryUrl answered");
    Ok(HttpResponse::Ok().json(answer))
}

async fn verify(state: &State, p: &ProviderRow, b: &Map<String, Value>) -> Result<Value, ApiError> {
    let location = p.location_id.clone();
    if let Some(sub) = opt_text(b, "subscriptionId") {
        let sub = sub.to_owned();
        let found = state
            .db
            .run(move |c| payments::subscription(c, &location, &sub))
            .await?;
        return Ok(match found.map(|s| s.status) {
            Some(s) if s == "active" => json!({"success": true}),
            Some(_) => json!({"failed": true}),
            None => json!({"success": false}),
        });
    }
    let charge_id = opt_text(b, "chargeId").map(str::to_owned);
    let txn = opt_text(b, "transactionId").map(str::to_owned);
    let expected_txn = txn.clone();
    if charge_id.is_none() && txn.is_none() {
        return Err(ApiError::Validation(
            "`chargeId`, `transactionId` or `subscriptionId` is required".into(),
        ));
    }
    let found = state
        .db
        .run(move |c| match (charge_id, txn) {
            (Some(id), _) => payments::charge(c, &location, &id),
            (None, Some(t)) => payments::charge_by_transaction(c, &location, &t),
            _ => Ok(None),
        })
        .await?;
    // A charge made for another transaction never pays this one (a page could otherwise hand HighLevel the id
    // of an unrelated, cheaper charge).
    if let (Some(c), Some(t)) = (&found, &expected_txn) {
        if &c.transaction_id != t {
            tracing::warn!(charge = %c.id, "verify: the charge belongs to another transaction");
            return Ok(json!({"failed": true}));
        }
    }
    // A PayTR payment still pending here may have a callback that never arrived: ask PayTR.
    let found = match found {
        Some(c) if c.status == "pending" && c.gateway == "paytr" => {
            Some(settle_from_paytr(state, p, c).await?)
        }
        other => other,
    };
    Ok(match found.map(|c| c.status) {
        Some(s) if s == "succeeded" => json!({"success": true}),
        Some(s) if s == "failed" => json!({"failed": true}),
        _ => json!({"success": false}),
    })
}

/// A PayTR charge still pending here: PayTR's status query settles it when it finds the payment, and a charge
/// whose checkout closed (`timeout_limit`) with no payment has failed. A misconfiguration is an error for the
/// caller, not a charge pending forever.
async fn settle_from_paytr(state: &State, p: &ProviderRow, c: Charge) -> Result<Charge, ApiError> {
    let outcome = match super::paytr_for(state, p, c.live_mode)?.status(&c).await {
        Ok(o) => o,
        Err(GatewayError::Unavailable(why)) => {
            tracing::warn!(charge = %c.id, error = %why, "PayTR status query failed; the charge stays pending");
            return Ok(c);
        }
        Err(e) => return Err(ApiError::GatewayFailed(e.to_string())),
    };
    let closed =
        now_ms() - c.created_at > (super::paytr::CHECKOUT_TIMEOUT_MINUTES * 60 + 60) * 1000;
    let (status, failure) = match outcome {
        Outcome::Succeeded => ("succeeded", None),
        Outcome::Declined(why) => ("failed", Some(why)),
        Outcome::Pending if closed => (
            "failed",
            Some("no payment was made before PayTR's checkout closed".to_owned()),
        ),
        Outcome::Pending => return Ok(c),
    };
    let (id, location) = (c.id.clone(), c.location_id.clone());
    Ok(state
        .db
        .run(move |x| events::settle_and_report(x, &location, &id, status, failure.as_deref()))
        .await?
        .unwrap_or(c))
}

async fn list_methods(
    state: &State,
    p: &ProviderRow,
    live: bool,
    b: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let contact = text(b, "contactId")?.to_owned();
    let location = p.location_id.clone();
    let c2 = contact.clone();
    let list = state
        .db
        .run(move |c| payments::methods(c, &location, &c2, live))
        .await?;
    Ok(Value::Array(
        list.into_iter()
            .map(|m| {
                json!({
                    "id": m.id,
                    "type": "card",
                    "title": m.brand,
                    "subTitle": format!("•••• {}", m.last4),
                    "expiry": format!("{:02}/{:02}", m.exp_month, m.exp_year % 100),
                    "customerId": contact,
                    "imageUrl": "",
                })
            })
            .collect(),
    ))
}

/// HighLevel's answer for a charge in any state.
pub fn charge_answer(c: &Charge) -> Value {
    let (success, failed) = (c.status == "succeeded", c.status == "failed");
    let message = match c.status.as_str() {
        "succeeded" => "Payment succeeded".to_owned(),
        "failed" => c.failure.clone().unwrap_or_else(|| "Payment failed".into()),
        _ => "Payment pending: the customer must confirm it".into(),
    };
    json!({"success": success, "failed": failed, "chargeId": c.id, "message": message, "chargeSnapshot": charge_snapshot(c)})
}

/// Records the charge once per transactionId and runs it at the gateway; a repeat answers the first charge.
pub async fn run_charge<F>(state: &State, new: Charge, attempt: F) -> Result<Charge, ApiError>
where
    F: std::future::Future<Output = Result<Outcome, GatewayError>>,
{
    let (stored, inserted) = state
        .db
        .run(move |c| payments::insert_charge_once(c, &new))
        .await?;
    if !inserted {
        tracing::info!(charge = %stored.id, transaction = %stored.transaction_id, "repeated transactionId: answering the first charge");
        return Ok(stored);
    }
    let (status, failure) = match attempt.await {
        Ok(Outcome::Succeeded) => ("succeeded", None),
        Ok(Outcome::Declined(why)) => ("failed", Some(why)),
        Ok(Outcome::Pending) => return Ok(stored),
        Err(e) => ("failed", Some(e.to_string())),
    };
    // The card was charged (or declined): that must be recorded even across a short database outage.
    let (id, location) = (stored.id.clone(), stored.location_id.clone());
    let settled = state
        .db
        .run_until_reachable(std::time::Duration::from_secs(30), move |c| {
            events::settle_and_report(c, &location, &id, status, failure.as_deref())
        })
        .await?
        .ok_or_else(|| ApiError::Internal("a charge vanished while it was settled".into()))?;
    Ok(settled)
}

pub fn new_charge(p: &ProviderRow, live: bool, txn: &str, amount: i64, currency: String) -> Charge {
    let now = now_ms();
    Charge {
        id: format!("ch_{:032x}", rand::random::<u128>()),
        location_id: p.location_id.clone(),
        live_mode: live,
        transaction_id: txn.to_owned(),
        gateway: p.gateway.clone(),
        gateway_ref: None,
        status: "pending".into(),
        amount_minor: amount,
        currency,
        refunded_minor: 0,
        contact_id: None,
        payment_method_id: None,
        subscription_id: None,
        description: None,
        failure: None,
        created_at: now,
        updated_at: now,
    }
}

async fn saved_method(
    state: &State,
    p: &ProviderRow,
    b: &Map<String, Value>,
) -> Result<Option<payments::Method>, ApiError> {
    let (location, id) = (
        p.location_id.clone(),
        text(b, "paymentMethodId")?.to_owned(),
    );
    Ok(state
        .db
        .run(move |c| payments::method(c, &location, &id))
        .await?)
}

async fn charge(
    state: &State,
    p: &ProviderRow,
    live: bool,
    b: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let txn = text(b, "transactionId")?;
    let (amount, cur) = money_of(b)?;
    let method = saved_method(state, p, b).await?;
    let mut new = new_charge(p, live, txn, amount, cur.code().to_owned());
    new.contact_id = opt_text(b, "contactId").map(str::to_owned);
    new.payment_method_id = opt_text(b, "paymentMethodId").map(str::to_owned);
    new.description = opt_text(b, "chargeDescription").map(str::to_owned);
    let charged = match method {
        Some(m) if m.live_mode == live => {
            let snapshot = new.clone();
            run_charge(state, new, async move {
                gateway_charge_saved(&m, &snapshot).await
            })
            .await?
        }
        _ => {
            run_charge(state, new, async {
                Ok(Outcome::Declined(
                    "the payment method is not saved for this location and mode".into(),
                ))
            })
            .await?
        }
    };
    Ok(charge_answer(&charged))
}

async fn gateway_charge_saved(m: &payments::Method, c: &Charge) -> Result<Outcome, GatewayError> {
    match c.gateway.as_str() {
        "sandbox" => Sandbox.charge_saved(m, c).await,
        other => Err(GatewayError::Refused(format!(
            "the `{other}` gateway cannot charge saved cards"
        ))),
    }
}

async fn create_subscription(
    state: &State,
    p: &ProviderRow,
    live: bool,
    b: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let txn = text(b, "transactionId")?.to_owned();
    let (amount, cur) = money_of(b)?;
    let currency = cur.code().to_owned();
    let method = saved_method(state, p, b)
        .await?
        .filter(|m| m.live_mode == live)
        .ok_or_else(|| {
            ApiError::Validation(
                "`paymentMethodId` is not a saved card of this location and mode".into(),
            )
        })?;
    let interval = opt_text(b, "interval").unwrap_or("month").to_owned();
    if !["day", "week", "month", "year"].contains(&interval.as_str()) {
        return Err(ApiError::Validation(
            "`interval` must be day, week, month or year".into(),
        ));
    }
    let count = b
        .get("intervalCount")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .clamp(1, 365) as i32;
    let now = now_ms();
    let sub = Subscription {
        id: format!("sub_{:032x}", rand::random::<u128>()),
        location_id: p.location_id.clone(),
        live_mode: live,
        transaction_id: txn.clone(),
        contact_id: opt_text(b, "contactId").map(str::to_owned),
        payment_method_id: method.id.clone(),
        amount_minor: amount,
        currency: currency.clone(),
        interval_unit: interval,
        interval_count: count,
        status: "active".into(),
        created_at: now,
        updated_at: now,
    };
    let (sub, inserted) = state
        .db
        .run(move |c| payments::insert_subscription_once(c, &sub))
        .await?;
    // The first period is charged now, under the subscription's own transaction.
    let mut first = new_charge(p, live, &format!("{txn}:1"), amount, currency);
    first.subscription_id = Some(sub.id.clone());
    first.payment_method_id = Some(method.id.clone());
    let snapshot = first.clone();
    let charged = run_charge(state, first, async move {
        gateway_charge_saved(&method, &snapshot).await
    })
    .await?;
    if inserted {
        let e = events::event(
            &p.location_id,
            live,
            "subscription.active",
            json!({"subscriptionId": sub.id, "ghlTransactionId": txn}),
            now_ms(),
        );
        state.db.run(move |c| outbox::enqueue(c, &e)).await?;
    }
    Ok(json!({
        "success": charged.status == "succeeded",
        "failed": charged.status == "failed",
        "message": charge_answer(&charged)["message"],
        "transaction": charge_snapshot(&charged),
        "subscription": {
            "subscriptionId": sub.id,
            "subscriptionSnapshot": {"id": sub.id, "status": sub.status, "createdAt": sub.created_at / 1000},
        },
    }))
}

async fn cancel_subscription(
    state: &State,
    p: &ProviderRow,
    b: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let (location, id) = (p.location_id.clone(), text(b, "subscriptionId")?.to_owned());
    let (l2, id2) = (location.clone(), id.clone());
    let sub = state
        .db
        .run(move |c| payments::subscription(c, &l2, &id2))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no subscription `{id}` for this location")))?;
    let (l3, id3) = (location.clone(), id.clone());
    if state
        .db
        .run(move |c| payments::cancel_subscription(c, &l3, &id3, now_ms()))
        .await?
    {
        let e = events::event(
            &location,
            sub.live_mode,
            "subscription.updated",
            json!({"subscriptionId": id, "status": "canceled"}),
            now_ms(),
        );
        state.db.run(move |c| outbox::enqueue(c, &e)).await?;
    }
    Ok(json!({"success": true, "status": "canceled"}))
}

/// How long an identical refund request (same transaction and amount, when HighLevel sends no refund id of
/// its own) counts as a repeat of the first rather than a new refund: HighLevel retries within minutes.
pub const REFUND_REPEAT_WINDOW_MS: i64 = 15 * 60 * 1000;

/// What identifies a refund request: HighLevel's own refund id when the body has one, else the transaction
/// and the amount (HighLevel's documented refund body is `{amount, transactionId}`).
fn refund_key(b: &Map<String, Value>, txn: &str, amount: i64) -> (String, i64) {
    match ["refundId", "idempotencyKey", "id"]
        .iter()
        .find_map(|k| opt_text(b, k))
    {
        Some(id) => (format!("id:{id}"), 0),
        None => (
            format!("txn:{txn}:{amount}"),
            now_ms() - REFUND_REPEAT_WINDOW_MS,
        ),
    }
}

async fn refund(state: &State, p: &ProviderRow, b: &Map<String, Value>) -> Result<Value, ApiError> {
    let txn = text(b, "transactionId")?.to_owned();
    let location = p.location_id.clone();
    let (l2, t2) = (location.clone(), txn.clone());
    let charge = state
        .db
        .run(move |c| payments::charge_by_transaction(c, &l2, &t2))
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no charge for transaction `{txn}` at this location"
            ))
        })?;
    let cur = money::currency(&charge.currency)?;
    let amount = money::to_minor(amount_major(b)?, cur)?;
    if charge.status != "succeeded" {
        return Err(ApiError::RefundRefused(format!(
            "the charge is {}, not succeeded",
            charge.status
        )));
    }
    let (key, since) = refund_key(b, &txn, amount);
    let refund_id = format!("re{:032x}", rand::random::<u128>());
    let (cid, rid) = (charge.id.clone(), refund_id.clone());
    let claim = state
        .db
        .run(move |c| {
            payments::begin_refund(c, &location, &cid, amount, &rid, &key, since, now_ms())
        })
        .await?;
    let refund = match claim {
        payments::RefundClaim::New(r) => {
            let done = match charge.gateway.as_str() {
                "paytr" => {
                    super::paytr_for(state, p, charge.live_mode)?
                        .refund(&charge, amount, &r.id)
                        .await
                }
                _ => Sandbox.refund(&charge, amount, &r.id).await,
            };
            match done {
                Ok(()) => finish_refund(state, &r.id, true).await?,
                // The gateway said no: nothing was refunded, and the amount is free again.
                Err(GatewayError::Refused(why)) | Err(GatewayError::InvalidCard(why)) => {
                    finish_refund(state, &r.id, false).await?;
                    return Err(ApiError::RefundRefused(format!(
                        "the gateway refused the refund: {why}"
                    )));
                }
                // The answer was lost: the gateway may have refunded. Never undone here; the gateway's status
                // query settles it (a repeat of this request asks it).
                Err(GatewayError::Unavailable(why)) => {
                    tracing::warn!(refund = %r.id, charge = %charge.id, error = %why, "refund outcome unknown; left pending");
                    r
                }
            }
        }
        payments::RefundClaim::Repeat(r) if r.status == "pending" => {
            tracing::info!(refund = %r.id, "repeated refund request: asking the gateway about the pending one");
            resolve_pending_refund(state, p, &charge, r).await?
        }
        payments::RefundClaim::Repeat(r) => {
            tracing::info!(refund = %r.id, "repeated refund request: answering the first refund");
            r
        }
        payments::RefundClaim::TooMuch => {
            return Err(ApiError::RefundRefused(format!(
                "refunding {} {} would exceed what is left of the charge ({} of {})",
                money::major_text(amount, cur),
                cur.code(),
                money::major_text(charge.amount_minor - charge.refunded_minor, cur),
                money::major_text(charge.amount_minor, cur),
            )))
        }
    };
    let cid = charge.id.clone();
    let total: i64 = state
        .db
        .run(move |c| payments::refunds_of(c, &cid))
        .await?
        .iter()
        .filter(|r| r.status != "failed")
        .map(|r| r.amount_minor)
        .sum();
    let pending = refund.status == "pending";
    Ok(json!({
        "success": refund.status == "succeeded",
        "failed": false,
        "pending": pending,
        "message": if pending {
            "Refund pending: the gateway's answer was lost; it is confirmed from the gateway's records"
        } else {
            "Refund succeeded"
        },
        "chargeId": charge.id,
        "refundId": refund.id,
        "refundedAmount": money::to_major(refund.amount_minor, cur),
        "totalRefunded": money::to_major(total, cur),
    }))
}

async fn finish_refund(
    state: &State,
    id: &str,
    succeeded: bool,
) -> Result<payments::Refund, ApiError> {
    let id = id.to_owned();
    state
        .db
        .run_until_reachable(std::time::Duration::from_secs(30), move |c| {
            payments::finish_refund(c, &id, succeeded, now_ms())
        })
        .await?
        .ok_or_else(|| ApiError::Internal("a refund vanished while it was settled".into()))
}

/// A refund whose answer was lost: the gateway's records say whether it happened (PayTR: the status query's
/// `returns[]` carries our `reference_no`). Unknown stays pending.
async fn resolve_pending_refund(
    state: &State,
    p: &ProviderRow,
    charge: &Charge,
    r: payments::Refund,
) -> Result<payments::Refund, ApiError> {
    if charge.gateway != "paytr" {
        return Ok(r);
    }
    match super::paytr_for(state, p, charge.live_mode)?
        .refund_status(charge, &r.id)
        .await
    {
        Ok(Some(happened)) => finish_refund(state, &r.id, happened).await,
        Ok(None) => Ok(r),
        Err(e) => {
            tracing::warn!(refund = %r.id, error = %e, "PayTR status query failed; the refund stays pending");
            Ok(r)
        }
    }
}
