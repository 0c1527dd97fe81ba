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
                ("subscriptionId", Some(&q.subscription_id)),
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

/// `create_subscription {locationId, contactId, paymentMethodId, subscriptionId, transactionId, startDate,
/// currency, amount, recurringAmount, productDetails[{…, prices[{…, recurring{interval, intervalCount},
/// trialPeriod, totalCycles}]}]}` (the custom payment provider guide). `subscriptionId` is HighLevel's.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSubscription {
    pub subscription_id: String,
    pub transaction_id: String,
    pub payment_method_id: String,
    pub contact_id: Option<String>,
    /// `YYYY-MM-DD`; today when absent.
    pub start_date: Option<String>,
    /// The first period's amount, decimal major units.
    pub amount: f64,
    /// Each later period's amount; `amount` when absent.
    pub recurring_amount: Option<f64>,
    pub currency: String,
    #[serde(default)]
    pub product_details: Vec<ProductDetail>,
    /// Also read at the top level, where some of HighLevel's payloads put them.
    pub trial_period: Option<f64>,
    pub total_cycles: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductDetail {
    #[serde(default)]
    pub prices: Vec<PriceDetail>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceDetail {
    pub recurring: Option<RecurringDetail>,
    /// Days.
    pub trial_period: Option<f64>,
    pub total_cycles: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecurringDetail {
    pub interval: String,
    pub interval_count: Option<f64>,
}

/// A subscription's schedule, read from the recurring price(s) of `productDetails`.
#[derive(Debug, Clone, PartialEq)]
pub struct Terms {
    pub interval: String,
    pub interval_count: i32,
    pub trial_days: i32,
    pub total_cycles: Option<i32>,
    /// Midnight UTC of `startDate`, epoch ms.
    pub start_at: Option<i64>,
}

fn whole(name: &str, v: Option<f64>, min: f64, max: f64) -> Result<Option<i32>, ApiError> {
    match v {
        None => Ok(None),
        Some(x) if x.fract() == 0.0 && (min..=max).contains(&x) => Ok(Some(x as i32)),
        Some(_) => Err(ApiError::Validation(format!(
            "`{name}` must be a whole number from {min} to {max}"
        ))),
    }
}

impl CreateSubscription {
    /// Every recurring price must bill on the same interval (one subscription renews once per period).
    pub fn terms(&self) -> Result<Terms, ApiError> {
        let prices: Vec<&PriceDetail> = self
            .product_details
            .iter()
            .flat_map(|p| p.prices.iter())
            .filter(|p| p.recurring.is_some())
            .collect();
        let Some(first) = prices.first() else {
            return Err(ApiError::Validation(
                "`productDetails[].prices[]` needs a price with `recurring {interval, intervalCount}`"
                    .into(),
            ));
        };
        let every = |p: &PriceDetail| {
            p.recurring
                .as_ref()
                .map(|r| (r.interval.clone(), r.interval_count.unwrap_or(1.0)))
        };
        if prices.iter().any(|p| every(p) != every(first)) {
            return Err(ApiError::Validation(
                "the recurring prices of one subscription must share `interval` and `intervalCount`"
                    .into(),
            ));
        }
        let (interval, count) = every(first).unwrap_or_default();
        if !["day", "week", "month", "year"].contains(&interval.as_str()) {
            return Err(ApiError::Validation(
                "`recurring.interval` must be day, week, month or year".into(),
            ));
        }
        let interval_count =
            whole("recurring.intervalCount", Some(count), 1.0, 365.0)?.unwrap_or(1);
        let trial_days = whole(
            "trialPeriod",
            first.trial_period.or(self.trial_period),
            0.0,
            730.0,
        )?
        .unwrap_or(0);
        let total_cycles = whole(
            "totalCycles",
            first.total_cycles.or(self.total_cycles),
            0.0,
            10_000.0,
        )?
        .filter(|n| *n > 0);
        let start_at = match self.start_date.as_deref().filter(|d| !d.is_empty()) {
            None => None,
            Some(d) => Some(
                chrono::NaiveDate::parse_from_str(d.get(..10).unwrap_or(d), "%Y-%m-%d")
                    .map_err(|_| ApiError::Validation("`startDate` must be YYYY-MM-DD".into()))?
                    .and_hms_opt(0, 0, 0)
                    .unwrap_or_default()
                    .and_utc()
                    .timestamp_millis(),
            ),
        };
        Ok(Terms {
            interval,
            interval_count,
            trial_days,
            total_cycles,
            start_at,
        })
    }
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
