//! HighLevel's side of a payment through a custom provider, as control routes for tests, devstack and people:
//!
//! - `GET /_sim/payments/connect?locationId=`: the connected config with its api keys, as HighLevel holds it.
//! - `POST /_sim/payments/query {"locationId","live","payload"}`: calls the registered queryUrl as HighLevel does
//!   (the connected `apiKey` added to the payload) and answers `{"status","body"}`.
//! - `GET /_sim/payments/checkout?locationId=&amount=&currency=&mode=[&live=true][&propsDelayMs=]`: HighLevel's
//!   checkout page. It records an order and a transaction, frames the registered paymentsUrl, answers the
//!   page's `custom_provider_ready` with `payment_initiate_props` (after `propsDelayMs`), and when the page ends
//!   (success, error or close) calls `verify` through the queryUrl (`list_payment_methods` after `mode=setup`,
//!   which sends `setup_initiate_props` to save a card); it writes
//!   `{"transactionId","orderId","subscriptionId","message","verify"}` as JSON into `<pre id="result">`. With
//!   `mode=subscription` (`[&interval=day|week|month|year][&intervalCount=][&trialPeriod=][&totalCycles=]`) it
//!   creates a recurring price of a product of the location, records HighLevel's subscription of it (from the
//!   order: `GET /payments/subscriptions/{id}` serves it), sends the ids in `productDetails` with that
//!   `subscriptionId`, and verifies with it.

use crate::routes::query;
use crate::state::Sim;
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/_sim/payments/connect", web::get().to(connect))
        .route("/_sim/payments/query", web::post().to(query_provider))
        .route("/_sim/payments/checkout", web::get().to(checkout));
}

fn problem(status: u16, message: &str) -> HttpResponse {
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST),
    )
    .json(json!({"statusCode": status, "message": message}))
}

fn provider(sim: &Sim, location: &str) -> Option<Value> {
    sim.world_read().providers.get(location).cloned()
}

async fn connect(req: actix_web::HttpRequest, sim: web::Data<Sim>) -> HttpResponse {
    let q = query(&req);
    let Some(location) = q.get("locationId") else {
        return problem(400, "locationId is required");
    };
    match provider(&sim, location) {
        Some(p) => HttpResponse::Ok().json(p),
        None => problem(404, "No such config exists"),
    }
}

/// What HighLevel does before each queryUrl call: the registered URL and the connected key of the mode.
fn query_target(sim: &Sim, location: &str, live: bool) -> Result<(String, String), HttpResponse> {
    let p = provider(sim, location).ok_or_else(|| problem(404, "No such config exists"))?;
    let mode = if live { "live" } else { "test" };
    let url = p["queryUrl"].as_str().map(str::to_owned);
    let key = p["paymentProvider"][mode]["apiKey"]
        .as_str()
        .map(str::to_owned);
    match (url, key) {
        (Some(u), Some(k)) => Ok((u, k)),
        _ => Err(problem(
            400,
            &format!("the provider has no queryUrl or no {mode} apiKey connected"),
        )),
    }
}

async fn query_provider(sim: web::Data<Sim>, body: web::Json<Value>) -> HttpResponse {
    let b = body.into_inner();
    let (Some(location), Some(payload)) = (b["locationId"].as_str(), b["payload"].as_object())
    else {
        return problem(400, "locationId and payload (an object) are required");
    };
    let (url, key) = match query_target(&sim, location, b["live"].as_bool().unwrap_or(false)) {
        Ok(t) => t,
        Err(res) => return res,
    };
    let mut payload = Value::Object(payload.clone());
    payload["apiKey"] = json!(key);
    match sim.http.post(&url).json(&payload).send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let text = res.text().await.unwrap_or_default();
            let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
            HttpResponse::Ok().json(json!({"status": status, "body": body}))
        }
        Err(e) => problem(502, &format!("the queryUrl did not answer: {e}")),
    }
}

async fn checkout(req: actix_web::HttpRequest, sim: web::Data<Sim>) -> HttpResponse {
    let q = query(&req);
    let (Some(location), Some(amount), Some(currency)) = (
        q.get("locationId"),
        q.get("amount").and_then(|a| a.parse::<f64>().ok()),
        q.get("currency"),
    ) else {
        return problem(
            400,
            "locationId, amount (major units) and currency are required",
        );
    };
    let live = q.get("live").is_some_and(|l| l == "true");
    let mode = q.get("mode").cloned().unwrap_or_else(|| "payment".into());
    let delay: u64 = q
        .get("propsDelayMs")
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    let Some(p) = provider(&sim, location) else {
        return problem(404, "No custom provider is registered for this location");
    };
    let (Some(page), Some(publishable)) = (
        p["paymentsUrl"].as_str(),
        p["paymentProvider"][if live { "live" } else { "test" }]["publishableKey"].as_str(),
    ) else {
        return problem(
            400,
            "the provider has no paymentsUrl or no publishable key connected",
        );
    };
    let origin = url::Url::parse(page)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let (order, txn) = crate::routes::payments::record_checkout(
        &sim,
        location,
        amount,
        currency,
        live,
        Some("sim-contact"),
        None,
    );
    let setup = mode == "setup";
    // A subscription checkout: HighLevel's own subscription id and a recurring price of a product of the
    // location (as HighLevel keeps them; the provider reads the price's terms with the Products API).
    let (subscription, product, price) = if mode == "subscription" {
        let (product, price) = recurring_product(&sim, location, amount, currency, &q);
        let sub =
            crate::routes::payments::record_subscription(&sim, &order, &product, &price, None);
        (sub, product, price)
    } else {
        (None, "sim-product".to_owned(), "sim-price".to_owned())
    };
    let props = if setup {
        // Saving a card for later (card on file): no amount, no order.
        json!({
            "type": "setup_initiate_props", "publishableKey": publishable, "currency": currency.to_ascii_lowercase(),
            "mode": "setup", "contact": {"id": "sim-contact"}, "locationId": location,
        })
    } else {
        json!({
            "type": "payment_initiate_props", "publishableKey": publishable, "amount": amount,
            "currency": currency.to_ascii_lowercase(), "mode": mode,
            "productDetails": {"productId": product, "priceId": price, "name": "Simulated order"},
            "contact": {"id": "sim-contact", "name": "Ada Lovelace", "email": "ada@example.test", "contact": "+10000000000"},
            "orderId": order, "transactionId": txn, "subscriptionId": subscription, "locationId": location,
        })
    };
    let ctx = json!({"locationId": location, "live": live, "transactionId": txn, "orderId": order, "setup": setup,
        "subscriptionId": subscription});
    // JSON inside a <script>: `<` escaped so no string can close the element.
    let js = |v: &Value| v.to_string().replace('<', "\\u003c");
    let html = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Checkout (HighLevel simulator)</title></head>
<body>
<h1>Checkout</h1>
<p>{amount} {currency_upper} &middot; order {order}</p>
<iframe id="payment" src="{page}" width="460" height="520"></iframe>
<pre id="result"></pre>
<script>
(function () {{
  var props = {props_js};
  var ctx = {ctx_js};
  var pageOrigin = {origin_js};
  var sent = false, done = false;
  window.received = [];
  var frame = document.getElementById("payment");
  window.addEventListener("message", function (e) {{
    if (e.source !== frame.contentWindow || e.origin !== pageOrigin) return;
    var d; try {{ d = typeof e.data === "string" ? JSON.parse(e.data) : e.data; }} catch (x) {{ return; }}
    if (!d) return;
    window.received.push(d);
    if (d.type === "custom_provider_ready" && !sent) {{
      sent = true;
      setTimeout(function () {{ frame.contentWindow.postMessage(JSON.stringify(props), pageOrigin); }}, {delay});
    }} else if (!done && (d.type === "custom_element_success_response" || d.type === "custom_element_error_response" || d.type === "custom_element_close_response")) {{
      done = true;
      var payload = {{type: "verify", transactionId: ctx.transactionId}};
      if (d.chargeId) payload.chargeId = d.chargeId;
      // A subscription checkout is verified with HighLevel's own subscription id.
      if (ctx.subscriptionId) payload.subscriptionId = ctx.subscriptionId;
      // After a setup HighLevel lists the contact's cards instead.
      if (ctx.setup) payload = {{type: "list_payment_methods", locationId: ctx.locationId, contactId: "sim-contact"}};
      fetch("/_sim/payments/query", {{method: "POST", headers: {{"content-type": "application/json"}},
        body: JSON.stringify({{locationId: ctx.locationId, live: ctx.live, payload: payload}})}})
        .then(function (r) {{ return r.json(); }})
        .then(function (v) {{ document.getElementById("result").textContent = JSON.stringify({{transactionId: ctx.transactionId, orderId: ctx.orderId, subscriptionId: ctx.subscriptionId, message: d, verify: v.body}}); }});
    }}
  }});
}})();
</script>
</body></html>"#,
        currency_upper = html_escape::encode_text(&currency.to_ascii_uppercase()),
        order = html_escape::encode_text(&order),
        page = html_escape::encode_double_quoted_attribute(page),
        props_js = js(&props),
        ctx_js = js(&ctx),
        origin_js = js(&json!(origin)),
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(html)
}

/// For `mode=subscription`: a product of the location with a recurring price of `amount` (query `interval`
/// day|week|month|year, default month; `intervalCount`, default 1; `trialPeriod` days; `totalCycles`).
/// Answers (productId, priceId); the checkout then records HighLevel's subscription of that price.
fn recurring_product(
    sim: &Sim,
    location: &str,
    amount: f64,
    currency: &str,
    q: &std::collections::HashMap<String, String>,
) -> (String, String) {
    let number = |k: &str| q.get(k).and_then(|v| v.parse::<u32>().ok());
    let mut product = json!({"name": "Simulated subscription", "locationId": location, "productType": "SERVICE",
        "availableInStore": false});
    crate::routes::stamp_new(&mut product);
    let product_id = product["_id"].as_str().unwrap_or_default().to_owned();
    let mut price = json!({
        "name": "Simulated plan", "type": "recurring", "currency": currency, "amount": amount,
        "locationId": location, "product": product_id,
        "recurring": {"interval": q.get("interval").map_or("month", String::as_str),
            "intervalCount": number("intervalCount").unwrap_or(1)},
    });
    if let Some(days) = number("trialPeriod") {
        price["trialPeriod"] = json!(days);
    }
    if let Some(cycles) = number("totalCycles") {
        price["totalCycles"] = json!(cycles);
    }
    crate::routes::stamp_new(&mut price);
    let price_id = price["_id"].as_str().unwrap_or_default().to_owned();
    let mut world = sim.world();
    world
        .products
        .entry(location.to_owned())
        .or_default()
        .push(product);
    world
        .prices
        .entry(product_id.clone())
        .or_default()
        .push(price);
    (product_id, price_id)
}
