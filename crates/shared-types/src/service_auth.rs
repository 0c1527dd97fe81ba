//! Claims of the short-lived HS256 service JWT internal callers present to oauth-backend.

use serde::{Deserialize, Serialize};

/// The `aud` every service JWT for oauth-backend carries.
pub const SERVICE_AUDIENCE: &str = "oauth-backend";
/// The longest life a service JWT may have.
pub const MAX_SERVICE_TOKEN_TTL_SECS: i64 = 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceClaims {
    /// The caller's name, recorded in the audit log.
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// When present, the only installations this caller may read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installations: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_round_trip_and_omit_absent_limit() {
        let c = ServiceClaims {
            iss: "jobs".into(),
            aud: SERVICE_AUDIENCE.into(),
            exp: 10,
            iat: None,
            installations: None,
        };
        let json = serde_json::to_value(&c).unwrap();
        assert!(json.get("installations").is_none());
        assert_eq!(serde_json::from_value::<ServiceClaims>(json).unwrap(), c);
    }
}
