//! Which installation serves a location: a Location installation of that location first, else a Company
//! installation that approves it, else (when the caller's company is known, as for an agency user's session)
//! the company's installation, letting oauth-backend check HighLevel's list of installed locations.
//!
//! Only answers that hold whoever asks are remembered (for a minute, keyed by the location alone): a Location
//! installation of that location, or a Company installation whose approved list names it. The company
//! fallback is a guess made for one caller's company and is never remembered, so one tenant's request can
//! never change what another tenant is served.

use super::Bridge;
use crate::error::ApiError;
use shared_types::{AuthClass, Cause, Diagnosis, InstallationState, InstallationStatus};
use std::time::Duration;

/// How long a definitive answer is remembered.
pub const REMEMBER: Duration = Duration::from_secs(60);
/// Locations remembered at most (one entry each; the oldest go first).
pub const REMEMBER_MAX: u64 = 100_000;

pub type ResolveCache = moka::sync::Cache<String, Resolved>;

pub fn resolve_cache() -> ResolveCache {
    moka::sync::Cache::builder()
        .time_to_live(REMEMBER)
        .max_capacity(REMEMBER_MAX)
        .build()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub installation_id: String,
    pub auth_class: AuthClass,
    pub company_id: String,
    /// The company fallback: the caller's company installation, not yet known to serve the location
    /// (oauth-backend must confirm it before anything is served from it).
    pub guessed: bool,
}

#[derive(serde::Deserialize)]
struct List {
    installations: Vec<InstallationStatus>,
}

impl Bridge {
    pub async fn installations(
        &self,
        company: Option<&str>,
        location: Option<&str>,
    ) -> Result<Vec<InstallationStatus>, ApiError> {
        let mut q = Vec::new();
        if let Some(c) = company {
            q.push(("company_id", c));
        }
        if let Some(l) = location {
            q.push(("location_id", l));
        }
        let url = format!("{}/api/installations", self.base_url);
        let list: List = self.send(self.http.get(url).query(&q)).await?;
        Ok(list.installations)
    }

    pub async fn installation(&self, id: &str) -> Result<InstallationStatus, ApiError> {
        let url = format!("{}/api/installations/{id}", self.base_url);
        Ok(self.send(self.http.get(url)).await?)
    }

    /// Forgets what was remembered about a location (after an uninstall or a refusal).
    pub fn forget(&self, location: &str) {
        self.resolved.invalidate(location);
    }

    /// The installation serving `location` for a caller of `company_hint` (an agency user's company) limited
    /// to `allowed` installations (a scoped service JWT). A remembered answer is used only when it fits the
    /// caller; otherwise oauth-backend is asked, and only a definitive answer is remembered.
    pub async fn resolve(
        &self,
        location: &str,
        company_hint: Option<&str>,
        allowed: Option<&[String]>,
    ) -> Result<Resolved, ApiError> {
        let fits = |r: &Resolved| {
            company_hint.is_none_or(|c| c == r.company_id)
                && allowed.is_none_or(|a| a.contains(&r.installation_id))
        };
        if let Some(r) = self.resolved.get(location) {
            if fits(&r) {
                return Ok(r);
            }
        }
        let all = self.installations(company_hint, None).await?;
        let (found, definitive) = pick(&all, location, company_hint)?;
        if definitive {
            self.resolved.insert(location.to_owned(), found.clone());
        }
        if fits(&found) {
            return Ok(found);
        }
        // A scoped service may still reach the location through another installation it is allowed.
        if let Some(allowed) = allowed {
            let mine: Vec<_> = all
                .iter()
                .filter(|i| allowed.contains(&i.id))
                .cloned()
                .collect();
            if let Ok((r, _)) = pick(&mine, location, None) {
                return Ok(r);
            }
        }
        Ok(found)
    }
}

fn resolved(i: &InstallationStatus) -> Resolved {
    Resolved {
        installation_id: i.id.clone(),
        auth_class: i.auth_class,
        company_id: i.company_id.clone(),
        guessed: false,
    }
}

/// The choice itself, on oauth-backend's list, and whether it holds for every caller (it does unless it is
/// the company fallback, a guess for the caller's own company).
fn pick(
    all: &[InstallationStatus],
    location: &str,
    company_hint: Option<&str>,
) -> Result<(Resolved, bool), ApiError> {
    // Active, and holding a token (an INSTALL webhook can record a location before its OAuth callback).
    let active = || {
        all.iter()
            .filter(|i| i.state == InstallationState::Active && i.expires_at.is_some())
    };
    if let Some(i) = active()
        .find(|i| i.auth_class == AuthClass::Location && i.location_id.as_deref() == Some(location))
    {
        return Ok((resolved(i), true));
    }
    if let Some(i) = active().find(|i| {
        i.auth_class == AuthClass::Company && i.approved_locations.iter().any(|l| l == location)
    }) {
        return Ok((resolved(i), true));
    }
    // One letter's case off: say so, with the exact id.
    let known = active().flat_map(|i| i.location_id.iter().chain(i.approved_locations.iter()));
    if let Some(exact) = known.into_iter().find(|l| l.eq_ignore_ascii_case(location)) {
        return Err(ApiError::LocationCaseMismatch(Diagnosis {
            cause: Cause::LocationCaseMismatch,
            detail: format!("location `{location}` is not installed, but `{exact}` is: the ids differ only in letter case, and HighLevel ids are case-sensitive"),
            fix: format!("Use `{exact}` exactly (not `{location}`) in the path and wherever the id is stored."),
        }));
    }
    if let Some(company) = company_hint {
        if let Some(i) =
            active().find(|i| i.auth_class == AuthClass::Company && i.company_id == company)
        {
            let mut guess = resolved(i);
            guess.guessed = true;
            return Ok((guess, false));
        }
    }
    let blocked = all.iter().find(|i| {
        i.location_id.as_deref() == Some(location)
            || i.approved_locations.iter().any(|l| l == location)
    });
    Err(match blocked {
        Some(i) => ApiError::LocationNotInstalled {
            detail: format!("the installation for location `{location}` is {}", i.state.as_str()),
            fix: "Have a user of this location install the app again (GET /oauth/install on oauth-backend).".into(),
        },
        None => ApiError::LocationNotInstalled {
            detail: format!("no installation serves location `{location}`"),
            fix: "Install the app on this location (GET /oauth/install on oauth-backend), or from the agency view for all its sub-accounts.".into(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(
        id: &str,
        class: AuthClass,
        loc: Option<&str>,
        approved: &[&str],
    ) -> InstallationStatus {
        let now = chrono::Utc::now();
        InstallationStatus {
            id: id.into(),
            state: InstallationState::Active,
            auth_class: class,
            company_id: "c1".into(),
            location_id: loc.map(Into::into),
            app_id: None,
            scopes: vec![],
            is_bulk: false,
            approved_locations: approved.iter().map(|s| s.to_string()).collect(),
            expires_at: Some(now),
            last_refresh_at: None,
            last_error: None,
            created_at: now,
            updated_at: now,
            plan_id: None,
            plan_changed_at: None,
        }
    }

    #[test]
    fn location_installation_first_then_company_then_case_hint() {
        let all = vec![
            inst("company", AuthClass::Company, None, &["L1", "L2"]),
            inst("loc", AuthClass::Location, Some("L1"), &["L1"]),
        ];
        assert_eq!(pick(&all, "L1", None).unwrap().0.installation_id, "loc");
        assert_eq!(pick(&all, "L2", None).unwrap().0.installation_id, "company");
        match pick(&all, "l2", None) {
            Err(ApiError::LocationCaseMismatch(d)) => assert!(d.fix.contains("`L2`")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            pick(&all, "L9", None),
            Err(ApiError::LocationNotInstalled { .. })
        ));
        let (guess, definitive) = pick(&all, "L9", Some("c1")).unwrap();
        assert_eq!(guess.installation_id, "company");
        assert!(
            !definitive,
            "the company fallback is a guess for one caller"
        );
    }
}
