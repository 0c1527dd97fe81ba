//! oauth-backend's tables and migrations over the shared database layer (`service_common::db`).

pub mod schema;

pub use service_common::db::*;

use diesel_migrations::{embed_migrations, EmbeddedMigrations};

const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/oauth-backend/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/oauth-backend/postgres");

pub const MIGRATIONS: Migrations = Migrations {
    sqlite: || SQLITE,
    postgres: || POSTGRES,
    lock_id: 0x6f61_7574_685f_6d67,
};
