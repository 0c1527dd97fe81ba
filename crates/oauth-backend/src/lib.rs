//! oauth-backend: the token service of a HighLevel marketplace app.
//!
//! Start at [`app::spawn_app`] (what `serve` and the tests use); the refresh protocol is in `tokens/`,
//! storage in `store/` (one module per table) over `db/`.

pub mod api;
pub mod app;
pub mod audit;
pub mod cli;
pub mod db;
pub mod error;
pub mod forward;
pub mod metrics;
pub mod openapi;
pub mod purge;
pub mod settings;
pub mod state;
pub mod store;
pub mod tokens;
pub mod webhook_signature;

pub use app::{spawn_app, RunningApp};
pub use service_common::{crypto, service_auth, with_conn};
pub use settings::Settings;
