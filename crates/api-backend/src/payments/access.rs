//! Which provider a caller speaks for: HighLevel's queryUrl calls carry the connected api key (compared as a
//! hash, in constant time); the payment page carries a publishable key of the location. Either is accepted
//! only while the app is installed on the location.

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::providers::{self, ProviderRow};
use service_common::crypto::{constant_time_eq, token_hash};

/// The provider the key belongs to, and whether it is the live key.
pub async fn provider_for_api_key(
    state: &AppState,
    api_key: &str,
) -> Result<(ProviderRow, bool), ApiError> {
    let hash = token_hash(api_key);
    let lookup = hash.clone();
    let found = state
        .db
        .run(move |c| providers::by_api_key_hash(c, &lookup))
        .await?;
    match found {
        Some((row, live)) => {
            let stored = if live {
                &row.live_api_key_hash
            } else {
                &row.test_api_key_hash
            };
            if constant_time_eq(stored, &hash) {
                super::installed::check_installed(state, &row).await?;
                return Ok((row, live));
            }
            Err(ApiError::ProviderKeyInvalid)
        }
        None => Err(ApiError::ProviderKeyInvalid),
    }
}

/// The provider of `location` if `publishable_key` is one of its keys, and whether it is the live one.
pub async fn provider_for_publishable_key(
    state: &AppState,
    location: &str,
    publishable_key: &str,
) -> Result<(ProviderRow, bool), ApiError> {
    shared_types::check_id("location id", location).map_err(ApiError::InvalidRequest)?;
    let l = location.to_owned();
    let row = state
        .db
        .run(move |c| providers::get(c, &l))
        .await?
        .ok_or(ApiError::ProviderKeyInvalid)?;
    let live = constant_time_eq(&row.live_publishable_key, publishable_key);
    let test = constant_time_eq(&row.test_publishable_key, publishable_key);
    if !live && !test {
        return Err(ApiError::ProviderKeyInvalid);
    }
    super::installed::check_installed(state, &row).await?;
    Ok((row, live))
}
