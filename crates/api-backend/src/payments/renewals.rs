//! The renewal scheduler: each pass charges the subscriptions whose period has fallen due, from their saved
//! cards. A subscription is claimed in the database before it is charged (one conditional update, as the
//! events outbox claims events), so replicas running passes at once charge each period once; a pass charges
//! at most SUBSCRIPTIONS_CONCURRENCY at a time. Trials end in the first charge, `totalCycles` ends the
//! subscription (`expired`) when its last period is over, and a declined renewal is tried again on
//! SUBSCRIPTION_RETRY_DELAYS before the subscription becomes `unpaid`.

use super::events::subscription_event;
use super::subscriptions::charge_period;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::subscriptions::{self as subs, Subscription, SubscriptionStatus};
use crate::store::{events as outbox, now_ms, providers};
use diesel::Connection;
use futures::StreamExt;
use serde::Serialize;
use std::time::Duration;

/// Subscriptions looked at per pass (the longest due first); the rest wait for the next pass.
const PASS_LIMIT: i64 = 500;

/// How long a claim holds a subscription before another replica may take it (its holder died).
const CLAIM_MS: i64 = 5 * 60_000;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct PassReport {
    /// Periods charged.
    pub charged: usize,
    /// Renewals declined (to be retried, or now `unpaid`).
    pub declined: usize,
    /// Subscriptions that became `unpaid`.
    pub unpaid: usize,
    /// Subscriptions whose last period ended.
    pub expired: usize,
    /// Charges still pending, or subscriptions another replica holds.
    pub waiting: usize,
    pub errors: usize,
}

enum Done {
    Charged,
    Declined { unpaid: bool },
    Expired,
    Waiting,
}

/// One pass at `now` (epoch ms; the real time but for operators and tests stepping a clock).
pub async fn run_due(state: &AppState, now: i64) -> Result<PassReport, ApiError> {
    let due = state.db.run(move |c| subs::due(c, now, PASS_LIMIT)).await?;
    let owner = format!("pass_{:032x}", rand::random::<u128>());
    let concurrency = state.settings.subscriptions_concurrency;
    let results: Vec<Result<Done, ApiError>> = futures::stream::iter(due)
        .map(|s| renew(state, s, &owner, now))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut report = PassReport::default();
    for r in results {
        match r {
            Ok(Done::Charged) => report.charged += 1,
            Ok(Done::Declined { unpaid }) => {
                report.declined += 1;
                report.unpaid += usize::from(unpaid);
            }
            Ok(Done::Expired) => report.expired += 1,
            Ok(Done::Waiting) => report.waiting += 1,
            Err(e) => {
                report.errors += 1;
                tracing::warn!(error = %e, "subscription renewal failed; tried again next pass");
            }
        }
    }
    if report != PassReport::default() {
        tracing::info!(?report, "subscription renewals");
    }
    Ok(report)
}

async fn renew(state: &AppState, s: Subscription, owner: &str, now: i64) -> Result<Done, ApiError> {
    let (id, who) = (s.id.clone(), owner.to_owned());
    if !state
        .db
        .run(move |c| subs::claim(c, &id, &who, now, CLAIM_MS))
        .await?
    {
        return Ok(Done::Waiting);
    }
    let result = renew_claimed(state, owner, now, &s.id).await;
    if result.is_err() {
        let (id, who) = (s.id.clone(), owner.to_owned());
        let _ = state.db.run(move |c| subs::release(c, &id, &who)).await;
    }
    result
}

async fn renew_claimed(
    state: &AppState,
    owner: &str,
    now: i64,
    id: &str,
) -> Result<Done, ApiError> {
    let id = id.to_owned();
    let s = state
        .db
        .run(move |c| subs::get(c, &id))
        .await?
        .ok_or_else(|| ApiError::Internal("a claimed subscription vanished".into()))?;
    if s.total_cycles.is_some_and(|n| s.cycles_paid >= n) {
        return expire(state, s, owner).await;
    }
    let location = s.location_id.clone();
    let Some(provider) = state.db.run(move |c| providers::get(c, &location)).await? else {
        return Err(ApiError::Internal(format!(
            "subscription {} has no payments provider at its location",
            s.id
        )));
    };
    let before = (s.cycles_paid, s.failed_attempts);
    let after = charge_period(state, &provider, &s, Some(owner), now).await?;
    Ok(if after.cycles_paid > before.0 {
        Done::Charged
    } else if after.failed_attempts > before.1 || after.status == SubscriptionStatus::Unpaid {
        Done::Declined {
            unpaid: after.status == SubscriptionStatus::Unpaid,
        }
    } else {
        Done::Waiting
    })
}

/// Every cycle is paid and the last period is over: `expired`, and HighLevel hears `subscription.updated`.
async fn expire(state: &AppState, s: Subscription, owner: &str) -> Result<Done, ApiError> {
    let owner = owner.to_owned();
    state
        .db
        .run(move |c| {
            c.transaction(|c| {
                let wall = now_ms();
                let mut p = s.progress(wall);
                p.status = SubscriptionStatus::Expired;
                p.attempt_at = None;
                if subs::advance(c, &s.id, Some(&owner), s.status, &p)? {
                    if let Some(after) = subs::get(c, &s.id)? {
                        outbox::enqueue(
                            c,
                            &subscription_event(&after, "subscription.updated", None, wall),
                        )?;
                    }
                }
                Ok::<_, crate::db::DbError>(())
            })
        })
        .await?;
    Ok(Done::Expired)
}

/// Runs [`run_due`] every `interval` (never when it is zero) until the process stops.
pub async fn run(state: std::sync::Arc<AppState>, interval: Duration) {
    if interval.is_zero() {
        return;
    }
    loop {
        if let Err(e) = run_due(&state, now_ms()).await {
            tracing::warn!(error = %e, "subscription renewals: the pass failed");
        }
        tokio::time::sleep(interval).await;
    }
}
