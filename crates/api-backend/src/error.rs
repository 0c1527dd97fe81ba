//! The one error type of api-backend: each variant maps to a status and a stable `code`, answered as an
//! RFC 9457 problem body. HighLevel's refusals keep HighLevel's status and message and add a diagnosis.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use highlevel_client::HlError;
use serde_json::json;
use shared_types::{Diagnosis, Problem, ProblemCode};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("a session or service token is required: send `Authorization: Bearer <token>`")]
    SessionRequired,
    #[error("{0}")]
    SessionInvalid(String),
    #[error("{0}")]
    LocationNotAllowed(String),
    #[error("{0}")]
    CallerNotAllowed(String),
    #[error("{0}")]
    AdminRequired(String),
    #[error("{0}")]
    AmountMismatch(String),
    #[error("{0}")]
    TransactionUnknown(String),
    #[error("{0}")]
    GatewayModeUnsupported(String),
    #[error("{0}")]
    GatewayFailed(String),
    #[error("{0}")]
    CardOnFileUnsupported(String),
    #[error("{detail}")]
    LocationNotInstalled { detail: String, fix: String },
    #[error("{}", .0.detail)]
    LocationCaseMismatch(Diagnosis),
    #[error("{0}")]
    NotFound(String),
    #[error("this Idempotency-Key was used with another request body")]
    IdempotencyKeyReused,
    #[error("the first request with this Idempotency-Key is still running")]
    IdempotencyInProgress,
    #[error("{detail}")]
    RolledBack {
        detail: String,
        cause: Box<ApiError>,
        leftovers: Vec<String>,
    },
    #[error(transparent)]
    HighLevel(#[from] HlError),
    #[error("the api key or publishable key is missing or not one this service issued")]
    ProviderKeyInvalid,
    #[error("{0}")]
    RefundRefused(String),
    #[error("{0}")]
    InvalidSignature(String),
    #[error("oauth-backend is unavailable: {0}")]
    OauthBackendUnavailable(String),
    #[error("the database is unreachable")]
    DatabaseUnavailable,
    #[error("this server is holding as many uploads as its media budget allows; retry in {retry_after_secs} s")]
    UploadCapacity { retry_after_secs: u64 },
    #[error("{detail}")]
    UnknownEndpoint {
        detail: String,
        closest: Vec<String>,
    },
    #[error("{0}")]
    InvalidPath(String),
    #[error("{detail}")]
    MethodNotAllowed {
        detail: String,
        allowed: Vec<String>,
    },
    #[error("{0}")]
    CompanyNotInstalled(String),
    /// A transaction already charged, or bound to another subscription.
    #[error("{0}")]
    TransactionUsed(String),
    /// Too many card setups waiting for the gateway.
    #[error("{detail}")]
    SetupsPending {
        detail: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    HighlevelAnswerTooLarge(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn problem(&self) -> Problem {
        use ApiError::*;
        // Status and title come from the code table (shared-types), declared once per code.
        let p = |code: ProblemCode| Problem::of(code, self.to_string());
        match self {
            InvalidRequest(_) => p(ProblemCode::InvalidRequest),
            Validation(_) => p(ProblemCode::ValidationFailed),
            PayloadTooLarge(_) => p(ProblemCode::PayloadTooLarge),
            UnsupportedMediaType(_) => p(ProblemCode::UnsupportedMediaType),
            SessionRequired => p(ProblemCode::SessionRequired)
                .with_fix("Open a session with POST /api/sessions {\"sso\": <HighLevel user context>}, or send a service JWT signed with SERVICE_JWT_SECRET."),
            SessionInvalid(_) => p(ProblemCode::SessionInvalid)
                .with_fix("Open a new session with POST /api/sessions; sessions are short-lived."),
            LocationNotAllowed(_) => p(ProblemCode::LocationNotAllowed),
            CallerNotAllowed(_) => p(ProblemCode::CallerNotAllowed)
                .with_fix("Use a service JWT whose `installations` claim includes the installation serving this location, or one without the claim."),
            AdminRequired(_) => p(ProblemCode::AdminRequired)
                .with_fix("Ask an admin of this location or of the agency to make this change."),
            AmountMismatch(_) => p(ProblemCode::AmountMismatch)
                .with_fix("Reload the checkout: the amount must be the one HighLevel recorded for this transaction."),
            TransactionUnknown(_) => p(ProblemCode::TransactionUnknown)
                .with_fix("Start the payment from HighLevel's checkout: the page charges only transactions HighLevel recorded for this location (the app needs the payments/transactions.readonly and payments/orders.readonly scopes, and payments/subscriptions.readonly for a subscription)."),
            GatewayFailed(_) => p(ProblemCode::GatewayFailed)
                .with_fix("Check the gateway credentials of this location's payments provider (PUT /api/locations/{locationId}/payments/provider); the server log has PayTR's answer."),
            GatewayModeUnsupported(_) => p(ProblemCode::GatewayModeUnsupported)
                .with_fix("Register a real gateway (e.g. paytr) with PUT /api/locations/{locationId}/payments/provider before taking live payments; the sandbox serves test mode only."),
            CardOnFileUnsupported(_) => p(ProblemCode::CardOnFileUnsupported)
                .with_fix("Ask PayTR for the Direct API, Non3D and recurring-payment permissions, then register the provider again with `paytr.directApi: true` (PUT /api/locations/{locationId}/payments/provider)."),
            LocationNotInstalled { fix, .. } => p(ProblemCode::LocationNotInstalled).with_fix(fix.clone()),
            LocationCaseMismatch(d) => p(ProblemCode::LocationCaseMismatch)
                .with_fix(d.fix.clone())
                .with_diagnosis(d.clone()),
            NotFound(_) => p(ProblemCode::NotFound),
            IdempotencyKeyReused => p(ProblemCode::IdempotencyKeyReused)
                .with_fix("Use a new Idempotency-Key for a different request; repeat a request only with its exact body."),
            IdempotencyInProgress => p(ProblemCode::IdempotencyInProgress)
                .with_fix("Wait for the first request with this key to finish, then repeat it to get its answer."),
            RolledBack { cause, leftovers, .. } => {
                let inner = cause.problem();
                let mut out = Problem::wrapping(ProblemCode::RolledBack, inner.status, self.to_string())
                    .with_extension("cause", serde_json::to_value(&inner).unwrap_or_default())
                    .with_extension("leftovers", json!(leftovers));
                out.diagnosis = inner.diagnosis.clone();
                out.fix = Some(if leftovers.is_empty() {
                    inner.fix.unwrap_or_else(|| "Correct the cause and send the request again.".into())
                } else {
                    format!("Remove the resources listed in `leftovers` by hand at HighLevel, then correct the cause and send again. {}", inner.fix.unwrap_or_default())
                });
                out
            }
            ProviderKeyInvalid => p(ProblemCode::ProviderKeyInvalid)
                .with_fix("Send the apiKey HighLevel holds for this location (connected by PUT /api/locations/{locationId}/payments/provider); register the provider again if it was rotated."),
            RefundRefused(_) => p(ProblemCode::RefundRefused),
            InvalidSignature(_) => p(ProblemCode::InvalidSignature),
            HighLevel(e) => highlevel_problem(e),
            OauthBackendUnavailable(_) => p(ProblemCode::OauthBackendUnavailable)
                .with_fix("Check OAUTH_BACKEND_URL and that oauth-backend is up (GET /readyz)."),
            DatabaseUnavailable => service_common::ops::database_unavailable(),
            UploadCapacity { .. } => p(ProblemCode::UploadCapacity)
                .with_fix("Retry after the time in Retry-After (another replica may take it at once); operators can raise MEDIA_BUFFER_BUDGET."),
            UnknownEndpoint { closest, .. } => p(ProblemCode::UnknownEndpoint)
                .with_fix("Use a path of HighLevel's v2 API (docs/api.md, HighLevel proxy); `closest` lists the nearest known ones.")
                .with_extension("closest", json!(closest)),
            InvalidPath(_) => p(ProblemCode::InvalidPath)
                .with_fix("Send HighLevel's path as it is documented, without `.`/`..` segments or encoded slashes."),
            MethodNotAllowed { allowed, .. } => p(ProblemCode::MethodNotAllowed)
                .with_extension("allowed", json!(allowed)),
            CompanyNotInstalled(_) => p(ProblemCode::CompanyNotInstalled)
                .with_fix("Install the app from the agency view (a Company install) with GET /oauth/install?user_type=Company on oauth-backend."),
            HighlevelAnswerTooLarge(_) => p(ProblemCode::HighlevelAnswerTooLarge)
                .with_fix("Ask HighLevel for less at a time (its `limit` and paging parameters), or raise PROXY_ANSWER_LIMIT."),
            TransactionUsed(_) => p(ProblemCode::TransactionAlreadyUsed),
            SetupsPending { .. } => p(ProblemCode::CardSetupsPending),
            Internal(_) => Problem::of(ProblemCode::Internal, "An internal error occurred; the server log has the cause."),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::HighLevel(HlError::RateLimited { retry_after, .. })
            | ApiError::HighLevel(HlError::DailyLimitSpent { retry_after, .. }) => {
                Some(retry_after.as_secs().max(1))
            }
            ApiError::HighLevel(HlError::Unavailable { .. }) | ApiError::IdempotencyInProgress => {
                Some(1)
            }
            ApiError::RolledBack { cause, .. } => cause.retry_after(),
            ApiError::UploadCapacity { retry_after_secs }
            | ApiError::SetupsPending {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

fn highlevel_problem(e: &HlError) -> Problem {
    let detail = e.to_string();
    match e {
        HlError::Refused { status, message, body, diagnosis, .. } => {
            Problem::wrapping(ProblemCode::HighlevelRefused, *status, message.clone())
                .with_fix(diagnosis.fix.clone())
                .with_diagnosis(diagnosis.clone())
                .with_extension("highlevel", body.clone())
        }
        HlError::WouldBeRefused { diagnosis, .. } => {
            Problem::of(ProblemCode::WouldBeRefused, detail)
                .with_fix(diagnosis.fix.clone())
                .with_diagnosis(diagnosis.clone())
        }
        HlError::RateLimited { .. } => Problem::of(ProblemCode::RateLimited, detail)
            .with_fix("Retry after the time in Retry-After; HighLevel allows 100 requests per 10 s per location."),
        HlError::DailyLimitSpent { .. } => Problem::of(ProblemCode::DailyLimitSpent, detail)
            .with_fix("HighLevel allows 200,000 requests a day per location or company; wait for the day to turn."),
        HlError::Unavailable { .. } => Problem::of(ProblemCode::HighlevelUnavailable, detail)
            .with_fix("Retry with backoff; idempotent calls were already retried."),
        HlError::BadAnswer { .. } => Problem::of(ProblemCode::HighlevelBadAnswer, detail),
        HlError::Token(p) => (**p).clone(),
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.problem().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(%cause, "internal error");
        }
        let problem = self.problem();
        let mut res = HttpResponse::build(
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        );
        res.content_type(Problem::CONTENT_TYPE);
        if let Some(secs) = self.retry_after() {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.json(problem)
    }
}

impl From<service_common::DbError> for ApiError {
    fn from(e: service_common::DbError) -> Self {
        match service_common::ops::DbFailure::from(e) {
            service_common::ops::DbFailure::Unavailable => ApiError::DatabaseUnavailable,
            service_common::ops::DbFailure::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

/// Extractor failures (bad JSON, query or path) as problem bodies: 413 for size, 422 for wrong fields,
/// 400 for anything unreadable.
pub fn json_error(err: actix_web::error::JsonPayloadError) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    match &err {
        J::Overflow { limit } | J::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge(format!("the JSON body is larger than {limit} bytes")).into()
        }
        J::ContentType => {
            ApiError::UnsupportedMediaType("send the body as application/json".into()).into()
        }
        J::Deserialize(e) if e.is_data() => ApiError::Validation(e.to_string()).into(),
        _ => ApiError::InvalidRequest(format!("the body is not valid JSON: {err}")).into(),
    }
}

pub fn extractor_error(err: impl std::fmt::Display) -> actix_web::Error {
    ApiError::InvalidRequest(err.to_string()).into()
}
