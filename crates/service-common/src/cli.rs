//! The commands both binaries have.

use crate::db::{Db, Migrations};
use crate::logging::{init_logging, LogFormat};

/// `migrate`: applies the pending migrations to `DATABASE_URL` (or the service's default) and says how many.
pub fn migrate(
    defaults: &[(&str, &str)],
    migrations: Migrations,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    init_logging(LogFormat::Pretty);
    let url = crate::settings::required("DATABASE_URL", defaults)?;
    let applied = Db::connect(&url, 1)?.migrate(migrations)?;
    println!("{} migration(s) applied", applied.len());
    Ok(())
}
