//! The bridge to oauth-backend: api-backend's only way to HighLevel tokens. It signs its own short-lived
//! service JWTs, finds the installation that serves a location, caches tokens per (installation, location)
//! until 60 s before they expire (one fetch per key at a time), and when HighLevel rejects a token as expired
//! or replaced asks oauth-backend for the current one with the rejected token (`…/refresh`).

mod resolve;

pub use resolve::Resolved;

use highlevel_client::{HlError, TokenSource};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use service_common::ServiceAuth;
use shared_types::{Problem, ProblemCode, RefreshRequest, TokenAccess};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A cached token is used only while it has at least this much life left.
const MIN_LIFE_SECS: i64 = 60;
/// The bridge's service JWTs live this long and are re-signed a minute before they end.
const SERVICE_TOKEN_TTL_SECS: i64 = 600;
/// The caller name api-backend signs its service JWTs with (oauth-backend's audit log shows it).
pub const CALLER: &str = "api-backend";

#[derive(Debug, Default)]
pub struct BridgeStats {
    pub token_fetches: AtomicU64,
    pub refreshes: AtomicU64,
    pub cache_hits: AtomicU64,
}

type Slot = Arc<tokio::sync::Mutex<Option<TokenAccess>>>;

pub struct Bridge {
    http: reqwest::Client,
    base_url: String,
    auth: ServiceAuth,
    service_token: Mutex<Option<(String, i64)>>,
    /// One slot per (installation, location) asked for lately: bounded in size and forgotten when idle, so
    /// callers naming ever new locations cannot grow it without bound.
    tokens: moka::sync::Cache<(String, String), Slot>,
    resolved: resolve::ResolveCache,
    pub stats: BridgeStats,
}

fn unavailable(why: String) -> HlError {
    HlError::Token(Box::new(
        Problem::of(ProblemCode::OauthBackendUnavailable, why)
            .with_fix("Check OAUTH_BACKEND_URL and that oauth-backend is up (GET /readyz)."),
    ))
}

impl Bridge {
    /// Fails (at start-up) when the HTTP client cannot be built: never a client without timeouts.
    pub fn new(
        base_url: &str,
        service_jwt_secret: &SecretString,
        timeout: Duration,
    ) -> anyhow::Result<Bridge> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client for oauth-backend: {e}"))?;
        Ok(Bridge {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            auth: ServiceAuth::new(service_jwt_secret),
            service_token: Mutex::default(),
            tokens: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
            resolved: resolve::resolve_cache(),
            stats: BridgeStats::default(),
        })
    }

    /// A service JWT for oauth-backend, re-signed before it runs out.
    fn service_jwt(&self) -> Result<String, HlError> {
        let now = chrono::Utc::now().timestamp();
        let mut cur = self.service_token.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((t, exp)) = cur.as_ref() {
            if *exp - now > 60 {
                return Ok(t.clone());
            }
        }
        let t = self
            .auth
            .issue(CALLER, SERVICE_TOKEN_TTL_SECS, None)
            .map_err(|e| unavailable(e.to_string()))?;
        *cur = Some((t.clone(), now + SERVICE_TOKEN_TTL_SECS));
        Ok(t)
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, HlError> {
        let req = match service_common::http::current_request_id() {
            Some(id) => req.header("X-Request-Id", id),
            None => req,
        };
        let res = req
            .bearer_auth(self.service_jwt()?)
            .send()
            .await
            .map_err(|e| {
                unavailable(format!(
                    "cannot reach oauth-backend: {}",
                    if e.is_timeout() {
                        "timeout"
                    } else {
                        "connection failed"
                    }
                ))
            })?;
        let status = res.status().as_u16();
        let bytes = res
            .bytes()
            .await
            .map_err(|_| unavailable("oauth-backend's answer was lost".into()))?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes)
                .map_err(|e| unavailable(format!("unreadable oauth-backend answer: {e}")));
        }
        // oauth-backend's problems pass through unchanged (reauthorization_required, installation_uninstalled, …).
        Err(HlError::Token(Box::new(
            serde_json::from_slice::<Problem>(&bytes).unwrap_or_else(|_| {
                Problem::of(
                    ProblemCode::OauthBackendUnavailable,
                    format!("oauth-backend answered {status} with a body that is not a problem"),
                )
            }),
        )))
    }

    fn slot(&self, installation: &str, location: Option<&str>) -> Slot {
        let key = (
            installation.to_owned(),
            location.unwrap_or_default().to_owned(),
        );
        self.tokens.get_with(key, Slot::default)
    }

    fn fresh(t: &TokenAccess) -> bool {
        t.expires_at.timestamp() - chrono::Utc::now().timestamp() >= MIN_LIFE_SECS
    }

    fn token_url(&self, installation: &str, location: Option<&str>, refresh: bool) -> String {
        let mut url = format!("{}/api/token-access/{installation}", self.base_url);
        if refresh {
            url.push_str("/refresh");
        }
        if let Some(l) = location {
            url.push_str(&format!("?location_id={l}"));
        }
        url
    }

    /// A token for the installation; with `location`, always a Location token for it.
    pub async fn token(
        &self,
        installation: &str,
        location: Option<&str>,
    ) -> Result<TokenAccess, HlError> {
        let slot = self.slot(installation, location);
        let mut cur = slot.lock().await;
        if let Some(t) = cur.as_ref().filter(|t| Self::fresh(t)) {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(t.clone());
        }
        self.stats.token_fetches.fetch_add(1, Ordering::Relaxed);
        let t: TokenAccess = self
            .send(self.http.get(self.token_url(installation, location, false)))
            .await?;
        *cur = Some(t.clone());
        Ok(t)
    }

    /// HighLevel rejected `rejected`: the current token (oauth-backend renews it only if it is still current).
    pub async fn refresh(
        &self,
        installation: &str,
        location: Option<&str>,
        rejected: &TokenAccess,
    ) -> Result<TokenAccess, HlError> {
        let slot = self.slot(installation, location);
        let mut cur = slot.lock().await;
        if let Some(t) = cur.as_ref() {
            if t.access_token != rejected.access_token && Self::fresh(t) {
                // Another request already fetched the replacement.
                return Ok(t.clone());
            }
        }
        self.stats.refreshes.fetch_add(1, Ordering::Relaxed);
        let body = RefreshRequest {
            rejected_token: rejected.access_token.clone(),
        };
        let t: TokenAccess = self
            .send(
                self.http
                    .post(self.token_url(installation, location, true))
                    .json(&body),
            )
            .await?;
        *cur = Some(t.clone());
        Ok(t)
    }

    /// Whether oauth-backend answers (for `/readyz`).
    pub async fn ping(&self) -> bool {
        self.http
            .get(format!("{}/healthz", self.base_url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }
}

/// Tokens for one installation and location, as the HighLevel client asks for them.
pub struct Tokens {
    pub bridge: Arc<Bridge>,
    pub installation: String,
    pub location: Option<String>,
}

impl TokenSource for Tokens {
    async fn token(&self) -> Result<TokenAccess, HlError> {
        self.bridge
            .token(&self.installation, self.location.as_deref())
            .await
    }

    async fn rejected(&self, token: &TokenAccess) -> Result<TokenAccess, HlError> {
        self.bridge
            .refresh(&self.installation, self.location.as_deref(), token)
            .await
    }
}
