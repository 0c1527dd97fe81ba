//! The install link and the OAuth callback. A callback without `state` is an install started on the app's
//! Marketplace listing (HighLevel sends only `?code=` then) and is accepted. The `state` is `<id>.<expires_ms>.<user type>.<HMAC>`: random,
//! signed, expiring in ten minutes and single-use. `/oauth/install` writes nothing (a flood of it cannot fill
//! the disk); the callback records the id once accepted and refuses it the second time (`store::states`).
//! Everything stored about the installation comes from HighLevel's answer.

use super::State;
use crate::crypto::{constant_time_eq, random_id};
use crate::error::AppError;
use crate::store::installations::InstallFacts;
use crate::store::{self, now_ms};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64URL, Engine};
use highlevel_client::OAuthError;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha2::Sha256;
use shared_types::AuthClass;

const STATE_TTL_MS: i64 = 10 * 60 * 1000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/oauth/install", web::get().to(install))
        .route("/oauth/callback", web::get().to(callback));
}

/// `context` separates the signatures of different state formats.
fn sign_with(key: &[u8], context: &[u8], payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(context);
    mac.update(payload.as_bytes());
    B64URL.encode(mac.finalize().into_bytes())
}

/// States of earlier versions: `<id>.<HMAC>`, the id stored in `oauth_states`.
fn sign_legacy(state: &crate::state::AppState, id: &str) -> String {
    sign_with(
        state.settings.service_jwt_secret.expose_secret().as_bytes(),
        b"oauth-state:",
        id,
    )
}

/// Signed with the OAuth-state key alone (HKDF of SERVICE_JWT_SECRET, purpose `OauthState`): a leak of it
/// signs states and nothing else.
fn sign(state: &crate::state::AppState, payload: &str) -> String {
    let key = service_common::crypto::purpose::purpose_key(
        &state.settings.service_jwt_secret,
        service_common::crypto::purpose::Purpose::OauthState,
    );
    sign_with(&key, b"oauth-state-v2:", payload)
}

/// A state's payload: `<id>.<expires_ms>.<C|L|->` (the user type the install asked for, if any).
fn state_payload(id: &str, expires_at: i64, user_type: Option<&str>) -> String {
    let t = match user_type {
        Some("Company") => "C",
        Some("Location") => "L",
        _ => "-",
    };
    format!("{id}.{expires_at}.{t}")
}

/// A state this service issued, checked: signature and expiry. Single use is checked by the caller.
struct IssuedState {
    id: String,
    expires_at: i64,
    user_type: Option<String>,
    /// An earlier version's state (stored in `oauth_states`).
    legacy: bool,
}

fn verify_state(
    state: &crate::state::AppState,
    signed: &str,
    now: i64,
) -> Result<IssuedState, AppError> {
    let parts: Vec<&str> = signed.split('.').collect();
    match parts[..] {
        [id, expires, t, sig] => {
            let payload = format!("{id}.{expires}.{t}");
            if id.len() != 32 || !constant_time_eq(sig, &sign(state, &payload)) {
                return Err(AppError::InvalidState(
                    "the `state` signature does not match".into(),
                ));
            }
            let expires_at: i64 = expires
                .parse()
                .map_err(|_| AppError::InvalidState("the `state` is malformed".into()))?;
            if expires_at <= now {
                return Err(AppError::InvalidState("the `state` has expired".into()));
            }
            let user_type = match t {
                "C" => Some("Company".to_owned()),
                "L" => Some("Location".to_owned()),
                _ => None,
            };
            Ok(IssuedState {
                id: id.to_owned(),
                expires_at,
                user_type,
                legacy: false,
            })
        }
        [id, sig] => {
            if id.len() != 32 || !constant_time_eq(sig, &sign_legacy(state, id)) {
                return Err(AppError::InvalidState(
                    "the `state` signature does not match".into(),
                ));
            }
            Ok(IssuedState {
                id: id.to_owned(),
                expires_at: now + STATE_TTL_MS,
                user_type: None,
                legacy: true,
            })
        }
        _ => Err(AppError::InvalidState("the `state` is malformed".into())),
    }
}

/// Starts an install: 302 to HighLevel's consent page with a signed, expiring `state`.
#[utoipa::path(get, path = "/oauth/install", tag = "oauth",
    params(("user_type" = Option<String>, Query, description = "Company or Location")),
    responses((status = 302, description = "to HighLevel's consent page"), (status = "4XX", body = shared_types::Problem)))]
pub async fn install(req: HttpRequest, state: State) -> Result<HttpResponse, AppError> {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let user_type = params
        .iter()
        .find(|(k, _)| k == "user_type")
        .map(|(_, v)| v.clone());
    if let Some(t) = &user_type {
        if AuthClass::parse(t).is_none() {
            return Err(AppError::InvalidRequest(
                "user_type must be Company or Location".into(),
            ));
        }
    }
    // Nothing is stored: the state carries its expiry and user type under the signature.
    let payload = state_payload(
        &random_id(""),
        now_ms() + STATE_TTL_MS,
        user_type.as_deref(),
    );
    let signed = format!("{payload}.{}", sign(&state, &payload));
    let mut url = url::Url::parse(&state.settings.highlevel_authorize_url)
        .map_err(|e| AppError::Internal(format!("HIGHLEVEL_AUTHORIZE_URL is not a URL: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &state.settings.client_id)
            .append_pair("redirect_uri", &state.settings.redirect_uri)
            .append_pair("scope", &state.settings.scopes)
            .append_pair("state", &signed);
        // The simulator's consent choices pass through, so local runs and tests can drive it.
        for (k, v) in params.iter().filter(|(k, _)| k.starts_with("sim_")) {
            q.append_pair(k, v);
        }
    }
    Ok(HttpResponse::Found()
        .insert_header(("location", url.as_str()))
        .insert_header(("cache-control", "no-store"))
        .finish())
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// HighLevel's redirect after consent: `?code=` (and `state` when the install started here; without it, an
/// install started on the Marketplace). Exchanges the code and stores the installation.
#[utoipa::path(get, path = "/oauth/callback", tag = "oauth",
    params(("code" = String, Query), ("state" = Option<String>, Query)),
    responses((status = 200, description = "an HTML page", content_type = "text/html"), (status = 302, description = "to POST_INSTALL_REDIRECT_URL?installation_id="), (status = "4XX", body = shared_types::Problem)))]
pub async fn callback(state: State, q: web::Query<Callback>) -> Result<HttpResponse, AppError> {
    if let Some(err) = &q.error {
        return Err(AppError::InvalidRequest(format!(
            "HighLevel did not grant access: {err} {}",
            q.error_description.as_deref().unwrap_or("")
        )));
    }
    // Without `state` the install was started on the app's Marketplace listing: HighLevel sends only `code`
    // there. A `state` that is present must be one we issued, unexpired and unused.
    let issued = match q.state.as_deref() {
        None => None,
        Some(signed) => Some(verify_state(&state, signed, now_ms())?),
    };
    let used = || AppError::InvalidState("the `state` was already used or has expired".into());
    let user_type = match &issued {
        None => None,
        Some(issued) if issued.legacy => {
            let (sid, now) = (issued.id.clone(), now_ms());
            state
                .tokens
                .db
                .run(move |c| store::states::consume_legacy(c, &sid, now))
                .await?
                .ok_or_else(used)?
        }
        Some(issued) => {
            // Refused before the code reaches HighLevel; recorded once the code is exchanged (below), so a flood
            // of forged codes with a valid state writes nothing.
            let sid = issued.id.clone();
            if state
                .tokens
                .db
                .run(move |c| store::states::is_used(c, &sid))
                .await?
            {
                return Err(used());
            }
            issued.user_type.clone()
        }
    };
    let code = q
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() < 4096)
        .ok_or_else(|| AppError::InvalidRequest("the callback has no `code`".into()))?;
    // The user type the install link asked for; none for a Marketplace install (or a link that named none):
    // HighLevel's answer says whether it is a Company or a Location install (`userType`).
    let grant = state
        .tokens
        .hl
        .exchange_code(code, user_type.as_deref(), &state.settings.redirect_uri)
        .await
        .map_err(|e| match e {
            OAuthError::Unavailable(why) => AppError::HighlevelUnavailable(why),
            other => {
                AppError::HighlevelRefused(format!("the authorization code was refused: {other}"))
            }
        })?;

    if let Some(issued) = issued.as_ref().filter(|i| !i.legacy) {
        let (sid, expires_at) = (issued.id.clone(), issued.expires_at);
        if !state
            .tokens
            .db
            .run(move |c| store::states::mark_used(c, &sid, expires_at))
            .await?
        {
            // A concurrent callback with the same state got there first.
            return Err(used());
        }
    }
    let claims = grant.claims();
    let auth_class = grant
        .user_type
        .as_deref()
        .or(claims.auth_class.as_deref())
        .and_then(AuthClass::parse)
        .ok_or_else(|| {
            AppError::HighlevelRefused(
                "HighLevel's answer does not say whether this is a Company or a Location token"
                    .into(),
            )
        })?;
    let location_id = match auth_class {
        AuthClass::Location => Some(
            grant
                .location_id
                .clone()
                .or(claims.auth_class_id.clone())
                .ok_or_else(|| {
                    AppError::HighlevelRefused("a Location token without a locationId".into())
                })?,
        ),
        AuthClass::Company => None,
    };
    let company_id = grant
        .company_id
        .clone()
        .or_else(|| {
            (auth_class == AuthClass::Company)
                .then(|| claims.auth_class_id.clone())
                .flatten()
        })
        .ok_or_else(|| AppError::HighlevelRefused("HighLevel's answer has no companyId".into()))?;
    if claims
        .source_id
        .as_deref()
        .is_some_and(|s| s != state.settings.client_id)
    {
        tracing::warn!(
            token_source_id = claims.source_id.as_deref().unwrap_or_default(),
            "the new token was issued to another client id than HIGHLEVEL_CLIENT_ID: app credentials have drifted"
        );
    }
    let facts = InstallFacts {
        auth_class,
        company_id,
        approved_locations: grant
            .approved_locations
            .clone()
            .unwrap_or_else(|| location_id.iter().cloned().collect()),
        location_id,
        app_id: Some(state.settings.app_id.clone()),
        user_id: grant.user_id.clone(),
        scopes: grant.scope.clone(),
        is_bulk: grant.is_bulk_installation.unwrap_or(false),
    };
    let new_id = random_id("inst_");
    let plan = grant
        .plan_id
        .clone()
        .filter(|p| !p.is_empty() && p.len() <= 128);
    let inst = state
        .tokens
        .db
        .run(move |c| {
            let now = now_ms();
            let inst = store::installations::upsert(c, &facts, &new_id, now)?;
            // A paid app's grant names the subscribed plan, as the INSTALL webhook does.
            if let Some(plan) = &plan {
                store::installations::set_plan(c, &inst.id, plan, now, now)?;
            }
            Ok(inst)
        })
        .await?;
    state.tokens.store_grant(&inst.id, &grant).await?;
    tracing::info!(installation = %inst.id, auth_class = inst.auth_class.as_str(), company = %inst.company_id, started_on_marketplace = issued.is_none(), "installation stored");

    if let Some(target) = &state.settings.post_install_redirect_url {
        let mut url = url::Url::parse(target).map_err(|e| {
            AppError::Internal(format!("POST_INSTALL_REDIRECT_URL is not a URL: {e}"))
        })?;
        url.query_pairs_mut()
            .append_pair("installation_id", &inst.id);
        return Ok(HttpResponse::Found()
            .insert_header(("location", url.as_str()))
            .finish());
    }
    let esc = |s: &str| html_escape::encode_text(s).to_string();
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>App installed</title></head><body>\
         <h1>App installed</h1><p>Installation <code>{}</code> ({} token, company <code>{}</code>{}).</p>\
         <p>You can close this window.</p></body></html>",
        esc(&inst.id),
        esc(inst.auth_class.as_str()),
        esc(&inst.company_id),
        inst.location_id.as_deref().map(|l| format!(", location <code>{}</code>", esc(l))).unwrap_or_default(),
    );
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page))
}
