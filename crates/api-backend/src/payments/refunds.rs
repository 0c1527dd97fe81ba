//! Refunds, exactly once: a request HighLevel repeats answers the first refund; a refund whose gateway answer
//! was lost stays pending, is never undone, and is settled from the gateway's own records.

use super::gateway::{Gateway, GatewayError, Sandbox};
use super::money;
use super::requests::Refund as RefundRequest;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::now_ms;
use crate::store::payments::{self, Charge};
use crate::store::providers::ProviderRow;
use serde_json::{json, Value};

/// How long an identical refund request (same transaction and amount, when HighLevel sends no refund id of
/// its own) counts as a repeat of the first rather than a new refund. Kept short: a retry comes within
/// seconds, and two genuine refunds of the same amount minutes apart must both happen.
pub const REFUND_REPEAT_WINDOW_MS: i64 = 2 * 60 * 1000;

/// What identifies a refund request: HighLevel's own refund id when the body has one, else the transaction
/// and the amount (HighLevel's documented refund body is `{amount, transactionId}`).
fn refund_key(q: &RefundRequest, amount: i64) -> (String, i64) {
    let txn = &q.transaction_id;
    match &q.refund_id {
        Some(id) => (format!("id:{id}"), 0),
        None => (
            format!("txn:{txn}:{amount}"),
            now_ms() - REFUND_REPEAT_WINDOW_MS,
        ),
    }
}

/// `refund`: part or all of a succeeded charge, once per request (see [`refund_key`]).
pub async fn refund(
    state: &AppState,
    p: &ProviderRow,
    q: &RefundRequest,
) -> Result<Value, ApiError> {
    let txn = q.transaction_id.clone();
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
    let amount = money::to_minor(q.amount, cur)?;
    if charge.status != payments::ChargeStatus::Succeeded {
        return Err(ApiError::RefundRefused(format!(
            "the charge is {}, not succeeded",
            charge.status
        )));
    }
    // The gateway is made ready before any amount is reserved: a provider whose credentials cannot be
    // unsealed refuses the refund outright instead of leaving it pending for ever.
    let paytr = match charge.gateway {
        payments::Gateway::Paytr => Some(super::paytr_for(state, p, charge.live_mode)?),
        _ => None,
    };
    let (key, since) = refund_key(q, amount);
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
            let done = match &paytr {
                Some(gateway) => gateway.refund(&charge, amount, &r.id).await,
                None => Sandbox.refund(&charge, amount, &r.id).await,
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
        payments::RefundClaim::Repeat(r) if r.status == payments::RefundStatus::Pending => {
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
        .filter(|r| r.status != payments::RefundStatus::Failed)
        .map(|r| r.amount_minor)
        .sum();
    let pending = refund.status == payments::RefundStatus::Pending;
    Ok(json!({
        "success": refund.status == payments::RefundStatus::Succeeded,
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
    state: &AppState,
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
    state: &AppState,
    p: &ProviderRow,
    charge: &Charge,
    r: payments::Refund,
) -> Result<payments::Refund, ApiError> {
    if charge.gateway != payments::Gateway::Paytr {
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

/// Refunds each charge in full, once: the refund's id is `<kind>-<charge id>`, so replicas and repeats refund it
/// once. A refund the gateway refuses for now leaves the charge touched, to be tried again by a later pass.
/// `what` names the charges in the log. Answers how many were refunded.
pub async fn refund_each_in_full(
    state: &AppState,
    charges: Vec<Charge>,
    kind: &str,
    what: &str,
) -> usize {
    let mut refunded = 0;
    for charge in charges {
        let location = charge.location_id.clone();
        let Ok(Some(provider)) = state
            .db
            .run(move |c| crate::store::providers::get(c, &location))
            .await
        else {
            continue;
        };
        let request = RefundRequest {
            transaction_id: charge.transaction_id.clone(),
            amount: money::major_of(charge.amount_minor, &charge.currency),
            refund_id: Some(format!("{kind}-{}", charge.id)),
        };
        match refund(state, &provider, &request).await {
            Ok(_) => {
                tracing::info!(charge = %charge.id, "{what}: refunded in full");
                refunded += 1;
            }
            Err(e) => {
                tracing::warn!(charge = %charge.id, error = %e, "{what}: could not be refunded yet; tried again later");
                let id = charge.id.clone();
                let _ = state
                    .db
                    .run(move |c| payments::touch_charge(c, &id, now_ms()))
                    .await;
            }
        }
    }
    refunded
}
