//! Subscriptions of the custom provider (`payment_subscriptions`), each scoped to a location, and the claims
//! the renewal scheduler takes on them.

use crate::db::schema::payment_subscriptions::dsl;
use crate::db::{unreadable_row, DbConn, DbError};
use diesel::prelude::*;
use service_common::with_conn;

/// Where a subscription stands (the `status` column), in HighLevel's words.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    /// Starts at a later `startDate`; nothing charged yet.
    Scheduled,
    Trialing,
    Active,
    /// The first period is not paid (being charged, pending, or declined while HighLevel waits).
    Incomplete,
    /// Every cycle paid and the last period over.
    Expired,
    Canceled,
    /// Declined on every retry of a period.
    Unpaid,
}

impl SubscriptionStatus {
    const ALL: [SubscriptionStatus; 7] = [
        SubscriptionStatus::Scheduled,
        SubscriptionStatus::Trialing,
        SubscriptionStatus::Active,
        SubscriptionStatus::Incomplete,
        SubscriptionStatus::Expired,
        SubscriptionStatus::Canceled,
        SubscriptionStatus::Unpaid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Scheduled => "scheduled",
            SubscriptionStatus::Trialing => "trialing",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Incomplete => "incomplete",
            SubscriptionStatus::Expired => "expired",
            SubscriptionStatus::Canceled => "canceled",
            SubscriptionStatus::Unpaid => "unpaid",
        }
    }

    pub fn parse(s: &str) -> Option<SubscriptionStatus> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

service_common::text_column!(
    SubscriptionStatus,
    "one of scheduled, trialing, active, incomplete, expired, canceled, unpaid"
);

/// The states a renewal pass looks at; the others (`expired`, `canceled`, `unpaid`) are final.
pub const LIVE_STATUSES: &[SubscriptionStatus] = &[
    SubscriptionStatus::Scheduled,
    SubscriptionStatus::Trialing,
    SubscriptionStatus::Active,
    SubscriptionStatus::Incomplete,
];

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq, Eq)]
#[diesel(table_name = crate::db::schema::payment_subscriptions)]
pub struct Subscription {
    /// Ours (HighLevel's `subscriptionSnapshot.id`).
    pub id: String,
    pub location_id: String,
    pub live_mode: bool,
    /// HighLevel's transactionId of `create_subscription`: the first period is charged under it.
    pub transaction_id: String,
    pub contact_id: Option<String>,
    pub payment_method_id: String,
    /// Each renewal's amount, minor units.
    pub amount_minor: i64,
    pub currency: String,
    /// `day`, `week`, `month` or `year`.
    pub interval_unit: String,
    pub interval_count: i32,
    pub status: SubscriptionStatus,
    pub created_at: i64,
    pub updated_at: i64,
    /// HighLevel's subscription id (absent only on rows made before it was read).
    pub ghl_subscription_id: Option<String>,
    /// The first period's amount when it differs from the renewals' (HighLevel's `amount`).
    pub first_amount_minor: Option<i64>,
    pub trial_end: Option<i64>,
    pub total_cycles: Option<i32>,
    pub cycles_paid: i32,
    /// When the current period falls due (or, once every cycle is paid, when the last period ends).
    pub next_charge_at: Option<i64>,
    /// When a renewal pass next looks at it; `None` when nothing is scheduled.
    pub attempt_at: Option<i64>,
    /// Declined attempts for the current period.
    pub failed_attempts: i32,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<i64>,
}

/// What a renewal (or the first charge) changes.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = crate::db::schema::payment_subscriptions, treat_none_as_null = true)]
pub struct Progress {
    pub status: SubscriptionStatus,
    pub cycles_paid: i32,
    pub next_charge_at: Option<i64>,
    pub attempt_at: Option<i64>,
    pub failed_attempts: i32,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<i64>,
    pub updated_at: i64,
}

impl Subscription {
    pub fn progress(&self, now: i64) -> Progress {
        Progress {
            status: self.status,
            cycles_paid: self.cycles_paid,
            next_charge_at: self.next_charge_at,
            attempt_at: self.attempt_at,
            failed_attempts: self.failed_attempts,
            claimed_by: None,
            claimed_until: None,
            updated_at: now,
        }
    }
}

/// How errors name a row: `payment subscription <id>`.
const SUBSCRIPTION: &str = "payment subscription";

fn subscription_row(id: &str) -> String {
    format!("{SUBSCRIPTION} {id}")
}

fn readable(status: &str) -> bool {
    SubscriptionStatus::parse(status).is_some()
}

/// Records it once per (location, HighLevel subscription id); a repeat answers the first.
pub fn insert_once(conn: &mut DbConn, s: &Subscription) -> Result<(Subscription, bool), DbError> {
    let n = with_conn!(conn, x => diesel::insert_into(dsl::payment_subscriptions)
        .values(s)
        .on_conflict_do_nothing()
        .execute(x))?;
    let stored = dsl::payment_subscriptions
        .filter(dsl::location_id.eq(&s.location_id))
        .filter(
            dsl::ghl_subscription_id
                .eq(&s.ghl_subscription_id)
                .or(dsl::transaction_id.eq(&s.transaction_id)),
        )
        .select(Subscription::as_select())
        .first(conn)
        .map_err(|e| {
            DbError::naming(e, || {
                let rows = dsl::payment_subscriptions
                    .filter(dsl::location_id.eq(&s.location_id))
                    .filter(
                        dsl::ghl_subscription_id
                            .eq(&s.ghl_subscription_id)
                            .or(dsl::transaction_id.eq(&s.transaction_id)),
                    )
                    .select((dsl::id, dsl::status))
                    .load(conn);
                unreadable_row(SUBSCRIPTION, rows, readable)
            })
        })?;
    Ok((stored, n == 1))
}

/// By HighLevel's id or ours.
pub fn find(conn: &mut DbConn, location: &str, id: &str) -> Result<Option<Subscription>, DbError> {
    dsl::payment_subscriptions
        .filter(dsl::location_id.eq(location))
        .filter(dsl::ghl_subscription_id.eq(id).or(dsl::id.eq(id)))
        .select(Subscription::as_select())
        .first(conn)
        .optional()
        .map_err(|e| {
            DbError::naming(e, || {
                let rows = dsl::payment_subscriptions
                    .filter(dsl::location_id.eq(location))
                    .filter(dsl::ghl_subscription_id.eq(id).or(dsl::id.eq(id)))
                    .select((dsl::id, dsl::status))
                    .load(conn);
                unreadable_row(SUBSCRIPTION, rows, readable)
            })
        })
}

/// The location's subscription started with HighLevel's transaction `transaction`, if any.
pub fn by_transaction(
    conn: &mut DbConn,
    location: &str,
    transaction: &str,
) -> Result<Option<Subscription>, DbError> {
    dsl::payment_subscriptions
        .filter(dsl::location_id.eq(location))
        .filter(dsl::transaction_id.eq(transaction))
        .select(Subscription::as_select())
        .first(conn)
        .optional()
        .map_err(|e| {
            DbError::naming(e, || {
                let rows = dsl::payment_subscriptions
                    .filter(dsl::location_id.eq(location))
                    .filter(dsl::transaction_id.eq(transaction))
                    .select((dsl::id, dsl::status))
                    .load(conn);
                unreadable_row(SUBSCRIPTION, rows, readable)
            })
        })
}

pub fn get(conn: &mut DbConn, id: &str) -> Result<Option<Subscription>, DbError> {
    dsl::payment_subscriptions
        .find(id)
        .select(Subscription::as_select())
        .first(conn)
        .optional()
        .map_err(|e| DbError::naming(e, || subscription_row(id)))
}

/// A location's subscriptions, the newest first (at most `limit`).
pub fn of_location(
    conn: &mut DbConn,
    location: &str,
    limit: i64,
) -> Result<Vec<Subscription>, DbError> {
    dsl::payment_subscriptions
        .filter(dsl::location_id.eq(location))
        .order(dsl::created_at.desc())
        .limit(limit)
        .select(Subscription::as_select())
        .load(conn)
        .map_err(|e| {
            DbError::naming(e, || {
                let rows = dsl::payment_subscriptions
                    .filter(dsl::location_id.eq(location))
                    .select((dsl::id, dsl::status))
                    .load(conn);
                unreadable_row(SUBSCRIPTION, rows, readable)
            })
        })
}

/// Subscriptions a pass at `now` should look at, the longest due first, unclaimed (or whose claim lapsed).
pub fn due(conn: &mut DbConn, now: i64, limit: i64) -> Result<Vec<Subscription>, DbError> {
    dsl::payment_subscriptions
        .filter(dsl::status.eq_any(LIVE_STATUSES))
        .filter(dsl::attempt_at.le(now))
        .filter(dsl::claimed_until.is_null().or(dsl::claimed_until.le(now)))
        .order(dsl::attempt_at.asc())
        .limit(limit)
        .select(Subscription::as_select())
        .load(conn)
        .map_err(|e| DbError::naming(e, || "a due payment subscription".to_owned()))
}

/// Takes a due subscription for one renewal: one conditional update, so of two replicas (or two passes)
/// only one gets it. The claim lapses at `now + lease_ms` if its holder dies.
pub fn claim(
    conn: &mut DbConn,
    id: &str,
    owner: &str,
    now: i64,
    lease_ms: i64,
) -> Result<bool, DbError> {
    Ok(diesel::update(
        dsl::payment_subscriptions
            .find(id)
            .filter(dsl::status.eq_any(LIVE_STATUSES))
            .filter(dsl::attempt_at.le(now))
            .filter(dsl::claimed_until.is_null().or(dsl::claimed_until.le(now))),
    )
    .set((
        dsl::claimed_by.eq(owner),
        dsl::claimed_until.eq(now + lease_ms),
    ))
    .execute(conn)?
        == 1)
}

/// Gives a claim back without changing anything else.
pub fn release(conn: &mut DbConn, id: &str, owner: &str) -> Result<(), DbError> {
    diesel::update(
        dsl::payment_subscriptions
            .find(id)
            .filter(dsl::claimed_by.eq(owner)),
    )
    .set((
        dsl::claimed_by.eq(None::<String>),
        dsl::claimed_until.eq(None::<i64>),
    ))
    .execute(conn)?;
    Ok(())
}

/// Writes a renewal's outcome (releasing the claim), only while `owner` holds it (`None`: unclaimed, as
/// `create_subscription` leaves it) and the status is still `from` (a cancel in between wins). Answers
/// whether it was written.
pub fn advance(
    conn: &mut DbConn,
    id: &str,
    owner: Option<&str>,
    from: SubscriptionStatus,
    p: &Progress,
) -> Result<bool, DbError> {
    let q = dsl::payment_subscriptions
        .find(id)
        .filter(dsl::status.eq(from));
    let n = match owner {
        Some(o) => diesel::update(q.filter(dsl::claimed_by.eq(o)))
            .set(p)
            .execute(conn)?,
        None => diesel::update(q.filter(dsl::claimed_by.is_null()))
            .set(p)
            .execute(conn)?,
    };
    Ok(n == 1)
}

/// Stops it: nothing more is charged. Answers whether it was live before.
pub fn cancel(conn: &mut DbConn, id: &str, now: i64) -> Result<bool, DbError> {
    Ok(diesel::update(
        dsl::payment_subscriptions
            .find(id)
            .filter(dsl::status.eq_any(LIVE_STATUSES)),
    )
    .set((
        dsl::status.eq(SubscriptionStatus::Canceled),
        dsl::attempt_at.eq(None::<i64>),
        dsl::updated_at.eq(now),
    ))
    .execute(conn)?
        == 1)
}
