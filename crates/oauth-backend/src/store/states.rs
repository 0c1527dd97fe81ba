//! Single use of OAuth `state`s. A state is signed and carries its own expiry, so `/oauth/install` writes
//! nothing; the callback records the state's id here once it is accepted (`oauth_used_states`, unique by id)
//! and refuses an id already recorded. Records go once their state has expired: after that the signature
//! check refuses the state anyway.
//!
//! `oauth_states` holds the states of earlier versions (one row per `/oauth/install`); its rows are only
//! consumed and purged, so installs started before an upgrade still finish.

use crate::db::schema::oauth_states::dsl;
use crate::db::schema::oauth_used_states::dsl as used;
use crate::db::{DbConn, DbError};
use crate::with_conn;
use diesel::prelude::*;

/// Whether a state id was already used.
pub fn is_used(conn: &mut DbConn, id: &str) -> Result<bool, DbError> {
    Ok(used::oauth_used_states
        .find(id)
        .select(used::id)
        .first::<String>(conn)
        .optional()?
        .is_some())
}

/// Records a state id as used. `false`: it already was (a replay, or a concurrent callback won).
pub fn mark_used(conn: &mut DbConn, id: &str, expires_at: i64) -> Result<bool, DbError> {
    let n = with_conn!(conn, c => diesel::insert_into(used::oauth_used_states)
        .values((used::id.eq(id), used::expires_at.eq(expires_at)))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(n == 1)
}

/// A state of an earlier version: marks it used if it is unused and unexpired. `Some(user_type)` exactly once.
pub fn consume_legacy(
    conn: &mut DbConn,
    id: &str,
    now: i64,
) -> Result<Option<Option<String>>, DbError> {
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

/// Forgets expired states, used or not, at most `batch` rows of each table.
pub fn purge(conn: &mut DbConn, now: i64, batch: i64) -> Result<usize, DbError> {
    let old_used: Vec<String> = used::oauth_used_states
        .filter(used::expires_at.lt(now))
        .select(used::id)
        .limit(batch)
        .load(conn)?;
    let a = if old_used.is_empty() {
        0
    } else {
        diesel::delete(used::oauth_used_states.filter(used::id.eq_any(old_used))).execute(conn)?
    };
    let old_legacy: Vec<String> = dsl::oauth_states
        .filter(dsl::expires_at.lt(now))
        .select(dsl::id)
        .limit(batch)
        .load(conn)?;
    let b = if old_legacy.is_empty() {
        0
    } else {
        diesel::delete(dsl::oauth_states.filter(dsl::id.eq_any(old_legacy))).execute(conn)?
    };
    Ok(a + b)
}
