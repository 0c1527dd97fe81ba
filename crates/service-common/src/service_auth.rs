//! Service JWTs: HS256 with SERVICE_JWT_SECRET, an audience (`oauth-backend` for the token service),
//! `exp` at most an hour ahead, optional `installations` limit. Internal callers prove who they are with one;
//! api-backend also mints them to call oauth-backend.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use shared_types::service_auth::MAX_SERVICE_TOKEN_TTL_SECS;
use shared_types::{ServiceClaims, SERVICE_AUDIENCE};
use std::sync::Arc;
use std::time::Duration;

/// Why a service JWT was refused (each service maps these to its own problem codes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceAuthError {
    #[error("a service JWT is required: send `Authorization: Bearer <token>`")]
    Required,
    #[error("the service JWT was refused: {0}")]
    Invalid(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("cannot sign service token: {0}")]
    Signing(String),
}

type AuthResult<T> = Result<T, ServiceAuthError>;

pub struct ServiceAuth {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
    audience: String,
    /// Tokens already verified, by their exact text: a caller reusing its token for many reads is checked
    /// once, and only its expiry afterwards. Bounded, and nothing outlives the longest token lifetime.
    verified: moka::sync::Cache<String, Arc<ServiceClaims>>,
}

/// Verified tokens remembered at most.
const VERIFIED_CAPACITY: u64 = 10_000;

/// Clock skew tolerated between callers and us.
const LEEWAY_SECS: u64 = 30;

impl ServiceAuth {
    /// Verifies and issues tokens for `oauth-backend` (the contract's audience).
    pub fn new(secret: &SecretString) -> ServiceAuth {
        Self::for_audiences(secret, &[SERVICE_AUDIENCE])
    }

    /// Verifies tokens whose `aud` is any of `audiences`; issues tokens for the first.
    pub fn for_audiences(secret: &SecretString, audiences: &[&str]) -> ServiceAuth {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        validation.leeway = LEEWAY_SECS;
        ServiceAuth {
            decoding: DecodingKey::from_secret(bytes),
            encoding: EncodingKey::from_secret(bytes),
            validation,
            audience: audiences
                .first()
                .copied()
                .unwrap_or(SERVICE_AUDIENCE)
                .to_owned(),
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_CAPACITY)
                .time_to_live(Duration::from_secs(
                    MAX_SERVICE_TOKEN_TTL_SECS as u64 + LEEWAY_SECS,
                ))
                .build(),
        }
    }

    /// Verifies an `Authorization` header value.
    pub fn verify(&self, authorization: Option<&str>) -> AuthResult<Arc<ServiceClaims>> {
        let token = crate::http::bearer(authorization).ok_or(ServiceAuthError::Required)?;
        let now = chrono::Utc::now().timestamp();
        if let Some(claims) = self.verified.get(token) {
            if claims.exp + LEEWAY_SECS as i64 >= now {
                return Ok(claims.clone());
            }
            return Err(ServiceAuthError::Invalid("it has expired".into()));
        }
        let data = jsonwebtoken::decode::<ServiceClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind::*;
            ServiceAuthError::Invalid(
                match e.kind() {
                    ExpiredSignature => "it has expired",
                    InvalidAudience => "its audience (`aud`) is not this service",
                    InvalidSignature => "its signature does not match SERVICE_JWT_SECRET",
                    InvalidAlgorithm => "it is not HS256",
                    MissingRequiredClaim(_) => "it lacks `exp`, `aud` or `iss`",
                    _ => "it is not a well-formed JWT",
                }
                .into(),
            )
        })?;
        let claims = data.claims;
        if claims.exp > now + MAX_SERVICE_TOKEN_TTL_SECS + LEEWAY_SECS as i64 {
            return Err(ServiceAuthError::Invalid(
                "its `exp` is more than one hour ahead".into(),
            ));
        }
        if claims.iss.trim().is_empty() {
            return Err(ServiceAuthError::Invalid(
                "its `iss` (the caller's name) is empty".into(),
            ));
        }
        let claims = Arc::new(claims);
        self.verified.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    /// Issues a service token (for `oauth-backend service-token` and tests).
    pub fn issue(
        &self,
        caller: &str,
        ttl_secs: i64,
        installations: Option<Vec<String>>,
    ) -> AuthResult<String> {
        if !(1..=MAX_SERVICE_TOKEN_TTL_SECS).contains(&ttl_secs) {
            return Err(ServiceAuthError::BadRequest(format!(
                "ttl must be 1..={MAX_SERVICE_TOKEN_TTL_SECS} seconds"
            )));
        }
        let now = chrono::Utc::now().timestamp();
        let claims = ServiceClaims {
            iss: caller.to_owned(),
            aud: self.audience.clone(),
            exp: now + ttl_secs,
            iat: Some(now),
            installations,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ServiceAuthError::Signing(e.to_string()))
    }
}

/// Whether the claims allow reading this installation.
pub fn allows(claims: &ServiceClaims, installation: &str) -> bool {
    claims
        .installations
        .as_ref()
        .is_none_or(|list| list.iter().any(|i| i == installation))
}
