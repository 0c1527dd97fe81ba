//! OAuth: consent (`chooselocation`), the token endpoint, location tokens, installed locations, reconnect.

use crate::access::{authorize, INSTALLED_LOCATIONS, LOCATION_TOKEN};
use crate::errors::{HlError, HlResult};
use crate::routes::{query, require_version, required_params};
use crate::state::{new_id, now_secs, AuthCode, Install, InstallKey, Sim, TokenClass};
use crate::stats::Stats;
use crate::tokens::{issue_access, new_pair};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

const CODE_LIFETIME_SECS: i64 = 600;
/// The most locations one `/oauth/installedLocations` page holds.
pub const INSTALLED_LOCATIONS_MAX_LIMIT: usize = 100;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v2/oauth/chooselocation", web::get().to(choose_location))
        .route("/oauth/chooselocation", web::get().to(choose_location))
        .route("/oauth/token", web::post().to(token))
        .route("/oauth/locationToken", web::post().to(location_token))
        .route(
            "/oauth/installedLocations",
            web::get().to(installed_locations),
        )
        .route("/oauth/reconnect", web::post().to(reconnect))
        .route(
            "/marketplace/app/{appId}/installations",
            web::delete().to(uninstall_application),
        );
}

/// `DELETE /marketplace/app/{appId}/installations` (HighLevel's marketplace API, `uninstall-application`): the app uninstalls
/// itself. A Location token names its `locationId` and removes the app from that location only; an Agency token
/// names its `companyId` and removes it from the agency and every sub-account. Scope `oauth.write`. The
/// install's tokens die at once.
async fn uninstall_application(
    req: HttpRequest,
    sim: web::Data<Sim>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HlResult<HttpResponse> {
    use actix_web::HttpMessage;
    require_version(&req)?;
    let caller = req.extensions().get::<crate::access::Caller>().cloned();
    let token = match caller {
        Some(crate::access::Caller::Valid(t)) => t,
        Some(crate::access::Caller::Refused(e)) => return Err(e),
        None => return Err(HlError::invalid_jwt()),
    };
    if !token.scopes.contains("oauth.write") {
        return Err(HlError::scope());
    }
    if path.as_str() != sim.config.app_id {
        return Err(HlError::bad_request("App not found"));
    }
    let b: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|_| HlError::bad_request("Invalid JSON body"))?
    };
    let text = |k: &str| b.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    let mut world = sim.world();
    match token.class {
        TokenClass::Location => {
            let Some(location) = text("locationId") else {
                return Err(HlError::unprocessable(vec![
                    "locationId is required with a location token".into(),
                ]));
            };
            if location != token.class_id {
                return Err(HlError::location_access());
            }
            if !world.uninstall_location(location) {
                return Err(HlError::bad_request(
                    "This app is not installed on the location",
                ));
            }
        }
        TokenClass::Company => {
            let Some(company) = text("companyId") else {
                return Err(HlError::unprocessable(vec![
                    "companyId is required with an agency token".into(),
                ]));
            };
            if company != token.company_id {
                return Err(HlError::location_access());
            }
            let keys: Vec<InstallKey> = world
                .installs
                .iter()
                .filter(|(_, i)| i.installed && i.company_id == company)
                .map(|(k, _)| k.clone())
                .collect();
            if keys.is_empty() {
                return Err(HlError::bad_request(
                    "This app is not installed on the company",
                ));
            }
            for key in keys {
                if let Some(i) = world.installs.get_mut(&key) {
                    i.installed = false;
                }
                world.revoke_install_tokens(&key);
            }
        }
    }
    drop(world);
    Stats::bump(&sim.stats.app_uninstalls);
    Ok(HttpResponse::Ok().json(json!({"success": true})))
}

/// The consent page, answered at once as the user would: `sim_user_type` (Company | Location),
/// `sim_location_id` (repeat it for a bulk install), optional `sim_company_id`, `sim_user_id`.
async fn choose_location(req: HttpRequest, sim: web::Data<Sim>) -> HlResult<HttpResponse> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let all = |k: &str| {
        pairs
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };

    if get("client_id").as_deref() != Some(sim.config.client_id.as_str()) {
        return Err(HlError::bad_request(
            "Invalid client_id: no marketplace app has this client id",
        ));
    }
    let Some(redirect_uri) = get("redirect_uri").filter(|r| !r.is_empty()) else {
        return Err(HlError::bad_request("redirect_uri is required"));
    };
    let Ok(mut redirect) = url::Url::parse(&redirect_uri) else {
        return Err(HlError::bad_request("redirect_uri is not a valid URL"));
    };
    let class = match get("sim_user_type").as_deref() {
        None | Some("Location") => TokenClass::Location,
        Some("Company") => TokenClass::Company,
        Some(other) => {
            return Err(HlError::bad_request(&format!(
                "sim_user_type must be Company or Location, not {other}"
            )))
        }
    };
    let scopes: BTreeSet<String> = get("scope")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let code = grant_install(
        &sim,
        class,
        &all("sim_location_id"),
        get("sim_company_id"),
        get("sim_user_id"),
        scopes,
    )?;
    {
        let mut q = redirect.query_pairs_mut();
        q.append_pair("code", &code);
        if let Some(state) = get("state") {
            q.append_pair("state", &state);
        }
    }
    Ok(HttpResponse::Found()
        .insert_header(("location", redirect.as_str()))
        .finish())
}

/// The user consents: records the install (Company or Location; several locations make a bulk Company install)
/// and answers a fresh authorization code for it. Shared by the consent page and the Marketplace listing.
pub fn grant_install(
    sim: &Sim,
    class: TokenClass,
    location_ids: &[String],
    company_id: Option<String>,
    user_id: Option<String>,
    scopes: BTreeSet<String>,
) -> HlResult<String> {
    let scopes = Arc::new(scopes);
    let user_id = user_id.unwrap_or_else(|| "sim-user-1".into());

    let mut world = sim.world();
    for l in location_ids {
        if !world.locations.contains_key(l) {
            return Err(HlError::bad_request(&format!(
                "Unknown location {l}: add it first with POST /_sim/locations {{\"companyId\",\"locationId\",\"name\"}}"
            )));
        }
    }
    let (key, install) = match class {
        TokenClass::Location => {
            let [location_id] = location_ids else {
                return Err(HlError::bad_request(
                    "A Location install needs exactly one location id",
                ));
            };
            let company_id = world.locations[location_id].company_id.clone();
            (
                InstallKey::Location(location_id.clone()),
                Install {
                    class,
                    company_id,
                    location_id: Some(location_id.clone()),
                    scopes,
                    is_bulk: false,
                    approved_locations: vec![location_id.clone()],
                    user_id,
                    current_access: None,
                    current_refresh: None,
                    installed: true,
                },
            )
        }
        TokenClass::Company => {
            let company_id = match (company_id, location_ids.first()) {
                (Some(c), _) => c,
                (None, Some(l)) => world.locations[l].company_id.clone(),
                (None, None) => {
                    return Err(HlError::bad_request(
                        "A Company install needs a company id or a location id",
                    ))
                }
            };
            if let Some(l) = location_ids
                .iter()
                .find(|l| world.locations[*l].company_id != company_id)
            {
                return Err(HlError::bad_request(&format!(
                    "Location {l} does not belong to company {company_id}"
                )));
            }
            let approved = if location_ids.is_empty() {
                world
                    .locations_of_company(&company_id)
                    .iter()
                    .map(|l| l.id.clone())
                    .collect()
            } else {
                location_ids.to_vec()
            };
            if approved.is_empty() {
                return Err(HlError::bad_request(&format!(
                    "Company {company_id} has no locations"
                )));
            }
            (
                InstallKey::Company(company_id.clone()),
                Install {
                    class,
                    company_id,
                    location_id: None,
                    scopes,
                    is_bulk: location_ids.len() > 1,
                    approved_locations: approved,
                    user_id,
                    current_access: None,
                    current_refresh: None,
                    installed: true,
                },
            )
        }
    };
    // Installing again keeps the install's current tokens until the new code is exchanged.
    let previous = world.installs.get(&key).cloned();
    let merged = Install {
        current_access: previous.as_ref().and_then(|p| p.current_access.clone()),
        current_refresh: previous.as_ref().and_then(|p| p.current_refresh.clone()),
        ..install
    };
    world.installs.insert(key.clone(), merged);
    let code = new_id();
    world.codes.insert(
        code.clone(),
        AuthCode {
            install: key,
            used: false,
            issued_at: now_secs(),
        },
    );
    drop(world);
    Ok(code)
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn check_client(sim: &Sim, id: Option<&String>, secret: Option<&String>) -> HlResult<()> {
    let id_ok = id.is_some_and(|i| i == &sim.config.client_id);
    let secret_ok = secret.is_some_and(|s| s == &sim.config.client_secret);
    if id_ok && secret_ok {
        Ok(())
    } else {
        // The live body for bad client credentials is undocumented; this mirrors the bad-code body.
        Err(HlError::oauth(
            401,
            "UnAuthorized!",
            "Invalid client credentials",
        ))
    }
}

async fn token(sim: web::Data<Sim>, body: web::Bytes) -> HlResult<HttpResponse> {
    let f = form(&body);
    required_params(&f, &["client_id", "client_secret", "grant_type"])?;
    check_client(&sim, f.get("client_id"), f.get("client_secret"))?;
    if let Some(t) = f.get("user_type") {
        if t != "Company" && t != "Location" {
            return Err(HlError::unprocessable(vec![
                "user_type must be one of the following values: Company, Location".into(),
            ]));
        }
    }
    let mut world = sim.world();
    match f.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code_not_found =
                || HlError::oauth(401, "UnAuthorized!", "Authorization code not found");
            let code = f.get("code").ok_or_else(code_not_found)?;
            let entry = world.codes.get_mut(code).ok_or_else(code_not_found)?;
            if entry.used || now_secs() - entry.issued_at > CODE_LIFETIME_SECS {
                return Err(code_not_found());
            }
            entry.used = true;
            let key = entry.install.clone();
            if !world.installs.get(&key).is_some_and(|i| i.installed) {
                return Err(code_not_found());
            }
            let answer = new_pair(&sim, &mut world, &key).ok_or_else(code_not_found)?;
            Stats::bump(&sim.stats.authorization_code_grants);
            Ok(HttpResponse::Ok().json(answer))
        }
        Some("refresh_token") => {
            if f.get("user_type").is_none_or(|t| t.is_empty()) {
                Stats::bump(&sim.stats.refresh_without_user_type);
            }
            let invalid = || {
                HlError::oauth(
                    400,
                    "invalid_grant",
                    "Invalid grant: refresh token is invalid",
                )
            };
            let presented = f.get("refresh_token").ok_or_else(invalid)?;
            let Some(rt) = world.refresh_tokens.get(presented).cloned() else {
                return Err(invalid());
            };
            if !rt.alive {
                Stats::bump(&sim.stats.refresh_token_reuse);
                return Err(invalid());
            }
            let Some(install) = world.installs.get(&rt.install).filter(|i| i.installed) else {
                return Err(invalid());
            };
            // A suspended sub-account: the account is refused, not the token (which stays alive).
            if install
                .location_id
                .as_ref()
                .is_some_and(|l| world.inactive_locations.contains(l))
            {
                Stats::bump(&sim.stats.refresh_location_inactive);
                return Err(HlError::bad_request("Location is not active"));
            }
            let answer = new_pair(&sim, &mut world, &rt.install).ok_or_else(invalid)?;
            Stats::bump(&sim.stats.refresh_grants);
            Ok(HttpResponse::Ok().json(answer))
        }
        Some(other) => Err(HlError::oauth(
            400,
            "unsupported_grant_type",
            &format!("grant_type {other} is not supported by this app"),
        )),
        None => Err(HlError::unprocessable(vec![
            "grant_type should not be empty".into(),
        ])),
    }
}

/// A Location token minted from a Company token (`oauth.write`). Answers 201, with no refresh token.
async fn location_token(
    req: HttpRequest,
    sim: web::Data<Sim>,
    body: web::Bytes,
) -> HlResult<HttpResponse> {
    require_version(&req)?;
    let company = authorize(&req, &LOCATION_TOKEN, None)?;
    let f = form(&body);
    required_params(&f, &["companyId", "locationId"])?;
    let (company_id, location_id) = (&f["companyId"], &f["locationId"]);
    let mut world = sim.world();
    let in_company = world
        .locations
        .get(location_id)
        .is_some_and(|l| &l.company_id == company_id);
    if company_id != &company.company_id || !in_company {
        return Err(HlError::location_access());
    }
    let Some(install_key) = company.install.clone() else {
        return Err(HlError::location_access());
    };
    let approved = world
        .installs
        .get(&install_key)
        .is_some_and(|i| i.approved_locations.contains(location_id));
    if !approved {
        return Err(HlError::bad_request(
            "This app is not installed on the location",
        ));
    }
    let user_id = world
        .installs
        .get(&install_key)
        .map(|i| i.user_id.clone())
        .unwrap_or_default();
    let (token, ttl) = issue_access(
        &sim,
        &mut world,
        TokenClass::Location,
        location_id,
        company_id,
        company.scopes.clone(),
        Some(install_key),
    );
    drop(world);
    Stats::bump(&sim.stats.location_tokens_minted);
    Ok(HttpResponse::Created().json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": company.scopes.iter().cloned().collect::<Vec<_>>().join(" "),
        "userType": "Location",
        "companyId": company_id,
        "locationId": location_id,
        "userId": user_id,
        "planId": "sim-plan",
        "appId": sim.config.app_id,
        "versionId": sim.config.app_id,
    })))
}

async fn installed_locations(req: HttpRequest, sim: web::Data<Sim>) -> HlResult<HttpResponse> {
    require_version(&req)?;
    let company = authorize(&req, &INSTALLED_LOCATIONS, None)?;
    let q = query(&req);
    required_params(&q, &["companyId", "appId"])?;
    if q["companyId"] != company.company_id {
        return Err(HlError::location_access());
    }
    if q["appId"] != sim.config.app_id {
        return Err(HlError::bad_request("App not found"));
    }
    let world = sim.world();
    let installed = |loc: &str| {
        world.installs.values().any(|i| {
            i.installed
                && i.company_id == company.company_id
                && i.approved_locations.iter().any(|a| a == loc)
        })
    };
    let only_installed = q.get("isInstalled").map(|v| v == "true");
    let locations: Vec<Value> = world
        .locations_of_company(&company.company_id)
        .into_iter()
        .map(|l| (l, installed(&l.id)))
        .filter(|(_, inst)| only_installed.is_none_or(|want| want == *inst))
        .map(|(l, inst)| json!({"_id": l.id, "name": l.name, "address": "", "isInstalled": inst}))
        .collect();
    // `skip`/`limit` (limit 20 by default; a page holds at most 100, the v3 draft's cap), `count` the total.
    let skip = q.get("skip").and_then(|v| v.parse().ok()).unwrap_or(0usize);
    let limit = q
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20usize)
        .min(INSTALLED_LOCATIONS_MAX_LIMIT);
    let page: Vec<Value> = locations.iter().skip(skip).take(limit).cloned().collect();
    Ok(HttpResponse::Ok().json(
        json!({"locations": page, "count": locations.len(), "installToFutureLocations": false}),
    ))
}

/// A fresh authorization code for an existing install, from client credentials alone.
async fn reconnect(
    req: HttpRequest,
    sim: web::Data<Sim>,
    body: web::Bytes,
) -> HlResult<HttpResponse> {
    let is_json = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("json"));
    let f: HashMap<String, String> = if is_json {
        let v: Value =
            serde_json::from_slice(&body).map_err(|_| HlError::bad_request("Invalid JSON body"))?;
        v.as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        form(&body)
    };
    let id = f.get("clientKey").or_else(|| f.get("client_id"));
    let secret = f.get("clientSecret").or_else(|| f.get("client_secret"));
    check_client(&sim, id, secret)?;
    let key = match (f.get("locationId"), f.get("companyId")) {
        (Some(l), _) if !l.is_empty() => InstallKey::Location(l.clone()),
        (_, Some(c)) if !c.is_empty() => InstallKey::Company(c.clone()),
        _ => {
            return Err(HlError::unprocessable(vec![
                "companyId or locationId should not be empty".into(),
            ]))
        }
    };
    let mut world = sim.world();
    if !world.installs.get(&key).is_some_and(|i| i.installed) {
        return Err(HlError::bad_request(
            "No installation of this app found for the given company or location",
        ));
    }
    if let InstallKey::Location(l) = &key {
        if world.inactive_locations.contains(l) {
            return Err(HlError::bad_request("Location is not active"));
        }
    }
    let code = new_id();
    world.codes.insert(
        code.clone(),
        AuthCode {
            install: key,
            used: false,
            issued_at: now_secs(),
        },
    );
    drop(world);
    Stats::bump(&sim.stats.reconnects);
    Ok(HttpResponse::Ok().json(json!({"authorizationCode": code})))
}
