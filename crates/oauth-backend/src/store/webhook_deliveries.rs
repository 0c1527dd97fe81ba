//! The outbox of webhooks forwarded to the app: one row per event and endpoint, claimed by one sender at a
//! time, `delivered` or, once its retry window is spent, `dead` until replayed.

use crate::db::schema::webhook_deliveries::dsl;
use crate::db::{unreadable_row, DbConn, DbError, MultiBackend};
use diesel::prelude::*;
use serde::Serialize;

/// Where a delivery stands (the `state` column).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Queued: sent when `next_attempt_at` comes.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// The retry window ran out; kept until replayed or purged.
    Dead,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 3] = [
        DeliveryState::Pending,
        DeliveryState::Delivered,
        DeliveryState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryState> {
        DeliveryState::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

service_common::text_column!(DeliveryState, "pending, delivered or dead");

fn delivery_row(id: &str) -> String {
    format!("webhook delivery {id}")
}

/// The first delivery of `rows` (id and state, read again as text) whose state this version cannot read.
fn unreadable(rows: Result<Vec<(String, String)>, diesel::result::Error>) -> String {
    unreadable_row("webhook delivery", rows, |s| {
        DeliveryState::parse(s).is_some()
    })
}

#[derive(Clone, Queryable, Selectable, Insertable, PartialEq, Eq, Serialize)]
#[diesel(table_name = crate::db::schema::webhook_deliveries)]
pub struct Delivery {
    pub id: String,
    /// The Standard Webhooks `webhook-id`, stable across attempts and replays: a receiver tells a repeat by it.
    pub event_id: String,
    pub webhook_id: String,
    pub event_type: String,
    /// Listed without user info or query, which may carry the app's credentials.
    #[serde(serialize_with = "shown")]
    pub url: String,
    pub installation_id: Option<String>,
    pub location_id: Option<String>,
    pub company_id: Option<String>,
    /// The exact bytes sent; not listed (it can be large and is the app's business).
    #[serde(skip_serializing)]
    pub payload: String,
    pub state: DeliveryState,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub retry_from: i64,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub occurred_at: i64,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub updated_at: i64,
}

fn shown<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::settings::shown_url(url))
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("id", &self.id)
            .field("event_type", &self.event_type)
            .field("url", &crate::settings::shown_url(&self.url))
            .field("state", &self.state)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// One row per endpoint: a handful, inserted one by one (a batch insert differs by backend).
pub fn enqueue(conn: &mut DbConn, rows: &[Delivery]) -> Result<(), DbError> {
    for row in rows {
        diesel::insert_into(dsl::webhook_deliveries)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Pending deliveries whose time has come, the most overdue first.
pub fn due(conn: &mut DbConn, now: i64, limit: i64) -> Result<Vec<Delivery>, DbError> {
    let due = || {
        dsl::webhook_deliveries
            .filter(dsl::state.eq(DeliveryState::Pending))
            .filter(dsl::next_attempt_at.le(now))
            .order(dsl::next_attempt_at.asc())
            .limit(limit)
    };
    due().select(Delivery::as_select()).load(conn).map_err(|e| {
        DbError::naming(e, || {
            unreadable(due().select((dsl::id, dsl::state)).load(conn))
        })
    })
}

/// Takes a due delivery for one attempt: one conditional update, so of the replicas sharing the outbox exactly
/// one sends it. The claim lapses after `lease_ms` (longer than an attempt can take) if its holder dies.
pub fn claim(conn: &mut DbConn, id: &str, now: i64, lease_ms: i64) -> Result<bool, DbError> {
    Ok(diesel::update(
        dsl::webhook_deliveries
            .find(id)
            .filter(dsl::state.eq(DeliveryState::Pending))
            .filter(dsl::next_attempt_at.le(now)),
    )
    .set(dsl::next_attempt_at.eq(now + lease_ms))
    .execute(conn)?
        == 1)
}

pub fn delivered(conn: &mut DbConn, id: &str, status: i32, now: i64) -> Result<(), DbError> {
    diesel::update(
        dsl::webhook_deliveries
            .find(id)
            .filter(dsl::state.eq(DeliveryState::Pending)),
    )
    .set((
        dsl::state.eq(DeliveryState::Delivered),
        dsl::attempts.eq(dsl::attempts + 1),
        dsl::last_status.eq(Some(status)),
        dsl::last_error.eq(None::<String>),
        dsl::delivered_at.eq(Some(now)),
        dsl::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(())
}

/// A failed attempt: tried again at `retry_at`, or dead when it is `None`.
pub fn failed(
    conn: &mut DbConn,
    id: &str,
    status: Option<i32>,
    error: &str,
    retry_at: Option<i64>,
    now: i64,
) -> Result<(), DbError> {
    diesel::update(
        dsl::webhook_deliveries
            .find(id)
            .filter(dsl::state.eq(DeliveryState::Pending)),
    )
    .set((
        dsl::state.eq(if retry_at.is_some() {
            DeliveryState::Pending
        } else {
            DeliveryState::Dead
        }),
        dsl::attempts.eq(dsl::attempts + 1),
        dsl::next_attempt_at.eq(retry_at.unwrap_or(now)),
        dsl::last_status.eq(status),
        dsl::last_error.eq(Some(error)),
        dsl::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConn, id: &str) -> Result<Option<Delivery>, DbError> {
    dsl::webhook_deliveries
        .find(id)
        .select(Delivery::as_select())
        .first(conn)
        .optional()
        .map_err(|e| DbError::naming(e, || delivery_row(id)))
}

/// Deliveries, newest first, optionally in one state.
pub fn list(
    conn: &mut DbConn,
    state: Option<DeliveryState>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Delivery>, DbError> {
    let page = || {
        let q = dsl::webhook_deliveries
            .order((dsl::created_at.desc(), dsl::id.desc()))
            .limit(limit)
            .offset(offset)
            .into_boxed::<MultiBackend>();
        match state {
            Some(s) => q.filter(dsl::state.eq(s)),
            None => q,
        }
    };
    page()
        .select(Delivery::as_select())
        .load(conn)
        .map_err(|e| {
            DbError::naming(e, || {
                unreadable(page().select((dsl::id, dsl::state)).load(conn))
            })
        })
}

/// Queues a dead or delivered delivery again, with a fresh retry window; `false` if there is none such. A
/// pending one is left alone: it is queued already, and an attempt may be under way. (A state this version
/// cannot read is left as it is too: `get` then names the row.)
pub fn replay(conn: &mut DbConn, id: &str, now: i64) -> Result<bool, DbError> {
    Ok(diesel::update(
        dsl::webhook_deliveries
            .find(id)
            .filter(dsl::state.eq_any([DeliveryState::Delivered, DeliveryState::Dead])),
    )
    .set((
        dsl::state.eq(DeliveryState::Pending),
        dsl::attempts.eq(0),
        dsl::next_attempt_at.eq(now),
        dsl::retry_from.eq(now),
        dsl::delivered_at.eq(None::<i64>),
        dsl::updated_at.eq(now),
    ))
    .execute(conn)?
        == 1)
}

/// Deletes rows in `state` last changed before `before` (epoch ms), at most `batch` of them.
pub fn purge(
    conn: &mut DbConn,
    state: DeliveryState,
    before: i64,
    batch: i64,
) -> Result<usize, DbError> {
    let old: Vec<String> = dsl::webhook_deliveries
        .filter(dsl::state.eq(state))
        .filter(dsl::updated_at.lt(before))
        .select(dsl::id)
        .limit(batch)
        .load(conn)?;
    if old.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(dsl::webhook_deliveries.filter(dsl::id.eq_any(old))).execute(conn)?)
}
