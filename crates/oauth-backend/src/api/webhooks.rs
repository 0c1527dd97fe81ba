//! `POST /webhooks/highlevel`: signature over the raw body, then freshness, then replay, then the event, then
//! (with the webhook recorded as processed, in one transaction) its forwards to the app (`forward.rs`).

use super::State;
use crate::crypto::token_hash;
use crate::error::AppError;
use crate::forward::{self, Received};
use crate::store::installations::{install_key, InstallFacts};
use crate::store::{self, now_ms};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use diesel::Connection as _;
use serde_json::{json, Value};
use shared_types::{AuthClass, InstallationState};

/// HighLevel's webhook bodies are small; anything larger is not one.
pub const MAX_WEBHOOK_BYTES: usize = 256 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/webhooks/highlevel")
            .app_data(web::PayloadConfig::new(MAX_WEBHOOK_BYTES))
            .route(web::post().to(receive)),
    );
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// `timestamp` as HighLevel sends it: an ISO-8601 string (or epoch milliseconds).
fn timestamp_ms(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.timestamp_millis()),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Every HighLevel webhook, its signature checked over the raw body; INSTALL, UNINSTALL and PLAN_CHANGE are
/// acted on (the installation, its tokens, its plan), and every event is forwarded to WEBHOOK_FORWARD_URLS
/// after that. Answered 429 with `Retry-After` when it cannot be recorded (the only answer
/// HighLevel retries).
#[utoipa::path(post, path = "/webhooks/highlevel", tag = "webhooks", request_body(content = Object),
    responses((status = 200, body = Object), (status = 429, body = shared_types::Problem), (status = "4XX", body = shared_types::Problem)))]
pub async fn receive(
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let scheme = state
        .webhooks
        .verify(
            &body,
            header(&req, "x-ghl-signature"),
            header(&req, "x-wh-signature"),
        )
        .map_err(|why| {
            state.metrics.webhook("unknown", "invalid_signature");
            AppError::InvalidSignature(why.into())
        })?;
    let payload: Value = serde_json::from_slice(&body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| AppError::InvalidRequest("the webhook body is not a JSON object".into()))?;
    let kind = payload["type"].as_str().unwrap_or("unknown").to_owned();
    if kind.len() > 128 {
        return Err(AppError::InvalidRequest("`type` is too long".into()));
    }
    // HighLevel's time of the event, carried to the app (order is not promised; this is how it orders).
    let mut occurred_at = now_ms();
    if let Some(ts) = payload.get("timestamp") {
        let ts = timestamp_ms(ts)
            .ok_or_else(|| AppError::InvalidRequest("`timestamp` is not a date".into()))?;
        occurred_at = ts;
        let skew = (now_ms() - ts).abs();
        if skew > state.settings.webhook_tolerance_secs * 1000 {
            state.metrics.webhook(&kind, "stale");
            return Err(AppError::StaleWebhook(format!(
                "the webhook's timestamp is {}s away from now (tolerance {}s)",
                skew / 1000,
                state.settings.webhook_tolerance_secs
            )));
        }
    }
    // Redeliveries are known by webhookId, or by the body's hash when HighLevel sent no id.
    let webhook_id = payload["webhookId"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("sha256:{}", token_hash(&String::from_utf8_lossy(&body))));
    if webhook_id.len() > 256 {
        return Err(AppError::InvalidRequest("webhookId is too long".into()));
    }
    // HighLevel retries a webhook only when it is answered 429: anything that keeps this delivery from being
    // recorded durably now (the database, HighLevel itself, overload) is answered 429 with Retry-After.
    let retry_later = |e: AppError| -> AppError {
        if e.status_code().is_server_error() {
            tracing::warn!(%kind, error = %e, "webhook not recorded; answered 429 so HighLevel delivers it again");
            AppError::WebhookNotRecorded(e.to_string())
        } else {
            e
        }
    };
    let wid = webhook_id.clone();
    if state
        .tokens
        .db
        .run(move |c| store::webhook_events::is_recorded(c, &wid))
        .await
        .map_err(|e| {
            state.metrics.webhook(&kind, "retry_later");
            retry_later(e.into())
        })?
    {
        // Processed before: HighLevel (or someone replaying it) gets the same success, nothing is done twice.
        state.metrics.webhook(&kind, "duplicate");
        return Ok(HttpResponse::Ok().json(json!({"status": "duplicate", "webhookId": webhook_id})));
    }
    if payload["appId"]
        .as_str()
        .is_some_and(|a| a != state.settings.app_id)
    {
        state.metrics.webhook(&kind, "other_app");
        tracing::warn!(%kind, "webhook for another appId ignored");
        return Ok(HttpResponse::Ok().json(json!({"status": "ignored", "reason": "another appId"})));
    }
    // Acting on an event is idempotent (an install is keyed, an uninstall is a state), so the id is recorded
    // after it: a delivery that fails half-way is acted on again when HighLevel retries it.
    let result = match kind.as_str() {
        "INSTALL" => on_install(&state, &payload, occurred_at).await,
        "UNINSTALL" => on_uninstall(&state, &payload).await,
        "PLAN_CHANGE" => on_plan_change(&state, &payload, occurred_at).await,
        _ => Ok(json!({"status": "acknowledged"})),
    };
    let answer = match result {
        Ok(answer) => answer,
        Err(e) => {
            let e = retry_later(e);
            state.metrics.webhook(
                &kind,
                if e.status_code().as_u16() == 429 {
                    "retry_later"
                } else {
                    "failed"
                },
            );
            return Err(e);
        }
    };
    // Recorded as processed and its forwards queued in one transaction, after it was acted on: the app hears
    // of an INSTALL once the installation exists, and of every event exactly when it counts as processed.
    let (wid, k, now) = (webhook_id.clone(), kind.clone(), now_ms());
    let fwd = state.forward.clone();
    let queued = state
        .tokens
        .db
        .run(move |c| {
            c.transaction(|c| {
                if !store::webhook_events::record(c, &wid, &k, now)? {
                    return Ok(0);
                }
                let owner = forward::owner(c, &payload)?;
                let event = Received {
                    webhook_id: &wid,
                    event_type: &k,
                    payload: &payload,
                    occurred_at,
                };
                let rows = fwd.deliveries(&event, &owner, now);
                store::webhook_deliveries::enqueue(c, &rows)?;
                Ok(rows.len())
            })
        })
        .await
        .map_err(|e| {
            state.metrics.webhook(&kind, "retry_later");
            retry_later(e.into())
        })?;
    if queued > 0 {
        state.forward.wake.notify_one();
    }
    state.metrics.webhook(&kind, "ok");
    tracing::info!(%kind, scheme = scheme.as_str(), "webhook processed");
    Ok(HttpResponse::Ok().json(answer))
}

fn text(v: &Value, key: &str) -> Option<String> {
    v[key].as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The company of a location, from what is known here (its own installation, or an agency install that lists
/// it), else from HighLevel (an active agency install whose `/oauth/installedLocations` lists it).
async fn company_of(state: &State, location_id: &str) -> Result<Option<String>, AppError> {
    let l = location_id.to_owned();
    let (own, agencies, candidates) = state
        .tokens
        .db
        .run(move |c| {
            let own = store::installations::find_by_key(
                c,
                &install_key(AuthClass::Location, "", Some(&l)),
            )?;
            let agencies = store::installations::companies_with_location(c, &l)?;
            let candidates = store::installations::active_companies(c, MAX_COMPANIES_ASKED)?;
            Ok((own, agencies, candidates))
        })
        .await?;
    if let Some(i) = own.filter(|i| !i.company_id.is_empty()) {
        return Ok(Some(i.company_id));
    }
    if let Some(i) = agencies.into_iter().next() {
        return Ok(Some(i.company_id));
    }
    for inst in candidates {
        let gen = state.tokens.cache.generation(&inst.id);
        match state.tokens.listed_locations(&inst, location_id, gen).await {
            Ok(Some(_)) => return Ok(Some(inst.company_id)),
            Ok(None) => {}
            Err(e @ AppError::HighlevelUnavailable(_)) => return Err(e),
            Err(e) => {
                tracing::warn!(installation = %inst.id, error = %e, "agency install could not be asked for its locations")
            }
        }
    }
    Ok(None)
}

/// At most this many agency installs are asked whether they hold a location an INSTALL named without its company.
const MAX_COMPANIES_ASKED: i64 = 50;

async fn on_install(state: &State, p: &Value, occurred_at: i64) -> Result<Value, AppError> {
    let location_id = text(p, "locationId");
    // HighLevel's AppInstall webhook docs: "In case of app installation via future locations, you may not get these fields"
    // (companyId, userId). The company is then resolved from what is known, or from HighLevel.
    let company_id = match (text(p, "companyId"), &location_id) {
        (Some(c), _) => c,
        (None, Some(l)) => match company_of(state, l).await? {
            Some(c) => c,
            None => {
                tracing::warn!(location = %l, "INSTALL without companyId for a location no known agency install holds; acknowledged, nothing recorded until its token arrives");
                return Ok(
                    json!({"status": "acknowledged", "reason": "the location's company is not known here"}),
                );
            }
        },
        (None, None) => {
            return Err(AppError::InvalidRequest(
                "INSTALL without companyId or locationId".into(),
            ))
        }
    };
    // An agency-level install (installType Company, or no location) is a Company installation; its
    // locations accumulate in approved_locations (a bulk install sends one INSTALL per location).
    let mut company_level = p["installType"].as_str() == Some("Company") || location_id.is_none();
    if !company_level {
        // A sub-account added to an existing agency-level install: it joins that install's approved list,
        // so its Location token is minted from the Company token with no re-install.
        let key = install_key(AuthClass::Company, &company_id, None);
        let agency = state
            .tokens
            .db
            .run(move |c| store::installations::find_by_key(c, &key))
            .await?;
        // A corrupt agency row is not an active one: the location is recorded on its own.
        company_level = agency.is_some_and(|i| i.state == InstallationState::Active);
    }
    if let Some(l) = &location_id {
        // HighLevel lists it now (or will): forget that it was absent.
        let key = install_key(AuthClass::Company, &company_id, None);
        if let Ok(Some(agency)) = state
            .tokens
            .db
            .run(move |c| store::installations::find_by_key(c, &key))
            .await
        {
            state.tokens.absent.invalidate(&(agency.id, l.clone()));
        }
    }
    let facts = InstallFacts {
        auth_class: if company_level {
            AuthClass::Company
        } else {
            AuthClass::Location
        },
        company_id,
        location_id: if company_level {
            None
        } else {
            location_id.clone()
        },
        app_id: text(p, "appId"),
        user_id: text(p, "userId"),
        scopes: None,
        is_bulk: p["isBulkInstallation"].as_bool().unwrap_or(false),
        approved_locations: location_id.into_iter().collect(),
    };
    let new_id = crate::crypto::random_id("inst_");
    // A paid app's INSTALL names the plan chosen (HighLevel's AppInstall webhook docs: `planId`).
    let plan = text(p, "planId");
    let inst = state
        .tokens
        .db
        .run(move |c| {
            let now = now_ms();
            let inst = store::installations::upsert(c, &facts, &new_id, now)?;
            if let Some(plan) = &plan {
                store::installations::set_plan(c, &inst.id, plan, occurred_at, now)?;
            }
            Ok(inst)
        })
        .await?;
    Ok(json!({"status": "recorded", "installation_id": inst.id}))
}

/// HighLevel's PLAN_CHANGE webhook docs: `{type, appId, locationId, companyId, userId, currentPlanId, newPlanId}`,
/// sent when a user changes the plan of a paid app. The plan is recorded on the installation serving the
/// location (its own, else the agency install of its company), or on the company's when no location is named;
/// an event older than the one that set the current plan changes nothing (delivery order is not promised).
async fn on_plan_change(state: &State, p: &Value, occurred_at: i64) -> Result<Value, AppError> {
    let new_plan = text(p, "newPlanId")
        .ok_or_else(|| AppError::InvalidRequest("PLAN_CHANGE without newPlanId".into()))?;
    if new_plan.len() > 128 {
        return Err(AppError::InvalidRequest("newPlanId is too long".into()));
    }
    let (location_id, company_id) = (text(p, "locationId"), text(p, "companyId"));
    if location_id.is_none() && company_id.is_none() {
        return Err(AppError::InvalidRequest(
            "PLAN_CHANGE without companyId or locationId".into(),
        ));
    }
    let current = text(p, "currentPlanId");
    let plan = new_plan.clone();
    let outcome = state
        .tokens
        .db
        .run(move |c| {
            let own = match &location_id {
                Some(l) => store::installations::find_by_key(
                    c,
                    &install_key(AuthClass::Location, "", Some(l)),
                )?,
                None => None,
            };
            let inst = match (own, &company_id) {
                (Some(i), _) => Some(i),
                (None, Some(co)) => store::installations::find_by_key(
                    c,
                    &install_key(AuthClass::Company, co, None),
                )?,
                (None, None) => None,
            };
            let Some(inst) = inst else {
                return Ok(None);
            };
            let recorded =
                store::installations::set_plan(c, &inst.id, &plan, occurred_at, now_ms())?;
            Ok(Some((inst, recorded)))
        })
        .await?;
    let Some((inst, recorded)) = outcome else {
        tracing::warn!("PLAN_CHANGE for no known installation; acknowledged and forwarded");
        return Ok(
            json!({"status": "acknowledged", "reason": "no installation serves the location or company"}),
        );
    };
    if !recorded {
        tracing::info!(installation = %inst.id, "PLAN_CHANGE older than the plan recorded; kept the later one");
        return Ok(json!({"status": "stale", "installation_id": inst.id}));
    }
    if current.is_some() && current != inst.plan_id {
        // A plan change this service did not hear of (or an INSTALL without planId): the new plan stands.
        tracing::warn!(installation = %inst.id, "PLAN_CHANGE's currentPlanId is not the plan recorded");
    }
    tracing::info!(installation = %inst.id, plan = %new_plan, "plan changed");
    Ok(json!({"status": "plan_changed", "installation_id": inst.id, "plan_id": new_plan}))
}

/// HighLevel's AppUninstall webhook docs: a location-level UNINSTALL carries only `appId` and `locationId`; an agency-level one
/// `appId` and `companyId`. A location stops being served: its own installation is marked uninstalled and its
/// tokens destroyed, and every agency install that lists it drops it and its minted Location token (the
/// change feed tells every replica: token deletions, the state, and the approved list).
async fn on_uninstall(state: &State, p: &Value) -> Result<Value, AppError> {
    let company_id = text(p, "companyId");
    let location_id = text(p, "locationId");
    if company_id.is_none() && location_id.is_none() {
        return Err(AppError::InvalidRequest(
            "UNINSTALL without companyId or locationId".into(),
        ));
    }
    let tokens = state.tokens.clone();
    let removed = tokens
        .db
        .run(move |c| {
            let now = now_ms();
            let mut removed = Vec::new();
            let key = match (&location_id, &company_id) {
                (Some(l), _) => install_key(AuthClass::Location, "", Some(l)),
                (None, Some(co)) => install_key(AuthClass::Company, co, None),
                (None, None) => return Ok(removed),
            };
            if let Some(inst) = store::installations::find_by_key(c, &key)? {
                c.transaction(|c| {
                    store::tokens::delete_all(c, &inst.id)?;
                    store::installations::set_state(
                        c,
                        &inst.id,
                        InstallationState::Uninstalled,
                        None,
                        now,
                    )
                })?;
                removed.push(inst.id);
            }
            // A location removed from agency-level installs: each drops it and its minted token.
            if let Some(l) = &location_id {
                for inst in store::installations::companies_with_location(c, l)? {
                    if company_id.as_ref().is_some_and(|co| co != &inst.company_id) {
                        continue;
                    }
                    let approved: Vec<String> =
                        inst.approved()?.into_iter().filter(|a| a != l).collect();
                    c.transaction(|c| {
                        store::installations::set_approved(c, &inst.id, &approved, now)?;
                        store::tokens::delete_one(c, &inst.id, l)
                    })?;
                    removed.push(format!("{}/{l}", inst.id));
                }
            }
            Ok(removed)
        })
        .await?;
    for r in &removed {
        let id = r.split('/').next().unwrap_or(r);
        tokens.cache.remove_installation(id);
    }
    tracing::info!(?removed, "uninstall processed; tokens destroyed");
    Ok(json!({"status": "uninstalled", "removed": removed}))
}
