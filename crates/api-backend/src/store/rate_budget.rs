//! `hl_rate_slots`: HighLevel's per-location and per-company rate budget, shared by every replica on one
//! PostgreSQL database (docs/design.md, pacing across replicas). Each statement is one short round trip; no
//! lock is held across a HighLevel call (a claim is a row with a lease, not a transaction).
//! All times are the database's clock, so replicas whose clocks differ still agree on the window.

use crate::db::{Db, DbConn, DbError};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Integer, Nullable, Text};
use highlevel_client::pacing::{BudgetFuture, Claim, Release, SharedBudget, Take};
use std::time::Duration;

/// Resources idle this long lose their rows (recreated on their next call).
pub const IDLE_ROWS_PURGED_AFTER: Duration = Duration::from_secs(3600);

/// The shared budget over api-backend's PostgreSQL database.
pub struct PgRateBudget {
    db: Db,
}

impl PgRateBudget {
    pub fn new(db: Db) -> PgRateBudget {
        PgRateBudget { db }
    }
}

#[derive(QueryableByName)]
struct Taken {
    #[diesel(sql_type = Nullable<Array<Integer>>)]
    slots: Option<Vec<i32>>,
    /// The database's clock, microseconds since the Unix epoch.
    #[diesel(sql_type = BigInt)]
    now_us: i64,
    #[diesel(sql_type = BigInt)]
    known: i64,
    #[diesel(sql_type = Nullable<Double>)]
    wait_ms: Option<f64>,
}

fn pg(conn: &mut DbConn) -> Result<&mut diesel::PgConnection, DbError> {
    match conn {
        DbConn::Pg(c) => Ok(c),
        DbConn::Sqlite(_) => Err(DbError::Task(
            "the shared rate budget needs PostgreSQL".into(),
        )),
    }
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// Claims up to `want` of the free slots, those free longest first, and says how many slots exist and when
/// the next frees: a released slot at its `busy_until`; a claimed one (its answer not in yet) no sooner than
/// `interval` from now, or when its lease lapses.
pub fn take(
    conn: &mut DbConn,
    resource: &str,
    max: u32,
    want: u32,
    lease: Duration,
    interval: Duration,
    holder: i64,
) -> Result<Take, DbError> {
    let c = pg(conn)?;
    for _ in 0..2 {
        let t: Taken = diesel::sql_query(
            "WITH pick AS (
                 SELECT slot FROM hl_rate_slots
                 WHERE resource = $1 AND slot < $2 AND busy_until <= now()
                 ORDER BY busy_until, slot LIMIT $6 FOR UPDATE SKIP LOCKED
             ), took AS (
                 UPDATE hl_rate_slots s
                 SET busy_until = now() + $3 * interval '1 millisecond', holder = $4, claimed = true
                 FROM pick WHERE s.resource = $1 AND s.slot = pick.slot
                 RETURNING s.slot
             )
             SELECT (SELECT array_agg(slot) FROM took) AS slots,
                    (extract(epoch FROM now()) * 1000000)::bigint AS now_us,
                    (SELECT count(*) FROM hl_rate_slots WHERE resource = $1 AND slot < $2) AS known,
                    (SELECT (extract(epoch FROM min(CASE WHEN claimed
                                THEN least(busy_until, now() + $5 * interval '1 millisecond')
                                ELSE busy_until END) - now()) * 1000)::float8
                       FROM hl_rate_slots WHERE resource = $1 AND slot < $2) AS wait_ms",
        )
        .bind::<Text, _>(resource)
        .bind::<Integer, _>(max as i32)
        .bind::<BigInt, _>(ms(lease))
        .bind::<BigInt, _>(holder)
        .bind::<BigInt, _>(ms(interval))
        .bind::<BigInt, _>(i64::from(want.max(1)))
        .get_result(c)?;
        if let Some(slots) = t.slots.filter(|s| !s.is_empty()) {
            return Ok(Take::Got(
                slots
                    .into_iter()
                    .map(|slot| Claim {
                        slot,
                        holder,
                        at_us: t.now_us,
                    })
                    .collect(),
            ));
        }
        if t.known < i64::from(max) {
            // First call for this resource (or a larger window learnt from the headers): make its slots.
            diesel::sql_query(
                "INSERT INTO hl_rate_slots (resource, slot)
                 SELECT $1, g FROM generate_series(0, $2 - 1) AS g
                 ON CONFLICT DO NOTHING",
            )
            .bind::<Text, _>(resource)
            .bind::<Integer, _>(max as i32)
            .execute(c)?;
            continue;
        }
        let wait = t.wait_ms.unwrap_or(0.0).max(0.0);
        return Ok(Take::Busy {
            retry_in: Duration::from_millis(wait as u64),
        });
    }
    Ok(Take::Busy {
        retry_in: Duration::ZERO,
    })
}

/// Ends claims in one statement; a claim whose lease lapsed and whose slot was claimed again is left alone.
pub fn release(conn: &mut DbConn, releases: &[Release]) -> Result<usize, DbError> {
    let c = pg(conn)?;
    let resources: Vec<&str> = releases.iter().map(|r| r.resource.as_str()).collect();
    let slots: Vec<i32> = releases.iter().map(|r| r.claim.slot).collect();
    let holders: Vec<i64> = releases.iter().map(|r| r.claim.holder).collect();
    let holds: Vec<i64> = releases.iter().map(|r| ms(r.hold)).collect();
    Ok(diesel::sql_query(
        "UPDATE hl_rate_slots s SET busy_until = now() + r.hold_ms * interval '1 millisecond', claimed = false
         FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[]) AS r(resource, slot, holder, hold_ms)
         WHERE s.resource = r.resource AND s.slot = r.slot AND s.holder = r.holder",
    )
    .bind::<Array<Text>, _>(resources)
    .bind::<Array<Integer>, _>(slots)
    .bind::<Array<BigInt>, _>(holders)
    .bind::<Array<BigInt>, _>(holds)
    .execute(c)?)
}

/// HighLevel counted `used` requests of the window when it received a request claimed at `since_us` (the
/// database's clock, microseconds since the Unix epoch; `None`: now). Every request HighLevel counted then took
/// a slot that was still taken at `since_us` (its slot stays taken until an interval after its answer), so a
/// slot whose `busy_until` is later than `since_us` counts as taken even if it has come free since. Takes free
/// slots until at least `used` of the first `max` count as taken, each until `hold` after `since_us`; a count
/// older than `hold` holds nothing. Answers how many slots it took.
pub fn hold_used(
    conn: &mut DbConn,
    resource: &str,
    max: u32,
    used: u32,
    since_us: Option<i64>,
    hold: Duration,
) -> Result<usize, DbError> {
    let c = pg(conn)?;
    Ok(diesel::sql_query(
        "WITH since AS (
             SELECT coalesce(timestamptz 'epoch' + $5 * interval '1 microsecond', now()) AS t
         ), free AS (
             SELECT slot FROM hl_rate_slots
             WHERE resource = $1 AND slot < $2 AND busy_until <= now()
               AND (SELECT t FROM since) + $4 * interval '1 millisecond' > now()
             ORDER BY slot
             LIMIT greatest(0, $3 - (SELECT count(*) FROM hl_rate_slots
                                     WHERE resource = $1 AND slot < $2
                                       AND busy_until > (SELECT t FROM since)))
             FOR UPDATE SKIP LOCKED
         )
         UPDATE hl_rate_slots s
         SET busy_until = (SELECT t FROM since) + $4 * interval '1 millisecond', holder = 0, claimed = false
         FROM free WHERE s.resource = $1 AND s.slot = free.slot",
    )
    .bind::<Text, _>(resource)
    .bind::<Integer, _>(max as i32)
    .bind::<Integer, _>(used as i32)
    .bind::<BigInt, _>(ms(hold))
    .bind::<Nullable<BigInt>, _>(since_us)
    .execute(c)?)
}

/// Forgets the rows of resources nobody has called for [`IDLE_ROWS_PURGED_AFTER`].
pub fn purge_idle(conn: &mut DbConn) -> Result<usize, DbError> {
    let c = pg(conn)?;
    Ok(diesel::sql_query(
        "DELETE FROM hl_rate_slots WHERE resource IN (
             SELECT resource FROM hl_rate_slots GROUP BY resource
             HAVING max(busy_until) < now() - $1 * interval '1 millisecond')",
    )
    .bind::<BigInt, _>(ms(IDLE_ROWS_PURGED_AFTER))
    .execute(c)?)
}

/// Purges idle rows every ten minutes, for as long as the process runs.
pub async fn run_purge(db: Db) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        every.tick().await;
        match db.run(purge_idle).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "purged idle rate-budget rows"),
            Err(e) => tracing::warn!(error = %e, "could not purge idle rate-budget rows"),
        }
    }
}

impl SharedBudget for PgRateBudget {
    fn take(
        &self,
        resource: &str,
        max: u32,
        want: u32,
        lease: Duration,
        interval: Duration,
    ) -> BudgetFuture<Take> {
        let db = self.db.clone();
        let resource = resource.to_owned();
        let holder = rand::random::<i64>();
        Box::pin(async move {
            db.run(move |c| take(c, &resource, max, want, lease, interval, holder))
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn release(&self, releases: Vec<Release>) -> BudgetFuture<()> {
        let db = self.db.clone();
        Box::pin(async move {
            db.run(move |c| release(c, &releases))
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }

    fn hold_used(
        &self,
        resource: &str,
        max: u32,
        used: u32,
        since: Option<i64>,
        hold: Duration,
    ) -> BudgetFuture<usize> {
        let db = self.db.clone();
        let resource = resource.to_owned();
        Box::pin(async move {
            db.run(move |c| hold_used(c, &resource, max, used, since, hold))
                .await
                .map_err(|e| e.to_string())
        })
    }
}
