//! Webhook ids already processed, so a replay is refused.

use crate::db::schema::webhook_events::dsl;
use crate::db::{DbConn, DbError};
use crate::with_conn;
use diesel::prelude::*;

/// Records the id; `false` if it was seen before.
pub fn record(
    conn: &mut DbConn,
    webhook_id: &str,
    event_type: &str,
    now: i64,
) -> Result<bool, DbError> {
    let n = with_conn!(conn, c => diesel::insert_into(dsl::webhook_events)
        .values((dsl::webhook_id.eq(webhook_id), dsl::event_type.eq(event_type), dsl::received_at.eq(now)))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(n == 1)
}

/// Whether the id was recorded (its webhook processed) already.
pub fn is_recorded(conn: &mut DbConn, webhook_id: &str) -> Result<bool, DbError> {
    Ok(dsl::webhook_events
        .find(webhook_id)
        .select(dsl::webhook_id)
        .first::<String>(conn)
        .optional()?
        .is_some())
}

pub fn forget(conn: &mut DbConn, webhook_id: &str) -> Result<(), DbError> {
    diesel::delete(dsl::webhook_events.find(webhook_id)).execute(conn)?;
    Ok(())
}

/// Forgets ids received before `before` (epoch ms), at most `batch` of them.
pub fn purge(conn: &mut DbConn, before: i64, batch: i64) -> Result<usize, DbError> {
    let old: Vec<String> = dsl::webhook_events
        .filter(dsl::received_at.lt(before))
        .select(dsl::webhook_id)
        .limit(batch)
        .load(conn)?;
    if old.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(dsl::webhook_events.filter(dsl::webhook_id.eq_any(old))).execute(conn)?)
}
