//! Subscriptions on saved cards: `create_subscription`, `verify` and `cancel_subscription` as HighLevel calls
//! them, and the charge of one period (the first, or a renewal by the scheduler in `renewals`), written with
//! the subscription's progress and HighLevel's events in one database transaction.

use super::charges::{charge_answer, gateway_charge_saved, new_charge, saved_method};
use super::events::{subscription_event, subscription_snapshot};
use super::gateway::Outcome;
use super::requests::{money_of, CancelSubscription, CreateSubscription};
use crate::db::{DbConn, DbError};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::events as outbox;
use crate::store::now_ms;
use crate::store::payments::{self, Charge};
use crate::store::providers::ProviderRow;
use crate::store::subscriptions::{self as subs, Subscription, SubscriptionStatus as Status};
use chrono::{DateTime, Months};
use diesel::Connection;
use serde_json::{json, Value};

const DAY_MS: i64 = 86_400_000;

/// `at` moved on by `count` intervals (calendar months and years: the 31st becomes the month's last day).
pub fn add_interval(at: i64, unit: &str, count: i32) -> i64 {
    let count = count.max(1);
    let months = |m: u32| {
        DateTime::from_timestamp_millis(at)
            .and_then(|d| d.checked_add_months(Months::new(m)))
            .map_or(at + i64::from(m) * 30 * DAY_MS, |d| d.timestamp_millis())
    };
    match unit {
        "day" => at + i64::from(count) * DAY_MS,
        "week" => at + i64::from(count) * 7 * DAY_MS,
        "year" => months(count as u32 * 12),
        _ => months(count as u32),
    }
}

/// The transactionId a period's attempt is charged under: HighLevel's own for the first period's first try
/// (what `create_subscription` stands for), one of ours for every other, so each attempt is charged at most
/// once (charges are unique per location and transactionId).
pub fn transaction_for(s: &Subscription) -> String {
    let period = s.cycles_paid + 1;
    if period == 1 && s.failed_attempts == 0 {
        s.transaction_id.clone()
    } else {
        format!("{}-p{period}-a{}", s.id, s.failed_attempts)
    }
}

/// `create_subscription`: a subscription on a saved card. With a trial or a later `startDate` nothing is
/// charged now (the scheduler charges the first period when it falls due); otherwise the first period
/// (`amount`) is charged at once under HighLevel's transactionId.
pub async fn create_subscription(
    state: &AppState,
    p: &ProviderRow,
    live: bool,
    q: &CreateSubscription,
) -> Result<Value, ApiError> {
    create_subscription_as(state, p, live, q, None).await
}

/// [`create_subscription`] under our id `id` when given: a PayTR subscription checkout names it in its
/// first period's charge (already paid when the subscription is created, so `charge_period` finds it
/// settled and charges nothing again).
pub async fn create_subscription_as(
    state: &AppState,
    p: &ProviderRow,
    live: bool,
    q: &CreateSubscription,
    id: Option<String>,
) -> Result<Value, ApiError> {
    let terms = q.terms()?;
    let deferred = terms.trial_days > 0 || terms.start_at.is_some_and(|s| s > now_ms());
    // Nothing is due today when the first charge is deferred: HighLevel may then send `amount` 0, and the
    // first period costs what the others do.
    let (recurring, cur) = money_of(q.recurring_amount.unwrap_or(q.amount), &q.currency)?;
    let first = if deferred && q.amount == 0.0 {
        recurring
    } else {
        money_of(q.amount, &q.currency)?.0
    };
    let method = saved_method(state, p, &q.payment_method_id)
        .await?
        .filter(|m| m.live_mode == live)
        .ok_or_else(|| {
            ApiError::Validation(
                "`paymentMethodId` is not a saved card of this location and mode".into(),
            )
        })?;
    if q.contact_id
        .as_ref()
        .is_some_and(|c| *c != method.contact_id)
    {
        return Err(ApiError::Validation(
            "`paymentMethodId` is saved for another contact".into(),
        ));
    }
    let now = now_ms();
    let later_start = terms.start_at.filter(|s| *s > now);
    let begin = later_start.unwrap_or(now);
    let (status, trial_end, due) = if terms.trial_days > 0 {
        let end = begin + i64::from(terms.trial_days) * DAY_MS;
        (Status::Trialing, Some(end), Some(end))
    } else if let Some(s) = later_start {
        (Status::Scheduled, None, Some(s))
    } else {
        // Charged below; it becomes `active` when the charge succeeds.
        (Status::Incomplete, None, None)
    };
    let sub = Subscription {
        id: id.unwrap_or_else(new_id),
        location_id: p.location_id.clone(),
        live_mode: live,
        transaction_id: q.transaction_id.clone(),
        contact_id: Some(method.contact_id.clone()),
        payment_method_id: method.id.clone(),
        amount_minor: recurring,
        currency: cur.code().to_owned(),
        interval_unit: terms.interval.clone(),
        interval_count: terms.interval_count,
        status,
        created_at: now,
        updated_at: now,
        ghl_subscription_id: Some(q.subscription_id.clone()),
        first_amount_minor: (first != recurring).then_some(first),
        trial_end,
        total_cycles: terms.total_cycles,
        cycles_paid: 0,
        next_charge_at: due,
        attempt_at: due,
        failed_attempts: 0,
        claimed_by: None,
        claimed_until: None,
    };
    let (mut stored, inserted) = state
        .db
        .run(move |c| {
            c.transaction(|c| {
                let (stored, inserted) = subs::insert_once(c, &sub)?;
                if inserted && stored.status == Status::Trialing {
                    outbox::enqueue(
                        c,
                        &subscription_event(&stored, "subscription.trialing", None, now),
                    )?;
                }
                Ok::<_, DbError>((stored, inserted))
            })
        })
        .await?;
    if !inserted {
        tracing::info!(subscription = %stored.id, "repeated create_subscription: answering the first");
    }
    if stored.status == Status::Incomplete && stored.attempt_at.is_none() && stored.cycles_paid == 0
    {
        stored = charge_period(state, p, &stored, None, now).await?;
    }
    let (location, txn) = (p.location_id.clone(), stored.transaction_id.clone());
    let charge = state
        .db
        .run(move |c| payments::charge_by_transaction(c, &location, &txn))
        .await?;
    let failed = stored.status == Status::Incomplete
        && charge
            .as_ref()
            .is_some_and(|c| c.status == payments::ChargeStatus::Failed);
    let message = match (&charge, stored.status) {
        (Some(c), _) => charge_answer(c)["message"].clone(),
        (None, Status::Trialing) => {
            json!("Subscription created; the first charge follows the trial")
        }
        _ => json!("Subscription created; the first charge is scheduled"),
    };
    let mut answer = json!({
        "success": !failed && stored.status != Status::Incomplete,
        "failed": failed,
        "message": message,
        "subscription": {
            "subscriptionId": stored.id,
            "subscriptionSnapshot": subscription_snapshot(&stored),
        },
    });
    if let Some(c) = &charge {
        answer["transaction"] =
            json!({"chargeId": c.id, "chargeSnapshot": super::events::charge_snapshot(c)});
    }
    Ok(answer)
}

/// A new subscription id of ours.
pub fn new_id() -> String {
    format!("sub_{:032x}", rand::random::<u128>())
}

/// Charges the subscription's current period (its next attempt) from its saved card and writes the outcome:
/// the charge, the subscription's progress and HighLevel's events in one database transaction. `owner` is the
/// scheduler's claim (`None` for the first charge, made by `create_subscription` on an unclaimed row);
/// `now` is the scheduler's clock (retries are scheduled from the period's due time). A charge still pending
/// (the customer's bank must act) leaves the period due: a later pass finds the same charge, never a second.
pub async fn charge_period(
    state: &AppState,
    p: &ProviderRow,
    sub: &Subscription,
    owner: Option<&str>,
    now: i64,
) -> Result<Subscription, ApiError> {
    let period = sub.cycles_paid + 1;
    let amount = match sub.first_amount_minor {
        Some(first) if period == 1 => first,
        _ => sub.amount_minor,
    };
    let mut new = new_charge(
        p,
        sub.live_mode,
        &transaction_for(sub),
        amount,
        sub.currency.clone(),
    );
    new.subscription_id = Some(sub.id.clone());
    new.contact_id = sub.contact_id.clone();
    new.payment_method_id = Some(sub.payment_method_id.clone());
    new.description = Some(format!("Subscription {} period {period}", sub.id));
    let (stored, inserted) = state
        .db
        .run(move |c| payments::insert_charge_once(c, &new))
        .await?;
    let outcome = if inserted {
        let method = saved_method(state, p, &sub.payment_method_id).await?;
        let tried = match method {
            Some(m) if m.live_mode == sub.live_mode => {
                gateway_charge_saved(state, p, &m, &stored).await
            }
            _ => Ok(Outcome::Declined(
                "the saved card is no longer on file".into(),
            )),
        };
        match tried {
            Ok(Outcome::Succeeded) => Some((payments::ChargeStatus::Succeeded, None)),
            Ok(Outcome::Declined(why)) => Some((payments::ChargeStatus::Failed, Some(why))),
            Ok(Outcome::Pending) => None,
            Err(e) => Some((payments::ChargeStatus::Failed, Some(e.to_string()))),
        }
    } else if stored.status == payments::ChargeStatus::Pending {
        None
    } else {
        Some((stored.status, stored.failure.clone()))
    };
    let delays = state.settings.subscription_retry_delays_ms();
    let (sub, owner, charge_id) = (sub.clone(), owner.map(str::to_owned), stored.id.clone());
    let Some((status, failure)) = outcome else {
        // Pending: look again later (the first charge too, once it settles).
        let mut progress = sub.progress(now_ms());
        progress.attempt_at = Some(sub.attempt_at.unwrap_or(now));
        let id = sub.id.clone();
        state
            .db
            .run(move |c| subs::advance(c, &id, owner.as_deref(), sub.status, &progress))
            .await?;
        tracing::info!(charge = %charge_id, "subscription charge pending; looked at again later");
        let id = stored.subscription_id.clone().unwrap_or_default();
        return state
            .db
            .run(move |c| subs::get(c, &id))
            .await?
            .ok_or_else(|| ApiError::Internal("a subscription vanished".into()));
    };
    // The card was charged (or declined): that must be recorded even across a short database outage.
    Ok(state
        .db
        .run_until_reachable(std::time::Duration::from_secs(30), move |c| {
            record_outcome(
                c,
                &sub,
                &charge_id,
                status,
                failure.as_deref(),
                owner.as_deref(),
                now,
                &delays,
            )
        })
        .await?)
}

/// One transaction: the charge settled, the subscription moved on (or its retry scheduled, or `unpaid`), and
/// HighLevel's events queued, in the order HighLevel should read them.
#[allow(clippy::too_many_arguments)]
fn record_outcome(
    c: &mut DbConn,
    sub: &Subscription,
    charge_id: &str,
    status: payments::ChargeStatus,
    failure: Option<&str>,
    owner: Option<&str>,
    now: i64,
    delays: &[i64],
) -> Result<Subscription, DbError> {
    c.transaction(|c| {
        let wall = now_ms();
        payments::settle_charge(c, charge_id, status, failure, wall)?;
        let charge: Option<Charge> = payments::charge(c, &sub.location_id, charge_id)?;
        let paid = charge.as_ref().is_some_and(|ch| ch.status == payments::ChargeStatus::Succeeded);
        let due = sub.next_charge_at.unwrap_or(now);
        let mut p = sub.progress(wall);
        let mut kinds: Vec<&str> = Vec::new();
        if paid {
            p.cycles_paid += 1;
            p.status = Status::Active;
            let next = add_interval(due, &sub.interval_unit, sub.interval_count);
            p.next_charge_at = Some(next);
            p.attempt_at = Some(next);
            p.failed_attempts = 0;
            if sub.status != Status::Active {
                kinds.push("subscription.active");
            }
            kinds.push("subscription.charged");
        } else if sub.status == Status::Incomplete {
            // The first charge, declined while HighLevel waits for the answer: it tells the customer.
            p.attempt_at = None;
        } else {
            p.failed_attempts += 1;
            match delays.get(sub.failed_attempts as usize) {
                Some(d) => p.attempt_at = Some(due + d),
                None => {
                    p.status = Status::Unpaid;
                    p.attempt_at = None;
                    kinds.push("subscription.updated");
                }
            }
        }
        if !subs::advance(c, &sub.id, owner, sub.status, &p)? {
            tracing::warn!(subscription = %sub.id, "the subscription changed while its period was charged");
            kinds.retain(|k| *k == "subscription.charged");
        }
        let after = subs::get(c, &sub.id)?.unwrap_or_else(|| sub.clone());
        // Same millisecond, distinct times: the outbox sends in this order.
        for (i, kind) in kinds.iter().enumerate() {
            let with = (*kind == "subscription.charged").then_some(charge.as_ref()).flatten();
            outbox::enqueue(c, &subscription_event(&after, kind, with, wall + i as i64))?;
        }
        Ok(after)
    })
}

/// `verify` with a `subscriptionId` (HighLevel's or ours): set up and not stopped is `success`; declined,
/// unpaid or canceled is `failed`; a first charge still pending is `{success:false}`.
pub async fn verify(
    state: &AppState,
    p: &ProviderRow,
    live: bool,
    id: &str,
) -> Result<Value, ApiError> {
    let (location, id) = (p.location_id.clone(), id.to_owned());
    let found = state.db.run(move |c| subs::find(c, &location, &id)).await?;
    Ok(match found {
        None => json!({"success": false}),
        Some(s) if s.live_mode != live => json!({"failed": true}),
        Some(s) => match s.status {
            Status::Active | Status::Trialing | Status::Scheduled | Status::Expired => {
                json!({"success": true})
            }
            Status::Incomplete if s.attempt_at.is_some() => json!({"success": false}),
            _ => json!({"failed": true}),
        },
    })
}

/// `cancel_subscription`: stops it (nothing more is charged); HighLevel hears `subscription.updated` in the
/// same transaction.
pub async fn cancel_subscription(
    state: &AppState,
    p: &ProviderRow,
    q: &CancelSubscription,
) -> Result<Value, ApiError> {
    let (location, id) = (p.location_id.clone(), q.subscription_id.clone());
    let missing = format!("no subscription `{id}` for this location");
    let after = state
        .db
        .run(move |c| {
            c.transaction(|c| {
                let Some(s) = subs::find(c, &location, &id)? else {
                    return Ok(None);
                };
                let now = now_ms();
                if subs::cancel(c, &s.id, now)? {
                    let after = subs::get(c, &s.id)?.unwrap_or(s);
                    outbox::enqueue(
                        c,
                        &subscription_event(&after, "subscription.updated", None, now),
                    )?;
                    return Ok(Some(after));
                }
                Ok::<_, DbError>(Some(s))
            })
        })
        .await?
        .ok_or(ApiError::NotFound(missing))?;
    Ok(json!({
        "success": after.status == Status::Canceled,
        "status": after.status,
        "subscriptionSnapshot": subscription_snapshot(&after),
    }))
}
