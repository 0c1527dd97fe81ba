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
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    Ok(state.auth.verify(header)?)
}

/// Ids from paths and queries: bounded and printable, so nothing odd reaches the database or the logs.
pub fn check_id(what: &str, id: &str) -> Result<(), AppError> {
    if id.is_empty()
        || id.len() > 128
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(AppError::InvalidRequest(format!(
            "{what} must be 1-128 letters, digits, `-`, `_` or `.`"
        )));
    }
    Ok(())
}
