//! RFC 9457 problem bodies with a stable `code` and, where one exists, a `fix`.

use crate::diagnosis::Diagnosis;
use serde::{Deserialize, Serialize};

/// Every stable code with its HTTP status (declared once, here) and its title. `None` as the status: the code
/// wraps an answer from elsewhere and takes its status (HighLevel's refusal; the cause of a rollback).
macro_rules! problem_codes {
    ($($variant:ident => $code:literal, $status:expr, $title:literal;)*) => {
        /// Stable, snake_case error names callers may match on. New codes may be added; existing ones never
        /// change.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ProblemCode {
            $($variant,)*
        }

        impl ProblemCode {
            /// Every code, in table order.
            pub const ALL: &'static [ProblemCode] = &[$(ProblemCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ProblemCode::$variant => $code,)*
                }
            }

            /// The HTTP status every answer with this code has; `None` for a code that carries the status of
            /// what it wraps.
            pub fn status(self) -> Option<u16> {
                match self {
                    $(ProblemCode::$variant => $status,)*
                }
            }

            pub fn title(self) -> &'static str {
                match self {
                    $(ProblemCode::$variant => $title,)*
                }
            }
        }
    };
}

problem_codes! {
    ServiceAuthRequired => "service_auth_required", Some(401), "Service authentication required";
    ServiceAuthInvalid => "service_auth_invalid", Some(401), "Service token refused";
    CallerNotAllowed => "caller_not_allowed", Some(403), "Caller not allowed";
    InstallationNotFound => "installation_not_found", Some(404), "Installation not found";
    LocationNotInInstallation => "location_not_in_installation", Some(403), "Location not in installation";
    ReauthorizationRequired => "reauthorization_required", Some(409), "Reauthorization required";
    InstallationUninstalled => "installation_uninstalled", Some(410), "Installation uninstalled";
    InstallationSuspended => "installation_suspended", Some(503), "Installation suspended";
    WebhookNotRecorded => "webhook_not_recorded", Some(429), "Webhook not recorded";
    HighlevelUnavailable => "highlevel_unavailable", Some(503), "HighLevel unavailable";
    HighlevelRefused => "highlevel_refused", None, "HighLevel refused the call";
    DatabaseUnavailable => "database_unavailable", Some(503), "Database unavailable";
    InvalidState => "invalid_state", Some(400), "Invalid OAuth state";
    InvalidSignature => "invalid_signature", Some(401), "Invalid signature";
    StaleWebhook => "stale_webhook", Some(400), "Stale webhook";
    DuplicateWebhook => "duplicate_webhook", Some(409), "Duplicate webhook";
    InvalidRequest => "invalid_request", Some(400), "Invalid request";
    PayloadTooLarge => "payload_too_large", Some(413), "Payload too large";
    NotFound => "not_found", Some(404), "Not found";
    RateLimited => "rate_limited", Some(503), "HighLevel rate limit";
    Internal => "internal", Some(500), "Internal error";
    SessionRequired => "session_required", Some(401), "Session required";
    SessionInvalid => "session_invalid", Some(401), "Session refused";
    LocationNotAllowed => "location_not_allowed", Some(403), "Location not allowed";
    LocationNotInstalled => "location_not_installed", Some(404), "Location not installed";
    LocationCaseMismatch => "location_case_mismatch", Some(404), "Location id differs in letter case";
    ValidationFailed => "validation_failed", Some(422), "Validation failed";
    UnsupportedMediaType => "unsupported_media_type", Some(415), "Unsupported media type";
    IdempotencyKeyReused => "idempotency_key_reused", Some(422), "Idempotency-Key reused";
    IdempotencyInProgress => "idempotency_in_progress", Some(409), "Request in progress";
    DailyLimitSpent => "daily_limit_spent", Some(429), "HighLevel daily limit spent";
    WouldBeRefused => "would_be_refused", Some(422), "HighLevel would refuse this call";
    RolledBack => "rolled_back", None, "Nothing was created";
    HighlevelBadAnswer => "highlevel_bad_answer", Some(502), "Unreadable HighLevel answer";
    OauthBackendUnavailable => "oauth_backend_unavailable", Some(503), "Token service unavailable";
    MethodNotAllowed => "method_not_allowed", Some(405), "Method not allowed";
    ProviderKeyInvalid => "provider_key_invalid", Some(401), "Provider key refused";
    RefundRefused => "refund_refused", Some(422), "Refund refused";
    AdminRequired => "admin_required", Some(403), "Admin required";
    AmountMismatch => "amount_mismatch", Some(422), "Amount differs from HighLevel's";
    TransactionUnknown => "transaction_unknown", Some(422), "Transaction unknown to HighLevel";
    GatewayModeUnsupported => "gateway_mode_unsupported", Some(422), "Gateway cannot take live payments";
    GatewayFailed => "gateway_failed", Some(502), "Payment gateway error";
    CardOnFileUnsupported => "card_on_file_unsupported", Some(422), "Cards on file not offered here";
    UploadCapacity => "upload_capacity", Some(503), "Upload capacity reached";
    UnknownEndpoint => "unknown_endpoint", Some(404), "Not a HighLevel endpoint";
    InvalidPath => "invalid_path", Some(400), "Path refused";
    CompanyNotInstalled => "company_not_installed", Some(404), "Company not installed";
    HighlevelAnswerTooLarge => "highlevel_answer_too_large", Some(502), "HighLevel answer too large";
    TransactionAlreadyUsed => "transaction_already_used", Some(409), "Transaction already used";
    CardSetupsPending => "card_setups_pending", Some(429), "Too many card setups waiting";
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
    /// A problem with the status and title the code table declares for `code`. A code that wraps another
    /// answer's status (`None` in the table) gets 502 here; use [`Problem::wrapping`] for it.
    pub fn of(code: ProblemCode, detail: impl Into<String>) -> Self {
        Problem::new(code.status().unwrap_or(502), code, code.title(), detail)
    }

    /// A problem for a code that carries the status of what it wraps (HighLevel's refusal, a rollback's cause).
    pub fn wrapping(code: ProblemCode, status: u16, detail: impl Into<String>) -> Self {
        Problem::new(status, code, code.title(), detail)
    }

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

    /// The table's code names are serde's names (the two are spelt once each and must agree), unique, and every
    /// fixed status is an error status.
    #[test]
    fn the_code_table_is_consistent() {
        let mut seen = std::collections::HashSet::new();
        for c in ProblemCode::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str(), "{c:?}");
            assert!(seen.insert(c.as_str()), "{} twice", c.as_str());
            if let Some(s) = c.status() {
                assert!((400..600).contains(&s), "{c:?}: {s}");
            }
            assert!(!c.title().is_empty());
        }
        let p = Problem::of(ProblemCode::AdminRequired, "d");
        assert_eq!((p.status, p.title.as_str()), (403, "Admin required"));
    }

    /// docs/api.md lists every code with the status the table declares (`HighLevel's …` / `the cause's …` for
    /// the two that carry another answer's status), so the documentation cannot drift from the code.
    #[test]
    fn the_documented_codes_are_the_table() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md"))
                .expect("docs/api.md");
        for c in ProblemCode::ALL {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", c.as_str())))
                .unwrap_or_else(|| panic!("docs/api.md has no row for `{}`", c.as_str()));
            let status = row.split('|').nth(2).unwrap_or_default().trim();
            match c.status() {
                Some(s) => assert_eq!(status, s.to_string(), "{row}"),
                None => assert!(status.contains("status"), "{row}"),
            }
        }
    }

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
