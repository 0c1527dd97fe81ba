//! Gateways behind one trait, chosen per location when the provider is registered. `sandbox` decides by test
//! card number, deterministically; it never stores a card number (only brand, last four and expiry).

use crate::store::payments::{Charge, Method};
use std::future::Future;

/// What a charge attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Declined(String),
    /// The customer (or the bank) must act first; the charge settles later.
    Pending,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the card is not usable: {0}")]
    InvalidCard(String),
    #[error("the gateway is unavailable: {0}")]
    Unavailable(String),
    #[error("the gateway refused: {0}")]
    Refused(String),
}

/// A card as the payment page hands it over; it lives only for the request.
pub struct Card {
    pub number: String,
    pub exp_month: u32,
    pub exp_year: u32,
    pub cvc: String,
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Card")
            .field("last4", &self.last4())
            .finish_non_exhaustive()
    }
}

impl Card {
    pub fn last4(&self) -> String {
        let digits: String = self.number.chars().filter(char::is_ascii_digit).collect();
        digits
            .chars()
            .skip(digits.len().saturating_sub(4))
            .collect()
    }

    /// Digits only, 12-19 of them, passing the Luhn check; expiry in the future; a 3-4 digit CVC.
    pub fn validate(&self, now_year: u32, now_month: u32) -> Result<String, GatewayError> {
        let digits: String = self
            .number
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        if !(12..=19).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(GatewayError::InvalidCard(
                "the card number must be 12-19 digits".into(),
            ));
        }
        let sum: u32 = digits
            .chars()
            .rev()
            .enumerate()
            .map(|(i, c)| {
                let d = c.to_digit(10).unwrap_or(0);
                if i % 2 == 1 {
                    let x = d * 2;
                    if x > 9 {
                        x - 9
                    } else {
                        x
                    }
                } else {
                    d
                }
            })
            .sum();
        if !sum.is_multiple_of(10) {
            return Err(GatewayError::InvalidCard(
                "the card number is not valid".into(),
            ));
        }
        if !(1..=12).contains(&self.exp_month)
            || (self.exp_year, self.exp_month) < (now_year, now_month)
        {
            return Err(GatewayError::InvalidCard("the card has expired".into()));
        }
        if !(3..=4).contains(&self.cvc.len()) || !self.cvc.chars().all(|c| c.is_ascii_digit()) {
            return Err(GatewayError::InvalidCard(
                "the security code must be 3 or 4 digits".into(),
            ));
        }
        Ok(digits)
    }
}

pub trait Gateway: Send + Sync {
    fn name(&self) -> &'static str;
    /// Charges a card the customer just entered.
    fn charge_card(
        &self,
        card: &Card,
        charge: &Charge,
    ) -> impl Future<Output = Result<Outcome, GatewayError>> + Send;
    /// Charges a saved card, off-session (HighLevel's `charge_payment`, subscription renewals).
    fn charge_saved(
        &self,
        method: &Method,
        charge: &Charge,
    ) -> impl Future<Output = Result<Outcome, GatewayError>> + Send;
    /// Refunds part or all of a charge. `reference` is our refund's id, unique per refund, for gateways that
    /// can report later whether a refund whose answer was lost happened. `Unavailable` means the outcome is
    /// unknown (never undo then); `Refused` means nothing was refunded.
    fn refund(
        &self,
        charge: &Charge,
        amount_minor: i64,
        reference: &str,
    ) -> impl Future<Output = Result<(), GatewayError>> + Send;
}

/// The sandbox's test cards.
pub const CARD_SUCCEEDS: &str = "4242424242424242";
pub const CARD_DECLINES: &str = "4000000000000002";
pub const CARD_WAITS: &str = "4000000000003220";

/// What the sandbox does with a card number: `success`, `decline` or `wait`.
pub fn sandbox_outcome(digits: &str) -> Option<&'static str> {
    match digits {
        CARD_SUCCEEDS => Some("success"),
        CARD_DECLINES => Some("decline"),
        CARD_WAITS => Some("wait"),
        _ => None,
    }
}

fn outcome_of(kind: &str) -> Outcome {
    match kind {
        "success" => Outcome::Succeeded,
        "wait" => Outcome::Pending,
        _ => Outcome::Declined("Your card was declined.".into()),
    }
}

pub struct Sandbox;

impl Gateway for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn charge_card(&self, card: &Card, _charge: &Charge) -> Result<Outcome, GatewayError> {
        let now = chrono::Utc::now();
        let digits = card.validate(
            chrono::Datelike::year(&now) as u32,
            chrono::Datelike::month(&now),
        )?;
        match sandbox_outcome(&digits) {
            Some(kind) => Ok(outcome_of(kind)),
            None => Err(GatewayError::InvalidCard(format!(
                "use a sandbox test card: {CARD_SUCCEEDS} succeeds, {CARD_DECLINES} declines, {CARD_WAITS} waits for the customer"
            ))),
        }
    }

    async fn charge_saved(
        &self,
        method: &Method,
        _charge: &Charge,
    ) -> Result<Outcome, GatewayError> {
        Ok(outcome_of(
            method.sandbox_outcome.as_deref().unwrap_or("decline"),
        ))
    }

    async fn refund(
        &self,
        _charge: &Charge,
        _amount_minor: i64,
        _reference: &str,
    ) -> Result<(), GatewayError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(n: &str) -> Card {
        Card {
            number: n.into(),
            exp_month: 12,
            exp_year: 2099,
            cvc: "123".into(),
        }
    }

    #[test]
    fn cards_are_checked_and_never_printed() {
        assert!(card(CARD_SUCCEEDS).validate(2026, 11).is_ok());
        assert!(card("4242424242424241").validate(2026, 11).is_err(), "Luhn");
        assert!(card("4242 4242 4242 4242").validate(2026, 11).is_ok());
        assert!(Card {
            exp_year: 2020,
            ..card(CARD_SUCCEEDS)
        }
        .validate(2026, 11)
        .is_err());
        assert!(Card {
            cvc: "12".into(),
            ..card(CARD_SUCCEEDS)
        }
        .validate(2026, 11)
        .is_err());
        let printed = format!("{:?}", card(CARD_SUCCEEDS));
        assert!(printed.contains("4242") && !printed.contains(CARD_SUCCEEDS));
    }

    #[test]
    fn outcomes_are_deterministic() {
        assert_eq!(sandbox_outcome(CARD_SUCCEEDS), Some("success"));
        assert_eq!(sandbox_outcome(CARD_DECLINES), Some("decline"));
        assert_eq!(sandbox_outcome(CARD_WAITS), Some("wait"));
        assert_eq!(outcome_of("wait"), Outcome::Pending);
    }
}
