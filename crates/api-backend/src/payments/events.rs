//! Payment events for HighLevel (`payment.captured`, `subscription.*`), sent to the custom-provider webhook
//! with the location's api key. They are written to the database first (the outbox) and delivered by a
//! background loop with jittered exponential backoff until HighLevel accepts them, so a restart loses none.
//! Each event has a stable `eventId`: a receiver can tell a repeat. One subscription's events go out in the
//! order they were written (`store::events::due`).

use super::keys::{self, Mode};
use crate::state::AppState;
use crate::store::events::{self as outbox, Event};
use crate::store::payments::{self, Charge};
use crate::store::subscriptions::{Subscription, SubscriptionStatus as Status};
use crate::store::{now_ms, providers};
use diesel::Connection;
use serde_json::{json, Value};
use std::time::Duration;

/// The charge as HighLevel's `chargeSnapshot` shows it (amount in decimal major units, as HighLevel's own
/// payloads carry amounts; time in epoch seconds).
pub fn charge_snapshot(c: &Charge) -> Value {
    json!({
        "id": c.id,
        "status": c.status,
        "amount": super::money::major_of(c.amount_minor, &c.currency),
        "chargeId": c.id,
        "chargedAt": c.updated_at / 1000,
    })
}

/// A subscription as HighLevel's `subscriptionSnapshot` shows it (times in epoch seconds). `nextCharge` is
/// absent once nothing more will be charged.
pub fn subscription_snapshot(s: &Subscription) -> Value {
    let more = s.total_cycles.is_none_or(|n| s.cycles_paid < n);
    let next = match s.status {
        Status::Scheduled | Status::Trialing | Status::Active if more => {
            s.next_charge_at.map(|t| t / 1000)
        }
        _ => None,
    };
    json!({
        "id": s.id,
        "status": s.status,
        "trialEnd": s.trial_end.map(|t| t / 1000),
        "createdAt": s.created_at / 1000,
        "nextCharge": next,
    })
}

/// A `subscription.*` event row: `subscription.charged` carries the charge (and HighLevel's transactionId
/// when the charge stands for it: the first period's first attempt).
pub fn subscription_event(
    s: &Subscription,
    kind: &str,
    charge: Option<&Charge>,
    now: i64,
) -> Event {
    let mut payload = json!({
        "ghlSubscriptionId": s.ghl_subscription_id.as_deref().unwrap_or(&s.id),
        "subscriptionSnapshot": subscription_snapshot(s),
    });
    if let Some(c) = charge {
        payload["chargeId"] = json!(c.id);
        payload["chargeSnapshot"] = charge_snapshot(c);
        if c.transaction_id == s.transaction_id {
            payload["ghlTransactionId"] = json!(c.transaction_id);
        }
    }
    let mut e = event(&s.location_id, s.live_mode, kind, payload, now);
    // Each event carries the status of its moment: HighLevel must hear them in order.
    e.subject = Some(s.id.clone());
    e
}

/// An event row for a charge that succeeded.
pub fn captured(c: &Charge, now: i64) -> Event {
    event(
        &c.location_id,
        c.live_mode,
        "payment.captured",
        json!({
            "chargeId": c.id,
            "ghlTransactionId": c.transaction_id,
            "chargeSnapshot": charge_snapshot(c),
        }),
        now,
    )
}

pub fn event(location: &str, live: bool, kind: &str, mut payload: Value, now: i64) -> Event {
    let id = format!("evt_{:032x}", rand::random::<u128>());
    payload["event"] = json!(kind);
    payload["eventId"] = json!(id);
    payload["locationId"] = json!(location);
    Event {
        id,
        location_id: location.to_owned(),
        live_mode: live,
        event_type: kind.to_owned(),
        payload: payload.to_string(),
        attempts: 0,
        next_attempt_at: now,
        delivered_at: None,
        last_error: None,
        created_at: now,
        subject: None,
    }
}

/// Pending charges looked at per pass (the oldest first); the rest wait for the next pass.
const PENDING_SCAN_LIMIT: i64 = 200;

/// How long a delivery attempt holds an event before another replica may try it.
const CLAIM_MS: i64 = 30_000;

/// Settles a pending charge and, when it succeeded, queues `payment.captured`, in one database transaction: a
/// failure between the two leaves neither (the charge stays pending and is settled again later), never a
/// captured payment HighLevel does not hear of. An outcome is final, so a charge already settled is left as
/// it is and nothing is queued twice. A subscription's charge is reported by its subscription
/// (`subscription.charged`, written with the subscription's progress); a card-setup verification payment
/// (PayTR) is not reported. Answers the charge as stored
/// afterwards.
pub fn settle_and_report(
    conn: &mut crate::db::DbConn,
    location: &str,
    id: &str,
    status: payments::ChargeStatus,
    failure: Option<&str>,
) -> Result<Option<Charge>, crate::db::DbError> {
    let now = now_ms();
    conn.transaction(|conn| {
        if payments::settle_charge(conn, id, status, failure, now)?
            && status == payments::ChargeStatus::Succeeded
        {
            if let Some(ch) = payments::charge(conn, location, id)? {
                // A card-setup verification payment is no transaction of HighLevel's.
                if ch.subscription_id.is_none() && !super::paytr_cards::is_card_setup(&ch) {
                    outbox::enqueue(conn, &captured(&ch, now))?;
                }
            }
        }
        payments::charge(conn, location, id)
    })
}

/// Delay before attempt `n + 1`: 1 s, 2 s, 4 s … capped at 10 minutes, with up to a fifth of jitter.
fn backoff_ms(attempts: i32) -> i64 {
    let base = 1000i64 << attempts.clamp(0, 10);
    let base = base.min(600_000);
    base + (rand::random::<u64>() % (base as u64 / 5 + 1)) as i64
}

/// One pass, for operators (`api-backend subscriptions run-due` delivers with it) and tests: settle sandbox charges
/// whose wait is over; then, side by side, deliver what is due and run the PayTR passes ([`paytr_passes`]).
/// Answers how many events were delivered.
pub async fn run_once(state: &AppState) -> usize {
    settle_waiting(state).await;
    let ((), delivered) = tokio::join!(paytr_passes(state), deliver_due(state));
    delivered
}

/// Ask PayTR about card setups and charges whose checkout closed with no notification (failed, unless PayTR's
/// status query finds the payment), and refund card setups' verification payments and first periods paid for
/// subscriptions that were not created. Each is a PayTR call with its own timeout, up to 20 or 50 a pass.
async fn paytr_passes(state: &AppState) {
    super::paytr_cards::expire_setups(state, now_ms()).await;
    super::charges::settle_unnotified_paytr(state, now_ms()).await;
    super::paytr_cards::refund_verifications(state, now_ms()).await;
    super::paytr_subscriptions::refund_paid_failures(state, now_ms()).await;
}

/// Rounds of [`deliver_round`] a pass makes at most: a subscription's events written together (`active`,
/// `charged`, `updated`) go one per round, each once the one before it is delivered.
const ROUNDS_PER_PASS: usize = 4;

/// Delivers what is due, round after round while a round delivers something.
async fn deliver_due(state: &AppState) -> usize {
    let mut delivered = 0;
    for _ in 0..ROUNDS_PER_PASS {
        match deliver_round(state).await {
            0 => break,
            n => delivered += n,
        }
    }
    delivered
}

/// Delivers the events that are due (at most 50), each claimed first so replicas deliver it once.
async fn deliver_round(state: &AppState) -> usize {
    let now = now_ms();
    let due = match state.db.run(move |c| outbox::due(c, now, 50)).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "payment events: cannot read the outbox");
            return 0;
        }
    };
    let mut delivered = 0;
    for e in due {
        let id = e.id.clone();
        match state
            .db
            // A fresh clock: a round of slow deliveries must not hand out claims that have already lapsed.
            .run(move |c| outbox::claim(c, &id, now_ms(), CLAIM_MS))
            .await
        {
            Ok(true) => {}
            // Another replica has it.
            Ok(false) => continue,
            Err(err) => {
                tracing::warn!(error = %err, "payment events: cannot claim an event");
                continue;
            }
        }
        match deliver(state, &e).await {
            Ok(()) => {
                let id = e.id.clone();
                if state
                    .db
                    .run(move |c| outbox::delivered(c, &id, now_ms()))
                    .await
                    .is_ok()
                {
                    delivered += 1;
                }
            }
            Err(why) => {
                let next = now_ms() + backoff_ms(e.attempts);
                tracing::warn!(event = %e.id, kind = %e.event_type, attempts = e.attempts + 1, error = %why, "payment event not delivered; will retry");
                let id = e.id.clone();
                let _ = state
                    .db
                    .run(move |c| outbox::failed(c, &id, next, &why))
                    .await;
            }
        }
    }
    delivered
}

async fn deliver(state: &AppState, e: &Event) -> Result<(), String> {
    let location = e.location_id.clone();
    let provider = state
        .db
        .run(move |c| providers::get(c, &location))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the location's payments provider was removed".to_owned())?;
    let mode = if e.live_mode { Mode::Live } else { Mode::Test };
    let mut body: Value = serde_json::from_str(&e.payload).map_err(|e| e.to_string())?;
    if let Some(app) = &provider.marketplace_app_id {
        body["marketplaceAppId"] = json!(app);
    }
    body["apiKey"] = json!(keys::api_key(
        &state.settings.service_jwt_secret,
        &e.location_id,
        mode,
        &provider.api_key_salt
    ));
    state
        .hl
        .report_provider_event(&body)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(event = %e.id, kind = %e.event_type, location = %e.location_id, "payment event delivered");
    Ok(())
}

/// The sandbox's "wait" card: the customer acts after a while; then the charge succeeds and is reported.
async fn settle_waiting(state: &AppState) {
    let before = now_ms() - state.settings.sandbox_wait_ms;
    let Ok(waiting) = state
        .db
        .run(move |c| {
            payments::pending_before(c, payments::Gateway::Sandbox, before, PENDING_SCAN_LIMIT)
        })
        .await
    else {
        return;
    };
    for ch in waiting {
        let settled = state
            .db
            .run(move |c| {
                settle_and_report(
                    c,
                    &ch.location_id,
                    &ch.id,
                    payments::ChargeStatus::Succeeded,
                    None,
                )
            })
            .await;
        if let Err(e) = settled {
            tracing::warn!(error = %e, "could not settle a waiting sandbox charge");
        }
    }
}

/// Every `interval` until the process stops: the deliveries (with the sandbox's settling) and the PayTR passes,
/// each in a loop of its own, so a slow or unreachable PayTR never holds up HighLevel's events.
pub async fn run(state: std::sync::Arc<AppState>, interval: Duration) {
    let deliveries = async {
        loop {
            settle_waiting(&state).await;
            deliver_due(&state).await;
            tokio::time::sleep(interval).await;
        }
    };
    let paytr = async {
        loop {
            paytr_passes(&state).await;
            tokio::time::sleep(interval).await;
        }
    };
    tokio::join!(deliveries, paytr);
}
