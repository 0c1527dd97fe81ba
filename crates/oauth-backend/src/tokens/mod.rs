//! Token custody: serving tokens (cache first), refreshing installation tokens exactly once, and minting
//! Location tokens from Company tokens. See docs/design.md, refresh for the protocol and its reasons.

pub mod cache;
mod location;
mod refresh;
pub mod refresher;
pub mod single_flight;
pub mod sync;

use crate::crypto::keyring::{KeyRing, TokenKind};
use crate::crypto::{constant_time_eq, random_id, token_hash};
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::metrics::Metrics;
use crate::store::installations::Installation;
use crate::store::tokens::{NewToken, TokenRow, INSTALLATION_SCOPE};
use crate::store::{self, now_ms};
use cache::{Cached, TokenCache};
use highlevel_client::{Grant, OAuthClient};
use secrecy::{ExposeSecret, SecretString};
use shared_types::{AuthClass, InstallationState, TokenAccess};
use single_flight::SingleFlight;
use std::sync::Arc;

/// A served token has at least this much life left.
pub const MIN_LIFE_MS: i64 = 60_000;
/// How long a refresh lease is held at most; a holder that died releases it by letting it lapse.
pub const LEASE_MS: i64 = 30_000;

pub struct TokenService {
    pub db: Db,
    pub keys: KeyRing,
    pub hl: OAuthClient,
    pub cache: TokenCache,
    flights: SingleFlight,
    pub metrics: Arc<Metrics>,
    /// This process's name in refresh leases.
    pub instance_id: String,
    pub redirect_uri: String,
    /// The marketplace app id (`/oauth/installedLocations` wants it).
    pub app_id: String,
    /// How long a `suspended` installation waits between refresh attempts.
    pub suspended_retry_ms: i64,
    /// Locations HighLevel did not list for an agency install, per (installation, location): remembered for
    /// `ABSENT_TTL` so repeated requests for them cost no `/oauth/installedLocations` call each.
    pub absent: moka::sync::Cache<(String, String), ()>,
}

/// How long a location HighLevel did not list for an agency install is remembered as absent.
pub const ABSENT_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// At most this many absent (installation, location) pairs are remembered.
pub const ABSENT_CAPACITY: u64 = 100_000;

pub fn absent_cache(ttl: std::time::Duration) -> moka::sync::Cache<(String, String), ()> {
    moka::sync::Cache::builder()
        .max_capacity(ABSENT_CAPACITY)
        .time_to_live(ttl)
        .build()
}

/// The row name a ciphertext is bound to (AES-GCM associated data).
fn row_name(installation: &str, scope_key: &str) -> String {
    format!("{installation}/{scope_key}")
}

impl TokenService {
    pub fn new(
        db: Db,
        keys: KeyRing,
        hl: OAuthClient,
        metrics: Arc<Metrics>,
        redirect_uri: String,
        app_id: String,
    ) -> Self {
        TokenService {
            db,
            keys,
            hl,
            cache: TokenCache::default(),
            flights: SingleFlight::default(),
            metrics,
            instance_id: random_id("oauth-"),
            redirect_uri,
            app_id,
            suspended_retry_ms: 300_000,
            absent: absent_cache(ABSENT_TTL),
        }
    }

    /// The hot path: a cached token with enough life left, or `None`. Memory only: an uninstall or a
    /// `needs_reauth` anywhere removes the entry through the change feed (`sync`); while the feed cannot be
    /// read for longer than its staleness bound, nothing is served from memory.
    /// `now`: epoch ms, read once by the caller.
    pub fn cached(
        &self,
        installation: &str,
        location: Option<&str>,
        now: i64,
    ) -> Option<cache::Hit> {
        if !self.cache.is_fresh(now) {
            return None;
        }
        let hit = self
            .cache
            .hit(installation, location.unwrap_or(INSTALLATION_SCOPE))?;
        (hit.expires_at_ms - now >= MIN_LIFE_MS).then_some(hit)
    }

    /// A token for the installation (and location): from the database, refreshed or minted when needed.
    pub async fn access(
        &self,
        installation: &str,
        location: Option<&str>,
    ) -> AppResult<TokenAccess> {
        self.renewed(installation, location, None).await
    }

    /// `POST …/refresh`: renew only if `rejected` is still the current token; either way answer the current one.
    pub async fn refresh_rejected(
        &self,
        installation: &str,
        location: Option<&str>,
        rejected: &str,
    ) -> AppResult<TokenAccess> {
        self.renewed(installation, location, Some(&token_hash(rejected)))
            .await
    }

    async fn renewed(
        &self,
        installation: &str,
        location: Option<&str>,
        rejected_hash: Option<&str>,
    ) -> AppResult<TokenAccess> {
        // Before anything is read: what this read loads is cached only if no change lands meanwhile.
        let gen = self.cache.generation(installation);
        let mut inst = self.usable_installation(installation).await?;
        if let Some(l) = location {
            inst = self.learn_added_location(inst, l, gen).await?;
        }
        match self.scope_for(&inst, location)? {
            Scope::Installation => self.installation_token(&inst, rejected_hash, gen).await,
            Scope::Location(l) => self.location_token(&inst, &l, rejected_hash, gen).await,
        }
    }

    /// The installation, if it exists and may be served.
    pub async fn usable_installation(&self, id: &str) -> AppResult<Installation> {
        let owned = id.to_owned();
        let inst = self
            .db
            .run(move |c| store::installations::find(c, &owned))
            .await?
            .ok_or_else(|| AppError::InstallationNotFound(id.to_owned()))?;
        match inst.state {
            // A suspended installation keeps its pair: its token is served while it lasts, and refreshes are
            // retried (no more often than `suspended_retry_ms`) until HighLevel takes one again.
            InstallationState::Active | InstallationState::Suspended => Ok(inst),
            InstallationState::Uninstalled => {
                self.cache.remove_installation(id);
                Err(AppError::InstallationUninstalled(id.to_owned()))
            }
            InstallationState::NeedsReauth => {
                self.cache.remove_installation(id);
                Err(AppError::ReauthorizationRequired {
                    detail: format!(
                        "installation `{id}` needs reauthorization: {}",
                        inst.last_error
                            .as_deref()
                            .unwrap_or("its refresh token is dead")
                    ),
                })
            }
        }
    }

    /// An agency may add the app to a sub-account after installing it: a location missing from a Company
    /// installation's approved list is looked up in HighLevel's `/oauth/installedLocations` (with the
    /// Company token) and, when HighLevel lists it, added, so it is served without a re-install.
    async fn learn_added_location(
        &self,
        inst: Installation,
        location: &str,
        gen: u64,
    ) -> AppResult<Installation> {
        let approved = inst.approved()?;
        if inst.auth_class != AuthClass::Company
            || approved.is_empty()
            || approved.iter().any(|l| l == location)
        {
            return Ok(inst);
        }
        let Some(listed) = self.listed_locations(&inst, location, gen).await? else {
            return Ok(inst);
        };
        let mut merged = approved;
        merged.extend(listed);
        merged.sort();
        merged.dedup();
        let (id, list, now) = (inst.id.clone(), merged, now_ms());
        let updated = self
            .db
            .run(move |c| {
                store::installations::set_approved(c, &id, &list, now)?;
                store::installations::find(c, &id)
            })
            .await?
            .ok_or_else(|| AppError::InstallationNotFound(inst.id.clone()))?;
        tracing::info!(installation = %inst.id, %location, "location added to the agency install learned from HighLevel");
        Ok(updated)
    }

    /// Which token answers a request for `location` on this installation.
    /// HighLevel's list of the agency install's locations, if it includes `location`. `None` when it does not
    /// (remembered for `ABSENT_TTL`: no call for it meanwhile) or the list could not be read.
    pub async fn listed_locations(
        &self,
        inst: &Installation,
        location: &str,
        gen: u64,
    ) -> AppResult<Option<Vec<String>>> {
        let key = (inst.id.clone(), location.to_owned());
        if self.absent.contains_key(&key) {
            self.metrics.absent_location_hit();
            return Ok(None);
        }
        let company = self.installation_token(inst, None, gen).await?;
        let listed = match self
            .hl
            .installed_locations(
                &secret(&company.access_token),
                &inst.company_id,
                &self.app_id,
            )
            .await
        {
            Ok(listed) => listed,
            Err(e) => {
                // The approved list stands; the refusal the caller gets explains what to do.
                tracing::warn!(installation = %inst.id, error = %e, "could not read HighLevel's installed locations");
                return Ok(None);
            }
        };
        if listed.iter().any(|l| l == location) {
            Ok(Some(listed))
        } else {
            if self.absent.policy().time_to_live() != Some(std::time::Duration::ZERO) {
                self.absent.insert(key, ());
            }
            Ok(None)
        }
    }

    fn scope_for(&self, inst: &Installation, location: Option<&str>) -> AppResult<Scope> {
        let Some(wanted) = location else {
            return Ok(Scope::Installation);
        };
        let refuse = |fix: String| AppError::LocationNotInInstallation {
            detail: format!(
                "location `{wanted}` is not part of installation `{}`",
                inst.id
            ),
            fix,
        };
        match inst.auth_class {
            AuthClass::Location => {
                let own = inst.location_id.as_deref().unwrap_or_default();
                if own == wanted {
                    Ok(Scope::Installation)
                } else if own.eq_ignore_ascii_case(wanted) {
                    Err(refuse(format!(
                        "HighLevel location ids are case-sensitive: use `{own}`, not `{wanted}` (they differ only in letter case)."
                    )))
                } else {
                    Err(refuse(format!("This installation is for location `{own}` only; install the app on `{wanted}` too.")))
                }
            }
            AuthClass::Company => {
                let approved = inst.approved()?;
                if approved.iter().any(|l| l == wanted) || approved.is_empty() {
                    Ok(Scope::Location(wanted.to_owned()))
                } else if let Some(exact) = approved.iter().find(|l| l.eq_ignore_ascii_case(wanted))
                {
                    Err(refuse(format!(
                        "HighLevel location ids are case-sensitive: use `{exact}`, not `{wanted}` (they differ only in letter case)."
                    )))
                } else {
                    Err(refuse(format!(
                        "The app is installed on {} location(s) of company `{}`; add `{wanted}` to the install (agency view → install on that sub-account).",
                        approved.len(),
                        inst.company_id
                    )))
                }
            }
        }
    }

    async fn token_row(&self, installation: &str, scope_key: &str) -> AppResult<Option<TokenRow>> {
        let (i, s) = (installation.to_owned(), scope_key.to_owned());
        Ok(self.db.run(move |c| store::tokens::get(c, &i, &s)).await?)
    }

    /// Decrypts a row's access token into an answer and caches it (unless a change of the installation was
    /// applied since `gen` was taken).
    fn serve_row(
        &self,
        inst: &Installation,
        row: &TokenRow,
        location: Option<&str>,
        gen: u64,
    ) -> AppResult<TokenAccess> {
        let enc = row
            .access_token_enc
            .as_deref()
            .ok_or_else(|| AppError::Internal("token row without a token".into()))?;
        let token = self.keys.decrypt(
            enc,
            &row_name(&row.installation_id, &row.scope_key),
            TokenKind::Access,
        )?;
        let expires_at_ms = row.expires_at.unwrap_or(0);
        let (auth_class, location_id) = match location {
            Some(l) => (AuthClass::Location, Some(l.to_owned())),
            None => (inst.auth_class, inst.location_id.clone()),
        };
        let answer = TokenAccess {
            installation_id: inst.id.clone(),
            access_token: token.expose_secret().to_owned(),
            token_type: "Bearer".into(),
            expires_at: chrono::DateTime::from_timestamp_millis(expires_at_ms).unwrap_or_default(),
            auth_class,
            company_id: inst.company_id.clone(),
            location_id,
            scopes: inst.scope_list(),
        };
        let cached = |answer: &TokenAccess| {
            Cached::new(
                answer.clone(),
                &row.scope_key,
                expires_at_ms,
                row.token_version,
            )
        };
        // A Location installation asked for by its own location id is the same token: cache it under both keys.
        if let (true, AuthClass::Location, Some(own)) =
            (location.is_none(), auth_class, inst.location_id.as_deref())
        {
            self.cache.put(&inst.id, own, cached(&answer), gen);
        }
        self.cache
            .put(&inst.id, &row.scope_key, cached(&answer), gen);
        Ok(answer)
    }

    /// Whether a stored token must be renewed: it was rejected (and is still the current one), or it has
    /// less than a minute left.
    fn needs_renewal(row: &TokenRow, rejected_hash: Option<&str>) -> bool {
        if row.access_token_enc.is_none() {
            return true;
        }
        match rejected_hash {
            Some(h) => row
                .access_token_hash
                .as_deref()
                .is_some_and(|cur| constant_time_eq(cur, h)),
            None => row.expires_at.unwrap_or(0) - now_ms() < MIN_LIFE_MS,
        }
    }

    /// An installation's own grant, encrypted for its row, ready for `store::tokens::store` (bulk writers such
    /// as the scale benchmark's generator use this; the flows use `store_grant`).
    pub fn seal_installation_grant(&self, installation: &str, grant: &Grant) -> NewToken {
        self.seal(installation, INSTALLATION_SCOPE, grant, true)
    }

    /// Encrypts a grant for a row.
    fn seal(
        &self,
        installation: &str,
        scope_key: &str,
        grant: &Grant,
        keep_refresh: bool,
    ) -> NewToken {
        let row = row_name(installation, scope_key);
        let access = grant.access_token.expose_secret();
        NewToken {
            access_token_enc: self.keys.encrypt(access, &row, TokenKind::Access),
            refresh_token_enc: if keep_refresh {
                grant.refresh_token.as_ref().map(|r| {
                    self.keys
                        .encrypt(r.expose_secret(), &row, TokenKind::Refresh)
                })
            } else {
                None
            },
            access_token_hash: token_hash(access),
            expires_at: grant.expires_at_ms(now_ms()),
        }
    }

    /// Stores a fresh grant for an installation (install callback): authoritative, bumps the version.
    pub async fn store_grant(&self, installation: &str, grant: &Grant) -> AppResult<()> {
        let sealed = self.seal(installation, INSTALLATION_SCOPE, grant, true);
        let (i, now) = (installation.to_owned(), now_ms());
        self.db
            .run(move |c| store::tokens::store(c, &i, INSTALLATION_SCOPE, &sealed, now))
            .await?;
        self.cache.remove_installation(installation);
        Ok(())
    }

    /// Marks an installation `needs_reauth`, keeping it and its last error.
    async fn mark_needs_reauth(&self, inst: &Installation, why: &str) -> AppResult<()> {
        let (id, why_owned, now) = (inst.id.clone(), why.to_owned(), now_ms());
        self.db
            .run(move |c| {
                store::installations::set_state(
                    c,
                    &id,
                    InstallationState::NeedsReauth,
                    Some(&why_owned),
                    now,
                )
            })
            .await?;
        self.cache.remove_installation(&inst.id);
        Ok(())
    }
}

impl TokenService {
    /// Waits for the refresh lease on a token row (creating the row if needed). `None`: the token moved past
    /// `seen_version` meanwhile, i.e. someone else renewed it and there is nothing to do.
    async fn acquire_lease(
        &self,
        installation: &str,
        scope_key: &str,
        seen_version: i64,
    ) -> AppResult<Option<TokenRow>> {
        let (id, key, now) = (installation.to_owned(), scope_key.to_owned(), now_ms());
        self.db
            .run(move |c| store::tokens::ensure_row(c, &id, &key, now))
            .await?;
        let deadline = now + LEASE_MS + 5_000;
        loop {
            let row = self
                .token_row(installation, scope_key)
                .await?
                .ok_or_else(|| AppError::Internal("token row missing".into()))?;
            if row.token_version > seen_version && row.access_token_enc.is_some() {
                return Ok(None);
            }
            let (id, key, owner, version, now) = (
                installation.to_owned(),
                scope_key.to_owned(),
                self.instance_id.clone(),
                row.token_version,
                now_ms(),
            );
            let taken = self
                .db
                .run(move |c| {
                    store::tokens::try_lease(c, &id, &key, version, &owner, now + LEASE_MS, now)
                })
                .await?;
            if taken {
                return Ok(Some(row));
            }
            if now_ms() > deadline {
                return Err(AppError::HighlevelUnavailable(
                    "another replica's renewal did not finish in time".into(),
                ));
            }
            lease_wait().await;
        }
    }

    /// Gives the lease back without a new token (the old one stays).
    async fn release_lease(&self, installation: &str, scope_key: &str) -> AppResult<()> {
        let (id, key, owner) = (
            installation.to_owned(),
            scope_key.to_owned(),
            self.instance_id.clone(),
        );
        Ok(self
            .db
            .run(move |c| store::tokens::release_lease(c, &id, &key, &owner))
            .await?)
    }
}

enum Scope {
    Installation,
    Location(String),
}

/// Short random sleeps while another process holds a lease.
async fn lease_wait() {
    let ms = 40 + rand::random::<u64>() % 60;
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

pub(crate) fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// Why the app uninstalls itself, as HighLevel records it (HighLevel's marketplace API: required from a developer).
pub const DEFAULT_UNINSTALL_REASON: &str = "Uninstalled by the app";

impl TokenService {
    /// The app uninstalls itself from this installation at HighLevel (`DELETE /marketplace/app/{appId}/
    /// installations` with the installation's own token: a Location token naming its location, or the agency's
    /// Company token naming its company, which removes the agency and every sub-account), then records it
    /// `uninstalled` and destroys its tokens (an agency's Location installations too). Already uninstalled:
    /// nothing is sent.
    pub async fn uninstall(&self, id: &str, reason: Option<&str>) -> AppResult<Installation> {
        let owned = id.to_owned();
        let inst = self
            .db
            .run(move |c| store::installations::find(c, &owned))
            .await?
            .ok_or_else(|| AppError::InstallationNotFound(id.to_owned()))?;
        if inst.state == InstallationState::Uninstalled {
            return Ok(inst);
        }
        let class = inst.auth_class;
        let (company, location) = match class {
            AuthClass::Location => (None, inst.location_id.as_deref()),
            AuthClass::Company => (Some(inst.company_id.as_str()), None),
        };
        let reason = reason.unwrap_or(DEFAULT_UNINSTALL_REASON);
        let gen = self.cache.generation(&inst.id);
        let mut token = self.installation_token(&inst, None, gen).await?;
        let mut renewed = false;
        loop {
            match self
                .hl
                .uninstall_app(
                    &secret(&token.access_token),
                    &self.app_id,
                    company,
                    location,
                    reason,
                )
                .await
            {
                Ok(()) => break,
                Err(highlevel_client::OAuthError::Refused { status: 401, body }) if !renewed => {
                    tracing::warn!(installation = %inst.id, %body, "token refused while uninstalling; renewing it once");
                    renewed = true;
                    token = self
                        .installation_token(&inst, Some(&token_hash(&token.access_token)), gen)
                        .await?;
                }
                Err(highlevel_client::OAuthError::Unavailable(why)) => {
                    return Err(AppError::HighlevelUnavailable(why))
                }
                Err(e) => {
                    return Err(AppError::HighlevelRefused(format!(
                        "HighLevel refused to uninstall the app from installation `{}`: {e}",
                        inst.id
                    )))
                }
            }
        }
        let (iid, company_id, now) = (inst.id.clone(), inst.company_id.clone(), now_ms());
        let removed = self
            .db
            .run(move |c| {
                use diesel::Connection as _;
                c.transaction(|c| {
                    let mut ids = vec![iid.clone()];
                    if class == AuthClass::Company {
                        // An agency token removes the app from every sub-account too.
                        ids.extend(
                            store::installations::list(c, Some(&company_id), None)?
                                .into_iter()
                                .filter(|i| i.auth_class == AuthClass::Location)
                                .map(|i| i.id),
                        );
                    }
                    for i in &ids {
                        store::tokens::delete_all(c, i)?;
                        store::installations::set_state(
                            c,
                            i,
                            InstallationState::Uninstalled,
                            Some("uninstalled by the app"),
                            now,
                        )?;
                    }
                    Ok::<_, crate::db::DbError>(ids)
                })
            })
            .await?;
        for i in &removed {
            self.cache.remove_installation(i);
        }
        tracing::info!(installation = %inst.id, ?removed, "the app uninstalled itself at HighLevel");
        let owned = inst.id.clone();
        self.db
            .run(move |c| store::installations::find(c, &owned))
            .await?
            .ok_or_else(|| AppError::InstallationNotFound(inst.id.clone()))
    }
}
