//! oauth-backend end to end, against highlevel-sim, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

mod cli;
mod corrupt;
mod custody;
mod forwarding;
mod install;
mod marketplace;
mod refresh;
mod replicas;
mod retention;
mod service_auth;
mod suspended;
mod uninstall;
mod webhooks;
