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

pub fn insert_batch(conn: &mut DbConn, entries: &[AuditEntry]) -> Result<usize, DbError> {
    Ok(with_conn!(conn, c => diesel::insert_into(dsl::token_audit).values(entries).execute(c))?)
}

pub fn for_installation(conn: &mut DbConn, installation: &str) -> Result<Vec<AuditEntry>, DbError> {
    Ok(dsl::token_audit
        .filter(dsl::installation_id.eq(installation))
        .order(dsl::id.asc())
        .select(AuditEntry::as_select())
        .load(conn)?)
}
