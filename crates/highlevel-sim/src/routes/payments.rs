//! Payments (payments.json): the third-party custom provider a marketplace gateway app registers per location,
//! and the white-label endpoint that only re-brands HighLevel's own NMI / Authorize.net gateways.

use crate::access::{self, authorize, Requirement};
use crate::errors::{HlError, HlResult};
use crate::routes::{query, require_version, required_params, stamp_new};
use crate::state::{new_id, now_iso, Sim};
use crate::stats::Stats;
use crate::validate::{json_object, Check};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/payments/custom-provider/provider")
            .route(web::post().to(create_provider))
            .route(web::delete().to(delete_provider)),
    )
    .service(
        web::resource("/payments/custom-provider/connect")
            .route(web::get().to(get_connect))
            .route(web::post().to(connect)),
    )
    .route(
        "/payments/custom-provider/disconnect",
        web::post().to(disconnect),
    )
    .route(
        "/payments/custom-provider/webhook",
        web::post().to(provider_webhook),
    )
    .route(
        "/payments/custom-provider/capabilities",
        web::put().to(capabilities),
    )
    .route(
        "/payments/transactions/{transactionId}",
        web::get().to(get_transaction),
    )
    .route("/payments/orders/{orderId}", web::get().to(get_order))
    .route(
        "/payments/subscriptions/{subscriptionId}",
        web::get().to(get_subscription),
    )
    .service(
        web::resource("/payments/integrations/provider/whitelabel")
            .route(web::post().to(create_whitelabel))
            .route(web::get().to(list_whitelabel)),
    );
}

/// Version header, token and the `?locationId=` every custom-provider call carries.
fn guard(req: &HttpRequest, need: &Requirement) -> HlResult<String> {
    require_version(req)?;
    let q = query(req);
    authorize(req, need, q.get("locationId").map(String::as_str))?;
    required_params(&q, &["locationId"])?;
    Ok(q["locationId"].clone())
}

fn no_config() -> HlError {
    HlError::bad_request("No such config exists")
}

/// The provider as HighLevel shows it, without the secret `apiKey`s.
fn public_view(provider: &Value) -> Value {
    let mut p = provider.clone();
    if let Some(pp) = p.get_mut("paymentProvider").and_then(Value::as_object_mut) {
        for mode in ["live", "test"] {
            if let Some(keys) = pp.get_mut(mode).and_then(Value::as_object_mut) {
                keys.remove("apiKey");
            }
        }
    }
    p
}

async fn create_provider(
    req: HttpRequest,
    sim: web::Data<Sim>,
    body: web::Bytes,
) -> HlResult<HttpResponse> {
    let location = guard(&req, &access::PROVIDER_CREATE)?;
    let body = json_object(&body)?;
    Check::new(&body)
        .string("name", true)
        .string("description", true)
        .string("paymentsUrl", true)
        .string("queryUrl", true)
        .string("imageUrl", true)
        .boolean("supportsSubscriptionSchedule", true)
        .finish()?;
    let now = now_iso();
    let mut world = sim.world();
    let existing = world.providers.get(&location).cloned();
    let mut provider = body;
    provider["_id"] = existing
        .as_ref()
        .map(|e| e["_id"].clone())
        .unwrap_or_else(|| json!(new_id()));
    provider["locationId"] = json!(location);
    provider["marketplaceAppId"] = json!(sim.config.app_id);
    provider["deleted"] = json!(false);
    provider["createdAt"] = existing
        .as_ref()
        .map(|e| e["createdAt"].clone())
        .unwrap_or_else(|| json!(now));
    provider["updatedAt"] = json!(now);
    provider["paymentProvider"] = existing
        .map(|e| e["paymentProvider"].clone())
        .unwrap_or_else(|| json!({}));
    world.providers.insert(location, provider.clone());
    Ok(HttpResponse::Ok().json(public_view(&provider)))
}

async fn delete_provider(req: HttpRequest, sim: web::Data<Sim>) -> HlResult<HttpResponse> {
    let location = guard(&req, &access::PROVIDER_DELETE)?;
    match sim.world().providers.remove(&location) {
        Some(_) => Ok(HttpResponse::Ok().json(json!({"success": true}))),
        None => Err(no_config()),
    }
}

async fn get_connect(req: HttpRequest, sim: web::Data<Sim>) -> HlResult<HttpResponse> {
    let location = guard(&req, &access::CONNECT_GET)?;
    let world = sim.world();
    let provider = world.providers.get(&location).ok_or_else(no_config)?;
    let connected = provider["paymentProvider"]
        .as_object()
        .is_some_and(|o| !o.is_empty());
    if !connected {
        return Err(no_config());
    }
    Ok(HttpResponse::Ok().json(public_view(provider)))
}

async fn connect(
    req: HttpRequest,
    sim: web::Data<Sim>,
    body: web::Bytes,
) -> HlResult<HttpResponse> {
    let location = guard(&req, &access::CONNECT_CREATE)?;
    let body = json_object(&body)?;
    fn keys(c: Check<'_>) -> Check<'_> {
        c.string("apiKey", true).string("publishableKey", true)
    }
    Check::new(&body)
        .object("live", true, keys)
        .object("test", true, keys)
        .finish()?;
    let mut world = sim.world();
    let provider = world.providers.get_mut(&location).ok_or_else(|| {
        HlError::bad_request("No custom provider exists for this location: create it with POST /payments/custom-provider/provider first")
    })?;
    provider["paymentProvider"] = json!({"live": body["live"], "test": body["test"]});
    provider["updatedAt"] = json!(now_iso());
    Ok(HttpResponse::Ok().json(public_view(provider)))
}

async fn disconnect(
    req: HttpRequest,
    sim: web::Data<Sim>,
    body: web::Bytes,
) -> HlResult<HttpResponse> {
    let location = guard(&req, &access::DISCONNECT)?;
    let body = json_object(&body)?;
    Check::new(&body).boolean("liveMode", true).finish()?;
    let mode = if body["liveMode"] == true {
        "live"
    } else {
        "test"
    };
    let mut world = sim.world();
    let provider = world.providers.get_mut(&location).ok_or_else(no_config)?;
    let removed = provider["paymentProvider"]
        .as_object_mut()
        .and_then(|o| o.remove(mode));
    if removed.is_none() {
        return Err(no_config());
    }
    Ok(HttpResponse::Ok().json(json!({"success": true})))
}

/// A provider reports an asynchronous outcome (`payment.captured`, `subscription.*`). It proves itself with the
/// apiKey it connected for the location (live or test), not with an OAuth token.
async fn provider_webhook(sim: web::Data<Sim>, body: web::Bytes) -> HlResult<HttpResponse> {
    let body = json_object(&body)?;
    Check::new(&body)
        .string("event", true)
        .string("locationId", true)
        .string("apiKey", true)
        .finish()?;
    let location = body["locationId"].as_str().unwrap_or_default();
    let key = body["apiKey"].as_str().unwrap_or_default();
    let mut world = sim.world();
    let known = world.providers.get(location).is_some_and(|p| {
        ["live", "test"]
            .iter()
            .any(|m| p["paymentProvider"][m]["apiKey"].as_str() == Some(key))
    });
    if !known {
        return Err(HlError::nest(
            401,
            "Invalid apiKey for this location",
            "Unauthorized",
        ));
    }
    let event_id = body
        .get("eventId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let repeat = event_id.as_ref().is_some_and(|id| {
        world
            .payment_events
            .iter()
            .any(|e| e.get("eventId").and_then(Value::as_str) == Some(id.as_str()))
    });
    let missing = missing_fields(&body);
    let mut stored = body.clone();
    if let Some(o) = stored.as_object_mut() {
        o.remove("apiKey");
        o.insert("_missing".into(), json!(missing));
    }
    world.payment_events.push(stored);
    drop(world);
    Stats::bump(&sim.stats.payment_events_received);
    sim.stats
        .payment_event_fields_missing
        .fetch_add(missing.len() as u64, std::sync::atomic::Ordering::Relaxed);
    if repeat {
        Stats::bump(&sim.stats.payment_event_repeats);
    }
    Ok(HttpResponse::Ok().json(json!({"success": true})))
}

/// The statuses HighLevel's guide gives a `subscriptionSnapshot` and a `chargeSnapshot`.
const SUBSCRIPTION_STATUSES: &[&str] = &[
    "scheduled",
    "trialing",
    "active",
    "expired",
    "canceled",
    "unpaid",
    "incomplete",
];
const CHARGE_STATUSES: &[&str] = &["succeeded", "failed", "pending"];

/// What HighLevel's custom-provider guide requires of each event type, as dotted paths, that this event lacks
/// (empty strings count as missing); an unknown event type lacks `event`, and a snapshot status outside the
/// guide's list counts as missing too. `ghlTransactionId` belongs to `payment.captured`: a renewal has no
/// HighLevel transaction until HighLevel records the charge it hears of.
pub fn missing_fields(e: &Value) -> Vec<String> {
    let mut need = vec!["event", "locationId", "apiKey", "marketplaceAppId"];
    let charge = [
        "chargeId",
        "chargeSnapshot.status",
        "chargeSnapshot.amount",
        "chargeSnapshot.chargeId",
        "chargeSnapshot.chargedAt",
    ];
    let subscription = [
        "ghlSubscriptionId",
        "subscriptionSnapshot.id",
        "subscriptionSnapshot.status",
        "subscriptionSnapshot.createdAt",
    ];
    let kind = e["event"].as_str().unwrap_or_default();
    let mut unknown = false;
    match kind {
        "payment.captured" => {
            need.extend(charge);
            need.push("ghlTransactionId");
        }
        "subscription.charged" => {
            need.extend(subscription);
            need.extend(charge);
        }
        "subscription.trialing" => {
            need.extend(subscription);
            need.extend([
                "subscriptionSnapshot.trialEnd",
                "subscriptionSnapshot.nextCharge",
            ]);
        }
        "subscription.active" | "subscription.updated" => need.extend(subscription),
        _ => unknown = true,
    }
    let at = |path: &str| path.split('.').fold(e, |v, k| &v[k]).clone();
    let mut missing: Vec<String> = need
        .into_iter()
        .filter(|path| {
            let v = at(path);
            v.is_null() || v.as_str() == Some("")
        })
        .map(str::to_owned)
        .collect();
    if unknown && !missing.iter().any(|m| m == "event") {
        missing.push("event".into());
    }
    for (path, allowed) in [
        ("subscriptionSnapshot.status", SUBSCRIPTION_STATUSES),
        ("chargeSnapshot.status", CHARGE_STATUSES),
    ] {
        if let Some(s) = at(path).as_str() {
            if !allowed.contains(&s) {
                missing.push(format!("{path} (`{s}` is not one of the guide's)"));
            }
        }
    }
    missing
}

async fn capabilities(
    req: HttpRequest,
    sim: web::Data<Sim>,
    body: web::Bytes,
) -> HlResult<HttpResponse> {
    require_version(&req)?;
    let body = json_object(&body)?;
    let location = body
        .get("locationId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    authorize(&req, &access::CAPABILITIES, location.as_deref())?;
    Check::new(&body)
        .boolean("supportsSubscriptionSchedules", true)
        .string("locationId", false)
        .string("companyId", false)
        .finish()?;
    if location.is_none() && body.get("companyId").and_then(Value::as_str).is_none() {
        return Err(HlError::unprocessable(vec![
            "locationId is required when companyId is not provided".into(),
        ]));
    }
    let mut world = sim.world();
    let provider = location
        .and_then(|l| world.providers.get_mut(&l))
        .ok_or_else(no_config)?;
    provider["supportsSubscriptionSchedule"] = body["supportsSubscriptionSchedules"].clone();
    Ok(HttpResponse::Ok().json(json!({"success": true})))
}

async fn create_whitelabel(
    req: HttpRequest,
    sim: web::Data<Sim>,
    body: web::Bytes,
) -> HlResult<HttpResponse> {
    require_version(&req)?;
    let body = json_object(&body)?;
    authorize(
        &req,
        &access::WHITELABEL_CREATE,
        body.get("altId").and_then(Value::as_str),
    )?;
    Check::new(&body)
        .string("altId", true)
        .one_of("altType", &["location"], true)
        .string("uniqueName", true)
        .string("title", true)
        .one_of("provider", &["authorize-net", "nmi"], true)
        .string("description", true)
        .string("imageUrl", true)
        .finish()?;
    let mut item = body.clone();
    stamp_new(&mut item);
    item["route"] = json!(format!(
        "/payments/{}",
        body["uniqueName"].as_str().unwrap_or_default()
    ));
    let location = body["altId"].as_str().unwrap_or_default().to_owned();
    sim.world()
        .whitelabel
        .entry(location)
        .or_default()
        .push(item.clone());
    Ok(HttpResponse::Ok().json(item))
}

async fn list_whitelabel(req: HttpRequest, sim: web::Data<Sim>) -> HlResult<HttpResponse> {
    require_version(&req)?;
    let q = query(&req);
    authorize(
        &req,
        &access::WHITELABEL_LIST,
        q.get("altId").map(String::as_str),
    )?;
    required_params(&q, &["altId", "altType"])?;
    let providers = sim
        .world()
        .whitelabel
        .get(&q["altId"])
        .cloned()
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(json!({"providers": providers})))
}

/// `GET /payments/transactions/{transactionId}?altId=&altType=location` (payments.json): HighLevel's own record
/// of a payment, amount in major units. `altId` and `altType` are required; the token must be the location's.
async fn get_transaction(req: HttpRequest, sim: web::Data<Sim>) -> HlResult<HttpResponse> {
    let id = req
        .match_info()
        .get("transactionId")
        .unwrap_or_default()
        .to_owned();
    record(
        &req,
        &sim,
        &access::TRANSACTION_GET,
        |w| w.transactions.get(&id).cloned(),
        "Transaction not found",
    )
}

/// `GET /payments/orders/{orderId}?altId=&altType=location` (payments.json).
async fn get_order(req: HttpRequest, sim: web::Data<Sim>) -> HlResult<HttpResponse> {
    let id = req
        .match_info()
        .get("orderId")
        .unwrap_or_default()
        .to_owned();
    record(
        &req,
        &sim,
        &access::ORDER_GET,
        |w| w.orders.get(&id).cloned(),
        "Order not found",
    )
}

/// `GET /payments/subscriptions/{subscriptionId}?altId=&altType=location` (payments.json
/// `GetSubscriptionResponseSchema`): HighLevel's own record of a subscription, from the simulator's table.
async fn get_subscription(req: HttpRequest, sim: web::Data<Sim>) -> HlResult<HttpResponse> {
    let id = req
        .match_info()
        .get("subscriptionId")
        .unwrap_or_default()
        .to_owned();
    record(
        &req,
        &sim,
        &access::SUBSCRIPTION_GET,
        |w| w.subscriptions.get(&id).cloned(),
        "Subscription not found",
    )
}

fn record(
    req: &HttpRequest,
    sim: &Sim,
    need: &Requirement,
    find: impl FnOnce(&crate::state::World) -> Option<Value>,
    missing: &str,
) -> HlResult<HttpResponse> {
    require_version(req)?;
    let q = query(req);
    let location = q.get("altId").or_else(|| q.get("locationId")).cloned();
    authorize(req, need, location.as_deref())?;
    required_params(&q, &["altId", "altType"])?;
    let found = find(&sim.world_read())
        // Another location's record is as good as absent.
        .filter(|r| r["altId"].as_str() == location.as_deref())
        .ok_or_else(|| HlError::not_found(missing))?;
    Ok(HttpResponse::Ok().json(found))
}

/// What a checkout records at HighLevel before the payment page is shown: an order and its transaction, both
/// `pending`, amount in major units. Used by the checkout page and by `POST /_sim/payments/orders`.
pub fn record_checkout(
    sim: &Sim,
    location: &str,
    amount: f64,
    currency: &str,
    live: bool,
    contact: Option<&str>,
    transaction_id: Option<&str>,
) -> (String, String) {
    let (order_id, now) = (new_id(), now_iso());
    let txn_id = transaction_id.map(str::to_owned).unwrap_or_else(new_id);
    let contact = contact.map(str::to_owned).unwrap_or_else(new_id);
    let order = json!({
        "_id": order_id, "altId": location, "altType": "location", "contactId": contact,
        "currency": currency, "amount": amount, "status": "pending", "liveMode": live,
        "createdAt": now, "updatedAt": now,
    });
    let txn = json!({
        "_id": txn_id, "altId": location, "altType": "location", "contactId": contact,
        "currency": currency, "amount": amount, "status": "pending", "liveMode": live,
        "entityType": "order", "entityId": order_id, "createdAt": now, "updatedAt": now,
    });
    let mut world = sim.world();
    world.orders.insert(order_id.clone(), order);
    world.transactions.insert(txn_id.clone(), txn);
    (order_id, txn_id)
}

/// What a subscription checkout records at HighLevel besides its order and transaction: the subscription, from
/// that order (`entityType` `order`, `entityId`), for the contact, currency and mode of the order, with the
/// product and price bought in `recurringProduct`. payments.json leaves `recurringProduct`'s fields open; the
/// simulator gives it an order item's shape: `{locationId, name, qty, productId, priceId, product{_id, name},
/// price{…the price as the Products API holds it}}`. `amount` is the price's (the value of each period).
/// Answers the subscription's id (`id`, or a new one).
pub fn record_subscription(
    sim: &Sim,
    order_id: &str,
    product_id: &str,
    price_id: &str,
    id: Option<&str>,
) -> Option<String> {
    let mut world = sim.world();
    let order = world.orders.get(order_id)?.clone();
    let location = order["altId"].as_str().unwrap_or_default().to_owned();
    let product = world
        .products
        .get(&location)
        .and_then(|ps| ps.iter().find(|p| p["_id"] == product_id))
        .cloned()
        .unwrap_or_else(|| json!({"_id": product_id}));
    let price = world
        .prices
        .get(product_id)
        .and_then(|ps| ps.iter().find(|p| p["_id"] == price_id))
        .cloned()
        .unwrap_or_else(|| json!({"_id": price_id}));
    let (sub_id, now) = (id.map(str::to_owned).unwrap_or_else(new_id), now_iso());
    let sub = json!({
        "_id": sub_id, "altId": location, "altType": "location", "contactId": order["contactId"],
        "currency": order["currency"], "amount": price.get("amount").cloned().unwrap_or(order["amount"].clone()),
        "status": "incomplete", "liveMode": order["liveMode"], "entityType": "order", "entityId": order_id,
        "recurringProduct": {
            "locationId": location, "name": product["name"], "qty": 1, "productId": product_id,
            "priceId": price_id, "product": {"_id": product_id, "name": product["name"]}, "price": price,
        },
        "createdAt": now, "updatedAt": now,
    });
    world.subscriptions.insert(sub_id.clone(), sub);
    Some(sub_id)
}

#[cfg(test)]
mod tests {
    use super::missing_fields;
    use serde_json::json;

    fn base(kind: &str) -> serde_json::Value {
        json!({"event": kind, "locationId": "L", "apiKey": "k", "marketplaceAppId": "app"})
    }

    #[test]
    fn each_event_type_needs_its_documented_fields() {
        let mut e = base("subscription.trialing");
        e["ghlSubscriptionId"] = json!("hs");
        e["subscriptionSnapshot"] = json!({"id": "s", "status": "trialing", "createdAt": 1});
        assert_eq!(
            missing_fields(&e),
            [
                "subscriptionSnapshot.trialEnd",
                "subscriptionSnapshot.nextCharge"
            ]
        );
        e["subscriptionSnapshot"]["trialEnd"] = json!(2);
        e["subscriptionSnapshot"]["nextCharge"] = json!(2);
        assert!(missing_fields(&e).is_empty());

        let mut e = base("subscription.charged");
        e["ghlSubscriptionId"] = json!("hs");
        e["subscriptionSnapshot"] = json!({"id": "s", "status": "active", "createdAt": 1});
        assert_eq!(
            missing_fields(&e),
            [
                "chargeId",
                "chargeSnapshot.status",
                "chargeSnapshot.amount",
                "chargeSnapshot.chargeId",
                "chargeSnapshot.chargedAt"
            ]
        );
        let mut e = base("payment.captured");
        e["chargeId"] = json!("c");
        e["chargeSnapshot"] =
            json!({"status": "succeeded", "amount": 1, "chargeId": "c", "chargedAt": 1});
        assert_eq!(missing_fields(&e), ["ghlTransactionId"]);
    }

    #[test]
    fn unknown_types_and_statuses_count() {
        assert_eq!(missing_fields(&base("subscription.paused")), ["event"]);
        let mut e = base("subscription.updated");
        e["ghlSubscriptionId"] = json!("hs");
        e["subscriptionSnapshot"] = json!({"id": "s", "status": "past_due", "createdAt": 1});
        assert_eq!(missing_fields(&e).len(), 1);
    }
}
