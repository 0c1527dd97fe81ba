//! Installation status as `GET /api/installations` reports it: never a token.

use crate::token_access::AuthClass;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "diesel", derive(diesel::AsExpression, diesel::FromSqlRow))]
#[cfg_attr(feature = "diesel", diesel(sql_type = diesel::sql_types::Text))]
#[serde(rename_all = "snake_case")]
pub enum InstallationState {
    Active,
    /// HighLevel refused a refresh for the account, not the token (a suspended sub-account): the token pair is
    /// kept and the refresh retried later; it becomes `active` again by itself once a refresh succeeds.
    Suspended,
    NeedsReauth,
    Uninstalled,
}

impl InstallationState {
    pub fn as_str(self) -> &'static str {
        match self {
            InstallationState::Active => "active",
            InstallationState::Suspended => "suspended",
            InstallationState::NeedsReauth => "needs_reauth",
            InstallationState::Uninstalled => "uninstalled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(InstallationState::Active),
            "suspended" => Some(InstallationState::Suspended),
            "needs_reauth" => Some(InstallationState::NeedsReauth),
            "uninstalled" => Some(InstallationState::Uninstalled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationStatus {
    pub id: String,
    pub state: InstallationState,
    pub auth_class: AuthClass,
    pub company_id: String,
    pub location_id: Option<String>,
    pub app_id: Option<String>,
    pub scopes: Vec<String>,
    pub is_bulk: bool,
    pub approved_locations: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_refresh_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// A paid app's plan for this installation: `planId` of HighLevel's INSTALL webhook, then `newPlanId` of
    /// each PLAN_CHANGE (absent for a free app, or before the first such webhook).
    #[serde(default)]
    pub plan_id: Option<String>,
    /// HighLevel's time of the webhook that set `plan_id`.
    #[serde(default)]
    pub plan_changed_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_with_snake_case_state() {
        let now = Utc::now();
        let s = InstallationStatus {
            id: "inst".into(),
            state: InstallationState::NeedsReauth,
            auth_class: AuthClass::Company,
            company_id: "c".into(),
            location_id: None,
            app_id: Some("app".into()),
            scopes: vec!["oauth.write".into()],
            is_bulk: true,
            approved_locations: vec!["L1".into(), "L2".into()],
            expires_at: Some(now),
            last_refresh_at: None,
            last_error: Some("invalid_grant".into()),
            created_at: now,
            updated_at: now,
            plan_id: Some("plan_pro".into()),
            plan_changed_at: Some(now),
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["state"], "needs_reauth");
        assert!(json.get("access_token").is_none());
        assert_eq!(
            serde_json::from_value::<InstallationStatus>(json).unwrap(),
            s
        );
        assert_eq!(
            InstallationState::parse("uninstalled"),
            Some(InstallationState::Uninstalled)
        );
    }
}
