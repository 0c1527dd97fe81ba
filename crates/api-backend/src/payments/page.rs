//! The payment page's own API (the paymentsUrl page calls it from the browser): charge a card the customer
//! entered, optionally saving it for later off-session charges, and poll a charge. The publishable key the
//! parent window handed the page must belong to the location; it also says the mode.

use super::gateway::{Card, Gateway, Sandbox};
use super::query::{new_charge, run_charge};
use super::record::{check_page_amount, gateway_serves, recorded};
use crate::api::State;
use crate::error::ApiError;
use crate::store::payments::{self, Method};
use crate::store::{now_ms, providers};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use service_common::crypto::constant_time_eq;
use shared_types::Problem;

const PAGE_API_LIMIT: usize = 8 * 1024;

const PAGE_JS: &str = include_str!("../../assets/payment-page.js");
const PAGE_CSS: &str = include_str!("../../assets/payment-page.css");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/payments/page", web::get().to(page))
        .route("/payments/page.js", web::get().to(page_js))
        .route("/payments/page.css", web::get().to(page_css))
        .service(
            web::resource("/payments/page/check")
                .app_data(
                    web::JsonConfig::default()
                        .limit(PAGE_API_LIMIT)
                        .error_handler(|e, _| crate::error::json_error(e)),
                )
                .route(web::post().to(check)),
        );
    cfg.service(
        web::resource("/payments/page/paytr")
            .app_data(
                web::JsonConfig::default()
                    .limit(PAGE_API_LIMIT)
                    .error_handler(|e, _| crate::error::json_error(e)),
            )
            .route(web::post().to(paytr_checkout)),
    );
    cfg.service(
        web::resource("/payments/page/charge")
            .app_data(
                web::JsonConfig::default()
                    .limit(PAGE_API_LIMIT)
                    .error_handler(|e, _| crate::error::json_error(e)),
            )
            .route(web::post().to(charge)),
    )
    .route("/payments/page/charges/{chargeId}", web::get().to(status));
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
#[utoipa::path(get, path = "/payments/page", tag = "payment page",
    responses((status = 200, description = "The HTML page", content_type = "text/html")))]
pub async fn page(state: State) -> HttpResponse {
    let origins = state.settings.payment_parent_origins.join(" ");
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; \
         frame-src {}; form-action 'none'; base-uri 'none'; frame-ancestors {}",
        origin_of(&state.settings.paytr_api_url),
        frame_ancestors(&state.settings)
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
<body data-parent-origins="{}">
<main>
<p id="status">Waiting for the payment details…</p>
<form id="card-form" hidden>
<p>Amount: <strong id="amount"></strong></p>
<label>Card number <input id="number" inputmode="numeric" autocomplete="cc-number" required></label>
<div class="row">
<label>Month <input id="exp-month" inputmode="numeric" autocomplete="cc-exp-month" placeholder="MM" required></label>
<label>Year <input id="exp-year" inputmode="numeric" autocomplete="cc-exp-year" placeholder="YYYY" required></label>
<label>CVC <input id="cvc" inputmode="numeric" autocomplete="cc-csc" required></label>
</div>
<label class="check"><input id="save" type="checkbox"> Save this card for later payments</label>
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
        // PayTR's own result pages (`merchant_ok_url` / `merchant_fail_url`) load this page inside PayTR's frame.
        return format!(
            "{} {}",
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
/// only then.
#[utoipa::path(post, path = "/payments/page/check", tag = "payment page", request_body = CheckInput,
    responses((status = 200, description = "`{mode, gateway}`", body = Object), (status = "4XX", body = Problem)))]
pub async fn check(state: State, body: web::Json<CheckInput>) -> Result<HttpResponse, ApiError> {
    let (provider, live) =
        provider_for_page(&state, &body.location_id, &body.publishable_key).await?;
    gateway_serves(&provider, live)?;
    Ok(HttpResponse::Ok()
        .json(json!({"mode": if live { "live" } else { "test" }, "gateway": provider.gateway})))
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

/// The provider of `location` if `publishable_key` is one of its keys, and whether it is the live one.
async fn provider_for_page(
    state: &State,
    location: &str,
    publishable_key: &str,
) -> Result<(providers::ProviderRow, bool), ApiError> {
    highlevel_client::check_id("location id", location).map_err(ApiError::InvalidRequest)?;
    let l = location.to_owned();
    let row = state
        .db
        .run(move |c| providers::get(c, &l))
        .await?
        .ok_or(ApiError::ProviderKeyInvalid)?;
    let live = constant_time_eq(&row.live_publishable_key, publishable_key);
    let test = constant_time_eq(&row.test_publishable_key, publishable_key);
    if !live && !test {
        return Err(ApiError::ProviderKeyInvalid);
    }
    super::installed::check_installed(state, &row).await?;
    Ok((row, live))
}

/// Charges a card the customer entered (sandbox gateway) for a transaction HighLevel recorded; the amount is
/// HighLevel's.
#[utoipa::path(post, path = "/payments/page/charge", tag = "payment page", request_body = ChargeInput,
    responses((status = 200, description = "`{chargeId, status, message, paymentMethodId}`", body = Object), (status = "4XX", body = Problem), (status = "5XX", body = Problem)))]
pub async fn charge(state: State, body: web::Json<ChargeInput>) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let (provider, live) =
        provider_for_page(&state, &input.location_id, &input.publishable_key).await?;
    gateway_serves(&provider, live)?;
    if provider.gateway != "sandbox" {
        return Err(ApiError::Validation(format!(
            "the `{}` gateway takes cards in its own checkout, not here",
            provider.gateway
        )));
    }
    let (exp_month, exp_year) = (input.card.exp_month, input.card.exp_year);
    let card = Card {
        number: input.card.number,
        exp_month,
        exp_year,
        cvc: input.card.cvc,
    };
    let now = chrono::Utc::now();
    let digits = card
        .validate(
            chrono::Datelike::year(&now) as u32,
            chrono::Datelike::month(&now),
        )
        .map_err(|e| ApiError::Validation(e.to_string()))?;
    let rec = recorded(
        &state,
        &provider,
        live,
        &input.transaction_id,
        input.order_id.as_deref(),
    )
    .await?;
    check_page_amount(input.amount, &input.currency, &rec)?;
    let mut new = new_charge(
        &provider,
        live,
        &input.transaction_id,
        rec.minor,
        rec.cur.code().to_owned(),
    );
    new.contact_id = input.contact_id.clone();
    let snapshot = new.clone();
    let charged = run_charge(&state, new, async move {
        Sandbox.charge_card(&card, &snapshot).await
    })
    .await?;
    // Card on file: brand, last four and expiry, and what the sandbox will do with it; never the number.
    let mut method_id = None;
    if let (true, Some(contact), false) = (
        input.save_card,
        input.contact_id,
        charged.status == "failed",
    ) {
        let m = Method {
            id: format!("pm_{:032x}", rand::random::<u128>()),
            location_id: provider.location_id.clone(),
            live_mode: live,
            contact_id: contact,
            brand: match digits.chars().next() {
                Some('4') => "Visa",
                Some('5') => "Mastercard",
                Some('3') => "American Express",
                _ => "Card",
            }
            .into(),
            last4: digits[digits.len() - 4..].to_owned(),
            exp_month: exp_month as i32,
            exp_year: exp_year as i32,
            sandbox_outcome: super::gateway::sandbox_outcome(&digits).map(str::to_owned),
            created_at: now_ms(),
        };
        method_id = Some(m.id.clone());
        state.db.run(move |c| payments::save_method(c, &m)).await?;
    }
    Ok(HttpResponse::Ok().json(page_answer(&charged, method_id)))
}

fn page_answer(c: &payments::Charge, method: Option<String>) -> serde_json::Value {
    json!({"chargeId": c.id, "status": c.status, "message": c.failure, "paymentMethodId": method})
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
    let (provider, _) = provider_for_page(&state, &q.location_id, &q.publishable_key).await?;
    let id = path.into_inner();
    highlevel_client::check_id("charge id", &id).map_err(ApiError::InvalidRequest)?;
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
        provider_for_page(&state, &input.location_id, &input.publishable_key).await?;
    if provider.gateway != "paytr" {
        return Err(ApiError::Validation(
            "this location's gateway is not PayTR".into(),
        ));
    }
    if !input.email.contains('@') || input.email.len() > 200 {
        return Err(ApiError::Validation(
            "a customer `email` is required".into(),
        ));
    }
    let gateway = super::paytr_for(&state, &provider, live)?;
    let rec = recorded(
        &state,
        &provider,
        live,
        &input.transaction_id,
        input.order_id.as_deref(),
    )
    .await?;
    check_page_amount(input.amount, &input.currency, &rec)?;
    if !super::paytr::CURRENCIES.contains(&rec.cur.code()) {
        return Err(ApiError::Validation(format!(
            "PayTR takes {} only; this transaction is in {}",
            super::paytr::CURRENCIES.join(", "),
            rec.cur.code()
        )));
    }
    let new = new_charge(
        &provider,
        live,
        &input.transaction_id,
        rec.minor,
        rec.cur.code().to_owned(),
    );
    let (charge, inserted) = state
        .db
        .run(move |c| payments::insert_charge_once(c, &new))
        .await?;
    if charge.status != "pending" {
        return Ok(HttpResponse::Ok().json(page_answer(&charge, None)));
    }
    let oid = super::paytr::merchant_oid(&charge.id);
    if inserted {
        let (id, o) = (charge.id.clone(), oid.clone());
        state
            .db
            .run(move |c| payments::set_gateway_ref(c, &id, &o))
            .await?;
    }
    let ip = req
        .connection_info()
        .realip_remote_addr()
        .and_then(|a| {
            a.parse::<std::net::SocketAddr>()
                .map(|s| s.ip().to_string())
                .ok()
                .or_else(|| Some(a.to_owned()))
        })
        .unwrap_or_else(|| "127.0.0.1".into());
    let back = state.settings.public_base_url.clone().unwrap_or_default();
    let url = gateway
        .checkout_url(&super::paytr::Checkout {
            charge: &charge,
            user_ip: &ip,
            email: &input.email,
            product_name: input.product_name.as_deref().unwrap_or("Order"),
            ok_url: &format!("{back}/payments/page?result=ok"),
            fail_url: &format!("{back}/payments/page?result=fail"),
        })
        .await
        .map_err(|e| ApiError::Validation(format!("PayTR: {e}")))?;
    tracing::info!(merchant_oid = %oid, "PayTR checkout opened");
    Ok(HttpResponse::Ok()
        .json(json!({"chargeId": charge.id, "status": charge.status, "checkoutUrl": url})))
}
