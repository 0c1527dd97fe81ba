//! PayTR's customer token (`utoken`) of each contact, per location and mode: it groups the contact's cards in
//! PayTR's card storage and is needed to list and charge them. Stored sealed (the caller seals and unseals).
//! A row starts when the contact begins saving a card (with the address they saved it from) and gets its
//! token from PayTR's notification; the first token PayTR minted stays, since later cards are saved under it.

use crate::db::schema::paytr_customers::dsl;
use crate::db::{DbConn, DbError};
use diesel::prelude::*;
use service_common::with_conn;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq, Eq)]
#[diesel(table_name = crate::db::schema::paytr_customers)]
pub struct PaytrCustomer {
    pub location_id: String,
    pub live_mode: bool,
    pub contact_id: String,
    /// The `utoken`, sealed with TOKEN_ENCRYPTION_KEYS; `None` until PayTR's notification brings it.
    pub utoken_sealed: Option<String>,
    /// The address the contact last saved a card from (PayTR's off-session charge wants a `user_ip`).
    pub user_ip: String,
    pub created_at: i64,
    pub updated_at: i64,
}

pub fn get(
    conn: &mut DbConn,
    location: &str,
    live: bool,
    contact: &str,
) -> Result<Option<PaytrCustomer>, DbError> {
    dsl::paytr_customers
        .find((location, live, contact))
        .select(PaytrCustomer::as_select())
        .first(conn)
        .optional()
        .map_err(|e| DbError::naming(e, || format!("PayTR customer of {contact} at {location}")))
}

/// The contact begins saving a card from `user_ip`: the row is made, or its address refreshed (a token kept
/// already stays). Answers the row as stored.
pub fn begin(
    conn: &mut DbConn,
    location: &str,
    live: bool,
    contact: &str,
    user_ip: &str,
    now: i64,
) -> Result<PaytrCustomer, DbError> {
    let row = PaytrCustomer {
        location_id: location.to_owned(),
        live_mode: live,
        contact_id: contact.to_owned(),
        utoken_sealed: None,
        user_ip: user_ip.to_owned(),
        created_at: now,
        updated_at: now,
    };
    with_conn!(conn, c => diesel::insert_into(dsl::paytr_customers)
        .values(&row)
        .on_conflict((dsl::location_id, dsl::live_mode, dsl::contact_id))
        .do_update()
        .set((dsl::user_ip.eq(user_ip), dsl::updated_at.eq(now)))
        .execute(c))?;
    get(conn, location, live, contact)?.ok_or(DbError::Query(diesel::result::Error::NotFound))
}

/// Keeps PayTR's token for the contact unless one is kept already; `false` then (the first stays).
pub fn keep_token(
    conn: &mut DbConn,
    location: &str,
    live: bool,
    contact: &str,
    sealed: &str,
    now: i64,
) -> Result<bool, DbError> {
    Ok(diesel::update(
        dsl::paytr_customers
            .find((location, live, contact))
            .filter(dsl::utoken_sealed.is_null()),
    )
    .set((dsl::utoken_sealed.eq(sealed), dsl::updated_at.eq(now)))
    .execute(conn)?
        == 1)
}

/// The sealed tokens of every other contact of the location and mode (to refuse a token that is already
/// another contact's).
pub fn sealed_tokens_except(
    conn: &mut DbConn,
    location: &str,
    live: bool,
    contact: &str,
) -> Result<Vec<(String, String)>, DbError> {
    dsl::paytr_customers
        .filter(dsl::location_id.eq(location))
        .filter(dsl::live_mode.eq(live))
        .filter(dsl::contact_id.ne(contact))
        .filter(dsl::utoken_sealed.is_not_null())
        .select((dsl::contact_id, dsl::utoken_sealed.assume_not_null()))
        .load(conn)
        .map_err(|e| DbError::naming(e, || format!("PayTR customers at {location}")))
}
