//! Cards on file with PayTR, for a provider whose merchant holds PayTR's Direct API, Non3D and recurring
//! permissions (`paytr.directApi`). PayTR keeps the cards ("Kart Saklama API"): each contact has a customer
//! token (`utoken`, kept sealed per location, mode and contact) and each card a card token (`ctoken`, the
//! saved method's `gateway_ref`).
//!
//! PayTR cannot save a card without a payment: a card is stored during a customer-present Direct API payment
//! posted with `store_card=1`. So HighLevel's setup (`setup_initiate_props`, "save a card without charging")
//! is a **verification payment** of one unit of the currency (e.g. 1.00 TRY): the page posts the card with
//! the fields signed here straight from the customer's browser to PayTR (the card never reaches this
//! service), PayTR's notification brings the `utoken`, and the card is then listed from PayTR. HighLevel does
//! not hear of the verification payment (it has no transaction for it), and it is refunded in full once PayTR
//! has our `OK` to its notification ([`refund_verifications`]; PayTR refuses a refund before that, `007`).

use super::charges::new_charge;
use super::paytr::{Direct, Payer, StoredCard};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::payments::{self, Charge, Method};
use crate::store::providers::ProviderRow;
use crate::store::{now_ms, paytr_customers};
use secrecy::{ExposeSecret, SecretString};
use service_common::TokenKind;

/// The transactionId of a card-setup verification payment starts with this: it is not HighLevel's, so no
/// `payment.captured` is reported for it.
pub const CARD_SETUP_PREFIX: &str = "cardsetup_";

/// How long after its notification a verification payment is refunded: PayTR must have had our `OK` (before
/// that it refuses the refund with `007`). A refund PayTR refuses is tried again as long after.
pub const VERIFICATION_REFUND_AFTER_MS: i64 = 60_000;

/// Verification payments are refunded for a day after they were made; one PayTR keeps refusing is then left
/// for a person (the log says so each time).
const VERIFICATION_REFUND_WINDOW_MS: i64 = 86_400_000;

/// Card setups a contact may have waiting for PayTR at once.
pub const MAX_UNFINISHED_SETUPS: i64 = 5;

/// Card setups a location may have waiting for PayTR at once in one mode, whatever their contacts: the
/// page's key is public and `contactId` is the browser's to choose, so the per-contact bound alone bounds
/// nothing. 50 is far above what one shop's customers save in PayTR's 30-minute checkout window; a setup
/// stops counting once it is finished or PayTR's checkout has closed.
pub const MAX_UNFINISHED_SETUPS_PER_LOCATION: i64 = 50;

/// How long after it began an unfinished setup is marked failed (PayTR's checkout closed with no payment):
/// see [`expire_setups`]. The page stops waiting a little later ([`PAGE_WAITS_MS`]).
pub const SETUP_EXPIRES_AFTER_MS: i64 = super::paytr::CHECKOUT_CLOSED_AFTER_MS;

/// How long the page polls a setup before it gives up on its own: the expiry and time for the background
/// pass that marks it.
pub const PAGE_WAITS_MS: i64 = SETUP_EXPIRES_AFTER_MS + 60_000;

/// An unfinished setup whose status PayTR's status query cannot give (PayTR unreachable, the merchant's
/// credentials wrong) is marked failed without PayTR's word after this long.
const SETUP_GIVEN_UP_AFTER_MS: i64 = 86_400_000;

/// Setups looked at per pass of [`expire_setups`]; each asks PayTR's status query once.
const EXPIRE_BATCH: i64 = 20;

/// Whether the charge is a card-setup verification payment.
pub fn is_card_setup(c: &Charge) -> bool {
    c.transaction_id.starts_with(CARD_SETUP_PREFIX)
}

fn sealed_row(location: &str, live: bool, contact: &str) -> String {
    format!(
        "paytr-customer/{location}/{}/{contact}",
        if live { "live" } else { "test" }
    )
}

fn keys(state: &AppState) -> Result<&service_common::KeyRing, ApiError> {
    state.keys.as_ref().ok_or_else(|| {
        ApiError::Internal("TOKEN_ENCRYPTION_KEYS is not set: PayTR tokens cannot be sealed".into())
    })
}

/// The contact's PayTR customer row and its unsealed `utoken`, if PayTR gave one.
pub(crate) async fn customer_token(
    state: &AppState,
    location: &str,
    live: bool,
    contact: &str,
) -> Result<Option<(SecretString, paytr_customers::PaytrCustomer)>, ApiError> {
    let (l, c) = (location.to_owned(), contact.to_owned());
    let Some(row) = state
        .db
        .run(move |x| paytr_customers::get(x, &l, live, &c))
        .await?
    else {
        return Ok(None);
    };
    let Some(sealed) = row.utoken_sealed.as_deref() else {
        return Ok(None);
    };
    let utoken = keys(state)?
        .decrypt(
            sealed,
            &sealed_row(location, live, contact),
            TokenKind::Secret,
        )
        .map_err(|e| ApiError::Internal(format!("a sealed PayTR utoken is unreadable: {e}")))?;
    Ok(Some((utoken, row)))
}

/// PayTR's result pages for this service (`merchant_ok_url`, `merchant_fail_url`).
pub(crate) fn result_urls(state: &AppState) -> (String, String) {
    let back = state.settings.public_base_url.clone().unwrap_or_default();
    (
        format!("{back}/payments/page?result=ok"),
        format!("{back}/payments/page?result=fail"),
    )
}

/// What the page posts to PayTR for a card setup: the URL and the signed fields, to which the browser adds
/// the card (`cc_owner`, `card_number`, `expiry_month`, `expiry_year`, `cvv`).
pub struct SetupForm {
    pub charge: Charge,
    pub action: String,
    pub fields: Vec<(&'static str, String)>,
}

/// Begins saving a card for `contact`: records the verification payment (pending until PayTR's
/// notification) and signs the Direct API fields with `store_card=1` (and the contact's `utoken` when PayTR
/// gave one before, so the contact's cards stay grouped).
pub async fn begin_setup(
    state: &AppState,
    provider: &ProviderRow,
    live: bool,
    contact: &str,
    currency: &str,
    user_ip: &str,
) -> Result<SetupForm, ApiError> {
    super::checkout::require_card_on_file(provider)?;
    shared_types::check_id("contactId", contact).map_err(ApiError::Validation)?;
    let cur = super::money::currency(currency)?;
    if !super::paytr::CURRENCIES.contains(&cur.code()) {
        return Err(ApiError::Validation(format!(
            "PayTR takes {} only; the card setup is in {}",
            super::paytr::CURRENCIES.join(", "),
            cur.code()
        )));
    }
    let gateway = super::paytr_for(state, provider, live)?;
    // Anyone holding the page's publishable key may begin a setup, for any contact it names: the unfinished
    // ones are bounded per contact and per location and mode (an abandoned one stops counting once PayTR's
    // checkout has closed).
    let (l, c) = (provider.location_id.clone(), contact.to_owned());
    let since = now_ms() - SETUP_EXPIRES_AFTER_MS;
    let (of_contact, of_location) = state
        .db
        .run(move |x| {
            Ok::<_, crate::db::DbError>((
                payments::pending_with_prefix(x, &l, &c, CARD_SETUP_PREFIX, since)?,
                payments::pending_with_prefix_at_location(x, &l, live, CARD_SETUP_PREFIX, since)?,
            ))
        })
        .await?;
    let busy = |who: String| {
        let minutes = super::paytr::CHECKOUT_TIMEOUT_MINUTES;
        ApiError::SetupsPending {
            detail: format!(
                "{who} waiting for PayTR; finish one, or try again once PayTR's checkout has closed on \
                 the oldest (at most {minutes} minutes): nothing was started"
            ),
            retry_after_secs: (SETUP_EXPIRES_AFTER_MS / 1000) as u64,
        }
    };
    if of_contact >= MAX_UNFINISHED_SETUPS {
        return Err(busy(format!(
            "this contact already has {MAX_UNFINISHED_SETUPS} card setups"
        )));
    }
    if of_location >= MAX_UNFINISHED_SETUPS_PER_LOCATION {
        return Err(busy(format!(
            "this location already has {MAX_UNFINISHED_SETUPS_PER_LOCATION} card setups"
        )));
    }
    let held = customer_token(state, &provider.location_id, live, contact).await?;
    let (l, c, ip) = (
        provider.location_id.clone(),
        contact.to_owned(),
        user_ip.to_owned(),
    );
    state
        .db
        .run(move |x| paytr_customers::begin(x, &l, live, &c, &ip, now_ms()))
        .await?;
    let txn = format!("{CARD_SETUP_PREFIX}{:032x}", rand::random::<u128>());
    let mut new = new_charge(
        provider,
        live,
        &txn,
        10i64.pow(cur.exponent),
        cur.code().to_owned(),
    );
    new.contact_id = Some(contact.to_owned());
    new.description = Some("Card verification (card on file)".into());
    new.gateway_ref = Some(super::paytr::merchant_oid(&new.id));
    let stored = new.clone();
    state
        .db
        .run(move |x| payments::insert_charge_once(x, &stored))
        .await?;
    // These fields go to the browser, and anyone holding the page's public key may ask for them: they carry
    // none of the contact's details (PayTR wants the fields present; a verification payment needs no more).
    let customer = super::record::Customer::default();
    let email = customer.email_or_placeholder();
    let (ok_url, fail_url) = result_urls(state);
    let mut fields = gateway.direct_fields(&Direct {
        charge: &new,
        user_ip,
        email: &email,
        product_name: "Card verification",
        customer: &customer,
        ok_url: &ok_url,
        fail_url: &fail_url,
        non_3d: false,
    });
    fields.push(("store_card", "1".into()));
    if let Some((utoken, _)) = held {
        fields.push(("utoken", utoken.expose_secret().to_owned()));
    }
    tracing::info!(location = %provider.location_id, charge = %new.id, "PayTR card setup begun");
    Ok(SetupForm {
        charge: new,
        action: gateway.direct_url(),
        fields,
    })
}

/// PayTR's notification of a payment that stored a card brought the contact's `utoken`: it is kept (sealed;
/// the first one stays) and the contact's cards are read from PayTR. Reading the cards may fail; they are
/// read again when HighLevel lists them.
pub async fn remember_token(
    state: &AppState,
    provider: &ProviderRow,
    charge: &Charge,
    utoken: &str,
) -> Result<(), ApiError> {
    let Some(contact) = charge.contact_id.clone() else {
        return Ok(());
    };
    let (location, live) = (charge.location_id.clone(), charge.live_mode);
    if token_of_another_contact(state, &location, live, &contact, utoken).await? {
        // `utoken` is not in PayTR's hash: a browser can post any, and PayTR echoes it. Kept for this contact,
        // another customer's cards would be listed (and a subscription bound to one of them) here.
        tracing::error!(%location, charge = %charge.id, "PayTR notification carries another contact's utoken: not kept");
        return Ok(());
    }
    let sealed = keys(state)?.encrypt(
        utoken,
        &sealed_row(&location, live, &contact),
        TokenKind::Secret,
    );
    let (l, c) = (location.clone(), contact.clone());
    let kept = state
        .db
        .run(move |x| paytr_customers::keep_token(x, &l, live, &c, &sealed, now_ms()))
        .await?;
    if !kept {
        tracing::info!(%location, "PayTR notification for a contact whose utoken is kept already");
    }
    if let Err(e) = list(state, provider, live, &contact).await {
        tracing::warn!(%location, error = %e, "the saved cards could not be read from PayTR yet");
    }
    Ok(())
}

/// Whether `utoken` is already kept for another contact of the location and mode (checked when this contact
/// has none yet: one that has keeps its first token whatever a notification says).
async fn token_of_another_contact(
    state: &AppState,
    location: &str,
    live: bool,
    contact: &str,
    utoken: &str,
) -> Result<bool, ApiError> {
    if customer_token(state, location, live, contact)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let (l, c) = (location.to_owned(), contact.to_owned());
    let others = state
        .db
        .run(move |x| paytr_customers::sealed_tokens_except(x, &l, live, &c))
        .await?;
    let keys = keys(state)?;
    Ok(others.iter().any(|(other, sealed)| {
        keys.decrypt(
            sealed,
            &sealed_row(location, live, other),
            TokenKind::Secret,
        )
        .is_ok_and(|t| service_common::crypto::constant_time_eq(t.expose_secret(), utoken))
    }))
}

/// The contact's cards in PayTR's card storage (`/odeme/capi/list`), kept in step with the saved methods
/// here (which give HighLevel stable ids). A card PayTR charges only with the customer's CVV
/// (`require_cvv=1`) cannot be charged off-session and is left out.
pub async fn list(
    state: &AppState,
    provider: &ProviderRow,
    live: bool,
    contact: &str,
) -> Result<Vec<Method>, ApiError> {
    super::checkout::require_card_on_file(provider)?;
    let Some((utoken, _)) = customer_token(state, &provider.location_id, live, contact).await?
    else {
        return Ok(Vec::new());
    };
    let cards = super::paytr_for(state, provider, live)?
        .stored_cards(&utoken)
        .await
        .map_err(|e| ApiError::GatewayFailed(format!("PayTR: {e}")))?;
    let listed: Vec<Method> = cards
        .iter()
        .filter(|c| !c.require_cvv)
        .map(|c| method_of(provider, live, contact, c))
        .collect();
    let (l, c) = (provider.location_id.clone(), contact.to_owned());
    Ok(state
        .db
        .run(move |x| payments::sync_gateway_methods(x, &l, &c, live, &listed))
        .await?)
}

fn method_of(provider: &ProviderRow, live: bool, contact: &str, card: &StoredCard) -> Method {
    Method {
        id: format!("pm_{:032x}", rand::random::<u128>()),
        location_id: provider.location_id.clone(),
        live_mode: live,
        contact_id: contact.to_owned(),
        brand: card.brand.chars().take(20).collect(),
        last4: card.last4.clone(),
        exp_month: card.exp_month,
        exp_year: card.exp_year,
        sandbox_outcome: None,
        created_at: now_ms(),
        gateway_ref: Some(card.ctoken.clone()),
    }
}

/// The PayTR gateway of the provider, charging the saved cards of the method's contact; `None` when PayTR
/// never gave the contact a `utoken`.
pub async fn gateway_for_payer(
    state: &AppState,
    provider: &ProviderRow,
    live: bool,
    contact: &str,
) -> Result<Option<super::paytr::Paytr>, ApiError> {
    let Some((utoken, row)) = customer_token(state, &provider.location_id, live, contact).await?
    else {
        return Ok(None);
    };
    let customer = super::record::customer(state, provider, Some(contact)).await;
    let (ok_url, fail_url) = result_urls(state);
    Ok(Some(super::paytr_for(state, provider, live)?.for_payer(
        Payer {
            utoken,
            user_ip: row.user_ip,
            email: customer.email_or_placeholder(),
            customer,
            ok_url,
            fail_url,
        },
    )))
}

/// Marks failed the card setups PayTR's checkout closed on without a notification: pending setups begun more
/// than [`SETUP_EXPIRES_AFTER_MS`] before `now` are settled by PayTR's status query (a payment it finds
/// settles the setup as paid, its verification payment is then refunded as usual; none means the customer
/// left: failed). One PayTR cannot be asked about is looked at again in a minute, and after a day marked
/// failed without PayTR's word. At most [`EXPIRE_BATCH`] per call; answers how many were settled.
pub async fn expire_setups(state: &AppState, now: i64) -> usize {
    let (created_before, untouched_before) = (now - SETUP_EXPIRES_AFTER_MS, now - 60_000);
    let stale = match state
        .db
        .run(move |c| {
            payments::stale(
                c,
                payments::Gateway::Paytr,
                payments::Prefixed::With(CARD_SETUP_PREFIX),
                (i64::MIN, created_before),
                untouched_before,
                EXPIRE_BATCH,
            )
        })
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "card setups: cannot read the unfinished ones");
            return 0;
        }
    };
    let mut settled = 0;
    for charge in stale {
        let (id, location) = (charge.id.clone(), charge.location_id.clone());
        let l = location.clone();
        let provider = state
            .db
            .run(move |c| crate::store::providers::get(c, &l))
            .await
            .ok()
            .flatten();
        let asked = match &provider {
            Some(p) if p.gateway == crate::store::providers::Gateway::Paytr => {
                super::charges::settle_from_paytr(state, p, charge.clone(), now)
                    .await
                    .map_err(|e| e.to_string())
            }
            _ => Err("the location's PayTR provider is gone".to_owned()),
        };
        match asked {
            Ok(c) if c.status != payments::ChargeStatus::Pending => {
                tracing::info!(charge = %c.id, status = %c.status, "card setup: settled after PayTR's checkout closed");
                settled += 1;
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(charge = %id, error = %e, "card setup: PayTR's status query could not settle it")
            }
        }
        if now - charge.created_at > SETUP_GIVEN_UP_AFTER_MS {
            let marked = state
                .db
                .run(move |c| {
                    super::events::settle_and_report(
                        c,
                        &location,
                        &id,
                        payments::ChargeStatus::Failed,
                        Some("the card setup was never confirmed by PayTR"),
                    )
                })
                .await;
            if matches!(marked, Ok(Some(ref c)) if c.status == payments::ChargeStatus::Failed) {
                settled += 1;
            }
            continue;
        }
        let _ = state
            .db
            .run(move |c| payments::touch_charge(c, &id, now))
            .await;
    }
    settled
}

/// Refunds the verification payments of card setups (in full, once: the refund's id is derived from the
/// charge, so replicas and repeats refund it once) whose notification is at least
/// [`VERIFICATION_REFUND_AFTER_MS`] older than `now`. Answers how many were refunded.
pub async fn refund_verifications(state: &AppState, now: i64) -> usize {
    let before = now - VERIFICATION_REFUND_AFTER_MS;
    let since = now - VERIFICATION_REFUND_WINDOW_MS;
    let due = match state
        .db
        .run(move |c| {
            payments::unrefunded_with_prefix(
                c,
                payments::Gateway::Paytr,
                CARD_SETUP_PREFIX,
                before,
                since,
                20,
            )
        })
        .await
    {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "card setups: cannot read the verification payments to refund");
            return 0;
        }
    };
    super::refunds::refund_each_in_full(
        state,
        due,
        "verification",
        "card setup: verification payment",
    )
    .await
}
