//! The diagnostic report behind `GET /api/locations/{locationId}/diagnostics` and `api-backend doctor`:
//! what the installation's token is, what the token api-backend would use for the location is, what each may
//! call, and what would fail and why.

use crate::bridge::Bridge;
use crate::error::ApiError;
use highlevel_client::diagnosis::{check_all, EndpointCheck, Presented};
use highlevel_client::HlError;
use serde::Serialize;
use shared_types::{AuthClass, Cause, Diagnosis, InstallationStatus, TokenAccess};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenSummary {
    #[schema(value_type = String)]
    pub auth_class: Option<AuthClass>,
    /// The location id (Location tokens) or company id (Company tokens).
    pub auth_class_id: Option<String>,
    /// The app client id the token was issued to.
    pub source_id: Option<String>,
    pub scopes: Vec<String>,
    pub expires_at: String,
    /// `claims` when read from the token itself, `oauth-backend` when taken from its report.
    pub read_from: &'static str,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub installation_id: String,
    pub installation_state: String,
    pub location_id: Option<String>,
    pub installation_token: Option<TokenSummary>,
    /// The token api-backend uses for the location (minted from the Company token when agency-level).
    pub location_token: Option<TokenSummary>,
    /// Endpoint by endpoint, for the token that is checked (the location token when a location is given).
    #[schema(value_type = Vec<Object>)]
    pub endpoints: Vec<EndpointCheck>,
    /// What would fail, and why.
    pub problems: Vec<Diagnosis>,
    pub ok: bool,
}

fn summary(t: &TokenAccess) -> TokenSummary {
    let p = Presented::of(t);
    let from_claims = !highlevel_client::TokenClaims::read(&t.access_token).is_empty();
    TokenSummary {
        auth_class: p.class,
        auth_class_id: p.class_id,
        source_id: p.source_id,
        scopes: p.scopes.unwrap_or_default(),
        expires_at: t.expires_at.to_rfc3339(),
        read_from: if from_claims {
            "claims"
        } else {
            "oauth-backend"
        },
    }
}

fn token_problem(e: HlError) -> Diagnosis {
    match e {
        HlError::Token(p) => Diagnosis {
            cause: Cause::Unknown,
            detail: format!("oauth-backend refused a token ({}): {}", p.code, p.detail),
            fix: p.fix.unwrap_or_else(|| {
                "See oauth-backend's installation status (GET /api/installations/{id}).".into()
            }),
        },
        other => Diagnosis {
            cause: Cause::Unknown,
            detail: other.to_string(),
            fix: "Check that oauth-backend and HighLevel are reachable, then run the doctor again."
                .into(),
        },
    }
}

/// Builds the report. `only` limits the checked endpoints to one (by name, e.g. `whitelabel.create`);
/// without it, white-label endpoints are listed but do not count as failures.
pub async fn report(
    bridge: &Bridge,
    installation: &InstallationStatus,
    location: Option<&str>,
    app_client_id: Option<&str>,
    only: Option<&str>,
) -> Result<Report, ApiError> {
    let mut problems = Vec::new();
    let inst_token = match bridge.token(&installation.id, None).await {
        Ok(t) => Some(t),
        Err(e) => {
            problems.push(token_problem(e));
            None
        }
    };
    let mut loc_token = None;
    if let Some(l) = location {
        let known = installation
            .location_id
            .iter()
            .chain(installation.approved_locations.iter());
        if let Some(exact) = known
            .into_iter()
            .find(|k| k.as_str() != l && k.eq_ignore_ascii_case(l))
        {
            problems.push(Diagnosis {
                cause: Cause::LocationCaseMismatch,
                detail: format!("location `{l}` differs from the installed `{exact}` only in letter case; HighLevel ids are case-sensitive"),
                fix: format!("Use `{exact}` exactly (not `{l}`)."),
            });
        } else {
            match bridge.token(&installation.id, Some(l)).await {
                Ok(t) => loc_token = Some(t),
                Err(e) => problems.push(token_problem(e)),
            }
        }
    }
    let checked = if location.is_some() {
        loc_token.as_ref()
    } else {
        inst_token.as_ref()
    };
    let mut endpoints = Vec::new();
    if let Some(t) = checked {
        endpoints = check_all(&Presented::of(t), location, app_client_id);
        // A Location token is never meant for the Company-only OAuth endpoints: those are not its to call.
        if t.auth_class == AuthClass::Location && only.is_none() {
            endpoints.retain(|c| c.needs_class == AuthClass::Location);
        }
        if let Some(name) = only {
            endpoints.retain(|c| c.endpoint == name);
            if endpoints.is_empty() {
                return Err(ApiError::InvalidRequest(format!(
                    "no endpoint named `{name}` (see the report's endpoint names)"
                )));
            }
        }
        for c in &endpoints {
            // White-label is never ours to call; a contact is read only to name PayTR's customer, with
            // placeholders when it cannot be: neither makes the installation unusable.
            let counts =
                only.is_some() || !(c.path.contains("/whitelabel") || c.endpoint == "contacts.get");
            if let (false, Some(d), true) = (c.ok, &c.diagnosis, counts) {
                if !problems
                    .iter()
                    .any(|p: &Diagnosis| p.cause == d.cause && p.detail == d.detail)
                {
                    problems.push(d.clone());
                }
            }
        }
    }
    Ok(Report {
        installation_id: installation.id.clone(),
        installation_state: installation.state.as_str().into(),
        location_id: location.map(str::to_owned),
        installation_token: inst_token.as_ref().map(summary),
        location_token: loc_token.as_ref().map(summary),
        ok: problems.is_empty(),
        endpoints,
        problems,
    })
}

/// The report as a terminal shows it.
pub fn render(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "installation {} ({})",
        r.installation_id, r.installation_state
    );
    let tok = |s: &mut String, label: &str, t: &Option<TokenSummary>| match t {
        Some(t) => {
            let _ = writeln!(
                s,
                "  {label}: {} token for {} (app {}), expires {}\n    scopes: {}",
                t.auth_class.map_or("unknown", |c| c.as_str()),
                t.auth_class_id.as_deref().unwrap_or("?"),
                t.source_id.as_deref().unwrap_or("?"),
                t.expires_at,
                t.scopes.join(" ")
            );
        }
        None => {
            let _ = writeln!(s, "  {label}: none");
        }
    };
    tok(&mut s, "installation token", &r.installation_token);
    if let Some(l) = &r.location_id {
        tok(
            &mut s,
            &format!("token for location {l}"),
            &r.location_token,
        );
    }
    if !r.endpoints.is_empty() {
        let _ = writeln!(s, "\nwhat it may call:");
        for c in &r.endpoints {
            let mark = if c.ok { "ok  " } else { "FAIL" };
            let _ = writeln!(
                s,
                "  {mark} {:<6} {:<45} needs {} + {}",
                c.method, c.path, c.needs_class, c.needs_scope
            );
            if let Some(d) = &c.diagnosis {
                let _ = writeln!(
                    s,
                    "       {}: {}",
                    serde_json::to_value(d.cause)
                        .unwrap_or_default()
                        .as_str()
                        .unwrap_or("?"),
                    d.detail
                );
            }
        }
    }
    if r.problems.is_empty() {
        let _ = writeln!(s, "\nnothing would fail.");
    } else {
        let _ = writeln!(s, "\nwhat would fail:");
        for d in &r.problems {
            let cause = serde_json::to_value(d.cause).unwrap_or_default();
            let _ = writeln!(
                s,
                "  - {}: {}\n    fix: {}",
                cause.as_str().unwrap_or("?"),
                d.detail,
                d.fix
            );
        }
    }
    s
}
