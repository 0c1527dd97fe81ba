//! The PayTR gateway against a small fake of PayTR's endpoints, with every signature checked by an
//! independent implementation (`openssl dgst -sha256 -hmac`).

use crate::common::*;
use actix_web::{web, App, HttpResponse, HttpServer};
use api_backend::payments::paytr::{callback_hash, sign};
use serde_json::{json, Value};
use service_common::both_backends;
use service_common::testing::Backend;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) const MERCHANT_ID: &str = "123456";
pub(crate) const MERCHANT_KEY: &str = "paytr-merchant-key-XYZ";
pub(crate) const MERCHANT_SALT: &str = "paytr-merchant-salt-ABC";

/// base64(HMAC-SHA256(key, msg)), computed by openssl.
pub(crate) fn openssl_hmac(key: &str, msg: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("openssl dgst -sha256 -hmac \"$KEY\" -binary | base64")
        .env("KEY", key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(msg.as_bytes())
        .unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn signing_matches_openssl() {
    let (k, s) = (
        MERCHANT_KEY.to_owned().into(),
        MERCHANT_SALT.to_owned().into(),
    );
    let fields = [
        "123456",
        "1.2.3.4",
        "ORDER1",
        "a@b.test",
        "4999",
        "W1siT3JkZXIiLCI0OS45OSIsMV1d",
        "1",
        "0",
        "USD",
        "1",
    ];
    assert_eq!(
        sign(&k, &s, &fields),
        openssl_hmac(MERCHANT_KEY, &format!("{}{MERCHANT_SALT}", fields.concat()))
    );
    assert_eq!(
        sign(&k, &s, &["123456", "ORDER1", "10.50"]),
        openssl_hmac(MERCHANT_KEY, &format!("123456ORDER110.50{MERCHANT_SALT}"))
    );
    assert_eq!(
        callback_hash(&k, &s, "ORDER1", "success", "4999"),
        openssl_hmac(MERCHANT_KEY, &format!("ORDER1{MERCHANT_SALT}success4999"))
    );
}

#[derive(Default)]
pub(crate) struct Fake {
    pub(crate) requests: Vec<(String, HashMap<String, String>)>,
    paid: Vec<String>,
    /// Refunds are carried out but their answer is lost (a 502 with no JSON).
    lose_refund_answers: bool,
    /// `reference_no`s of refunds carried out, as the status query's `returns[]` lists them.
    returns: Vec<String>,
    /// The status query answers this major-unit amount for paid orders (PayTR's comma decimal).
    paid_amount: Option<String>,
    /// The status query refuses with `003` (a misconfigured merchant).
    misconfigured: bool,
    /// Where the stand-in checkout page sends PayTR's callback (our `PUBLIC_BASE_URL`), set once the stack runs.
    pub(crate) notification_base: Option<String>,
    /// What our callback answered each callback the stand-in checkout sent (PayTR wants the plain text `OK`).
    pub(crate) callback_answers: Vec<(u16, String)>,
}

/// PayTR's get-token, refund and status endpoints; each refuses a `paytr_token` openssl does not agree with.
/// `GET /odeme/guvenli/<token>` is a stand-in for PayTR's card page (see [`checkout_page`]).
pub(crate) async fn fake_paytr(state: Arc<Mutex<Fake>>) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = HttpServer::new(move || {
        let st = state.clone();
        let page = state.clone();
        let pay = state.clone();
        App::new()
            .route("/odeme/guvenli/{token}", web::get().to(move |token: web::Path<String>| {
                let st = page.clone();
                async move { checkout_page(&st, &token) }
            }))
            .route("/odeme/guvenli/{token}", web::post().to(move |token: web::Path<String>, form: web::Form<HashMap<String, String>>| {
                let st = pay.clone();
                async move { checkout_submitted(st, token.into_inner(), form.into_inner()).await }
            }))
            .route("/odeme/{op:.*}", web::post().to(move |path: web::Path<String>, form: web::Form<HashMap<String, String>>| {
            let st = st.clone();
            async move {
                let f = form.into_inner();
                let g = |k: &str| f.get(k).cloned().unwrap_or_default();
                let op = path.into_inner();
                let fields: Vec<String> = match op.as_str() {
                    "api/get-token" => ["merchant_id", "user_ip", "merchant_oid", "email", "payment_amount", "user_basket", "no_installment", "max_installment", "currency", "test_mode"].iter().map(|k| g(k)).collect(),
                    "iade" => ["merchant_id", "merchant_oid", "return_amount"].iter().map(|k| g(k)).collect(),
                    "durum-sorgu" => ["merchant_id", "merchant_oid"].iter().map(|k| g(k)).collect(),
                    _ => return HttpResponse::NotFound().finish(),
                };
                let expected = openssl_hmac(MERCHANT_KEY, &format!("{}{MERCHANT_SALT}", fields.concat()));
                st.lock().unwrap().requests.push((op.clone(), f.clone()));
                if g("paytr_token") != expected || g("merchant_id") != MERCHANT_ID {
                    return HttpResponse::Ok().json(json!({"status": "failed", "reason": "paytr_token mismatch", "err_msg": "paytr_token mismatch"}));
                }
                match op.as_str() {
                    "api/get-token" => HttpResponse::Ok().json(json!({"status": "success", "token": format!("tok{}", g("merchant_oid"))})),
                    "iade" => {
                        let mut fake = st.lock().unwrap();
                        fake.returns.push(g("reference_no"));
                        if fake.lose_refund_answers {
                            return HttpResponse::BadGateway().body("upstream connection reset");
                        }
                        HttpResponse::Ok().json(json!({"status": "success", "merchant_oid": g("merchant_oid"), "return_amount": g("return_amount"), "reference_no": g("reference_no")}))
                    }
                    // As PAYTR's status query answers: `success` with decimal-string amounts (comma allowed), or
                    // `error` with `err_no` (004: no successful payment; 001-003: misconfiguration).
                    _ => {
                        let fake = st.lock().unwrap();
                        if fake.misconfigured {
                            return HttpResponse::Ok().json(json!({"status": "error", "err_no": "003", "err_msg": "paytr_token gonderilmedi veya gecersiz"}));
                        }
                        if !fake.paid.contains(&g("merchant_oid")) {
                            return HttpResponse::Ok().json(json!({"status": "error", "err_no": "004", "err_msg": "merchant_oid ile basarili odeme bulunamadi"}));
                        }
                        let returns: Vec<Value> = fake.returns.iter().map(|r| json!({"reference_no": r, "return_amount": "1"})).collect();
                        let amount = fake.paid_amount.clone().unwrap_or_else(|| "49,99".into());
                        HttpResponse::Ok().json(json!({"status": "success", "payment_amount": amount, "payment_total": amount, "currency": "USD", "test_mode": "1", "returns": returns}))
                    }
                }
            }
        }))
    })
    .workers(1)
    .bind(("127.0.0.1", port))
    .unwrap()
    .run();
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}")
}

/// The get-token request that minted `token` (the fake's tokens are `tok<merchant_oid>`).
fn token_request(st: &Mutex<Fake>, token: &str) -> Option<HashMap<String, String>> {
    let oid = token.strip_prefix("tok")?;
    st.lock()
        .unwrap()
        .requests
        .iter()
        .rev()
        .find(|(op, f)| {
            op == "api/get-token" && f.get("merchant_oid").map(String::as_str) == Some(oid)
        })
        .map(|(_, f)| f.clone())
}

/// A stand-in for PayTR's card page (`/odeme/guvenli/<token>`), which the payment page frames. PayTR's test
/// page has the test card filled in; the customer presses "Gönder" (or, here, "Decline" to play a bank that
/// says no).
fn checkout_page(st: &Mutex<Fake>, token: &str) -> HttpResponse {
    let Some(req) = token_request(st, token) else {
        return HttpResponse::NotFound().body("token not found");
    };
    let amount = req.get("payment_amount").cloned().unwrap_or_default();
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>PayTR (stand-in)</title></head><body>
<h1>PayTR test payment</h1><p>{amount} (minor units), test card 4355 0843 5508 4358</p>
<form method="post"><button id="send" name="status" value="success">Gönder</button>
<button id="decline" name="status" value="failed">Decline</button></form>
</body></html>"#
    ))
}

/// The customer pressed a button on PayTR's page: PayTR's server posts the callback (form-encoded, signed as
/// PayTR signs it: base64(HMAC-SHA256(merchant_key, merchant_oid + merchant_salt + status + total_amount)),
/// by openssl) to the merchant's notification URL, then PayTR's frame goes to `merchant_ok_url` or
/// `merchant_fail_url`, as the token request named them.
async fn checkout_submitted(
    st: Arc<Mutex<Fake>>,
    token: String,
    form: HashMap<String, String>,
) -> HttpResponse {
    let Some(req) = token_request(&st, &token) else {
        return HttpResponse::NotFound().body("token not found");
    };
    let g = |k: &str| req.get(k).cloned().unwrap_or_default();
    let success = form.get("status").map(String::as_str) == Some("success");
    let status = if success { "success" } else { "failed" };
    let oid = g("merchant_oid");
    let total = g("payment_amount");
    let hash = openssl_hmac(
        MERCHANT_KEY,
        &format!("{oid}{MERCHANT_SALT}{status}{total}"),
    );
    let mut fields = vec![
        ("merchant_oid", oid),
        ("status", status.to_owned()),
        ("total_amount", total.clone()),
        ("hash", hash),
        ("payment_type", "card".to_owned()),
        ("test_mode", g("test_mode")),
    ];
    if success {
        fields.push(("currency", g("currency")));
        fields.push(("payment_amount", total));
    } else {
        fields.push(("failed_reason_code", "0".to_owned()));
        fields.push((
            "failed_reason_msg",
            "Kart limiti yetersiz (card limit exceeded)".to_owned(),
        ));
    }
    let base = st
        .lock()
        .unwrap()
        .notification_base
        .clone()
        .unwrap_or_default();
    let answer = match client()
        .post(format!("{base}/payments/paytr/callback"))
        .form(&fields)
        .send()
        .await
    {
        Ok(res) => (res.status().as_u16(), res.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    };
    st.lock().unwrap().callback_answers.push(answer);
    let next = if success {
        g("merchant_ok_url")
    } else {
        g("merchant_fail_url")
    };
    HttpResponse::SeeOther()
        .insert_header(("Location", next))
        .finish()
}

async fn callback(s: &Stack, oid: &str, status: &str, hash: &str) -> (u16, String) {
    let res = client()
        .post(format!("{}/payments/paytr/callback", s.api.base_url))
        .form(&[
            ("merchant_oid", oid),
            ("status", status),
            ("total_amount", "4999"),
            ("hash", hash),
            ("payment_type", "card"),
            ("currency", "USD"),
            ("test_mode", "1"),
        ])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn paytr_end_to_end(backend: Backend) {
    let fake = Arc::new(Mutex::new(Fake::default()));
    let fake_url = fake_paytr(fake.clone()).await;
    let keys = service_common::KeyRing::generate_entry("k1");
    let s = stack_with(
        backend,
        Default::default(),
        &[
            ("PAYTR_API_URL", &fake_url),
            ("TOKEN_ENCRYPTION_KEYS", &keys),
            ("PAYMENT_EVENTS_INTERVAL_MS", "100"),
        ],
    )
    .await;
    install(&s, "Location", &["Loc1"]).await;
    let (status, p) = put(&s, "/api/locations/Loc1/payments/provider", &service_token(), json!({
        "name": "PayTR", "description": "Cards via PayTR", "imageUrl": "https://x.test/paytr.png", "gateway": "paytr",
        "paytr": {"merchantId": MERCHANT_ID, "merchantKey": MERCHANT_KEY, "merchantSalt": MERCHANT_SALT}})).await;
    assert_eq!(status, 200, "{p}");
    let pk = p["publishableKeys"]["test"].as_str().unwrap().to_owned();
    // PayTR's iFrame API keeps no cards: HighLevel is told this provider does not renew subscriptions.
    let connected = send(client().get(format!(
        "{}/_sim/payments/connect?locationId=Loc1",
        s.sim.base_url
    )))
    .await
    .1;
    assert_eq!(
        connected["supportsSubscriptionSchedule"], false,
        "{connected}"
    );
    let row = s
        .api
        .state
        .db
        .run(|c| api_backend::store::providers::get(c, "Loc1"))
        .await
        .unwrap()
        .unwrap();
    let key = api_backend::payments::keys::api_key(
        &SERVICE_SECRET.to_owned().into(),
        "Loc1",
        api_backend::payments::keys::Mode::Test,
        &row.api_key_salt,
    );
    // HighLevel's contact who pays txn-p1; the other transactions' contacts HighLevel does not have.
    sim_post(&s, "/_sim/contacts", json!({"locationId": "Loc1", "id": "contact-ada", "firstName": "Ada",
        "lastName": "Lovelace", "email": "ada@example.test", "phone": "+441234567890", "address1": "12 St James's Square",
        "city": "London", "postalCode": "SW1Y 4JH", "country": "GB"})).await;
    let out = sim_post(
        &s,
        "/_sim/payments/orders",
        json!({"locationId": "Loc1", "transactionId": "txn-p1",
        "amount": 49.99, "currency": "USD", "contactId": "contact-ada"}),
    )
    .await;
    assert_eq!(out["transactionId"], "txn-p1", "{out}");
    for txn in ["txn-p2", "txn-p3", "txn-p4", "txn-p5"] {
        checkout_at_sim(&s, "Loc1", txn, 49.99, "USD").await;
    }
    let checkout = |txn: &'static str| {
        post(
            &s,
            "/payments/page/paytr",
            None,
            json!({
        "publishableKey": pk, "locationId": "Loc1", "transactionId": txn, "amount": 49.99, "currency": "USD", "email": "ada@example.test"}),
        )
    };

    // The checkout: a signed token request PayTR (openssl) accepts.
    let (status, opened) = checkout("txn-p1").await;
    assert_eq!(status, 200, "{opened}");
    let url = opened["checkoutUrl"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{fake_url}/odeme/guvenli/tok")),
        "{url}"
    );
    let (op, req) = fake.lock().unwrap().requests[0].clone();
    assert_eq!(
        (
            op.as_str(),
            req["payment_amount"].as_str(),
            req["currency"].as_str(),
            req["test_mode"].as_str()
        ),
        ("api/get-token", "4999", "USD", "1")
    );
    // The customer PayTR is told of is HighLevel's contact for the transaction, not a placeholder.
    assert_eq!(
        (
            req["user_name"].as_str(),
            req["user_address"].as_str(),
            req["user_phone"].as_str()
        ),
        (
            "Ada Lovelace",
            "12 St James's Square, London, SW1Y 4JH, GB",
            "+441234567890"
        )
    );
    let oid = req["merchant_oid"].clone();
    assert!(oid.chars().all(|c| c.is_ascii_alphanumeric()));
    let basket: Value = serde_json::from_slice(&base64_decode(&req["user_basket"])).unwrap();
    assert_eq!(basket, json!([["Order", "49.99", 1]]));

    // A forged callback changes nothing and is not answered OK.
    let (status, body) = callback(&s, &oid, "success", "Zm9yZ2Vk").await;
    assert_eq!(status, 401, "{body}");
    let verify = || {
        post(
            &s,
            "/payments/query",
            None,
            json!({"type": "verify", "apiKey": key, "chargeId": opened["chargeId"]}),
        )
    };
    assert_eq!(verify().await.1, json!({"success": false}));

    // The genuine one (hash by openssl) settles the charge: OK, verify says paid, HighLevel hears of it.
    let hash = openssl_hmac(MERCHANT_KEY, &format!("{oid}{MERCHANT_SALT}success4999"));
    assert_eq!(
        callback(&s, &oid, "success", &hash).await,
        (200, "OK".into())
    );
    assert_eq!(verify().await.1, json!({"success": true}));
    for _ in 0..50 {
        if s.sim.stats().payment_events_received >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // PayTR repeats a callback until it reads OK: a replay is answered OK and changes nothing.
    assert_eq!(
        callback(&s, &oid, "success", &hash).await,
        (200, "OK".into())
    );
    let failed_hash = openssl_hmac(MERCHANT_KEY, &format!("{oid}{MERCHANT_SALT}failed4999"));
    assert_eq!(
        callback(&s, &oid, "failed", &failed_hash).await,
        (200, "OK".into())
    );
    assert_eq!(
        verify().await.1,
        json!({"success": true}),
        "a settled charge stays settled"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        s.sim.stats().payment_events_received,
        1,
        "one payment.captured"
    );

    // A refund through PayTR, signed; more than is left is refused before PayTR is asked.
    let (status, r) = post(
        &s,
        "/payments/query",
        None,
        json!({"type": "refund", "apiKey": key, "transactionId": "txn-p1", "amount": 10.5}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let (op, req) = fake.lock().unwrap().requests.last().cloned().unwrap();
    assert_eq!(
        (op.as_str(), req["return_amount"].as_str()),
        ("iade", "10.50")
    );
    let (status, _) = post(
        &s,
        "/payments/query",
        None,
        json!({"type": "refund", "apiKey": key, "transactionId": "txn-p1", "amount": 40}),
    )
    .await;
    assert_eq!(status, 422);

    // A refund whose answer is lost is never undone: it stays pending and counts against the charge; HighLevel's
    // retry of the same refund asks PayTR's status query, which lists our reference_no, and nothing is refunded
    // twice.
    fake.lock().unwrap().lose_refund_answers = true;
    fake.lock().unwrap().paid.push(oid.clone());
    let lost = json!({"type": "refund", "apiKey": key, "transactionId": "txn-p1", "amount": 5});
    let (status, r) = post(&s, "/payments/query", None, lost.clone()).await;
    assert_eq!((status, r["pending"].as_bool()), (200, Some(true)), "{r}");
    let iade = |f: &Fake| f.requests.iter().filter(|(op, _)| op == "iade").count();
    let sent = iade(&fake.lock().unwrap());
    let (status, r2) = post(&s, "/payments/query", None, lost).await;
    assert_eq!(
        (status, r2["success"].as_bool(), r2["refundId"].clone()),
        (200, Some(true), r["refundId"].clone()),
        "{r2}"
    );
    assert_eq!(
        iade(&fake.lock().unwrap()),
        sent,
        "the repeat did not refund again"
    );
    assert_eq!(r2["totalRefunded"].as_f64(), Some(15.5));
    fake.lock().unwrap().lose_refund_answers = false;

    // A callback that never came: verify asks PayTR's status query.
    let (_, second) = checkout("txn-p2").await;
    let (op, req2) = fake.lock().unwrap().requests.last().cloned().unwrap();
    assert_eq!(
        (
            op.as_str(),
            req2["user_name"].as_str(),
            req2["user_phone"].as_str()
        ),
        ("api/get-token", "HighLevel customer", "-"),
        "a contact HighLevel does not have leaves PayTR's placeholders"
    );
    let oid2 = req2["merchant_oid"].clone();
    fake.lock().unwrap().paid.push(oid2);
    let (_, v) = post(
        &s,
        "/payments/query",
        None,
        json!({"type": "verify", "apiKey": key, "chargeId": second["chargeId"]}),
    )
    .await;
    assert_eq!(v, json!({"success": true}));
    assert_eq!(
        fake.lock().unwrap().requests.last().unwrap().0,
        "durum-sorgu"
    );

    // A callback whose amount is not the charge's is acknowledged but settles nothing.
    let (_, third) = checkout("txn-p3").await;
    let oid3 = fake.lock().unwrap().requests.last().unwrap().1["merchant_oid"].clone();
    let cheap = openssl_hmac(MERCHANT_KEY, &format!("{oid3}{MERCHANT_SALT}success1"));
    let res = client()
        .post(format!("{}/payments/paytr/callback", s.api.base_url))
        .form(&[
            ("merchant_oid", oid3.as_str()),
            ("status", "success"),
            ("total_amount", "1"),
            ("hash", cheap.as_str()),
            ("currency", "USD"),
            ("test_mode", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "OK");
    let verify3 = json!({"type": "verify", "apiKey": key, "chargeId": third["chargeId"]});
    assert_eq!(
        post(&s, "/payments/query", None, verify3.clone()).await.1,
        json!({"success": false})
    );
    // PayTR's status query reports a payment of another amount: an alarm, not a payment.
    fake.lock().unwrap().paid.push(oid3.clone());
    fake.lock().unwrap().paid_amount = Some("0,01".into());
    let (status, body) = post(&s, "/payments/query", None, verify3.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("gateway_failed")),
        "{body}"
    );
    fake.lock().unwrap().paid_amount = None;
    // A misconfigured merchant surfaces as an error, not as a charge pending forever.
    fake.lock().unwrap().misconfigured = true;
    let (_, fourth) = checkout("txn-p4").await;
    let (status, body) = post(
        &s,
        "/payments/query",
        None,
        json!({"type": "verify", "apiKey": key, "chargeId": fourth["chargeId"]}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("gateway_failed")),
        "{body}"
    );
    fake.lock().unwrap().misconfigured = false;
    // A checkout that closed without a payment has failed.
    let id4 = fourth["chargeId"].as_str().unwrap().to_owned();
    s.api
        .state
        .db
        .run(move |c| {
            use api_backend::db::schema::payment_charges::dsl;
            use diesel::prelude::*;
            diesel::update(dsl::payment_charges.find(id4))
                .set(dsl::created_at.eq(dsl::created_at - 3_600_000))
                .execute(c)?;
            Ok(())
        })
        .await
        .unwrap();
    let (_, v) = post(
        &s,
        "/payments/query",
        None,
        json!({"type": "verify", "apiKey": key, "chargeId": fourth["chargeId"]}),
    )
    .await;
    assert_eq!(v, json!({"failed": true}));
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

both_backends!(paytr_end_to_end);
