//! What HighLevel sends to the queryUrl, typed: one variant per `type`, with HighLevel's field names (the
//! custom payment provider guide). Unknown fields are ignored (HighLevel adds some); missing or mistyped ones
//! are a 422 naming them.

use super::money::{self, Cur};
use crate::error::ApiError;
use serde::Deserialize;

/// The `type`s the queryUrl answers.
pub const TYPES: &[&str] = &[
    "verify",
    "list_payment_methods",
    "charge_payment",
    "create_subscription",
    "cancel_subscription",
    "refund",
];

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Query {
    Verify(Verify),
    ListPaymentMethods(ListPaymentMethods),
    ChargePayment(ChargePayment),
    CreateSubscription(CreateSubscription),
    CancelSubscription(CancelSubscription),
    Refund(Refund),
}

impl Query {
    pub fn kind(&self) -> &'static str {
        match self {
            Query::Verify(_) => "verify",
            Query::ListPaymentMethods(_) => "list_payment_methods",
            Query::ChargePayment(_) => "charge_payment",
            Query::CreateSubscription(_) => "create_subscription",
            Query::CancelSubscription(_) => "cancel_subscription",
            Query::Refund(_) => "refund",
        }
    }

    /// Whether it takes money (the gateway must serve the key's mode).
    pub fn charges(&self) -> bool {
        matches!(self, Query::ChargePayment(_) | Query::CreateSubscription(_))
    }

    /// Every text field within HighLevel's bounds (ids and descriptions of at most 200 characters).
    pub fn check(&self) -> Result<(), ApiError> {
        let all: Vec<(&str, Option<&str>)> = match self {
            Query::Verify(q) => vec![
                ("chargeId", q.charge_id.as_deref()),
                ("transactionId", q.transaction_id.as_deref()),
                ("subscriptionId", q.subscription_id.as_deref()),
            ],
            Query::ListPaymentMethods(q) => vec![("contactId", Some(&q.contact_id))],
            Query::ChargePayment(q) => vec![
                ("transactionId", Some(&q.transaction_id)),
                ("paymentMethodId", Some(&q.payment_method_id)),
                ("contactId", q.contact_id.as_deref()),
                ("chargeDescription", q.charge_description.as_deref()),
            ],
            Query::CreateSubscription(q) => vec![
                ("transactionId", Some(&q.transaction_id)),
                ("paymentMethodId", Some(&q.payment_method_id)),
                ("contactId", q.contact_id.as_deref()),
            ],
            Query::CancelSubscription(q) => vec![("subscriptionId", Some(&q.subscription_id))],
            Query::Refund(q) => vec![
                ("transactionId", Some(&q.transaction_id)),
                ("refundId", q.refund_id.as_deref()),
            ],
        };
        for (name, v) in all {
            if let Some(v) = v {
                if v.is_empty() || v.len() > 200 {
                    return Err(ApiError::Validation(format!(
                        "`{name}` must be 1-200 characters"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// `verify {transactionId, chargeId, subscriptionId}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verify {
    pub charge_id: Option<String>,
    pub transaction_id: Option<String>,
    pub subscription_id: Option<String>,
}

/// `list_payment_methods {locationId, contactId}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPaymentMethods {
    pub contact_id: String,
}

/// `charge_payment {paymentMethodId, contactId, transactionId, chargeDescription, amount, currency}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargePayment {
    pub payment_method_id: String,
    pub contact_id: Option<String>,
    pub transaction_id: String,
    pub charge_description: Option<String>,
    /// Decimal major units.
    pub amount: f64,
    pub currency: String,
}

/// `create_subscription {…, paymentMethodId, transactionId, amount, currency, interval, intervalCount}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSubscription {
    pub payment_method_id: String,
    pub contact_id: Option<String>,
    pub transaction_id: String,
    pub amount: f64,
    pub currency: String,
    pub interval: Option<String>,
    pub interval_count: Option<i64>,
}

/// `cancel_subscription {subscriptionId}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelSubscription {
    pub subscription_id: String,
}

/// `refund {amount, transactionId}`, and HighLevel's own refund id when a body carries one.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    pub transaction_id: String,
    pub amount: f64,
    #[serde(alias = "idempotencyKey", alias = "id")]
    pub refund_id: Option<String>,
}

/// An amount and currency as HighLevel sends them, in minor units.
pub fn money_of(amount: f64, currency: &str) -> Result<(i64, Cur), ApiError> {
    let cur = money::currency(currency)?;
    Ok((money::to_minor(amount, cur)?, cur))
}
