//! api-backend end to end: the real service, a real oauth-backend and highlevel-sim, each on a random port,
//! with SQLite files or PostgreSQL schemas of their own.
#![allow(clippy::unwrap_used)]

mod common;

mod browser;
mod browser_paytr;
mod browser_subscription;
mod cli;
mod drills;
mod frontend;
mod fuzz;
mod incidents;
mod input;
mod media;
mod media_budget;
mod money;
mod pacing;
mod payments;
mod paytr;
mod products;
mod provider;
mod proxy;
mod retention;
mod sessions;
mod shared_budget;
mod storage;
mod subscriptions;
mod takeover;
mod walls;
