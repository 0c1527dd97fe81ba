//! `POST /webhooks/highlevel`: signature over the raw body, then freshness, then replay, then the event.

use super::State;
use crate::crypto::token_hash;
use crate::error::AppError;
use crate::store::installations::{install_key, InstallFacts};
use crate::store::{self, now_ms};
use actix_web::{web, HttpRequest, HttpResponse};
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

async fn receive(
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
    if let Some(ts) = payload.get("timestamp") {
        let ts = timestamp_ms(ts)
            .ok_or_else(|| AppError::InvalidRequest("`timestamp` is not a date".into()))?;
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
    // Replays are refused by webhookId, or by the body's hash when HighLevel sent no id.
    let webhook_id = payload["webhookId"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("sha256:{}", token_hash(&String::from_utf8_lossy(&body))));
    if webhook_id.len() > 256 {
        return Err(AppError::InvalidRequest("webhookId is too long".into()));
    }
    let (wid, k, now) = (webhook_id.clone(), kind.clone(), now_ms());
    if !state
        .tokens
        .db
        .run(move |c| store::webhook_events::record(c, &wid, &k, now))
        .await?
    {
        state.metrics.webhook(&kind, "duplicate");
        return Err(AppError::DuplicateWebhook(webhook_id));
    }
    if payload["appId"]
        .as_str()
        .is_some_and(|a| a != state.settings.app_id)
    {
        state.metrics.webhook(&kind, "other_app");
        tracing::warn!(%kind, "webhook for another appId ignored");
        return Ok(HttpResponse::Ok().json(json!({"status": "ignored", "reason": "another appId"})));
    }
    let result = match kind.as_str() {
        "INSTALL" => on_install(&state, &payload).await,
        "UNINSTALL" => on_uninstall(&state, &payload).await,
        _ => Ok(json!({"status": "acknowledged"})),
    };
    match result {
        Ok(answer) => {
            state.metrics.webhook(&kind, "ok");
            tracing::info!(%kind, scheme = scheme.as_str(), "webhook processed");
            Ok(HttpResponse::Ok().json(answer))
        }
        Err(e) => {
            // Let HighLevel's retry through: this delivery was not processed.
            let wid = webhook_id.clone();
            let _ = state
                .tokens
                .db
                .run(move |c| store::webhook_events::forget(c, &wid))
                .await;
            state.metrics.webhook(&kind, "failed");
            Err(e)
        }
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v[key].as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

async fn on_install(state: &State, p: &Value) -> Result<Value, AppError> {
    let company_id = text(p, "companyId")
        .ok_or_else(|| AppError::InvalidRequest("INSTALL without companyId".into()))?;
    let location_id = text(p, "locationId");
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
        company_level = agency.is_some_and(|i| matches!(i.state(), Ok(InstallationState::Active)));
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
    let inst = state
        .tokens
        .db
        .run(move |c| store::installations::upsert(c, &facts, &new_id, now_ms()))
        .await?;
    Ok(json!({"status": "recorded", "installation_id": inst.id}))
}

async fn on_uninstall(state: &State, p: &Value) -> Result<Value, AppError> {
    let company_id = text(p, "companyId");
    let location_id = text(p, "locationId");
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
                store::tokens::delete_all(c, &inst.id)?;
                store::installations::set_state(
                    c,
                    &inst.id,
                    InstallationState::Uninstalled,
                    None,
                    now,
                )?;
                removed.push(inst.id);
            }
            // A location removed from an agency-level install: drop it and its minted token.
            if let (Some(l), Some(co)) = (&location_id, &company_id) {
                if let Some(inst) = store::installations::find_by_key(
                    c,
                    &install_key(AuthClass::Company, co, None),
                )? {
                    // An unreadable list is left as it is (it serves nothing); the token still goes.
                    match inst.approved() {
                        Ok(approved) => {
                            let approved: Vec<String> =
                                approved.into_iter().filter(|a| a != l).collect();
                            store::installations::set_approved(c, &inst.id, &approved, now)?;
                        }
                        Err(e) => tracing::error!(error = %e, "uninstall of a location from a corrupt installation row"),
                    }
                    store::tokens::delete_one(c, &inst.id, l)?;
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
