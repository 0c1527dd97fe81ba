//! HighLevel's refusals, NestJS-shaped: `{"statusCode":N,"message":…,"error":"…"}`.
//! Messages are taken verbatim from docs/highlevel.md's table of refusals; users search for these exact strings.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde_json::{json, Value};
use std::fmt;

pub const MSG_INVALID_JWT: &str = "Invalid JWT";
pub const MSG_TOKEN_INVALID: &str = "Invalid token: access token is invalid";
pub const MSG_SCOPE: &str = "The token is not authorized for this scope.";
pub const MSG_AUTH_CLASS: &str =
    "This authClass type is not allowed to access this scope. Please verify your IAM configuration if this is not the case.";
pub const MSG_FORBIDDEN_RESOURCE: &str = "Forbidden resource";
pub const MSG_LOCATION_ACCESS: &str = "The token does not have access to this location.";

#[derive(Debug, Clone)]
pub struct HlError {
    pub status: StatusCode,
    body: Value,
}

pub type HlResult<T> = Result<T, HlError>;

impl HlError {
    /// A NestJS exception body.
    pub fn nest(status: u16, message: impl Into<Value>, error: &str) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        HlError {
            status,
            body: json!({"statusCode": status.as_u16(), "message": message.into(), "error": error}),
        }
    }

    /// An OAuth token-endpoint refusal: `{"error", "error_description"}`.
    pub fn oauth(status: u16, error: &str, description: &str) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        HlError {
            status,
            body: json!({"error": error, "error_description": description}),
        }
    }

    pub fn invalid_jwt() -> Self {
        Self::nest(401, MSG_INVALID_JWT, "Unauthorized")
    }
    pub fn token_invalid() -> Self {
        Self::nest(401, MSG_TOKEN_INVALID, "Unauthorized")
    }
    pub fn scope() -> Self {
        Self::nest(401, MSG_SCOPE, "Unauthorized")
    }
    pub fn auth_class() -> Self {
        Self::nest(401, MSG_AUTH_CLASS, "Unauthorized")
    }
    pub fn forbidden_resource() -> Self {
        Self::nest(403, MSG_FORBIDDEN_RESOURCE, "Forbidden")
    }
    pub fn location_access() -> Self {
        Self::nest(403, MSG_LOCATION_ACCESS, "Forbidden")
    }
    pub fn unprocessable(messages: Vec<String>) -> Self {
        Self::nest(422, Value::from(messages), "Unprocessable Entity")
    }
    pub fn bad_request(message: &str) -> Self {
        Self::nest(400, message, "Bad Request")
    }
    pub fn not_found(message: &str) -> Self {
        Self::nest(404, message, "Not Found")
    }
    pub fn too_many_requests() -> Self {
        // HighLevel's 429 body is undocumented; this is the simulator's choice (docs/highlevel.md).
        HlError {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: json!({"statusCode": 429, "message": "Too Many Requests"}),
        }
    }
    /// The body of an injected fault of the given status.
    pub fn injected(status: u16) -> Self {
        let s = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let reason = s.canonical_reason().unwrap_or("Error");
        if s == StatusCode::TOO_MANY_REQUESTS {
            return Self::too_many_requests();
        }
        Self::nest(s.as_u16(), reason, reason)
    }

    pub fn body(&self) -> &Value {
        &self.body
    }
}

impl fmt::Display for HlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

impl ResponseError for HlError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(&self.body)
    }
}
