//! `Idempotency-Key` records: the first request with a key runs; a repeat with the same body gets the first
//! answer; a repeat with another body is refused. A request that failed in a way that may be retried leaves
//! its record `retryable`; either way a retry runs knowing when the first attempt began, so it can adopt what
//! that attempt may have made at HighLevel instead of making it twice.
//!
//! **Leases.** The instance running a keyed request is its record's `owner` and holds a lease
//! (`lease_until`) that it renews while the request runs ([`Leases::hold`]: every third of the lease). A
//! replica that crashes or is killed stops renewing, and its keys are taken over by the next retry once the
//! lease has run out (6 s by default) instead of answering 409 until a fixed timeout. A record without a lease
//! (written before leases existed, or claimed by [`claim`]) is taken over after [`STALE_AFTER_MS`] as before.
//!
//! **Retention.** Finished records (answered, or released for a retry) are purged once they are older than
//! `IDEMPOTENCY_RETENTION` ([`purge`], run on a schedule by [`run_purge`]); a running record whose lease is
//! still live is never purged.

use crate::db::schema::idempotency_records::dsl;
use crate::db::{Db, DbConn, DbError};
use diesel::prelude::*;
use service_common::with_conn;
use std::time::Duration;

/// A record with no lease whose request has not finished after this long is taken over.
pub const STALE_AFTER_MS: i64 = 120_000;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq, Eq)]
#[diesel(table_name = crate::db::schema::idempotency_records)]
pub struct Record {
    pub location_id: String,
    pub idem_key: String,
    pub request_hash: String,
    pub state: KeyState,
    pub status: Option<i32>,
    pub response: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The instance running the request (while `running`).
    pub owner: Option<String>,
    /// Until when (ms) the owner's lease holds; past it the key may be taken over.
    pub lease_until: Option<i64>,
}

/// Where a keyed request stands (the `state` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum KeyState {
    /// Its owner is running it.
    Running,
    /// Answered: repeats get the stored answer.
    Done,
    /// Failed in a way that may be retried: the next request with the key runs.
    Retryable,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Running => "running",
            KeyState::Done => "done",
            KeyState::Retryable => "retryable",
        }
    }

    pub fn parse(s: &str) -> Option<KeyState> {
        [KeyState::Running, KeyState::Done, KeyState::Retryable]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

service_common::text_column!(KeyState, "running, done or retryable");

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

/// Who claims a key, and until when the claim holds unless renewed.
#[derive(Debug, Clone, Copy)]
pub struct Holder<'a> {
    pub owner: &'a str,
    pub lease_until: i64,
}

/// Claims a key without a lease (taken over only after [`STALE_AFTER_MS`]).
pub fn claim(
    conn: &mut DbConn,
    location: &str,
    key: &str,
    hash: &str,
    now: i64,
) -> Result<Claim, DbError> {
    claim_as(conn, location, key, hash, None, now)
}

/// Claims a key for `holder`, whose lease must be renewed ([`renew`]) while the request runs.
pub fn claim_held(
    conn: &mut DbConn,
    location: &str,
    key: &str,
    hash: &str,
    holder: Holder<'_>,
    now: i64,
) -> Result<Claim, DbError> {
    claim_as(conn, location, key, hash, Some(holder), now)
}

fn claim_as(
    conn: &mut DbConn,
    location: &str,
    key: &str,
    hash: &str,
    holder: Option<Holder<'_>>,
    now: i64,
) -> Result<Claim, DbError> {
    let owner = holder.map(|h| h.owner.to_owned());
    let lease_until = holder.map(|h| h.lease_until);
    let row = Record {
        location_id: location.to_owned(),
        idem_key: key.to_owned(),
        request_hash: hash.to_owned(),
        state: KeyState::Running,
        status: None,
        response: None,
        created_at: now,
        updated_at: now,
        owner: owner.clone(),
        lease_until,
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
        .first(conn)
        .map_err(|e| DbError::naming(e, || format!("idempotency record ({location}, {key})")))?;
    if existing.request_hash != hash {
        return Ok(Claim::Mismatch);
    }
    if existing.state == KeyState::Done {
        return Ok(Claim::Replay {
            status: existing.status.unwrap_or(200) as u16,
            body: existing.response.unwrap_or_default(),
        });
    }
    // Take over a retryable record, or one whose owner stopped renewing its lease (or, without a lease, one
    // left running for longer than STALE_AFTER_MS), in one conditional update so only one taker wins.
    let taken = diesel::update(
        dsl::idempotency_records.find((location, key)).filter(
            dsl::state
                .eq(KeyState::Retryable)
                .or(dsl::state.eq(KeyState::Running).and(
                    dsl::lease_until.lt(now).or(dsl::lease_until
                        .is_null()
                        .and(dsl::updated_at.lt(now - STALE_AFTER_MS))),
                )),
        ),
    )
    .set((
        dsl::state.eq(KeyState::Running),
        dsl::updated_at.eq(now),
        dsl::owner.eq(owner),
        dsl::lease_until.eq(lease_until),
    ))
    .execute(conn)?;
    Ok(if taken == 1 {
        Claim::Run {
            retry_of: Some(existing.created_at),
        }
    } else {
        Claim::InProgress
    })
}

/// Extends `owner`'s lease on a running key; `false` when the key is no longer its own (finished, or taken
/// over after the lease ran out).
pub fn renew(
    conn: &mut DbConn,
    location: &str,
    key: &str,
    owner: &str,
    lease_until: i64,
) -> Result<bool, DbError> {
    let n = diesel::update(
        dsl::idempotency_records
            .find((location, key))
            .filter(dsl::state.eq(KeyState::Running))
            .filter(dsl::owner.eq(owner)),
    )
    .set(dsl::lease_until.eq(Some(lease_until)))
    .execute(conn)?;
    Ok(n == 1)
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
    complete_as(conn, location, key, None, status, body, now).map(|_| ())
}

/// Keeps the answer for replays if `owner` still holds the key; `false` when another instance took it over
/// (it will answer for the key; this request's answer stands for this caller only).
pub fn complete_held(
    conn: &mut DbConn,
    location: &str,
    key: &str,
    owner: &str,
    status: u16,
    body: &str,
    now: i64,
) -> Result<bool, DbError> {
    complete_as(conn, location, key, Some(owner), status, body, now)
}

fn complete_as(
    conn: &mut DbConn,
    location: &str,
    key: &str,
    owner: Option<&str>,
    status: u16,
    body: &str,
    now: i64,
) -> Result<bool, DbError> {
    let set = (
        dsl::state.eq(KeyState::Done),
        dsl::status.eq(Some(status as i32)),
        dsl::response.eq(Some(body)),
        dsl::updated_at.eq(now),
        dsl::owner.eq(None::<String>),
        dsl::lease_until.eq(None::<i64>),
    );
    let target = dsl::idempotency_records.find((location, key));
    let n = match owner {
        Some(o) => diesel::update(target.filter(dsl::owner.eq(o)))
            .set(set)
            .execute(conn)?,
        None => diesel::update(target).set(set).execute(conn)?,
    };
    Ok(n == 1)
}

/// Marks a key whose request failed in a way worth retrying (HighLevel unavailable, rate limited, the
/// database away, the process stopping): the next request with it runs again, adopting anything this attempt
/// may have made.
pub fn release(conn: &mut DbConn, location: &str, key: &str, now: i64) -> Result<(), DbError> {
    release_as(conn, location, key, None, now).map(|_| ())
}

/// [`release`] if `owner` still holds the key (a key taken over by another instance is left to it).
pub fn release_held(
    conn: &mut DbConn,
    location: &str,
    key: &str,
    owner: &str,
    now: i64,
) -> Result<bool, DbError> {
    release_as(conn, location, key, Some(owner), now)
}

fn release_as(
    conn: &mut DbConn,
    location: &str,
    key: &str,
    owner: Option<&str>,
    now: i64,
) -> Result<bool, DbError> {
    let set = (
        dsl::state.eq(KeyState::Retryable),
        dsl::updated_at.eq(now),
        dsl::owner.eq(None::<String>),
        dsl::lease_until.eq(None::<i64>),
    );
    let target = dsl::idempotency_records.find((location, key));
    let n = match owner {
        Some(o) => diesel::update(target.filter(dsl::owner.eq(o)))
            .set(set)
            .execute(conn)?,
        None => diesel::update(target).set(set).execute(conn)?,
    };
    Ok(n == 1)
}

/// Deletes records last written before `before` that no live request holds: finished ones (answered or
/// released), and running ones whose lease (or, without a lease, whose last write) is older than `before`.
/// Answers how many went.
pub fn purge(conn: &mut DbConn, before: i64) -> Result<usize, DbError> {
    Ok(diesel::delete(
        dsl::idempotency_records
            .filter(dsl::updated_at.lt(before))
            .filter(
                dsl::state
                    .ne(KeyState::Running)
                    .or(dsl::lease_until.lt(before))
                    .or(dsl::lease_until.is_null()),
            ),
    )
    .execute(conn)?)
}

/// This instance's leases on running keys: its owner id (unique per process start) and the lease length.
#[derive(Debug, Clone)]
pub struct Leases {
    pub owner: String,
    pub lease: Duration,
}

impl Leases {
    pub fn new(lease: Duration) -> Leases {
        Leases {
            owner: format!("api-{:016x}", rand::random::<u64>()),
            lease,
        }
    }

    /// The holder for a claim made at `now` (ms).
    pub fn holder(&self, now: i64) -> Holder<'_> {
        Holder {
            owner: &self.owner,
            lease_until: now + self.lease.as_millis() as i64,
        }
    }

    /// Renews the lease on `(location, key)` every third of the lease until the guard is dropped (the request
    /// finished, failed or was cancelled) or the key is no longer ours.
    pub fn hold(&self, db: &Db, location: &str, key: &str) -> LeaseGuard {
        let (db, owner, lease) = (db.clone(), self.owner.clone(), self.lease);
        let (location, key) = (location.to_owned(), key.to_owned());
        let task = tokio::spawn(async move {
            let every = lease / 3;
            loop {
                tokio::time::sleep(every).await;
                let (l, k, o) = (location.clone(), key.clone(), owner.clone());
                let until = crate::store::now_ms() + lease.as_millis() as i64;
                match db.run(move |c| renew(c, &l, &k, &o, until)).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(location, key, "an Idempotency-Key lease is no longer ours (finished, or taken over after it ran out)");
                        return;
                    }
                    // The database is away: keep trying; if it stays away past the lease, another instance
                    // may take the key over and adopt what this request made.
                    Err(e) => {
                        tracing::warn!(location, key, error = %e, "could not renew an Idempotency-Key lease")
                    }
                }
            }
        });
        LeaseGuard(task)
    }
}

/// Stops renewing a lease when dropped.
pub struct LeaseGuard(tokio::task::JoinHandle<()>);

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Purges finished records older than `retention`, now and then every `every`, for as long as it runs.
pub async fn run_purge(db: Db, retention: Duration, every: Duration) {
    loop {
        let before = crate::store::now_ms() - retention.as_millis() as i64;
        match db.run(move |c| purge(c, before)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "purged finished Idempotency-Key records"),
            Err(e) => tracing::warn!(error = %e, "could not purge Idempotency-Key records"),
        }
        tokio::time::sleep(every).await;
    }
}

/// How often the purge runs: a tenth of the retention, between 1 s and 10 min.
pub fn purge_interval(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(600))
}
