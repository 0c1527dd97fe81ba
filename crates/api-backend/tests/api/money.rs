//! Money, written from HighLevel's payments.json and the custom-provider guide: what is charged is HighLevel's
//! recorded amount (never the browser's), in the currency's ISO 4217 minor unit; the sandbox never settles live
//! payments; a captured payment and its event are written together; a refund asked twice refunds once.

use crate::common::*;
use api_backend::payments::keys::{api_key, Mode};
use api_backend::store::payments::ChargeStatus;
use serde_json::{json, Value};
use service_common::both_backends;
use service_common::testing::Backend;
use std::time::Duration;

const FAST: &[(&str, &str)] = &[
    ("PAYMENT_EVENTS_INTERVAL_MS", "100"),
    ("SANDBOX_WAIT_MS", "300"),
];

fn charge_body(pk: &str, txn: &str, amount: f64, currency: &str) -> Value {
    json!({
        "publishableKey": pk, "locationId": "Loc1", "transactionId": txn, "amount": amount, "currency": currency,
        "contactId": "contact1", "saveCard": true,
        "card": {"number": "4242424242424242", "expMonth": 12, "expYear": 2099, "cvc": "123"}
    })
}

async fn stored_charge(s: &Stack, txn: &str) -> Option<api_backend::store::payments::Charge> {
    let txn = txn.to_owned();
    s.api
        .state
        .db
        .run(move |c| api_backend::store::payments::charge_by_transaction(c, "Loc1", &txn))
        .await
        .unwrap()
}

async fn events_in_outbox(s: &Stack) -> usize {
    s.api
        .state
        .db
        .run(|c| {
            use diesel::prelude::*;
            api_backend::db::schema::payment_events::table
                .count()
                .get_result::<i64>(c)
                .map_err(Into::into)
        })
        .await
        .unwrap() as usize
}

async fn the_amount_charged_is_highlevels(backend: Backend) {
    let s = stack_with(backend, Default::default(), FAST).await;
    install(&s, "Location", &["Loc1"]).await;
    let (pk, key) = provider(&s, "Loc1").await;
    checkout_at_sim(&s, "Loc1", "txn-a", 49.99, "USD").await;
    // The browser says 0.01 (or another currency): refused, nothing recorded, nothing charged.
    for (amount, currency) in [(0.01, "USD"), (49.99, "EUR")] {
        let (status, p) = post(
            &s,
            "/payments/page/charge",
            None,
            charge_body(&pk, "txn-a", amount, currency),
        )
        .await;
        assert_eq!(
            (status, p["code"].as_str()),
            (422, Some("amount_mismatch")),
            "{p}"
        );
        assert!(p["detail"].as_str().unwrap().contains("49.99"), "{p}");
    }
    assert_eq!(stored_charge(&s, "txn-a").await, None);
    // A transaction HighLevel never recorded for this location.
    let (status, p) = post(
        &s,
        "/payments/page/charge",
        None,
        charge_body(&pk, "txn-invented", 5.0, "USD"),
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (422, Some("transaction_unknown")),
        "{p}"
    );
    checkout_at_sim(&s, "Loc2", "txn-elsewhere", 5.0, "USD").await;
    let (status, p) = post(
        &s,
        "/payments/page/charge",
        None,
        charge_body(&pk, "txn-elsewhere", 5.0, "USD"),
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (422, Some("transaction_unknown")),
        "{p}"
    );
    // Another (cheaper) order's amount never pays a transaction HighLevel does not know.
    let cheap = sim_post(
        &s,
        "/_sim/payments/orders",
        json!({"locationId": "Loc1", "amount": 0.5, "currency": "USD"}),
    )
    .await;
    let mut body = charge_body(&pk, "txn-not-recorded", 0.5, "USD");
    body["orderId"] = cheap["orderId"].clone();
    let (status, p) = post(&s, "/payments/page/charge", None, body).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (422, Some("transaction_unknown")),
        "{p}"
    );
    assert_eq!(stored_charge(&s, "txn-not-recorded").await, None);
    // After a declined card the customer may try another for the same transaction.
    checkout_at_sim(&s, "Loc1", "txn-retry", 12.0, "USD").await;
    let mut declined = charge_body(&pk, "txn-retry", 12.0, "USD");
    declined["card"]["number"] = json!("4000000000000002");
    let (_, first) = post(&s, "/payments/page/charge", None, declined).await;
    assert_eq!(first["status"], "failed", "{first}");
    let (_, second) = post(
        &s,
        "/payments/page/charge",
        None,
        charge_body(&pk, "txn-retry", 12.0, "USD"),
    )
    .await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(
        stored_charge(&s, "txn-retry").await.unwrap().status,
        ChargeStatus::Succeeded
    );
    // HighLevel's figure is charged, in minor units of each currency's ISO 4217 exponent.
    checkout_at_sim(&s, "Loc1", "txn-jpy", 500.0, "JPY").await;
    checkout_at_sim(&s, "Loc1", "txn-kwd", 1.25, "KWD").await;
    for (txn, amount, currency, minor) in [
        ("txn-a", 49.99, "usd", 4999),
        ("txn-jpy", 500.0, "JPY", 500),
        ("txn-kwd", 1.25, "KWD", 1250),
    ] {
        let (status, paid) = post(
            &s,
            "/payments/page/charge",
            None,
            charge_body(&pk, txn, amount, currency),
        )
        .await;
        assert_eq!(
            (status, paid["status"].as_str()),
            (200, Some("succeeded")),
            "{paid}"
        );
        let c = stored_charge(&s, txn).await.unwrap();
        assert_eq!(
            (c.amount_minor, c.currency.as_str()),
            (minor, currency.to_ascii_uppercase().as_str())
        );
    }
    for _ in 0..50 {
        if s.sim.stats().payment_events_received >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let jpy = s
        .sim
        .payment_events()
        .into_iter()
        .find(|e| e["ghlTransactionId"] == "txn-jpy")
        .expect("payment.captured for the JPY charge");
    assert_eq!(
        jpy["chargeSnapshot"]["amount"],
        json!(500.0),
        "major units: 500 yen"
    );
    // queryUrl amounts go through the same conversion; an unknown currency is a 422 problem.
    let (_, methods) = post(&s, "/payments/query", None, json!({"type": "list_payment_methods", "apiKey": key, "locationId": "Loc1", "contactId": "contact1"})).await;
    let method = methods[0]["id"].as_str().unwrap().to_owned();
    let pay = |txn: &str, amount: Value, currency: &str| {
        json!({"type": "charge_payment", "apiKey": key, "paymentMethodId": method, "contactId": "contact1",
            "transactionId": txn, "amount": amount, "currency": currency})
    };
    let (status, p) = post(&s, "/payments/query", None, pay("q-xyz", json!(10), "XYZ")).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (422, Some("validation_failed")),
        "{p}"
    );
    let (status, p) = post(
        &s,
        "/payments/query",
        None,
        pay("q-jpy-frac", json!(1.5), "JPY"),
    )
    .await;
    assert_eq!(status, 422, "half a yen: {p}");
    let (status, p) = post(
        &s,
        "/payments/query",
        None,
        pay("q-jpy", json!(1200), "JPY"),
    )
    .await;
    assert_eq!(
        (status, p["chargeSnapshot"]["amount"].as_f64()),
        (200, Some(1200.0)),
        "{p}"
    );
    assert_eq!(stored_charge(&s, "q-jpy").await.unwrap().amount_minor, 1200);
}

async fn the_sandbox_never_settles_live_payments(backend: Backend) {
    let s = stack_with(backend, Default::default(), FAST).await;
    install(&s, "Location", &["Loc1"]).await;
    let (status, out) = put(&s, "/api/locations/Loc1/payments/provider", &service_token(),
        json!({"name": "Sandbox", "description": "Test payments", "imageUrl": "https://x.test/p.png", "gateway": "sandbox"})).await;
    assert_eq!(status, 200, "{out}");
    let live_pk = out["publishableKeys"]["live"].as_str().unwrap().to_owned();
    let row = s
        .api
        .state
        .db
        .run(|c| api_backend::store::providers::get(c, "Loc1"))
        .await
        .unwrap()
        .unwrap();
    let live_key = api_key(
        &SERVICE_SECRET.to_owned().into(),
        "Loc1",
        Mode::Live,
        &row.api_key_salt,
    );
    let (status, p) = post(
        &s,
        "/payments/page/check",
        None,
        json!({"publishableKey": live_pk, "locationId": "Loc1"}),
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (422, Some("gateway_mode_unsupported")),
        "{p}"
    );
    sim_post(&s, "/_sim/payments/orders", json!({"locationId": "Loc1", "transactionId": "live-1", "amount": 49.99, "currency": "USD", "liveMode": true})).await;
    let (status, p) = post(
        &s,
        "/payments/page/charge",
        None,
        charge_body(&live_pk, "live-1", 49.99, "USD"),
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (422, Some("gateway_mode_unsupported")),
        "{p}"
    );
    let (status, p) = post(
        &s,
        "/payments/query",
        None,
        json!({"type": "charge_payment", "apiKey": live_key, "paymentMethodId": "pm_x",
        "contactId": "contact1", "transactionId": "live-2", "amount": 10, "currency": "USD"}),
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (422, Some("gateway_mode_unsupported")),
        "{p}"
    );
    assert_eq!(stored_charge(&s, "live-1").await, None);
    assert_eq!(stored_charge(&s, "live-2").await, None);
}

/// The outbox refuses writes (a trigger), as if the connection dropped between settling and queueing: the
/// charge and its `payment.captured` are both there or both missing, never a captured payment HighLevel does
/// not hear of. Once the outbox accepts writes again, both appear.
async fn a_captured_payment_is_never_lost(backend: Backend) {
    let s = stack_with(backend, Default::default(), FAST).await;
    install(&s, "Location", &["Loc1"]).await;
    let (pk, _) = provider(&s, "Loc1").await;
    let (create, drop): (&[&str], &[&str]) = match backend {
        Backend::Sqlite => (
            &["CREATE TRIGGER refuse_event BEFORE INSERT ON payment_events BEGIN SELECT RAISE(ABORT, 'drill: outbox down'); END"],
            &["DROP TRIGGER refuse_event"],
        ),
        Backend::Postgres => (
            &[
                "CREATE FUNCTION refuse_event() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'drill: outbox down'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER refuse_event BEFORE INSERT ON payment_events FOR EACH ROW EXECUTE FUNCTION refuse_event()",
            ],
            &["DROP TRIGGER refuse_event ON payment_events", "DROP FUNCTION refuse_event()"],
        ),
    };
    let st = &s;
    let sql = |stmts: &'static [&'static str]| async move {
        st.api
            .state
            .db
            .run(move |c| {
                use diesel::RunQueryDsl;
                for q in stmts {
                    diesel::sql_query(*q).execute(c)?;
                }
                Ok(())
            })
            .await
            .unwrap()
    };
    sql(create).await;
    let (status, answer) =
        page_charge(&s, &pk, "Loc1", "txn-lost", "4242424242424242", false).await;
    assert!(
        status >= 500,
        "the page is told it did not complete: {status} {answer}"
    );
    let charge = stored_charge(&s, "txn-lost").await;
    let captured = charge
        .as_ref()
        .is_some_and(|c| c.status == ChargeStatus::Succeeded);
    assert_eq!(
        (captured, events_in_outbox(&s).await),
        (false, 0),
        "both or neither: {charge:?}"
    );
    sql(drop).await;
    for _ in 0..50 {
        if events_in_outbox(&s).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let charge = stored_charge(&s, "txn-lost").await.unwrap();
    assert_eq!(
        (charge.status.as_str(), events_in_outbox(&s).await),
        ("succeeded", 1)
    );
}

async fn a_refund_asked_twice_refunds_once(backend: Backend) {
    let s = stack_with(backend, Default::default(), FAST).await;
    install(&s, "Location", &["Loc1"]).await;
    let (pk, key) = provider(&s, "Loc1").await;
    let (status, paid) = page_charge(&s, &pk, "Loc1", "txn-r", "4242424242424242", false).await;
    assert_eq!(
        (status, paid["status"].as_str()),
        (200, Some("succeeded")),
        "{paid}"
    );
    let refund = |extra: Value| {
        let mut b =
            json!({"type": "refund", "apiKey": key, "transactionId": "txn-r", "amount": 10});
        if let (Some(b), Some(e)) = (b.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        post(&s, "/payments/query", None, b)
    };
    // HighLevel's retry of the same refund (same body).
    let (s1, first) = refund(json!({})).await;
    let (s2, again) = refund(json!({})).await;
    assert_eq!((s1, s2), (200, 200), "{first} {again}");
    assert_eq!(again["refundId"], first["refundId"], "{again}");
    assert_eq!(again["totalRefunded"].as_f64(), Some(10.0));
    // Refunds HighLevel names apart are two refunds, each once.
    let (_, a) = refund(json!({"refundId": "hl-r1"})).await;
    let (_, b) = refund(json!({"refundId": "hl-r2"})).await;
    let (_, a2) = refund(json!({"refundId": "hl-r1"})).await;
    assert_ne!(a["refundId"], b["refundId"]);
    assert_eq!(a2["refundId"], a["refundId"]);
    assert_eq!(a2["totalRefunded"].as_f64(), Some(30.0), "{a2}");
    let charge = stored_charge(&s, "txn-r").await.unwrap();
    let refunds = s
        .api
        .state
        .db
        .run(move |c| api_backend::store::payments::refunds_of(c, &charge.id))
        .await
        .unwrap();
    assert_eq!(refunds.len(), 3, "{refunds:?}");
}

/// Saving cards is open to whoever holds the page's publishable key: a contact keeps at most 20 at a location.
async fn cards_on_file_are_bounded(backend: Backend) {
    let s = stack_with(backend, Default::default(), FAST).await;
    install(&s, "Location", &["Loc1"]).await;
    let (pk, _) = provider(&s, "Loc1").await;
    let save = || {
        post(
            &s,
            "/payments/page/setup",
            None,
            json!({"publishableKey": pk, "locationId": "Loc1", "contactId": "c-many",
            "card": {"number": "4242424242424242", "expMonth": 12, "expYear": 2099, "cvc": "123"}}),
        )
    };
    for i in 0..api_backend::store::payments::MAX_METHODS_PER_CONTACT {
        let (status, body) = save().await;
        assert_eq!(status, 200, "card {i}: {body}");
    }
    let (status, body) = save().await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed")),
        "{body}"
    );
}

both_backends!(
    cards_on_file_are_bounded,
    the_amount_charged_is_highlevels,
    the_sandbox_never_settles_live_payments,
    a_captured_payment_is_never_lost,
    a_refund_asked_twice_refunds_once,
);

/// An install whose grant lacks `payments/transactions.readonly` and `payments/orders.readonly` (the page
/// reads HighLevel's record with them): the doctor names each missing scope.
#[actix_web::test]
async fn the_doctor_names_the_payment_read_scopes() {
    let s = stack(Backend::Sqlite).await;
    let c = client();
    let res = c
        .get(format!(
            "{}/oauth/install?user_type=Location&sim_user_type=Location&sim_location_id=Loc1",
            s.oauth.base_url
        ))
        .send()
        .await
        .unwrap();
    let mut consent = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let pairs: Vec<(String, String)> = consent
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "scope" {
                v.split(' ')
                    .filter(|s| {
                        !s.starts_with("payments/transactions") && !s.starts_with("payments/orders")
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    consent.query_pairs_mut().clear().extend_pairs(pairs);
    let res = c.get(consent.as_str()).send().await.unwrap();
    let back = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let res = c
        .get(format!(
            "{}/oauth/callback?{}",
            s.oauth.base_url,
            back.query().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let (status, body) = get(&s, "/api/locations/Loc1/diagnostics", &service_token()).await;
    assert_eq!((status, body["ok"].as_bool()), (200, Some(false)), "{body}");
    let problems = body["problems"].to_string();
    for scope in ["payments/transactions.readonly", "payments/orders.readonly"] {
        assert!(problems.contains(scope), "{scope} not named: {problems}");
    }
}
