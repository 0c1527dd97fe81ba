//! The tenant wall, in one place: every location route declares in its signature who may call it, as an
//! extractor, so no handler can forget the check.
//!
//! - [`Located`]: a caller allowed to act on the `{locationId}` of the path (a location user on their own
//!   location, an agency user on their company's locations, a service JWT on any, or only through the
//!   installations its `installations` claim lists), with the installation that serves it.
//! - [`LocationAdmin`]: the same, and an admin of the location or agency (or a service): for what decides
//!   where money goes.
//! - [`CompanyAdmin`]: a caller allowed to act on the `{companyId}` of the path with its Company token: a
//!   service JWT (a scoped one only through the company's installation), or an admin of that agency. Location
//!   users never reach a Company token.

use super::State;
use crate::bridge::Tokens;
use crate::error::ApiError;
use crate::sessions::{authorize_location, Caller};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;
use shared_types::{AuthClass, InstallationState};

/// A caller checked for the location in the path.
#[derive(Debug)]
pub struct Located {
    pub caller: Caller,
    /// The `{locationId}` of the path, checked.
    pub location: String,
    /// The installation serving the location.
    pub installation: String,
    pub company_id: String,
}

impl Located {
    /// Tokens to act on the location with: always a Location token (minted from the Company token when the
    /// install is agency-level).
    pub fn tokens(&self, state: &State) -> Tokens {
        Tokens {
            bridge: state.bridge.clone(),
            installation: self.installation.clone(),
            location: Some(self.location.clone()),
        }
    }

    async fn check(req: HttpRequest) -> Result<Located, ApiError> {
        let state = req
            .app_data::<State>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("the application state is not registered".into()))?;
        let location = req
            .match_info()
            .get("locationId")
            .ok_or_else(|| ApiError::Internal("a Located route without {locationId}".into()))?
            .to_owned();
        let caller = state
            .sessions
            .caller(service_common::http::authorization(&req))?;
        let resolved = authorize_location(&state.bridge, &caller, &location).await?;
        Ok(Located {
            caller,
            location,
            installation: resolved.installation_id,
            company_id: resolved.company_id,
        })
    }
}

impl FromRequest for Located {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(Located::check(req.clone()))
    }
}

/// A [`Located`] caller who is also an admin of the location or agency, or a service.
#[derive(Debug)]
pub struct LocationAdmin(pub Located);

impl FromRequest for LocationAdmin {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let at = Located::check(req).await?;
            if !at.caller.is_admin() {
                return Err(ApiError::AdminRequired(format!(
                    "changing the payment provider of `{}` needs an admin of the location or agency; this session's role is `{}`",
                    at.location,
                    at.caller.role_name()
                )));
            }
            Ok(LocationAdmin(at))
        })
    }
}

/// A [`Located`] caller of the HighLevel proxy: an admin of the location or agency (or a service) when the
/// proxied operation administers the location or the app ([`highlevel_client::operations::needs_admin`]), any
/// user of it otherwise.
#[derive(Debug)]
pub struct ProxyLocated(pub Located);

impl FromRequest for ProxyLocated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            // /api/locations/{id}/highlevel/{rest}: the raw path, as the proxy reads it.
            let rest = req
                .uri()
                .path()
                .splitn(6, '/')
                .nth(5)
                .unwrap_or("")
                .to_owned();
            let method = req.method().as_str().to_owned();
            let at = Located::check(req).await?;
            if highlevel_client::operations::needs_admin(&method, &rest) && !at.caller.is_admin() {
                return Err(ApiError::AdminRequired(format!(
                    "{method} /{rest} administers location `{}` or the app; it needs an admin of the location or agency, and this session's role is `{}`",
                    at.location,
                    at.caller.role_name()
                )));
            }
            Ok(ProxyLocated(at))
        })
    }
}

/// A caller checked for the company in the path, with the agency installation that serves it.
#[derive(Debug)]
pub struct CompanyAdmin {
    pub caller: Caller,
    /// The `{companyId}` of the path, checked.
    pub company_id: String,
    /// The company's (agency) installation.
    pub installation: String,
}

impl CompanyAdmin {
    /// The company's Company token.
    pub fn tokens(&self, state: &State) -> Tokens {
        Tokens {
            bridge: state.bridge.clone(),
            installation: self.installation.clone(),
            location: None,
        }
    }

    async fn check(req: HttpRequest) -> Result<CompanyAdmin, ApiError> {
        let state = req
            .app_data::<State>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("the application state is not registered".into()))?;
        let company = req
            .match_info()
            .get("companyId")
            .ok_or_else(|| ApiError::Internal("a CompanyAdmin route without {companyId}".into()))?
            .to_owned();
        shared_types::check_id("company id", &company).map_err(ApiError::InvalidRequest)?;
        let header = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let caller = state.sessions.caller(header)?;
        if let Caller::User(s) = &caller {
            if s.location_id.is_some() || s.company_id != company {
                return Err(ApiError::LocationNotAllowed(format!(
                    "this session is for {} of company `{}` and may not act for company `{company}`",
                    if s.location_id.is_some() { "a location user" } else { "an agency user" },
                    s.company_id
                )));
            }
            if !caller.is_admin() {
                return Err(ApiError::AdminRequired(format!(
                    "acting with company `{company}`'s agency token needs an agency admin; this session's role is `{}`",
                    caller.role_name()
                )));
            }
        }
        let installation = state
            .bridge
            .installations(Some(&company), None)
            .await?
            .into_iter()
            .find(|i| {
                i.auth_class == AuthClass::Company
                    && i.company_id == company
                    && i.state == InstallationState::Active
                    && i.expires_at.is_some()
            })
            .ok_or_else(|| {
                ApiError::CompanyNotInstalled(format!(
                    "no active agency installation serves company `{company}`"
                ))
            })?
            .id;
        if let Some(allowed) = caller.allowed_installations() {
            if !allowed.contains(&installation) {
                return Err(ApiError::CallerNotAllowed(format!(
                    "this service JWT is limited to installations {allowed:?}; company `{company}` is served by `{installation}`"
                )));
            }
        }
        Ok(CompanyAdmin {
            caller,
            company_id: company,
            installation,
        })
    }
}

impl FromRequest for CompanyAdmin {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(CompanyAdmin::check(req.clone()))
    }
}
