//! The change feed (`installation_changes`): what every process's token cache must forget. Rows are written
//! by triggers (see the migration); this module only reads and purges them.

use crate::db::schema::installation_changes::dsl;
use crate::db::{unreadable_row, DbConn, DbError};
use diesel::prelude::*;
use shared_types::InstallationState;

#[derive(Debug, Clone, Queryable, Selectable, PartialEq, Eq)]
#[diesel(table_name = crate::db::schema::installation_changes)]
pub struct Change {
    pub seq: i64,
    pub installation_id: String,
    /// `None`: the installation's state changed (to `state`); else this token row changed.
    pub scope_key: Option<String>,
    pub state: Option<InstallationState>,
    /// The token row's new version; `None` with a `scope_key`: the row was deleted.
    pub token_version: Option<i64>,
}

/// Changes after `seq`, oldest first.
pub fn after(conn: &mut DbConn, seq: i64, limit: i64) -> Result<Vec<Change>, DbError> {
    dsl::installation_changes
        .filter(dsl::seq.gt(seq))
        .order(dsl::seq.asc())
        .limit(limit)
        .select(Change::as_select())
        .load(conn)
        .map_err(|e| DbError::naming(e, || unreadable(conn, Box::new(dsl::seq.gt(seq)))))
}

/// These changes, if they are there now (late commits of a gap in the sequence).
pub fn these(conn: &mut DbConn, seqs: &[i64]) -> Result<Vec<Change>, DbError> {
    dsl::installation_changes
        .filter(dsl::seq.eq_any(seqs))
        .order(dsl::seq.asc())
        .select(Change::as_select())
        .load(conn)
        .map_err(|e| {
            DbError::naming(e, || {
                unreadable(conn, Box::new(dsl::seq.eq_any(seqs.to_vec())))
            })
        })
}

type Which = Box<
    dyn diesel::expression::BoxableExpression<
        dsl::installation_changes,
        crate::db::MultiBackend,
        SqlType = diesel::sql_types::Bool,
    >,
>;

/// The first change among `which` whose `state` this version cannot read. A change feed that cannot be read
/// stops the cache from serving (see `tokens::sync`): fail closed, with the row to repair in the log.
fn unreadable(conn: &mut DbConn, which: Which) -> String {
    let rows = dsl::installation_changes
        .filter(which)
        .filter(dsl::state.is_not_null())
        .order(dsl::seq.asc())
        .select((dsl::seq, dsl::state.assume_not_null()))
        .load::<(i64, String)>(conn)
        .map(|rows| {
            rows.into_iter()
                .map(|(seq, s)| (seq.to_string(), s))
                .collect()
        });
    unreadable_row("installation change", rows, |s| {
        InstallationState::parse(s).is_some()
    })
}

/// Where a process starts reading: just before the changes of the last `lookback_ms` (changes still being
/// committed when it starts are read as gaps, not lost), else after the newest change.
pub fn start_after(conn: &mut DbConn, now: i64, lookback_ms: i64) -> Result<i64, DbError> {
    let recent: Option<i64> = dsl::installation_changes
        .filter(dsl::changed_at.gt(now - lookback_ms))
        .select(diesel::dsl::min(dsl::seq))
        .first(conn)?;
    if let Some(first) = recent {
        return Ok(first - 1);
    }
    let newest: Option<i64> = dsl::installation_changes
        .select(diesel::dsl::max(dsl::seq))
        .first(conn)?;
    Ok(newest.unwrap_or(0))
}

/// Forgets changes older than `before` (epoch ms).
pub fn purge(conn: &mut DbConn, before: i64, batch: i64) -> Result<usize, DbError> {
    let old: Vec<i64> = dsl::installation_changes
        .filter(dsl::changed_at.lt(before))
        .select(dsl::seq)
        .limit(batch)
        .load(conn)?;
    if old.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(dsl::installation_changes.filter(dsl::seq.eq_any(old))).execute(conn)?)
}
