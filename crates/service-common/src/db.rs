//! The database: one connection type over SQLite and PostgreSQL, an r2d2 pool, and migrations.
//! Backend differences live here and in the `with_conn!` macro, nowhere else. Each service brings its own
//! schema and its own [`Migrations`] (one folder per backend).

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
use std::time::Duration;

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

/// Runs the same diesel code on whichever backend the connection is (upserts and `returning` need the
/// concrete connection type).
#[macro_export]
macro_rules! with_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::db::DbConn::Sqlite($c) => $body,
            $crate::db::DbConn::Pg($c) => $body,
        }
    };
}

/// `ToSql`/`FromSql` on [`DbConn`]'s backend for a `Text` column type that has them on SQLite and PostgreSQL
/// (`shared_types::text_column_backends!`): what queries run on a `DbConn` need.
#[macro_export]
macro_rules! text_column_multi {
    ($t:ty) => {
        impl diesel::deserialize::FromSql<diesel::sql_types::Text, $crate::db::MultiBackend>
            for $t
        {
            fn from_sql(
                bytes: <$crate::db::MultiBackend as diesel::backend::Backend>::RawValue<'_>,
            ) -> diesel::deserialize::Result<Self> {
                bytes.from_sql::<Self, diesel::sql_types::Text>()
            }
        }
        impl diesel::serialize::ToSql<diesel::sql_types::Text, $crate::db::MultiBackend> for $t {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, $crate::db::MultiBackend>,
            ) -> diesel::serialize::Result {
                out.set_value((diesel::sql_types::Text, self));
                Ok(diesel::serialize::IsNull::No)
            }
        }
    };
}

/// Both: a `Text` column type of the calling crate on SQLite, PostgreSQL and [`DbConn`].
#[macro_export]
macro_rules! text_column {
    ($t:ty, $what:literal) => {
        shared_types::text_column_backends!($t, $what);
        $crate::text_column_multi!($t);
    };
}

text_column_multi!(shared_types::AuthClass);
text_column_multi!(shared_types::InstallationState);

/// A service's embedded migrations, one set per backend.
pub struct Migrations {
    /// `|| embed_migrations!("…/sqlite")`: a function, as diesel consumes the set on each run.
    pub sqlite: fn() -> EmbeddedMigrations,
    pub postgres: fn() -> EmbeddedMigrations,
    /// Any constant, distinct per service: replicas starting together serialise their migrations on this
    /// PostgreSQL advisory lock.
    pub lock_id: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database URL must start with sqlite:// or postgres:// (got {0})")]
    BadUrl(String),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migrations failed: {0}")]
    Migration(String),
    #[error("database task failed: {0}")]
    Task(String),
    /// A stored value this version cannot read (a typed column), with the row it is in.
    #[error("{row} cannot be read: {why}")]
    Corrupt { row: String, why: String },
}

impl DbError {
    /// `e`, naming the row (`row()`) when it is a value that could not be read.
    pub fn naming(e: diesel::result::Error, row: impl FnOnce() -> String) -> DbError {
        match e {
            diesel::result::Error::DeserializationError(why) => DbError::Corrupt {
                row: row(),
                // diesel names the field; what was wrong with its value is the cause beneath.
                why: match why.source() {
                    Some(cause) => format!("{why}: {cause}"),
                    None => why.to_string(),
                },
            },
            other => DbError::Query(other),
        }
    }
}

/// For a read of many rows that failed on a typed column: `what` and the id of the first row whose stored
/// value (`rows`: ids and values read again as text) `readable` refuses.
pub fn unreadable_row(
    what: &str,
    rows: Result<Vec<(String, String)>, diesel::result::Error>,
    readable: impl Fn(&str) -> bool,
) -> String {
    match rows
        .unwrap_or_default()
        .into_iter()
        .find(|(_, value)| !readable(value))
    {
        Some((id, _)) => format!("{what} {id}"),
        None => format!("a {what}"),
    }
}

impl DbError {
    /// The database could not be reached or dropped the connection (restart, failover, network): a 503 the
    /// caller may retry, not a bug. Anything else (a constraint, a bad query) is not.
    pub fn is_unavailable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind as K, Error as E};
        match self {
            DbError::Connect(_) | DbError::Pool(_) => true,
            DbError::Query(E::DatabaseError(K::ClosedConnection | K::UnableToSendCommand, _)) => {
                true
            }
            DbError::Query(E::DatabaseError(_, info)) => {
                let m = info.message();
                [
                    "terminating connection",
                    "server closed the connection",
                    "no connection to the server",
                    "the database system is",
                    "connection refused",
                    "could not receive data",
                    "could not send data",
                ]
                .iter()
                .any(|needle| m.contains(needle))
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The URL diesel wants: `sqlite://data/x.db` → `data/x.db`; Postgres URLs pass unchanged.
fn connection_target(url: &str) -> Result<(Backend, String), DbError> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Ok((Backend::Sqlite, path.to_owned()))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok((Backend::Postgres, url.to_owned()))
    } else {
        Err(DbError::BadUrl(redact_url(url)))
    }
}

/// A URL fit for logs: the password is replaced.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<DbConn, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConn) -> Result<(), diesel::r2d2::Error> {
        if let DbConn::Sqlite(c) = conn {
            // busy_timeout first, so what follows waits for other connections instead of failing. WAL was set
            // once for the file in `Db::connect`; here it is only confirmed.
            c.batch_execute(
                "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            )
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

pub type DbPool = Pool<ConnectionManager<DbConn>>;

#[derive(Clone)]
pub struct Db {
    pool: DbPool,
    pub backend: Backend,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Db {
    /// Connects, creating the SQLite file's folder if needed. The derived `establish` hides why a connection
    /// failed, so one direct connection is tried first to report the real error.
    pub fn connect(url: &str, max_size: u32) -> Result<Db, DbError> {
        let (backend, target) = connection_target(url)?;
        match backend {
            Backend::Sqlite => {
                if let Some(dir) = std::path::Path::new(&target)
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        DbError::Connect(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                let mut first = SqliteConnection::establish(&target)
                    .map_err(|e| DbError::Connect(e.to_string()))?;
                // Switching a new file to WAL needs it alone: do it once, before the pool opens its connections.
                first
                    .batch_execute("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL;")
                    .map_err(|e| DbError::Connect(format!("cannot switch {target} to WAL: {e}")))?;
            }
            Backend::Postgres => {
                PgConnection::establish(&target)
                    .map_err(|e| DbError::Connect(format!("{} ({})", e, redact_url(&target))))?;
            }
        }
        let manager = ConnectionManager::<DbConn>::new(target);
        let pool = Pool::builder()
            .max_size(max_size)
            // A request waits at most this long for a connection: while the database is down, callers get a
            // 503 problem quickly instead of hanging.
            .connection_timeout(Duration::from_secs(5))
            .connection_customizer(Box::new(SqlitePragmas))
            .build(manager)?;
        Ok(Db { pool, backend })
    }

    pub fn conn(&self) -> Result<PooledConnection<ConnectionManager<DbConn>>, DbError> {
        Ok(self.pool.get()?)
    }

    /// `run`, retried while the database is unreachable (a restart, a failover) for up to `within`: for writes
    /// that record what already happened elsewhere (HighLevel acted, a card was charged, a token was read)
    /// and must not be lost to a short outage.
    pub async fn run_until_reachable<T, F>(&self, within: Duration, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: Fn(&mut DbConn) -> Result<T, DbError> + Clone + Send + 'static,
    {
        use backon::Retryable;
        let started = std::time::Instant::now();
        let backoff = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(250))
            .with_max_delay(Duration::from_secs(5))
            .without_max_times();
        (|| self.run(f.clone()))
            .retry(backoff)
            .when(|e| e.is_unavailable() && started.elapsed() < within)
            .notify(|e, wait| tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "database unreachable; retrying a write that must not be lost"))
            .await
    }

    /// Runs blocking database work off the async workers.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }

    /// Applies pending migrations. Safe when several replicas start at once: PostgreSQL serialises them on
    /// an advisory lock; SQLite serialises writers itself, and a replica that lost the race re-reads the
    /// pending list and finds nothing left to do.
    pub fn migrate(&self, m: Migrations) -> Result<Vec<String>, DbError> {
        let mut conn = self.conn()?;
        let lock = m.lock_id;
        match &mut *conn {
            DbConn::Pg(c) => {
                c.batch_execute(&format!("SELECT pg_advisory_lock({lock})"))?;
                let result = c
                    .run_pending_migrations((m.postgres)())
                    .map(|v| v.iter().map(|m| m.to_string()).collect())
                    .map_err(|e| DbError::Migration(e.to_string()));
                c.batch_execute(&format!("SELECT pg_advisory_unlock({lock})"))?;
                result
            }
            DbConn::Sqlite(c) => {
                let mut last = String::new();
                for attempt in 0..5 {
                    match c.run_pending_migrations((m.sqlite)()) {
                        Ok(v) => return Ok(v.iter().map(|m| m.to_string()).collect()),
                        Err(e) => {
                            last = e.to_string();
                            std::thread::sleep(Duration::from_millis(100 * (attempt + 1)));
                        }
                    }
                }
                Err(DbError::Migration(last))
            }
        }
    }

    /// A cheap query, for readiness.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.run(|c| Ok(c.batch_execute("SELECT 1")?)).await
    }
}
