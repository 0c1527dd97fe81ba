//! HTTP routes of oauth-backend, one file per concern.

pub mod install;
pub mod installations;
pub mod ops;
pub mod token_access;
pub mod webhook_deliveries;
pub mod webhooks;

use crate::error::AppError;
use crate::state::AppState;
use actix_web::{web, HttpRequest};
use shared_types::ServiceClaims;

pub type State = web::Data<AppState>;

/// The caller's verified service claims.
pub fn service_claims(
    req: &HttpRequest,
    state: &AppState,
) -> Result<std::sync::Arc<ServiceClaims>, AppError> {
    Ok(state
        .auth
        .verify_header(req.headers().get(actix_web::http::header::AUTHORIZATION))?)
}

/// Ids from paths and queries ([`shared_types::check_id`]), refused as `invalid_request`.
pub fn check_id(what: &str, id: &str) -> Result<(), AppError> {
    shared_types::check_id(what, id).map_err(AppError::InvalidRequest)
}
