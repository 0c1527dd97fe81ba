//! How a HighLevel call ended when it did not succeed. What to do next depends on the class: a refusal is
//! passed on with HighLevel's words and a diagnosis; a rate limit or an outage may be retried later; a call
//! that may have been applied must be looked for before it is sent again.

use serde_json::Value;
use shared_types::{Diagnosis, Problem};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum HlError {
    /// HighLevel answered 4xx: its status and message unchanged, plus why and what to do.
    #[error("HighLevel refused {endpoint} ({status}): {message}")]
    Refused {
        endpoint: &'static str,
        status: u16,
        /// HighLevel's `message` (an array of field errors is joined with "; ").
        message: String,
        /// HighLevel's body as it came.
        body: Value,
        diagnosis: Diagnosis,
    },
    /// Not sent: the call is known to be refused (wrong token class, missing scope, another location).
    #[error("not sent to HighLevel: {}", diagnosis.detail)]
    WouldBeRefused {
        endpoint: &'static str,
        diagnosis: Diagnosis,
    },
    /// Waiting for room under HighLevel's rate limit would take longer than allowed.
    #[error("HighLevel's rate limit for `{resource}` leaves no room in time; retry in {}s", retry_after.as_secs())]
    RateLimited {
        resource: String,
        retry_after: Duration,
    },
    /// The daily request budget for this location or company is spent.
    #[error("the daily HighLevel request limit for `{resource}` is spent")]
    DailyLimitSpent {
        resource: String,
        retry_after: Duration,
    },
    /// 5xx, a timeout or a lost connection. `maybe_applied`: HighLevel may have acted (a create must be
    /// looked for before it is sent again).
    #[error("HighLevel is unavailable: {reason}")]
    Unavailable { reason: String, maybe_applied: bool },
    /// HighLevel answered 2xx with a body we cannot read.
    #[error("HighLevel's answer to {endpoint} is unreadable: {reason}")]
    BadAnswer {
        endpoint: &'static str,
        reason: String,
    },
    /// No token could be had (from the token service): its problem, passed on.
    #[error("no token: {}", .0.detail)]
    Token(Box<Problem>),
}

impl HlError {
    /// HighLevel's status for refusals.
    pub fn status(&self) -> Option<u16> {
        match self {
            HlError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// HighLevel's `message`: a string, or (422) an array of field errors.
pub fn message_of(body: &Value) -> String {
    match body
        .get("message")
        .or_else(|| body.get("error_description"))
    {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| i.to_string())
            })
            .collect::<Vec<_>>()
            .join("; "),
        Some(other) => other.to_string(),
        None => body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("(no message)")
            .to_owned(),
    }
}
