//! Subscriptions as HighLevel creates them (`create_subscription` through the simulator's queryUrl call) and as
//! this service renews them: `api-backend subscriptions run-due --now` stepped across days, the events
//! HighLevel receives, declines retried then `unpaid`, and two processes renewing at once.

use crate::common::*;
use serde_json::{json, Value};
use service_common::both_backends;
use service_common::testing::{Backend, TestDb};
use std::process::Command;
use std::time::Duration;

const DAY: i64 = 86_400_000;

/// What HighLevel sends for a subscription checkout (the custom payment provider guide's fields).
fn create_body(
    ghl_sub: &str,
    txn: &str,
    method: &str,
    trial_days: u32,
    total_cycles: Option<u32>,
) -> Value {
    let mut price = json!({"_id": "price1", "name": "Daily", "type": "recurring", "currency": "USD", "amount": 10,
        "recurring": {"interval": "day", "intervalCount": 1}, "trialPeriod": trial_days});
    if let Some(n) = total_cycles {
        price["totalCycles"] = json!(n);
    }
    json!({"type": "create_subscription", "locationId": "Loc1", "contactId": "contact1", "paymentMethodId": method,
        "subscriptionId": ghl_sub, "transactionId": txn, "startDate": chrono::Utc::now().format("%Y-%m-%d").to_string(),
        "currency": "USD", "amount": 12.5, "recurringAmount": 10,
        "productDetails": [{"_id": "p1", "name": "Plan", "qty": 1, "productId": "prod1", "priceId": "price1", "prices": [price]}]})
}

/// HighLevel's queryUrl call, made by the simulator with the connected test api key.
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

/// A card saved for contact1 the way the page's setup mode saves it.
async fn saved_card(s: &Stack, pk: &str, number: &str) -> String {
    let (status, out) = post(s, "/payments/page/setup", None, json!({"publishableKey": pk, "locationId": "Loc1",
        "contactId": "contact1", "card": {"number": number, "expMonth": 12, "expYear": 2099, "cvc": "123"}}))
    .await;
    assert_eq!(status, 200, "{out}");
    out["paymentMethodId"].as_str().unwrap().to_owned()
}

fn bin(s: &Stack, db_url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_api-backend"));
    for (k, _) in std::env::vars() {
        if k.starts_with("HIGHLEVEL_") || k.starts_with("SUBSCRIPTION") || k == "CONFIG_FILE" {
            c.env_remove(k);
        }
    }
    c.envs(replica_env(
        s,
        &[
            ("DATABASE_URL", db_url),
            ("RUST_LOG", "warn"),
            ("LOG_FORMAT", "json"),
        ],
    ));
    c
}

/// `api-backend subscriptions run-due --now <at>` as an operator runs it; its JSON report.
fn run_due_bin(s: &Stack, at: i64) -> Value {
    let out = bin(s, &s.db.url)
        .args(["subscriptions", "run-due", "--now", &rfc3339(at)])
        .output()
        .unwrap();
    report_of(&out)
}

fn report_of(out: &std::process::Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "run-due failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = text.lines().rev().find(|l| l.contains("renewals")).unwrap();
    serde_json::from_str::<Value>(last).unwrap()["renewals"].clone()
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339()
}

/// The events HighLevel received about its subscription `ghl_sub`, in arrival order.
fn events_of(s: &Stack, ghl_sub: &str) -> Vec<Value> {
    s.sim
        .payment_events()
        .into_iter()
        .filter(|e| e["ghlSubscriptionId"] == ghl_sub)
        .collect()
}

async fn wait_for_events(s: &Stack, ghl_sub: &str, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let got = events_of(s, ghl_sub);
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "HighLevel received {:?}, not {n} events",
        events_of(s, ghl_sub)
    );
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

const FAST: &[(&str, &str)] = &[
    ("PAYMENT_EVENTS_INTERVAL_MS", "100"),
    // Only the test's passes renew (at the test's clock).
    ("SUBSCRIPTIONS_INTERVAL", "0s"),
    ("SUBSCRIPTION_RETRY_DELAYS", "1d,2d"),
];

/// A stack whose api-backend is reachable at its PUBLIC_BASE_URL: the simulator calls its queryUrl.
async fn sub_stack(backend: Backend) -> Stack {
    sub_stack_on(TestDb::new(backend), TestDb::new(backend)).await
}

async fn sub_stack_on(oauth_db: TestDb, db: TestDb) -> Stack {
    let port = crate::browser::free_port().to_string();
    let url = format!("http://127.0.0.1:{port}");
    let mut extra = FAST.to_vec();
    extra.extend([("PORT", port.as_str()), ("PUBLIC_BASE_URL", url.as_str())]);
    stack_on(oauth_db, db, Default::default(), &extra).await
}

/// A 7-day trial, a daily interval and `totalCycles` 3: stepping the CLI's clock across 10 days (each day
/// twice) charges exactly three periods after the trial, then the subscription expires; HighLevel hears each
/// step in order with every field its guide requires.
async fn trial_then_three_daily_periods(backend: Backend) {
    let s = sub_stack(backend).await;
    install(&s, "Location", &["Loc1"]).await;
    let (pk, _) = provider(&s, "Loc1").await;
    assert_eq!(
        sim_count(&s, "PUT /payments/custom-provider/capabilities"),
        1
    );
    let connected = send(client().get(format!(
        "{}/_sim/payments/connect?locationId=Loc1",
        s.sim.base_url
    )))
    .await
    .1;
    assert_eq!(
        connected["supportsSubscriptionSchedule"], true,
        "the sandbox renews subscriptions: {connected}"
    );
    let card = saved_card(&s, &pk, "4242424242424242").await;
    let start = chrono::Utc::now().timestamp_millis();
    let created = hl_query(&s, create_body("ghl-sub-1", "ghl-txn-1", &card, 7, Some(3))).await;
    assert_eq!(
        (created["success"].as_bool(), created["failed"].as_bool()),
        (Some(true), Some(false)),
        "{created}"
    );
    assert!(
        created.get("transaction").is_none(),
        "nothing is charged during the trial: {created}"
    );
    let snap = &created["subscription"]["subscriptionSnapshot"];
    assert_eq!(snap["status"], "trialing", "{created}");
    assert_eq!(snap["id"], created["subscription"]["subscriptionId"]);
    let trial_end = snap["trialEnd"].as_i64().unwrap() * 1000;
    assert!(
        (trial_end - (start + 7 * DAY)).abs() < 60_000,
        "trialEnd is 7 days on: {snap}"
    );
    assert_eq!(snap["nextCharge"], snap["trialEnd"]);
    // HighLevel's repeat of the call answers the same subscription.
    let again = hl_query(&s, create_body("ghl-sub-1", "ghl-txn-1", &card, 7, Some(3))).await;
    assert_eq!(
        again["subscription"]["subscriptionId"],
        created["subscription"]["subscriptionId"]
    );
    let v = hl_query(&s, json!({"type": "verify", "subscriptionId": "ghl-sub-1"})).await;
    assert_eq!(v, json!({"success": true}));

    let mut charged = 0;
    for day in 1..=10 {
        for _ in 0..2 {
            let r = run_due_bin(&s, start + day * DAY + 60_000);
            charged += r["charged"].as_u64().unwrap();
            assert_eq!(r["errors"], 0, "{r}");
        }
        assert_eq!(
            charged,
            (day - 6).clamp(0, 3) as u64,
            "periods charged by day {day}"
        );
    }
    let events = wait_for_events(&s, "ghl-sub-1", 6).await;
    assert_eq!(
        kinds(&events),
        [
            "subscription.trialing",
            "subscription.active",
            "subscription.charged",
            "subscription.charged",
            "subscription.charged",
            "subscription.updated"
        ]
    );
    for e in &events {
        assert_eq!(e["_missing"], json!([]), "{e}");
    }
    let amounts: Vec<f64> = events
        .iter()
        .filter(|e| e["event"] == "subscription.charged")
        .map(|e| e["chargeSnapshot"]["amount"].as_f64().unwrap())
        .collect();
    assert_eq!(
        amounts,
        [12.5, 10.0, 10.0],
        "the first period is `amount`, then `recurringAmount`"
    );
    let charge_ids: std::collections::HashSet<&str> = events
        .iter()
        .filter_map(|e| e["chargeId"].as_str())
        .collect();
    assert_eq!(charge_ids.len(), 3);
    assert_eq!(
        events[2]["ghlTransactionId"], "ghl-txn-1",
        "the first period pays HighLevel's transaction"
    );
    assert_eq!(events[5]["subscriptionSnapshot"]["status"], "expired");
    assert!(events[4]["subscriptionSnapshot"]["nextCharge"].is_null());
    assert_eq!(s.sim.stats().payment_event_repeats, 0);

    // The operator's view.
    let out = bin(&s, &s.db.url)
        .args(["subscriptions", "list", "--location", "Loc1", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            listed[0]["status"].as_str(),
            listed[0]["cyclesPaid"].as_i64()
        ),
        (Some("expired"), Some(3)),
        "{listed}"
    );
}

/// A renewal whose card declines is tried again on SUBSCRIPTION_RETRY_DELAYS (1d, 2d here), nothing happens
/// between tries, and after the last the subscription is `unpaid` and HighLevel hears it.
async fn a_declined_renewal_is_retried_then_unpaid(backend: Backend) {
    let s = sub_stack(backend).await;
    install(&s, "Location", &["Loc1"]).await;
    let (pk, _) = provider(&s, "Loc1").await;
    let card = saved_card(&s, &pk, "4000000000000002").await;
    let start = chrono::Utc::now().timestamp_millis();
    let created = hl_query(&s, create_body("ghl-sub-2", "ghl-txn-2", &card, 1, None)).await;
    assert_eq!(
        created["subscription"]["subscriptionSnapshot"]["status"], "trialing",
        "{created}"
    );
    let pass = |at: i64| {
        let state = s.api.state.clone();
        async move {
            api_backend::payments::renewals::run_due(&state, at)
                .await
                .unwrap()
        }
    };
    let r = pass(start + DAY / 2).await;
    assert_eq!(
        r,
        Default::default(),
        "nothing is due during the trial: {r:?}"
    );
    let r = pass(start + DAY + 60_000).await;
    assert_eq!((r.declined, r.unpaid), (1, 0), "{r:?}");
    let r = pass(start + DAY + 3_600_000).await;
    assert_eq!(
        r,
        Default::default(),
        "the retry waits for its delay: {r:?}"
    );
    let r = pass(start + 2 * DAY + 60_000).await;
    assert_eq!((r.declined, r.unpaid), (1, 0), "first retry: {r:?}");
    let r = pass(start + 3 * DAY + 60_000).await;
    assert_eq!(
        (r.declined, r.unpaid),
        (1, 1),
        "the last retry fails: {r:?}"
    );
    let r = pass(start + 30 * DAY).await;
    assert_eq!(
        r,
        Default::default(),
        "an unpaid subscription is left alone"
    );
    let v = hl_query(&s, json!({"type": "verify", "subscriptionId": "ghl-sub-2"})).await;
    assert_eq!(v, json!({"failed": true}));
    let events = wait_for_events(&s, "ghl-sub-2", 2).await;
    assert_eq!(
        kinds(&events),
        ["subscription.trialing", "subscription.updated"]
    );
    assert_eq!(events[1]["subscriptionSnapshot"]["status"], "unpaid");
    assert_eq!(events[1]["_missing"], json!([]));
    // No declined attempt is reported as a charge.
    assert!(s
        .sim
        .payment_events()
        .iter()
        .all(|e| e["event"] != "payment.captured"));
}

/// `cancel_subscription` (with HighLevel's id) stops renewals.
async fn a_canceled_subscription_is_not_renewed(backend: Backend) {
    let s = sub_stack(backend).await;
    install(&s, "Location", &["Loc1"]).await;
    let (pk, _) = provider(&s, "Loc1").await;
    let card = saved_card(&s, &pk, "4242424242424242").await;
    let start = chrono::Utc::now().timestamp_millis();
    let created = hl_query(&s, create_body("ghl-sub-3", "ghl-txn-3", &card, 0, None)).await;
    assert_eq!(created["success"], true, "{created}");
    assert_eq!(
        created["transaction"]["chargeSnapshot"]["status"], "succeeded",
        "without a trial the first period is charged at once: {created}"
    );
    assert_eq!(created["transaction"]["chargeSnapshot"]["amount"], 12.5);
    assert_eq!(
        created["subscription"]["subscriptionSnapshot"]["status"],
        "active"
    );
    let canceled = hl_query(
        &s,
        json!({"type": "cancel_subscription", "subscriptionId": "ghl-sub-3"}),
    )
    .await;
    assert_eq!(canceled["status"], "canceled", "{canceled}");
    let r = api_backend::payments::renewals::run_due(&s.api.state, start + 5 * DAY)
        .await
        .unwrap();
    assert_eq!(r, Default::default());
    let events = wait_for_events(&s, "ghl-sub-3", 3).await;
    assert_eq!(
        kinds(&events),
        [
            "subscription.active",
            "subscription.charged",
            "subscription.updated"
        ]
    );
    assert_eq!(events[2]["subscriptionSnapshot"]["status"], "canceled");
}

/// Each event carries the subscription's status of its moment, so HighLevel must hear them in the order they
/// happened: when `subscription.trialing` is refused and waits for its retry, the `subscription.active` and
/// `subscription.charged` of the first period wait behind it instead of overtaking it.
async fn a_retried_event_keeps_its_place(backend: Backend) {
    let s = sub_stack(backend).await;
    install(&s, "Location", &["Loc1"]).await;
    let (pk, _) = provider(&s, "Loc1").await;
    let card = saved_card(&s, &pk, "4242424242424242").await;
    sim_post(
        &s,
        "/_sim/faults",
        json!({"path_prefix": "/payments/custom-provider/webhook", "status": 503, "times": 1000}),
    )
    .await;
    let start = chrono::Utc::now().timestamp_millis();
    let created = hl_query(&s, create_body("ghl-sub-o", "ghl-txn-o", &card, 1, None)).await;
    assert_eq!(
        created["subscription"]["subscriptionSnapshot"]["status"], "trialing",
        "{created}"
    );
    // Refused twice: its next try is 2 s or more away.
    wait_for("two refused deliveries of subscription.trialing", || {
        s.sim.stats().faults_injected >= 2
    })
    .await;
    send(client().delete(format!("{}/_sim/faults", s.sim.base_url))).await;
    let r = api_backend::payments::renewals::run_due(&s.api.state, start + DAY + 60_000)
        .await
        .unwrap();
    assert_eq!(r.charged, 1, "{r:?}");
    api_backend::payments::events::run_once(&s.api.state).await;
    let events = wait_for_events(&s, "ghl-sub-o", 3).await;
    assert_eq!(
        kinds(&events),
        [
            "subscription.trialing",
            "subscription.active",
            "subscription.charged"
        ]
    );
    assert_eq!(s.sim.stats().payment_event_repeats, 0);
}

both_backends!(
    a_retried_event_keeps_its_place,
    trial_then_three_daily_periods,
    a_declined_renewal_is_retried_then_unpaid,
    a_canceled_subscription_is_not_renewed
);

/// Two api-backend processes (the real binary) running `subscriptions run-due` at the same moment on one
/// PostgreSQL database charge each period once.
#[actix_web::test]
async fn two_processes_renew_each_period_once() {
    let s = sub_stack_on(
        TestDb::new(Backend::Postgres),
        TestDb::new(Backend::Postgres),
    )
    .await;
    install(&s, "Location", &["Loc1"]).await;
    let (pk, _) = provider(&s, "Loc1").await;
    let card = saved_card(&s, &pk, "4242424242424242").await;
    let start = chrono::Utc::now().timestamp_millis();
    const N: usize = 24;
    for i in 0..N {
        let created = hl_query(
            &s,
            create_body(
                &format!("ghl-par-{i}"),
                &format!("txn-par-{i}"),
                &card,
                0,
                None,
            ),
        )
        .await;
        assert_eq!(created["success"], true, "{created}");
    }
    for day in 1..=2 {
        let at = rfc3339(start + day * DAY + 60_000);
        let spawn = || {
            bin(&s, &s.db.url)
                .args(["subscriptions", "run-due", "--now", &at])
                .env("SUBSCRIPTIONS_CONCURRENCY", "8")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let (ra, rb) = (report_of(&a), report_of(&b));
        assert_eq!(
            ra["charged"].as_u64().unwrap() + rb["charged"].as_u64().unwrap(),
            N as u64,
            "day {day}: {ra} {rb}"
        );
    }
    // Each subscription: the first period at creation and two renewals, each charged and reported once.
    for _ in 0..100 {
        let charged = s
            .sim
            .payment_events()
            .iter()
            .filter(|e| e["event"] == "subscription.charged")
            .count();
        if charged >= 3 * N {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..N {
        let ids: Vec<String> = events_of(&s, &format!("ghl-par-{i}"))
            .iter()
            .filter(|e| e["event"] == "subscription.charged")
            .map(|e| e["chargeId"].as_str().unwrap().to_owned())
            .collect();
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(
            (ids.len(), distinct.len()),
            (3, 3),
            "subscription {i}: {ids:?}"
        );
    }
    assert_eq!(s.sim.stats().payment_event_repeats, 0);
}
