//! The outbox of payment events for HighLevel: written in the same breath as the charge, delivered by a
//! background sender with retries until HighLevel takes it.

use crate::db::schema::payment_events::dsl;
use crate::db::{DbConn, DbError};
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq, Eq)]
#[diesel(table_name = crate::db::schema::payment_events)]
pub struct Event {
    /// Stable: a receiver tells a repeat by it.
    pub id: String,
    pub location_id: String,
    pub live_mode: bool,
    pub event_type: String,
    pub payload: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub delivered_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
}

pub fn enqueue(conn: &mut DbConn, e: &Event) -> Result<(), DbError> {
    diesel::insert_into(dsl::payment_events)
        .values(e)
        .execute(conn)?;
    Ok(())
}

pub fn due(conn: &mut DbConn, now: i64, limit: i64) -> Result<Vec<Event>, DbError> {
    Ok(dsl::payment_events
        .filter(dsl::delivered_at.is_null())
        .filter(dsl::next_attempt_at.le(now))
        .order(dsl::next_attempt_at.asc())
        .limit(limit)
        .select(Event::as_select())
        .load(conn)?)
}

/// Takes a due event for one delivery attempt: one conditional update, so replicas sharing the outbox never
/// send the same event at the same time. The claim lapses after `lease_ms` if its holder dies.
pub fn claim(conn: &mut DbConn, id: &str, now: i64, lease_ms: i64) -> Result<bool, DbError> {
    Ok(diesel::update(
        dsl::payment_events
            .find(id)
            .filter(dsl::delivered_at.is_null())
            .filter(dsl::next_attempt_at.le(now)),
    )
    .set(dsl::next_attempt_at.eq(now + lease_ms))
    .execute(conn)?
        == 1)
}

pub fn delivered(conn: &mut DbConn, id: &str, now: i64) -> Result<(), DbError> {
    diesel::update(dsl::payment_events.find(id))
        .set((
            dsl::delivered_at.eq(Some(now)),
            dsl::attempts.eq(dsl::attempts + 1),
            dsl::last_error.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn failed(
    conn: &mut DbConn,
    id: &str,
    next_attempt_at: i64,
    error: &str,
) -> Result<(), DbError> {
    diesel::update(dsl::payment_events.find(id))
        .set((
            dsl::attempts.eq(dsl::attempts + 1),
            dsl::next_attempt_at.eq(next_attempt_at),
            dsl::last_error.eq(Some(error)),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn all(conn: &mut DbConn) -> Result<Vec<Event>, DbError> {
    Ok(dsl::payment_events
        .order(dsl::created_at.asc())
        .select(Event::as_select())
        .load(conn)?)
}
