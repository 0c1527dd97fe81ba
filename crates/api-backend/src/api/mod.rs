//! HTTP routes of api-backend, one file per route family.

pub mod bodies;
pub mod diagnostics;
pub mod media;
pub mod ops;
pub mod prices;
pub mod products;
pub mod provider;
pub mod sessions;

use crate::app::AppState;
use crate::bridge::Tokens;
use crate::error::ApiError;
use crate::sessions::{authorize_location, Caller};
use actix_web::{web, HttpRequest};

pub type State = web::Data<AppState>;

/// The caller, checked for the location in the path, and the tokens to act on it with (always a Location
/// token: minted from the Company token when the install is agency-level).
pub async fn located(
    req: &HttpRequest,
    state: &AppState,
    location: &str,
) -> Result<(Caller, Tokens), ApiError> {
    let caller = caller(req, state)?;
    let resolved = authorize_location(&state.bridge, &caller, location).await?;
    Ok((
        caller,
        Tokens {
            bridge: state.bridge.clone(),
            installation: resolved.installation_id,
            location: Some(location.to_owned()),
        },
    ))
}

pub fn caller(req: &HttpRequest, state: &AppState) -> Result<Caller, ApiError> {
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    state.sessions.caller(header)
}

/// A HighLevel-shaped id from a path.
pub fn id(what: &str, v: &str) -> Result<(), ApiError> {
    highlevel_client::check_id(what, v).map_err(ApiError::InvalidRequest)
}
