//! The `/_sim/` control surface: tenants, token expiry, faults, signed webhooks, keys, stats, reset.

use crate::access::TABLE;
use crate::errors::{HlError, HlResult};
use crate::faults::FaultSpec;
use crate::state::{new_id, now_secs, InstallKey, Location, Sim, TokenClass};
use crate::stats::Stats;
use crate::validate::{json_object, Check};
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};
use std::collections::BTreeSet;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/_sim/reset", web::post().to(reset))
        .service(
            web::resource("/_sim/locations")
                .route(web::post().to(add_location))
                .route(web::get().to(locations)),
        )
        .route(
            "/_sim/locations/{id}/status",
            web::post().to(location_status),
        )
        .route(
            "/_sim/marketplace/install",
            web::get().to(marketplace_install),
        )
        .route("/_sim/webhooks/retry", web::post().to(retry_webhooks))
        .route("/_sim/tokens/expire", web::post().to(expire_tokens))
        .service(
            web::resource("/_sim/faults")
                .route(web::post().to(add_fault))
                .route(web::get().to(list_faults))
                .route(web::delete().to(clear_faults)),
        )
        .route("/_sim/webhooks/send", web::post().to(send_webhook))
        .route("/_sim/webhooks/events", web::get().to(event_types))
        .route("/_sim/webhooks/events/{type}", web::post().to(send_event))
        .route("/_sim/uninstall", web::post().to(uninstall))
        .route(
            "/_sim/installs/locations",
            web::post().to(add_install_location),
        )
        .route("/_sim/sso", web::post().to(sso))
        .route("/_sim/payments/orders", web::post().to(new_order))
        .route(
            "/_sim/payments/subscriptions",
            web::post().to(new_subscription),
        )
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
    if spec.status.is_none()
        && spec.latency_ms.is_none()
        && !spec.drop_connection
        && spec.answer_bytes.is_none()
    {
        return Err(HlError::bad_request(
            "A fault needs status, latency_ms, drop_connection or answer_bytes",
        ));
    }
    if spec.answer_bytes.is_some_and(|n| n > 1 << 30) {
        return Err(HlError::bad_request("answer_bytes is at most 1 GiB"));
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

/// `POST /_sim/locations/{id}/status {"active": bool}`: suspends (or reactivates) a sub-account. While it is
/// inactive, refreshes of its install are refused with `400 Location is not active`; its tokens stay alive.
async fn location_status(
    sim: web::Data<Sim>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HlResult<HttpResponse> {
    let body = json_object(&body)?;
    let Some(active) = body.get("active").and_then(Value::as_bool) else {
        return Err(HlError::unprocessable(vec![
            "active must be a boolean".into()
        ]));
    };
    let id = path.into_inner();
    let mut world = sim.world();
    if !world.locations.contains_key(&id) {
        return Err(HlError::not_found("No such location"));
    }
    if active {
        world.inactive_locations.remove(&id);
    } else {
        world.inactive_locations.insert(id.clone());
    }
    Ok(HttpResponse::Ok().json(json!({"locationId": id, "active": active})))
}

/// `GET /_sim/marketplace/install?user_type=Company|Location&location_id=L[&location_id=…][&company_id=]
/// [&scope=]&redirect_uri=`: an install started on the app's Marketplace listing. The user picks locations and
/// HighLevel sends the browser to the redirect URI with `?code=` only: no `state`, since the app never started
/// this flow. Scopes default to every scope the simulator knows (the listing's).
async fn marketplace_install(
    req: actix_web::HttpRequest,
    sim: web::Data<Sim>,
) -> HlResult<HttpResponse> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let locations: Vec<String> = pairs
        .iter()
        .filter(|(n, _)| n == "location_id")
        .map(|(_, v)| v.clone())
        .collect();
    let class = match get("user_type").as_deref() {
        None | Some("Location") => TokenClass::Location,
        Some("Company") => TokenClass::Company,
        Some(other) => {
            return Err(HlError::bad_request(&format!(
                "user_type must be Company or Location, not {other}"
            )))
        }
    };
    let Some(mut redirect) = get("redirect_uri").and_then(|r| url::Url::parse(&r).ok()) else {
        return Err(HlError::bad_request(
            "redirect_uri is required and must be a URL",
        ));
    };
    let scopes: BTreeSet<String> = match get("scope") {
        Some(s) => s.split_whitespace().map(str::to_owned).collect(),
        None => TABLE
            .iter()
            .map(|r| r.scope.to_owned())
            .chain(["oauth.readonly".to_owned(), "oauth.write".to_owned()])
            .collect(),
    };
    let code = crate::routes::oauth::grant_install(
        &sim,
        class,
        &locations,
        get("company_id"),
        get("user_id"),
        scopes,
    )?;
    redirect.query_pairs_mut().append_pair("code", &code);
    Ok(HttpResponse::Found()
        .insert_header(("location", redirect.as_str()))
        .finish())
}

/// `POST /_sim/webhooks/retry`: HighLevel's retry of the deliveries answered `429` (it makes up to six more,
/// about ten minutes apart; here, now). Each is sent again with the same bytes and signatures; one answered
/// `429` again stays pending. Answers `{"retried": [{"webhookId","status"}]}`.
async fn retry_webhooks(sim: web::Data<Sim>) -> HttpResponse {
    let pending = std::mem::take(&mut sim.world().pending_webhooks);
    let mut retried = Vec::new();
    for mut p in pending {
        p.attempts += 1;
        Stats::bump(&sim.stats.webhook_retries);
        let mut request = sim.http.post(&p.url).body(p.body.clone());
        for (k, v) in &p.headers {
            request = request.header(*k, v);
        }
        let status = match request.send().await {
            Ok(res) => res.status().as_u16(),
            Err(_) => 0,
        };
        retried.push(json!({"webhookId": p.webhook_id, "status": status}));
        if status == 429 && p.attempts < 7 {
            sim.world().pending_webhooks.push(p);
        }
    }
    HttpResponse::Ok().json(json!({"retried": retried}))
}

/// Marks an install removed on the platform side and kills its tokens. A location-level removal also takes
/// the location out of an agency-level install of its company.
fn remove_install(sim: &Sim, company_id: Option<&str>, location_id: Option<&str>) -> bool {
    if let Some(l) = location_id {
        return sim.world().uninstall_location(l);
    }
    let key = match company_id {
        Some(c) => InstallKey::Company(c.to_owned()),
        None => return false,
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
/// filled in when absent. `"sim_sign": "both" | "ed25519" | "rsa" | "na" | "none"` picks the signature headers
/// (`na`: `x-ghl-signature: N/A` and a signed `x-wh-signature`). A delivery answered `429` is kept for
/// `POST /_sim/webhooks/retry`.
async fn send_webhook(sim: web::Data<Sim>, body: web::Bytes) -> HlResult<HttpResponse> {
    deliver(&sim, json_object(&body)?).await
}

/// `GET /_sim/webhooks/events`: every webhook event type HighLevel documents (`{"types": [...]}`).
async fn event_types() -> HttpResponse {
    HttpResponse::Ok().json(json!({"types": crate::webhook_events::types()}))
}

/// `POST /_sim/webhooks/events/{type}` `{"url", "locationId"?, "companyId"?, "sim_sign"?, …fields}`: sends a
/// webhook of any documented type with a plausible body (HighLevel's documented example for that type, for
/// this tenant, with fresh record ids); the other fields given replace the body's. Signed and delivered as
/// `/_sim/webhooks/send` does, whose answer it gives. An undocumented type is 404 with the list.
async fn send_event(
    sim: web::Data<Sim>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HlResult<HttpResponse> {
    let given = json_object(&body)?;
    Check::new(&given)
        .string("url", true)
        .string("locationId", false)
        .string("companyId", false)
        .finish()?;
    let str_of = |k: &str| given.get(k).and_then(Value::as_str);
    let Some(mut payload) =
        crate::webhook_events::body(&path, str_of("locationId"), str_of("companyId"))
    else {
        return Err(HlError::not_found(&format!(
            "No webhook event type {}; documented types: {}",
            path.as_str(),
            crate::webhook_events::types().join(", ")
        )));
    };
    if let (Some(into), Some(from)) = (payload.as_object_mut(), given.as_object()) {
        for (k, v) in from {
            into.insert(k.clone(), v.clone());
        }
    }
    deliver(&sim, payload).await
}

/// Signs `payload` (`{"type", "url", …}`) as HighLevel does and posts it to its `url`.
async fn deliver(sim: &Sim, mut payload: Value) -> HlResult<HttpResponse> {
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
            sim,
            obj.get("companyId").and_then(Value::as_str),
            obj.get("locationId").and_then(Value::as_str),
        );
    }
    let bytes = serde_json::to_vec(&payload)
        .map_err(|_| HlError::bad_request("payload is not serializable"))?;
    let mut headers: Vec<(&'static str, String)> =
        vec![("content-type", "application/json".to_owned())];
    match sign.as_str() {
        "both" | "ed25519" => headers.push(("x-ghl-signature", sim.keys.sign_ed25519(&bytes))),
        // Some live deliveries carry the literal `N/A` in the current header, with the legacy one signed.
        "na" => headers.push(("x-ghl-signature", "N/A".to_owned())),
        _ => {}
    }
    if sign == "both" || sign == "rsa" || sign == "na" {
        headers.push(("x-wh-signature", sim.keys.sign_rsa(&bytes)));
    }
    let mut request = sim.http.post(&url);
    for (k, v) in &headers {
        request = request.header(*k, v);
    }
    Stats::bump(&sim.stats.webhooks_sent);
    match request.body(bytes.clone()).send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            // HighLevel retries a delivery answered 429, and only that one.
            if status == 429 {
                sim.world()
                    .pending_webhooks
                    .push(crate::state::PendingWebhook {
                        url: url.clone(),
                        body: bytes,
                        headers,
                        webhook_id: payload["webhookId"].as_str().unwrap_or_default().to_owned(),
                        attempts: 1,
                    });
            }
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

/// `POST /_sim/payments/orders {"locationId","amount","currency","liveMode"?,"contactId"?,"transactionId"?,
/// "recurring"?:{"productId","priceId","subscriptionId"?}}`: records an order and its transaction (with the
/// given id, or a new one) as HighLevel does when a checkout starts, and with `recurring` the subscription
/// bought (`GET /payments/subscriptions/{id}` then serves it); answers `{"orderId","transactionId",
/// "subscriptionId"}` (`null` without `recurring`).
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
    // A subscription checkout: HighLevel records the subscription from the order too.
    let subscription = match (
        b["recurring"]["productId"].as_str(),
        b["recurring"]["priceId"].as_str(),
    ) {
        (Some(product), Some(price)) => crate::routes::payments::record_subscription(
            &sim,
            &order,
            product,
            price,
            b["recurring"]["subscriptionId"].as_str(),
        ),
        _ => None,
    };
    HttpResponse::Ok()
        .json(json!({"orderId": order, "transactionId": txn, "subscriptionId": subscription}))
}

/// `POST /_sim/payments/subscriptions {"orderId","productId","priceId","subscriptionId"?}`: records at HighLevel
/// a subscription of the price bought in an existing order (as `recurring` of `POST /_sim/payments/orders`
/// does); answers `{"subscriptionId"}`, or 404 when the order is unknown.
async fn new_subscription(sim: web::Data<Sim>, body: web::Json<serde_json::Value>) -> HttpResponse {
    let b = body.into_inner();
    let (Some(order), Some(product), Some(price)) = (
        b["orderId"].as_str(),
        b["productId"].as_str(),
        b["priceId"].as_str(),
    ) else {
        return HttpResponse::BadRequest()
            .json(json!({"message": "orderId, productId and priceId are required"}));
    };
    match crate::routes::payments::record_subscription(
        &sim,
        order,
        product,
        price,
        b["subscriptionId"].as_str(),
    ) {
        Some(id) => HttpResponse::Ok().json(json!({"subscriptionId": id})),
        None => HttpResponse::NotFound().json(json!({"message": "Order not found"})),
    }
}
