//! Why HighLevel refused (or would refuse) a call, and what to do about it (docs/design.md, diagnosis). Computed from
//! HighLevel's own message, the token's claims, the endpoint's requirements and the request's location id.

use crate::claims::TokenClaims;
use crate::endpoints::{Endpoint, TABLE};
use shared_types::{AuthClass, Cause, Diagnosis, TokenAccess};

/// HighLevel's messages, verbatim (docs/highlevel.md): users search for these exact strings.
pub mod messages {
    pub const INVALID_JWT: &str = "Invalid JWT";
    pub const TOKEN_INVALID: &str = "Invalid token: access token is invalid";
    pub const SCOPE: &str = "The token is not authorized for this scope.";
    pub const AUTH_CLASS: &str = "This authClass type is not allowed to access this scope.";
    pub const FORBIDDEN_RESOURCE: &str = "Forbidden resource";
    pub const LOCATION_ACCESS: &str = "The token does not have access to this location.";
}

/// What the presented token is: its claims, filled in from what the token service reported where the
/// token is not a readable JWT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presented {
    pub class: Option<AuthClass>,
    /// The location id (Location tokens) or company id (Company tokens).
    pub class_id: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub source_id: Option<String>,
    pub exp: Option<i64>,
}

impl Presented {
    pub fn of(token: &TokenAccess) -> Presented {
        let c = TokenClaims::read(&token.access_token);
        Presented::from_claims(&c, Some(token))
    }

    pub fn from_claims(c: &TokenClaims, reported: Option<&TokenAccess>) -> Presented {
        let reported_id = reported.map(|t| match t.auth_class {
            AuthClass::Location => t.location_id.clone().unwrap_or_default(),
            AuthClass::Company => t.company_id.clone(),
        });
        Presented {
            class: c.class().or(reported.map(|t| t.auth_class)),
            class_id: c.auth_class_id.clone().or(reported_id),
            scopes: c
                .scopes()
                .map(<[String]>::to_vec)
                .or(reported.map(|t| t.scopes.clone())),
            source_id: c.source_id.clone(),
            exp: c.exp.or(reported.map(|t| t.expires_at.timestamp())),
        }
    }
}

/// The situation a call is (or was) in.
pub struct Context<'a> {
    pub endpoint: &'a Endpoint,
    pub token: &'a Presented,
    /// The location id the request names, if any.
    pub location: Option<&'a str>,
    /// This app's client id, when known: a token of another app is a credentials mix-up.
    pub app_client_id: Option<&'a str>,
}

fn d(cause: Cause, detail: String, fix: impl Into<String>) -> Diagnosis {
    Diagnosis {
        cause,
        detail,
        fix: fix.into(),
    }
}

fn custom_provider_fix() -> &'static str {
    "A third-party gateway registers with POST /payments/custom-provider/provider and connects its keys with POST /payments/custom-provider/connect, both with a Location token; api-backend does both with PUT /api/locations/{locationId}/payments/provider."
}

/// Why a call in this context would be refused, before it is sent; `None` if nothing is known to be wrong.
pub fn predict(ctx: &Context<'_>) -> Option<Diagnosis> {
    let ep = ctx.endpoint;
    let t = ctx.token;
    if let (Some(source), Some(app)) = (t.source_id.as_deref(), ctx.app_client_id) {
        if source != app {
            return Some(d(
                Cause::AppCredentialsMismatch,
                format!("the token was issued to app client id `{source}`, but this deployment is configured for `{app}`"),
                "Use one marketplace app's credentials everywhere: HIGHLEVEL_CLIENT_ID/SECRET of oauth-backend must be the app the install was made with; reinstall from that app if they drifted.",
            ));
        }
    }
    if let Some(exp) = t.exp {
        if exp <= chrono::Utc::now().timestamp() {
            return Some(d(
                Cause::TokenExpired,
                format!("the token expired at {}", chrono::DateTime::from_timestamp(exp, 0).unwrap_or_default()),
                "Fetch a fresh token from oauth-backend (POST /api/token-access/{id}/refresh with the rejected token); api-backend does this once automatically.",
            ));
        }
    }
    match (ep.class, t.class) {
        (AuthClass::Location, Some(AuthClass::Company)) => {
            let mut fix = format!(
                "{} {} takes a Location (sub-account) token. Mint one from the Company token with POST /oauth/locationToken (companyId, locationId; scope oauth.write), or call api-backend, which does it automatically.",
                ep.method.as_str(),
                ep.path
            );
            if ep.whitelabel {
                fix = format!("{fix} Note also: {}", custom_provider_fix());
            }
            return Some(d(
                Cause::CompanyTokenOnLocationEndpoint,
                format!(
                    "a Company (agency) token was presented to {} {}, a Location-only endpoint",
                    ep.method.as_str(),
                    ep.path
                ),
                fix,
            ));
        }
        (AuthClass::Company, Some(AuthClass::Location)) => {
            return Some(d(
                Cause::LocationTokenOnCompanyEndpoint,
                format!("a Location token was presented to {} {}, which takes a Company token", ep.method.as_str(), ep.path),
                "Use the installation's Company token (GET /api/token-access/{id} without location_id) for this call.",
            ));
        }
        _ => {}
    }
    // An operation HighLevel's files give no scope for is not judged on scopes.
    if let Some(scopes) = t.scopes.as_ref().filter(|_| !ep.scope.is_empty()) {
        if !scopes.iter().any(|s| s == ep.scope) {
            return Some(d(
                Cause::MissingScope,
                format!("the token lacks the scope `{}` that {} {} needs (it has: {})", ep.scope, ep.method.as_str(), ep.path, scopes.join(" ")),
                format!("Add `{}` to the app's scopes in the marketplace app settings and to HIGHLEVEL_SCOPES, then have the user install again so a token with it is issued.", ep.scope),
            ));
        }
    }
    if let (Some(AuthClass::Location), Some(own), Some(wanted)) =
        (t.class, t.class_id.as_deref(), ctx.location)
    {
        if own != wanted {
            return Some(if own.eq_ignore_ascii_case(wanted) {
                d(
                    Cause::LocationCaseMismatch,
                    format!("the request names location `{wanted}` but the token is for `{own}`: they differ only in letter case, and HighLevel ids are case-sensitive"),
                    format!("Use `{own}` exactly (not `{wanted}`) wherever the location id is stored or typed."),
                )
            } else {
                d(
                    Cause::LocationMismatch,
                    format!("the request names location `{wanted}` but the token is for location `{own}`"),
                    format!("Use a token for `{wanted}` (api-backend picks it from the location in the path), or send `{own}` as the location."),
                )
            });
        }
    }
    if ep.whitelabel {
        return Some(d(
            Cause::WrongProviderEndpoint,
            format!("{} {} only re-brands HighLevel's own NMI or Authorize.net gateways; it does not register a third-party gateway", ep.method.as_str(), ep.path),
            custom_provider_fix(),
        ));
    }
    None
}

/// Why HighLevel refused a call that was sent: its message first, then what the context shows.
pub fn diagnose(ctx: &Context<'_>, status: u16, message: &str) -> Diagnosis {
    if ctx.endpoint.whitelabel {
        let mut w = d(
            Cause::WrongProviderEndpoint,
            format!(
                "HighLevel answered {status} `{message}` on {}, which only re-brands HighLevel's own NMI or Authorize.net gateways",
                ctx.endpoint.path
            ),
            custom_provider_fix(),
        );
        if let Some(p) = predict(ctx).filter(|p| p.cause != Cause::WrongProviderEndpoint) {
            w.detail = format!("{}; besides, {}", w.detail, p.detail);
        }
        return w;
    }
    if message.starts_with(messages::INVALID_JWT) {
        return d(
            Cause::TokenNotIssuedByHighlevel,
            "HighLevel does not recognise the bearer token: it was not issued by this HighLevel environment, or it was truncated".into(),
            "Send the access_token exactly as oauth-backend served it; check HIGHLEVEL_API_URL points at the environment the install was made in.",
        );
    }
    if message.starts_with(messages::TOKEN_INVALID) {
        return d(
            Cause::TokenExpired,
            "the access token expired or was replaced by a refresh".into(),
            "Ask oauth-backend for the current token (POST /api/token-access/{id}/refresh with the rejected token) and send the request again; api-backend does this once by itself.",
        );
    }
    if let Some(p) = predict(ctx) {
        return p;
    }
    match status {
        422 | 400 => d(
            Cause::ValidationFailed,
            format!("HighLevel refused the request's fields: {message}"),
            "Correct the fields HighLevel names (see the endpoint's required fields in HighLevel's OpenAPI files) and send it again.",
        ),
        429 => d(
            Cause::RateLimited,
            "HighLevel's rate limit for this location or company was exceeded".into(),
            "Wait for the interval in X-RateLimit-Interval-Milliseconds and spread requests out; api-backend paces its own calls.",
        ),
        _ => {
            let hint = match message {
                m if m.starts_with(messages::FORBIDDEN_RESOURCE) || m.starts_with(messages::AUTH_CLASS) => {
                    "HighLevel refused the token's class for this endpoint; compare the token's authClass with the endpoint's requirement (api-backend doctor shows both)."
                }
                m if m.starts_with(messages::LOCATION_ACCESS) => {
                    "The token is for another location: use a token of the location the request names."
                }
                m if m.starts_with(messages::SCOPE) => {
                    "The token lacks this endpoint's scope: add it to the app and install again."
                }
                _ => "Run `api-backend doctor --installation <id> --location <id>` for what this token may call.",
            };
            d(
                Cause::Unknown,
                format!("HighLevel answered {status}: {message}"),
                hint,
            )
        }
    }
}

/// One line of a doctor report: an endpoint and whether this token may call it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EndpointCheck {
    pub endpoint: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    pub needs_class: AuthClass,
    pub needs_scope: &'static str,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
}

/// What this token may call, endpoint by endpoint.
pub fn check_all(
    token: &Presented,
    location: Option<&str>,
    app_client_id: Option<&str>,
) -> Vec<EndpointCheck> {
    TABLE
        .iter()
        .map(|ep| {
            let diagnosis = predict(&Context {
                endpoint: ep,
                token,
                location,
                app_client_id,
            });
            EndpointCheck {
                endpoint: ep.name,
                method: ep.method.as_str(),
                path: ep.path,
                needs_class: ep.class,
                needs_scope: ep.scope,
                ok: diagnosis.is_none(),
                diagnosis,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::*;

    fn token(class: AuthClass, id: &str, scopes: &[&str]) -> Presented {
        Presented {
            class: Some(class),
            class_id: Some(id.into()),
            scopes: Some(scopes.iter().map(|s| s.to_string()).collect()),
            source_id: Some("app".into()),
            exp: Some(chrono::Utc::now().timestamp() + 3600),
        }
    }

    fn ctx<'a>(ep: &'a Endpoint, t: &'a Presented, loc: Option<&'a str>) -> Context<'a> {
        Context {
            endpoint: ep,
            token: t,
            location: loc,
            app_client_id: Some("app"),
        }
    }

    #[test]
    fn first_incident_company_token_on_products() {
        let t = token(AuthClass::Company, "c1", &["products.write"]);
        let dg = diagnose(
            &ctx(&PRODUCTS_CREATE, &t, Some("L1")),
            403,
            "Forbidden resource",
        );
        assert_eq!(dg.cause, Cause::CompanyTokenOnLocationEndpoint);
        assert!(dg.fix.contains("/oauth/locationToken"));
    }

    #[test]
    fn case_only_difference_names_the_exact_id() {
        let t = token(AuthClass::Location, "AbC123", &["products.write"]);
        let dg = diagnose(
            &ctx(&PRODUCTS_CREATE, &t, Some("abc123")),
            403,
            messages::LOCATION_ACCESS,
        );
        assert_eq!(dg.cause, Cause::LocationCaseMismatch);
        assert!(dg.fix.contains("`AbC123`") && dg.fix.contains("`abc123`"));
        let dg = diagnose(
            &ctx(&PRODUCTS_CREATE, &t, Some("other")),
            403,
            messages::LOCATION_ACCESS,
        );
        assert_eq!(dg.cause, Cause::LocationMismatch);
    }

    #[test]
    fn second_incident_whitelabel_is_the_wrong_endpoint() {
        let t = token(AuthClass::Company, "c1", &["payments/integration.write"]);
        let dg = diagnose(
            &ctx(&WHITELABEL_CREATE, &t, Some("L1")),
            401,
            messages::AUTH_CLASS,
        );
        assert_eq!(dg.cause, Cause::WrongProviderEndpoint);
        assert!(dg.fix.contains("custom-provider"));
    }

    #[test]
    fn scope_app_and_expiry() {
        let t = token(AuthClass::Location, "L1", &["products.readonly"]);
        assert_eq!(
            predict(&ctx(&PRODUCTS_CREATE, &t, None)).unwrap().cause,
            Cause::MissingScope
        );
        let mut other_app = token(AuthClass::Location, "L1", &["products.write"]);
        other_app.source_id = Some("another".into());
        assert_eq!(
            predict(&ctx(&PRODUCTS_CREATE, &other_app, None))
                .unwrap()
                .cause,
            Cause::AppCredentialsMismatch
        );
        let dg = diagnose(&ctx(&PRODUCTS_LIST, &t, None), 401, messages::TOKEN_INVALID);
        assert_eq!(dg.cause, Cause::TokenExpired);
        assert!(predict(&ctx(&PRODUCTS_LIST, &t, Some("L1"))).is_none());
    }
}
