//! A payments provider serves only while the app is installed on its location. After an uninstall
//! (HighLevel's UNINSTALL webhook, or the app's own `DELETE /api/installations/{id}` on oauth-backend), the
//! location's api keys and publishable keys are refused and its provider configuration is forgotten, within
//! PROVIDER_INSTALLED_CHECK_SECS (30 s) of oauth-backend recording it. Only a definitive answer forgets anything: while oauth-backend
//! cannot be asked, payments go on.

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::providers::{self, ProviderRow};
use shared_types::{InstallationState, InstallationStatus};

/// Whether an installation still serves `location` (an installation whose token needs reauthorization is
/// still installed at HighLevel).
fn serves(i: &InstallationStatus, location: &str) -> bool {
    i.state != InstallationState::Uninstalled
        && (i.location_id.as_deref() == Some(location)
            || i.approved_locations.iter().any(|l| l == location))
}

/// `Ok` while the provider's location is installed; after an uninstall the provider is forgotten and the
/// caller gets `provider_key_invalid`.
pub async fn check_installed(state: &AppState, row: &ProviderRow) -> Result<(), ApiError> {
    let location = row.location_id.as_str();
    if state.seen_installed.contains_key(location) {
        return Ok(());
    }
    let by_own = state
        .bridge
        .installation(&row.installation_id)
        .await
        .ok()
        .map(|i| serves(&i, location));
    if by_own == Some(true) {
        state.seen_installed.insert(location.to_owned(), ());
        return Ok(());
    }
    // Its installation no longer serves it (or is gone): another may (a re-install); ask afresh, since what
    // the bridge remembers may be what just changed.
    state.bridge.forget(location);
    match state.bridge.resolve(location, None, None).await {
        Ok(_) => {
            state.seen_installed.insert(location.to_owned(), ());
            Ok(())
        }
        Err(ApiError::LocationNotInstalled { .. }) => {
            let l = location.to_owned();
            state.db.run(move |c| providers::delete(c, &l)).await?;
            tracing::warn!(%location, "the app was uninstalled from this location: its payments provider is forgotten and its keys refused");
            Err(ApiError::ProviderKeyInvalid)
        }
        Err(e) => {
            tracing::warn!(%location, error = %e, "cannot ask oauth-backend whether the location is still installed; serving the payment");
            Ok(())
        }
    }
}
