//! `Idempotency-Key` records: the first request with a key runs; a repeat with the same body gets the first
//! answer; a repeat with another body is refused. A request that failed in a way that may be retried leaves
//! its record `retryable`, and a record left `running` by a process that died is taken over after
//! [`STALE_AFTER_MS`]: either way the retry runs knowing when the first attempt began, so it can adopt what
//! that attempt may have made at HighLevel instead of making it twice.

use crate::db::schema::idempotency_records::dsl;
use crate::db::{DbConn, DbError};
use diesel::prelude::*;
use service_common::with_conn;

pub const STALE_AFTER_MS: i64 = 120_000;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq, Eq)]
#[diesel(table_name = crate::db::schema::idempotency_records)]
pub struct Record {
    pub location_id: String,
    pub idem_key: String,
    pub request_hash: String,
    pub state: String,
    pub status: Option<i32>,
    pub response: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What to do with a request that carries a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// Run it: this request owns the key now. `retry_of`: when an earlier attempt with this key began (ms), if
    /// there was one that may have left something behind.
    Run { retry_of: Option<i64> },
    /// Answer what the first request answered.
    Replay { status: u16, body: String },
    /// The same key with another body.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

pub fn claim(
    conn: &mut DbConn,
    location: &str,
    key: &str,
    hash: &str,
    now: i64,
) -> Result<Claim, DbError> {
    let row = Record {
        location_id: location.to_owned(),
        idem_key: key.to_owned(),
        request_hash: hash.to_owned(),
        state: "running".into(),
        status: None,
        response: None,
        created_at: now,
        updated_at: now,
    };
    let inserted = with_conn!(conn, c => diesel::insert_into(dsl::idempotency_records)
        .values(&row)
        .on_conflict((dsl::location_id, dsl::idem_key))
        .do_nothing()
        .execute(c))?;
    if inserted == 1 {
        return Ok(Claim::Run { retry_of: None });
    }
    let existing: Record = dsl::idempotency_records
        .find((location, key))
        .select(Record::as_select())
        .first(conn)?;
    if existing.request_hash != hash {
        return Ok(Claim::Mismatch);
    }
    if existing.state == "done" {
        return Ok(Claim::Replay {
            status: existing.status.unwrap_or(200) as u16,
            body: existing.response.unwrap_or_default(),
        });
    }
    // Take over a retryable record, or one whose owner died, in one conditional update so only one taker wins.
    let taken = diesel::update(
        dsl::idempotency_records.find((location, key)).filter(
            dsl::state.eq("retryable").or(dsl::state
                .eq("running")
                .and(dsl::updated_at.lt(now - STALE_AFTER_MS))),
        ),
    )
    .set((dsl::state.eq("running"), dsl::updated_at.eq(now)))
    .execute(conn)?;
    Ok(if taken == 1 {
        Claim::Run {
            retry_of: Some(existing.created_at),
        }
    } else {
        Claim::InProgress
    })
}

/// Keeps the answer for replays.
pub fn complete(
    conn: &mut DbConn,
    location: &str,
    key: &str,
    status: u16,
    body: &str,
    now: i64,
) -> Result<(), DbError> {
    diesel::update(dsl::idempotency_records.find((location, key)))
        .set((
            dsl::state.eq("done"),
            dsl::status.eq(Some(status as i32)),
            dsl::response.eq(Some(body)),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Marks a key whose request failed in a way worth retrying (HighLevel unavailable, rate limited, the
/// database away): the next request with it runs again, adopting anything this attempt may have made.
pub fn release(conn: &mut DbConn, location: &str, key: &str, now: i64) -> Result<(), DbError> {
    diesel::update(dsl::idempotency_records.find((location, key)))
        .set((dsl::state.eq("retryable"), dsl::updated_at.eq(now)))
        .execute(conn)?;
    Ok(())
}
