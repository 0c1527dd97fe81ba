//! A subscription bought on the payment page of a PayTR provider with `paytr.directApi` (`mode:
//! "subscription"`). PayTR stores a card only during a customer-present payment, so the first period **is**
//! that payment: a Direct API payment with `store_card=1` of HighLevel's amount for HighLevel's transaction
//! (never the browser's), posted from the customer's browser straight to PayTR (the card never reaches this
//! service). Every check the sandbox's `/payments/page/subscribe` makes comes first (the same code:
//! `subscription_checkout::check`). HighLevel's terms then wait in `paytr_subscription_checkouts` until PayTR's
//! notification: on success the contact's `utoken` is kept, the new card (`ctoken`) found among the cards
//! PayTR lists, and the subscription created with its first period already paid (the charge bound to
//! HighLevel's transactionId), so `verify` with HighLevel's `subscriptionId` answers it and the renewals
//! charge the saved card off-session; on failure the checkout is marked failed and nothing is created.
//!
//! A price with a trial is refused for now (nothing would be due today, and PayTR cannot store a card without
//! a payment).

use super::charges::new_charge;
use super::paytr::Direct;
use super::subscription_checkout::{check, parse_request, SubscriptionCheckout};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::payments::{self, Charge, ChargeStatus};
use crate::store::paytr_subscription_checkouts::{self as pending, CREATED, FAILED, PENDING};
use crate::store::providers::{Gateway, ProviderRow};
use crate::store::{now_ms, paytr_customers};
use diesel::Connection;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

/// What the page posts to PayTR (the signed fields, to which the browser adds the card), or the answer of a
/// repeat whose subscription stands already.
pub enum Begun {
    Form {
        charge: Charge,
        action: String,
        fields: Vec<(&'static str, String)>,
    },
    Subscribed(Value),
}

/// Begins a PayTR subscription checkout: checks it against HighLevel's records, records the first period's
/// charge (pending, HighLevel's amount, bound to HighLevel's transaction and to the subscription to come)
/// with the terms, and signs the Direct API fields with `store_card=1`.
pub async fn begin(
    state: &AppState,
    provider: &ProviderRow,
    live: bool,
    c: SubscriptionCheckout,
    user_ip: &str,
) -> Result<Begun, ApiError> {
    if provider.gateway != Gateway::Paytr {
        return Err(ApiError::Validation(
            "this location's gateway is not PayTR".into(),
        ));
    }
    let checked = check(state, provider, live, &c).await?;
    if let Some(sub) = &checked.existing {
        // A repeat after PayTR's notification created it: answer it, charge nothing.
        let (location, txn) = (provider.location_id.clone(), sub.transaction_id.clone());
        let charge = state
            .db
            .run(move |x| payments::charge_by_transaction(x, &location, &txn))
            .await?;
        return Ok(Begun::Subscribed(json!({
            "chargeId": charge.as_ref().map(|c| c.id.clone()),
            "status": charge.as_ref().map(|c| c.status),
            "subscriptionId": sub.id,
            "subscriptionStatus": sub.status,
        })));
    }
    let cur = checked.rec.cur.code();
    if !super::paytr::CURRENCIES.contains(&cur) {
        return Err(ApiError::Validation(format!(
            "PayTR takes {} only; the subscription is in {cur}",
            super::paytr::CURRENCIES.join(", "),
        )));
    }
    let contact = checked.terms.contact.clone();
    // The request without its card: `paymentMethodId` is filled in once PayTR has stored the card.
    let terms = checked.request(&c, "")?;
    let parsed = parse_request(&terms, "")?;
    if parsed.terms()?.trial_days > 0 {
        return Err(ApiError::Validation(
            "a subscription with a trial cannot be bought through PayTR yet: PayTR stores a card only during a \
             payment, and nothing is due before the trial ends. Nothing was charged"
                .into(),
        ));
    }
    let gateway = super::paytr_for(state, provider, live)?;
    // The cards the contact has at PayTR already: the new one is the card PayTR lists that is not among them.
    let held =
        super::paytr_cards::customer_token(state, &provider.location_id, live, &contact).await?;
    let known: Vec<String> = match &held {
        Some((utoken, _)) => gateway
            .stored_cards(utoken)
            .await
            .map_err(|e| ApiError::GatewayFailed(format!("PayTR: {e}")))?
            .into_iter()
            .map(|c| c.ctoken)
            .collect(),
        None => Vec::new(),
    };
    let subscription_id = super::subscriptions::new_id();
    let mut new = new_charge(
        provider,
        live,
        &c.transaction_id,
        checked.rec.minor,
        cur.to_owned(),
    );
    new.contact_id = Some(contact.clone());
    new.subscription_id = Some(subscription_id.clone());
    new.description = Some(format!("Subscription {subscription_id} period 1"));
    new.gateway_ref = Some(super::paytr::merchant_oid(&new.id));
    let now = now_ms();
    let row = pending::SubscriptionCheckout {
        charge_id: new.id.clone(),
        location_id: provider.location_id.clone(),
        live_mode: live,
        transaction_id: c.transaction_id.clone(),
        ghl_subscription_id: c.subscription_id.clone(),
        subscription_id,
        contact_id: contact.clone(),
        terms: terms.to_string(),
        known_cards: json!(known).to_string(),
        status: PENDING.into(),
        failure: None,
        created_at: now,
        updated_at: now,
    };
    let (stored, ip, l, ct) = (
        new.clone(),
        user_ip.to_owned(),
        provider.location_id.clone(),
        contact.clone(),
    );
    let inserted = state
        .db
        .run(move |x| {
            x.transaction(|x| {
                let (_, inserted) = payments::insert_charge_once(x, &stored)?;
                if inserted {
                    pending::insert(x, &row)?;
                    paytr_customers::begin(x, &l, live, &ct, &ip, now)?;
                }
                Ok::<_, crate::db::DbError>(inserted)
            })
        })
        .await?;
    if !inserted {
        return Err(ApiError::TransactionUsed(format!(
            "transaction `{}` was already charged: it cannot pay the first period of subscription `{}`",
            c.transaction_id, c.subscription_id
        )));
    }
    // These fields go to the browser: none of the contact's details (as for a card setup).
    let customer = super::record::Customer::default();
    let email = customer.email_or_placeholder();
    let (ok_url, fail_url) = super::paytr_cards::result_urls(state);
    let mut fields = gateway.direct_fields(&Direct {
        charge: &new,
        user_ip,
        email: &email,
        product_name: "Subscription",
        customer: &customer,
        ok_url: &ok_url,
        fail_url: &fail_url,
        non_3d: false,
    });
    fields.push(("store_card", "1".into()));
    if let Some((utoken, _)) = held {
        fields.push(("utoken", utoken.expose_secret().to_owned()));
    }
    tracing::info!(location = %provider.location_id, charge = %new.id, "PayTR subscription checkout begun");
    Ok(Begun::Form {
        charge: new,
        action: gateway.direct_url(),
        fields,
    })
}

/// PayTR's notification of `charge` was handled (the charge settled, the `utoken` kept): a subscription
/// checkout waiting on it is finished. Success: the new card is found and the subscription created with its
/// first period paid. Failure: the checkout is marked failed, nothing is created. An error (PayTR's card list
/// unreachable, the database) is answered to PayTR, which repeats its notification.
pub async fn on_notification(
    state: &AppState,
    provider: &ProviderRow,
    charge: &Charge,
    succeeded: bool,
) -> Result<(), ApiError> {
    let id = charge.id.clone();
    let Some(row) = state.db.run(move |x| pending::by_charge(x, &id)).await? else {
        return Ok(());
    };
    if row.status != PENDING {
        return Ok(());
    }
    let mark = |status: &'static str, why: Option<String>| {
        let id = row.charge_id.clone();
        async move {
            state
                .db
                .run(move |x| pending::finish(x, &id, status, why.as_deref(), now_ms()))
                .await
        }
    };
    if !succeeded {
        mark(FAILED, Some("PayTR reported the payment failed".into())).await?;
        tracing::info!(charge = %row.charge_id, "PayTR subscription checkout failed: nothing created");
        return Ok(());
    }
    let known: Vec<String> = serde_json::from_str(&row.known_cards).unwrap_or_default();
    let cards = super::paytr_cards::list(state, provider, row.live_mode, &row.contact_id).await?;
    let Some(card) = cards.iter().rev().find(|m| {
        m.gateway_ref
            .as_ref()
            .is_some_and(|r| !known.iter().any(|k| k == r))
    }) else {
        // Paid, but PayTR lists no new card it charges without the customer: a person must look.
        tracing::error!(charge = %row.charge_id, "PayTR subscription checkout paid, but PayTR lists no new card to renew from: no subscription created");
        mark(
            FAILED,
            Some("PayTR stored no card that can be charged for the renewals".into()),
        )
        .await?;
        return Ok(());
    };
    let mut request: Value = serde_json::from_str(&row.terms).map_err(|e| {
        ApiError::Internal(format!("stored subscription terms are unreadable: {e}"))
    })?;
    request["paymentMethodId"] = json!(card.id);
    let request = parse_request(&request, "")?;
    super::subscriptions::create_subscription_as(
        state,
        provider,
        row.live_mode,
        &request,
        Some(row.subscription_id.clone()),
    )
    .await?;
    mark(CREATED, None).await?;
    tracing::info!(charge = %row.charge_id, subscription = %row.subscription_id, "PayTR subscription checkout: subscription created");
    Ok(())
}

/// What the page's poll reads: `pending` until PayTR's notification finished the checkout, then
/// `succeeded` (the subscription stands) or `failed` with a message.
pub async fn status(
    state: &AppState,
    provider: &ProviderRow,
    charge_id: &str,
) -> Result<Value, ApiError> {
    let (id, location) = (charge_id.to_owned(), provider.location_id.clone());
    let found = state
        .db
        .run(move |x| {
            Ok::<_, crate::db::DbError>(match pending::by_charge(x, &id)? {
                Some(r) if r.location_id == location => {
                    let charge = payments::charge(x, &location, &id)?;
                    Some((r, charge))
                }
                _ => None,
            })
        })
        .await?;
    let Some((row, charge)) = found else {
        return Err(ApiError::NotFound(format!(
            "no subscription checkout `{charge_id}` at this location"
        )));
    };
    let charge_failed = charge
        .as_ref()
        .is_some_and(|c| c.status == ChargeStatus::Failed);
    let (status, message) = match row.status.as_str() {
        CREATED => ("succeeded", None),
        FAILED => (
            "failed",
            charge
                .as_ref()
                .and_then(|c| c.failure.clone())
                .or(row.failure.clone()),
        ),
        _ if charge_failed => ("failed", charge.as_ref().and_then(|c| c.failure.clone())),
        _ => ("pending", None),
    };
    Ok(json!({
        "chargeId": row.charge_id,
        "status": status,
        "message": message,
        "subscriptionId": (row.status == CREATED).then_some(row.subscription_id),
    }))
}

/// Refunds, in full and once (the refund's id is derived from the charge), the first periods PayTR was paid for
/// whose checkout still failed (PayTR listed no new card to renew from, or the status query settled it without
/// the notification's `utoken`): the customer paid for a subscription that does not exist, and HighLevel was
/// never told of the payment. A minute after the checkout failed (PayTR refuses a refund with `007` until it has
/// our `OK`); checkouts failed within the last day. Answers how many were refunded.
pub async fn refund_paid_failures(state: &AppState, now: i64) -> usize {
    let since = now - 86_400_000;
    let before = now - super::paytr_cards::VERIFICATION_REFUND_AFTER_MS;
    let due = state
        .db
        .run(move |x| {
            let ids = pending::failed_since(x, since, 50)?;
            payments::unrefunded_among(x, &ids, before)
        })
        .await;
    let due = match due {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "PayTR subscription checkouts: cannot read the paid failures to refund");
            return 0;
        }
    };
    super::refunds::refund_each_in_full(
        state,
        due,
        "unsubscribed",
        "PayTR subscription checkout paid but failed: first period",
    )
    .await
}
