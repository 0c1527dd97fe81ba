//! The audit log of token reads: who, which installation, when, and the outcome. Never the token.

use crate::db::schema::token_audit::{self, dsl};
use crate::db::{DbConn, DbError};
use crate::with_conn;
use diesel::prelude::*;

#[derive(Debug, Clone, Insertable, Queryable, Selectable, PartialEq, Eq)]
#[diesel(table_name = token_audit)]
pub struct AuditEntry {
    pub caller: String,
    pub installation_id: String,
    pub location_id: Option<String>,
    pub outcome: String,
    /// When the first of these reads happened.
    pub at: i64,
    /// How many identical reads this row stands for.
    pub count: i64,
}

/// Rows per INSERT statement: at most 6 bind parameters each, far below the parameters a statement may have
/// (PostgreSQL 65 535, SQLite 32 766 by default), whatever the batch size. (On SQLite diesel already sends rows
/// with an optional column one per statement.)
pub const ROWS_PER_STATEMENT: usize = 1_000;

/// Inserts every entry, in statements of `ROWS_PER_STATEMENT` rows inside one transaction (all or none).
pub fn insert_batch(conn: &mut DbConn, entries: &[AuditEntry]) -> Result<usize, DbError> {
    conn.transaction(|conn| {
        let mut n = 0;
        for chunk in entries.chunks(ROWS_PER_STATEMENT) {
            n += with_conn!(conn, c => diesel::insert_into(dsl::token_audit).values(chunk).execute(c))?;
        }
        Ok(n)
    })
}

/// Forgets rows of reads before `before` (epoch ms), at most `batch` of them.
pub fn purge(conn: &mut DbConn, before: i64, batch: i64) -> Result<usize, DbError> {
    let old: Vec<i64> = dsl::token_audit
        .filter(dsl::at.lt(before))
        .select(dsl::id)
        .limit(batch)
        .load(conn)?;
    if old.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(dsl::token_audit.filter(dsl::id.eq_any(old))).execute(conn)?)
}

pub fn count(conn: &mut DbConn) -> Result<i64, DbError> {
    Ok(dsl::token_audit.count().get_result(conn)?)
}

pub fn for_installation(conn: &mut DbConn, installation: &str) -> Result<Vec<AuditEntry>, DbError> {
    Ok(dsl::token_audit
        .filter(dsl::installation_id.eq(installation))
        .order(dsl::id.asc())
        .select(AuditEntry::as_select())
        .load(conn)?)
}
