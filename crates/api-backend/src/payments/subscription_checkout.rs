//! A subscription bought on the payment page: HighLevel's `payment_initiate_props` with `mode: "subscription"`
//! carries HighLevel's `subscriptionId` (and `productDetails{productId, priceId}`), and after the page's
//! success HighLevel calls `verify` with that `subscriptionId`. So the page's checkout sets the subscription
//! up here: the card is kept on file (the renewals charge it), the subscription is created on HighLevel's
//! terms and the first period charged (`subscriptions::create_subscription`, the code HighLevel's own
//! `create_subscription` call runs, so a later call with the same `subscriptionId` answers this
//! subscription).
//!
//! Nothing about the terms comes from the browser. The browser only names HighLevel's subscription; its
//! record (`GET /payments/subscriptions/{id}`) gives the contact, currency, mode, the order it was bought
//! in and the recurring product and price (`recurringProduct`); the price's record (Products API) gives the
//! interval, trial, cycles and the renewal amount; the first amount is HighLevel's record of the
//! transaction, which must pay that same order. What the browser also sends (`productId`, `priceId`,
//! `contactId`, the amount) is only checked against those records: a mismatch is a 4xx problem and
//! nothing is charged. A transaction already charged, or bound to another subscription, pays no first
//! period (409 `transaction_already_used`).

use super::checkout;
use super::gateway::Card;
use super::record::{check_page_amount, recorded, Recorded};
use super::requests::CreateSubscription;
use crate::bridge::Tokens;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::providers::{Gateway, ProviderRow};
use highlevel_client::resources::payments::SubscriptionRecord;
use highlevel_client::resources::prices::{Price, PriceType};
use highlevel_client::HlError;
use serde_json::{json, Value};
use shared_types::check_id;

/// A subscription checkout from the page: what the page's props named.
pub struct SubscriptionCheckout {
    pub transaction_id: String,
    pub order_id: Option<String>,
    /// HighLevel's id of the subscription being bought: its record holds the terms.
    pub subscription_id: String,
    /// What the page's props named; each must be HighLevel's record's when given.
    pub product_id: Option<String>,
    pub price_id: Option<String>,
    /// What the customer was shown (decimal major units); it must be HighLevel's.
    pub amount: f64,
    pub currency: String,
    /// The page's contact; it must be the one HighLevel recorded for the subscription when given.
    pub contact_id: Option<String>,
}

/// HighLevel's terms of a subscription checkout, read from its records.
pub(crate) struct Terms {
    pub contact: String,
    product_id: String,
    price_id: String,
    price: Price,
}

/// A subscription checkout that passed every check against HighLevel's records.
pub(crate) struct Checked {
    pub rec: Recorded,
    pub terms: Terms,
    /// This subscription, when a repeat of this very checkout created it already.
    pub existing: Option<crate::store::subscriptions::Subscription>,
}

impl Checked {
    /// `create_subscription`'s request on these terms, paying the first period with HighLevel's amount for
    /// the transaction from the saved card `method`.
    pub fn request(&self, c: &SubscriptionCheckout, method: &str) -> Result<Value, ApiError> {
        let request = json!({
            "subscriptionId": c.subscription_id,
            "transactionId": c.transaction_id,
            "paymentMethodId": method,
            "contactId": self.terms.contact,
            "amount": super::money::major_of(self.rec.minor, self.rec.cur.code()),
            "recurringAmount": self.terms.price.amount,
            "currency": self.rec.cur.code(),
            "productDetails": [{"productId": self.terms.product_id, "priceId": self.terms.price_id, "prices": [self.terms.price]}],
        });
        // Refused here when the price is no subscription's.
        parse_request(&request, &self.terms.price_id)?;
        Ok(request)
    }
}

/// `create_subscription`'s request from its JSON.
pub(crate) fn parse_request(
    request: &Value,
    price_id: &str,
) -> Result<CreateSubscription, ApiError> {
    serde_json::from_value(request.clone()).map_err(|e| {
        ApiError::Validation(format!(
            "HighLevel's price `{price_id}` is not a subscription's: {e}"
        ))
    })
}

/// Whether the page can take a subscription for this provider: it needs a card kept on file that the
/// renewals can charge without the customer. The sandbox can, and PayTR where the merchant holds its Direct
/// API, Non3D and recurring permissions (`paytr.directApi`: the first period is a Direct API payment that
/// stores the card, see `paytr_subscriptions`); PayTR's iFrame checkout keeps no card.
pub fn page_takes_subscriptions(provider: &ProviderRow) -> bool {
    matches!(provider.gateway, Gateway::Sandbox | Gateway::Paytr) && checkout::keeps_cards(provider)
}

fn takes_subscriptions(provider: &ProviderRow) -> Result<(), ApiError> {
    if page_takes_subscriptions(provider) {
        return Ok(());
    }
    Err(ApiError::Validation(format!(
        "subscriptions are not available with the `{}` gateway of this location: it keeps no card to renew from",
        provider.gateway
    )))
}

/// Every check of a subscription checkout against HighLevel's records, before anything is charged: the
/// gateway can renew from a saved card, the ids are well formed, the amount is HighLevel's for the
/// transaction, the terms are HighLevel's subscription's and price's, and the transaction pays no other
/// period or subscription.
pub(crate) async fn check(
    state: &AppState,
    provider: &ProviderRow,
    live: bool,
    c: &SubscriptionCheckout,
) -> Result<Checked, ApiError> {
    takes_subscriptions(provider)?;
    check_id("subscriptionId", &c.subscription_id).map_err(ApiError::Validation)?;
    for (name, v) in [("productId", &c.product_id), ("priceId", &c.price_id)] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            check_id(name, v).map_err(ApiError::Validation)?;
        }
    }
    let rec = recorded(
        state,
        provider,
        live,
        &c.transaction_id,
        c.order_id.as_deref(),
    )
    .await?;
    check_page_amount(c.amount, &c.currency, &rec)?;
    let terms = highlevel_terms(state, provider, live, c, &rec).await?;
    let (location, ghl, txn) = (
        provider.location_id.clone(),
        c.subscription_id.clone(),
        c.transaction_id.clone(),
    );
    let (existing, bound, charged) = state
        .db
        .run(move |x| {
            Ok::<_, crate::db::DbError>((
                crate::store::subscriptions::find(x, &location, &ghl)?,
                crate::store::subscriptions::by_transaction(x, &location, &txn)?,
                crate::store::payments::charge_by_transaction(x, &location, &txn)?,
            ))
        })
        .await?;
    refuse_reuse(c, existing.as_ref(), bound.as_ref(), charged.as_ref())?;
    Ok(Checked {
        rec,
        terms,
        existing,
    })
}

/// Saves the card, creates the subscription on HighLevel's terms and charges its first period (unless a
/// trial or a later start defers it). Answers what `create_subscription` answers. The sandbox only: PayTR
/// takes the card in the customer's browser (`paytr_subscriptions`).
pub async fn subscribe(
    state: &AppState,
    provider: &ProviderRow,
    live: bool,
    c: SubscriptionCheckout,
    card: Card,
) -> Result<Value, ApiError> {
    takes_subscriptions(provider)?;
    if provider.gateway != Gateway::Sandbox {
        return Err(ApiError::Validation(format!(
            "the `{}` gateway takes cards in its own checkout, not here",
            provider.gateway
        )));
    }
    let checked = check(state, provider, live, &c).await?;
    let method = match &checked.existing {
        // A repeat (the page reloaded, the customer pressed twice): the subscription stands, on its own card;
        // no second card is kept and `create_subscription` answers the first.
        Some(sub) if sub.live_mode == live => sub.payment_method_id.clone(),
        _ => checkout::save_card(state, provider, live, &checked.terms.contact, card).await?,
    };
    let request = parse_request(&checked.request(&c, &method)?, &checked.terms.price_id)?;
    let mut answer =
        super::subscriptions::create_subscription(state, provider, live, &request).await?;
    answer["paymentMethodId"] = json!(method);
    Ok(answer)
}

/// A transaction pays one first period, once: refused when it was charged before (a one-time payment, or
/// another subscription's period), or when another subscription was started with it, or when this
/// subscription was started with another transaction. A repeat of this very checkout (same subscription,
/// same transaction) goes on: `create_subscription` answers the first.
fn refuse_reuse(
    c: &SubscriptionCheckout,
    existing: Option<&crate::store::subscriptions::Subscription>,
    bound: Option<&crate::store::subscriptions::Subscription>,
    charged: Option<&crate::store::payments::Charge>,
) -> Result<(), ApiError> {
    if let Some(other) = bound {
        if other.ghl_subscription_id.as_deref() != Some(c.subscription_id.as_str()) {
            return Err(ApiError::TransactionUsed(format!(
                "transaction `{}` already started another subscription: it cannot pay the first period of subscription `{}`",
                c.transaction_id, c.subscription_id
            )));
        }
    }
    if let Some(sub) = existing {
        if sub.transaction_id != c.transaction_id {
            return Err(ApiError::TransactionUsed(format!(
                "subscription `{}` was started with another transaction; transaction `{}` pays nothing here",
                c.subscription_id, c.transaction_id
            )));
        }
    }
    if let Some(ch) = charged {
        let ours = existing.is_some_and(|s| ch.subscription_id.as_deref() == Some(s.id.as_str()));
        if !ours {
            return Err(ApiError::TransactionUsed(format!(
                "transaction `{}` was already charged ({}){}: it cannot pay the first period of subscription `{}`",
                c.transaction_id,
                ch.status,
                if ch.subscription_id.is_some() {
                    ", for another subscription"
                } else {
                    ""
                },
                c.subscription_id
            )));
        }
    }
    Ok(())
}

/// HighLevel's record of the subscription (`GET /payments/subscriptions/{id}`), checked against the
/// transaction's record and against what the browser sent, and the recurring price it names.
async fn highlevel_terms(
    state: &AppState,
    provider: &ProviderRow,
    live: bool,
    c: &SubscriptionCheckout,
    rec: &Recorded,
) -> Result<Terms, ApiError> {
    let sub = highlevel_subscription(state, provider, &c.subscription_id).await?;
    let id = &c.subscription_id;
    let refuse = |why: String| {
        Err(ApiError::Validation(format!(
            "HighLevel's subscription `{id}` {why}: nothing was charged"
        )))
    };
    if sub.live_mode != Some(live) {
        return Err(ApiError::AmountMismatch(format!(
            "HighLevel recorded subscription `{id}` in {} mode, but the page holds the {} key: nothing was charged",
            match sub.live_mode {
                Some(true) => "live",
                Some(false) => "test",
                None => "no",
            },
            if live { "live" } else { "test" }
        )));
    }
    let currency = sub.currency.clone().unwrap_or_default();
    if !currency.eq_ignore_ascii_case(rec.cur.code()) {
        return Err(ApiError::AmountMismatch(format!(
            "HighLevel recorded subscription `{id}` in `{currency}`, the transaction in {}: nothing was charged",
            rec.cur.code()
        )));
    }
    // The transaction must be the one HighLevel made for this subscription: it pays the order the
    // subscription was bought in (its `entityId`), or names the subscription itself as its entity.
    let paid_for = rec.order_id.as_deref();
    let bound = paid_for.is_some_and(|e| sub.entity_id.as_deref() == Some(e) || e == sub.id);
    if !bound {
        return refuse(format!(
            "was bought in {}, but transaction `{}` pays {}",
            sub.entity_id
                .as_deref()
                .map_or("no order".to_owned(), |o| format!("order `{o}`")),
            c.transaction_id,
            paid_for.map_or("no order".to_owned(), |e| format!("`{e}`"))
        ));
    }
    let Some(contact) = sub.contact_id.clone().filter(|c| !c.is_empty()) else {
        return refuse("names no contact (its card is kept for the renewals)".into());
    };
    if rec.contact_id.as_deref().is_some_and(|r| r != contact) {
        return refuse(format!(
            "is contact `{contact}`'s, but the transaction is another contact's"
        ));
    }
    if c.contact_id
        .as_deref()
        .is_some_and(|p| !p.is_empty() && p != contact)
    {
        return refuse(format!(
            "is contact `{contact}`'s, not the page's `contactId`"
        ));
    }
    let Some((product_id, price_id)) = sub.recurring_ids() else {
        return refuse("names no recurring product and price (`recurringProduct`)".into());
    };
    for (name, posted, recorded) in [
        ("productId", &c.product_id, &product_id),
        ("priceId", &c.price_id, &price_id),
    ] {
        if let Some(p) = posted.as_deref().filter(|p| !p.is_empty() && p != recorded) {
            return refuse(format!(
                "is for {name} `{recorded}`, but the page named `{p}`"
            ));
        }
    }
    let price = recurring_price(state, provider, &product_id, &price_id).await?;
    if !price.currency.eq_ignore_ascii_case(rec.cur.code()) {
        return Err(ApiError::Validation(format!(
            "HighLevel's price `{price_id}` is in {}, the transaction in {}",
            price.currency,
            rec.cur.code()
        )));
    }
    Ok(Terms {
        contact,
        product_id,
        price_id,
        price,
    })
}

/// HighLevel's record of the subscription at the provider's location.
async fn highlevel_subscription(
    state: &AppState,
    provider: &ProviderRow,
    id: &str,
) -> Result<SubscriptionRecord, ApiError> {
    let location = provider.location_id.as_str();
    let resolved = state.bridge.resolve(location, None, None).await?;
    let tokens = Tokens {
        bridge: state.bridge.clone(),
        installation: resolved.installation_id,
        location: Some(location.to_owned()),
    };
    let unknown = || {
        ApiError::TransactionUnknown(format!(
            "HighLevel has no subscription `{id}` for location `{location}`: nothing was charged"
        ))
    };
    let found = match state.hl.subscription(&tokens, location, id).await {
        Ok(s) => s,
        Err(HlError::Refused {
            status: 400 | 404, ..
        }) => return Err(unknown()),
        Err(e) => return Err(e.into()),
    };
    // Fail closed: a record that does not say it is this location's pays nothing.
    if found.alt_id.as_deref() != Some(location) {
        return Err(unknown());
    }
    Ok(found)
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
