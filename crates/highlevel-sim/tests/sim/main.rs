//! The simulator, driven over HTTP as a HighLevel client would drive HighLevel.
#![allow(clippy::unwrap_used)]

mod authorization;
mod common;
mod control;
mod generic;
mod marketplace;
mod oauth;
mod resources;
