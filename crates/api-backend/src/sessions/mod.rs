//! Who is calling: a user session opened from HighLevel's user context, or an internal service with a
//! service JWT. Every location route checks that the caller may act on the location in its path.

pub mod sso;

use crate::bridge::Bridge;
use crate::error::ApiError;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
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
    Service { name: String },
}

impl Caller {
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
            Caller::Service { name } => format!("service:{name}"),
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
    /// Session tokens are signed with a key derived from SERVICE_JWT_SECRET and their own audience.
    pub fn new(service_secret: &SecretString, sso_key: SecretString, ttl_secs: i64) -> Sessions {
        let session_key = {
            use sha2::{Digest, Sha256};
            Sha256::new()
                .chain_update(b"api-backend session key\0")
                .chain_update(service_secret.expose_secret().as_bytes())
                .finalize()
        };
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
        let ctx = sso::decrypt(sso, &self.sso_key)
            .map_err(|e| ApiError::SessionInvalid(e.to_string()))?;
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
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::SessionRequired)?;
        match jsonwebtoken::decode::<SessionClaims>(token, &self.decoding, &self.validation) {
            Ok(d) => Ok(Caller::User(d.claims)),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                Err(ApiError::SessionInvalid("the session has expired".into()))
            }
            Err(_) => match self.services.verify(Some(header)) {
                Ok(c) => Ok(Caller::Service { name: c.iss.clone() }),
                Err(_) => Err(ApiError::SessionInvalid(
                    "the bearer token is neither a session of this service nor a service JWT signed with SERVICE_JWT_SECRET".into(),
                )),
            },
        }
    }
}

/// Checks the caller may act on `location`: a location user on their own location only; an agency user on
/// the locations of their company; a service on any. Returns the installation serving the location.
pub async fn authorize_location(
    bridge: &Bridge,
    caller: &Caller,
    location: &str,
) -> Result<crate::bridge::Resolved, ApiError> {
    highlevel_client::check_id("location id", location).map_err(ApiError::InvalidRequest)?;
    if let Caller::User(s) = caller {
        if let Some(own) = &s.location_id {
            if own != location {
                return Err(ApiError::LocationNotAllowed(format!(
                    "this session is for location `{own}` and may not act on `{location}`"
                )));
            }
        }
    }
    let resolved = bridge.resolve(location, caller.company_hint()).await?;
    if let Caller::User(s) = caller {
        if s.company_id != resolved.company_id {
            return Err(ApiError::LocationNotAllowed(format!(
                "location `{location}` belongs to another company than this session's"
            )));
        }
    }
    Ok(resolved)
}
