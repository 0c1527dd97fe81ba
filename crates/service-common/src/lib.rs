//! What both services need and HighLevel has nothing to do with: the database layer (SQLite and PostgreSQL
//! behind one connection type), the AES-GCM key ring for secrets at rest, service JWTs, logging set-up, and
//! (feature `testing`) the test harness's databases.

pub mod cli;
pub mod crypto;
pub mod db;
pub mod http;
pub mod logging;
pub mod ops;
pub mod server;
pub mod service_auth;
pub mod settings;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use crypto::keyring::{KeyRing, TokenKind};
pub use db::{Db, DbConn, DbError, Migrations};
pub use service_auth::{allows, ServiceAuth, ServiceAuthError};
