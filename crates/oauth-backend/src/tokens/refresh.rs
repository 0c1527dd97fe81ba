//! Refreshing an installation's token exactly once, across threads and processes (docs/design.md, refresh):
//! single-flight in the process (`single_flight`), then a lease on the row, then HighLevel, then one guarded
//! write.

use super::{row_name, TokenService};
use crate::crypto::keyring::TokenKind;
use crate::error::{AppError, AppResult};
use crate::store::installations::Installation;
use crate::store::tokens::{TokenRow, INSTALLATION_SCOPE};
use crate::store::{self, now_ms};
use backon::Retryable;
use highlevel_client::{Grant, OAuthError};
use shared_types::{InstallationState, TokenAccess};
use std::time::Duration;

/// Attempts against a HighLevel that answers 5xx or times out, before giving up for now.
const UNAVAILABLE_ATTEMPTS: u32 = 3;

impl TokenService {
    /// The installation's own token, renewed if it is short-lived or was rejected.
    pub(super) async fn installation_token(
        &self,
        inst: &Installation,
        rejected_hash: Option<&str>,
        gen: u64,
    ) -> AppResult<TokenAccess> {
        let row = self.token_row(&inst.id, INSTALLATION_SCOPE).await?;
        match row {
            Some(row) if !Self::needs_renewal(&row, rejected_hash) => {
                self.serve_row(inst, &row, None, gen)
            }
            Some(row) => {
                self.refresh_installation(inst, row.token_version, gen)
                    .await
            }
            // Known from a webhook only: no token yet. Reconnect fetches one without the user.
            None => self.refresh_installation(inst, -1, gen).await,
        }
    }

    /// Refreshes unless someone already moved the token past `seen_version`. Used by reads, `/refresh` and
    /// the background refresher alike. `gen`: the cache generation taken before `inst` was read.
    pub async fn refresh_installation(
        &self,
        inst: &Installation,
        seen_version: i64,
        gen: u64,
    ) -> AppResult<TokenAccess> {
        // A suspended account is not asked again before its back-off has passed.
        if inst.state == InstallationState::Suspended {
            let wait_ms = inst.updated_at + self.suspended_retry_ms - now_ms();
            if wait_ms > 0 {
                return Err(AppError::InstallationSuspended {
                    detail: format!(
                        "installation `{}` is suspended: {}",
                        inst.id,
                        inst.last_error
                            .as_deref()
                            .unwrap_or("HighLevel refused the account")
                    ),
                    retry_after_secs: (wait_ms + 999) / 1000,
                });
            }
        }
        let renew = self.refresh_once(inst, seen_version, gen);
        self.flights
            .run(row_name(&inst.id, INSTALLATION_SCOPE), seen_version, renew)
            .await
    }

    /// What one renewal of the installation's token does: takes the row's lease (or finds that another
    /// process renewed it past `seen_version`), asks HighLevel, stores the pair.
    async fn refresh_once(
        &self,
        inst: &Installation,
        seen_version: i64,
        gen: u64,
    ) -> AppResult<TokenAccess> {
        // HighLevel unavailable: keep the old pair (HighLevel may not have used it) and try again after a
        // jittered backoff (400 ms, then 800 ms, each plus up to as much again).
        let backoff = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(400))
            .with_jitter()
            .with_max_times(UNAVAILABLE_ATTEMPTS as usize - 1);
        let attempt = || async {
            let Some(row) = self
                .acquire_lease(&inst.id, INSTALLATION_SCOPE, seen_version)
                .await?
            else {
                // Someone else refreshed while we waited: serve theirs.
                self.metrics.refresh("skipped");
                let row = self.token_row(&inst.id, INSTALLATION_SCOPE).await?;
                return match row {
                    Some(r) if r.access_token_enc.is_some() => self.serve_row(inst, &r, None, gen),
                    _ => Err(AppError::Internal(
                        "token row vanished during refresh".into(),
                    )),
                };
            };
            self.refresh_holding_lease(inst, &row, gen).await
        };
        attempt
            .retry(backoff)
            .when(|e| matches!(e, AppError::HighlevelUnavailable(_)))
            .notify(|e, wait| tracing::warn!(installation = %inst.id, error = %e, backoff_ms = wait.as_millis() as u64, "refresh: HighLevel unavailable, retrying"))
            .await
    }

    async fn refresh_holding_lease(
        &self,
        inst: &Installation,
        row: &TokenRow,
        gen: u64,
    ) -> AppResult<TokenAccess> {
        // The lease we took had lapsed with an owner: that process stopped (kill -9, crash, stall) holding it,
        // maybe after HighLevel had already rotated the pair (docs/design.md, refresh: the crash window). The stored refresh token may be
        // spent, and using a spent one is the reuse HighLevel punishes: reconnect first. If HighLevel refuses the
        // reconnect, the refresh token was probably never used; fall through to it.
        let class = inst.auth_class;
        if row.lease_owner.is_some() && row.lease_until.is_some_and(|until| until < now_ms()) {
            tracing::warn!(installation = %inst.id, "a refresh lease lapsed under another process; reconnecting instead of reusing its refresh token");
            match self.reconnect_grant(inst, class).await {
                Ok(g) => {
                    let answer = self.commit(inst, &g, gen).await?;
                    self.metrics.refresh("reconnected");
                    return Ok(answer);
                }
                Err(e) => {
                    tracing::warn!(installation = %inst.id, error = %e, "reconnect after a lapsed lease failed; trying the refresh token")
                }
            }
        }
        let user_type = class.as_str();
        let grant = match &row.refresh_token_enc {
            Some(enc) => {
                let rt = self.keys.decrypt(
                    enc,
                    &row_name(&inst.id, INSTALLATION_SCOPE),
                    TokenKind::Refresh,
                )?;
                self.hl.refresh(&rt, user_type).await
            }
            None => Err(OAuthError::InvalidGrant {
                status: 0,
                body: "no refresh token stored".into(),
            }),
        };
        match grant {
            Ok(g) => {
                let answer = self.commit(inst, &g, gen).await?;
                self.metrics.refresh("refreshed");
                tracing::info!(installation = %inst.id, "token refreshed");
                Ok(answer)
            }
            Err(OAuthError::InvalidGrant { status, body }) => {
                tracing::warn!(installation = %inst.id, status, %body, "refresh token refused; trying reconnect");
                self.reconnect_holding_lease(
                    inst,
                    class,
                    gen,
                    &format!("refresh token refused ({status}): {body}"),
                )
                .await
            }
            Err(OAuthError::Unavailable(why)) => {
                self.release_lease(&inst.id, INSTALLATION_SCOPE).await?;
                self.metrics.refresh("unavailable");
                Err(AppError::HighlevelUnavailable(why))
            }
            Err(OAuthError::AccountInactive { status, body }) => {
                // The account, not the token: keep the pair, say why, back off, and let a later refresh resume.
                self.release_lease(&inst.id, INSTALLATION_SCOPE).await?;
                self.metrics.refresh("suspended");
                let why = format!("HighLevel refused the account ({status}): {body}");
                let (id, now, why2) = (inst.id.clone(), now_ms(), why.clone());
                self.db
                    .run(move |c| {
                        store::installations::set_state(
                            c,
                            &id,
                            InstallationState::Suspended,
                            Some(&why2),
                            now,
                        )
                    })
                    .await?;
                self.cache.remove_installation(&inst.id);
                tracing::warn!(installation = %inst.id, %why, "installation suspended by HighLevel; tokens kept, refresh retried later");
                Err(AppError::InstallationSuspended {
                    detail: format!("installation `{}` is suspended: {why}", inst.id),
                    retry_after_secs: self.suspended_retry_ms / 1000,
                })
            }
            Err(OAuthError::Refused { status, body }) => {
                self.release_lease(&inst.id, INSTALLATION_SCOPE).await?;
                self.metrics.refresh("refused");
                let (id, now, why) = (
                    inst.id.clone(),
                    now_ms(),
                    format!("refresh refused ({status}): {body}"),
                );
                let why2 = why.clone();
                self.db
                    .run(move |c| store::installations::set_last_error(c, &id, Some(&why2), now))
                    .await?;
                Err(AppError::HighlevelRefused(why))
            }
        }
    }

    /// The refresh token is dead (a racing refresh elsewhere, or a crash after HighLevel answered): get a new
    /// code through `/oauth/reconnect` once. If that fails too, keep the installation as `needs_reauth`.
    async fn reconnect_holding_lease(
        &self,
        inst: &Installation,
        class: shared_types::AuthClass,
        gen: u64,
        why: &str,
    ) -> AppResult<TokenAccess> {
        match self.reconnect_grant(inst, class).await {
            Ok(g) => {
                let answer = self.commit(inst, &g, gen).await?;
                self.metrics.refresh("reconnected");
                tracing::warn!(installation = %inst.id, "installation recovered through reconnect");
                Ok(answer)
            }
            Err(OAuthError::Unavailable(e)) => {
                self.release_lease(&inst.id, INSTALLATION_SCOPE).await?;
                self.metrics.refresh("unavailable");
                Err(AppError::HighlevelUnavailable(format!(
                    "{why}; reconnect: {e}"
                )))
            }
            Err(e) => {
                self.release_lease(&inst.id, INSTALLATION_SCOPE).await?;
                let last_error = format!("{why}; reconnect failed: {e}");
                self.mark_needs_reauth(inst, &last_error).await?;
                self.metrics.refresh("needs_reauth");
                tracing::error!(installation = %inst.id, %last_error, "installation needs reauthorization");
                Err(AppError::ReauthorizationRequired {
                    detail: format!(
                        "installation `{}` needs reauthorization: {last_error}",
                        inst.id
                    ),
                })
            }
        }
    }

    /// A new pair without the user: `/oauth/reconnect`, then the code exchange.
    async fn reconnect_grant(
        &self,
        inst: &Installation,
        class: shared_types::AuthClass,
    ) -> Result<Grant, OAuthError> {
        let (company, location) = match class {
            shared_types::AuthClass::Location => (None, inst.location_id.as_deref()),
            shared_types::AuthClass::Company => (Some(inst.company_id.as_str()), None),
        };
        let code = self.hl.reconnect(company, location).await?;
        self.hl
            .exchange_code(&code, Some(class.as_str()), &self.redirect_uri)
            .await
    }

    /// Stores the new pair under our lease, then (and only then) serves it.
    async fn commit(&self, inst: &Installation, grant: &Grant, gen: u64) -> AppResult<TokenAccess> {
        let sealed = self.seal(&inst.id, INSTALLATION_SCOPE, grant, true);
        let (id, owner, now) = (inst.id.clone(), self.instance_id.clone(), now_ms());
        let row = self
            .db
            .run(move |c| {
                let committed = store::tokens::commit_leased(c, &id, INSTALLATION_SCOPE, &owner, &sealed, now)?;
                if !committed {
                    // Our lease lapsed and was taken over, but this pair is the newest HighLevel issued: storing
                    // it is the only way not to lose the installation.
                    tracing::error!(installation = %id, "refresh lease lost before commit; storing the new pair anyway");
                    store::tokens::store(c, &id, INSTALLATION_SCOPE, &sealed, now)?;
                }
                store::installations::mark_refreshed(c, &id, now)?;
                store::tokens::get(c, &id, INSTALLATION_SCOPE)
            })
            .await?
            .ok_or_else(|| AppError::Internal("token row missing after commit".into()))?;
        self.serve_row(inst, &row, None, gen)
    }
}
