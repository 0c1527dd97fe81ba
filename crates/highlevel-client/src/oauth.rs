//! HighLevel's OAuth endpoints: code exchange, refresh, location tokens, reconnect. Every failure is
//! classified, because what to do next depends on it: a dead grant means reconnect, a 5xx or a timeout means
//! keep the old pair and retry.

use crate::claims::TokenClaims;
use crate::API_VERSION;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The code or refresh token is unknown, used or revoked (HighLevel's `invalid_grant` wording).
    #[error("HighLevel refused the grant ({status}): {body}")]
    InvalidGrant { status: u16, body: String },
    /// The grant was refused for the account, not the token: the sub-account or agency is suspended or
    /// deactivated (`400 Location is not active`). The refresh token is still good: keep it and try later.
    #[error("HighLevel refused the account ({status}): {body}")]
    AccountInactive { status: u16, body: String },
    /// Any other 4xx: our request or our token is wrong.
    #[error("HighLevel answered {status}: {body}")]
    Refused { status: u16, body: String },
    /// 5xx, 429, a timeout or a lost connection: HighLevel may or may not have acted.
    #[error("HighLevel is unavailable: {0}")]
    Unavailable(String),
}

/// A token answer from `/oauth/token` or `/oauth/locationToken`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    #[serde(rename = "access_token")]
    pub access_token: SecretString,
    #[serde(rename = "refresh_token", default)]
    pub refresh_token: Option<SecretString>,
    #[serde(rename = "expires_in", default)]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub user_type: Option<String>,
    #[serde(default)]
    pub company_id: Option<String>,
    #[serde(default)]
    pub location_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub is_bulk_installation: Option<bool>,
    #[serde(default)]
    pub approved_locations: Option<Vec<String>>,
    /// The subscribed plan of a paid app (HighLevel's token answer: "Plan Id of the subscribed plan in paid apps").
    #[serde(default)]
    pub plan_id: Option<String>,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("expires_in", &self.expires_in)
            .field("user_type", &self.user_type)
            .field("company_id", &self.company_id)
            .field("location_id", &self.location_id)
            .finish_non_exhaustive()
    }
}

impl Grant {
    /// Claims of the access token, if it is a JWT.
    pub fn claims(&self) -> TokenClaims {
        TokenClaims::read(self.access_token.expose_secret())
    }

    /// Expiry in epoch milliseconds: `expires_in` from now, else the token's `exp`, else a day.
    pub fn expires_at_ms(&self, now_ms: i64) -> i64 {
        match (self.expires_in, self.claims().exp) {
            (Some(s), _) => now_ms + s * 1000,
            (None, Some(exp)) => exp * 1000,
            (None, None) => now_ms + 86_399_000,
        }
    }
}

/// Locations asked for per `/oauth/installedLocations` page: the most HighLevel's v3 draft allows.
pub const INSTALLED_LOCATIONS_PAGE: u64 = 100;
/// A bound on pages read in one listing (100 000 locations).
const INSTALLED_LOCATIONS_MAX_PAGES: usize = 1000;

#[derive(Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    api_url: String,
    client_id: String,
    client_secret: SecretString,
}

impl OAuthClient {
    /// Fails only if the HTTP client cannot be built; there is no fallback to a client without timeouts.
    pub fn new(
        api_url: &str,
        client_id: &str,
        client_secret: SecretString,
        timeout: Duration,
    ) -> Result<Self, crate::ClientBuildError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(32)
            .build()?;
        Ok(OAuthClient {
            http,
            api_url: api_url.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            client_secret,
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder, grant: bool) -> Result<String, OAuthError> {
        let res = req
            .send()
            .await
            .map_err(|e| OAuthError::Unavailable(without_url(&e)))?;
        let status = res.status().as_u16();
        let body = res
            .text()
            .await
            .map_err(|e| OAuthError::Unavailable(without_url(&e)))?;
        match status {
            200..=299 => Ok(body),
            429 | 500..=599 => Err(OAuthError::Unavailable(format!(
                "{status}: {}",
                truncate(&body)
            ))),
            400 | 401 if grant => Err(classify_grant_refusal(status, truncate(&body))),
            _ => Err(OAuthError::Refused {
                status,
                body: truncate(&body),
            }),
        }
    }

    fn parse_grant(body: &str) -> Result<Grant, OAuthError> {
        serde_json::from_str(body)
            .map_err(|e| OAuthError::Unavailable(format!("unreadable token answer: {e}")))
    }

    /// `POST /oauth/token` with the app's credentials and the given grant fields.
    async fn token_grant(&self, grant: &[(&str, &str)]) -> Result<Grant, OAuthError> {
        let mut form = vec![
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
        ];
        form.extend_from_slice(grant);
        let body = self
            .send(
                self.http
                    .post(format!("{}/oauth/token", self.api_url))
                    .form(&form),
                true,
            )
            .await?;
        Self::parse_grant(&body)
    }

    /// `user_type` is optional (HighLevel's OAuth API reference): an install started on the Marketplace listing does not tell
    /// the app which kind it is, and the answer's `userType` says it.
    pub async fn exchange_code(
        &self,
        code: &str,
        user_type: Option<&str>,
        redirect_uri: &str,
    ) -> Result<Grant, OAuthError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ];
        if let Some(t) = user_type {
            form.push(("user_type", t));
        }
        self.token_grant(&form).await
    }

    pub async fn refresh(
        &self,
        refresh_token: &SecretString,
        user_type: &str,
    ) -> Result<Grant, OAuthError> {
        self.token_grant(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
            ("user_type", user_type),
        ])
        .await
    }

    /// Mints a Location token from a Company token.
    pub async fn location_token(
        &self,
        company_token: &SecretString,
        company_id: &str,
        location_id: &str,
    ) -> Result<Grant, OAuthError> {
        let req = self
            .http
            .post(format!("{}/oauth/locationToken", self.api_url))
            .header("Version", API_VERSION)
            .bearer_auth(company_token.expose_secret())
            .form(&[("companyId", company_id), ("locationId", location_id)]);
        let body = self.send(req, false).await?;
        Self::parse_grant(&body)
    }

    /// `GET /oauth/installedLocations`: the locations of the company where the app is installed now
    /// (a location added after the first install shows up here). Paged as HighLevel pages it: `skip`/`limit`
    /// (at most `INSTALLED_LOCATIONS_PAGE` a page), until `count` locations were seen or a page comes back short.
    pub async fn installed_locations(
        &self,
        company_token: &SecretString,
        company_id: &str,
        app_id: &str,
    ) -> Result<Vec<String>, OAuthError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Location {
            #[serde(rename = "_id")]
            id: String,
            #[serde(default)]
            is_installed: Option<bool>,
        }
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            locations: Vec<Location>,
            #[serde(default)]
            count: Option<u64>,
        }
        let mut found = Vec::new();
        let mut skip: u64 = 0;
        for _ in 0..INSTALLED_LOCATIONS_MAX_PAGES {
            let (skip_s, limit_s) = (skip.to_string(), INSTALLED_LOCATIONS_PAGE.to_string());
            let req = self
                .http
                .get(format!("{}/oauth/installedLocations", self.api_url))
                .header("Version", API_VERSION)
                .bearer_auth(company_token.expose_secret())
                .query(&[
                    ("companyId", company_id),
                    ("appId", app_id),
                    ("isInstalled", "true"),
                    ("skip", &skip_s),
                    ("limit", &limit_s),
                ]);
            let body = self.send(req, false).await?;
            let answer: Answer = serde_json::from_str(&body).map_err(|e| {
                OAuthError::Unavailable(format!("unreadable installedLocations answer: {e}"))
            })?;
            let got = answer.locations.len() as u64;
            skip += got;
            found.extend(
                answer
                    .locations
                    .into_iter()
                    .filter(|l| l.is_installed != Some(false))
                    .map(|l| l.id),
            );
            let done = match answer.count {
                Some(total) => skip >= total,
                None => got < INSTALLED_LOCATIONS_PAGE,
            };
            if done || got == 0 {
                break;
            }
        }
        Ok(found)
    }

    /// `DELETE /marketplace/app/{appId}/installations` (HighLevel's marketplace API, `uninstall-application`, scope
    /// `oauth.write`): the app uninstalls itself. With a Location token the body names `locationId` (that
    /// location only); with an Agency token `companyId` (the agency and every sub-account). `reason` is
    /// required when the developer uninstalls.
    pub async fn uninstall_app(
        &self,
        token: &SecretString,
        app_id: &str,
        company_id: Option<&str>,
        location_id: Option<&str>,
        reason: &str,
    ) -> Result<(), OAuthError> {
        let mut body = serde_json::json!({ "reason": reason });
        if let Some(l) = location_id {
            body["locationId"] = l.into();
        } else if let Some(c) = company_id {
            body["companyId"] = c.into();
        }
        shared_types::check_id("app id", app_id).map_err(|why| OAuthError::Refused {
            status: 0,
            body: why,
        })?;
        let app = app_id;
        let req = self
            .http
            .delete(format!(
                "{}/marketplace/app/{app}/installations",
                self.api_url
            ))
            .header("Version", API_VERSION)
            .bearer_auth(token.expose_secret())
            .json(&body);
        self.send(req, false).await.map(|_| ())
    }

    /// A fresh authorization code for an existing install (the way back from a dead refresh token).
    pub async fn reconnect(
        &self,
        company_id: Option<&str>,
        location_id: Option<&str>,
    ) -> Result<String, OAuthError> {
        let mut body = serde_json::json!({
            "clientKey": self.client_id,
            "clientSecret": self.client_secret.expose_secret(),
        });
        if let Some(l) = location_id {
            body["locationId"] = l.into();
        } else if let Some(c) = company_id {
            body["companyId"] = c.into();
        }
        let text = self
            .send(
                self.http
                    .post(format!("{}/oauth/reconnect", self.api_url))
                    .json(&body),
                true,
            )
            .await?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Answer {
            authorization_code: String,
        }
        serde_json::from_str::<Answer>(&text)
            .map(|a| a.authorization_code)
            .map_err(|e| OAuthError::Refused {
                status: 200,
                body: format!("unreadable reconnect answer: {e}"),
            })
    }
}

/// A 400/401 from the token endpoint (or reconnect). Only HighLevel's words for a dead grant (`invalid_grant`,
/// an invalid or used refresh token, an unknown authorization code) make it `InvalidGrant`; a refusal that
/// names the account (`Location is not active`, a suspended or deactivated company) is `AccountInactive`;
/// anything else is `Refused` and leaves the token pair alone.
pub fn classify_grant_refusal(status: u16, body: String) -> OAuthError {
    let text = body.to_ascii_lowercase();
    let account = [
        "not active",
        "inactive",
        "suspended",
        "deactivated",
        "disabled",
    ]
    .iter()
    .any(|w| text.contains(w))
        && !text.contains("token is invalid");
    let dead = text.contains("invalid_grant")
        || text.contains("invalid grant")
        || text.contains("refresh token")
        || text.contains("authorization code")
        || text.contains("code not found")
        || text.contains("no installation");
    if account {
        OAuthError::AccountInactive { status, body }
    } else if dead {
        OAuthError::InvalidGrant { status, body }
    } else {
        OAuthError::Refused { status, body }
    }
}

/// reqwest errors name the URL; ours carry no secrets in URLs, but keep messages short and uniform.
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "answer lost"
    } else {
        "request failed"
    };
    format!("{kind}: {e}")
}

pub(crate) fn truncate(body: &str) -> String {
    body.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only HighLevel's words for a dead grant mean reconnect; a refusal of the account keeps the pair.
    #[test]
    fn grant_refusals_are_told_apart() {
        let class = |status, body: &str| match classify_grant_refusal(status, body.to_owned()) {
            OAuthError::InvalidGrant { .. } => "dead",
            OAuthError::AccountInactive { .. } => "account",
            _ => "other",
        };
        assert_eq!(
            class(
                400,
                r#"{"error":"invalid_grant","error_description":"Invalid grant: refresh token is invalid"}"#
            ),
            "dead"
        );
        assert_eq!(
            class(
                401,
                r#"{"error":"UnAuthorized!","error_description":"Authorization code not found"}"#
            ),
            "dead"
        );
        assert_eq!(
            class(
                400,
                r#"{"statusCode":400,"message":"Location is not active","error":"Bad Request"}"#
            ),
            "account"
        );
        assert_eq!(class(400, r#"{"message":"Something else"}"#), "other");
    }
}
