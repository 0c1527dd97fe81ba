//! The one error type of oauth-backend: each variant maps to a status and a stable `code`, answered as an
//! RFC 9457 problem body. Internal causes are logged, never sent.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use shared_types::{Problem, ProblemCode};

/// `Clone`: the callers sharing one token renewal each get its error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    #[error("a service JWT is required: send `Authorization: Bearer <token>`")]
    ServiceAuthRequired,
    #[error("the service JWT was refused: {0}")]
    ServiceAuthInvalid(String),
    #[error("caller `{0}` may not read this installation")]
    CallerNotAllowed(String),
    #[error("no installation with id `{0}`")]
    InstallationNotFound(String),
    #[error("{detail}")]
    LocationNotInInstallation { detail: String, fix: String },
    #[error("{detail}")]
    ReauthorizationRequired { detail: String },
    #[error("installation `{0}` was uninstalled")]
    InstallationUninstalled(String),
    /// HighLevel refuses refreshes for the account (a suspended sub-account); the pair is kept.
    #[error("{detail}")]
    InstallationSuspended {
        detail: String,
        retry_after_secs: i64,
    },
    #[error("HighLevel is unavailable: {0}")]
    HighlevelUnavailable(String),
    #[error("HighLevel refused: {0}")]
    HighlevelRefused(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    InvalidSignature(String),
    #[error("{0}")]
    StaleWebhook(String),
    #[error("webhook `{0}` was already processed")]
    DuplicateWebhook(String),
    /// A webhook that could not be recorded durably now (database unavailable, overload): `429` with
    /// `Retry-After`, the only answer HighLevel retries.
    #[error("the webhook could not be recorded now: {0}")]
    WebhookNotRecorded(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the database is unreachable")]
    DatabaseUnavailable,
    #[error("internal error: {0}")]
    Internal(String),
    /// A stored row this version cannot read (fail closed: nothing is served from it).
    #[error("{0}")]
    CorruptInstallation(crate::store::installations::CorruptRow),
}

pub type AppResult<T> = Result<T, AppError>;

/// `Retry-After` on a webhook answered 429.
pub const WEBHOOK_RETRY_AFTER_SECS: u64 = 60;

impl AppError {
    /// The code (its status and title come from the code table in shared-types) and the fix.
    fn parts(&self) -> (ProblemCode, Option<String>) {
        use AppError::*;
        match self {
            ServiceAuthRequired => (ProblemCode::ServiceAuthRequired, Some("Sign a short-lived HS256 JWT with SERVICE_JWT_SECRET (aud `oauth-backend`), e.g. `oauth-backend service-token --caller my-job`.".into()),
            ),
            ServiceAuthInvalid(_) => (ProblemCode::ServiceAuthInvalid, Some("Check the token is signed with this deployment's SERVICE_JWT_SECRET, has aud `oauth-backend`, and expires within one hour.".into()),
            ),
            CallerNotAllowed(_) => (ProblemCode::CallerNotAllowed, Some("Issue the caller a service token whose `installations` claim includes this installation.".into()),
            ),
            InstallationNotFound(_) => (ProblemCode::InstallationNotFound, Some("List installations with GET /api/installations; install the app through /oauth/install.".into()),
            ),
            LocationNotInInstallation { fix, .. } => (ProblemCode::LocationNotInInstallation, Some(fix.clone()),
            ),
            ReauthorizationRequired { .. } => (ProblemCode::ReauthorizationRequired, Some("The refresh token is dead and reconnect failed: have the user install the app again via GET /oauth/install.".into()),
            ),
            InstallationUninstalled(_) => (ProblemCode::InstallationUninstalled, Some("The app was uninstalled from HighLevel; its tokens are destroyed. Install it again to continue.".into()),
            ),
            InstallationSuspended { .. } => (ProblemCode::InstallationSuspended, Some("HighLevel refuses this account for now (e.g. a suspended sub-account); the tokens are kept and the refresh is retried by itself. Reactivate the sub-account in HighLevel; no re-install is needed.".into()),
            ),
            HighlevelUnavailable(_) => (ProblemCode::HighlevelUnavailable, Some("Retry with backoff; the stored tokens are kept.".into()),
            ),
            HighlevelRefused(_) => (ProblemCode::HighlevelRefused, None),
            InvalidState(_) => (ProblemCode::InvalidState, Some("Start the install again from GET /oauth/install; each link works once and for 10 minutes.".into()),
            ),
            InvalidSignature(_) => (ProblemCode::InvalidSignature, None),
            StaleWebhook(_) => (ProblemCode::StaleWebhook, None),
            DuplicateWebhook(_) => (ProblemCode::DuplicateWebhook, None),
            WebhookNotRecorded(_) => (ProblemCode::WebhookNotRecorded, Some("Deliver it again later (HighLevel retries a 429 by itself).".into()),
            ),
            InvalidRequest(_) => (ProblemCode::InvalidRequest, None),
            NotFound(_) => (ProblemCode::NotFound, None),
            DatabaseUnavailable => (ProblemCode::DatabaseUnavailable, None),
            Internal(_) => (ProblemCode::Internal, None),
            CorruptInstallation(row) => (ProblemCode::Internal, Some(format!(
                    "Repair the {} of installation `{}` in the database, or install the app again after removing the row; nothing is served from it meanwhile.",
                    row.field, row.id
                )),
            ),
        }
    }

    /// The stable `code` of this error.
    pub fn code(&self) -> ProblemCode {
        self.parts().0
    }

    pub fn problem(&self) -> Problem {
        if let AppError::DatabaseUnavailable = self {
            return service_common::ops::database_unavailable();
        }
        let (code, fix) = self.parts();
        let detail = match self {
            AppError::Internal(_) => {
                "An internal error occurred; the server log has the cause.".to_owned()
            }
            other => other.to_string(),
        };
        // The token endpoint's refusal has no HighLevel status to carry to our caller: a bad gateway.
        let p = match code.status() {
            Some(_) => Problem::of(code, detail),
            None => Problem::wrapping(code, 502, detail),
        };
        match fix {
            Some(f) => p.with_fix(f),
            None => p,
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.problem().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            AppError::Internal(cause) => tracing::error!(%cause, "internal error"),
            AppError::CorruptInstallation(row) => {
                tracing::error!(installation = %row.id, field = row.field, value = %row.value, "corrupt installation row refused")
            }
            _ => {}
        }
        let mut res = HttpResponse::build(self.status_code());
        res.content_type(Problem::CONTENT_TYPE);
        match self {
            AppError::InstallationSuspended {
                retry_after_secs, ..
            } => {
                res.insert_header(("retry-after", retry_after_secs.max(&1).to_string()));
            }
            AppError::WebhookNotRecorded(_) => {
                res.insert_header(("retry-after", WEBHOOK_RETRY_AFTER_SECS.to_string()));
            }
            _ => {}
        }
        res.json(self.problem())
    }
}

impl From<crate::store::installations::CorruptRow> for AppError {
    fn from(e: crate::store::installations::CorruptRow) -> Self {
        AppError::CorruptInstallation(e)
    }
}

impl From<crate::db::DbError> for AppError {
    fn from(e: crate::db::DbError) -> Self {
        use crate::store::installations::CorruptRow;
        if let crate::db::DbError::Query(diesel::result::Error::DeserializationError(inner)) = &e {
            if let Some(row) = inner.downcast_ref::<CorruptRow>() {
                return AppError::CorruptInstallation(row.clone());
            }
        }
        match service_common::ops::DbFailure::from(e) {
            service_common::ops::DbFailure::Unavailable => AppError::DatabaseUnavailable,
            service_common::ops::DbFailure::Internal(cause) => AppError::Internal(cause),
        }
    }
}

impl From<service_common::ServiceAuthError> for AppError {
    fn from(e: service_common::ServiceAuthError) -> Self {
        use service_common::ServiceAuthError as E;
        match e {
            E::Required => AppError::ServiceAuthRequired,
            E::Invalid(why) => AppError::ServiceAuthInvalid(why),
            E::BadRequest(why) => AppError::InvalidRequest(why),
            E::Signing(why) => AppError::Internal(why),
        }
    }
}

impl From<crate::crypto::keyring::DecryptError> for AppError {
    fn from(e: crate::crypto::keyring::DecryptError) -> Self {
        AppError::Internal(e.to_string())
    }
}

/// Extractor failures (bad JSON, query or path) as problem bodies.
pub fn extractor_error(err: impl std::fmt::Display) -> actix_web::Error {
    AppError::InvalidRequest(err.to_string()).into()
}
