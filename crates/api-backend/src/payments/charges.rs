//! Charges: recording one per HighLevel transaction, running it at the gateway, settling it (with its event,
//! in one transaction), and what HighLevel's `verify`, `list_payment_methods` and `charge_payment` ask of them.

use super::events::{self, charge_snapshot};
use super::gateway::{Gateway, GatewayError, Outcome, Sandbox};
use super::requests::{money_of, ChargePayment, ListPaymentMethods, Verify};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::now_ms;
use crate::store::payments::{self, Charge, ChargeStatus};
use crate::store::providers::ProviderRow;
use serde_json::{json, Value};

/// `verify`: whether HighLevel's transaction (or subscription) is paid: `{success:true}`, `{failed:true}`, or
/// `{success:false}` while pending.
pub async fn verify(
    state: &AppState,
    p: &ProviderRow,
    live: bool,
    q: &Verify,
) -> Result<Value, ApiError> {
    if let Some(sub) = &q.subscription_id {
        return super::subscriptions::verify(state, p, live, sub).await;
    }
    let location = p.location_id.clone();
    let charge_id = q.charge_id.clone();
    let txn = q.transaction_id.clone();
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
    // of an unrelated, cheaper charge), and a test-mode charge never pays a live one (nor the reverse).
    if let (Some(c), Some(t)) = (&found, &expected_txn) {
        if &c.transaction_id != t {
            tracing::warn!(charge = %c.id, "verify: the charge belongs to another transaction");
            return Ok(json!({"failed": true}));
        }
    }
    if let Some(c) = &found {
        if c.live_mode != live {
            tracing::warn!(charge = %c.id, live, "verify: the charge was made in the other mode");
            return Ok(json!({"failed": true}));
        }
    }
    // A PayTR payment still pending here may have a callback that never arrived: ask PayTR.
    let found = match found {
        Some(c) if c.status == ChargeStatus::Pending && c.gateway == payments::Gateway::Paytr => {
            Some(settle_from_paytr(state, p, c, now_ms()).await?)
        }
        other => other,
    };
    Ok(match found.map(|c| c.status) {
        Some(ChargeStatus::Succeeded) => json!({"success": true}),
        Some(ChargeStatus::Failed) => json!({"failed": true}),
        _ => json!({"success": false}),
    })
}

/// A PayTR charge still pending here: PayTR's status query settles it when it finds the payment, and a charge
/// whose iFrame checkout closed (`timeout_limit`) with no payment has failed (a Direct API payment, which has no
/// such timeout, only a day after it began). A misconfiguration is an error for the
/// caller, not a charge pending forever. `now` is the clock the checkout's closing is judged by.
pub async fn settle_from_paytr(
    state: &AppState,
    p: &ProviderRow,
    c: Charge,
    now: i64,
) -> Result<Charge, ApiError> {
    let outcome = match super::paytr_for(state, p, c.live_mode)?.status(&c).await {
        Ok(o) => o,
        Err(GatewayError::Unavailable(why)) => {
            tracing::warn!(charge = %c.id, error = %why, "PayTR status query failed; the charge stays pending");
            return Ok(c);
        }
        Err(e) => return Err(ApiError::GatewayFailed(e.to_string())),
    };
    // Only the iFrame checkout closes at its `timeout_limit`; a Direct API payment has none (PayTR's Direct API
    // documentation).
    let iframe = c.payment_method_id.is_none()
        && c.subscription_id.is_none()
        && !c
            .transaction_id
            .starts_with(super::paytr_cards::CARD_SETUP_PREFIX);
    let over_after = if iframe {
        super::paytr::CHECKOUT_CLOSED_AFTER_MS
    } else {
        super::paytr::DIRECT_GIVEN_UP_AFTER_MS
    };
    let closed = now - c.created_at > over_after;
    let (status, failure) = match outcome {
        Outcome::Succeeded => (ChargeStatus::Succeeded, None),
        Outcome::Declined(why) => (ChargeStatus::Failed, Some(why)),
        Outcome::Pending if closed => (
            ChargeStatus::Failed,
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

/// PayTR charges at most this many per pass of [`settle_unnotified_paytr`].
const UNNOTIFIED_BATCH: i64 = 20;

/// A charge PayTR could not be asked about for this long (its provider removed, its credentials wrong) is no
/// longer asked about by the pass: it stays pending for a person (`verify` still asks).
const UNNOTIFIED_GIVEN_UP_AFTER_MS: i64 = 7 * 86_400_000;

/// PayTR charges whose notification never came and that nobody asked about since (HighLevel calls `verify`
/// only when the page reported success; a customer who paid and closed the tab leaves none). Once PayTR's
/// checkout has closed, its status query settles each: paid, or failed when no payment was made; HighLevel
/// hears of it through the events outbox, as from a notification. A Direct API payment (no checkout
/// timeout) is failed only a day after it began; one asked about in vain for a week is left for a person. One PayTR cannot be asked about stays
/// pending and is asked again a minute later; a PayTR answer that is an alarm (another amount) is logged and
/// asked again. Card setups have their own pass ([`super::paytr_cards::expire_setups`]). At most
/// [`UNNOTIFIED_BATCH`] per call; answers how many were settled.
pub async fn settle_unnotified_paytr(state: &AppState, now: i64) -> usize {
    let (created_before, untouched_before) =
        (now - super::paytr::CHECKOUT_CLOSED_AFTER_MS, now - 60_000);
    let created_after = now - UNNOTIFIED_GIVEN_UP_AFTER_MS;
    let stale = match state
        .db
        .run(move |c| {
            payments::stale(
                c,
                payments::Gateway::Paytr,
                payments::Prefixed::Without(super::paytr_cards::CARD_SETUP_PREFIX),
                (created_after, created_before),
                untouched_before,
                UNNOTIFIED_BATCH,
            )
        })
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "PayTR charges: cannot read the unnotified ones");
            return 0;
        }
    };
    let mut settled = 0;
    for charge in stale {
        let (id, location) = (charge.id.clone(), charge.location_id.clone());
        let provider = state
            .db
            .run(move |c| crate::store::providers::get(c, &location))
            .await
            .ok()
            .flatten()
            .filter(|p| p.gateway == crate::store::providers::Gateway::Paytr);
        let asked = match &provider {
            Some(p) => settle_from_paytr(state, p, charge, now)
                .await
                .map_err(|e| e.to_string()),
            None => Err("the location's PayTR provider is gone".to_owned()),
        };
        match (asked, &provider) {
            (Ok(c), Some(p)) if c.status != ChargeStatus::Pending => {
                tracing::info!(charge = %c.id, status = %c.status, "PayTR charge settled by the status query: its notification never came");
                settled += 1;
                // The first period of a subscription bought on the page finishes as on a notification (without
                // the notification's `utoken`, a card PayTR keeps for a new customer cannot be found: that
                // checkout is marked failed and logged for a person, the payment itself stays recorded).
                let paid = c.status == ChargeStatus::Succeeded;
                if let Err(e) =
                    super::paytr_subscriptions::on_notification(state, p, &c, paid).await
                {
                    tracing::warn!(charge = %c.id, error = %e, "PayTR subscription checkout: could not finish it after the status query");
                }
                continue;
            }
            (Ok(_), _) => {}
            (Err(e), _) => {
                tracing::warn!(charge = %id, error = %e, "PayTR charge with no notification: the status query could not settle it; asking again in a minute")
            }
        }
        let _ = state
            .db
            .run(move |c| payments::touch_charge(c, &id, now))
            .await;
    }
    settled
}

/// `list_payment_methods`: the contact's saved cards in HighLevel's shape (a bare array).
pub async fn list_methods(
    state: &AppState,
    p: &ProviderRow,
    live: bool,
    q: &ListPaymentMethods,
) -> Result<Value, ApiError> {
    let contact = q.contact_id.clone();
    let location = p.location_id.clone();
    let c2 = contact.clone();
    // PayTR keeps its cards itself: its list is the truth.
    let list = if p.gateway == payments::Gateway::Paytr {
        super::paytr_cards::list(state, p, live, &contact).await?
    } else {
        state
            .db
            .run(move |c| payments::methods(c, &location, &c2, live))
            .await?
    };
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
    let (success, failed) = (
        c.status == ChargeStatus::Succeeded,
        c.status == ChargeStatus::Failed,
    );
    let message = match c.status {
        ChargeStatus::Succeeded => "Payment succeeded".to_owned(),
        ChargeStatus::Failed => c.failure.clone().unwrap_or_else(|| "Payment failed".into()),
        _ => "Payment pending: the customer must confirm it".into(),
    };
    json!({"success": success, "failed": failed, "chargeId": c.id, "message": message, "chargeSnapshot": charge_snapshot(c)})
}

/// Records the charge once per transactionId and runs it at the gateway; a repeat answers the first charge.
/// `after_decline`: a customer may try another card after a decline (the page); HighLevel's own repeats of
/// a request (`charge_payment`) answer the first outcome.
pub async fn run_charge<F>(
    state: &AppState,
    new: Charge,
    after_decline: bool,
    attempt: F,
) -> Result<Charge, ApiError>
where
    F: std::future::Future<Output = Result<Outcome, GatewayError>>,
{
    let (mut stored, inserted) = state
        .db
        .run(move |c| payments::insert_charge_once(c, &new))
        .await?;
    let mut fresh = inserted;
    if !inserted && after_decline && stored.status == ChargeStatus::Failed {
        let id = stored.id.clone();
        if let Some(reopened) = state
            .db
            .run(move |c| payments::reopen_failed(c, &id, now_ms()))
            .await?
        {
            tracing::info!(charge = %reopened.id, "a new attempt after a decline");
            stored = reopened;
            fresh = true;
        }
    }
    if !fresh {
        tracing::info!(charge = %stored.id, transaction = %stored.transaction_id, "repeated transactionId: answering the first charge");
        return Ok(stored);
    }
    let (status, failure) = match attempt.await {
        Ok(Outcome::Succeeded) => (ChargeStatus::Succeeded, None),
        Ok(Outcome::Declined(why)) => (ChargeStatus::Failed, Some(why)),
        Ok(Outcome::Pending) => return Ok(stored),
        Err(e) => (ChargeStatus::Failed, Some(e.to_string())),
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
        gateway: p.gateway,
        gateway_ref: None,
        status: ChargeStatus::Pending,
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

pub async fn saved_method(
    state: &AppState,
    p: &ProviderRow,
    id: &str,
) -> Result<Option<payments::Method>, ApiError> {
    let (location, id) = (p.location_id.clone(), id.to_owned());
    Ok(state
        .db
        .run(move |c| payments::method(c, &location, &id))
        .await?)
}

/// `charge_payment`: an off-session charge of a saved card, once per transactionId.
pub async fn charge_payment(
    state: &AppState,
    p: &ProviderRow,
    live: bool,
    q: &ChargePayment,
) -> Result<Value, ApiError> {
    let (amount, cur) = money_of(q.amount, &q.currency)?;
    let method = saved_method(state, p, &q.payment_method_id).await?;
    let mut new = new_charge(p, live, &q.transaction_id, amount, cur.code().to_owned());
    new.contact_id = q.contact_id.clone();
    new.payment_method_id = Some(q.payment_method_id.clone());
    new.description = q.charge_description.clone();
    let charged = match method {
        Some(m) if m.live_mode == live => {
            let snapshot = new.clone();
            run_charge(state, new, false, async move {
                gateway_charge_saved(state, p, &m, &snapshot).await
            })
            .await?
        }
        _ => {
            run_charge(state, new, false, async {
                Ok(Outcome::Declined(
                    "the payment method is not saved for this location and mode".into(),
                ))
            })
            .await?
        }
    };
    Ok(charge_answer(&charged))
}

/// Charges a saved card off-session at the charge's gateway. PayTR: the contact's `utoken` and the card's
/// `ctoken`; the charge's `merchant_oid` is recorded first, so PayTR's callback finds it.
pub async fn gateway_charge_saved(
    state: &AppState,
    p: &ProviderRow,
    m: &payments::Method,
    c: &Charge,
) -> Result<Outcome, GatewayError> {
    match c.gateway {
        payments::Gateway::Sandbox => Sandbox.charge_saved(m, c).await,
        payments::Gateway::Paytr => {
            let gateway =
                match super::paytr_cards::gateway_for_payer(state, p, c.live_mode, &m.contact_id)
                    .await
                {
                    Ok(Some(g)) => g,
                    Ok(None) => {
                        return Ok(Outcome::Declined(
                            "PayTR keeps no cards for this contact".into(),
                        ))
                    }
                    Err(e) => return Err(GatewayError::Unavailable(e.to_string())),
                };
            let (id, oid) = (c.id.clone(), super::paytr::merchant_oid(&c.id));
            state
                .db
                .run(move |x| payments::set_gateway_ref(x, &id, &oid))
                .await
                .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
            gateway.charge_saved(m, c).await
        }
    }
}
