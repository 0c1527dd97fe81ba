//! api-backend: the service that spends HighLevel tokens for the frontend and the jobs.
//!
//! Start at [`app::spawn_app`] (what `serve` and the tests use). Tokens come from oauth-backend through
//! `bridge/`; HighLevel is called through the `highlevel-client` crate (pacing, refusal diagnosis); routes
//! are in `api/`, one file per family; the composite product create is `products/create.rs`; storage is
//! `store/` (one module per table) over `db/`; `doctor.rs` builds the diagnostic report.

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
