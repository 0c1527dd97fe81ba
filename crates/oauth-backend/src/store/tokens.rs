//! Token rows and the refresh lease (docs/design.md, refresh): a conditional update takes the lease, a second one guarded
//! by the lease owner stores the new pair and bumps `token_version`. No transaction is held open while
//! HighLevel answers, and it works the same on SQLite and PostgreSQL.

use crate::db::schema::tokens::{self, dsl};
use crate::db::{DbConn, DbError};
use crate::with_conn;
use diesel::prelude::*;

/// `scope_key` of an installation's own token (with its refresh token).
pub const INSTALLATION_SCOPE: &str = "";

#[derive(Debug, Clone, Queryable, Selectable, PartialEq, Eq)]
#[diesel(table_name = tokens)]
pub struct TokenRow {
    pub installation_id: String,
    pub scope_key: String,
    pub access_token_enc: Option<String>,
    pub refresh_token_enc: Option<String>,
    pub access_token_hash: Option<String>,
    pub expires_at: Option<i64>,
    pub token_version: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub updated_at: i64,
}

/// A new token, already encrypted, to store.
#[derive(Clone)]
pub struct NewToken {
    pub access_token_enc: String,
    /// `None` keeps the stored refresh token (location tokens have none).
    pub refresh_token_enc: Option<String>,
    pub access_token_hash: String,
    pub expires_at: i64,
}

pub fn get(
    conn: &mut DbConn,
    installation: &str,
    scope_key: &str,
) -> Result<Option<TokenRow>, DbError> {
    Ok(dsl::tokens
        .find((installation, scope_key))
        .select(TokenRow::as_select())
        .first(conn)
        .optional()?)
}

/// Makes sure a row exists to take a lease on (a location token minted for the first time).
pub fn ensure_row(
    conn: &mut DbConn,
    installation: &str,
    scope_key: &str,
    now: i64,
) -> Result<(), DbError> {
    with_conn!(conn, c => diesel::insert_into(dsl::tokens)
        .values((dsl::installation_id.eq(installation), dsl::scope_key.eq(scope_key), dsl::updated_at.eq(now)))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(())
}

/// Stores a pair unconditionally (a fresh install or a reconnect is authoritative): bumps the version and
/// clears any lease.
pub fn store(
    conn: &mut DbConn,
    installation: &str,
    scope_key: &str,
    t: &NewToken,
    now: i64,
) -> Result<i64, DbError> {
    conn.transaction(|conn| {
        ensure_row(conn, installation, scope_key, now)?;
        write(conn, installation, scope_key, None, t, now)?;
        Ok(get(conn, installation, scope_key)?
            .map(|r| r.token_version)
            .unwrap_or(0))
    })
}

/// Writes a new token, bumps the version and clears the lease, in one transaction; with `owner`, only if that
/// owner still holds the lease. `true` if the row was written.
fn write(
    conn: &mut DbConn,
    installation: &str,
    scope_key: &str,
    owner: Option<&str>,
    t: &NewToken,
    now: i64,
) -> Result<bool, DbError> {
    conn.transaction(|conn| {
        // Without an owner the guard is `OR TRUE`: one statement either way.
        let guard = dsl::lease_owner
            .eq(owner.unwrap_or_default().to_owned())
            .or(owner.is_none().into_sql::<diesel::sql_types::Bool>());
        let n = diesel::update(dsl::tokens.find((installation, scope_key)).filter(guard))
            .set((
                dsl::access_token_enc.eq(&t.access_token_enc),
                dsl::access_token_hash.eq(&t.access_token_hash),
                dsl::expires_at.eq(t.expires_at),
                dsl::token_version.eq(dsl::token_version + 1),
                dsl::lease_owner.eq(None::<String>),
                dsl::lease_until.eq(None::<i64>),
                dsl::updated_at.eq(now),
            ))
            .execute(conn)?;
        if let (1, Some(r)) = (n, &t.refresh_token_enc) {
            diesel::update(dsl::tokens.find((installation, scope_key)))
                .set(dsl::refresh_token_enc.eq(r))
                .execute(conn)?;
        }
        Ok(n == 1)
    })
}

/// Takes the refresh lease if nobody holds a live one and the version is still `version`.
pub fn try_lease(
    conn: &mut DbConn,
    installation: &str,
    scope_key: &str,
    version: i64,
    owner: &str,
    until: i64,
    now: i64,
) -> Result<bool, DbError> {
    let n = diesel::update(
        dsl::tokens
            .find((installation, scope_key))
            .filter(dsl::token_version.eq(version))
            .filter(dsl::lease_until.is_null().or(dsl::lease_until.lt(now))),
    )
    .set((dsl::lease_owner.eq(owner), dsl::lease_until.eq(until)))
    .execute(conn)?;
    Ok(n == 1)
}

/// Stores the new pair, bumps the version and clears the lease, guarded by the lease owner, in one transaction.
/// `false`: the lease was lost (it lapsed and someone else took it).
pub fn commit_leased(
    conn: &mut DbConn,
    installation: &str,
    scope_key: &str,
    owner: &str,
    t: &NewToken,
    now: i64,
) -> Result<bool, DbError> {
    write(conn, installation, scope_key, Some(owner), t, now)
}

pub fn release_lease(
    conn: &mut DbConn,
    installation: &str,
    scope_key: &str,
    owner: &str,
) -> Result<(), DbError> {
    diesel::update(
        dsl::tokens
            .find((installation, scope_key))
            .filter(dsl::lease_owner.eq(owner)),
    )
    .set((
        dsl::lease_owner.eq(None::<String>),
        dsl::lease_until.eq(None::<i64>),
    ))
    .execute(conn)?;
    Ok(())
}

/// Destroys every token of an installation (uninstall).
pub fn delete_all(conn: &mut DbConn, installation: &str) -> Result<usize, DbError> {
    Ok(diesel::delete(dsl::tokens.filter(dsl::installation_id.eq(installation))).execute(conn)?)
}

pub fn delete_one(
    conn: &mut DbConn,
    installation: &str,
    scope_key: &str,
) -> Result<usize, DbError> {
    Ok(diesel::delete(dsl::tokens.find((installation, scope_key))).execute(conn)?)
}

/// Installation tokens to renew now: less than the margin left, and less than half of their own lifetime left
/// (a token living shorter than the margin is renewed once per lifetime, not on every pass), of active
/// installations, and not being renewed right now by another replica. Soonest first.
pub fn due_for_refresh(
    conn: &mut DbConn,
    now: i64,
    margin_ms: i64,
    limit: i64,
) -> Result<Vec<(String, i64)>, DbError> {
    due_for_refresh_with(conn, now, margin_ms, limit, 300_000)
}

/// As `due_for_refresh`; `suspended` installations are due again once `suspended_retry_ms` has passed since
/// HighLevel last refused their account.
pub fn due_for_refresh_with(
    conn: &mut DbConn,
    now: i64,
    margin_ms: i64,
    limit: i64,
    suspended_retry_ms: i64,
) -> Result<Vec<(String, i64)>, DbError> {
    use crate::db::schema::installations::dsl as i;
    let candidates: Vec<(String, i64, Option<i64>, i64)> = dsl::tokens
        .inner_join(crate::db::schema::installations::table)
        .filter(dsl::scope_key.eq(INSTALLATION_SCOPE))
        .filter(dsl::refresh_token_enc.is_not_null())
        .filter(dsl::expires_at.lt(now + margin_ms))
        .filter(i::state.eq(shared_types::InstallationState::Active))
        .filter(dsl::lease_until.is_null().or(dsl::lease_until.lt(now)))
        .select((
            dsl::installation_id,
            dsl::token_version,
            dsl::expires_at,
            dsl::updated_at,
        ))
        .order(dsl::expires_at.asc())
        .limit(limit * 4)
        .load(conn)?;
    // Suspended installations are tried again after their back-off whatever their token's expiry: a refresh
    // that succeeds is how they resume.
    let suspended: Vec<(String, i64)> = dsl::tokens
        .inner_join(crate::db::schema::installations::table)
        .filter(dsl::scope_key.eq(INSTALLATION_SCOPE))
        .filter(dsl::refresh_token_enc.is_not_null())
        .filter(i::state.eq(shared_types::InstallationState::Suspended))
        .filter(i::updated_at.lt(now - suspended_retry_ms))
        .filter(dsl::lease_until.is_null().or(dsl::lease_until.lt(now)))
        .select((dsl::installation_id, dsl::token_version))
        .order(i::updated_at.asc())
        .limit(limit)
        .load(conn)?;
    Ok(suspended
        .into_iter()
        .chain(
            candidates
                .into_iter()
                .filter(|(_, _, expires_at, stored_at)| {
                    let expires_at = expires_at.unwrap_or(0);
                    let lifetime = (expires_at - stored_at).max(0);
                    expires_at - now < margin_ms.min(lifetime / 2)
                })
                .map(|(id, version, _, _)| (id, version)),
        )
        .take(limit as usize)
        .collect())
}

pub fn all(conn: &mut DbConn) -> Result<Vec<TokenRow>, DbError> {
    Ok(dsl::tokens.select(TokenRow::as_select()).load(conn)?)
}

/// Re-encrypted ciphertexts for one row, written only if the row did not change meanwhile.
pub fn rewrap(
    conn: &mut DbConn,
    row: &TokenRow,
    access_enc: Option<String>,
    refresh_enc: Option<String>,
) -> Result<bool, DbError> {
    let n = diesel::update(
        dsl::tokens
            .find((&row.installation_id, &row.scope_key))
            .filter(dsl::token_version.eq(row.token_version)),
    )
    .set((
        dsl::access_token_enc.eq(access_enc),
        dsl::refresh_token_enc.eq(refresh_enc),
    ))
    .execute(conn)?;
    Ok(n == 1)
}
