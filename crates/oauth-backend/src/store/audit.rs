//! The audit log of token reads: who, which installation, when, and the outcome. Never the token.

use crate::db::schema::token_audit::{self, dsl};
use crate::db::{unreadable_row, DbConn, DbError};
use crate::with_conn;
use diesel::prelude::*;
use shared_types::ProblemCode;

/// How a token read ended (the `outcome` column): `served`, or the stable problem code it was refused with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum Outcome {
    Served,
    Refused(ProblemCode),
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Served => "served",
            Outcome::Refused(code) => code.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        if s == "served" {
            return Some(Outcome::Served);
        }
        ProblemCode::ALL
            .iter()
            .find(|c| c.as_str() == s)
            .map(|c| Outcome::Refused(*c))
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

service_common::text_column!(Outcome, "served or a problem code");

#[derive(Debug, Clone, Insertable, Queryable, Selectable, PartialEq, Eq)]
#[diesel(table_name = token_audit)]
pub struct AuditEntry {
    pub caller: String,
    pub installation_id: String,
    pub location_id: Option<String>,
    pub outcome: Outcome,
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
    let rows = || {
        dsl::token_audit
            .filter(dsl::installation_id.eq(installation))
            .order(dsl::id.asc())
    };
    rows()
        .select(AuditEntry::as_select())
        .load(conn)
        .map_err(|e| {
            DbError::naming(e, || {
                let outcomes = rows()
                    .select((dsl::id, dsl::outcome))
                    .load::<(i64, String)>(conn)
                    .map(|rows| {
                        rows.into_iter()
                            .map(|(id, outcome)| (id.to_string(), outcome))
                            .collect()
                    });
                unreadable_row("token audit row", outcomes, |s| Outcome::parse(s).is_some())
            })
        })
}
