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
use actix_web::{web, HttpRequest};
pub use located::{CompanyAdmin, Located, LocationAdmin, ProxyLocated};

pub type State = web::Data<AppState>;

/// The request's `Idempotency-Key`, if it has one that is usable.
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(v) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .ok()
        .filter(|v| !v.is_empty() && v.len() <= 255 && v.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::InvalidRequest(
                "Idempotency-Key must be 1-255 printable ASCII characters".into(),
            )
        })?;
    Ok(Some(v.to_owned()))
}

/// A HighLevel-shaped id from a path.
pub fn id(what: &str, v: &str) -> Result<(), ApiError> {
    shared_types::check_id(what, v).map_err(ApiError::InvalidRequest)
}
