//! The `/_sim/` control surface: tenants, token expiry, faults, signed webhooks, keys, stats, reset.

use crate::access::TABLE;
use crate::errors::{HlError, HlResult};
use crate::faults::FaultSpec;
use crate::state::{new_id, now_secs, InstallKey, Location, Sim};
use crate::stats::Stats;
use crate::validate::{json_object, Check};
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/_sim/reset", web::post().to(reset))
        .service(
            web::resource("/_sim/locations")
                .route(web::post().to(add_location))
                .route(web::get().to(locations)),
        )
        .route("/_sim/tokens/expire", web::post().to(expire_tokens))
        .service(
            web::resource("/_sim/faults")
                .route(web::post().to(add_fault))
                .route(web::get().to(list_faults))
                .route(web::delete().to(clear_faults)),
        )
        .route("/_sim/webhooks/send", web::post().to(send_webhook))
        .route("/_sim/uninstall", web::post().to(uninstall))
        .route(
            "/_sim/installs/locations",
            web::post().to(add_install_location),
        )
        .route("/_sim/sso", web::post().to(sso))
        .route("/_sim/payments/orders", web::post().to(new_order))
        .route("/_sim/keys", web::get().to(keys))
        .route("/_sim/stats", web::get().to(stats))
        .route("/_sim/routes", web::get().to(routes));
}

async fn reset(sim: web::Data<Sim>) -> HttpResponse {
    sim.reset();
    HttpResponse::Ok().json(json!({"reset": true}))
}

async fn add_location(sim: web::Data<Sim>, body: web::Bytes) -> HlResult<HttpResponse> {
    let body = json_object(&body)?;
    Check::new(&body)
        .string("companyId", true)
        .string("locationId", true)
        .string("name", false)
        .finish()?;
    let loc = Location {
        id: body["locationId"].as_str().unwrap_or_default().to_owned(),
        company_id: body["companyId"].as_str().unwrap_or_default().to_owned(),
        name: body
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("Sim location")
            .to_owned(),
    };
    let mut world = sim.world();
    if let Some(existing) = world.locations.get(&loc.id) {
        if existing.company_id != loc.company_id {
            return Err(HlError::nest(
                409,
                format!(
                    "Location {} already belongs to company {}",
                    loc.id, existing.company_id
                ),
                "Conflict",
            ));
        }
    }
    let answer = json!({"companyId": loc.company_id, "locationId": loc.id, "name": loc.name});
    world.locations.insert(loc.id.clone(), loc);
    Ok(HttpResponse::Created().json(answer))
}

async fn locations(sim: web::Data<Sim>) -> HttpResponse {
    let world = sim.world();
    let mut list: Vec<Value> = world
        .locations
        .values()
        .map(|l| json!({"companyId": l.company_id, "locationId": l.id, "name": l.name}))
        .collect();
    list.sort_by(|a, b| a["locationId"].as_str().cmp(&b["locationId"].as_str()));
    HttpResponse::Ok().json(json!({"locations": list}))
}

async fn expire_tokens(sim: web::Data<Sim>) -> HttpResponse {
    let now = now_secs();
    let mut world = sim.world();
    let mut n = 0;
    for t in world.access_tokens.values_mut() {
        if t.exp > now {
            t.exp = now;
            n += 1;
        }
    }
    HttpResponse::Ok().json(json!({"expired": n}))
}

async fn add_fault(sim: web::Data<Sim>, body: web::Bytes) -> HlResult<HttpResponse> {
    let spec: FaultSpec = serde_json::from_slice(&body)
        .map_err(|e| HlError::bad_request(&format!("Invalid fault: {e}")))?;
    if spec.status.is_none() && spec.latency_ms.is_none() && !spec.drop_connection {
        return Err(HlError::bad_request(
            "A fault needs status, latency_ms or drop_connection",
        ));
    }
    if spec.status.is_some_and(|s| !(100..=599).contains(&s)) {
        return Err(HlError::bad_request(
            "status must be an HTTP status (100-599)",
        ));
    }
    sim.faults.add(spec.clone());
    Ok(HttpResponse::Created().json(spec))
}

async fn list_faults(sim: web::Data<Sim>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"faults": sim.faults.list()}))
}

async fn clear_faults(sim: web::Data<Sim>) -> HttpResponse {
    sim.faults.clear();
    HttpResponse::Ok().json(json!({"faults": []}))
}

/// Marks an install removed on the platform side and kills its tokens.
fn remove_install(sim: &Sim, company_id: Option<&str>, location_id: Option<&str>) -> bool {
    let key = match (location_id, company_id) {
        (Some(l), _) => InstallKey::Location(l.to_owned()),
        (None, Some(c)) => InstallKey::Company(c.to_owned()),
        (None, None) => return false,
    };
    let mut world = sim.world();
    let Some(install) = world.installs.get_mut(&key) else {
        return false;
    };
    install.installed = false;
    world.revoke_install_tokens(&key);
    true
}

/// The agency adds the app to one more sub-account of an agency-level install: `{"companyId","locationId"}`.
/// `/oauth/installedLocations` lists it and `/oauth/locationToken` mints for it from then on.
async fn add_install_location(sim: web::Data<Sim>, body: web::Bytes) -> HlResult<HttpResponse> {
    let body = json_object(&body)?;
    let (Some(company), Some(location)) = (
        body.get("companyId").and_then(Value::as_str),
        body.get("locationId").and_then(Value::as_str),
    ) else {
        return Err(HlError::unprocessable(vec![
            "companyId and locationId are required".into(),
        ]));
    };
    let mut world = sim.world();
    if world
        .locations
        .get(location)
        .is_none_or(|l| l.company_id != company)
    {
        return Err(HlError::not_found("No such location in this company"));
    }
    let Some(install) = world
        .installs
        .get_mut(&InstallKey::Company(company.to_owned()))
        .filter(|i| i.installed)
    else {
        return Err(HlError::not_found(
            "No agency-level install for this company",
        ));
    };
    if !install.approved_locations.iter().any(|l| l == location) {
        install.approved_locations.push(location.to_owned());
    }
    Ok(HttpResponse::Ok().json(json!({"approvedLocations": install.approved_locations})))
}

/// The user context HighLevel hands an app's page (`REQUEST_USER_DATA_RESPONSE`): the JSON body, encrypted with
/// the app's Shared Secret in CryptoJS's passphrase format. Answers the payload as plain text.
async fn sso(sim: web::Data<Sim>, body: web::Bytes) -> HlResult<HttpResponse> {
    let user = json_object(&body)?;
    Check::new(&user)
        .string("userId", true)
        .string("companyId", true)
        .one_of("type", &["agency", "location"], true)
        .finish()?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain")
        .body(crate::sso::encrypt(&sim.config.sso_key, &user.to_string())))
}

async fn uninstall(sim: web::Data<Sim>, body: web::Bytes) -> HlResult<HttpResponse> {
    let body = json_object(&body)?;
    let removed = remove_install(
        &sim,
        body.get("companyId").and_then(Value::as_str),
        body.get("locationId").and_then(Value::as_str),
    );
    if removed {
        Ok(HttpResponse::Ok().json(json!({"uninstalled": true})))
    } else {
        Err(HlError::not_found("No such install"))
    }
}

/// Signs and delivers a webhook. Body: `{"type", "url", …payload}`; `appId`, `timestamp` and `webhookId` are
/// filled in when absent. `"sim_sign": "both" | "ed25519" | "rsa" | "none"` picks the signature headers.
async fn send_webhook(sim: web::Data<Sim>, body: web::Bytes) -> HlResult<HttpResponse> {
    let mut payload = json_object(&body)?;
    Check::new(&payload)
        .string("type", true)
        .string("url", true)
        .finish()?;
    let obj = payload
        .as_object_mut()
        .ok_or_else(|| HlError::bad_request("body must be an object"))?;
    let url = obj
        .remove("url")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let sign = obj
        .remove("sim_sign")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "both".into());
    obj.entry("appId")
        .or_insert_with(|| json!(sim.config.app_id));
    obj.entry("timestamp").or_insert_with(|| {
        json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    });
    obj.entry("webhookId").or_insert_with(|| json!(new_id()));
    if obj.get("type").and_then(Value::as_str) == Some("UNINSTALL") {
        remove_install(
            &sim,
            obj.get("companyId").and_then(Value::as_str),
            obj.get("locationId").and_then(Value::as_str),
        );
    }
    let bytes = serde_json::to_vec(&payload)
        .map_err(|_| HlError::bad_request("payload is not serializable"))?;
    let mut request = sim
        .http
        .post(&url)
        .header("content-type", "application/json");
    if sign == "both" || sign == "ed25519" {
        request = request.header("x-ghl-signature", sim.keys.sign_ed25519(&bytes));
    }
    if sign == "both" || sign == "rsa" {
        request = request.header("x-wh-signature", sim.keys.sign_rsa(&bytes));
    }
    Stats::bump(&sim.stats.webhooks_sent);
    match request.body(bytes).send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let text = res.text().await.unwrap_or_default();
            Ok(HttpResponse::Ok().json(json!({
                "delivered": true,
                "status": status,
                "response": text,
                "webhookId": payload["webhookId"],
                "payload": payload,
            })))
        }
        Err(e) => Ok(
            HttpResponse::BadGateway().json(json!({"delivered": false, "error": e.to_string()}))
        ),
    }
}

async fn keys(sim: web::Data<Sim>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "ed25519": {"publicKeyPem": sim.keys.ed25519_public_pem, "publicKeyBase64": sim.keys.ed25519_public_raw_b64},
        "rsa": {"publicKeyPem": sim.keys.rsa_public_pem},
    }))
}

async fn stats(sim: web::Data<Sim>) -> HttpResponse {
    HttpResponse::Ok().json(sim.stats.snapshot())
}

async fn routes() -> HttpResponse {
    let table: Vec<Value> = TABLE
        .iter()
        .map(|r| {
            let class = match r.class {
                crate::access::ClassRule::LocationOnly(_) => "Location",
                crate::access::ClassRule::CompanyOnly => "Company",
            };
            json!({"method": r.method, "path": r.path, "tokenClass": class, "scope": r.scope})
        })
        .collect();
    HttpResponse::Ok().json(json!({"routes": table}))
}

/// `POST /_sim/payments/orders {"locationId","amount","currency","liveMode"?,"contactId"?,"transactionId"?}`:
/// records an order and its transaction (with the given id, or a new one) as HighLevel does when a checkout
/// starts; answers `{"orderId","transactionId"}`.
async fn new_order(sim: web::Data<Sim>, body: web::Json<serde_json::Value>) -> HttpResponse {
    let b = body.into_inner();
    let (Some(location), Some(amount), Some(currency)) = (
        b["locationId"].as_str(),
        b["amount"].as_f64(),
        b["currency"].as_str(),
    ) else {
        return HttpResponse::BadRequest().json(
            json!({"message": "locationId, amount (major units) and currency are required"}),
        );
    };
    let (order, txn) = crate::routes::payments::record_checkout(
        &sim,
        location,
        amount,
        currency,
        b["liveMode"].as_bool().unwrap_or(false),
        b["contactId"].as_str(),
        b["transactionId"].as_str(),
    );
    HttpResponse::Ok().json(json!({"orderId": order, "transactionId": txn}))
}
