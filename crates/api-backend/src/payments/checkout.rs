//! What the payment page asks for, without its HTTP: a card the customer entered charged through the sandbox
//! (and kept on file when asked), or PayTR's own checkout opened; in both, the amount is HighLevel's record of
//! the transaction, never the page's figure.

use super::charges::{new_charge, run_charge};
use super::gateway::{Card, Gateway, Sandbox};
use super::record::{check_page_amount, recorded};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::now_ms;
use crate::store::payments::{self, Charge, Method};
use crate::store::providers::ProviderRow;

/// A card payment from the page.
pub struct CardCheckout {
    pub transaction_id: String,
    pub order_id: Option<String>,
    /// What the customer was shown (decimal major units); it must be HighLevel's.
    pub amount: f64,
    pub currency: String,
    pub contact_id: Option<String>,
    pub save_card: bool,
    pub card: Card,
}

/// Charges the card (sandbox gateway) for HighLevel's amount; answers the charge and, when the card was kept
/// on file, its payment method id (brand, last four and expiry are kept; never the number).
pub async fn charge_card(
    state: &AppState,
    provider: &ProviderRow,
    live: bool,
    c: CardCheckout,
) -> Result<(Charge, Option<String>), ApiError> {
    let card = c.card;
    let (exp_month, exp_year) = (card.exp_month, card.exp_year);
    let now = chrono::Utc::now();
    let digits = card
        .validate(
            chrono::Datelike::year(&now) as u32,
            chrono::Datelike::month(&now),
        )
        .map_err(|e| ApiError::Validation(e.to_string()))?;
    let rec = recorded(
        state,
        provider,
        live,
        &c.transaction_id,
        c.order_id.as_deref(),
    )
    .await?;
    check_page_amount(c.amount, &c.currency, &rec)?;
    let mut new = new_charge(
        provider,
        live,
        &c.transaction_id,
        rec.minor,
        rec.cur.code().to_owned(),
    );
    new.contact_id = c.contact_id.clone();
    let snapshot = new.clone();
    let charged = run_charge(state, new, true, async move {
        Sandbox.charge_card(&card, &snapshot).await
    })
    .await?;
    // Card on file: brand, last four and expiry, and what the sandbox will do with it; never the number.
    let mut method_id = None;
    if let (true, Some(contact), false) = (
        c.save_card,
        c.contact_id,
        charged.status == payments::ChargeStatus::Failed,
    ) {
        let m = method_of(provider, live, &contact, &digits, exp_month, exp_year);
        let id = m.id.clone();
        // The payment stands either way; past the bound the card is just not kept.
        if state.db.run(move |x| payments::save_method(x, &m)).await? {
            method_id = Some(id);
        }
    }
    Ok((charged, method_id))
}

/// Whether the provider's gateway can keep a card for later off-session charges (card on file): the sandbox
/// can; PayTR only through its Direct API and card storage, which need the merchant's Direct API, Non3D and
/// recurring permissions (the provider's `paytr.directApi`). Without them a PayTR provider takes one-time
/// payments only.
pub fn keeps_cards(provider: &ProviderRow) -> bool {
    gateway_keeps_cards(provider.gateway, provider.paytr_direct_api)
}

/// [`keeps_cards`] by the gateway and its PayTR setting; it also says whether subscriptions can be renewed
/// here.
pub fn gateway_keeps_cards(
    gateway: crate::store::providers::Gateway,
    paytr_direct_api: bool,
) -> bool {
    match gateway {
        crate::store::providers::Gateway::Sandbox => true,
        crate::store::providers::Gateway::Paytr => paytr_direct_api,
    }
}

/// Card on file refused, with a clear problem, where the location's gateway cannot keep cards.
pub fn require_card_on_file(provider: &ProviderRow) -> Result<(), ApiError> {
    if keeps_cards(provider) {
        return Ok(());
    }
    Err(ApiError::CardOnFileUnsupported(format!(
        "location `{}` takes one-time payments through PayTR's iFrame only: cards on file and off-session \
         charges need PayTR's Direct API, Non3D and recurring permissions (`paytr.directApi`)",
        provider.location_id
    )))
}

/// A saved card: brand, last four, expiry, and (sandbox) what charging it will do. Never the number.
fn method_of(
    provider: &ProviderRow,
    live: bool,
    contact: &str,
    digits: &str,
    exp_month: u32,
    exp_year: u32,
) -> Method {
    Method {
        id: format!("pm_{:032x}", rand::random::<u128>()),
        location_id: provider.location_id.clone(),
        live_mode: live,
        contact_id: contact.to_owned(),
        brand: match digits.chars().next() {
            Some('4') => "Visa",
            Some('5') => "Mastercard",
            Some('3') => "American Express",
            _ => "Card",
        }
        .into(),
        last4: digits[digits.len().saturating_sub(4)..].to_owned(),
        exp_month: exp_month as i32,
        exp_year: exp_year as i32,
        sandbox_outcome: super::gateway::sandbox_outcome(digits).map(str::to_owned),
        created_at: now_ms(),
        gateway_ref: None,
    }
}

/// Saves a card for the contact without charging it (HighLevel's setup mode); answers its payment method id.
pub async fn save_card(
    state: &AppState,
    provider: &ProviderRow,
    live: bool,
    contact: &str,
    card: Card,
) -> Result<String, ApiError> {
    require_card_on_file(provider)?;
    if provider.gateway != crate::store::providers::Gateway::Sandbox {
        return Err(ApiError::Validation(format!(
            "the `{}` gateway takes the card on its own: the page posts it straight to the gateway",
            provider.gateway
        )));
    }
    if contact.is_empty() || contact.len() > 200 {
        return Err(ApiError::Validation("`contactId` is required".into()));
    }
    let now = chrono::Utc::now();
    let digits = card
        .validate(
            chrono::Datelike::year(&now) as u32,
            chrono::Datelike::month(&now),
        )
        .map_err(|e| ApiError::Validation(e.to_string()))?;
    let m = method_of(
        provider,
        live,
        contact,
        &digits,
        card.exp_month,
        card.exp_year,
    );
    let id = m.id.clone();
    if !state.db.run(move |x| payments::save_method(x, &m)).await? {
        return Err(ApiError::Validation(format!(
            "this contact already keeps {} cards on file at this location; remove one first",
            payments::MAX_METHODS_PER_CONTACT
        )));
    }
    tracing::info!(location = %provider.location_id, method = %id, "card saved on file");
    Ok(id)
}

/// A payment through PayTR's own card page.
pub struct PaytrCheckout {
    pub transaction_id: String,
    pub order_id: Option<String>,
    pub amount: f64,
    pub currency: String,
    pub email: String,
    pub product_name: Option<String>,
    /// The customer's address, as PayTR wants it.
    pub user_ip: String,
}

pub enum Opened {
    /// The transaction was charged before (a repeat): its charge as it stands.
    Settled(Charge),
    /// PayTR's card page for the charge.
    Checkout { charge: Charge, url: String },
}

/// Records the charge (once per transactionId, HighLevel's amount) and asks PayTR for its card page; PayTR's
/// callback settles it.
pub async fn open_paytr(
    state: &AppState,
    provider: &ProviderRow,
    live: bool,
    c: PaytrCheckout,
) -> Result<Opened, ApiError> {
    let gateway = super::paytr_for(state, provider, live)?;
    let rec = recorded(
        state,
        provider,
        live,
        &c.transaction_id,
        c.order_id.as_deref(),
    )
    .await?;
    check_page_amount(c.amount, &c.currency, &rec)?;
    if !super::paytr::CURRENCIES.contains(&rec.cur.code()) {
        return Err(ApiError::Validation(format!(
            "PayTR takes {} only; this transaction is in {}",
            super::paytr::CURRENCIES.join(", "),
            rec.cur.code()
        )));
    }
    let new = new_charge(
        provider,
        live,
        &c.transaction_id,
        rec.minor,
        rec.cur.code().to_owned(),
    );
    let (charge, inserted) = state
        .db
        .run(move |c| payments::insert_charge_once(c, &new))
        .await?;
    if charge.status != payments::ChargeStatus::Pending {
        return Ok(Opened::Settled(charge));
    }
    let oid = super::paytr::merchant_oid(&charge.id);
    if inserted {
        let (id, o) = (charge.id.clone(), oid.clone());
        state
            .db
            .run(move |c| payments::set_gateway_ref(c, &id, &o))
            .await?;
    }
    let back = state.settings.public_base_url.clone().unwrap_or_default();
    let customer = super::record::customer(state, provider, rec.contact_id.as_deref()).await;
    let url = gateway
        .checkout_url(&super::paytr::Checkout {
            charge: &charge,
            user_ip: &c.user_ip,
            email: &c.email,
            product_name: c.product_name.as_deref().unwrap_or("Order"),
            customer: &customer,
            ok_url: &format!("{back}/payments/page?result=ok"),
            fail_url: &format!("{back}/payments/page?result=fail"),
        })
        .await
        .map_err(|e| ApiError::Validation(format!("PayTR: {e}")))?;
    tracing::info!(merchant_oid = %oid, "PayTR checkout opened");
    Ok(Opened::Checkout { charge, url })
}
