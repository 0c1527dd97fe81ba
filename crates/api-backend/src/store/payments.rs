//! Charges, refunds and saved cards of the custom provider, each scoped to a location.

use crate::db::schema::{payment_charges, payment_methods, payment_refunds};
use crate::db::{unreadable_row, DbConn, DbError};
use diesel::prelude::*;
use service_common::with_conn;

pub use super::providers::Gateway;

/// Where a charge stands (the `status` column).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "lowercase")]
pub enum ChargeStatus {
    /// The gateway's answer is not known yet.
    Pending,
    Succeeded,
    Failed,
}

impl ChargeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeStatus::Pending => "pending",
            ChargeStatus::Succeeded => "succeeded",
            ChargeStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<ChargeStatus> {
        [
            ChargeStatus::Pending,
            ChargeStatus::Succeeded,
            ChargeStatus::Failed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for ChargeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

service_common::text_column!(ChargeStatus, "pending, succeeded or failed");

/// Where a refund stands (the `status` column).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "lowercase")]
pub enum RefundStatus {
    /// The gateway's answer is not known yet.
    Pending,
    Succeeded,
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<RefundStatus> {
        [
            RefundStatus::Pending,
            RefundStatus::Succeeded,
            RefundStatus::Failed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

service_common::text_column!(RefundStatus, "pending, succeeded or failed");

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq, Eq)]
#[diesel(table_name = payment_charges)]
pub struct Charge {
    pub id: String,
    pub location_id: String,
    pub live_mode: bool,
    pub transaction_id: String,
    pub gateway: Gateway,
    pub gateway_ref: Option<String>,
    pub status: ChargeStatus,
    pub amount_minor: i64,
    pub currency: String,
    pub refunded_minor: i64,
    pub contact_id: Option<String>,
    pub payment_method_id: Option<String>,
    pub subscription_id: Option<String>,
    pub description: Option<String>,
    pub failure: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn charge_row(id: &str) -> String {
    format!("payment charge {id}")
}

/// Records a charge unless this location already has one for the transaction; answers the stored charge and
/// whether it is the one just inserted.
pub fn insert_charge_once(conn: &mut DbConn, c: &Charge) -> Result<(Charge, bool), DbError> {
    let n = with_conn!(conn, x => diesel::insert_into(payment_charges::table)
        .values(c)
        .on_conflict((payment_charges::location_id, payment_charges::transaction_id))
        .do_nothing()
        .execute(x))?;
    let stored = charge_by_transaction(conn, &c.location_id, &c.transaction_id)?
        .ok_or(DbError::Query(diesel::result::Error::NotFound))?;
    Ok((stored, n == 1))
}

pub fn charge(conn: &mut DbConn, location: &str, id: &str) -> Result<Option<Charge>, DbError> {
    payment_charges::table
        .filter(payment_charges::location_id.eq(location))
        .filter(payment_charges::id.eq(id))
        .select(Charge::as_select())
        .first(conn)
        .optional()
        .map_err(|e| DbError::naming(e, || charge_row(id)))
}

pub fn charge_by_transaction(
    conn: &mut DbConn,
    location: &str,
    transaction: &str,
) -> Result<Option<Charge>, DbError> {
    payment_charges::table
        .filter(payment_charges::location_id.eq(location))
        .filter(payment_charges::transaction_id.eq(transaction))
        .select(Charge::as_select())
        .first(conn)
        .optional()
        .map_err(|e| {
            DbError::naming(e, || {
                format!("payment charge of transaction {transaction} at {location}")
            })
        })
}

pub fn charge_by_gateway_ref(
    conn: &mut DbConn,
    gateway: Gateway,
    reference: &str,
) -> Result<Option<Charge>, DbError> {
    payment_charges::table
        .filter(payment_charges::gateway.eq(gateway))
        .filter(payment_charges::gateway_ref.eq(reference))
        .select(Charge::as_select())
        .first(conn)
        .optional()
        .map_err(|e| {
            DbError::naming(e, || {
                format!("payment charge with {gateway} reference {reference}")
            })
        })
}

pub fn set_gateway_ref(conn: &mut DbConn, id: &str, reference: &str) -> Result<(), DbError> {
    diesel::update(payment_charges::table.find(id))
        .set(payment_charges::gateway_ref.eq(reference))
        .execute(conn)?;
    Ok(())
}

/// Moves a pending charge to its outcome; `false` if it was not pending (an outcome is final).
pub fn settle_charge(
    conn: &mut DbConn,
    id: &str,
    status: ChargeStatus,
    failure: Option<&str>,
    now: i64,
) -> Result<bool, DbError> {
    Ok(diesel::update(
        payment_charges::table
            .find(id)
            .filter(payment_charges::status.eq(ChargeStatus::Pending)),
    )
    .set((
        payment_charges::status.eq(status),
        payment_charges::failure.eq(failure),
        payment_charges::updated_at.eq(now),
    ))
    .execute(conn)?
        == 1)
}

/// A declined charge made pending again for a new attempt (another card); `None` if it was not failed.
pub fn reopen_failed(conn: &mut DbConn, id: &str, now: i64) -> Result<Option<Charge>, DbError> {
    let n = diesel::update(
        payment_charges::table
            .find(id)
            .filter(payment_charges::status.eq(ChargeStatus::Failed)),
    )
    .set((
        payment_charges::status.eq(ChargeStatus::Pending),
        payment_charges::failure.eq(None::<String>),
        payment_charges::updated_at.eq(now),
    ))
    .execute(conn)?;
    if n == 0 {
        return Ok(None);
    }
    payment_charges::table
        .find(id)
        .select(Charge::as_select())
        .first(conn)
        .optional()
        .map_err(|e| DbError::naming(e, || charge_row(id)))
}

/// Whether the location has a charge still pending (a PayTR callback may yet settle it).
pub fn has_pending(conn: &mut DbConn, location: &str) -> Result<bool, DbError> {
    Ok(payment_charges::table
        .filter(payment_charges::location_id.eq(location))
        .filter(payment_charges::status.eq(ChargeStatus::Pending))
        .select(payment_charges::id)
        .first::<String>(conn)
        .optional()?
        .is_some())
}

/// How many charges of the contact at the location whose transactionId starts with `prefix` are still
/// pending and were made since `since`.
pub fn pending_with_prefix(
    conn: &mut DbConn,
    location: &str,
    contact: &str,
    prefix: &str,
    since: i64,
) -> Result<i64, DbError> {
    Ok(payment_charges::table
        .filter(payment_charges::location_id.eq(location))
        .filter(payment_charges::contact_id.eq(contact))
        .filter(payment_charges::status.eq(ChargeStatus::Pending))
        .filter(payment_charges::transaction_id.like(format!("{prefix}%")))
        .filter(payment_charges::created_at.ge(since))
        .count()
        .get_result(conn)?)
}

/// How many charges of the location in the given mode whose transactionId starts with `prefix` are still
/// pending and were made since `since` (whatever their contact).
pub fn pending_with_prefix_at_location(
    conn: &mut DbConn,
    location: &str,
    live: bool,
    prefix: &str,
    since: i64,
) -> Result<i64, DbError> {
    Ok(payment_charges::table
        .filter(payment_charges::location_id.eq(location))
        .filter(payment_charges::live_mode.eq(live))
        .filter(payment_charges::status.eq(ChargeStatus::Pending))
        .filter(payment_charges::transaction_id.like(format!("{prefix}%")))
        .filter(payment_charges::created_at.ge(since))
        .count()
        .get_result(conn)?)
}

/// Which transactionIds a query takes: those starting with the prefix, or all others.
#[derive(Debug, Clone, Copy)]
pub enum Prefixed<'a> {
    With(&'a str),
    Without(&'a str),
}

/// At most `limit` pending charges of `gateway` whose transactionId is `prefixed`, made between `created.0` and
/// `created.1` (exclusive) and untouched since `untouched_before`, the longest untouched first.
pub fn stale(
    conn: &mut DbConn,
    gateway: Gateway,
    prefixed: Prefixed<'_>,
    created: (i64, i64),
    untouched_before: i64,
    limit: i64,
) -> Result<Vec<Charge>, DbError> {
    let query = payment_charges::table
        .filter(payment_charges::gateway.eq(gateway))
        .filter(payment_charges::status.eq(ChargeStatus::Pending))
        .filter(payment_charges::created_at.gt(created.0))
        .filter(payment_charges::created_at.lt(created.1))
        .filter(payment_charges::updated_at.lt(untouched_before))
        .into_boxed();
    let query = match prefixed {
        Prefixed::With(p) => query.filter(payment_charges::transaction_id.like(format!("{p}%"))),
        Prefixed::Without(p) => {
            query.filter(payment_charges::transaction_id.not_like(format!("{p}%")))
        }
    };
    query
        .order(payment_charges::updated_at.asc())
        .limit(limit)
        .select(Charge::as_select())
        .load(conn)
        .map_err(|e| DbError::naming(e, || format!("a pending {gateway} payment charge")))
}

/// At most `limit` succeeded, unrefunded charges of `gateway` whose transactionId starts with `prefix`, made
/// since `created_since` and untouched since `before`, the longest untouched first.
pub fn unrefunded_with_prefix(
    conn: &mut DbConn,
    gateway: Gateway,
    prefix: &str,
    before: i64,
    created_since: i64,
    limit: i64,
) -> Result<Vec<Charge>, DbError> {
    payment_charges::table
        .filter(payment_charges::gateway.eq(gateway))
        .filter(payment_charges::status.eq(ChargeStatus::Succeeded))
        .filter(payment_charges::refunded_minor.eq(0))
        .filter(payment_charges::transaction_id.like(format!("{prefix}%")))
        .filter(payment_charges::updated_at.lt(before))
        .filter(payment_charges::created_at.ge(created_since))
        .order(payment_charges::updated_at.asc())
        .limit(limit)
        .select(Charge::as_select())
        .load(conn)
        .map_err(|e| DbError::naming(e, || format!("a succeeded {gateway} payment charge")))
}

/// Of the charges `ids`, those that succeeded, are not refunded at all and were untouched since `before`.
pub fn unrefunded_among(
    conn: &mut DbConn,
    ids: &[String],
    before: i64,
) -> Result<Vec<Charge>, DbError> {
    payment_charges::table
        .filter(payment_charges::id.eq_any(ids))
        .filter(payment_charges::status.eq(ChargeStatus::Succeeded))
        .filter(payment_charges::refunded_minor.eq(0))
        .filter(payment_charges::updated_at.lt(before))
        .select(Charge::as_select())
        .load(conn)
        .map_err(|e| DbError::naming(e, || "a succeeded payment charge".to_owned()))
}

/// Marks a charge as looked at `now` (its `updated_at`), e.g. after a refund the gateway refused for now.
pub fn touch_charge(conn: &mut DbConn, id: &str, now: i64) -> Result<(), DbError> {
    diesel::update(payment_charges::table.find(id))
        .set(payment_charges::updated_at.eq(now))
        .execute(conn)?;
    Ok(())
}

/// At most `limit` pending charges of `gateway` not touched since `before`, oldest first (the sandbox's "wait"
/// cards; a charge reopened for a new attempt counts from the reopening).
pub fn pending_before(
    conn: &mut DbConn,
    gateway: Gateway,
    before: i64,
    limit: i64,
) -> Result<Vec<Charge>, DbError> {
    payment_charges::table
        .filter(payment_charges::status.eq(ChargeStatus::Pending))
        .filter(payment_charges::gateway.eq(gateway))
        .filter(payment_charges::updated_at.lt(before))
        .order(payment_charges::updated_at.asc())
        .limit(limit)
        .select(Charge::as_select())
        .load(conn)
        .map_err(|e| DbError::naming(e, || format!("a pending {gateway} payment charge")))
}

#[derive(Debug, Clone, Queryable, Selectable, PartialEq, Eq)]
#[diesel(table_name = payment_refunds)]
pub struct Refund {
    pub id: String,
    pub charge_id: String,
    pub location_id: String,
    pub amount_minor: i64,
    pub created_at: i64,
    pub status: RefundStatus,
    pub request_key: Option<String>,
    pub updated_at: i64,
}

fn refund_row(id: &str) -> String {
    format!("payment refund {id}")
}

/// What [`begin_refund`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundClaim {
    /// Recorded as pending; the charge's refunded total now counts it.
    New(Refund),
    /// The same request was made before (same key, not failed): its refund, untouched.
    Repeat(Refund),
    /// It does not fit in what is left of the charge (or the charge is not succeeded).
    TooMuch,
}

/// Records a refund of a succeeded charge as `pending`, if it fits in what is left of the charge and no refund
/// with the same `key` made since `since` exists (a repeat answers that refund). One transaction that first
/// locks the charge's row, so identical concurrent requests refund once and concurrent refunds can never
/// exceed the charge.
#[allow(clippy::too_many_arguments)]
pub fn begin_refund(
    conn: &mut DbConn,
    location: &str,
    charge_id: &str,
    amount: i64,
    refund_id: &str,
    key: &str,
    since: i64,
    now: i64,
) -> Result<RefundClaim, DbError> {
    conn.transaction(|conn| {
        // Takes the row lock (PostgreSQL) or the write lock (SQLite) before anything is read.
        diesel::update(
            payment_charges::table
                .filter(payment_charges::id.eq(charge_id))
                .filter(payment_charges::location_id.eq(location)),
        )
        .set(payment_charges::updated_at.eq(payment_charges::updated_at))
        .execute(conn)?;
        let repeat = payment_refunds::table
            .filter(payment_refunds::location_id.eq(location))
            .filter(payment_refunds::charge_id.eq(charge_id))
            .filter(payment_refunds::request_key.eq(key))
            .filter(payment_refunds::status.ne(RefundStatus::Failed))
            .filter(payment_refunds::created_at.ge(since))
            .select(Refund::as_select())
            .first(conn)
            .optional()
            .map_err(|e| {
                DbError::naming(e, || {
                    let rows = payment_refunds::table
                        .filter(payment_refunds::charge_id.eq(charge_id))
                        .filter(payment_refunds::request_key.eq(key))
                        .select((payment_refunds::id, payment_refunds::status))
                        .load(conn);
                    unreadable_row("payment refund", rows, |v| RefundStatus::parse(v).is_some())
                })
            })?;
        if let Some(r) = repeat {
            return Ok(RefundClaim::Repeat(r));
        }
        let n = diesel::update(
            payment_charges::table
                .filter(payment_charges::id.eq(charge_id))
                .filter(payment_charges::location_id.eq(location))
                .filter(payment_charges::status.eq(ChargeStatus::Succeeded))
                .filter(
                    (payment_charges::refunded_minor + amount).le(payment_charges::amount_minor),
                ),
        )
        .set((
            payment_charges::refunded_minor.eq(payment_charges::refunded_minor + amount),
            payment_charges::updated_at.eq(now),
        ))
        .execute(conn)?;
        if n == 0 {
            return Ok(RefundClaim::TooMuch);
        }
        let r = Refund {
            id: refund_id.to_owned(),
            charge_id: charge_id.to_owned(),
            location_id: location.to_owned(),
            amount_minor: amount,
            created_at: now,
            status: RefundStatus::Pending,
            request_key: Some(key.to_owned()),
            updated_at: now,
        };
        diesel::insert_into(payment_refunds::table)
            .values((
                payment_refunds::id.eq(&r.id),
                payment_refunds::charge_id.eq(&r.charge_id),
                payment_refunds::location_id.eq(&r.location_id),
                payment_refunds::amount_minor.eq(r.amount_minor),
                payment_refunds::created_at.eq(r.created_at),
                payment_refunds::status.eq(r.status),
                payment_refunds::request_key.eq(&r.request_key),
                payment_refunds::updated_at.eq(r.updated_at),
            ))
            .execute(conn)?;
        Ok(RefundClaim::New(r))
    })
}

/// Records a pending refund's outcome. A failed refund gives its amount back to the charge; an outcome is
/// final, so only a pending refund changes. Answers the refund as stored afterwards.
pub fn finish_refund(
    conn: &mut DbConn,
    refund_id: &str,
    succeeded: bool,
    now: i64,
) -> Result<Option<Refund>, DbError> {
    conn.transaction(|conn| {
        let pending = payment_refunds::table
            .find(refund_id)
            .filter(payment_refunds::status.eq(RefundStatus::Pending))
            .select(Refund::as_select())
            .first(conn)
            .optional()
            .map_err(|e| DbError::naming(e, || refund_row(refund_id)))?;
        if let Some(r) = pending {
            let n = diesel::update(
                payment_refunds::table
                    .find(refund_id)
                    .filter(payment_refunds::status.eq(RefundStatus::Pending)),
            )
            .set((
                payment_refunds::status.eq(if succeeded {
                    RefundStatus::Succeeded
                } else {
                    RefundStatus::Failed
                }),
                payment_refunds::updated_at.eq(now),
            ))
            .execute(conn)?;
            if n == 1 && !succeeded {
                diesel::update(payment_charges::table.find(&r.charge_id))
                    .set(
                        payment_charges::refunded_minor
                            .eq(payment_charges::refunded_minor - r.amount_minor),
                    )
                    .execute(conn)?;
            }
        }
        payment_refunds::table
            .find(refund_id)
            .select(Refund::as_select())
            .first(conn)
            .optional()
            .map_err(|e| DbError::naming(e, || refund_row(refund_id)))
    })
}

/// Refunds of a charge, oldest first.
pub fn refunds_of(conn: &mut DbConn, charge_id: &str) -> Result<Vec<Refund>, DbError> {
    payment_refunds::table
        .filter(payment_refunds::charge_id.eq(charge_id))
        .order(payment_refunds::created_at.asc())
        .select(Refund::as_select())
        .load(conn)
        .map_err(|e| {
            DbError::naming(e, || {
                let rows = payment_refunds::table
                    .filter(payment_refunds::charge_id.eq(charge_id))
                    .select((payment_refunds::id, payment_refunds::status))
                    .load(conn);
                unreadable_row("payment refund", rows, |v| RefundStatus::parse(v).is_some())
            })
        })
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq, Eq)]
#[diesel(table_name = payment_methods)]
pub struct Method {
    pub id: String,
    pub location_id: String,
    pub live_mode: bool,
    pub contact_id: String,
    pub brand: String,
    pub last4: String,
    pub exp_month: i32,
    pub exp_year: i32,
    pub sandbox_outcome: Option<String>,
    pub created_at: i64,
    /// The gateway's token of the card (PayTR's `ctoken`); `None` on the sandbox.
    pub gateway_ref: Option<String>,
}

/// Cards a contact may keep on file at a location: saving is open to whoever holds the page's publishable
/// key, so it is bounded.
pub const MAX_METHODS_PER_CONTACT: i64 = 20;

/// Saves a card unless the contact already keeps [`MAX_METHODS_PER_CONTACT`] at the location; `false` then.
pub fn save_method(conn: &mut DbConn, m: &Method) -> Result<bool, DbError> {
    let held: i64 = payment_methods::table
        .filter(payment_methods::location_id.eq(&m.location_id))
        .filter(payment_methods::contact_id.eq(&m.contact_id))
        .count()
        .get_result(conn)?;
    if held >= MAX_METHODS_PER_CONTACT {
        return Ok(false);
    }
    diesel::insert_into(payment_methods::table)
        .values(m)
        .execute(conn)?;
    Ok(true)
}

pub fn methods(
    conn: &mut DbConn,
    location: &str,
    contact: &str,
    live: bool,
) -> Result<Vec<Method>, DbError> {
    Ok(payment_methods::table
        .filter(payment_methods::location_id.eq(location))
        .filter(payment_methods::contact_id.eq(contact))
        .filter(payment_methods::live_mode.eq(live))
        .order(payment_methods::created_at.asc())
        .select(Method::as_select())
        .load(conn)?)
}

pub fn method(conn: &mut DbConn, location: &str, id: &str) -> Result<Option<Method>, DbError> {
    Ok(payment_methods::table
        .filter(payment_methods::location_id.eq(location))
        .filter(payment_methods::id.eq(id))
        .select(Method::as_select())
        .first(conn)
        .optional()?)
}

/// Makes the contact's saved cards of a gateway the ones the gateway lists (PayTR's card storage is the
/// truth for PayTR cards): a listed card not yet here is added (by its `gateway_ref`), a card here the gateway
/// no longer lists is removed. Answers the contact's cards of that gateway afterwards, oldest first.
pub fn sync_gateway_methods(
    conn: &mut DbConn,
    location: &str,
    contact: &str,
    live: bool,
    listed: &[Method],
) -> Result<Vec<Method>, DbError> {
    conn.transaction(|conn| {
        let held: Vec<Method> = payment_methods::table
            .filter(payment_methods::location_id.eq(location))
            .filter(payment_methods::contact_id.eq(contact))
            .filter(payment_methods::live_mode.eq(live))
            .filter(payment_methods::gateway_ref.is_not_null())
            .select(Method::as_select())
            .load(conn)?;
        for gone in held
            .iter()
            .filter(|h| !listed.iter().any(|l| l.gateway_ref == h.gateway_ref))
        {
            diesel::delete(payment_methods::table.find(&gone.id)).execute(conn)?;
        }
        for new in listed
            .iter()
            .filter(|l| !held.iter().any(|h| h.gateway_ref == l.gateway_ref))
        {
            diesel::insert_into(payment_methods::table)
                .values(new)
                .execute(conn)?;
        }
        Ok(payment_methods::table
            .filter(payment_methods::location_id.eq(location))
            .filter(payment_methods::contact_id.eq(contact))
            .filter(payment_methods::live_mode.eq(live))
            .filter(payment_methods::gateway_ref.is_not_null())
            .order(payment_methods::created_at.asc())
            .select(Method::as_select())
            .load(conn)?)
    })
}
