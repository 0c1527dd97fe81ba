//! The provider at run time: the payment page's charges, the queryUrl in HighLevel's shapes, payment events
//! delivered to HighLevel's custom-provider webhook (surviving a restart), all scoped to the key's location.

use crate::common::*;
use serde_json::{json, Value};
use service_common::both_backends;
use service_common::testing::Backend;
use std::time::Duration;

const FAST: &[(&str, &str)] = &[
    ("PAYMENT_EVENTS_INTERVAL_MS", "100"),
    ("SANDBOX_WAIT_MS", "300"),
];

async fn query(s: &Stack, body: Value) -> (u16, Value) {
    post(s, "/payments/query", None, body).await
}

async fn query_url_end_to_end(backend: Backend) {
    let s = stack_with(backend, Default::default(), FAST).await;
    install(&s, "Location", &["Loc1"]).await;
    let (pk, key) = provider(&s, "Loc1").await;

    // The page charges a card and keeps it on file; HighLevel verifies it and hears of the capture.
    let (status, paid) = page_charge(&s, &pk, "Loc1", "txn-1", "4242424242424242", true).await;
    assert_eq!(
        (status, paid["status"].as_str()),
        (200, Some("succeeded")),
        "{paid}"
    );
    let charge_id = paid["chargeId"].as_str().unwrap().to_owned();
    let (_, v) = query(
        &s,
        json!({"type": "verify", "apiKey": key, "transactionId": "txn-1", "chargeId": charge_id}),
    )
    .await;
    assert_eq!(v, json!({"success": true}));
    let (_, v) = query(&s, json!({"type": "verify", "apiKey": key, "transactionId": "another-order", "chargeId": charge_id})).await;
    assert_eq!(
        v,
        json!({"failed": true}),
        "a charge never pays another transaction"
    );
    wait_for("payment.captured", || {
        s.sim.stats().payment_events_received >= 1
    })
    .await;
    let events = s.sim.payment_events();
    assert_eq!(events[0]["event"], "payment.captured");
    assert_eq!(events[0]["chargeId"], charge_id.as_str());
    assert_eq!(events[0]["ghlTransactionId"], "txn-1");
    assert_eq!(events[0]["chargeSnapshot"]["amount"], 49.99);

    // The saved card, in HighLevel's shape; no card number is kept anywhere.
    let (status, methods) = query(&s, json!({"type": "list_payment_methods", "apiKey": key, "locationId": "Loc1", "contactId": "contact1"})).await;
    assert_eq!(status, 200);
    let m = &methods[0];
    assert_eq!(
        (
            m["type"].as_str(),
            m["title"].as_str(),
            m["expiry"].as_str()
        ),
        (Some("card"), Some("Visa"), Some("12/99"))
    );
    assert!(m["subTitle"].as_str().unwrap().ends_with("4242"));
    let method_id = m["id"].as_str().unwrap().to_owned();
    assert!(!methods.to_string().contains("4242424242424242"));

    // Off-session charge; a repeated transactionId is charged once.
    let charge = json!({"type": "charge_payment", "apiKey": key, "paymentMethodId": method_id, "contactId": "contact1",
        "transactionId": "txn-2", "chargeDescription": "Order 2", "amount": 20, "currency": "USD"});
    let (status, first) = query(&s, charge.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (first["success"].as_bool(), first["failed"].as_bool()),
        (Some(true), Some(false))
    );
    for k in ["chargeId", "message", "chargeSnapshot"] {
        assert!(first.get(k).is_some(), "{k} missing: {first}");
    }
    assert_eq!(first["chargeSnapshot"]["status"], "succeeded");
    let (_, again) = query(&s, charge).await;
    assert_eq!(
        again["chargeId"], first["chargeId"],
        "one charge per transactionId"
    );

    // Refunds never exceed the charge.
    let refund = |amount: f64| {
        query(
            &s,
            json!({"type": "refund", "apiKey": key, "transactionId": "txn-2", "amount": amount}),
        )
    };
    let (status, r) = refund(15.0).await;
    assert_eq!((status, r["success"].as_bool()), (200, Some(true)), "{r}");
    let (status, r) = refund(10.0).await;
    assert_eq!(
        (status, r["code"].as_str()),
        (422, Some("refund_refused")),
        "{r}"
    );
    let (status, r) = refund(5.0).await;
    assert_eq!(
        (status, r["totalRefunded"].as_f64()),
        (200, Some(20.0)),
        "{r}"
    );

    // Subscriptions.
    let (status, sub) = query(&s, json!({"type": "create_subscription", "apiKey": key, "paymentMethodId": method_id, "contactId": "contact1",
        "subscriptionId": "ghl-sub-x", "transactionId": "txn-sub", "amount": 9.99, "currency": "USD",
        "productDetails": [{"name": "Plan", "prices": [{"name": "Monthly", "type": "recurring", "amount": 9.99, "currency": "USD",
            "recurring": {"interval": "month", "intervalCount": 1}}]}]})).await;
    assert_eq!(
        (status, sub["success"].as_bool()),
        (200, Some(true)),
        "{sub}"
    );
    assert!(sub["subscription"]["subscriptionId"].is_string(), "{sub}");
    // HighLevel names the subscription by its own id.
    let sub_id = "ghl-sub-x";
    let (_, v) = query(
        &s,
        json!({"type": "verify", "apiKey": key, "subscriptionId": sub_id}),
    )
    .await;
    assert_eq!(v, json!({"success": true}));
    let (status, _) = query(
        &s,
        json!({"type": "cancel_subscription", "apiKey": key, "subscriptionId": sub_id}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, v) = query(
        &s,
        json!({"type": "verify", "apiKey": key, "subscriptionId": sub_id}),
    )
    .await;
    assert_eq!(v, json!({"failed": true}));
    wait_for("all events", || s.sim.stats().payment_events_received >= 5).await;
    let kinds: Vec<String> = s
        .sim
        .payment_events()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    for k in [
        "payment.captured",
        "subscription.active",
        "subscription.updated",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} not sent: {kinds:?}");
    }
    assert_eq!(s.sim.stats().payment_event_repeats, 0);

    // A declining card, and one that makes the customer wait.
    let (_, declined) = page_charge(&s, &pk, "Loc1", "txn-3", "4000000000000002", false).await;
    assert_eq!(declined["status"], "failed");
    let (_, v) = query(
        &s,
        json!({"type": "verify", "apiKey": key, "chargeId": declined["chargeId"]}),
    )
    .await;
    assert_eq!(v, json!({"failed": true}));
    let (_, waiting) = page_charge(&s, &pk, "Loc1", "txn-4", "4000000000003220", false).await;
    assert_eq!(waiting["status"], "pending");
    let (_, v) = query(
        &s,
        json!({"type": "verify", "apiKey": key, "chargeId": waiting["chargeId"]}),
    )
    .await;
    assert_eq!(v, json!({"success": false}), "still pending");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (_, v) = query(
        &s,
        json!({"type": "verify", "apiKey": key, "chargeId": waiting["chargeId"]}),
    )
    .await;
    assert_eq!(v, json!({"success": true}), "settled after the wait");
}

async fn keys_and_locations_are_walled(backend: Backend) {
    let s = stack_with(backend, Default::default(), FAST).await;
    install(&s, "Location", &["Loc1"]).await;
    install(&s, "Location", &["Loc2"]).await;
    let (pk1, key1) = provider(&s, "Loc1").await;
    let (pk2, key2) = provider(&s, "Loc2").await;
    let (_, paid) = page_charge(&s, &pk2, "Loc2", "txn-b", "4242424242424242", true).await;
    // Location A's key never reads location B's charges or cards.
    let (_, v) = query(
        &s,
        json!({"type": "verify", "apiKey": key1, "chargeId": paid["chargeId"]}),
    )
    .await;
    assert_eq!(v, json!({"success": false}));
    let (_, v) = query(
        &s,
        json!({"type": "verify", "apiKey": key2, "chargeId": paid["chargeId"]}),
    )
    .await;
    assert_eq!(v, json!({"success": true}));
    let (status, body) = query(&s, json!({"type": "list_payment_methods", "apiKey": key1, "locationId": "Loc2", "contactId": "contact1"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("location_not_allowed"))
    );
    let (_, mine) = query(
        &s,
        json!({"type": "list_payment_methods", "apiKey": key1, "contactId": "contact1"}),
    )
    .await;
    assert_eq!(mine, json!([]));
    let (status, body) = query(
        &s,
        json!({"type": "refund", "apiKey": key1, "transactionId": "txn-b", "amount": 1}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    // The page refuses another location's publishable key.
    let (status, body) = page_charge(&s, &pk2, "Loc1", "txn-x", "4242424242424242", false).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("provider_key_invalid"))
    );
    let _ = pk1;
    // Keys and types.
    for (body, want, code) in [
        (
            json!({"type": "verify", "chargeId": "x"}),
            401,
            "provider_key_invalid",
        ),
        (
            json!({"type": "verify", "apiKey": "sk_test_forged", "chargeId": "x"}),
            401,
            "provider_key_invalid",
        ),
        (
            json!({"type": "teleport", "apiKey": key1}),
            400,
            "invalid_request",
        ),
        (
            json!({"type": "charge_payment", "apiKey": key1, "transactionId": "t", "amount": "ten", "currency": "USD", "paymentMethodId": "pm"}),
            422,
            "validation_failed",
        ),
    ] {
        let (status, got) = query(&s, body).await;
        assert_eq!((status, got["code"].as_str()), (want, Some(code)), "{got}");
    }
    let (status, got) = send(
        client()
            .post(format!("{}/payments/query", s.api.base_url))
            .header("content-type", "application/json")
            .body("[1,2"),
    )
    .await;
    assert_eq!(
        (status, got["code"].as_str()),
        (400, Some("invalid_request"))
    );
}

/// An event whose delivery fails is kept; a new process on the same database delivers it, once.
async fn events_survive_a_restart(backend: Backend) {
    let s = stack_with(backend, Default::default(), FAST).await;
    install(&s, "Location", &["Loc1"]).await;
    let (pk, _) = provider(&s, "Loc1").await;
    sim_post(
        &s,
        "/_sim/faults",
        json!({"path_prefix": "/payments/custom-provider/webhook", "status": 503, "times": 1000}),
    )
    .await;
    let (_, paid) = page_charge(&s, &pk, "Loc1", "txn-r", "4242424242424242", false).await;
    assert_eq!(paid["status"], "succeeded");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.sim.stats().payment_events_received, 0);
    s.api.stop().await;
    send(client().delete(format!("{}/_sim/faults", s.sim.base_url))).await;
    let restarted = api_backend::spawn_app(api_settings(&s.sim, &s.oauth.base_url, &s.db, FAST))
        .await
        .unwrap();
    wait_for("the redelivered event", || {
        s.sim.stats().payment_events_received >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.sim.stats().payment_events_received, 1);
    assert_eq!(s.sim.stats().payment_event_repeats, 0);
    assert_eq!(s.sim.payment_events()[0]["chargeId"], paid["chargeId"]);
    let rows = restarted
        .state
        .db
        .run(api_backend::store::events::all)
        .await
        .unwrap();
    assert!(
        rows[0].delivered_at.is_some() && rows[0].attempts >= 2,
        "{rows:?}"
    );
}

both_backends!(
    query_url_end_to_end,
    keys_and_locations_are_walled,
    events_survive_a_restart
);
