//! `GET /api/token-access/{installation_id}` and its `/refresh` sibling.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which kind of HighLevel token: an agency-level (Company) or a sub-account (Location) one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "diesel", derive(diesel::AsExpression, diesel::FromSqlRow))]
#[cfg_attr(feature = "diesel", diesel(sql_type = diesel::sql_types::Text))]
pub enum AuthClass {
    Company,
    Location,
}

impl AuthClass {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthClass::Company => "Company",
            AuthClass::Location => "Location",
        }
    }

    /// Parses HighLevel's spelling (`Company`, `Location`); anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Company" => Some(AuthClass::Company),
            "Location" => Some(AuthClass::Location),
            _ => None,
        }
    }
}

impl fmt::Display for AuthClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer of token access: a usable access token and what it may do. Never a refresh token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenAccess {
    pub installation_id: String,
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_at: DateTime<Utc>,
    pub auth_class: AuthClass,
    pub company_id: String,
    pub location_id: Option<String>,
    pub scopes: Vec<String>,
}

// The access token is a secret: keep it out of every `Debug` print.
impl fmt::Debug for TokenAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAccess")
            .field("installation_id", &self.installation_id)
            .field("access_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("auth_class", &self.auth_class)
            .field("company_id", &self.company_id)
            .field("location_id", &self.location_id)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Body of `POST /api/token-access/{id}/refresh`: the token HighLevel refused.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRequest {
    pub rejected_token: String,
}

impl fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshRequest")
            .field("rejected_token", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_access_round_trips_with_contract_field_names() {
        let t = TokenAccess {
            installation_id: "inst_1".into(),
            access_token: "secret-token".into(),
            token_type: "Bearer".into(),
            expires_at: DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
                .unwrap()
                .into(),
            auth_class: AuthClass::Location,
            company_id: "c1".into(),
            location_id: Some("L1".into()),
            scopes: vec!["products.write".into()],
        };
        let json = serde_json::to_value(&t).unwrap();
        for key in [
            "installation_id",
            "access_token",
            "token_type",
            "expires_at",
            "auth_class",
            "company_id",
            "location_id",
            "scopes",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert_eq!(json["auth_class"], "Location");
        let back: TokenAccess = serde_json::from_value(json).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let r = RefreshRequest {
            rejected_token: "very-secret".into(),
        };
        assert!(!format!("{r:?}").contains("very-secret"));
    }

    #[test]
    fn auth_class_parses_only_highlevel_spelling() {
        assert_eq!(AuthClass::parse("Company"), Some(AuthClass::Company));
        assert_eq!(AuthClass::parse("company"), None);
    }
}
