//! Nothing grows without bound: a background task deletes, on a schedule, expired OAuth states (used or not),
//! webhook replay records past `WEBHOOK_RETENTION_DAYS`, forwarded webhooks delivered more than
//! `WEBHOOK_DELIVERED_RETENTION_DAYS` ago (dead ones after `WEBHOOK_DEAD_RETENTION_DAYS`), audit rows past
//! `AUDIT_RETENTION_DAYS` and change-feed rows past an hour. Deletes go in batches of `BATCH` rows, so no statement holds locks for long; several
//! replicas purging at once only repeat each other's work.

use crate::db::{Db, DbConn, DbError};
use crate::settings::Settings;
use crate::store::webhook_deliveries::DeliveryState;
use crate::store::{self, now_ms};
use std::time::Duration;

const DAY_MS: i64 = 86_400_000;
/// Rows deleted per statement.
pub const BATCH: i64 = 10_000;
/// The change feed is kept an hour: far longer than any process may go without reading it
/// (`CACHE_MAX_STALE_SECS`; past that it drops its whole cache instead).
const CHANGES_MS: i64 = 3_600_000;

#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub audit_ms: i64,
    pub webhook_ms: i64,
    pub delivered_ms: i64,
    pub dead_ms: i64,
    pub changes_ms: i64,
}

impl Retention {
    pub fn from_settings(s: &Settings) -> Retention {
        Retention {
            audit_ms: s.audit_retention_days as i64 * DAY_MS,
            webhook_ms: s.webhook_retention_days as i64 * DAY_MS,
            delivered_ms: s.webhook_delivered_retention_days as i64 * DAY_MS,
            dead_ms: s.webhook_dead_retention_days as i64 * DAY_MS,
            changes_ms: CHANGES_MS.max(2 * s.cache_max_stale_secs as i64 * 1000),
        }
    }
}

/// Rows deleted by one pass, per kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub states: usize,
    pub webhook_events: usize,
    pub webhook_deliveries: usize,
    pub audit: usize,
    pub changes: usize,
}

/// Runs `delete` (one batch) until a batch deletes fewer than `BATCH` rows.
fn drain(
    conn: &mut DbConn,
    mut delete: impl FnMut(&mut DbConn) -> Result<usize, DbError>,
) -> Result<usize, DbError> {
    let mut total = 0;
    loop {
        let n = delete(conn)?;
        total += n;
        if (n as i64) < BATCH {
            return Ok(total);
        }
    }
}

/// One pass at `now` (epoch ms).
pub fn purge_once(conn: &mut DbConn, now: i64, r: &Retention) -> Result<Purged, DbError> {
    Ok(Purged {
        states: drain(conn, |c| store::states::purge(c, now, BATCH))?,
        webhook_events: drain(conn, |c| {
            store::webhook_events::purge(c, now - r.webhook_ms, BATCH)
        })?,
        webhook_deliveries: drain(conn, |c| {
            store::webhook_deliveries::purge(
                c,
                DeliveryState::Delivered,
                now - r.delivered_ms,
                BATCH,
            )
        })? + drain(conn, |c| {
            store::webhook_deliveries::purge(c, DeliveryState::Dead, now - r.dead_ms, BATCH)
        })?,
        audit: drain(conn, |c| store::audit::purge(c, now - r.audit_ms, BATCH))?,
        changes: drain(conn, |c| {
            store::changes::purge(c, now - r.changes_ms, BATCH)
        })?,
    })
}

/// Purges every `interval` (jittered by up to a tenth), the first pass within a minute of start.
pub async fn run(db: Db, retention: Retention, interval: Duration) {
    let mut wait = interval.min(Duration::from_secs(60));
    loop {
        let jitter = rand::random::<u64>() % (wait.as_millis() as u64 / 10 + 1);
        tokio::time::sleep(wait + Duration::from_millis(jitter)).await;
        wait = interval;
        let now = now_ms();
        match db.run(move |c| purge_once(c, now, &retention)).await {
            Ok(p) if p == Purged::default() => {}
            Ok(p) => tracing::info!(
                states = p.states,
                webhook_events = p.webhook_events,
                webhook_deliveries = p.webhook_deliveries,
                audit = p.audit,
                changes = p.changes,
                "old rows purged"
            ),
            Err(e) => tracing::warn!(error = %e, "purge failed; trying again at the next pass"),
        }
    }
}
