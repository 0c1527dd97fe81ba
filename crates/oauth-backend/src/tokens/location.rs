//! Location tokens minted from a Company token (`/oauth/locationToken`): no refresh token, so they are minted
//! again when within a minute of expiry. Single-flight per (installation, location), and the same lease as
//! installation tokens across processes.

use super::TokenService;
use crate::crypto::token_hash;
use crate::error::{AppError, AppResult};
use crate::store::installations::Installation;
use crate::store::{self, now_ms};
use highlevel_client::{Grant, OAuthError};
use secrecy::ExposeSecret;
use shared_types::TokenAccess;

impl TokenService {
    pub(super) async fn location_token(
        &self,
        inst: &Installation,
        location: &str,
        rejected_hash: Option<&str>,
        gen: u64,
    ) -> AppResult<TokenAccess> {
        let row = self.token_row(&inst.id, location).await?;
        if let Some(row) = &row {
            if !Self::needs_renewal(row, rejected_hash) {
                return self.serve_row(inst, row, Some(location), gen);
            }
        }
        let seen = row.map_or(-1, |r| r.token_version);
        let mint = self.mint_once(inst, location, seen, gen);
        self.flights
            .run(super::row_name(&inst.id, location), seen, mint)
            .await
    }

    /// What one minting of a Location token does: takes the row's lease (or finds that another process minted
    /// past `seen`), asks HighLevel, stores the token.
    async fn mint_once(
        &self,
        inst: &Installation,
        location: &str,
        seen: i64,
        gen: u64,
    ) -> AppResult<TokenAccess> {
        if self
            .acquire_lease(&inst.id, location, seen)
            .await?
            .is_none()
        {
            let row = self.token_row(&inst.id, location).await?;
            return match row {
                Some(r) => self.serve_row(inst, &r, Some(location), gen),
                None => Err(AppError::Internal("location token row vanished".into())),
            };
        };
        let result = self.mint_holding_lease(inst, location, gen).await;
        match result {
            Ok(grant) => self.commit_location(inst, location, &grant, gen).await,
            Err(e) => {
                self.release_lease(&inst.id, location).await?;
                Err(e)
            }
        }
    }

    /// Asks HighLevel for a Location token with the Company token; if HighLevel rejects the Company token,
    /// renews it once and asks again.
    async fn mint_holding_lease(
        &self,
        inst: &Installation,
        location: &str,
        gen: u64,
    ) -> AppResult<Grant> {
        let company = self.installation_token(inst, None, gen).await?;
        let mut token = super::secret(&company.access_token);
        for attempt in 0..2 {
            match self
                .hl
                .location_token(&token, &inst.company_id, location)
                .await
            {
                Ok(g) => {
                    self.metrics.location_minted();
                    return Ok(g);
                }
                Err(OAuthError::Refused { status: 401, body }) if attempt == 0 => {
                    tracing::warn!(installation = %inst.id, %body, "Company token rejected while minting; renewing it");
                    let renewed = self
                        .installation_token(inst, Some(&token_hash(token.expose_secret())), gen)
                        .await?;
                    token = super::secret(&renewed.access_token);
                }
                Err(OAuthError::Refused { status, body })
                | Err(OAuthError::InvalidGrant { status, body }) => {
                    return Err(AppError::LocationNotInInstallation {
                        detail: format!(
                            "HighLevel refused a Location token for `{location}` on installation `{}` ({status}): {body}",
                            inst.id
                        ),
                        fix: "Install the app on this location from the agency view, and make sure the install granted `oauth.write`.".into(),
                    });
                }
                Err(OAuthError::Unavailable(why)) => {
                    return Err(AppError::HighlevelUnavailable(why))
                }
                Err(OAuthError::AccountInactive { status, body }) => {
                    return Err(AppError::InstallationSuspended {
                        detail: format!(
                            "HighLevel refused a Location token for `{location}` on installation `{}`: the account is not active ({status}): {body}",
                            inst.id
                        ),
                        retry_after_secs: self.suspended_retry_ms / 1000,
                    })
                }
            }
        }
        Err(AppError::HighlevelUnavailable(
            "location token could not be minted".into(),
        ))
    }

    async fn commit_location(
        &self,
        inst: &Installation,
        location: &str,
        grant: &Grant,
        gen: u64,
    ) -> AppResult<TokenAccess> {
        let sealed = self.seal(&inst.id, location, grant, false);
        let (id, l, owner, now) = (
            inst.id.clone(),
            location.to_owned(),
            self.instance_id.clone(),
            now_ms(),
        );
        let row = self
            .db
            .run(move |c| {
                if !store::tokens::commit_leased(c, &id, &l, &owner, &sealed, now)? {
                    store::tokens::store(c, &id, &l, &sealed, now)?;
                }
                store::tokens::get(c, &id, &l)
            })
            .await?
            .ok_or_else(|| AppError::Internal("location token row missing after commit".into()))?;
        self.serve_row(inst, &row, Some(location), gen)
    }
}
