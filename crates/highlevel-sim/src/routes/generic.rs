//! Every operation of HighLevel's files the simulator does not model in depth (contacts, calendars,
//! opportunities, …): checked as HighLevel checks (the `Version` header, token class, scope, the request's
//! location) by the simulator's own reading of the files (`crate::spec`), rate-limited by the gateway like
//! every call, and answered with a plausible body: a create echoes its body with a new `id`, a read by id
//! returns what was created (or an object with that id), a list returns an empty list under the family's name.

use crate::access::authorize_operation;
use crate::errors::{HlError, HlResult};
use crate::routes::{query, require_version};
use crate::spec;
use crate::state::{new_id, now_iso, Sim};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde_json::{json, Value};

/// Created resources kept for later reads, at most.
pub const KEPT: usize = 10_000;

/// The operation a request was matched to, for the gateway's counts (`METHOD /documented/path`).
#[derive(Debug, Clone)]
pub struct Matched(pub String);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.default_service(web::to(answer));
}

/// The location a request names: a `locationId` path parameter, query parameter or top-level body field.
fn named_location(
    params: &std::collections::BTreeMap<String, String>,
    req: &HttpRequest,
    body: &Value,
) -> Option<String> {
    params
        .get("locationId")
        .cloned()
        .or_else(|| query(req).remove("locationId"))
        .or_else(|| body["locationId"].as_str().map(str::to_owned))
}

async fn answer(req: HttpRequest, sim: web::Data<Sim>, body: web::Bytes) -> HlResult<HttpResponse> {
    let method = req.method().as_str().to_owned();
    let Some((op, params)) = spec::find(&method, req.path()) else {
        // NestJS's answer for a route it does not have.
        return Err(HlError::not_found(&format!(
            "Cannot {method} {}",
            req.path()
        )));
    };
    req.extensions_mut()
        .insert(Matched(format!("{} {}", op.method, op.path)));
    require_version(&req)?;
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .map_err(|_| HlError::bad_request("Unexpected token in JSON body"))?
    };
    let location = named_location(&params, &req, &body);
    authorize_operation(&req, op, location.as_deref())?;
    let family = op
        .path
        .trim_matches('/')
        .split('/')
        .next()
        .unwrap_or("items");
    let last_param = op
        .path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| s.starts_with('{'))
        .and_then(|s| params.get(s.trim_matches(|c| c == '{' || c == '}')))
        .cloned();
    let mut world = sim.world();
    Ok(match (method.as_str(), last_param) {
        ("POST", _) => {
            let mut created = match body {
                Value::Object(o) => Value::Object(o),
                _ => json!({}),
            };
            let id = new_id();
            created["id"] = json!(id);
            created["dateAdded"] = json!(now_iso());
            if world.echoed.len() < KEPT {
                world.echoed.insert(id.clone(), created.clone());
            }
            // Contacts have a model of their own (`routes/contacts.rs`): a created contact is read there.
            if op.path == "/contacts/" && world.contacts.len() < KEPT {
                world.contacts.insert(id, created.clone());
            }
            HttpResponse::Created().json(created)
        }
        ("GET", Some(id)) => HttpResponse::Ok().json(
            world
                .echoed
                .get(&id)
                .cloned()
                .unwrap_or_else(|| json!({ "id": id })),
        ),
        ("GET", None) => HttpResponse::Ok().json(json!({ family: [], "total": 0 })),
        ("PUT" | "PATCH", id) => {
            let id = id.unwrap_or_else(new_id);
            let mut updated = world.echoed.get(&id).cloned().unwrap_or_else(|| json!({}));
            if let (Some(t), Value::Object(changes)) = (updated.as_object_mut(), body) {
                t.extend(changes);
            }
            updated["id"] = json!(id);
            if world.echoed.contains_key(&id) {
                world.echoed.insert(id, updated.clone());
            }
            HttpResponse::Ok().json(updated)
        }
        (_, id) => {
            if let Some(id) = &id {
                world.echoed.remove(id);
            }
            HttpResponse::Ok().json(json!({ "succeeded": true, "id": id }))
        }
    })
}
