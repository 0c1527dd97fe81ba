//! Subscription checkouts waiting for PayTR (a PayTR provider with `paytr.directApi`): the first period is a
//! Direct API payment that stores the card, and the subscription is created once PayTR's notification says
//! it succeeded. One row per first-period charge (and per location and HighLevel transaction); it moves once
//! from `pending` to `created` or `failed`.

use crate::db::schema::paytr_subscription_checkouts::dsl;
use crate::db::{DbConn, DbError};
use diesel::prelude::*;

pub const PENDING: &str = "pending";
pub const CREATED: &str = "created";
pub const FAILED: &str = "failed";

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq, Eq)]
#[diesel(table_name = crate::db::schema::paytr_subscription_checkouts)]
pub struct SubscriptionCheckout {
    /// The first period's charge (HighLevel's transactionId, HighLevel's amount).
    pub charge_id: String,
    pub location_id: String,
    pub live_mode: bool,
    pub transaction_id: String,
    pub ghl_subscription_id: String,
    /// Our id of the subscription to be created (the charge names it already).
    pub subscription_id: String,
    pub contact_id: String,
    /// HighLevel's terms as `create_subscription` reads them (JSON, without `paymentMethodId`).
    pub terms: String,
    /// The contact's PayTR card tokens (`ctoken`) before this payment (JSON array).
    pub known_cards: String,
    pub status: String,
    pub failure: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub fn insert(conn: &mut DbConn, row: &SubscriptionCheckout) -> Result<(), DbError> {
    diesel::insert_into(dsl::paytr_subscription_checkouts)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn by_charge(
    conn: &mut DbConn,
    charge_id: &str,
) -> Result<Option<SubscriptionCheckout>, DbError> {
    dsl::paytr_subscription_checkouts
        .find(charge_id)
        .select(SubscriptionCheckout::as_select())
        .first(conn)
        .optional()
        .map_err(|e| DbError::naming(e, || format!("subscription checkout of charge {charge_id}")))
}

/// Moves a pending checkout to `status` (`created` or `failed`); `false` when it was not pending (a repeated
/// notification, another replica): the first outcome stands.
pub fn finish(
    conn: &mut DbConn,
    charge_id: &str,
    status: &str,
    failure: Option<&str>,
    now: i64,
) -> Result<bool, DbError> {
    Ok(diesel::update(
        dsl::paytr_subscription_checkouts
            .find(charge_id)
            .filter(dsl::status.eq(PENDING)),
    )
    .set((
        dsl::status.eq(status),
        dsl::failure.eq(failure),
        dsl::updated_at.eq(now),
    ))
    .execute(conn)?
        == 1)
}

/// Charges (at most `limit`) of checkouts that failed since `since`: a first period PayTR may have been paid
/// for although no subscription was created (the caller refunds those that succeeded).
pub fn failed_since(conn: &mut DbConn, since: i64, limit: i64) -> Result<Vec<String>, DbError> {
    dsl::paytr_subscription_checkouts
        .filter(dsl::status.eq(FAILED))
        .filter(dsl::updated_at.ge(since))
        .order(dsl::updated_at.asc())
        .limit(limit)
        .select(dsl::charge_id)
        .load(conn)
        .map_err(|e| DbError::naming(e, || "failed PayTR subscription checkouts".to_owned()))
}
