//! Subscriptions on saved cards (`create_subscription`, `cancel_subscription`).

use super::charges::{charge_answer, gateway_charge_saved, new_charge, run_charge, saved_method};
use super::events::{self, charge_snapshot};
use super::requests::{money_of, CancelSubscription, CreateSubscription};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::events as outbox;
use crate::store::now_ms;
use crate::store::payments::{self, Subscription};
use crate::store::providers::ProviderRow;
use serde_json::{json, Value};

/// `create_subscription`: a subscription on a saved card, its first period charged now.
pub async fn create_subscription(
    state: &AppState,
    p: &ProviderRow,
    live: bool,
    q: &CreateSubscription,
) -> Result<Value, ApiError> {
    let txn = q.transaction_id.clone();
    let (amount, cur) = money_of(q.amount, &q.currency)?;
    let currency = cur.code().to_owned();
    let method = saved_method(state, p, &q.payment_method_id)
        .await?
        .filter(|m| m.live_mode == live)
        .ok_or_else(|| {
            ApiError::Validation(
                "`paymentMethodId` is not a saved card of this location and mode".into(),
            )
        })?;
    let interval = q.interval.clone().unwrap_or_else(|| "month".into());
    if !["day", "week", "month", "year"].contains(&interval.as_str()) {
        return Err(ApiError::Validation(
            "`interval` must be day, week, month or year".into(),
        ));
    }
    let count = q.interval_count.unwrap_or(1).clamp(1, 365) as i32;
    let now = now_ms();
    let sub = Subscription {
        id: format!("sub_{:032x}", rand::random::<u128>()),
        location_id: p.location_id.clone(),
        live_mode: live,
        transaction_id: txn.clone(),
        contact_id: q.contact_id.clone(),
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
    let charged = run_charge(state, first, false, async move {
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

/// `cancel_subscription`: stops it; HighLevel hears `subscription.updated`.
pub async fn cancel_subscription(
    state: &AppState,
    p: &ProviderRow,
    q: &CancelSubscription,
) -> Result<Value, ApiError> {
    let (location, id) = (p.location_id.clone(), q.subscription_id.clone());
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
