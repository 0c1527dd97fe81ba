//! Service JWTs: HS256 with SERVICE_JWT_SECRET, an audience (`oauth-backend` for the token service),
//! `exp` at most an hour ahead, optional `installations` limit. Internal callers prove who they are with one;
//! api-backend also mints them to call oauth-backend.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use shared_types::service_auth::MAX_SERVICE_TOKEN_TTL_SECS;
use shared_types::{ServiceClaims, SERVICE_AUDIENCE};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

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
    /// once per thread, and only its expiry afterwards. Each server thread keeps its own map, so a hit hashes
    /// the token once and touches no memory another core writes (a shared cache cost each read its
    /// bookkeeping). Only verified tokens are inserted; the hasher is seeded at random.
    verified: thread_local::ThreadLocal<RefCell<Verified>>,
}

type Verified = HashMap<Box<[u8]>, Arc<ServiceClaims>, foldhash::fast::RandomState>;

/// Seconds since the epoch without a calendar conversion (this runs on every read).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The token of a header `Bearer <token>`, as the header's bytes (the verified map's keys).
fn bearer_bytes(header: Option<&actix_web::http::header::HeaderValue>) -> Option<&[u8]> {
    header?.as_bytes().strip_prefix(b"Bearer ")
}

/// Whether verified claims are still live at `now` (seconds since the epoch), with the skew tolerated.
fn live(claims: &ServiceClaims, now: i64) -> bool {
    claims.exp + LEEWAY_SECS as i64 >= now
}

/// Verified tokens remembered at most per thread; when full, the expired ones go, and if none has, all do.
const VERIFIED_PER_THREAD: usize = 4_096;

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
            verified: thread_local::ThreadLocal::new(),
        }
    }

    /// Verifies an `Authorization` header value.
    pub fn verify(&self, authorization: Option<&str>) -> AuthResult<Arc<ServiceClaims>> {
        let token = crate::http::bearer(authorization).ok_or(ServiceAuthError::Required)?;
        if let Some(known) = self.known(token.as_bytes(), unix_now()) {
            return known;
        }
        let now = unix_now();
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
        let mut verified = self.verified.get_or_default().borrow_mut();
        if verified.len() >= VERIFIED_PER_THREAD {
            verified.retain(|_, c| live(c, now));
            if verified.len() >= VERIFIED_PER_THREAD {
                verified.clear();
            }
        }
        verified.insert(token.as_bytes().into(), claims.clone());
        Ok(claims)
    }

    /// [`Self::verify`] for a request's `Authorization` header. A header `Bearer <token>` whose token this thread
    /// verified before is answered from the thread's map by its bytes, before the header's text is checked: those
    /// bytes were checked when the token was verified.
    pub fn verify_header(
        &self,
        header: Option<&actix_web::http::header::HeaderValue>,
    ) -> AuthResult<Arc<ServiceClaims>> {
        if let Some(known) = bearer_bytes(header).and_then(|token| self.known(token, unix_now())) {
            return known;
        }
        self.verify(header.and_then(crate::http::header_text))
    }

    /// A token this thread verified before: its claims while it lives at `now`, refused once it has expired.
    fn known(&self, token: &[u8], now: i64) -> Option<AuthResult<Arc<ServiceClaims>>> {
        let verified = self.verified.get_or_default().borrow();
        let claims = verified.get(token)?;
        Some(if live(claims, now) {
            Ok(claims.clone())
        } else {
            Err(ServiceAuthError::Invalid("it has expired".into()))
        })
    }

    /// The claims of a header `Bearer <token>` this thread verified before and that is still valid at `now`
    /// (seconds since the epoch, read once by a caller that needs the time for more than this); `None` for
    /// any other header, which [`Self::verify_header`] then verifies or refuses with its reason.
    pub fn known_at(
        &self,
        header: Option<&actix_web::http::header::HeaderValue>,
        now: i64,
    ) -> Option<Arc<ServiceClaims>> {
        self.known(bearer_bytes(header)?, now)?.ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> ServiceAuth {
        ServiceAuth::new(&SecretString::from("a-test-secret-of-enough-length-0123"))
    }

    fn claims(exp: i64) -> Arc<ServiceClaims> {
        Arc::new(ServiceClaims {
            iss: "jobs".into(),
            aud: SERVICE_AUDIENCE.into(),
            exp,
            iat: None,
            installations: None,
        })
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn a_remembered_token_is_still_refused_once_expired() {
        let auth = auth();
        let token = auth.issue("jobs", 60, None).unwrap();
        let header = format!("Bearer {token}");
        assert_eq!(auth.verify(Some(&header)).unwrap().iss, "jobs");
        // Another server thread verifies it on its own.
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(auth.verify(Some(&header)).unwrap().iss, "jobs"));
        });
        // What this thread remembers is checked for expiry on every hit.
        auth.verified.get_or_default().borrow_mut().insert(
            token.as_bytes().into(),
            claims(now() - LEEWAY_SECS as i64 - 1),
        );
        assert_eq!(
            auth.verify(Some(&header)).err(),
            Some(ServiceAuthError::Invalid("it has expired".into()))
        );
        // A token never verified is checked in full, whatever else is remembered.
        let forged = format!("Bearer {}x", token);
        assert!(matches!(
            auth.verify(Some(&forged)),
            Err(ServiceAuthError::Invalid(_))
        ));
    }

    /// `known_at` answers only for a token this thread verified, still valid at the time it is given: a new,
    /// forged, expired or malformed header goes to the full check, which says why it is refused.
    #[test]
    fn only_a_verified_live_token_is_known() {
        use actix_web::http::header::HeaderValue;
        let auth = auth();
        let token = auth.issue("jobs", 60, None).unwrap();
        let header = HeaderValue::try_from(format!("Bearer {token}")).unwrap();
        assert!(
            auth.known_at(Some(&header), now()).is_none(),
            "never verified"
        );
        auth.verify_header(Some(&header)).unwrap();
        assert_eq!(auth.known_at(Some(&header), now()).unwrap().iss, "jobs");
        let exp = auth.known_at(Some(&header), now()).unwrap().exp;
        assert!(auth
            .known_at(Some(&header), exp + LEEWAY_SECS as i64)
            .is_some());
        assert!(auth
            .known_at(Some(&header), exp + LEEWAY_SECS as i64 + 1)
            .is_none());
        for other in [
            format!("Bearer {token}x"),
            format!("bearer {token}"),
            token.clone(),
        ] {
            let other = HeaderValue::try_from(other).unwrap();
            assert!(auth.known_at(Some(&other), now()).is_none());
        }
        assert!(auth.known_at(None, now()).is_none());
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(
                    auth.known_at(Some(&header), now()).is_none(),
                    "another thread"
                )
            });
        });
    }

    #[test]
    fn remembered_tokens_are_bounded_per_thread() {
        let auth = auth();
        {
            let mut map = auth.verified.get_or_default().borrow_mut();
            for i in 0..VERIFIED_PER_THREAD {
                let exp = if i % 2 == 0 { now() - 3600 } else { now() + 60 };
                map.insert(format!("t{i}").into_bytes().into(), claims(exp));
            }
        }
        let token = auth.issue("jobs", 60, None).unwrap();
        assert!(auth.verify(Some(&format!("Bearer {token}"))).is_ok());
        // Full: the expired half went, the new token came in.
        assert_eq!(
            auth.verified.get_or_default().borrow().len(),
            VERIFIED_PER_THREAD / 2 + 1
        );
    }

    #[test]
    fn a_header_is_answered_from_the_threads_map_only_for_a_verified_token() {
        use actix_web::http::header::HeaderValue;
        let auth = auth();
        let token = auth.issue("jobs", 60, None).unwrap();
        let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        // First seen: verified in full, then remembered.
        assert_eq!(auth.verify_header(Some(&header)).unwrap().iss, "jobs");
        assert_eq!(auth.verified.get_or_default().borrow().len(), 1);
        assert_eq!(auth.verify_header(Some(&header)).unwrap().iss, "jobs");
        // Other spellings go the long way and agree.
        let lower = HeaderValue::from_str(&format!("bearer {token}")).unwrap();
        assert_eq!(auth.verify_header(Some(&lower)).unwrap().iss, "jobs");
        // No header, another scheme, a token never verified, a header that is not text: refused.
        assert_eq!(
            auth.verify_header(None).err(),
            Some(ServiceAuthError::Required)
        );
        let basic = HeaderValue::from_static("Basic dXNlcjpwYXNz");
        assert_eq!(
            auth.verify_header(Some(&basic)).err(),
            Some(ServiceAuthError::Required)
        );
        let forged = HeaderValue::from_str(&format!("Bearer {token}x")).unwrap();
        assert!(matches!(
            auth.verify_header(Some(&forged)),
            Err(ServiceAuthError::Invalid(_))
        ));
        let binary = HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap();
        assert_eq!(
            auth.verify_header(Some(&binary)).err(),
            Some(ServiceAuthError::Required)
        );
        // A remembered token that has expired is refused on the short way too.
        auth.verified.get_or_default().borrow_mut().insert(
            token.as_bytes().into(),
            claims(now() - LEEWAY_SECS as i64 - 1),
        );
        assert_eq!(
            auth.verify_header(Some(&header)).err(),
            Some(ServiceAuthError::Invalid("it has expired".into()))
        );
    }
}
