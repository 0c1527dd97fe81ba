//! The payment page (the paymentsUrl HighLevel frames) and its own small API, called from the browser: check
//! a publishable key, charge a card (sandbox), open PayTR's checkout, poll a charge. The publishable key the
//! parent window handed the page must belong to the location; it also says the mode. What is charged is
//! decided in `payments::checkout`.

use crate::api::State;
use crate::error::ApiError;
use crate::payments::access::provider_for_publishable_key;
use crate::payments::checkout;
use crate::payments::gateway::Card;
use crate::payments::record::gateway_serves;
use crate::payments::subscription_checkout;
use crate::store::payments;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use shared_types::Problem;

const PAGE_API_LIMIT: usize = 8 * 1024;

const PAGE_JS: &str = include_str!("../../../assets/payment-page.js");
const PAGE_CSS: &str = include_str!("../../../assets/payment-page.css");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/payments/page", web::get().to(page))
        .route("/payments/page.js", web::get().to(page_js))
        .route("/payments/page.css", web::get().to(page_css))
        .route("/payments/page/charges/{chargeId}", web::get().to(status))
        .route(
            "/payments/page/paytr/subscriptions/{chargeId}",
            web::get().to(paytr_subscription_status),
        );
    // The page's own API: small JSON bodies, refused past PAGE_API_LIMIT with a problem body.
    for (path, route) in [
        ("/payments/page/check", web::post().to(check)),
        ("/payments/page/paytr", web::post().to(paytr_checkout)),
        ("/payments/page/paytr/setup", web::post().to(paytr_setup)),
        ("/payments/page/setup", web::post().to(setup)),
        ("/payments/page/charge", web::post().to(charge)),
        ("/payments/page/subscribe", web::post().to(subscribe)),
        (
            "/payments/page/paytr/subscribe",
            web::post().to(paytr_subscribe),
        ),
    ] {
        cfg.service(
            web::resource(path)
                .app_data(
                    web::JsonConfig::default()
                        .limit(PAGE_API_LIMIT)
                        .error_handler(|e, _| crate::error::json_error(e)),
                )
                .route(route),
        );
    }
}

/// The payment page's script.
#[utoipa::path(get, path = "/payments/page.js", tag = "payment page",
    responses((status = 200, description = "JavaScript", content_type = "application/javascript")))]
pub async fn page_js() -> HttpResponse {
    asset("application/javascript; charset=utf-8", PAGE_JS)
}

/// The payment page's style sheet.
#[utoipa::path(get, path = "/payments/page.css", tag = "payment page",
    responses((status = 200, description = "CSS", content_type = "text/css")))]
pub async fn page_css() -> HttpResponse {
    asset("text/css; charset=utf-8", PAGE_CSS)
}

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "public, max-age=300"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(body)
}

/// The paymentsUrl page HighLevel shows in an iframe: no inline script or style, a CSP that allows only this
/// service, and framing only by the allowed parent origins.
#[utoipa::path(get, path = "/payments/page", tag = "payment page", params(PageQuery),
    responses((status = 200, description = "The HTML page", content_type = "text/html")))]
pub async fn page(state: State, q: web::Query<PageQuery>) -> HttpResponse {
    // Card on file is advertised only where the location's gateway can keep a card (the sandbox; PayTR only
    // where the merchant holds its Direct API, Non3D and recurring permissions: `paytr.directApi`).
    let card_on_file = match q.location_id.as_deref() {
        Some(l) if shared_types::check_id("location id", l).is_ok() => {
            let l = l.to_owned();
            state
                .db
                .run(move |c| crate::store::providers::get(c, &l))
                .await
                .ok()
                .flatten()
                .is_some_and(|p| checkout::keeps_cards(&p))
        }
        _ => false,
    };
    let origins = state.settings.payment_parent_origins.join(" ");
    // `frame-src`: PayTR's checkout, and this service itself: PayTR's frame ends on our result pages
    // (`merchant_ok_url` / `merchant_fail_url`), and a child frame's navigation is checked against this page's
    // `frame-src` too.
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; \
         frame-src 'self' {paytr}; form-action {paytr}; base-uri 'none'; frame-ancestors {ancestors}",
        // The only form the page submits is a PayTR card setup, straight from the browser to PayTR.
        paytr = origin_of(&state.settings.paytr_api_url),
        ancestors = frame_ancestors(&state.settings),
    );
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Payment</title>
<link rel="stylesheet" href="/payments/page.css">
<script src="/payments/page.js" defer></script>
</head>
<body data-parent-origins="{}" data-card-on-file="{card_on_file}">
<main>
<p id="status">Waiting for the payment details…</p>
<form id="card-form" hidden>
<p>Amount: <strong id="amount"></strong></p>
<label id="owner-row" hidden>Name on card <input id="owner" autocomplete="cc-name"></label>
<label>Card number <input id="number" inputmode="numeric" autocomplete="cc-number" required></label>
<div class="row">
<label>Month <input id="exp-month" inputmode="numeric" autocomplete="cc-exp-month" placeholder="MM" required></label>
<label>Year <input id="exp-year" inputmode="numeric" autocomplete="cc-exp-year" placeholder="YYYY" required></label>
<label>CVC <input id="cvc" inputmode="numeric" autocomplete="cc-csc" required></label>
</div>
<label class="check" id="save-row"><input id="save" type="checkbox"> Save this card for later payments</label>
<button id="pay" type="submit">Pay</button>
<button id="cancel" type="button">Cancel</button>
</form>
<div id="gateway"></div>
<p id="error" role="alert"></p>
</main>
</body>
</html>
"#,
        html_escape::encode_double_quoted_attribute(&origins)
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", csp))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("Cache-Control", "no-store"))
        .body(html)
}

/// Who may frame the page. HighLevel shows checkout on funnels, websites, invoices and payment links, on its
/// own hosts, white-label hosts and agencies' custom domains, so by default any `https:` origin may (any
/// origin at all while PUBLIC_BASE_URL is plain `http:`, i.e. in development); safety comes from the server
/// (the key is the location's, the amount is HighLevel's). PAYMENT_PARENT_ORIGINS restricts it to a list.
fn frame_ancestors(settings: &crate::settings::Settings) -> String {
    if !settings.payment_parent_origins.is_empty() {
        // PayTR's own result pages (`merchant_ok_url` / `merchant_fail_url`) load this page inside PayTR's frame,
        // which sits inside this page, inside the parent: every one of those windows is an ancestor.
        return format!(
            "{} 'self' {}",
            settings.payment_parent_origins.join(" "),
            origin_of(&settings.paytr_api_url)
        );
    }
    let development = settings
        .public_base_url
        .as_deref()
        .is_none_or(|u| u.starts_with("http://"));
    if development {
        "http: https:"
    } else {
        "https:"
    }
    .to_owned()
}

/// `scheme://host[:port]` of a URL: the only frame the page may open is PayTR's checkout.
fn origin_of(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "'none'".into())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckInput {
    pub publishable_key: String,
    pub location_id: String,
}

/// Whether a publishable key is the location's (and its gateway serves that mode): the page shows its form
/// only then. `subscriptions` says whether the page can take a subscription (`mode: "subscription"`) here.
#[utoipa::path(post, path = "/payments/page/check", tag = "payment page", request_body = CheckInput,
    responses((status = 200, description = "`{mode, gateway, subscriptions}`", body = Object), (status = "4XX", body = Problem)))]
pub async fn check(state: State, body: web::Json<CheckInput>) -> Result<HttpResponse, ApiError> {
    let (provider, live) =
        provider_for_publishable_key(&state, &body.location_id, &body.publishable_key).await?;
    gateway_serves(&provider, live)?;
    Ok(HttpResponse::Ok().json(json!({
        "mode": if live { "live" } else { "test" },
        "gateway": provider.gateway,
        "subscriptions": subscription_checkout::page_takes_subscriptions(&provider),
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CardInput {
    pub number: String,
    pub exp_month: u32,
    pub exp_year: u32,
    pub cvc: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChargeInput {
    pub publishable_key: String,
    pub location_id: String,
    pub transaction_id: String,
    /// HighLevel's order, read when HighLevel does not know the transaction.
    #[serde(default)]
    pub order_id: Option<String>,
    /// Major units, as HighLevel's `payment_initiate_props` carries it: what the customer was shown. It must
    /// be HighLevel's recorded amount; the charge uses HighLevel's.
    pub amount: f64,
    pub currency: String,
    #[serde(default)]
    pub contact_id: Option<String>,
    #[serde(default)]
    pub save_card: bool,
    pub card: CardInput,
}

/// Charges a card the customer entered (sandbox gateway) for a transaction HighLevel recorded; the amount is
/// HighLevel's.
#[utoipa::path(post, path = "/payments/page/charge", tag = "payment page", request_body = ChargeInput,
    responses((status = 200, description = "`{chargeId, status, message, paymentMethodId}`", body = Object), (status = "4XX", body = Problem), (status = "5XX", body = Problem)))]
pub async fn charge(state: State, body: web::Json<ChargeInput>) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let (provider, live) =
        provider_for_publishable_key(&state, &input.location_id, &input.publishable_key).await?;
    gateway_serves(&provider, live)?;
    if provider.gateway != crate::store::providers::Gateway::Sandbox {
        return Err(ApiError::Validation(format!(
            "the `{}` gateway takes cards in its own checkout, not here",
            provider.gateway
        )));
    }
    let card = Card {
        number: input.card.number,
        exp_month: input.card.exp_month,
        exp_year: input.card.exp_year,
        cvc: input.card.cvc,
    };
    let (charged, method_id) = checkout::charge_card(
        &state,
        &provider,
        live,
        checkout::CardCheckout {
            transaction_id: input.transaction_id,
            order_id: input.order_id,
            amount: input.amount,
            currency: input.currency,
            contact_id: input.contact_id,
            save_card: input.save_card,
            card,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(page_answer(&charged, method_id)))
}

fn page_answer(c: &payments::Charge, method: Option<String>) -> serde_json::Value {
    json!({"chargeId": c.id, "status": c.status, "message": c.failure, "paymentMethodId": method})
}

/// The page's own query: the location it was registered for (its paymentsUrl), and PayTR's `result` when
/// PayTR's result pages load it.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    pub location_id: Option<String>,
    pub result: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetupInput {
    pub publishable_key: String,
    pub location_id: String,
    pub contact_id: String,
    pub card: CardInput,
}

/// Saves a card for the contact without charging it (HighLevel's `setup_initiate_props`); HighLevel then
/// lists it (`list_payment_methods`) and charges it off-session (`charge_payment`).
#[utoipa::path(post, path = "/payments/page/setup", tag = "payment page", request_body = SetupInput,
    responses((status = 200, description = "`{paymentMethodId}`", body = Object), (status = "4XX", body = Problem)))]
pub async fn setup(state: State, body: web::Json<SetupInput>) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let (provider, live) =
        provider_for_publishable_key(&state, &input.location_id, &input.publishable_key).await?;
    gateway_serves(&provider, live)?;
    let card = Card {
        number: input.card.number,
        exp_month: input.card.exp_month,
        exp_year: input.card.exp_year,
        cvc: input.card.cvc,
    };
    let method = checkout::save_card(&state, &provider, live, &input.contact_id, card).await?;
    Ok(HttpResponse::Ok().json(json!({"paymentMethodId": method})))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusQuery {
    pub publishable_key: String,
    pub location_id: String,
}

/// A charge's status, for a page waiting on a card that needs the customer to act.
#[utoipa::path(get, path = "/payments/page/charges/{chargeId}", tag = "payment page",
    params(("chargeId" = String, Path), StatusQuery),
    responses((status = 200, description = "`{chargeId, status, message}`", body = Object), (status = "4XX", body = Problem)))]
pub async fn status(
    state: State,
    path: web::Path<String>,
    q: web::Query<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    let (provider, _) =
        provider_for_publishable_key(&state, &q.location_id, &q.publishable_key).await?;
    let id = path.into_inner();
    shared_types::check_id("charge id", &id).map_err(ApiError::InvalidRequest)?;
    let location = provider.location_id.clone();
    let lookup = id.clone();
    let charge = state
        .db
        .run(move |c| payments::charge(c, &location, &lookup))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no charge `{id}` at this location")))?;
    Ok(HttpResponse::Ok().json(page_answer(&charge, None)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaytrInput {
    pub publishable_key: String,
    pub location_id: String,
    pub transaction_id: String,
    #[serde(default)]
    pub order_id: Option<String>,
    pub amount: f64,
    pub currency: String,
    pub email: String,
    #[serde(default)]
    pub product_name: Option<String>,
}

/// Opens PayTR's card page for a payment: records the charge (once per transactionId, HighLevel's amount)
/// and asks PayTR for a checkout token; PayTR's callback settles it.
#[utoipa::path(post, path = "/payments/page/paytr", tag = "payment page", request_body = PaytrInput,
    responses((status = 200, description = "`{chargeId, status, checkoutUrl}`", body = Object), (status = "4XX", body = Problem)))]
pub async fn paytr_checkout(
    state: State,
    req: actix_web::HttpRequest,
    body: web::Json<PaytrInput>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let (provider, live) =
        provider_for_publishable_key(&state, &input.location_id, &input.publishable_key).await?;
    if provider.gateway != crate::store::providers::Gateway::Paytr {
        return Err(ApiError::Validation(
            "this location's gateway is not PayTR".into(),
        ));
    }
    if !input.email.contains('@') || input.email.len() > 200 {
        return Err(ApiError::Validation(
            "a customer `email` is required".into(),
        ));
    }
    let ip = client_ip(&req);
    let opened = checkout::open_paytr(
        &state,
        &provider,
        live,
        checkout::PaytrCheckout {
            transaction_id: input.transaction_id,
            order_id: input.order_id,
            amount: input.amount,
            currency: input.currency,
            email: input.email,
            product_name: input.product_name,
            user_ip: ip,
        },
    )
    .await?;
    let (charge, url) = match opened {
        checkout::Opened::Settled(charge) => {
            return Ok(HttpResponse::Ok().json(page_answer(&charge, None)))
        }
        checkout::Opened::Checkout { charge, url } => (charge, url),
    };
    Ok(HttpResponse::Ok()
        .json(json!({"chargeId": charge.id, "status": charge.status, "checkoutUrl": url})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscribeInput {
    pub publishable_key: String,
    pub location_id: String,
    pub transaction_id: String,
    #[serde(default)]
    pub order_id: Option<String>,
    /// HighLevel's subscription id from `payment_initiate_props`.
    pub subscription_id: String,
    /// `productDetails.productId` / `priceId` from the props. Optional: the terms are HighLevel's record of
    /// the subscription; when sent, each must be the record's (else a 422 and nothing is charged).
    #[serde(default)]
    pub product_id: Option<String>,
    #[serde(default)]
    pub price_id: Option<String>,
    /// Major units, as the props carry it; it must be HighLevel's recorded amount for the transaction.
    pub amount: f64,
    pub currency: String,
    #[serde(default)]
    pub contact_id: Option<String>,
    pub card: CardInput,
}

/// A subscription checkout (`mode: "subscription"`, sandbox gateway): keeps the card on file, creates the
/// subscription under HighLevel's `subscriptionId` on HighLevel's terms (its subscription record's contact,
/// currency, mode, order and recurring price; the transaction's amount; the price's interval, trial and
/// cycles) and charges the first period, as `create_subscription` does. A transaction already charged or
/// bound to another subscription is refused (409 `transaction_already_used`).
#[utoipa::path(post, path = "/payments/page/subscribe", tag = "payment page", request_body = SubscribeInput,
    responses((status = 200, description = "`{chargeId, status, message, subscriptionId, subscriptionStatus, paymentMethodId}`", body = Object), (status = 409, description = "`transaction_already_used`", body = Problem), (status = "4XX", body = Problem), (status = "5XX", body = Problem)))]
pub async fn subscribe(
    state: State,
    body: web::Json<SubscribeInput>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let (provider, live) =
        provider_for_publishable_key(&state, &input.location_id, &input.publishable_key).await?;
    gateway_serves(&provider, live)?;
    let answer = subscription_checkout::subscribe(
        &state,
        &provider,
        live,
        subscription_checkout::SubscriptionCheckout {
            transaction_id: input.transaction_id,
            order_id: input.order_id,
            subscription_id: input.subscription_id,
            product_id: input.product_id,
            price_id: input.price_id,
            amount: input.amount,
            currency: input.currency,
            contact_id: input.contact_id,
        },
        Card {
            number: input.card.number,
            exp_month: input.card.exp_month,
            exp_year: input.card.exp_year,
            cvc: input.card.cvc,
        },
    )
    .await?;
    let charge = &answer["transaction"]["chargeSnapshot"];
    Ok(HttpResponse::Ok().json(json!({
        "chargeId": answer["transaction"]["chargeId"],
        "status": charge["status"],
        "message": answer["message"],
        "subscriptionId": answer["subscription"]["subscriptionId"],
        "subscriptionStatus": answer["subscription"]["subscriptionSnapshot"]["status"],
        "paymentMethodId": answer["paymentMethodId"],
    })))
}

/// The customer's address as PayTR wants it (`user_ip`): the proxy's forwarded address when behind one. A
/// forwarded value that is not an address (the header is the client's to write) gives way to the peer's.
fn client_ip(req: &actix_web::HttpRequest) -> String {
    let forwarded = req.connection_info().realip_remote_addr().and_then(|a| {
        a.parse::<std::net::SocketAddr>()
            .map(|s| s.ip())
            .or_else(|_| a.parse::<std::net::IpAddr>())
            .ok()
    });
    forwarded
        .or_else(|| req.peer_addr().map(|s| s.ip()))
        .map_or_else(|| "127.0.0.1".into(), |ip| ip.to_string())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaytrSetupInput {
    pub publishable_key: String,
    pub location_id: String,
    pub contact_id: String,
    /// The currency of HighLevel's `setup_initiate_props` (one PayTR takes).
    pub currency: String,
}

/// Card on file with PayTR (a provider with `paytr.directApi`): PayTR saves a card only during a payment, so
/// this records a verification payment of one unit of the currency and answers the Direct API fields signed
/// for it (`store_card=1`, the contact's `utoken` when PayTR gave one). The page adds the card and posts the
/// form from the browser straight to PayTR (`action`); the card never reaches this service. PayTR's
/// notification settles the payment and brings the contact's `utoken`; the page polls the charge, for at
/// most `pollForMs`. A setup PayTR's checkout closed on without a notification is marked failed (the
/// background pass asks PayTR's status query). Unfinished setups are bounded: 5 per contact and 50 per
/// location and mode (429 `card_setups_pending`).
#[utoipa::path(post, path = "/payments/page/paytr/setup", tag = "payment page", request_body = PaytrSetupInput,
    responses((status = 200, description = "`{chargeId, status, action, fields, pollForMs}`: post `fields` and the card to `action`; poll the charge for at most `pollForMs`", body = Object), (status = 429, description = "`card_setups_pending`", body = Problem), (status = "4XX", body = Problem)))]
pub async fn paytr_setup(
    state: State,
    req: actix_web::HttpRequest,
    body: web::Json<PaytrSetupInput>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let (provider, live) =
        provider_for_publishable_key(&state, &input.location_id, &input.publishable_key).await?;
    if provider.gateway != crate::store::providers::Gateway::Paytr {
        return Err(ApiError::Validation(
            "this location's gateway is not PayTR".into(),
        ));
    }
    let form = crate::payments::paytr_cards::begin_setup(
        &state,
        &provider,
        live,
        &input.contact_id,
        &input.currency,
        &client_ip(&req),
    )
    .await?;
    let fields: serde_json::Map<String, serde_json::Value> = form
        .fields
        .into_iter()
        .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v)))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "chargeId": form.charge.id,
        "status": form.charge.status,
        "action": form.action,
        "fields": fields,
        // How long the page waits for PayTR's word before it gives up (PayTR's checkout has closed by then,
        // and the setup is marked failed).
        "pollForMs": crate::payments::paytr_cards::PAGE_WAITS_MS,
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaytrSubscribeInput {
    pub publishable_key: String,
    pub location_id: String,
    pub transaction_id: String,
    #[serde(default)]
    pub order_id: Option<String>,
    /// HighLevel's subscription id from `payment_initiate_props`.
    pub subscription_id: String,
    /// `productDetails.productId` / `priceId` from the props; when sent, each must be HighLevel's record's.
    #[serde(default)]
    pub product_id: Option<String>,
    #[serde(default)]
    pub price_id: Option<String>,
    /// Major units, as the props carry it; it must be HighLevel's recorded amount for the transaction.
    pub amount: f64,
    pub currency: String,
    #[serde(default)]
    pub contact_id: Option<String>,
}

/// A subscription checkout (`mode: "subscription"`) with PayTR (a provider with `paytr.directApi`): the same
/// checks as `/payments/page/subscribe` against HighLevel's records, then the first period is a Direct API
/// payment of HighLevel's amount for the transaction with `store_card=1`: this answers the signed fields,
/// the page adds the card and posts the form from the browser straight to PayTR (`action`). PayTR's
/// notification creates the subscription (first period paid, renewals from the stored card) or marks the
/// checkout failed; the page polls `/payments/page/paytr/subscriptions/{chargeId}` for at most `pollForMs`.
/// A price with a trial is refused (422). A repeat once the subscription stands answers it
/// (`{chargeId, status, subscriptionId, subscriptionStatus}`, no `action`).
#[utoipa::path(post, path = "/payments/page/paytr/subscribe", tag = "payment page", request_body = PaytrSubscribeInput,
    responses((status = 200, description = "`{chargeId, status, action, fields, pollForMs}`: post `fields` and the card to `action`; poll the checkout for at most `pollForMs`", body = Object), (status = 409, description = "`transaction_already_used`", body = Problem), (status = "4XX", body = Problem), (status = "5XX", body = Problem)))]
pub async fn paytr_subscribe(
    state: State,
    req: actix_web::HttpRequest,
    body: web::Json<PaytrSubscribeInput>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let (provider, live) =
        provider_for_publishable_key(&state, &input.location_id, &input.publishable_key).await?;
    gateway_serves(&provider, live)?;
    let begun = crate::payments::paytr_subscriptions::begin(
        &state,
        &provider,
        live,
        subscription_checkout::SubscriptionCheckout {
            transaction_id: input.transaction_id,
            order_id: input.order_id,
            subscription_id: input.subscription_id,
            product_id: input.product_id,
            price_id: input.price_id,
            amount: input.amount,
            currency: input.currency,
            contact_id: input.contact_id,
        },
        &client_ip(&req),
    )
    .await?;
    let (charge, action, fields) = match begun {
        crate::payments::paytr_subscriptions::Begun::Subscribed(answer) => {
            return Ok(HttpResponse::Ok().json(answer))
        }
        crate::payments::paytr_subscriptions::Begun::Form {
            charge,
            action,
            fields,
        } => (charge, action, fields),
    };
    let fields: serde_json::Map<String, serde_json::Value> = fields
        .into_iter()
        .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v)))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "chargeId": charge.id,
        "status": charge.status,
        "action": action,
        "fields": fields,
        "pollForMs": crate::payments::paytr_cards::PAGE_WAITS_MS,
    })))
}

/// A PayTR subscription checkout's state, for the page waiting on PayTR's notification: `pending`, then
/// `succeeded` (the subscription was created, first period paid) or `failed` (nothing created).
#[utoipa::path(get, path = "/payments/page/paytr/subscriptions/{chargeId}", tag = "payment page",
    params(("chargeId" = String, Path), StatusQuery),
    responses((status = 200, description = "`{chargeId, status, message, subscriptionId}`", body = Object), (status = "4XX", body = Problem)))]
pub async fn paytr_subscription_status(
    state: State,
    path: web::Path<String>,
    q: web::Query<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    let (provider, _) =
        provider_for_publishable_key(&state, &q.location_id, &q.publishable_key).await?;
    let id = path.into_inner();
    shared_types::check_id("charge id", &id).map_err(ApiError::InvalidRequest)?;
    let answer = crate::payments::paytr_subscriptions::status(&state, &provider, &id).await?;
    Ok(HttpResponse::Ok().json(answer))
}

#[cfg(test)]
mod tests {
    use super::client_ip;
    use actix_web::test::TestRequest;

    #[test]
    fn the_customers_address_is_an_address_or_the_peers() {
        let peer = "203.0.113.9:5000".parse().unwrap();
        let ip = |h: Option<&str>| {
            let mut r = TestRequest::default().peer_addr(peer);
            if let Some(v) = h {
                r = r.insert_header(("x-forwarded-for", v));
            }
            client_ip(&r.to_http_request())
        };
        assert_eq!(ip(None), "203.0.113.9");
        assert_eq!(ip(Some("198.51.100.7")), "198.51.100.7");
        assert_eq!(ip(Some("198.51.100.7, 10.0.0.1")), "198.51.100.7");
        assert_eq!(ip(Some("not-an-address")), "203.0.113.9");
        assert_eq!(ip(Some("2001:db8::1")), "2001:db8::1");
    }
}
