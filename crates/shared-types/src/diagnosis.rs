//! Why HighLevel refused a call, and what to do about it.

use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    CompanyTokenOnLocationEndpoint,
    LocationTokenOnCompanyEndpoint,
    MissingScope,
    LocationMismatch,
    LocationCaseMismatch,
    TokenExpired,
    TokenNotIssuedByHighlevel,
    WrongProviderEndpoint,
    AppCredentialsMismatch,
    ValidationFailed,
    RateLimited,
    Unknown,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub cause: Cause,
    pub detail: String,
    pub fix: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnosis_round_trips() {
        let d = Diagnosis {
            cause: Cause::LocationCaseMismatch,
            detail: "ids differ only in letter case".into(),
            fix: "use the exact id".into(),
        };
        let json = serde_json::to_string(&d).unwrap();
        assert!(json.contains("\"location_case_mismatch\""));
        assert_eq!(serde_json::from_str::<Diagnosis>(&json).unwrap(), d);
    }
}
