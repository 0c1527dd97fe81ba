//! Charges, refunds, subscriptions and saved cards of the custom provider, each scoped to a location.

use crate::db::schema::{payment_charges, payment_methods, payment_refunds, payment_subscriptions};
use crate::db::{DbConn, DbError};
use diesel::prelude::*;
use service_common::with_conn;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq, Eq)]
#[diesel(table_name = payment_charges)]
pub struct Charge {
    pub id: String,
    pub location_id: String,
    pub live_mode: bool,
    pub transaction_id: String,
    pub gateway: String,
    pub gateway_ref: Option<String>,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
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
    Ok(payment_charges::table
        .filter(payment_charges::location_id.eq(location))
        .filter(payment_charges::id.eq(id))
        .select(Charge::as_select())
        .first(conn)
        .optional()?)
}

pub fn charge_by_transaction(
    conn: &mut DbConn,
    location: &str,
    transaction: &str,
) -> Result<Option<Charge>, DbError> {
    Ok(payment_charges::table
        .filter(payment_charges::location_id.eq(location))
        .filter(payment_charges::transaction_id.eq(transaction))
        .select(Charge::as_select())
        .first(conn)
        .optional()?)
}

pub fn charge_by_gateway_ref(
    conn: &mut DbConn,
    gateway: &str,
    reference: &str,
) -> Result<Option<Charge>, DbError> {
    Ok(payment_charges::table
        .filter(payment_charges::gateway.eq(gateway))
        .filter(payment_charges::gateway_ref.eq(reference))
        .select(Charge::as_select())
        .first(conn)
        .optional()?)
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
    status: &str,
    failure: Option<&str>,
    now: i64,
) -> Result<bool, DbError> {
    Ok(diesel::update(
        payment_charges::table
            .find(id)
            .filter(payment_charges::status.eq("pending")),
    )
    .set((
        payment_charges::status.eq(status),
        payment_charges::failure.eq(failure),
        payment_charges::updated_at.eq(now),
    ))
    .execute(conn)?
        == 1)
}

/// Pending charges older than `before` (for the sandbox's "wait" cards, and status queries).
pub fn pending_before(conn: &mut DbConn, before: i64) -> Result<Vec<Charge>, DbError> {
    Ok(payment_charges::table
        .filter(payment_charges::status.eq("pending"))
        .filter(payment_charges::created_at.lt(before))
        .select(Charge::as_select())
        .load(conn)?)
}

/// Records a refund if it fits in what is left of a succeeded charge: one conditional update, so concurrent
/// refunds can never exceed the charge. `None` when it does not fit.
pub fn refund(
    conn: &mut DbConn,
    location: &str,
    charge_id: &str,
    amount: i64,
    refund_id: &str,
    now: i64,
) -> Result<Option<i64>, DbError> {
    conn.transaction(|conn| {
        let n = diesel::update(
            payment_charges::table
                .filter(payment_charges::id.eq(charge_id))
                .filter(payment_charges::location_id.eq(location))
                .filter(payment_charges::status.eq("succeeded"))
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
            return Ok(None);
        }
        diesel::insert_into(payment_refunds::table)
            .values((
                payment_refunds::id.eq(refund_id),
                payment_refunds::charge_id.eq(charge_id),
                payment_refunds::location_id.eq(location),
                payment_refunds::amount_minor.eq(amount),
                payment_refunds::created_at.eq(now),
            ))
            .execute(conn)?;
        let total: i64 = payment_charges::table
            .find(charge_id)
            .select(payment_charges::refunded_minor)
            .first(conn)?;
        Ok(Some(total))
    })
}

/// Gives back a refund the gateway did not carry out.
pub fn undo_refund(
    conn: &mut DbConn,
    charge_id: &str,
    refund_id: &str,
    amount: i64,
) -> Result<(), DbError> {
    conn.transaction(|conn| {
        diesel::delete(payment_refunds::table.find(refund_id)).execute(conn)?;
        diesel::update(payment_charges::table.find(charge_id))
            .set(payment_charges::refunded_minor.eq(payment_charges::refunded_minor - amount))
            .execute(conn)?;
        Ok(())
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
}

pub fn save_method(conn: &mut DbConn, m: &Method) -> Result<(), DbError> {
    diesel::insert_into(payment_methods::table)
        .values(m)
        .execute(conn)?;
    Ok(())
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

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq, Eq)]
#[diesel(table_name = payment_subscriptions)]
pub struct Subscription {
    pub id: String,
    pub location_id: String,
    pub live_mode: bool,
    pub transaction_id: String,
    pub contact_id: Option<String>,
    pub payment_method_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub interval_unit: String,
    pub interval_count: i32,
    /// `active` or `canceled`.
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

pub fn insert_subscription_once(
    conn: &mut DbConn,
    s: &Subscription,
) -> Result<(Subscription, bool), DbError> {
    let n = with_conn!(conn, x => diesel::insert_into(payment_subscriptions::table)
        .values(s)
        .on_conflict((payment_subscriptions::location_id, payment_subscriptions::transaction_id))
        .do_nothing()
        .execute(x))?;
    let stored = payment_subscriptions::table
        .filter(payment_subscriptions::location_id.eq(&s.location_id))
        .filter(payment_subscriptions::transaction_id.eq(&s.transaction_id))
        .select(Subscription::as_select())
        .first(conn)?;
    Ok((stored, n == 1))
}

pub fn subscription(
    conn: &mut DbConn,
    location: &str,
    id: &str,
) -> Result<Option<Subscription>, DbError> {
    Ok(payment_subscriptions::table
        .filter(payment_subscriptions::location_id.eq(location))
        .filter(payment_subscriptions::id.eq(id))
        .select(Subscription::as_select())
        .first(conn)
        .optional()?)
}

/// Cancels an active subscription; `false` if it was not active.
pub fn cancel_subscription(
    conn: &mut DbConn,
    location: &str,
    id: &str,
    now: i64,
) -> Result<bool, DbError> {
    Ok(diesel::update(
        payment_subscriptions::table
            .filter(payment_subscriptions::location_id.eq(location))
            .filter(payment_subscriptions::id.eq(id))
            .filter(payment_subscriptions::status.eq("active")),
    )
    .set((
        payment_subscriptions::status.eq("canceled"),
        payment_subscriptions::updated_at.eq(now),
    ))
    .execute(conn)?
        == 1)
}
