//! A payments provider serves only while the app is installed on its location. After an uninstall
//! (HighLevel's UNINSTALL webhook, or the app's own `DELETE /api/installations/{id}` on oauth-backend), the
//! location's api keys and publishable keys are refused and its provider configuration is forgotten, within
//! PROVIDER_INSTALLED_CHECK_SECS (30 s) of oauth-backend recording it. Only a definitive answer forgets anything: while oauth-backend
//! cannot be asked, payments go on.

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::payments;
use crate::store::providers::{self, ProviderRow};
use highlevel_client::HlError;
use shared_types::{AuthClass, InstallationState, InstallationStatus};

/// Whether an installation still serves `location` (one whose token needs reauthorization, or whose account is
/// suspended, is still installed at HighLevel). `own` marks the provider's own installation: an agency install
/// with an empty approved list covers every location of its company.
fn serves(i: &InstallationStatus, location: &str, own: bool) -> bool {
    i.state != InstallationState::Uninstalled
        && (i.location_id.as_deref() == Some(location)
            || i.approved_locations.iter().any(|l| l == location)
            || (own && i.auth_class == AuthClass::Company && i.approved_locations.is_empty()))
}

/// `Ok` while the provider's location is installed; after an uninstall its keys are refused and (once no
/// charge of the location is pending, so PayTR's callbacks still settle them) its configuration is
/// forgotten. Only a definitive answer from oauth-backend refuses anything.
pub async fn check_installed(state: &AppState, row: &ProviderRow) -> Result<(), ApiError> {
    let location = row.location_id.as_str();
    if state.seen_installed.contains_key(location) {
        return Ok(());
    }
    let own = match state.bridge.installation(&row.installation_id).await {
        Ok(i) => Some(i),
        Err(ApiError::HighLevel(HlError::Token(p))) if p.code == "installation_not_found" => None,
        Err(e) => {
            tracing::warn!(%location, error = %e, "cannot ask oauth-backend whether the location is still installed; serving the payment");
            return Ok(());
        }
    };
    if own.as_ref().is_some_and(|i| serves(i, location, true)) {
        state.seen_installed.insert(location.to_owned(), ());
        return Ok(());
    }
    // Its installation no longer serves it (or is gone): another may (a re-install, an agency install).
    let all = match state.bridge.installations(None, None).await {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!(%location, error = %e, "cannot list installations; serving the payment");
            return Ok(());
        }
    };
    if all
        .iter()
        .any(|i| serves(i, location, i.id == row.installation_id))
    {
        state.seen_installed.insert(location.to_owned(), ());
        return Ok(());
    }
    let l = location.to_owned();
    let pending = state.db.run(move |c| payments::has_pending(c, &l)).await?;
    if pending {
        tracing::warn!(%location, "the app was uninstalled from this location: its payment keys are refused; its provider is kept until its pending charges settle");
    } else {
        let l = location.to_owned();
        state.db.run(move |c| providers::delete(c, &l)).await?;
        tracing::warn!(%location, "the app was uninstalled from this location: its payments provider is forgotten and its keys refused");
    }
    Err(ApiError::ProviderKeyInvalid)
}
