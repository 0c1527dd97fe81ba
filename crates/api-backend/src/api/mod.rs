//! HTTP routes of api-backend, one file per route family.

pub mod bodies;
pub mod diagnostics;
pub mod located;
pub mod media;
pub mod ops;
pub mod payments;
pub mod prices;
pub mod products;
pub mod provider;
pub mod proxy;
pub mod sessions;

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::web;
pub use located::{CompanyAdmin, Located, LocationAdmin};

pub type State = web::Data<AppState>;

/// A HighLevel-shaped id from a path.
pub fn id(what: &str, v: &str) -> Result<(), ApiError> {
    highlevel_client::check_id(what, v).map_err(ApiError::InvalidRequest)
}
