//! `mode: "subscription"` on the payment page, in a real browser, with the sandbox gateway. HighLevel's
//! checkout (the simulator's page) sends `payment_initiate_props` with `mode: "subscription"`, its own
//! `subscriptionId` and the recurring product's `productDetails{productId, priceId}`; after the page's success
//! it calls `verify` with that `subscriptionId`. The page keeps the card for the renewals and charges the first
//! period; the schedule is HighLevel's price, read by the server.

use crate::browser::*;
use crate::common::*;
use fantoccini::Locator;
use serde_json::{json, Value};
use std::time::Duration;

const DAY_MS: i64 = 86_400_000;

/// The payment events HighLevel received for its subscription `ghl_sub`, once there are `n`.
pub(crate) async fn subscription_events(s: &Stack, ghl_sub: &str, n: usize) -> Vec<Value> {
    let of = || -> Vec<Value> {
        s.sim
            .payment_events()
            .into_iter()
            .filter(|e| e["ghlSubscriptionId"] == ghl_sub)
            .collect()
    };
    for _ in 0..100 {
        if of().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = of();
    assert!(got.len() >= n, "HighLevel received {got:?}, not {n} events");
    got
}

pub(crate) async fn hl_query(s: &Stack, payload: Value) -> Value {
    let out = sim_post(
        s,
        "/_sim/payments/query",
        json!({"locationId": "Loc1", "live": false, "payload": payload}),
    )
    .await;
    assert_eq!(out["status"], 200, "{out}");
    out["body"].clone()
}

#[actix_web::test]
async fn a_subscription_bought_on_the_payment_page() {
    let s = checkout_stack().await;
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let checkout = format!(
        "{}/_sim/payments/checkout?locationId=Loc1&amount=49.99&currency=USD&mode=subscription&interval=day&totalCycles=3",
        sim_on_localhost(&s)
    );
    c.goto(&checkout).await.unwrap();
    wait_message(&c, "custom_provider_ready").await;
    // The form says what happens: the card is kept (no choice to offer), the button subscribes.
    c.enter_frame(0).await.unwrap();
    let button = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#card-form:not([hidden]) #pay"))
        .await
        .expect("the card form shows");
    assert_eq!(button.text().await.unwrap(), "Subscribe");
    assert!(!c
        .find(Locator::Css("#save-row"))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap());
    c.enter_parent_frame().await.unwrap();
    pay(&c, "4242424242424242").await;
    let result = result_of(&c).await;
    assert_eq!(
        result["message"]["type"], "custom_element_success_response",
        "{result}"
    );
    let charge_id = result["message"]["chargeId"]
        .as_str()
        .expect("the first period's charge")
        .to_owned();
    let ghl_sub = result["subscriptionId"].as_str().unwrap().to_owned();
    let txn = result["transactionId"].as_str().unwrap().to_owned();
    // HighLevel's verify with its own subscriptionId finds the subscription.
    assert_eq!(result["verify"], json!({"success": true}), "{result}");

    // HighLevel hears that it started and that its first period was charged, with every required field.
    let events = subscription_events(&s, &ghl_sub, 2).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["subscription.active", "subscription.charged"]);
    for e in &events {
        assert_eq!(e["_missing"], json!([]), "{e}");
    }
    assert_eq!(
        (
            events[1]["chargeId"].as_str(),
            events[1]["ghlTransactionId"].as_str()
        ),
        (Some(charge_id.as_str()), Some(txn.as_str()))
    );
    assert_eq!(events[1]["chargeSnapshot"]["amount"], json!(49.99));
    assert_eq!(events[1]["subscriptionSnapshot"]["status"], "active");

    // The card is on file for the contact: HighLevel can list it, and its own create_subscription for the same
    // subscription (with that card) answers this subscription and charges nothing more.
    let cards = hl_query(
        &s,
        json!({"type": "list_payment_methods", "locationId": "Loc1", "contactId": "sim-contact"}),
    )
    .await;
    let cards = cards.as_array().expect("a bare array").clone();
    assert_eq!(cards.len(), 1, "{cards:?}");
    assert!(cards[0]["subTitle"].as_str().unwrap().ends_with("4242"));
    let again = hl_query(&s, json!({"type": "create_subscription", "locationId": "Loc1", "contactId": "sim-contact",
        "paymentMethodId": cards[0]["id"], "subscriptionId": ghl_sub, "transactionId": txn, "currency": "USD",
        "amount": 49.99, "recurringAmount": 49.99,
        "productDetails": [{"prices": [{"recurring": {"interval": "day", "intervalCount": 1}, "totalCycles": 3}]}]}))
    .await;
    assert_eq!(
        again["transaction"]["chargeId"],
        charge_id.as_str(),
        "{again}"
    );

    // The renewals charge the kept card on HighLevel's schedule (daily): the next period a day later.
    let report = api_backend::payments::renewals::run_due(
        &s.api.state,
        chrono::Utc::now().timestamp_millis() + DAY_MS + 60_000,
    )
    .await
    .unwrap();
    assert_eq!(report.charged, 1, "{report:?}");
    let events = subscription_events(&s, &ghl_sub, 3).await;
    assert_eq!(events[2]["event"], "subscription.charged");
    assert_eq!(events[2]["subscriptionSnapshot"]["status"], "active");

    // A card that declines: the error message to HighLevel, and verify says failed.
    c.goto(&checkout).await.unwrap();
    wait_message(&c, "custom_provider_ready").await;
    pay(&c, "4000000000000002").await;
    let declined = result_of(&c).await;
    assert_eq!(
        declined["message"]["type"], "custom_element_error_response",
        "{declined}"
    );
    assert!(
        declined["message"]["error"]["description"]
            .as_str()
            .unwrap()
            .contains("declined"),
        "{declined}"
    );
    assert_eq!(declined["verify"], json!({"failed": true}), "{declined}");
    c.close().await.unwrap();
}

/// A price of `product` created at HighLevel (the simulator) with the Location token; `extra` adds HighLevel's
/// own fields (`recurring`, `trialPeriod`, `totalCycles`). Answers its id.
pub(crate) async fn sim_price(
    s: &Stack,
    installation: &str,
    product: &str,
    extra: Value,
) -> String {
    let t = token_for(s, installation, Some("Loc1")).await;
    let mut body = json!({"name": "Plan", "currency": "USD", "locationId": "Loc1"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, price) = hl(
        s,
        reqwest::Method::POST,
        &format!("/products/{product}/price"),
        t["access_token"].as_str().unwrap(),
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{price}");
    price["_id"].as_str().unwrap().to_owned()
}

/// A product of Loc1 at HighLevel; answers its id.
pub(crate) async fn sim_product(s: &Stack, installation: &str) -> String {
    let t = token_for(s, installation, Some("Loc1")).await;
    let (status, product) = hl(
        s,
        reqwest::Method::POST,
        "/products/",
        t["access_token"].as_str().unwrap(),
        Some(json!({"name": "Plan", "productType": "SERVICE", "locationId": "Loc1"})),
    )
    .await;
    assert_eq!(status, 201, "{product}");
    product["_id"].as_str().unwrap().to_owned()
}

/// HighLevel's checkout of a subscription: an order, its transaction `txn` and the subscription `sub` of
/// `price` for `contact`, recorded at HighLevel as its checkout does.
pub(crate) async fn subscription_at_sim(
    s: &Stack,
    txn: &str,
    sub: &str,
    product: &str,
    price: &str,
    amount: f64,
    contact: &str,
) {
    let out = sim_post(
        s,
        "/_sim/payments/orders",
        json!({"locationId": "Loc1", "transactionId": txn, "amount": amount, "currency": "USD",
            "contactId": contact, "recurring": {"productId": product, "priceId": price, "subscriptionId": sub}}),
    )
    .await;
    assert_eq!(
        (
            out["transactionId"].as_str(),
            out["subscriptionId"].as_str()
        ),
        (Some(txn), Some(sub)),
        "{out}"
    );
}

fn subscribe_body(pk: &str, txn: &str, sub: &str, extra: Value) -> Value {
    let mut body = json!({"publishableKey": pk, "locationId": "Loc1", "transactionId": txn,
        "subscriptionId": sub, "amount": 49.99, "currency": "usd",
        "card": {"number": "4242424242424242", "expMonth": 12, "expYear": 2099, "cvc": "123"}});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// The page's subscription API takes its terms from HighLevel only: a subscription HighLevel does not have,
/// one whose price is not recurring, an amount that is not HighLevel's, or a gateway that keeps no card is a
/// clear 422 and nothing is charged or created.
async fn subscribe_takes_highlevel_terms_only(backend: service_common::testing::Backend) {
    let keys = service_common::KeyRing::generate_entry("k1");
    let s = stack_with(
        backend,
        Default::default(),
        &[("TOKEN_ENCRYPTION_KEYS", &keys)],
    )
    .await;
    let inst = install(&s, "Location", &["Loc1"]).await;
    install(&s, "Location", &["Loc2"]).await;
    let (pk, api_key) = provider(&s, "Loc1").await;
    let product = sim_product(&s, &inst).await;
    let once = sim_price(
        &s,
        &inst,
        &product,
        json!({"type": "one_time", "amount": 49.99}),
    )
    .await;
    let daily = sim_price(
        &s,
        &inst,
        &product,
        json!({"type": "recurring", "amount": 49.99,
        "recurring": {"interval": "day", "intervalCount": 1}}),
    )
    .await;
    // HighLevel's checkouts for contact1 (whose card the subscription keeps): one of a one-time price (no
    // subscription's), one of the daily price.
    subscription_at_sim(
        &s,
        "txn-sub-0",
        "ghl-sub-once",
        &product,
        &once,
        49.99,
        "contact1",
    )
    .await;
    subscription_at_sim(
        &s,
        "txn-sub-1",
        "ghl-sub-page-1",
        &product,
        &daily,
        49.99,
        "contact1",
    )
    .await;
    let subscribe = |body: Value| post(&s, "/payments/page/subscribe", None, body);
    let (status, body) =
        subscribe(subscribe_body(&pk, "txn-sub-0", "ghl-sub-once", json!({}))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed")),
        "{body}"
    );
    assert!(body["detail"].as_str().unwrap().contains("not recurring"));
    let (status, body) =
        subscribe(subscribe_body(&pk, "txn-sub-1", "no-such-sub", json!({}))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("transaction_unknown")),
        "{body}"
    );
    let (status, body) = subscribe(subscribe_body(
        &pk,
        "txn-sub-1",
        "ghl-sub-page-1",
        json!({"amount": 1.0}),
    ))
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("amount_mismatch")),
        "{body}"
    );
    let (status, p2) = put(&s, "/api/locations/Loc2/payments/provider", &service_token(), json!({
        "name": "PayTR", "description": "Cards via PayTR", "imageUrl": "https://x.test/paytr.png", "gateway": "paytr",
        "paytr": {"merchantId": "1", "merchantKey": "k", "merchantSalt": "s"}}))
    .await;
    assert_eq!(status, 200, "{p2}");
    let mut other = subscribe_body(
        p2["publishableKeys"]["test"].as_str().unwrap(),
        "txn-sub-1",
        "ghl-sub-page-1",
        json!({}),
    );
    other["locationId"] = json!("Loc2");
    let (status, body) = subscribe(other).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed")),
        "{body}"
    );
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("subscriptions are not available"));
    // Nothing was created, charged or kept.
    let query = |payload: Value| {
        let mut payload = payload;
        payload["apiKey"] = json!(api_key);
        post(&s, "/payments/query", None, payload)
    };
    assert_eq!(
        query(json!({"type": "verify", "subscriptionId": "ghl-sub-page-1"}))
            .await
            .1,
        json!({"success": false})
    );
    assert_eq!(
        query(json!({"type": "verify", "transactionId": "txn-sub-1"}))
            .await
            .1,
        json!({"success": false})
    );
    let (_, cards) = query(json!({"type": "list_payment_methods", "contactId": "contact1"})).await;
    assert_eq!(cards, json!([]));

    // HighLevel's own terms: the subscription starts, its first period is charged.
    let ok = subscribe_body(
        &pk,
        "txn-sub-1",
        "ghl-sub-page-1",
        json!({"productId": product, "priceId": daily, "contactId": "contact1"}),
    );
    let (status, body) = subscribe(ok.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["subscriptionStatus"].as_str()),
        (Some("succeeded"), Some("active")),
        "{body}"
    );
    assert_eq!(
        query(json!({"type": "verify", "subscriptionId": "ghl-sub-page-1"}))
            .await
            .1,
        json!({"success": true})
    );
    let (_, cards) = query(json!({"type": "list_payment_methods", "contactId": "contact1"})).await;
    assert_eq!(cards.as_array().map(Vec::len), Some(1), "{cards}");
    // A repeat answers the same subscription and charge, and keeps no second card.
    let (status, again) = subscribe(ok).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (&again["chargeId"], &again["subscriptionId"]),
        (&body["chargeId"], &body["subscriptionId"])
    );
    let (_, cards) = query(json!({"type": "list_payment_methods", "contactId": "contact1"})).await;
    assert_eq!(cards.as_array().map(Vec::len), Some(1), "{cards}");
}

/// The browser names HighLevel's subscription only; the terms are HighLevel's record of it. A page that names
/// another price (one with a trial, which would defer the charge, or a cheaper one) or another contact is
/// refused and nothing is charged; the charge and the schedule follow HighLevel's record, whatever the page
/// leaves out.
async fn subscribe_follows_highlevels_subscription(backend: service_common::testing::Backend) {
    let keys = service_common::KeyRing::generate_entry("k1");
    let s = stack_with(
        backend,
        Default::default(),
        &[("TOKEN_ENCRYPTION_KEYS", &keys)],
    )
    .await;
    let inst = install(&s, "Location", &["Loc1"]).await;
    let (pk, api_key) = provider(&s, "Loc1").await;
    let product = sim_product(&s, &inst).await;
    let weekly = sim_price(
        &s,
        &inst,
        &product,
        json!({"type": "recurring", "amount": 49.99,
        "recurring": {"interval": "week", "intervalCount": 1}, "totalCycles": 4}),
    )
    .await;
    let trial = sim_price(
        &s,
        &inst,
        &product,
        json!({"type": "recurring", "amount": 49.99,
        "recurring": {"interval": "week", "intervalCount": 1}, "trialPeriod": 30}),
    )
    .await;
    let cheap = sim_price(
        &s,
        &inst,
        &product,
        json!({"type": "recurring", "amount": 1.0,
        "recurring": {"interval": "year", "intervalCount": 1}}),
    )
    .await;
    subscription_at_sim(
        &s,
        "txn-w-1",
        "ghl-sub-w",
        &product,
        &weekly,
        49.99,
        "contact1",
    )
    .await;
    let subscribe = |extra: Value| {
        post(
            &s,
            "/payments/page/subscribe",
            None,
            subscribe_body(&pk, "txn-w-1", "ghl-sub-w", extra),
        )
    };
    for extra in [
        json!({"productId": product, "priceId": trial}),
        json!({"productId": product, "priceId": cheap}),
        json!({"priceId": cheap}),
        json!({"productId": "another-product"}),
        json!({"contactId": "contact-mallory"}),
    ] {
        let (status, body) = subscribe(extra.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("validation_failed")),
            "{extra}: {body}"
        );
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("nothing was charged"),
            "{body}"
        );
    }
    // A transaction of another checkout (same amount, same contact) does not pay this subscription's first
    // period: HighLevel's subscription was bought in another order.
    checkout_at_sim(&s, "Loc1", "txn-other", 49.99, "USD").await;
    let (status, body) = post(
        &s,
        "/payments/page/subscribe",
        None,
        subscribe_body(&pk, "txn-other", "ghl-sub-w", json!({})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed")),
        "{body}"
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("was bought in order"),
        "{body}"
    );
    let query = |payload: Value| {
        let mut payload = payload;
        payload["apiKey"] = json!(api_key);
        post(&s, "/payments/query", None, payload)
    };
    assert_eq!(
        query(json!({"type": "verify", "subscriptionId": "ghl-sub-w"}))
            .await
            .1,
        json!({"success": false}),
        "nothing was created"
    );
    let (_, cards) = query(json!({"type": "list_payment_methods", "contactId": "contact1"})).await;
    assert_eq!(cards, json!([]), "no card was kept");
    let (_, cards) =
        query(json!({"type": "list_payment_methods", "contactId": "contact-mallory"})).await;
    assert_eq!(cards, json!([]), "no card was kept");

    // The page sends no price at all: HighLevel's record names it. The first period is charged now (no trial),
    // the renewals follow HighLevel's weekly price, four cycles, for HighLevel's contact.
    let (status, body) = subscribe(json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["subscriptionStatus"].as_str()),
        (Some("succeeded"), Some("active")),
        "{body}"
    );
    let sub = s
        .api
        .state
        .db
        .run(|c| api_backend::store::subscriptions::find(c, "Loc1", "ghl-sub-w"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            sub.amount_minor,
            sub.interval_unit.as_str(),
            sub.interval_count,
            sub.total_cycles,
            sub.trial_end,
            sub.cycles_paid,
            sub.contact_id.as_deref()
        ),
        (4999, "week", 1, Some(4), None, 1, Some("contact1"))
    );
    let (_, cards) = query(json!({"type": "list_payment_methods", "contactId": "contact1"})).await;
    assert_eq!(cards.as_array().map(Vec::len), Some(1), "{cards}");
}

/// A transaction pays one first period, once. One HighLevel's checkout recorded for the subscription's order
/// but already paid as a one-time payment, or already used by another subscription, is refused with 409
/// `transaction_already_used` and nothing is charged or created.
async fn subscribe_refuses_a_used_transaction(backend: service_common::testing::Backend) {
    let keys = service_common::KeyRing::generate_entry("k1");
    let s = stack_with(
        backend,
        Default::default(),
        &[("TOKEN_ENCRYPTION_KEYS", &keys)],
    )
    .await;
    let inst = install(&s, "Location", &["Loc1"]).await;
    let (pk, api_key) = provider(&s, "Loc1").await;
    let product = sim_product(&s, &inst).await;
    let daily = sim_price(
        &s,
        &inst,
        &product,
        json!({"type": "recurring", "amount": 49.99,
        "recurring": {"interval": "day", "intervalCount": 1}}),
    )
    .await;
    subscription_at_sim(
        &s,
        "txn-paid",
        "ghl-sub-reuse",
        &product,
        &daily,
        49.99,
        "contact1",
    )
    .await;
    // What the page's props name (HighLevel's own ids, so only the transaction's history can refuse it).
    let named = json!({"productId": product, "priceId": daily, "contactId": "contact1"});
    // The transaction is paid first as a one-time payment.
    let (status, paid) = post(&s, "/payments/page/charge", None, json!({
        "publishableKey": pk, "locationId": "Loc1", "transactionId": "txn-paid", "amount": 49.99, "currency": "USD",
        "contactId": "contact1", "card": {"number": "4242424242424242", "expMonth": 12, "expYear": 2099, "cvc": "123"}}))
    .await;
    assert_eq!(
        (status, paid["status"].as_str()),
        (200, Some("succeeded")),
        "{paid}"
    );
    let (status, body) = post(
        &s,
        "/payments/page/subscribe",
        None,
        subscribe_body(&pk, "txn-paid", "ghl-sub-reuse", named.clone()),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("transaction_already_used")),
        "{body}"
    );
    let query = |payload: Value| {
        let mut payload = payload;
        payload["apiKey"] = json!(api_key);
        post(&s, "/payments/query", None, payload)
    };
    assert_eq!(
        query(json!({"type": "verify", "subscriptionId": "ghl-sub-reuse"}))
            .await
            .1,
        json!({"success": false}),
        "no subscription was started"
    );
    let (_, cards) = query(json!({"type": "list_payment_methods", "contactId": "contact1"})).await;
    assert_eq!(cards, json!([]), "no card was kept");

    // A transaction that started one subscription does not start a second one (HighLevel recorded both
    // subscriptions from the same order).
    let out = sim_post(
        &s,
        "/_sim/payments/orders",
        json!({"locationId": "Loc1", "transactionId": "txn-first", "amount": 49.99, "currency": "USD",
            "contactId": "contact1", "recurring": {"productId": product, "priceId": daily, "subscriptionId": "ghl-sub-first"}}),
    )
    .await;
    let out = sim_post(
        &s,
        "/_sim/payments/subscriptions",
        json!({"orderId": out["orderId"], "productId": product, "priceId": daily, "subscriptionId": "ghl-sub-second"}),
    )
    .await;
    assert_eq!(out["subscriptionId"], "ghl-sub-second", "{out}");
    let (status, first) = post(
        &s,
        "/payments/page/subscribe",
        None,
        subscribe_body(&pk, "txn-first", "ghl-sub-first", named.clone()),
    )
    .await;
    assert_eq!(
        (status, first["subscriptionStatus"].as_str()),
        (200, Some("active")),
        "{first}"
    );
    let (status, body) = post(
        &s,
        "/payments/page/subscribe",
        None,
        subscribe_body(&pk, "txn-first", "ghl-sub-second", named.clone()),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("transaction_already_used")),
        "{body}"
    );
    assert_eq!(
        query(json!({"type": "verify", "subscriptionId": "ghl-sub-second"}))
            .await
            .1,
        json!({"success": false})
    );
    // The one-time payment stays one; the first subscription's period is the only charge of `txn-first`.
    let paid = s
        .api
        .state
        .db
        .run(|c| api_backend::store::payments::charge_by_transaction(c, "Loc1", "txn-paid"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(paid.subscription_id, None);
    let second = s
        .api
        .state
        .db
        .run(|c| api_backend::store::subscriptions::find(c, "Loc1", "ghl-sub-second"))
        .await
        .unwrap();
    assert!(second.is_none());
}

service_common::both_backends!(
    subscribe_takes_highlevel_terms_only,
    subscribe_follows_highlevels_subscription,
    subscribe_refuses_a_used_transaction
);
