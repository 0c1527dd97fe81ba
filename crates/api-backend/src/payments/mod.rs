//! The payments custom provider at run time, without HTTP (the routes are in `api::payments`): api keys and
//! who they speak for, HighLevel's record of what is paid, charges, refunds, subscriptions, the gateways, and
//! the payment events reported back to HighLevel.

pub mod access;
pub mod charges;
pub mod checkout;
pub mod events;
pub mod gateway;
pub mod installed;
pub mod keys;
pub mod money;
pub mod paytr;
pub mod paytr_cards;
pub mod paytr_subscriptions;
pub mod record;
pub mod refunds;
pub mod renewals;
pub mod requests;
pub mod subscription_checkout;
pub mod subscriptions;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::providers::ProviderRow;
use service_common::TokenKind;

/// The PayTR gateway of a provider, its merchant credentials unsealed.
pub fn paytr_for(state: &AppState, p: &ProviderRow, live: bool) -> Result<paytr::Paytr, ApiError> {
    let sealed = p.gateway_credentials.as_deref().ok_or_else(|| {
        ApiError::Internal(format!(
            "provider of {} has no PayTR credentials",
            p.location_id
        ))
    })?;
    let keys = state.keys.as_ref().ok_or_else(|| {
        ApiError::Internal(
            "TOKEN_ENCRYPTION_KEYS is not set: PayTR credentials cannot be unsealed".into(),
        )
    })?;
    let json = keys
        .decrypt(
            sealed,
            &format!("provider/{}", p.location_id),
            TokenKind::Secret,
        )
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let creds: paytr::Credentials =
        serde_json::from_str(secrecy::ExposeSecret::expose_secret(&json))
            .map_err(|e| ApiError::Internal(format!("sealed PayTR credentials unreadable: {e}")))?;
    Ok(paytr::Paytr::new(
        state.paytr_http.clone(),
        &state.settings.paytr_api_url,
        creds,
        !live,
    ))
}
