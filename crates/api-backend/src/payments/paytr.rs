//! PayTR's iFrame API (docs/highlevel.md, PayTR): a signed token request opens PayTR's own card page; PayTR reports the
//! outcome to our callback, whose hash we check; refunds and status queries are signed the same way. Where the
//! merchant holds PayTR's Direct API, Non3D and recurring permissions, cards are kept in PayTR's card storage
//! (`utoken` per customer, `ctoken` per card): a first payment posted by the customer's browser straight to
//! PayTR with `store_card=1` saves the card, `/odeme/capi/list` lists them, and a server-side Direct API post
//! with `recurring_payment=1` and `non_3d=1` charges one off-session. The merchant key and salt arrive sealed
//! from the provider row and never leave this module.

use super::gateway::{Card, Gateway, GatewayError, Outcome};
use crate::store::payments::{Charge, Method};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use service_common::crypto::constant_time_eq;
use sha2::Sha256;

/// `base64(HMAC-SHA256(merchant_key, fields… + merchant_salt))`.
pub fn sign(key: &SecretString, salt: &SecretString, fields: &[&str]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose_secret().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for f in fields {
        mac.update(f.as_bytes());
    }
    mac.update(salt.expose_secret().as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// The callback's hash: `base64(HMAC-SHA256(merchant_key, merchant_oid + merchant_salt + status + total_amount))`.
pub fn callback_hash(
    key: &SecretString,
    salt: &SecretString,
    oid: &str,
    status: &str,
    total: &str,
) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose_secret().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for part in [oid, salt.expose_secret(), status, total] {
        mac.update(part.as_bytes());
    }
    B64.encode(mac.finalize().into_bytes())
}

/// PayTR's merchant order id for a charge: letters and digits only.
pub fn merchant_oid(charge_id: &str) -> String {
    charge_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub merchant_id: String,
    pub merchant_key: SecretString,
    pub merchant_salt: SecretString,
}

pub struct Paytr {
    http: reqwest::Client,
    base_url: String,
    creds: Credentials,
    test_mode: bool,
    /// The customer whose saved cards [`Gateway::charge_saved`] charges (PayTR's card storage).
    payer: Option<Payer>,
}

/// A customer of PayTR's card storage, as an off-session charge names them.
pub struct Payer {
    /// PayTR's customer token; it groups the customer's saved cards.
    pub utoken: SecretString,
    /// The address the customer saved a card from.
    pub user_ip: String,
    pub email: String,
    pub customer: super::record::Customer,
    /// PayTR's `merchant_ok_url` / `merchant_fail_url` (unused by an off-session charge, but part of the post).
    pub ok_url: String,
    pub fail_url: String,
}

/// A Direct API payment (`POST /odeme`): the same fields and hash whether the customer's browser posts it
/// with the card, or this service posts it off-session for a saved card.
pub struct Direct<'a> {
    pub charge: &'a Charge,
    pub user_ip: &'a str,
    pub email: &'a str,
    pub product_name: &'a str,
    pub customer: &'a super::record::Customer,
    pub ok_url: &'a str,
    pub fail_url: &'a str,
    /// `non_3d=1`: no 3-D Secure step (required for a customer-absent charge; needs PayTR's Non3D permission).
    pub non_3d: bool,
}

/// A card in PayTR's card storage, as `/odeme/capi/list` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCard {
    pub ctoken: String,
    pub last4: String,
    /// `c_brand` (e.g. `VISA`), else `c_bank`.
    pub brand: String,
    pub exp_month: i32,
    pub exp_year: i32,
    /// `require_cvv=1`: PayTR charges it only with the CVV from the customer, so never off-session.
    pub require_cvv: bool,
}

/// What PayTR answered an off-session charge (`recurring_payment=1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecurringAnswer {
    Success,
    /// "Ödeme Kontrol Ediliyor, Bildirimi Bekleyin": the callback settles it.
    WaitCallback,
    /// `failed` with `try_again=true`: another transaction of the card is in progress; nothing was charged.
    TryAgain(String),
    /// `failed` with `try_again=false`: declined.
    Declined(String),
}

/// What the customer's checkout needs.
pub struct Checkout<'a> {
    pub charge: &'a Charge,
    pub user_ip: &'a str,
    pub email: &'a str,
    pub product_name: &'a str,
    /// The customer's name, address and phone, as HighLevel has them.
    pub customer: &'a super::record::Customer,
    pub ok_url: &'a str,
    pub fail_url: &'a str,
}

fn currency(c: &str) -> String {
    match c {
        "TRY" => "TL".into(),
        other => other.into(),
    }
}

impl Paytr {
    /// `http` is the process's one PayTR client (`app::paytr_http`), with its timeouts.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        creds: Credentials,
        test_mode: bool,
    ) -> Paytr {
        Paytr {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            creds,
            test_mode,
            payer: None,
        }
    }

    /// This gateway, charging the saved cards of `payer`.
    pub fn for_payer(mut self, payer: Payer) -> Paytr {
        self.payer = Some(payer);
        self
    }

    /// Where the customer's browser posts a Direct API payment (`POST {PAYTR_API_URL}/odeme`).
    pub fn direct_url(&self) -> String {
        format!("{}/odeme", self.base_url)
    }

    fn test_mode_text(&self) -> &'static str {
        if self.test_mode {
            "1"
        } else {
            "0"
        }
    }

    /// The signed fields of a Direct API payment, without the card and without the card-storage fields
    /// (`store_card`, `utoken`, `ctoken`, `recurring_payment`, which PayTR does not hash). `payment_amount` is a
    /// decimal in major units here (`49.99`), not ×100 as in the iFrame API; `user_basket` is JSON, HTML-entity
    /// encoded, not base64. Hash: `merchant_id user_ip merchant_oid email payment_amount payment_type
    /// installment_count currency test_mode non_3d` + salt.
    pub fn direct_fields(&self, d: &Direct<'_>) -> Vec<(&'static str, String)> {
        let oid = merchant_oid(&d.charge.id);
        let amount = refund_amount_text(d.charge.amount_minor, &d.charge.currency);
        let (payment_type, installment_count) = ("card", "0");
        let cur = currency(&d.charge.currency);
        let test_mode = self.test_mode_text();
        let non_3d = if d.non_3d { "1" } else { "0" };
        let basket = html_escape::encode_double_quoted_attribute(
            &serde_json::json!([[d.product_name, amount, 1]]).to_string(),
        )
        .into_owned();
        let token = sign(
            &self.creds.merchant_key,
            &self.creds.merchant_salt,
            &[
                &self.creds.merchant_id,
                d.user_ip,
                &oid,
                d.email,
                &amount,
                payment_type,
                installment_count,
                &cur,
                test_mode,
                non_3d,
            ],
        );
        vec![
            ("merchant_id", self.creds.merchant_id.clone()),
            ("user_ip", d.user_ip.to_owned()),
            ("merchant_oid", oid),
            ("email", d.email.to_owned()),
            ("payment_type", payment_type.into()),
            ("payment_amount", amount),
            ("currency", cur),
            ("installment_count", installment_count.into()),
            ("test_mode", test_mode.into()),
            ("non_3d", non_3d.into()),
            ("merchant_ok_url", d.ok_url.to_owned()),
            ("merchant_fail_url", d.fail_url.to_owned()),
            ("user_name", d.customer.name.clone()),
            ("user_address", d.customer.address.clone()),
            ("user_phone", d.customer.phone.clone()),
            ("user_basket", basket),
            ("debug_on", "0".into()),
            ("client_lang", "en".into()),
            ("paytr_token", token),
        ]
    }

    /// `/odeme/capi/list`: the cards PayTR keeps for a customer. Hash: `utoken` + salt (no merchant id).
    /// PayTR answers a JSON array of cards, an empty JSON when there are none, or `{status:"error", err_msg}`.
    pub async fn stored_cards(
        &self,
        utoken: &SecretString,
    ) -> Result<Vec<StoredCard>, GatewayError> {
        let token = sign(
            &self.creds.merchant_key,
            &self.creds.merchant_salt,
            &[utoken.expose_secret()],
        );
        let answer = self
            .post(
                "/odeme/capi/list",
                &[
                    ("merchant_id", self.creds.merchant_id.clone()),
                    ("utoken", utoken.expose_secret().to_owned()),
                    ("paytr_token", token),
                ],
            )
            .await?;
        let cards = match &answer {
            serde_json::Value::Array(cards) => cards,
            serde_json::Value::Object(o)
                if o.get("status").and_then(|s| s.as_str()) == Some("error") =>
            {
                return Err(GatewayError::Refused(format!(
                    "PayTR refused to list the saved cards: {}",
                    o.get("err_msg")
                        .and_then(|m| m.as_str())
                        .unwrap_or("no message")
                )))
            }
            // "No match gives an empty JSON".
            _ => return Ok(Vec::new()),
        };
        Ok(cards.iter().filter_map(stored_card).collect())
    }

    /// An off-session charge of a saved card ("Tekrarlayan Ödeme"): this service posts the Direct API payment
    /// with `utoken`, `ctoken`, `recurring_payment=1` and `non_3d=1`, no card fields; PayTR answers at once.
    pub async fn charge_recurring(
        &self,
        d: &Direct<'_>,
        utoken: &SecretString,
        ctoken: &str,
    ) -> Result<RecurringAnswer, GatewayError> {
        let mut form = self.direct_fields(&Direct { non_3d: true, ..*d });
        form.extend([
            ("utoken", utoken.expose_secret().to_owned()),
            ("ctoken", ctoken.to_owned()),
            ("recurring_payment", "1".to_owned()),
        ]);
        let answer = self.post("/odeme", &form).await?;
        let msg = answer["msg"]
            .as_str()
            .or(answer["reason"].as_str())
            .unwrap_or("PayTR declined the payment")
            .to_owned();
        let try_again = answer["try_again"].as_bool().unwrap_or(false)
            || matches!(answer["try_again"].as_str(), Some("true" | "1"))
            || answer["try_again"].as_i64() == Some(1);
        Ok(match answer["status"].as_str() {
            Some("success") => RecurringAnswer::Success,
            Some("wait_callback") => RecurringAnswer::WaitCallback,
            _ if try_again => RecurringAnswer::TryAgain(msg),
            _ => RecurringAnswer::Declined(msg),
        })
    }

    async fn post(
        &self,
        path: &str,
        form: &[(&str, String)],
    ) -> Result<serde_json::Value, GatewayError> {
        let res = self
            .http
            .post(format!("{}{path}", self.base_url))
            .form(form)
            .send()
            .await
            .map_err(|e| {
                GatewayError::Unavailable(if e.is_timeout() {
                    "PayTR timed out".into()
                } else {
                    "PayTR unreachable".into()
                })
            })?;
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.map_err(|_| {
            GatewayError::Unavailable(format!("PayTR answered {status} with no JSON"))
        })?;
        Ok(body)
    }

    /// `/odeme/api/get-token`: the URL of PayTR's card page for this charge.
    pub async fn checkout_url(&self, c: &Checkout<'_>) -> Result<String, GatewayError> {
        let oid = merchant_oid(&c.charge.id);
        let amount = c.charge.amount_minor.to_string();
        let basket = B64.encode(
            serde_json::json!([[
                c.product_name,
                refund_amount_text(c.charge.amount_minor, &c.charge.currency),
                1
            ]])
            .to_string(),
        );
        let (no_installment, max_installment, test_mode) =
            ("1", "0", if self.test_mode { "1" } else { "0" });
        let cur = currency(&c.charge.currency);
        let token = sign(
            &self.creds.merchant_key,
            &self.creds.merchant_salt,
            &[
                &self.creds.merchant_id,
                c.user_ip,
                &oid,
                c.email,
                &amount,
                &basket,
                no_installment,
                max_installment,
                &cur,
                test_mode,
            ],
        );
        let form = [
            ("merchant_id", self.creds.merchant_id.clone()),
            ("user_ip", c.user_ip.into()),
            ("merchant_oid", oid),
            ("email", c.email.into()),
            ("payment_amount", amount),
            ("paytr_token", token),
            ("user_basket", basket),
            ("debug_on", "0".into()),
            ("no_installment", no_installment.into()),
            ("max_installment", max_installment.into()),
            ("user_name", c.customer.name.clone()),
            ("user_address", c.customer.address.clone()),
            ("user_phone", c.customer.phone.clone()),
            ("merchant_ok_url", c.ok_url.into()),
            ("merchant_fail_url", c.fail_url.into()),
            ("timeout_limit", CHECKOUT_TIMEOUT_MINUTES.to_string()),
            ("currency", cur),
            ("test_mode", test_mode.into()),
            ("lang", "en".into()),
        ];
        let answer = self.post("/odeme/api/get-token", &form).await?;
        match (answer["status"].as_str(), answer["token"].as_str()) {
            (Some("success"), Some(token)) => {
                Ok(format!("{}/odeme/guvenli/{token}", self.base_url))
            }
            _ => Err(GatewayError::Refused(
                answer["reason"]
                    .as_str()
                    .unwrap_or("PayTR refused the token request")
                    .to_owned(),
            )),
        }
    }

    /// Checks a callback's hash (in constant time).
    pub fn callback_is_genuine(&self, oid: &str, status: &str, total: &str, hash: &str) -> bool {
        constant_time_eq(
            &callback_hash(
                &self.creds.merchant_key,
                &self.creds.merchant_salt,
                oid,
                status,
                total,
            ),
            hash,
        )
    }

    /// Whether the refund with our `reference` happened, from the status query's `returns[]`: `Some(true)` if
    /// PayTR lists it, `Some(false)` if PayTR answered and does not, `None` if PayTR did not say.
    pub async fn refund_status(
        &self,
        charge: &Charge,
        reference: &str,
    ) -> Result<Option<bool>, GatewayError> {
        let answer = self.status_query(charge).await?;
        if answer["status"].as_str() != Some("success") {
            return Ok(None);
        }
        let wanted = reference_no(reference);
        let listed = answer["returns"].as_array().is_some_and(|returns| {
            returns
                .iter()
                .any(|r| r["reference_no"].as_str() == Some(wanted.as_str()))
        });
        Ok(Some(listed))
    }

    async fn status_query(&self, charge: &Charge) -> Result<serde_json::Value, GatewayError> {
        let oid = merchant_oid(&charge.id);
        let token = sign(
            &self.creds.merchant_key,
            &self.creds.merchant_salt,
            &[&self.creds.merchant_id, &oid],
        );
        self.post(
            "/odeme/durum-sorgu",
            &[
                ("merchant_id", self.creds.merchant_id.clone()),
                ("merchant_oid", oid),
                ("paytr_token", token),
            ],
        )
        .await
    }

    /// `/odeme/durum-sorgu`: PayTR's word on a payment. PayTR answers `success` (a successful payment exists)
    /// or `error`: `004` means no successful payment (yet: failed, unfinished and unknown look the same),
    /// `001`–`003` are misconfigurations and surface as errors. A `success` whose amount, currency or test mode
    /// differs from the charge is an alarm, never a payment.
    pub async fn status(&self, charge: &Charge) -> Result<Outcome, GatewayError> {
        let answer = self.status_query(charge).await?;
        match answer["status"].as_str() {
            Some("success") => {
                if let Some(alarm) = mismatch(
                    charge,
                    answer["payment_amount"].as_str(),
                    answer["currency"].as_str(),
                    answer["test_mode"]
                        .as_str()
                        .map(str::to_owned)
                        .or_else(|| answer["test_mode"].as_i64().map(|n| n.to_string()))
                        .as_deref(),
                ) {
                    tracing::error!(charge = %charge.id, %alarm, "PayTR reports a payment that is not this charge");
                    return Err(GatewayError::Refused(format!(
                        "PayTR's payment does not match the charge: {alarm}"
                    )));
                }
                Ok(Outcome::Succeeded)
            }
            Some("error") if answer["err_no"].as_str() == Some("004") => Ok(Outcome::Pending),
            _ => Err(GatewayError::Refused(format!(
                "PayTR refused the status query: {} (error {}); check the merchant id, key and salt",
                answer["err_msg"].as_str().unwrap_or("no message"),
                answer["err_no"].as_str().unwrap_or("?")
            ))),
        }
    }
}

impl Gateway for Paytr {
    fn name(&self) -> &'static str {
        "paytr"
    }

    async fn charge_card(&self, _card: &Card, _charge: &Charge) -> Result<Outcome, GatewayError> {
        Err(GatewayError::Refused(
            "PayTR takes cards on its own page (checkout_url)".into(),
        ))
    }

    /// An off-session charge of a card in PayTR's card storage (the method's `ctoken`, the payer's `utoken`).
    /// `wait_callback` leaves the charge pending for PayTR's callback; a lost answer does too (the charge may
    /// have been made: the callback or the status query settles it). `failed` with `try_again` charged nothing
    /// and is `Unavailable` (try later); `failed` without it is a decline.
    async fn charge_saved(
        &self,
        method: &Method,
        charge: &Charge,
    ) -> Result<Outcome, GatewayError> {
        let (Some(payer), Some(ctoken)) = (&self.payer, method.gateway_ref.as_deref()) else {
            return Err(GatewayError::Refused(
                "the card is not in PayTR's card storage".into(),
            ));
        };
        let direct = Direct {
            charge,
            user_ip: &payer.user_ip,
            email: &payer.email,
            product_name: charge.description.as_deref().unwrap_or("Payment"),
            customer: &payer.customer,
            ok_url: &payer.ok_url,
            fail_url: &payer.fail_url,
            non_3d: true,
        };
        match self.charge_recurring(&direct, &payer.utoken, ctoken).await {
            Ok(RecurringAnswer::Success) => Ok(Outcome::Succeeded),
            Ok(RecurringAnswer::WaitCallback) => Ok(Outcome::Pending),
            Ok(RecurringAnswer::Declined(why)) => Ok(Outcome::Declined(why)),
            Ok(RecurringAnswer::TryAgain(why)) => Err(GatewayError::Unavailable(format!(
                "PayTR: {why} (nothing was charged; try again later)"
            ))),
            Err(GatewayError::Unavailable(why)) => {
                tracing::warn!(charge = %charge.id, error = %why, "PayTR's answer to an off-session charge was lost; the callback settles it");
                Ok(Outcome::Pending)
            }
            Err(e) => Err(e),
        }
    }

    /// `/odeme/iade`, `return_amount` in major units, with our refund id as `reference_no` (not in the hash)
    /// so the status query can tell later whether a refund whose answer was lost happened.
    async fn refund(
        &self,
        charge: &Charge,
        amount_minor: i64,
        reference: &str,
    ) -> Result<(), GatewayError> {
        let oid = merchant_oid(&charge.id);
        let amount = refund_amount_text(amount_minor, &charge.currency);
        let token = sign(
            &self.creds.merchant_key,
            &self.creds.merchant_salt,
            &[&self.creds.merchant_id, &oid, &amount],
        );
        let answer = self
            .post(
                "/odeme/iade",
                &[
                    ("merchant_id", self.creds.merchant_id.clone()),
                    ("merchant_oid", oid),
                    ("return_amount", amount),
                    ("paytr_token", token),
                    ("reference_no", reference_no(reference)),
                ],
            )
            .await?;
        match answer["status"].as_str() {
            Some("success") => Ok(()),
            // Every error code means nothing was refunded (000/010: retry later; 007: the callback is not
            // acknowledged yet; 009: more than is left).
            _ => Err(GatewayError::Refused(format!(
                "{} (PayTR error {})",
                answer["err_msg"]
                    .as_str()
                    .or(answer["reason"].as_str())
                    .unwrap_or("PayTR refused the refund"),
                answer["err_no"].as_str().unwrap_or("?")
            ))),
        }
    }
}

/// A card of `/odeme/capi/list` (fields may come as strings or numbers).
fn stored_card(v: &serde_json::Value) -> Option<StoredCard> {
    let text = |k: &str| match &v[k] {
        serde_json::Value::String(s) => Some(s.trim().to_owned()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let number = |k: &str| text(k).and_then(|t| t.parse::<i32>().ok());
    let year = number("year")?;
    Some(StoredCard {
        ctoken: text("ctoken").filter(|c| !c.is_empty())?,
        last4: text("last_4").unwrap_or_default().chars().take(4).collect(),
        brand: text("c_brand")
            .or_else(|| text("c_bank"))
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| "Card".into()),
        exp_month: number("month").unwrap_or(0),
        exp_year: if year < 100 { 2000 + year } else { year },
        require_cvv: text("require_cvv").as_deref() == Some("1"),
    })
}

/// How long PayTR's checkout stays open (`timeout_limit`, minutes): a charge with no payment after it failed.
pub const CHECKOUT_TIMEOUT_MINUTES: i64 = 30;

/// When a payment through PayTR's Direct API (card storage: card setups, subscription first periods, charges
/// of saved cards) with no payment is taken to be over. Those requests carry no `timeout_limit`, and the status
/// query's `004` also means "still in progress" (a bank's 3-D Secure step), so only a day settles it.
pub const DIRECT_GIVEN_UP_AFTER_MS: i64 = 86_400_000;

/// When a charge with no payment is taken to be over: PayTR's `timeout_limit` and a minute for the clocks.
pub const CHECKOUT_CLOSED_AFTER_MS: i64 = (CHECKOUT_TIMEOUT_MINUTES * 60 + 60) * 1000;

/// PayTR's currency codes for ours (PayTR says `TL` for the Turkish lira).
pub fn same_currency(paytr: &str, ours: &str) -> bool {
    let norm = |c: &str| match c.to_ascii_uppercase().as_str() {
        "TL" => "TRY".to_owned(),
        other => other.to_owned(),
    };
    norm(paytr) == norm(ours)
}

/// The currencies PayTR documents.
pub const CURRENCIES: &[&str] = &["TRY", "EUR", "USD", "GBP", "RUB"];

/// A decimal amount in PayTR's text (`10,8` or `10.80`, major units) in minor units of a 2-decimal currency.
fn paytr_major_to_minor(text: &str) -> Option<i64> {
    let v: f64 = text.trim().replace(',', ".").parse().ok()?;
    v.is_finite().then(|| (v * 100.0).round() as i64)
}

/// Why PayTR's report (amount in major units, currency, test mode) is not this charge, if it is not.
fn mismatch(
    charge: &Charge,
    major_amount: Option<&str>,
    currency: Option<&str>,
    test_mode: Option<&str>,
) -> Option<String> {
    let mut why = Vec::new();
    match major_amount.and_then(paytr_major_to_minor) {
        Some(m) if m == charge.amount_minor => {}
        other => why.push(format!(
            "amount {other:?} (minor units), the charge is {}",
            charge.amount_minor
        )),
    }
    if let Some(c) = currency {
        if !same_currency(c, &charge.currency) {
            why.push(format!("currency {c}, the charge is {}", charge.currency));
        }
    }
    if let Some(t) = test_mode {
        if (t == "1") == charge.live_mode {
            why.push(format!(
                "test_mode {t}, the charge is {}",
                if charge.live_mode { "live" } else { "a test" }
            ));
        }
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// A refund id as PayTR's `reference_no`: letters and digits only, at most 64.
fn reference_no(reference: &str) -> String {
    reference
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect()
}

/// An amount as PayTR's decimal text in major units (`10.50`), in the charge's currency.
fn refund_amount_text(minor: i64, currency: &str) -> String {
    match super::money::currency(currency) {
        Ok(c) => super::money::major_text(minor, c),
        Err(_) => format!("{:.2}", minor as f64 / 100.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// A callback with any fields is judged without panicking, and only the right hash passes.
        #[test]
        fn any_callback_is_judged_without_panicking(
            oid in ".{0,80}", status in ".{0,20}", total in ".{0,20}", hash in ".{0,100}",
        ) {
            let (key, salt) = (SecretString::from("key"), SecretString::from("salt"));
            let p = Paytr::new(
                reqwest::Client::new(),
                "http://127.0.0.1:9",
                Credentials { merchant_id: "1".into(), merchant_key: key.clone(), merchant_salt: salt.clone() },
                true,
            );
            let right = callback_hash(&key, &salt, &oid, &status, &total);
            proptest::prop_assert_eq!(p.callback_is_genuine(&oid, &status, &total, &hash), hash == right);
            proptest::prop_assert!(p.callback_is_genuine(&oid, &status, &total, &right));
        }
    }
}
