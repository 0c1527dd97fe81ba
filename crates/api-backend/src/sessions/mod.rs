//! Who is calling: a user session opened from HighLevel's user context, or an internal service with a
//! service JWT. Every location route checks that the caller may act on the location in its path.

pub mod sso;

use crate::bridge::Bridge;
use crate::error::ApiError;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use service_common::crypto::purpose::{purpose_key, Purpose};
use service_common::ServiceAuth;
use shared_types::SERVICE_AUDIENCE;
use sso::UserContext;

/// The `aud` of session tokens: distinct from service JWTs, so a session never opens oauth-backend.
pub const SESSION_AUDIENCE: &str = "api-backend-session";
/// The `aud` of service JWTs minted for api-backend itself (those minted for oauth-backend work too).
pub const API_AUDIENCE: &str = "api-backend";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionClaims {
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub company_id: String,
    /// Set for a location user: the only location they may act on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `agency` or `location`.
    pub kind: String,
}

/// A verified caller.
#[derive(Debug, Clone)]
pub enum Caller {
    User(SessionClaims),
    /// A service JWT; `installations`, when present, is the only installations it may act through (the same
    /// rule oauth-backend applies to the claim).
    Service {
        name: String,
        installations: Option<Vec<String>>,
    },
}

/// HighLevel's user context says `role` is `admin` or `user`.
pub const ADMIN_ROLE: &str = "admin";

impl Caller {
    /// Whether the caller may change what decides where money goes (the payment provider): an admin of the
    /// location or agency, or a service (services are the app's own jobs, limited by their `installations`).
    pub fn is_admin(&self) -> bool {
        match self {
            Caller::User(s) => s.role.as_deref() == Some(ADMIN_ROLE),
            Caller::Service { .. } => true,
        }
    }

    /// The caller's role, as refusals name it: HighLevel's `role` of a user (`none` when absent), or `service`.
    pub fn role_name(&self) -> &str {
        match self {
            Caller::User(s) => s.role.as_deref().unwrap_or("none"),
            Caller::Service { .. } => "service",
        }
    }

    /// The installations a scoped service JWT limits this caller to.
    pub fn allowed_installations(&self) -> Option<&[String]> {
        match self {
            Caller::Service {
                installations: Some(list),
                ..
            } => Some(list),
            _ => None,
        }
    }

    /// The company an agency user belongs to, a hint for finding a location's installation.
    pub fn company_hint(&self) -> Option<&str> {
        match self {
            Caller::User(s) if s.location_id.is_none() => Some(&s.company_id),
            _ => None,
        }
    }

    pub fn name(&self) -> String {
        match self {
            Caller::User(s) => format!("user:{}", s.sub),
            Caller::Service { name, .. } => format!("service:{name}"),
        }
    }
}

pub struct Sessions {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    services: ServiceAuth,
    sso_key: SecretString,
    ttl_secs: i64,
}

impl Sessions {
    /// Session tokens are signed with their own key, derived from SERVICE_JWT_SECRET with HKDF (purpose
    /// `Session`), and carry their own audience.
    pub fn new(service_secret: &SecretString, sso_key: SecretString, ttl_secs: i64) -> Sessions {
        let session_key = purpose_key(service_secret, Purpose::Session);
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[SESSION_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        validation.leeway = 30;
        Sessions {
            encoding: EncodingKey::from_secret(&session_key),
            decoding: DecodingKey::from_secret(&session_key),
            validation,
            services: ServiceAuth::for_audiences(service_secret, &[API_AUDIENCE, SERVICE_AUDIENCE]),
            sso_key,
            ttl_secs,
        }
    }

    /// Opens a session from HighLevel's encrypted user context.
    pub fn open(&self, sso: &str) -> Result<(String, SessionClaims, UserContext), ApiError> {
        // Every failure gets the same answer: telling bad padding from bad JSON would make this a padding
        // oracle for the Shared Secret. The reason goes to the debug log only.
        let ctx = sso::decrypt(sso, &self.sso_key).map_err(|e| {
            tracing::debug!(reason = %e, "user context refused");
            ApiError::SessionInvalid(sso::REFUSED.into())
        })?;
        let now = chrono::Utc::now().timestamp();
        let claims = SessionClaims {
            sub: ctx.user_id.clone(),
            aud: SESSION_AUDIENCE.into(),
            exp: now + self.ttl_secs,
            iat: now,
            company_id: ctx.company_id.clone(),
            location_id: if ctx.kind == "location" {
                ctx.active_location.clone()
            } else {
                None
            },
            role: ctx.role.clone(),
            kind: ctx.kind.clone(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("cannot sign a session: {e}")))?;
        Ok((token, claims, ctx))
    }

    /// The caller behind an `Authorization` header: a session, else a service JWT.
    pub fn caller(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let header = authorization.ok_or(ApiError::SessionRequired)?;
        let token = service_common::http::bearer(Some(header)).ok_or(ApiError::SessionRequired)?;
        match jsonwebtoken::decode::<SessionClaims>(token, &self.decoding, &self.validation) {
            Ok(d) => Ok(Caller::User(d.claims)),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                Err(ApiError::SessionInvalid("the session has expired".into()))
            }
            Err(_) => match self.services.verify(Some(header)) {
                Ok(c) => Ok(Caller::Service {
                    name: c.iss.clone(),
                    installations: c.installations.clone(),
                }),
                Err(_) => Err(ApiError::SessionInvalid(
                    "the bearer token is neither a session of this service nor a service JWT signed with SERVICE_JWT_SECRET".into(),
                )),
            },
        }
    }
}

/// Checks the caller may act on `location`: a location user on their own location only; an agency user on
/// the locations of their company; a service on any, or (scoped service JWT) only through the installations
/// its `installations` claim lists. Returns the installation serving the location.
pub async fn authorize_location(
    bridge: &Bridge,
    caller: &Caller,
    location: &str,
) -> Result<crate::bridge::Resolved, ApiError> {
    shared_types::check_id("location id", location).map_err(ApiError::InvalidRequest)?;
    if let Caller::User(s) = caller {
        if let Some(own) = &s.location_id {
            if own != location {
                return Err(ApiError::LocationNotAllowed(format!(
                    "this session is for location `{own}` and may not act on `{location}`"
                )));
            }
        }
    }
    let resolved = bridge
        .resolve(
            location,
            caller.company_hint(),
            caller.allowed_installations(),
        )
        .await?;
    if let Caller::User(s) = caller {
        if s.company_id != resolved.company_id {
            return Err(ApiError::LocationNotAllowed(format!(
                "location `{location}` belongs to another company than this session's"
            )));
        }
    }
    // A guess (the caller's company installation for a location nothing lists) is confirmed by oauth-backend
    // before anything is served: it asks HighLevel whether the company's install covers the location. Without
    // this, an agency user could name another company's location and read what is stored for it here.
    if resolved.guessed {
        bridge
            .token(&resolved.installation_id, Some(location))
            .await?;
    }
    if let Some(allowed) = caller.allowed_installations() {
        if !allowed.contains(&resolved.installation_id) {
            return Err(ApiError::CallerNotAllowed(format!(
                "this service JWT is limited to installations {allowed:?}; location `{location}` is served by `{}`",
                resolved.installation_id
            )));
        }
    }
    Ok(resolved)
}
