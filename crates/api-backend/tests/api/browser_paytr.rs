//! The PayTR branch of the payment page in a real browser. HighLevel's checkout (the simulator's page, or a
//! host page) frames our page; our page frames what PayTR's get-token answer leads to, here the test's
//! stand-in for PayTR's card page (`paytr::fake_paytr`). Pressing its button plays PayTR: its server posts the
//! signed callback to our notification URL, then its frame goes to the `merchant_ok_url` or
//! `merchant_fail_url` our token request named, i.e. our own result page, inside PayTR's frame, inside our
//! page. Our page must end with `custom_element_success_response {chargeId}` or the error response.

use crate::browser::*;
use crate::common::*;
use crate::paytr::{fake_paytr, Fake, MERCHANT_ID, MERCHANT_KEY, MERCHANT_SALT};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A stack whose api-backend answers at its PUBLIC_BASE_URL (PayTR's callback and result pages, HighLevel's
/// queryUrl calls), with PayTR (the fake) as Loc1's gateway. Answers the fake and the test publishable key.
async fn paytr_stack(extra: &[(&str, &str)]) -> (Stack, Arc<Mutex<Fake>>, String) {
    let fake = Arc::new(Mutex::new(Fake::default()));
    let fake_url = fake_paytr(fake.clone()).await;
    let api_port = free_port().to_string();
    let api_url = format!("http://127.0.0.1:{api_port}");
    let keys = service_common::KeyRing::generate_entry("k1");
    let mut settings = vec![
        ("PORT", api_port.as_str()),
        ("PUBLIC_BASE_URL", api_url.as_str()),
        ("PAYTR_API_URL", fake_url.as_str()),
        ("TOKEN_ENCRYPTION_KEYS", keys.as_str()),
        ("PAYMENT_EVENTS_INTERVAL_MS", "100"),
    ];
    settings.extend_from_slice(extra);
    let s = stack_with(
        service_common::testing::Backend::Sqlite,
        Default::default(),
        &settings,
    )
    .await;
    fake.lock().unwrap().notification_base = Some(api_url);
    install(&s, "Location", &["Loc1"]).await;
    let (status, p) = put(&s, "/api/locations/Loc1/payments/provider", &service_token(), json!({
        "name": "PayTR", "description": "Cards via PayTR", "imageUrl": "https://x.test/paytr.png", "gateway": "paytr",
        "paytr": {"merchantId": MERCHANT_ID, "merchantKey": MERCHANT_KEY, "merchantSalt": MERCHANT_SALT}}))
    .await;
    assert_eq!(status, 200, "{p}");
    let pk = p["publishableKeys"]["test"].as_str().unwrap().to_owned();
    (s, fake, pk)
}

/// From the top window: into our page (frame 0), into PayTR's frame, press `button`, and back to the top.
async fn press_on_paytr(c: &Client, button: &str) {
    c.enter_frame(0).await.unwrap();
    let frame = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("iframe#paytr"))
        .await
        .expect("our page opens PayTR's checkout");
    frame.enter_frame().await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(button))
        .await
        .expect("PayTR's page shows its button")
        .click()
        .await
        .unwrap();
    c.enter_parent_frame().await.unwrap();
    c.enter_parent_frame().await.unwrap();
}

/// What PayTR's frame shows once PayTR sent it to the ok or fail URL: our result page, which loads there only
/// if our `frame-ancestors` lets PayTR's origin (and every window around it) frame it.
async fn paytr_frame_text(c: &Client) -> String {
    c.enter_frame(0).await.unwrap();
    c.find(Locator::Css("iframe#paytr"))
        .await
        .unwrap()
        .enter_frame()
        .await
        .unwrap();
    let mut text = String::new();
    for _ in 0..50 {
        text = match c
            .execute(
                "return location.href + ' | ' + (document.body ? document.body.innerText : '');",
                vec![],
            )
            .await
        {
            Ok(Value::String(t)) => t,
            other => format!("{other:?}"),
        };
        if text.contains("result=") && (text.contains("Payment") || text.contains("payment")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.enter_parent_frame().await.unwrap();
    c.enter_parent_frame().await.unwrap();
    text
}

fn get_tokens(fake: &Mutex<Fake>) -> usize {
    fake.lock()
        .unwrap()
        .requests
        .iter()
        .filter(|(op, _)| op == "api/get-token")
        .count()
}

/// HighLevel's checkout (the simulator's page on `localhost`, an origin no setting names) with PayTR: a paid
/// and a declined payment, each ending with the right message to HighLevel, `verify` agreeing, and HighLevel's
/// webhook receiver hearing `payment.captured` for the paid one only. A subscription checkout is refused with
/// a clear message: PayTR's iFrame API keeps no card to renew from.
#[actix_web::test]
async fn paytr_checkout_in_a_real_browser() {
    let (s, fake, _pk) = paytr_stack(&[]).await;
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let checkout = |mode: &str| {
        format!(
            "{}/_sim/payments/checkout?locationId=Loc1&amount=49.99&currency=USD&mode={mode}",
            sim_on_localhost(&s)
        )
    };

    // Paid: PayTR's callback says success, PayTR's frame goes to the ok URL.
    c.goto(&checkout("payment")).await.unwrap();
    press_on_paytr(&c, "#send").await;
    let paid = result_of(&c).await;
    assert_eq!(
        paid["message"]["type"], "custom_element_success_response",
        "{paid}"
    );
    let charge_id = paid["message"]["chargeId"].as_str().expect("a chargeId");
    assert_eq!(paid["verify"], json!({"success": true}), "{paid}");
    let (op, token_request) = fake.lock().unwrap().requests[0].clone();
    assert_eq!(op, "api/get-token");
    assert_eq!(
        (
            token_request["payment_amount"].as_str(),
            token_request["currency"].as_str()
        ),
        ("4999", "USD"),
        "HighLevel's amount in PayTR's unit"
    );
    assert!(token_request["merchant_ok_url"].ends_with("/payments/page?result=ok"));
    assert_eq!(
        fake.lock().unwrap().callback_answers,
        vec![(200, "OK".to_owned())],
        "our callback answered PayTR the plain text OK"
    );
    let shown = paytr_frame_text(&c).await;
    assert!(
        shown.contains("result=ok") && shown.contains("Payment received"),
        "our ok page loaded inside PayTR's frame: {shown}"
    );
    let txn = paid["transactionId"].as_str().unwrap().to_owned();
    let e = event_for(&s, &txn)
        .await
        .expect("HighLevel heard of the payment");
    assert_eq!(
        (
            e["event"].as_str(),
            e["chargeId"].as_str(),
            e["_missing"].clone()
        ),
        (Some("payment.captured"), Some(charge_id), json!([])),
        "{e}"
    );
    assert_eq!(e["chargeSnapshot"]["amount"], json!(49.99), "{e}");

    // Declined: PayTR's callback says failed, PayTR's frame goes to the fail URL.
    c.goto(&checkout("payment")).await.unwrap();
    press_on_paytr(&c, "#decline").await;
    let declined = result_of(&c).await;
    assert_eq!(
        declined["message"]["type"], "custom_element_error_response",
        "{declined}"
    );
    assert!(
        declined["message"]["error"]["description"]
            .as_str()
            .unwrap()
            .contains("Kart limiti yetersiz"),
        "PayTR's reason reaches HighLevel: {declined}"
    );
    assert_eq!(declined["verify"], json!({"failed": true}), "{declined}");
    let shown = paytr_frame_text(&c).await;
    assert!(
        shown.contains("result=fail") && shown.contains("did not go through"),
        "our fail page loaded inside PayTR's frame: {shown}"
    );
    let txn = declined["transactionId"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        !s.sim
            .payment_events()
            .iter()
            .any(|e| e["ghlTransactionId"] == txn.as_str()),
        "nothing is reported captured for a declined payment"
    );
    assert_eq!(fake.lock().unwrap().callback_answers.len(), 2);

    // A subscription through PayTR's iFrame API: refused, clearly, before PayTR is asked for anything.
    let asked = get_tokens(&fake);
    c.goto(&checkout("subscription")).await.unwrap();
    let refused = result_of(&c).await;
    assert_eq!(
        refused["message"]["type"], "custom_element_error_response",
        "{refused}"
    );
    let why = refused["message"]["error"]["description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(why.contains("ubscriptions are not available"), "{why}");
    c.enter_frame(0).await.unwrap();
    let shown = c
        .find(Locator::Css("#error"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(shown, why);
    assert!(!c
        .find(Locator::Css("#card-form"))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap());
    c.enter_parent_frame().await.unwrap();
    assert_eq!(
        get_tokens(&fake),
        asked,
        "PayTR was not asked for a checkout"
    );
    c.close().await.unwrap();
}

/// With PAYMENT_PARENT_ORIGINS restricting who frames the page, PayTR's result pages still load: they sit in
/// PayTR's frame, inside our own page, inside HighLevel's, and every one of those windows must be allowed.
#[actix_web::test]
async fn paytr_result_pages_load_with_restricted_parents() {
    let host_port = free_port();
    let host_origin = format!("http://127.0.0.1:{host_port}");
    let (s, fake, pk) = paytr_stack(&[("PAYMENT_PARENT_ORIGINS", &host_origin)]).await;
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let host = host_server(host_port, s.api.base_url.clone()).await;
    checkout_at_sim(&s, "Loc1", "txn-paytr-restricted", 49.99, "USD").await;
    c.goto(&format!(
        "{host_origin}/host?pk={pk}&loc=Loc1&txn=txn-paytr-restricted"
    ))
    .await
    .unwrap();
    wait_message(&c, "custom_provider_ready").await;
    press_on_paytr(&c, "#send").await;
    let ok = wait_message(&c, "custom_element_success_response").await;
    let shown = paytr_frame_text(&c).await;
    assert!(
        shown.contains("result=ok") && shown.contains("Payment received"),
        "our ok page loaded inside PayTR's frame: {shown}"
    );
    let verify = sim_post(&s, "/_sim/payments/query", json!({"locationId": "Loc1", "live": false,
        "payload": {"type": "verify", "chargeId": ok["chargeId"], "transactionId": "txn-paytr-restricted"}}))
    .await;
    assert_eq!(verify["body"], json!({"success": true}), "{verify}");
    assert_eq!(
        fake.lock().unwrap().callback_answers,
        vec![(200, "OK".to_owned())]
    );
    c.close().await.unwrap();
    host.stop(false).await;
}
