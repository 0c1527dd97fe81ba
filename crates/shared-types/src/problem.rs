//! RFC 9457 problem bodies with a stable `code` and, where one exists, a `fix`.

use crate::diagnosis::Diagnosis;
use serde::{Deserialize, Serialize};

/// Stable, snake_case error names callers may match on. New codes may be added; existing ones never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    ServiceAuthRequired,
    ServiceAuthInvalid,
    CallerNotAllowed,
    InstallationNotFound,
    LocationNotInInstallation,
    ReauthorizationRequired,
    InstallationUninstalled,
    InstallationSuspended,
    HighlevelUnavailable,
    HighlevelRefused,
    DatabaseUnavailable,
    InvalidState,
    InvalidSignature,
    StaleWebhook,
    DuplicateWebhook,
    InvalidRequest,
    PayloadTooLarge,
    NotFound,
    RateLimited,
    Internal,
    // api-backend
    SessionRequired,
    SessionInvalid,
    LocationNotAllowed,
    LocationNotInstalled,
    LocationCaseMismatch,
    ValidationFailed,
    UnsupportedMediaType,
    IdempotencyKeyReused,
    IdempotencyInProgress,
    DailyLimitSpent,
    WouldBeRefused,
    RolledBack,
    HighlevelBadAnswer,
    OauthBackendUnavailable,
    MethodNotAllowed,
    ProviderKeyInvalid,
    RefundRefused,
    AdminRequired,
    AmountMismatch,
    TransactionUnknown,
    GatewayModeUnsupported,
    UploadCapacity,
}

impl ProblemCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::ServiceAuthRequired => "service_auth_required",
            ProblemCode::InstallationSuspended => "installation_suspended",
            ProblemCode::ServiceAuthInvalid => "service_auth_invalid",
            ProblemCode::CallerNotAllowed => "caller_not_allowed",
            ProblemCode::InstallationNotFound => "installation_not_found",
            ProblemCode::LocationNotInInstallation => "location_not_in_installation",
            ProblemCode::ReauthorizationRequired => "reauthorization_required",
            ProblemCode::InstallationUninstalled => "installation_uninstalled",
            ProblemCode::HighlevelUnavailable => "highlevel_unavailable",
            ProblemCode::HighlevelRefused => "highlevel_refused",
            ProblemCode::DatabaseUnavailable => "database_unavailable",
            ProblemCode::InvalidState => "invalid_state",
            ProblemCode::InvalidSignature => "invalid_signature",
            ProblemCode::StaleWebhook => "stale_webhook",
            ProblemCode::DuplicateWebhook => "duplicate_webhook",
            ProblemCode::InvalidRequest => "invalid_request",
            ProblemCode::PayloadTooLarge => "payload_too_large",
            ProblemCode::NotFound => "not_found",
            ProblemCode::RateLimited => "rate_limited",
            ProblemCode::Internal => "internal",
            ProblemCode::SessionRequired => "session_required",
            ProblemCode::SessionInvalid => "session_invalid",
            ProblemCode::LocationNotAllowed => "location_not_allowed",
            ProblemCode::LocationNotInstalled => "location_not_installed",
            ProblemCode::LocationCaseMismatch => "location_case_mismatch",
            ProblemCode::ValidationFailed => "validation_failed",
            ProblemCode::UnsupportedMediaType => "unsupported_media_type",
            ProblemCode::IdempotencyKeyReused => "idempotency_key_reused",
            ProblemCode::IdempotencyInProgress => "idempotency_in_progress",
            ProblemCode::DailyLimitSpent => "daily_limit_spent",
            ProblemCode::WouldBeRefused => "would_be_refused",
            ProblemCode::RolledBack => "rolled_back",
            ProblemCode::HighlevelBadAnswer => "highlevel_bad_answer",
            ProblemCode::OauthBackendUnavailable => "oauth_backend_unavailable",
            ProblemCode::MethodNotAllowed => "method_not_allowed",
            ProblemCode::ProviderKeyInvalid => "provider_key_invalid",
            ProblemCode::RefundRefused => "refund_refused",
            ProblemCode::AdminRequired => "admin_required",
            ProblemCode::AmountMismatch => "amount_mismatch",
            ProblemCode::TransactionUnknown => "transaction_unknown",
            ProblemCode::GatewayModeUnsupported => "gateway_mode_unsupported",
            ProblemCode::UploadCapacity => "upload_capacity",
        }
    }
}

/// `application/problem+json` body. `code` is a string so each service may add its own codes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Present when HighLevel refused a call: why, and what to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
    /// RFC 9457 extension members (e.g. HighLevel's own body, what a rollback could not remove).
    #[serde(flatten, default, skip_serializing_if = "serde_json::Map::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl Problem {
    pub const CONTENT_TYPE: &'static str = "application/problem+json";

    pub fn new(
        status: u16,
        code: ProblemCode,
        title: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Problem {
            type_: format!("https://errors.highlevel-backend.dev/{}", code.as_str()),
            title: title.into(),
            status,
            detail: detail.into(),
            code: code.as_str().to_owned(),
            fix: None,
            diagnosis: None,
            extensions: serde_json::Map::new(),
        }
    }

    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    pub fn with_diagnosis(mut self, diagnosis: Diagnosis) -> Self {
        self.diagnosis = Some(diagnosis);
        self
    }

    pub fn with_extension(mut self, key: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(key.to_owned(), value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::Cause;

    #[test]
    fn problem_round_trips_and_uses_type_key() {
        let p = Problem::new(
            404,
            ProblemCode::InstallationNotFound,
            "Installation not found",
            "no such id",
        )
        .with_fix("install the app first")
        .with_diagnosis(Diagnosis {
            cause: Cause::MissingScope,
            detail: "d".into(),
            fix: "f".into(),
        });
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json["type"],
            "https://errors.highlevel-backend.dev/installation_not_found"
        );
        assert_eq!(json["code"], "installation_not_found");
        assert_eq!(json["fix"], "install the app first");
        assert_eq!(json["diagnosis"]["cause"], "missing_scope");
        let back: Problem = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn codes_serialize_as_their_stable_names() {
        for code in [
            ProblemCode::ServiceAuthRequired,
            ProblemCode::CallerNotAllowed,
            ProblemCode::ReauthorizationRequired,
            ProblemCode::InvalidSignature,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }

    #[test]
    fn absent_fix_is_omitted() {
        let p = Problem::new(500, ProblemCode::Internal, "t", "d");
        let json = serde_json::to_value(&p).unwrap();
        assert!(json.get("fix").is_none());
        assert!(json.get("diagnosis").is_none());
    }
}
