use crate::db::schema::installations::{self, dsl};
use crate::db::{DbConn, DbError};
use crate::with_conn;
use diesel::prelude::*;
use shared_types::{AuthClass, InstallationState, InstallationStatus};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq, Eq)]
#[diesel(table_name = installations)]
pub struct Installation {
    pub id: String,
    pub install_key: String,
    pub auth_class: AuthClass,
    pub company_id: String,
    pub location_id: Option<String>,
    pub app_id: Option<String>,
    pub user_id: Option<String>,
    pub scopes: String,
    pub is_bulk: bool,
    pub approved_locations: String,
    pub state: InstallationState,
    pub last_refresh_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The paid app's plan (`planId` of INSTALL, `newPlanId` of PLAN_CHANGE).
    pub plan_id: Option<String>,
    /// HighLevel's time of the event that set `plan_id`.
    pub plan_changed_at: Option<i64>,
}

/// A stored installation value this version cannot read. The row is refused rather than guessed at: an
/// unknown `state` is not `active`, an unreadable `approved_locations` is not "every location" (fail closed).
#[derive(Debug, Clone, thiserror::Error)]
#[error("installation `{id}` is corrupt: its {field} `{value}` {why}")]
pub struct CorruptRow {
    pub id: String,
    pub field: &'static str,
    /// The stored value, cut to 80 characters (never a secret: states, classes and location ids).
    pub value: String,
    pub why: &'static str,
}

impl CorruptRow {
    fn new(id: &str, field: &'static str, value: &str, why: &'static str) -> CorruptRow {
        CorruptRow {
            id: id.to_owned(),
            field,
            value: value.chars().take(80).collect(),
            why,
        }
    }
}

/// Inside `Db::run` closures a corrupt row travels as a deserialization error; `AppError` unwraps it again.
impl From<CorruptRow> for DbError {
    fn from(e: CorruptRow) -> DbError {
        DbError::Query(diesel::result::Error::DeserializationError(Box::new(e)))
    }
}

impl Installation {
    pub fn scope_list(&self) -> Vec<String> {
        self.scopes.split_whitespace().map(str::to_owned).collect()
    }

    /// The approved locations (a JSON array of ids). An empty list means "every location of the company"
    /// (an agency install that listed none), so anything unreadable is an error, never an empty list.
    pub fn approved(&self) -> Result<Vec<String>, CorruptRow> {
        serde_json::from_str(&self.approved_locations).map_err(|_| {
            CorruptRow::new(
                &self.id,
                "approved_locations",
                &self.approved_locations,
                "is not a JSON array of location ids",
            )
        })
    }

    pub fn status(&self, expires_at: Option<i64>) -> Result<InstallationStatus, CorruptRow> {
        let ts = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
        Ok(InstallationStatus {
            id: self.id.clone(),
            state: self.state,
            auth_class: self.auth_class,
            company_id: self.company_id.clone(),
            location_id: self.location_id.clone(),
            app_id: self.app_id.clone(),
            scopes: self.scope_list(),
            is_bulk: self.is_bulk,
            approved_locations: self.approved()?,
            expires_at: expires_at.map(ts),
            last_refresh_at: self.last_refresh_at.map(ts),
            last_error: self.last_error.clone(),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            plan_id: self.plan_id.clone(),
            plan_changed_at: self.plan_changed_at.map(ts),
        })
    }
}

/// The key an installation is unique by: installing the same company or location again updates it.
pub fn install_key(class: AuthClass, company_id: &str, location_id: Option<&str>) -> String {
    match (class, location_id) {
        (AuthClass::Location, Some(l)) => format!("Location:{l}"),
        _ => format!("Company:{company_id}"),
    }
}

/// What an install (OAuth callback or INSTALL webhook) tells us about an installation.
#[derive(Debug, Clone)]
pub struct InstallFacts {
    pub auth_class: AuthClass,
    pub company_id: String,
    pub location_id: Option<String>,
    pub app_id: Option<String>,
    pub user_id: Option<String>,
    /// `None`: keep what is stored (a webhook does not carry scopes).
    pub scopes: Option<String>,
    pub is_bulk: bool,
    pub approved_locations: Vec<String>,
}

/// A load failed on a typed column (`auth_class`, `state`) this version cannot read: the error names the row,
/// found by reading those columns as text.
fn name_corrupt(conn: &mut DbConn, e: diesel::result::Error) -> DbError {
    if !matches!(e, diesel::result::Error::DeserializationError(_)) {
        return e.into();
    }
    let rows = dsl::installations
        .select((dsl::id, dsl::auth_class, dsl::state))
        .load::<(String, String, String)>(conn);
    let corrupt = rows.ok().and_then(|rows| {
        rows.iter().find_map(|(id, class, state)| {
            if AuthClass::parse(class).is_none() {
                Some(CorruptRow::new(
                    id,
                    "auth_class",
                    class,
                    "is neither Company nor Location",
                ))
            } else if InstallationState::parse(state).is_none() {
                Some(CorruptRow::new(
                    id,
                    "state",
                    state,
                    "is not one of active, suspended, needs_reauth, uninstalled",
                ))
            } else {
                None
            }
        })
    });
    corrupt.map(DbError::from).unwrap_or_else(|| e.into())
}

pub fn find(conn: &mut DbConn, id: &str) -> Result<Option<Installation>, DbError> {
    dsl::installations
        .find(id)
        .select(Installation::as_select())
        .first(conn)
        .optional()
        .map_err(|e| name_corrupt(conn, e))
}

pub fn find_by_key(conn: &mut DbConn, key: &str) -> Result<Option<Installation>, DbError> {
    dsl::installations
        .filter(dsl::install_key.eq(key))
        .select(Installation::as_select())
        .first(conn)
        .optional()
        .map_err(|e| name_corrupt(conn, e))
}

pub fn list(
    conn: &mut DbConn,
    company_id: Option<&str>,
    location_id: Option<&str>,
) -> Result<Vec<Installation>, DbError> {
    let mut q = dsl::installations
        .select(Installation::as_select())
        .order(dsl::created_at.asc())
        .into_boxed();
    if let Some(c) = company_id {
        q = q.filter(dsl::company_id.eq(c.to_owned()));
    }
    if let Some(l) = location_id {
        q = q.filter(dsl::location_id.eq(l.to_owned()));
    }
    q.load(conn).map_err(|e| name_corrupt(conn, e))
}

/// Creates the installation, or updates the one with the same company / location. Re-installing revives an
/// uninstalled or `needs_reauth` installation. Approved locations accumulate (bulk installs arrive as several
/// webhooks) unless the grant lists them all.
pub fn upsert(
    conn: &mut DbConn,
    facts: &InstallFacts,
    new_id: &str,
    now: i64,
) -> Result<Installation, DbError> {
    let key = install_key(
        facts.auth_class,
        &facts.company_id,
        facts.location_id.as_deref(),
    );
    conn.transaction(|conn| {
        // Write first: on SQLite a transaction that reads and then writes cannot wait for another writer
        // (it fails at once with SQLITE_BUSY); one that starts with a write takes the lock up front and waits.
        let locked = diesel::update(dsl::installations.filter(dsl::install_key.eq(&key)))
            .set(dsl::updated_at.eq(now))
            .execute(conn)?;
        if locked == 0 && find_by_key(conn, &key)?.is_none() {
            let row = Installation {
                id: new_id.to_owned(),
                install_key: key.clone(),
                auth_class: facts.auth_class,
                company_id: facts.company_id.clone(),
                location_id: facts.location_id.clone(),
                app_id: facts.app_id.clone(),
                user_id: facts.user_id.clone(),
                scopes: facts.scopes.clone().unwrap_or_default(),
                is_bulk: facts.is_bulk,
                approved_locations: serde_json::to_string(&facts.approved_locations)
                    .unwrap_or_else(|_| "[]".into()),
                state: InstallationState::Active,
                last_refresh_at: None,
                last_error: None,
                created_at: now,
                updated_at: now,
                plan_id: None,
                plan_changed_at: None,
            };
            // A concurrent first install of the same key (PostgreSQL) inserts nothing here and is merged below.
            let inserted = with_conn!(conn, c => diesel::insert_into(dsl::installations)
                .values(&row)
                .on_conflict(dsl::install_key)
                .do_nothing()
                .execute(c))?;
            if inserted == 1 {
                return find_by_key(conn, &key)?
                    .ok_or(DbError::Query(diesel::result::Error::NotFound));
            }
        }
        if locked == 0 {
            // Another install committed the row after our first update (PostgreSQL): lock it before reading
            // it, so no update is lost.
            diesel::update(dsl::installations.filter(dsl::install_key.eq(&key)))
                .set(dsl::updated_at.eq(now))
                .execute(conn)?;
        }
        let old =
            find_by_key(conn, &key)?.ok_or(DbError::Query(diesel::result::Error::NotFound))?;
        let mut approved = old.approved()?;
        for l in &facts.approved_locations {
            if !approved.contains(l) {
                approved.push(l.clone());
            }
        }
        diesel::update(dsl::installations.find(&old.id))
            .set((
                dsl::app_id.eq(facts.app_id.clone().or(old.app_id.clone())),
                dsl::user_id.eq(facts.user_id.clone().or(old.user_id.clone())),
                dsl::scopes.eq(facts.scopes.clone().unwrap_or(old.scopes.clone())),
                dsl::is_bulk.eq(facts.is_bulk || old.is_bulk),
                dsl::approved_locations
                    .eq(serde_json::to_string(&approved).unwrap_or_else(|_| "[]".into())),
                dsl::state.eq(InstallationState::Active),
                dsl::last_error.eq(None::<String>),
                dsl::updated_at.eq(now),
            ))
            .execute(conn)?;
        find_by_key(conn, &key)?.ok_or(DbError::Query(diesel::result::Error::NotFound))
    })
}

/// Records `plan_id` as the installation's plan as of `at` (HighLevel's time of the event that says so), unless
/// an event of a later time has set it already: HighLevel does not promise to deliver events in order. Whether it
/// was recorded.
pub fn set_plan(
    conn: &mut DbConn,
    id: &str,
    plan_id: &str,
    at: i64,
    now: i64,
) -> Result<bool, DbError> {
    let changed = diesel::update(
        dsl::installations.find(id).filter(
            dsl::plan_changed_at
                .is_null()
                .or(dsl::plan_changed_at.le(at)),
        ),
    )
    .set((
        dsl::plan_id.eq(plan_id),
        dsl::plan_changed_at.eq(at),
        dsl::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

pub fn set_state(
    conn: &mut DbConn,
    id: &str,
    state: InstallationState,
    last_error: Option<&str>,
    now: i64,
) -> Result<(), DbError> {
    diesel::update(dsl::installations.find(id))
        .set((
            dsl::state.eq(state),
            dsl::last_error.eq(last_error),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records why the last attempt failed without changing the state.
pub fn set_last_error(
    conn: &mut DbConn,
    id: &str,
    last_error: Option<&str>,
    now: i64,
) -> Result<(), DbError> {
    diesel::update(dsl::installations.find(id))
        .set((dsl::last_error.eq(last_error), dsl::updated_at.eq(now)))
        .execute(conn)?;
    Ok(())
}

pub fn mark_refreshed(conn: &mut DbConn, id: &str, now: i64) -> Result<(), DbError> {
    diesel::update(dsl::installations.find(id))
        .set((
            dsl::last_refresh_at.eq(now),
            dsl::state.eq(InstallationState::Active),
            dsl::last_error.eq(None::<String>),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn set_approved(
    conn: &mut DbConn,
    id: &str,
    approved: &[String],
    now: i64,
) -> Result<(), DbError> {
    diesel::update(dsl::installations.find(id))
        .set((
            dsl::approved_locations
                .eq(serde_json::to_string(approved).unwrap_or_else(|_| "[]".into())),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Agency-level (Company) installations whose approved locations include `location_id`, any state.
pub fn companies_with_location(
    conn: &mut DbConn,
    location_id: &str,
) -> Result<Vec<Installation>, DbError> {
    // The list is JSON text: narrow with LIKE on the quoted id, then check exactly.
    let quoted = serde_json::to_string(location_id).unwrap_or_default();
    let pattern = format!(
        "%{}%",
        quoted
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let rows: Vec<Installation> = dsl::installations
        .filter(dsl::auth_class.eq(AuthClass::Company))
        .filter(dsl::approved_locations.like(pattern).escape('\\'))
        .select(Installation::as_select())
        .load(conn)
        .map_err(|e| name_corrupt(conn, e))?;
    Ok(rows
        .into_iter()
        .filter(|i| {
            i.approved()
                .is_ok_and(|a| a.iter().any(|l| l == location_id))
        })
        .collect())
}

/// Active agency-level installations, oldest first, at most `limit`.
pub fn active_companies(conn: &mut DbConn, limit: i64) -> Result<Vec<Installation>, DbError> {
    dsl::installations
        .filter(dsl::auth_class.eq(AuthClass::Company))
        .filter(dsl::state.eq(InstallationState::Active))
        .order(dsl::created_at.asc())
        .limit(limit)
        .select(Installation::as_select())
        .load(conn)
        .map_err(|e| name_corrupt(conn, e))
}

pub fn count(conn: &mut DbConn) -> Result<i64, DbError> {
    Ok(dsl::installations.count().get_result(conn)?)
}
