//! Single-use OAuth `state` values.

use crate::db::schema::oauth_states::dsl;
use crate::db::{DbConn, DbError};
use diesel::prelude::*;

pub fn insert(
    conn: &mut DbConn,
    id: &str,
    user_type: Option<&str>,
    now: i64,
    expires_at: i64,
) -> Result<(), DbError> {
    diesel::insert_into(dsl::oauth_states)
        .values((
            dsl::id.eq(id),
            dsl::user_type.eq(user_type),
            dsl::created_at.eq(now),
            dsl::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Marks the state used if it is unused and unexpired. `Some(user_type)` exactly once per state.
pub fn consume(conn: &mut DbConn, id: &str, now: i64) -> Result<Option<Option<String>>, DbError> {
    let n = diesel::update(
        dsl::oauth_states
            .find(id)
            .filter(dsl::used_at.is_null())
            .filter(dsl::expires_at.gt(now)),
    )
    .set(dsl::used_at.eq(now))
    .execute(conn)?;
    if n != 1 {
        return Ok(None);
    }
    Ok(Some(
        dsl::oauth_states
            .find(id)
            .select(dsl::user_type)
            .first(conn)?,
    ))
}

/// Forgets states that expired more than a day ago.
pub fn purge(conn: &mut DbConn, now: i64) -> Result<usize, DbError> {
    Ok(
        diesel::delete(dsl::oauth_states.filter(dsl::expires_at.lt(now - 86_400_000)))
            .execute(conn)?,
    )
}
