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
async fn subscription_events(s: &Stack, ghl_sub: &str, n: usize) -> Vec<Value> {
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

async fn hl_query(s: &Stack, payload: Value) -> Value {
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

/// The page's subscription API takes its terms from HighLevel only: a price HighLevel does not have, a
/// one-time price, an amount that is not HighLevel's, or a gateway that keeps no card is a clear 422 and
/// nothing is charged or created.
async fn subscribe_takes_highlevel_terms_only(backend: service_common::testing::Backend) {
    let keys = service_common::KeyRing::generate_entry("k1");
    let s = stack_with(
        backend,
        Default::default(),
        &[("TOKEN_ENCRYPTION_KEYS", &keys)],
    )
    .await;
    install(&s, "Location", &["Loc1"]).await;
    install(&s, "Location", &["Loc2"]).await;
    let (pk, api_key) = provider(&s, "Loc1").await;
    let t = session(&s, Some("Loc1")).await;
    let (status, product) = post(
        &s,
        "/api/locations/Loc1/products",
        Some(&t),
        json!({"name": "Plan", "productType": "SERVICE"}),
    )
    .await;
    assert_eq!(status, 201, "{product}");
    let product = product["id"].as_str().unwrap().to_owned();
    let mut prices = Vec::new();
    for body in [
        json!({"name": "Once", "type": "one_time", "currency": "USD", "amount": 49.99}),
        json!({"name": "Daily", "type": "recurring", "currency": "USD", "amount": 49.99,
            "recurring": {"interval": "day", "intervalCount": 1}}),
    ] {
        let (status, price) = post(
            &s,
            &format!("/api/locations/Loc1/products/{product}/prices"),
            Some(&t),
            body,
        )
        .await;
        assert_eq!(status, 201, "{price}");
        prices.push(price["id"].as_str().unwrap().to_owned());
    }
    // HighLevel's checkout for contact1 (whose card the subscription keeps).
    let out = sim_post(
        &s,
        "/_sim/payments/orders",
        json!({"locationId": "Loc1", "transactionId": "txn-sub-1", "amount": 49.99, "currency": "USD",
            "contactId": "contact1"}),
    )
    .await;
    assert_eq!(out["transactionId"], "txn-sub-1", "{out}");
    let subscribe = |location: &str, pk: &str, price: &str, amount: f64| {
        post(
            &s,
            "/payments/page/subscribe",
            None,
            json!({"publishableKey": pk, "locationId": location, "transactionId": "txn-sub-1",
                "subscriptionId": "ghl-sub-page-1", "productId": product, "priceId": price, "amount": amount,
                "currency": "usd", "contactId": "contact1",
                "card": {"number": "4242424242424242", "expMonth": 12, "expYear": 2099, "cvc": "123"}}),
        )
    };
    let (status, body) = subscribe("Loc1", &pk, &prices[0], 49.99).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed")),
        "{body}"
    );
    assert!(body["detail"].as_str().unwrap().contains("not recurring"));
    let (status, body) = subscribe("Loc1", &pk, "no-such-price", 49.99).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed")),
        "{body}"
    );
    let (status, body) = subscribe("Loc1", &pk, &prices[1], 1.0).await;
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
    let (status, body) = subscribe(
        "Loc2",
        p2["publishableKeys"]["test"].as_str().unwrap(),
        &prices[1],
        49.99,
    )
    .await;
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
    let (status, body) = subscribe("Loc1", &pk, &prices[1], 49.99).await;
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
    let (status, again) = subscribe("Loc1", &pk, &prices[1], 49.99).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (&again["chargeId"], &again["subscriptionId"]),
        (&body["chargeId"], &body["subscriptionId"])
    );
    let (_, cards) = query(json!({"type": "list_payment_methods", "contactId": "contact1"})).await;
    assert_eq!(cards.as_array().map(Vec::len), Some(1), "{cards}");
}

service_common::both_backends!(subscribe_takes_highlevel_terms_only);
