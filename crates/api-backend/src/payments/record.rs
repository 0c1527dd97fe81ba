//! What is charged comes from HighLevel, not from the browser. The payment page is handed the amount by its
//! parent window, which anyone can imitate; before a card is charged the amount and currency are read from
//! HighLevel's own record of the transaction (`GET /payments/transactions/{id}`, or of its order,
//! `GET /payments/orders/{id}`) with the location's token, and the page's figure must match it.

use super::money::{self, Cur};
use crate::bridge::Tokens;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::providers::ProviderRow;
use highlevel_client::HlError;
use shared_types::check_id;

/// The amount HighLevel recorded for a checkout, in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub minor: i64,
    pub cur: Cur,
    /// The contact HighLevel recorded as paying.
    pub contact_id: Option<String>,
    /// The order HighLevel recorded the payment for: the transaction's `entityId` (or the order itself, when
    /// the order stood for the transaction).
    pub order_id: Option<String>,
}

/// Only a gateway that can take real money serves live mode: the sandbox settles test payments only.
pub fn gateway_serves(provider: &ProviderRow, live: bool) -> Result<(), ApiError> {
    if live && provider.gateway == crate::store::providers::Gateway::Sandbox {
        return Err(ApiError::GatewayModeUnsupported(format!(
            "location `{}` uses the sandbox gateway, which takes test payments only; this is the live key",
            provider.location_id
        )));
    }
    Ok(())
}

/// HighLevel's record of `transaction_id` (or, when HighLevel does not know the transaction, of `order_id`)
/// at the provider's location, in the key's mode.
pub async fn recorded(
    state: &AppState,
    provider: &ProviderRow,
    live: bool,
    transaction_id: &str,
    order_id: Option<&str>,
) -> Result<Recorded, ApiError> {
    let location = provider.location_id.as_str();
    check_id("transactionId", transaction_id).map_err(ApiError::Validation)?;
    if let Some(o) = order_id {
        check_id("orderId", o).map_err(ApiError::Validation)?;
    }
    let resolved = state.bridge.resolve(location, None, None).await?;
    let tokens = Tokens {
        bridge: state.bridge.clone(),
        installation: resolved.installation_id,
        location: Some(location.to_owned()),
    };
    let unknown = || {
        ApiError::TransactionUnknown(format!(
            "HighLevel has no transaction `{transaction_id}`{} for location `{location}`",
            order_id
                .map(|o| format!(" (nor order `{o}`)"))
                .unwrap_or_default()
        ))
    };
    let absent = |e: &HlError| {
        matches!(
            e,
            HlError::Refused {
                status: 400 | 404,
                ..
            }
        )
    };
    let (record, of_order) = match state
        .hl
        .transaction(&tokens, location, transaction_id)
        .await
    {
        Ok(r) => (r, false),
        // HighLevel's order stands for the payment only when the page had no transaction of its own and
        // names the order as the transaction: the charge is then bound to that order's id. Another order's
        // amount never pays transaction `T`.
        Err(e) if absent(&e) => match order_id.filter(|o| *o == transaction_id) {
            Some(o) => match state.hl.order(&tokens, location, o).await {
                Ok(r) => (r, true),
                Err(e) if absent(&e) => return Err(unknown()),
                Err(e) => return Err(e.into()),
            },
            None => return Err(unknown()),
        },
        Err(e) => return Err(e.into()),
    };
    // Fail closed: a record that does not say it is this location's, or in which mode, pays nothing.
    if record.alt_id.as_deref() != Some(location) {
        return Err(unknown());
    }
    if record.live_mode != Some(live) {
        return Err(ApiError::AmountMismatch(format!(
            "HighLevel recorded transaction `{transaction_id}` in {} mode, but the page holds the {} key",
            match record.live_mode {
                Some(true) => "live",
                Some(false) => "test",
                None => "no",
            },
            if live { "live" } else { "test" }
        )));
    }
    let cur = money::currency(&record.currency)?;
    let minor = money::to_minor(record.amount, cur)?;
    let order_id = if of_order {
        Some(record.id.clone())
    } else {
        record.entity_id.clone()
    };
    Ok(Recorded {
        minor,
        cur,
        contact_id: record.contact_id,
        order_id,
    })
}

/// The customer as PayTR's token request wants them (`user_name`, `user_address`, `user_phone`), from
/// HighLevel's record of the contact that pays, never from the browser. What HighLevel does not have (or a
/// contact that cannot be read: the app lacks `contacts.readonly`) is a placeholder, as before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub name: String,
    pub address: String,
    pub phone: String,
    /// HighLevel's email of the contact, if it has one (PayTR's Direct API wants an `email`).
    pub email: Option<String>,
}

impl Default for Customer {
    fn default() -> Customer {
        Customer {
            name: "HighLevel customer".into(),
            address: "-".into(),
            phone: "-".into(),
            email: None,
        }
    }
}

impl Customer {
    /// The email PayTR is given: HighLevel's, else a placeholder in a reserved domain.
    pub fn email_or_placeholder(&self) -> String {
        self.email
            .clone()
            .unwrap_or_else(|| "customer@example.invalid".into())
    }
}

fn clip(s: String, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// HighLevel's contact `contact_id` of the provider's location, as a PayTR customer.
pub async fn customer(
    state: &AppState,
    provider: &ProviderRow,
    contact_id: Option<&str>,
) -> Customer {
    let Some(id) = contact_id.filter(|c| check_id("contactId", c).is_ok()) else {
        return Customer::default();
    };
    let location = provider.location_id.as_str();
    let read = async {
        let resolved = state.bridge.resolve(location, None, None).await?;
        let tokens = Tokens {
            bridge: state.bridge.clone(),
            installation: resolved.installation_id,
            location: Some(location.to_owned()),
        };
        Ok::<_, ApiError>(state.hl.contact(&tokens, location, id).await?)
    };
    match read.await {
        Ok(c) => {
            let fallback = Customer::default();
            Customer {
                name: clip(c.full_name().unwrap_or(fallback.name), 60),
                address: clip(c.address_line().unwrap_or(fallback.address), 400),
                phone: clip(
                    c.phone
                        .filter(|p| !p.trim().is_empty())
                        .unwrap_or(fallback.phone),
                    20,
                ),
                email: c
                    .email
                    .filter(|e| e.contains('@') && e.len() <= 100)
                    .map(|e| clip(e, 100)),
            }
        }
        Err(e) => {
            tracing::warn!(%location, error = %e, "the paying contact could not be read from HighLevel; PayTR gets placeholders");
            Customer::default()
        }
    }
}

/// The page's amount and currency (what the customer was shown) must be HighLevel's.
pub fn check_page_amount(
    posted_major: f64,
    posted_currency: &str,
    recorded: &Recorded,
) -> Result<(), ApiError> {
    let same_currency = posted_currency.eq_ignore_ascii_case(recorded.cur.code());
    let same_amount = same_currency
        && money::to_minor(posted_major, recorded.cur).is_ok_and(|m| m == recorded.minor);
    if !same_amount {
        return Err(ApiError::AmountMismatch(format!(
            "the page was given {posted_major} {}, but HighLevel recorded {} {} for this transaction: nothing was charged",
            posted_currency.chars().take(3).collect::<String>().to_ascii_uppercase(),
            money::major_text(recorded.minor, recorded.cur),
            recorded.cur.code()
        )));
    }
    Ok(())
}
