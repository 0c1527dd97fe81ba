//! A subscription bought on the payment page: HighLevel's `payment_initiate_props` with `mode: "subscription"`
//! carries HighLevel's `subscriptionId` and the recurring product (`productDetails{productId, priceId}`), and
//! after the page's success HighLevel calls `verify` with that `subscriptionId`. So the page's checkout sets the
//! subscription up here: the card is kept on file (the renewals charge it), the subscription is created on
//! HighLevel's terms and the first period charged (`subscriptions::create_subscription`, the code
//! HighLevel's own `create_subscription` call runs, so a later call with the same `subscriptionId` answers
//! this subscription). Nothing about the terms comes from the browser: the first amount is HighLevel's record
//! of the transaction, the schedule and the renewal amount are HighLevel's record of the price.

use super::checkout;
use super::gateway::Card;
use super::record::{check_page_amount, recorded};
use super::requests::CreateSubscription;
use crate::bridge::Tokens;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::providers::{Gateway, ProviderRow};
use highlevel_client::resources::prices::{Price, PriceType};
use highlevel_client::HlError;
use serde_json::{json, Value};
use shared_types::check_id;

/// A subscription checkout from the page.
pub struct SubscriptionCheckout {
    pub transaction_id: String,
    pub order_id: Option<String>,
    /// HighLevel's id of the subscription being bought.
    pub subscription_id: String,
    pub product_id: String,
    pub price_id: String,
    /// What the customer was shown (decimal major units); it must be HighLevel's.
    pub amount: f64,
    pub currency: String,
    /// The page's contact; HighLevel's record of the transaction wins when it names one.
    pub contact_id: Option<String>,
    pub card: Card,
}

/// Whether the page can take a subscription for this provider: it needs a card kept on file that the
/// renewals can charge without the customer. The sandbox can; PayTR's iFrame checkout keeps no card.
pub fn page_takes_subscriptions(provider: &ProviderRow) -> bool {
    provider.gateway == Gateway::Sandbox && checkout::keeps_cards(provider)
}

/// Saves the card, creates the subscription on HighLevel's terms and charges its first period (unless a
/// trial or a later start defers it). Answers what `create_subscription` answers.
pub async fn subscribe(
    state: &AppState,
    provider: &ProviderRow,
    live: bool,
    c: SubscriptionCheckout,
) -> Result<Value, ApiError> {
    if !page_takes_subscriptions(provider) {
        return Err(ApiError::Validation(format!(
            "subscriptions are not available with the `{}` gateway of this location: it keeps no card to renew from",
            provider.gateway
        )));
    }
    check_id("subscriptionId", &c.subscription_id).map_err(ApiError::Validation)?;
    check_id("productId", &c.product_id).map_err(ApiError::Validation)?;
    check_id("priceId", &c.price_id).map_err(ApiError::Validation)?;
    let rec = recorded(
        state,
        provider,
        live,
        &c.transaction_id,
        c.order_id.as_deref(),
    )
    .await?;
    check_page_amount(c.amount, &c.currency, &rec)?;
    let price = recurring_price(state, provider, &c.product_id, &c.price_id).await?;
    if !price.currency.eq_ignore_ascii_case(rec.cur.code()) {
        return Err(ApiError::Validation(format!(
            "HighLevel's price `{}` is in {}, the transaction in {}",
            c.price_id,
            price.currency,
            rec.cur.code()
        )));
    }
    let contact = rec.contact_id.clone().or(c.contact_id).ok_or_else(|| {
        ApiError::Validation(
            "a subscription needs HighLevel's contact: its card is kept for the renewals".into(),
        )
    })?;
    let (location, ghl) = (provider.location_id.clone(), c.subscription_id.clone());
    let existing = state
        .db
        .run(move |x| crate::store::subscriptions::find(x, &location, &ghl))
        .await?;
    let method = match existing {
        // A repeat (the page reloaded, the customer pressed twice): the subscription stands, on its own card;
        // no second card is kept and `create_subscription` answers the first.
        Some(sub) if sub.live_mode == live => sub.payment_method_id,
        _ => checkout::save_card(state, provider, live, &contact, c.card).await?,
    };
    let recurring_amount = price.amount;
    let request: CreateSubscription = serde_json::from_value(json!({
        "subscriptionId": c.subscription_id,
        "transactionId": c.transaction_id,
        "paymentMethodId": method,
        "contactId": contact,
        "amount": super::money::major_of(rec.minor, rec.cur.code()),
        "recurringAmount": recurring_amount,
        "currency": rec.cur.code(),
        "productDetails": [{"productId": c.product_id, "priceId": c.price_id, "prices": [price]}],
    }))
    .map_err(|e| {
        ApiError::Validation(format!(
            "HighLevel's price `{}` is not a subscription's: {e}",
            c.price_id
        ))
    })?;
    let mut answer =
        super::subscriptions::create_subscription(state, provider, live, &request).await?;
    answer["paymentMethodId"] = json!(method);
    Ok(answer)
}

/// HighLevel's record of the price (`GET /products/{productId}/price/{priceId}`), which must be recurring.
async fn recurring_price(
    state: &AppState,
    provider: &ProviderRow,
    product: &str,
    price: &str,
) -> Result<Price, ApiError> {
    let location = provider.location_id.as_str();
    let resolved = state.bridge.resolve(location, None, None).await?;
    let tokens = Tokens {
        bridge: state.bridge.clone(),
        installation: resolved.installation_id,
        location: Some(location.to_owned()),
    };
    let found = match state.hl.get_price(&tokens, location, product, price).await {
        Ok(p) => p,
        Err(HlError::Refused {
            status: 400 | 404, ..
        }) => {
            return Err(ApiError::Validation(format!(
                "HighLevel has no price `{price}` of product `{product}` for location `{location}`"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if found.kind != PriceType::Recurring || found.recurring.is_none() {
        return Err(ApiError::Validation(format!(
            "HighLevel's price `{price}` is not recurring: a subscription needs an interval"
        )));
    }
    Ok(found)
}
