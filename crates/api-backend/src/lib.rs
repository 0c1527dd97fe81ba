//! api-backend: the service that spends HighLevel tokens for the frontend and the jobs.
//!
//! Start at [`app::spawn_app`] (what `serve` and the tests use): `app.rs` wires the routes over the state
//! (`state.rs`), and nothing else imports it. Tokens come from oauth-backend through `bridge/`; HighLevel is
//! called through the `highlevel-client` crate (pacing, refusal diagnosis). Every HTTP route is in `api/`, one
//! file per family (`api/payments/` for the queryUrl, the payment page and PayTR's callback); the payment
//! domain, with no HTTP, is `payments/`; the tenant wall is `api/located.rs`; the composite product create is
//! `products/create.rs`; storage is `store/` (one module per table) over `db/`; `doctor.rs` builds the
//! diagnostic report.

pub mod api;
pub mod app;
pub mod bridge;
pub mod cli;
pub mod db;
pub mod doctor;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod payments;
pub mod products;
pub mod sessions;
pub mod settings;
pub mod state;
pub mod store;
pub mod upload_budget;

pub use app::{spawn_app, RunningApp};
pub use settings::Settings;
