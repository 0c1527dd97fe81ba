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
    /// PayTR's card storage: each `utoken`'s cards, as `/odeme/capi/list` answers them.
    cards: HashMap<String, Vec<Value>>,
    /// How the next off-session charges are answered: `success` (the default), `wait_callback`, `try_again`
    /// or `closed` (a declined card).
    recurring: Option<&'static str>,
    /// Our notification URL (PayTR's Bildirim URL, set once per store in PayTR's panel).
    notify_url: Option<String>,
    /// Direct API payments PayTR accepted: (merchant_oid, payment_amount ×100, currency, test_mode).
    direct_paid: Vec<(String, String, String, String)>,
    /// A card posted from the customer's browser stops at the bank's 3-D Secure step: the customer leaves,
    /// PayTR never notifies (its checkout closes after `timeout_limit`).
    pub(crate) abandon_direct: bool,
}

/// `/odeme`'s hash (PayTR's Direct API docs, `dev.paytr.com/direkt-api/direkt-api-1-adim`, and its Postman
/// collection): `merchant_id user_ip merchant_oid email payment_amount payment_type installment_count currency
/// test_mode non_3d` + salt, the same for a new card, a saved card or a recurring
/// charge; `utoken`, `ctoken`, `store_card` and `recurring_payment` are not hashed.
const DIRECT_HASHED: [&str; 10] = [
    "merchant_id",
    "user_ip",
    "merchant_oid",
    "email",
    "payment_amount",
    "payment_type",
    "installment_count",
    "currency",
    "test_mode",
    "non_3d",
];

/// A Direct API amount (`49.99`, `150`: major units) in PayTR's callback unit (×100).
fn direct_minor(amount: &str) -> String {
    let (whole, frac) = amount.split_once('.').unwrap_or((amount, ""));
    let frac = format!("{frac:0<2}");
    (whole.parse::<i64>().unwrap() * 100 + frac[..2].parse::<i64>().unwrap()).to_string()
}

/// PayTR's notification (Bildirim URL) of a Direct API payment, signed as PayTR signs it; `utoken` when the
/// payment stored a card. Answers what our service said.
async fn notify(
    url: &str,
    oid: &str,
    status: &str,
    minor: &str,
    currency: &str,
    utoken: Option<&str>,
) -> String {
    let total = if status == "success" { minor } else { "0" };
    let hash = openssl_hmac(
        MERCHANT_KEY,
        &format!("{oid}{MERCHANT_SALT}{status}{total}"),
    );
    let mut form = vec![
        ("merchant_oid", oid.to_owned()),
        ("status", status.to_owned()),
        ("total_amount", total.to_owned()),
        ("hash", hash),
        ("payment_type", "card".to_owned()),
        ("installment_count", "1".to_owned()),
        ("test_mode", "1".to_owned()),
    ];
    if status == "success" {
        form.extend([
            ("currency", currency.to_owned()),
            ("payment_amount", minor.to_owned()),
        ]);
    } else {
        form.extend([
            ("failed_reason_code", "0".to_owned()),
            ("failed_reason_msg", "Declined".to_owned()),
        ]);
    }
    if let Some(u) = utoken {
        form.push(("utoken", u.to_owned()));
    }
    client()
        .post(url)
        .form(&form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// PayTR's `POST /odeme` (Direct API): a customer's browser posting a card (`store_card=1` saves it under
/// the given or a new `utoken`, then PayTR notifies us and sends the browser to `merchant_ok_url`), or a
/// merchant's server charging a saved card off-session (`utoken`, `ctoken`, `recurring_payment=1`, which
/// needs `non_3d=1`), answered at once with `success`, `wait_callback` or `failed` (+`try_again`).
async fn fake_direct(st: Arc<Mutex<Fake>>, f: HashMap<String, String>) -> HttpResponse {
    let g = |k: &str| f.get(k).cloned().unwrap_or_default();
    let fields: Vec<String> = DIRECT_HASHED.iter().map(|k| g(k)).collect();
    let expected = openssl_hmac(MERCHANT_KEY, &format!("{}{MERCHANT_SALT}", fields.concat()));
    st.lock()
        .unwrap()
        .requests
        .push(("odeme".into(), f.clone()));
    if g("paytr_token") != expected || g("merchant_id") != MERCHANT_ID {
        return HttpResponse::Ok()
            .json(json!({"status": "failed", "reason": "paytr_token mismatch"}));
    }
    let minor = direct_minor(&g("payment_amount"));
    if g("recurring_payment") == "1" {
        if g("non_3d") != "1" || f.contains_key("card_number") || f.contains_key("cvv") {
            return HttpResponse::Ok().json(json!({"status": "failed", "msg": "recurring_payment needs non_3d=1 and no card", "try_again": false}));
        }
        let known = st
            .lock()
            .unwrap()
            .cards
            .get(&g("utoken"))
            .is_some_and(|cards| cards.iter().any(|c| c["ctoken"] == g("ctoken")));
        if !known {
            return HttpResponse::Ok()
                .json(json!({"status": "failed", "msg": "Kart bulunamadi", "try_again": false}));
        }
        let mode = st.lock().unwrap().recurring.unwrap_or("success");
        return match mode {
            "wait_callback" => HttpResponse::Ok().json(json!({"status": "wait_callback", "msg": "Ödeme Kontrol Ediliyor, Bildirimi Bekleyin"})),
            "try_again" => HttpResponse::Ok().json(json!({"status": "failed", "msg": "Henüz devam eden bir işleminiz bulunmaktadır", "try_again": true})),
            "closed" => HttpResponse::Ok().json(json!({"status": "failed", "msg": "Kart banka tarafından kapatılmış. Bu kart ile tekrar işlem göndermeyin", "try_again": false})),
            _ => {
                // The details are also posted to the Bildirim URL.
                let url = st.lock().unwrap().notify_url.clone().unwrap();
                let (oid, cur) = (g("merchant_oid"), g("currency"));
                st.lock().unwrap().direct_paid.push((oid.clone(), minor.clone(), cur.clone(), g("test_mode")));
                let answer = HttpResponse::Ok().json(json!({"status": "success", "msg": "Odeme basarili"}));
                tokio::spawn(async move { notify(&url, &oid, "success", &minor, &cur, None).await });
                answer
            }
        };
    }
    // A card from the customer's browser.
    if st.lock().unwrap().abandon_direct {
        return HttpResponse::Ok()
            .content_type("text/html")
            .body("<p id=\"three-d\">Enter the code your bank sent you</p>");
    }
    let number = g("card_number");
    if number.len() < 12
        || g("cvv").is_empty()
        || g("expiry_month").is_empty()
        || g("expiry_year").is_empty()
    {
        return HttpResponse::Ok()
            .content_type("text/html")
            .body("<p>Kart bilgileri eksik</p>");
    }
    let mut utoken = None;
    if g("store_card") == "1" {
        let u = f
            .get("utoken")
            .cloned()
            .unwrap_or_else(|| format!("ut{:016x}", rand::random::<u64>()));
        let card = json!({"ctoken": format!("ct{:016x}", rand::random::<u64>()), "last_4": &number[number.len() - 4..],
            "require_cvv": "0", "month": g("expiry_month"), "year": g("expiry_year"), "c_bank": "Test Bank",
            "c_name": g("cc_owner"), "c_brand": if number.starts_with('4') { "VISA" } else { "MASTERCARD" },
            "c_type": "credit", "businessCard": "n", "initial": &number[..1], "schema": "VISA"});
        st.lock()
            .unwrap()
            .cards
            .entry(u.clone())
            .or_default()
            .push(card);
        utoken = Some(u);
    }
    let url = st.lock().unwrap().notify_url.clone().unwrap();
    let (oid, cur) = (g("merchant_oid"), g("currency"));
    st.lock()
        .unwrap()
        .direct_paid
        .push((oid.clone(), minor.clone(), cur.clone(), g("test_mode")));
    let answer = notify(&url, &oid, "success", &minor, &cur, utoken.as_deref()).await;
    assert_eq!(answer, "OK", "our notification URL must answer OK");
    // PayTR sends the customer's browser to the merchant's ok page.
    HttpResponse::Ok().content_type("text/html").body(format!(
        "<!doctype html><meta http-equiv=\"refresh\" content=\"0;url={}\"><p>Odeme tamamlandi</p>",
        html_escape::encode_double_quoted_attribute(&g("merchant_ok_url"))
    ))
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
        let direct = state.clone();
        App::new()
            .route("/odeme", web::post().to(move |form: web::Form<HashMap<String, String>>| {
                fake_direct(direct.clone(), form.into_inner())
            }))
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
                    // Card listing hashes the utoken alone (no merchant_id).
                    "capi/list" => vec![g("utoken")],
                    _ => return HttpResponse::NotFound().finish(),
                };
                let expected = openssl_hmac(MERCHANT_KEY, &format!("{}{MERCHANT_SALT}", fields.concat()));
                st.lock().unwrap().requests.push((op.clone(), f.clone()));
                if op == "capi/list" && (g("paytr_token") != expected || g("merchant_id") != MERCHANT_ID) {
                    return HttpResponse::Ok().json(json!({"status": "error", "err_msg": "paytr_token gecersiz"}));
                }
                if g("paytr_token") != expected || g("merchant_id") != MERCHANT_ID {
                    return HttpResponse::Ok().json(json!({"status": "failed", "reason": "paytr_token mismatch", "err_msg": "paytr_token mismatch"}));
                }
                match op.as_str() {
                    // A JSON array of cards; an empty JSON when the utoken has none.
                    "capi/list" => match st.lock().unwrap().cards.get(&g("utoken")) {
                        Some(cards) => HttpResponse::Ok().json(cards),
                        None => HttpResponse::Ok().json(json!({})),
                    },
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

/// Registers the PayTR provider of Loc1 (`directApi`: the merchant's Direct API, Non3D and recurring
/// permissions); answers the provider as answered, its test publishable key and test api key.
async fn paytr_provider(s: &Stack, direct_api: Option<bool>) -> (Value, String, String) {
    let mut paytr = json!({"merchantId": MERCHANT_ID, "merchantKey": MERCHANT_KEY, "merchantSalt": MERCHANT_SALT});
    if let Some(d) = direct_api {
        paytr["directApi"] = json!(d);
    }
    let (status, p) = put(s, "/api/locations/Loc1/payments/provider", &service_token(), json!({
        "name": "PayTR", "description": "Cards via PayTR", "imageUrl": "https://x.test/paytr.png", "gateway": "paytr",
        "paytr": paytr})).await;
    assert_eq!(status, 200, "{p}");
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
    let pk = p["publishableKeys"]["test"].as_str().unwrap().to_owned();
    (p, pk, key)
}

/// What the page tells HighLevel in `custom_provider_ready` (its `data-card-on-file`), and what HighLevel
/// holds about subscription scheduling (capabilities).
async fn advertised(s: &Stack) -> (bool, Value) {
    let html = client()
        .get(format!("{}/payments/page?locationId=Loc1", s.api.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let connected = send(client().get(format!(
        "{}/_sim/payments/connect?locationId=Loc1",
        s.sim.base_url
    )))
    .await
    .1;
    (
        html.contains(r#"data-card-on-file="true""#),
        connected["supportsSubscriptionSchedule"].clone(),
    )
}

async fn paytr_stack(backend: Backend, fake: &Arc<Mutex<Fake>>) -> Stack {
    paytr_stack_installed(backend, fake, false).await.0
}

/// A product at the simulator with HighLevel's recurring price of 49.99 USD a day: (product id, price id).
async fn daily_plan_at_sim(s: &Stack, inst: &str) -> (String, String) {
    use crate::browser_subscription::{sim_price, sim_product};
    let product = sim_product(s, inst).await;
    let daily = sim_price(
        s,
        inst,
        &product,
        json!({"type": "recurring", "amount": 49.99,
        "recurring": {"interval": "day", "intervalCount": 1}}),
    )
    .await;
    (product, daily)
}

/// HighLevel's subscription `sub` of the daily plan for contact-ada, bought with transaction `txn`, and the page's
/// PayTR checkout of it, which starts: the answer (the signed Direct API form and the charge id).
async fn begin_paytr_subscription(
    s: &Stack,
    pk: &str,
    product: &str,
    daily: &str,
    txn: &str,
    sub: &str,
) -> Value {
    crate::browser_subscription::subscription_at_sim(
        s,
        txn,
        sub,
        product,
        daily,
        49.99,
        "contact-ada",
    )
    .await;
    let (status, form) = post(
        s,
        "/payments/page/paytr/subscribe",
        None,
        json!({"publishableKey": pk,
        "locationId": "Loc1", "transactionId": txn, "subscriptionId": sub, "amount": 49.99,
        "currency": "USD"}),
    )
    .await;
    assert_eq!(status, 200, "{form}");
    form
}

/// [`paytr_stack`] and Loc1's installation; `served`: the api-backend answers at its PUBLIC_BASE_URL (so
/// HighLevel, the simulator, reaches its queryUrl).
async fn paytr_stack_installed(
    backend: Backend,
    fake: &Arc<Mutex<Fake>>,
    served: bool,
) -> (Stack, String) {
    let fake_url = fake_paytr(fake.clone()).await;
    let keys = service_common::KeyRing::generate_entry("k1");
    let port = crate::browser::free_port().to_string();
    let url = format!("http://127.0.0.1:{port}");
    let mut settings = vec![
        ("PAYTR_API_URL", fake_url.as_str()),
        ("TOKEN_ENCRYPTION_KEYS", keys.as_str()),
        ("PAYMENT_EVENTS_INTERVAL_MS", "100"),
        ("SUBSCRIPTIONS_INTERVAL", "0s"),
        ("SUBSCRIPTION_RETRY_DELAYS", "1d,2d"),
    ];
    if served {
        settings.extend([("PORT", port.as_str()), ("PUBLIC_BASE_URL", url.as_str())]);
    }
    let s = stack_with(backend, Default::default(), &settings).await;
    fake.lock().unwrap().notify_url = Some(format!("{}/payments/paytr/callback", s.api.base_url));
    let inst = install(&s, "Location", &["Loc1"]).await;
    (s, inst)
}

/// The customer's browser posting the signed fields and the card straight to PayTR, as the page's form
/// does; answers PayTR's page.
async fn browser_posts_card(action: &str, fields: &Value, number: &str) -> String {
    let mut form: Vec<(String, String)> = fields
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    for (k, v) in [
        ("cc_owner", "Ada Lovelace"),
        ("card_number", number),
        ("expiry_month", "12"),
        ("expiry_year", "30"),
        ("cvv", "000"),
    ] {
        form.push((k.into(), v.into()));
    }
    client()
        .post(action)
        .form(&form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn charge_status(s: &Stack, pk: &str, charge: &str) -> Value {
    send(client().get(format!(
        "{}/payments/page/charges/{charge}?publishableKey={pk}&locationId=Loc1",
        s.api.base_url
    )))
    .await
    .1
}

/// Without `paytr.directApi` a PayTR location offers one-time payments only: card on file and subscription
/// scheduling are not advertised, and every card-on-file call is refused with a clear problem.
async fn paytr_without_direct_api_keeps_no_cards(backend: Backend) {
    let fake = Arc::new(Mutex::new(Fake::default()));
    let s = paytr_stack(backend, &fake).await;
    let (p, pk, key) = paytr_provider(&s, None).await;
    assert_eq!(
        (p["paytrDirectApi"].as_bool(), p["cardOnFile"].as_bool()),
        (Some(false), Some(false)),
        "{p}"
    );
    assert_eq!(advertised(&s).await, (false, json!(false)));
    for body in [
        json!({"type": "list_payment_methods", "apiKey": key, "contactId": "contact-ada"}),
        json!({"type": "charge_payment", "apiKey": key, "paymentMethodId": "pm_x", "transactionId": "txn-x",
            "amount": 10, "currency": "TRY", "contactId": "contact-ada"}),
        json!({"type": "create_subscription", "apiKey": key, "subscriptionId": "ghl-sub", "transactionId": "txn-y",
            "paymentMethodId": "pm_x", "amount": 10, "currency": "TRY",
            "productDetails": [{"prices": [{"recurring": {"interval": "day", "intervalCount": 1}}]}]}),
    ] {
        let (status, problem) = post(&s, "/payments/query", None, body).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (422, Some("card_on_file_unsupported")),
            "{problem}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains("Direct API"),
            "{problem}"
        );
    }
    let (status, problem) = post(
        &s,
        "/payments/page/paytr/setup",
        None,
        json!({"publishableKey": pk,
        "locationId": "Loc1", "contactId": "contact-ada", "currency": "TRY"}),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("card_on_file_unsupported")),
        "{problem}"
    );
    assert!(
        fake.lock().unwrap().requests.is_empty(),
        "PayTR was not asked"
    );
    // Explicitly off is the same.
    let (p, _, _) = paytr_provider(&s, Some(false)).await;
    assert_eq!(p["cardOnFile"].as_bool(), Some(false));
    assert_eq!(advertised(&s).await, (false, json!(false)));
}

/// With `paytr.directApi`: advertised; a card saved through a verification payment the browser posts straight
/// to PayTR with `store_card=1`; PayTR's notification brings the utoken; `list_payment_methods` reads PayTR's
/// card storage; `charge_payment` charges a card off-session (`recurring_payment=1`, `non_3d=1`) with each of
/// PayTR's answers mapped; HighLevel hears of the charges; a subscription's renewal goes the same way.
async fn paytr_cards_on_file(backend: Backend) {
    let fake = Arc::new(Mutex::new(Fake::default()));
    let s = paytr_stack(backend, &fake).await;
    sim_post(&s, "/_sim/contacts", json!({"locationId": "Loc1", "id": "contact-ada", "firstName": "Ada",
        "lastName": "Lovelace", "email": "ada@example.test", "phone": "+441234567890", "address1": "12 St James's Square",
        "city": "London", "postalCode": "SW1Y 4JH", "country": "GB"})).await;
    let (p, pk, key) = paytr_provider(&s, Some(true)).await;
    assert_eq!(
        (p["paytrDirectApi"].as_bool(), p["cardOnFile"].as_bool()),
        (Some(true), Some(true)),
        "{p}"
    );
    assert_eq!(advertised(&s).await, (true, json!(true)));
    let query = |body: Value| post(&s, "/payments/query", None, body);
    // Nothing saved yet: an empty list, without asking PayTR (no utoken).
    let list = json!({"type": "list_payment_methods", "apiKey": key, "locationId": "Loc1", "contactId": "contact-ada"});
    assert_eq!(query(list.clone()).await, (200, json!([])));

    // Setup: the fields our server signs; the card is not among them and never sent to us.
    let setup = json!({"publishableKey": pk, "locationId": "Loc1", "contactId": "contact-ada", "currency": "TRY"});
    let (status, form) = post(&s, "/payments/page/paytr/setup", None, setup.clone()).await;
    assert_eq!(status, 200, "{form}");
    let fake_url = fake.lock().unwrap().notify_url.clone().unwrap();
    assert!(
        form["action"].as_str().unwrap().ends_with("/odeme"),
        "{form}"
    );
    assert_ne!(form["action"].as_str().unwrap(), fake_url);
    let f = &form["fields"];
    assert_eq!(
        (
            f["store_card"].as_str(),
            f["payment_amount"].as_str(),
            f["currency"].as_str(),
            f["non_3d"].as_str(),
            f["email"].as_str()
        ),
        (
            Some("1"),
            Some("1.00"),
            Some("TL"),
            Some("0"),
            Some("customer@example.invalid")
        ),
        "{form}"
    );
    // The page's key is public: the answer carries nothing of HighLevel's contact.
    assert!(
        !form.to_string().contains("Ada") && !form.to_string().contains("ada@"),
        "{form}"
    );
    assert!(
        f.get("utoken").is_none() && f.get("card_number").is_none(),
        "{form}"
    );
    assert_eq!(
        f["user_basket"].as_str(),
        Some("[[&quot;Card verification&quot;,&quot;1.00&quot;,1]]")
    );
    let page = browser_posts_card(form["action"].as_str().unwrap(), f, "4355084355084358").await;
    assert!(
        page.contains("result=ok"),
        "PayTR accepted the hash and sent the browser on: {page}"
    );
    assert_eq!(
        charge_status(&s, &pk, form["chargeId"].as_str().unwrap()).await["status"],
        "succeeded"
    );

    let (status, cards) = query(list.clone()).await;
    assert_eq!(status, 200, "{cards}");
    assert_eq!(cards.as_array().unwrap().len(), 1, "{cards}");
    let card = cards[0].clone();
    assert_eq!(
        (
            card["type"].as_str(),
            card["title"].as_str(),
            card["subTitle"].as_str(),
            card["expiry"].as_str(),
            card["customerId"].as_str()
        ),
        (
            Some("card"),
            Some("VISA"),
            Some("•••• 4358"),
            Some("12/30"),
            Some("contact-ada")
        ),
        "{card}"
    );
    let listed = fake
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|(op, _)| op == "capi/list")
        .count();
    assert!(listed >= 1, "the list came from PayTR");
    let utoken = fake.lock().unwrap().cards.keys().next().unwrap().clone();

    // A second card for the same contact is saved under the same utoken; the first keeps its id.
    let (_, form2) = post(&s, "/payments/page/paytr/setup", None, setup.clone()).await;
    assert_eq!(
        form2["fields"]["utoken"].as_str(),
        Some(utoken.as_str()),
        "{form2}"
    );
    browser_posts_card(
        form2["action"].as_str().unwrap(),
        &form2["fields"],
        "5406675406675403",
    )
    .await;
    let (_, cards) = query(list.clone()).await;
    assert_eq!(cards.as_array().unwrap().len(), 2, "{cards}");
    assert_eq!(cards[0]["id"], card["id"]);
    assert_eq!(fake.lock().unwrap().cards.len(), 1, "one utoken");
    // A card removed at PayTR is no longer listed.
    fake.lock()
        .unwrap()
        .cards
        .get_mut(&utoken)
        .unwrap()
        .remove(1);
    assert_eq!(query(list.clone()).await.1.as_array().unwrap().len(), 1);
    // The verification payments are refunded in full once PayTR has had our OK (a minute later), once.
    let later = api_backend::store::now_ms() + 61_000;
    let refunds = |f: &Fake| {
        f.requests
            .iter()
            .filter(|(op, _)| op == "iade")
            .map(|(_, r)| (r["merchant_oid"].clone(), r["return_amount"].clone()))
            .collect::<Vec<_>>()
    };
    assert!(
        refunds(&fake.lock().unwrap()).is_empty(),
        "not before PayTR had our OK"
    );
    assert_eq!(
        api_backend::payments::paytr_cards::refund_verifications(&s.api.state, later).await,
        2
    );
    let mut verified: Vec<(String, String)> = fake
        .lock()
        .unwrap()
        .direct_paid
        .iter()
        .map(|(oid, _, _, _)| (oid.clone(), "1.00".to_owned()))
        .collect();
    let mut refunded = refunds(&fake.lock().unwrap());
    verified.sort();
    refunded.sort();
    assert_eq!(refunded, verified);
    assert_eq!(
        api_backend::payments::paytr_cards::refund_verifications(&s.api.state, later).await,
        0
    );
    assert_eq!(refunds(&fake.lock().unwrap()).len(), 2, "each once");
    // Setups begun and never finished are bounded per contact.
    let other = json!({"publishableKey": pk, "locationId": "Loc1", "contactId": "contact-bob", "currency": "TRY"});
    for _ in 0..5 {
        assert_eq!(
            post(&s, "/payments/page/paytr/setup", None, other.clone())
                .await
                .0,
            200
        );
    }
    let (status, problem) = post(&s, "/payments/page/paytr/setup", None, other).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (429, Some("card_setups_pending")),
        "{problem}"
    );
    assert_eq!(
        post(&s, "/payments/page/paytr/setup", None, setup.clone())
            .await
            .0,
        200,
        "another contact is not held up"
    );
    // The setup payments are no transactions of HighLevel's: it hears nothing of them.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.sim.stats().payment_events_received, 0);

    // An off-session charge: recurring_payment with the utoken and ctoken, non_3d, no card; PayTR says success.
    let charge = |txn: &str| {
        json!({"type": "charge_payment", "apiKey": key, "paymentMethodId": card["id"], "contactId": "contact-ada",
        "transactionId": txn, "chargeDescription": "Invoice 7", "amount": 49.99, "currency": "TRY"})
    };
    let (status, paid) = query(charge("txn-c1")).await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(
        (
            paid["success"].as_bool(),
            paid["failed"].as_bool(),
            paid["chargeSnapshot"]["status"].as_str()
        ),
        (Some(true), Some(false), Some("succeeded")),
        "{paid}"
    );
    let (_, sent) = fake
        .lock()
        .unwrap()
        .requests
        .iter()
        .rev()
        .find(|(op, f)| op == "odeme" && f.contains_key("recurring_payment"))
        .cloned()
        .unwrap();
    let ctoken = fake.lock().unwrap().cards[&utoken][0]["ctoken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        (
            sent["utoken"].as_str(),
            sent["ctoken"].as_str(),
            sent["non_3d"].as_str(),
            sent["recurring_payment"].as_str(),
            sent["payment_amount"].as_str(),
            sent["currency"].as_str()
        ),
        (utoken.as_str(), ctoken.as_str(), "1", "1", "49.99", "TL")
    );
    assert!(!sent.contains_key("card_number") && !sent.contains_key("cvv"));
    wait_event(&s, "txn-c1").await;
    // HighLevel's repeat answers the first charge; PayTR is not asked again.
    let posts = |f: &Fake| f.requests.iter().filter(|(op, _)| op == "odeme").count();
    let before = posts(&fake.lock().unwrap());
    assert_eq!(
        query(charge("txn-c1")).await.1["chargeId"],
        paid["chargeId"]
    );
    assert_eq!(posts(&fake.lock().unwrap()), before);

    // wait_callback: pending until PayTR's notification settles it.
    fake.lock().unwrap().recurring = Some("wait_callback");
    let (_, waiting) = query(charge("txn-c2")).await;
    assert_eq!(
        (
            waiting["success"].as_bool(),
            waiting["failed"].as_bool(),
            waiting["chargeSnapshot"]["status"].as_str()
        ),
        (Some(false), Some(false), Some("pending")),
        "{waiting}"
    );
    let oid = fake.lock().unwrap().requests.last().unwrap().1["merchant_oid"].clone();
    assert_eq!(
        notify(&fake_url, &oid, "success", "4999", "TL", None).await,
        "OK"
    );
    let verify = json!({"type": "verify", "apiKey": key, "chargeId": waiting["chargeId"]});
    assert_eq!(query(verify).await.1, json!({"success": true}));
    wait_event(&s, "txn-c2").await;
    // failed + try_again: nothing charged, try later.
    fake.lock().unwrap().recurring = Some("try_again");
    let (_, later) = query(charge("txn-c3")).await;
    assert_eq!(later["failed"].as_bool(), Some(true), "{later}");
    assert!(
        later["message"]
            .as_str()
            .unwrap()
            .contains("try again later"),
        "{later}"
    );
    // failed: declined, with PayTR's reason.
    fake.lock().unwrap().recurring = Some("closed");
    let (_, declined) = query(charge("txn-c4")).await;
    assert_eq!(declined["failed"].as_bool(), Some(true), "{declined}");
    assert!(
        declined["message"].as_str().unwrap().contains("Kart banka"),
        "{declined}"
    );
    fake.lock().unwrap().recurring = None;

    // A subscription on the saved card: the first period at once, the renewal by the scheduler, both through
    // recurring_payment; HighLevel hears subscription.charged for each.
    let start = api_backend::store::now_ms();
    let (status, sub) = query(json!({"type": "create_subscription", "apiKey": key, "locationId": "Loc1", "contactId": "contact-ada",
        "paymentMethodId": card["id"], "subscriptionId": "ghl-sub-p", "transactionId": "txn-s1", "currency": "TRY", "amount": 10,
        "productDetails": [{"prices": [{"recurring": {"interval": "day", "intervalCount": 1}}]}]})).await;
    assert_eq!(
        (status, sub["success"].as_bool()),
        (200, Some(true)),
        "{sub}"
    );
    let recurring = |f: &Fake| {
        f.requests
            .iter()
            .filter(|(op, f)| op == "odeme" && f.contains_key("recurring_payment"))
            .count()
    };
    let before = recurring(&fake.lock().unwrap());
    let report =
        api_backend::payments::renewals::run_due(&s.api.state, start + 86_400_000 + 60_000)
            .await
            .unwrap();
    assert_eq!(report.charged, 1, "{report:?}");
    assert_eq!(recurring(&fake.lock().unwrap()), before + 1);
    let (_, renewal) = fake.lock().unwrap().requests.last().cloned().unwrap();
    assert_eq!(
        (
            renewal["payment_amount"].as_str(),
            renewal["ctoken"].as_str()
        ),
        ("10.00", ctoken.as_str())
    );
    for _ in 0..100 {
        let charged = s
            .sim
            .payment_events()
            .iter()
            .filter(|e| {
                e["ghlSubscriptionId"] == "ghl-sub-p" && e["event"] == "subscription.charged"
            })
            .count();
        if charged == 2 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "HighLevel did not hear of both periods: {:?}",
        s.sim.payment_events()
    );
}

/// HighLevel received `payment.captured` for its transaction.
async fn wait_event(s: &Stack, txn: &str) {
    for _ in 0..100 {
        if s.sim
            .payment_events()
            .iter()
            .any(|e| e["ghlTransactionId"] == txn && e["event"] == "payment.captured")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no payment.captured for {txn}: {:?}",
        s.sim.payment_events()
    );
}

/// Card setups nobody finishes: one PayTR's checkout closed on without a notification is marked failed by
/// the background pass (after asking PayTR's status query, which finds no payment), and stops counting. The
/// unfinished ones are bounded per location too (the browser names the contact): past 50, 429
/// `card_setups_pending` with `Retry-After`, and nothing is started.
async fn paytr_card_setups_expire_and_are_bounded(backend: Backend) {
    use api_backend::payments::paytr_cards::{
        expire_setups, MAX_UNFINISHED_SETUPS_PER_LOCATION, SETUP_EXPIRES_AFTER_MS,
    };
    let fake = Arc::new(Mutex::new(Fake::default()));
    let s = paytr_stack(backend, &fake).await;
    let (_, pk, _) = paytr_provider(&s, Some(true)).await;
    let setup = |contact: String| json!({"publishableKey": pk, "locationId": "Loc1", "contactId": contact, "currency": "TRY"});
    let (status, form) = post(
        &s,
        "/payments/page/paytr/setup",
        None,
        setup("contact-0".into()),
    )
    .await;
    assert_eq!(status, 200, "{form}");
    assert_eq!(
        form["pollForMs"].as_i64(),
        Some(SETUP_EXPIRES_AFTER_MS + 60_000),
        "the page is told how long to wait: {form}"
    );
    let charge = form["chargeId"].as_str().unwrap().to_owned();
    let now = api_backend::store::now_ms();
    // Before PayTR's checkout closes, nothing is settled.
    assert_eq!(expire_setups(&s.api.state, now).await, 0);
    assert_eq!(charge_status(&s, &pk, &charge).await["status"], "pending");
    // Once the page stopped waiting, PayTR's status query is asked; its 004 also means "still in progress" (a
    // bank's 3-D Secure step) and a Direct API payment has no checkout timeout (PayTR's documentation of the
    // status query and of the Direct API): still pending.
    let closed = now + SETUP_EXPIRES_AFTER_MS + 1_000;
    assert_eq!(expire_setups(&s.api.state, closed).await, 0);
    assert_eq!(charge_status(&s, &pk, &charge).await["status"], "pending");
    // A day after it began with still no payment: failed.
    let closed = now + api_backend::payments::paytr::DIRECT_GIVEN_UP_AFTER_MS + 1_000;
    assert_eq!(expire_setups(&s.api.state, closed).await, 1);
    let after = charge_status(&s, &pk, &charge).await;
    assert_eq!(after["status"], "failed", "{after}");
    assert!(
        after["message"]
            .as_str()
            .unwrap()
            .contains("checkout closed"),
        "{after}"
    );
    let oid = api_backend::payments::paytr::merchant_oid(&charge);
    assert!(
        fake.lock()
            .unwrap()
            .requests
            .iter()
            .any(|(op, f)| op == "durum-sorgu" && f["merchant_oid"] == oid),
        "PayTR's status query was asked"
    );
    assert_eq!(expire_setups(&s.api.state, closed).await, 0, "once");

    // A location's unfinished setups are bounded whatever contact the browser names.
    for n in 1..=MAX_UNFINISHED_SETUPS_PER_LOCATION {
        let (status, body) = post(
            &s,
            "/payments/page/paytr/setup",
            None,
            setup(format!("contact-{n}")),
        )
        .await;
        assert_eq!(status, 200, "{n}: {body}");
    }
    let res = client()
        .post(format!("{}/payments/page/paytr/setup", s.api.base_url))
        .json(&setup("contact-new".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(is_problem(&res));
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= (SETUP_EXPIRES_AFTER_MS / 1000) as u64);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "card_setups_pending", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("this location"),
        "{problem}"
    );
    let pending = s
        .api
        .state
        .db
        .run(|c| {
            api_backend::store::payments::pending_with_prefix(
                c,
                "Loc1",
                "contact-new",
                api_backend::payments::paytr_cards::CARD_SETUP_PREFIX,
                0,
            )
        })
        .await
        .unwrap();
    assert_eq!(pending, 0, "nothing was started");
    // Once PayTR's checkout has closed on them, they stop counting.
    while expire_setups(&s.api.state, closed + 120_000).await > 0 {}
    assert_eq!(
        post(
            &s,
            "/payments/page/paytr/setup",
            None,
            setup("contact-new".into())
        )
        .await
        .0,
        200
    );
}

/// PayTR's notification never came and the page never reported back (the customer paid and closed the tab),
/// so HighLevel never calls `verify`: once PayTR's checkout has closed, the background pass asks PayTR's status
/// query. A paid one is settled and HighLevel hears `payment.captured`; one PayTR has no payment for (004) has
/// failed. Neither is touched before the checkout closes, and each is settled once. (PayTR's status query;
/// issue 15: "a charge whose callback never came is settled by the status query".)
async fn paytr_charges_without_a_notification_are_settled_in_the_background(backend: Backend) {
    use api_backend::payments::charges::settle_unnotified_paytr;
    use api_backend::payments::paytr::CHECKOUT_CLOSED_AFTER_MS;
    let fake = Arc::new(Mutex::new(Fake::default()));
    let s = paytr_stack(backend, &fake).await;
    let (_, pk, _) = paytr_provider(&s, None).await;
    let mut opened = Vec::new();
    for txn in ["txn-gone-paid", "txn-gone-unpaid"] {
        checkout_at_sim(&s, "Loc1", txn, 49.99, "USD").await;
        let (status, page) = post(
            &s,
            "/payments/page/paytr",
            None,
            json!({"publishableKey": pk,
            "locationId": "Loc1", "transactionId": txn, "amount": 49.99, "currency": "USD", "email": "ada@example.test"}),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let oid = fake.lock().unwrap().requests.last().unwrap().1["merchant_oid"].clone();
        opened.push((page["chargeId"].as_str().unwrap().to_owned(), oid));
    }
    // The customer paid the first at PayTR; its notification is lost.
    fake.lock().unwrap().paid.push(opened[0].1.clone());
    let now = api_backend::store::now_ms();
    assert_eq!(
        settle_unnotified_paytr(&s.api.state, now).await,
        0,
        "the checkout is still open"
    );
    assert_eq!(
        charge_status(&s, &pk, &opened[0].0).await["status"],
        "pending"
    );
    let closed = now + CHECKOUT_CLOSED_AFTER_MS + 1_000;
    assert_eq!(settle_unnotified_paytr(&s.api.state, closed).await, 2);
    assert_eq!(
        charge_status(&s, &pk, &opened[0].0).await["status"],
        "succeeded"
    );
    assert_eq!(
        charge_status(&s, &pk, &opened[1].0).await["status"],
        "failed"
    );
    wait_event(&s, "txn-gone-paid").await;
    assert_eq!(
        settle_unnotified_paytr(&s.api.state, closed + 120_000).await,
        0,
        "once"
    );
}

/// `utoken` is not in the hash of PayTR's notification: a browser can post any with its card, and PayTR
/// echoes it. A notification bringing a token already kept for another contact is not kept for this one
/// (its cards would otherwise be listed, and could be charged, for the wrong contact); the other's stays.
async fn a_notification_cannot_give_a_contact_another_contacts_cards(backend: Backend) {
    let fake = Arc::new(Mutex::new(Fake::default()));
    let s = paytr_stack(backend, &fake).await;
    let (_, pk, _) = paytr_provider(&s, Some(true)).await;
    let url = fake.lock().unwrap().notify_url.clone().unwrap();
    for (contact, utoken) in [
        ("contact-victim", "utoken-victim"),
        ("contact-thief", "utoken-victim"),
    ] {
        let (status, form) = post(
            &s,
            "/payments/page/paytr/setup",
            None,
            json!({"publishableKey": pk,
            "locationId": "Loc1", "contactId": contact, "currency": "TRY"}),
        )
        .await;
        assert_eq!(status, 200, "{form}");
        let f = &form["fields"];
        let minor = direct_minor(f["payment_amount"].as_str().unwrap());
        let oid = f["merchant_oid"].as_str().unwrap();
        assert_eq!(
            notify(&url, oid, "success", &minor, "TRY", Some(utoken)).await,
            "OK"
        );
    }
    let kept = |contact: &'static str| {
        s.api
            .state
            .db
            .run(move |c| api_backend::store::paytr_customers::get(c, "Loc1", false, contact))
    };
    let victim = kept("contact-victim").await.unwrap().unwrap();
    assert!(victim.utoken_sealed.is_some(), "{victim:?}");
    let thief = kept("contact-thief").await.unwrap();
    assert!(
        thief.as_ref().is_none_or(|t| t.utoken_sealed.is_none()),
        "another contact's utoken was kept: {thief:?}"
    );
}

both_backends!(
    a_notification_cannot_give_a_contact_another_contacts_cards,
    paytr_without_direct_api_keeps_no_cards,
    paytr_cards_on_file,
    paytr_card_setups_expire_and_are_bounded,
    paytr_charges_without_a_notification_are_settled_in_the_background
);

/// Card on file with PayTR in a real browser: HighLevel's checkout (the simulator, on `localhost`) sends
/// `setup_initiate_props`; the page's form posts the card with our signed fields straight to a stand-in PayTR
/// (the fake, which checks the hash, stores the card, notifies our callback signed as PayTR signs, and sends
/// the browser to `merchant_ok_url`); the page ends with `custom_element_success_response` (no chargeId);
/// HighLevel lists the card and charges it off-session, and hears of the capture. Our server never sees the
/// card number.
#[actix_web::test]
async fn paytr_card_setup_in_a_real_browser() {
    use fantoccini::Locator;
    let fake = Arc::new(Mutex::new(Fake::default()));
    let fake_url = fake_paytr(fake.clone()).await;
    let api_port = crate::browser::free_port();
    let api_url = format!("http://127.0.0.1:{api_port}");
    let keys = service_common::KeyRing::generate_entry("k1");
    let s = stack_with(
        Backend::Sqlite,
        Default::default(),
        &[
            ("PORT", &api_port.to_string()),
            ("PUBLIC_BASE_URL", &api_url),
            ("PAYTR_API_URL", &fake_url),
            ("TOKEN_ENCRYPTION_KEYS", &keys),
            ("PAYMENT_EVENTS_INTERVAL_MS", "100"),
        ],
    )
    .await;
    fake.lock().unwrap().notify_url = Some(format!("{api_url}/payments/paytr/callback"));
    install(&s, "Location", &["Loc1"]).await;
    paytr_provider(&s, Some(true)).await;
    let Some((_driver, c)) = crate::browser::browser().await else {
        return;
    };
    let sim_port = url::Url::parse(&s.sim.base_url).unwrap().port().unwrap();
    c.goto(&format!(
        "http://localhost:{sim_port}/_sim/payments/checkout?locationId=Loc1&amount=0&currency=TRY&mode=setup"
    ))
    .await
    .unwrap();
    c.enter_frame(0).await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(
            "#card-form:not([hidden]) #owner-row:not([hidden])",
        ))
        .await
        .expect("the card form shows, with the name on the card");
    for (id, v) in [
        ("#owner", "Ada Lovelace"),
        ("#number", "4355 0843 5508 4358"),
        ("#exp-month", "12"),
        ("#exp-year", "2030"),
        ("#cvc", "000"),
    ] {
        c.find(Locator::Css(id))
            .await
            .unwrap()
            .send_keys(v)
            .await
            .unwrap();
    }
    c.find(Locator::Css("#pay"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.enter_parent_frame().await.unwrap();
    let mut result = Value::Null;
    for _ in 0..150 {
        let text = c
            .find(Locator::Css("#result"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if !text.is_empty() {
            result = serde_json::from_str(&text).unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        result["message"]["type"], "custom_element_success_response",
        "{result}"
    );
    assert!(
        result["message"].get("chargeId").is_none(),
        "no charge id after a setup: {result}"
    );
    // The card went to PayTR, with our signed fields; PayTR stored it.
    let (_, posted) = fake
        .lock()
        .unwrap()
        .requests
        .iter()
        .find(|(op, _)| op == "odeme")
        .cloned()
        .expect("the browser posted to PayTR");
    assert_eq!(
        (
            posted["card_number"].as_str(),
            posted["expiry_year"].as_str(),
            posted["cc_owner"].as_str(),
            posted["store_card"].as_str()
        ),
        ("4355084355084358", "30", "Ada Lovelace", "1")
    );
    let listed = result["verify"]
        .as_array()
        .expect("list_payment_methods answers an array")
        .clone();
    assert_eq!(listed.len(), 1, "{result}");
    assert_eq!(listed[0]["subTitle"], "•••• 4358");
    // HighLevel charges the saved card off-session.
    let answer = sim_post(&s, "/_sim/payments/query", json!({"locationId": "Loc1", "live": false, "payload": {
        "type": "charge_payment", "paymentMethodId": listed[0]["id"], "contactId": "sim-contact",
        "transactionId": "txn-paytr-off-1", "chargeDescription": "Invoice", "amount": 12.5, "currency": "TRY"}})).await;
    assert_eq!(answer["body"]["success"], true, "{answer}");
    wait_event(&s, "txn-paytr-off-1").await;
    c.close().await.unwrap();
}

/// A card setup the customer abandons at the bank's step, in a real browser: PayTR never notifies; once PayTR's
/// checkout has closed the setup is marked failed (the background pass; here called with a clock past the
/// closing), and the page stops waiting: it says what to check and sends HighLevel the error response.
#[actix_web::test]
async fn paytr_abandoned_card_setup_in_a_real_browser() {
    use fantoccini::Locator;
    let fake = Arc::new(Mutex::new(Fake {
        abandon_direct: true,
        ..Fake::default()
    }));
    let fake_url = fake_paytr(fake.clone()).await;
    let api_port = crate::browser::free_port();
    let api_url = format!("http://127.0.0.1:{api_port}");
    let keys = service_common::KeyRing::generate_entry("k1");
    let s = stack_with(
        Backend::Sqlite,
        Default::default(),
        &[
            ("PORT", &api_port.to_string()),
            ("PUBLIC_BASE_URL", &api_url),
            ("PAYTR_API_URL", &fake_url),
            ("TOKEN_ENCRYPTION_KEYS", &keys),
            ("PAYMENT_EVENTS_INTERVAL_MS", "100"),
        ],
    )
    .await;
    fake.lock().unwrap().notify_url = Some(format!("{api_url}/payments/paytr/callback"));
    install(&s, "Location", &["Loc1"]).await;
    paytr_provider(&s, Some(true)).await;
    let Some((_driver, c)) = crate::browser::browser().await else {
        return;
    };
    let sim_port = url::Url::parse(&s.sim.base_url).unwrap().port().unwrap();
    c.goto(&format!(
        "http://localhost:{sim_port}/_sim/payments/checkout?locationId=Loc1&amount=0&currency=TRY&mode=setup"
    ))
    .await
    .unwrap();
    c.enter_frame(0).await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(
            "#card-form:not([hidden]) #owner-row:not([hidden])",
        ))
        .await
        .expect("the card form shows");
    for (id, v) in [
        ("#owner", "Ada Lovelace"),
        ("#number", "4355 0843 5508 4358"),
        ("#exp-month", "12"),
        ("#exp-year", "2030"),
        ("#cvc", "000"),
    ] {
        c.find(Locator::Css(id))
            .await
            .unwrap()
            .send_keys(v)
            .await
            .unwrap();
    }
    c.find(Locator::Css("#pay"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The card reached PayTR, which waits on the bank's step; the page waits on PayTR.
    for _ in 0..100 {
        if fake
            .lock()
            .unwrap()
            .requests
            .iter()
            .any(|(op, _)| op == "odeme")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(fake
        .lock()
        .unwrap()
        .requests
        .iter()
        .any(|(op, _)| op == "odeme"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.enter_parent_frame().await.unwrap();
    let text = c
        .find(Locator::Css("#result"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.is_empty(), "still waiting for PayTR: {text}");
    // A day with no payment (a Direct API payment has no checkout timeout): the setup is marked failed.
    let closed = api_backend::store::now_ms()
        + api_backend::payments::paytr::DIRECT_GIVEN_UP_AFTER_MS
        + 1_000;
    assert_eq!(
        api_backend::payments::paytr_cards::expire_setups(&s.api.state, closed).await,
        1
    );
    let mut result = Value::Null;
    for _ in 0..100 {
        let text = c
            .find(Locator::Css("#result"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if !text.is_empty() {
            result = serde_json::from_str(&text).unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        result["message"]["type"], "custom_element_error_response",
        "{result}"
    );
    let description = result["message"]["error"]["description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        description.contains("checkout closed")
            && description.contains("Check that the card was confirmed"),
        "{description}"
    );
    // HighLevel lists no card.
    assert_eq!(result["verify"], json!([]), "{result}");
    // The page itself says so, with the form back for another try.
    c.enter_frame(0).await.unwrap();
    let shown = c
        .find(Locator::Css("#error"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        shown.contains("Check that the card was confirmed"),
        "{shown}"
    );

    // The page's own bound: when PayTR's word never comes and the server has not settled the setup either
    // (e.g. PayTR's status query is unreachable), the page stops polling after `pollForMs`. Its clock is moved
    // on 40 minutes instead of waiting them.
    c.enter_parent_frame().await.unwrap();
    c.goto(&format!(
        "http://localhost:{sim_port}/_sim/payments/checkout?locationId=Loc1&amount=0&currency=TRY&mode=setup"
    ))
    .await
    .unwrap();
    c.enter_frame(0).await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(
            "#card-form:not([hidden]) #owner-row:not([hidden])",
        ))
        .await
        .expect("the card form shows again");
    for (id, v) in [
        ("#owner", "Ada Lovelace"),
        ("#number", "4355 0843 5508 4358"),
        ("#exp-month", "12"),
        ("#exp-year", "2030"),
        ("#cvc", "000"),
    ] {
        c.find(Locator::Css(id))
            .await
            .unwrap()
            .send_keys(v)
            .await
            .unwrap();
    }
    let posted = || {
        fake.lock()
            .unwrap()
            .requests
            .iter()
            .filter(|(op, _)| op == "odeme")
            .count()
    };
    c.find(Locator::Css("#pay"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for _ in 0..100 {
        if posted() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(posted(), 2, "the second card went to PayTR");
    c.execute(
        "var real = Date.now.bind(Date); Date.now = function () { return real() + 40 * 60 * 1000; };",
        vec![],
    )
    .await
    .unwrap();
    c.enter_parent_frame().await.unwrap();
    let mut result = Value::Null;
    for _ in 0..100 {
        let text = c
            .find(Locator::Css("#result"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if !text.is_empty() {
            result = serde_json::from_str(&text).unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        result["message"]["type"], "custom_element_error_response",
        "{result}"
    );
    let description = result["message"]["error"]["description"].as_str().unwrap();
    assert!(
        description.contains("did not confirm the card in time")
            && description.contains("Check that the card was confirmed"),
        "{description}"
    );
    c.close().await.unwrap();
}

/// A subscription bought on the payment page of a PayTR provider with `paytr.directApi` (`mode:
/// "subscription"`): the page says it takes subscriptions; the same checks against HighLevel's records as the
/// sandbox's subscription checkout; the first period is a Direct API payment of HighLevel's amount with
/// `store_card=1`, posted by the browser straight to PayTR; PayTR's notification creates the subscription with
/// that period paid once, HighLevel's `verify` finds it, and the renewal charges the stored card off-session.
/// A price with a trial is refused for PayTR.
async fn paytr_subscription_from_the_page(backend: Backend) {
    use crate::browser_subscription::{hl_query, sim_price, subscription_at_sim};
    let fake = Arc::new(Mutex::new(Fake::default()));
    let (s, inst) = paytr_stack_installed(backend, &fake, true).await;
    let (_, pk, _) = paytr_provider(&s, Some(true)).await;
    let (status, check) = post(
        &s,
        "/payments/page/check",
        None,
        json!({"publishableKey": pk, "locationId": "Loc1"}),
    )
    .await;
    assert_eq!(
        (status, check["subscriptions"].as_bool()),
        (200, Some(true)),
        "{check}"
    );
    let (product, daily) = daily_plan_at_sim(&s, &inst).await;
    let trial = sim_price(
        &s,
        &inst,
        &product,
        json!({"type": "recurring", "amount": 49.99,
        "recurring": {"interval": "day", "intervalCount": 1}, "trialPeriod": 7}),
    )
    .await;
    subscription_at_sim(
        &s,
        "txn-ps-1",
        "ghl-ps-1",
        &product,
        &daily,
        49.99,
        "contact-ada",
    )
    .await;
    subscription_at_sim(
        &s,
        "txn-ps-t",
        "ghl-ps-t",
        &product,
        &trial,
        49.99,
        "contact-ada",
    )
    .await;
    let body = |txn: &str, sub: &str, amount: f64| {
        json!({"publishableKey": pk, "locationId": "Loc1",
        "transactionId": txn, "subscriptionId": sub, "amount": amount, "currency": "usd",
        "productId": product, "contactId": "contact-ada"})
    };
    let begin = |b: Value| post(&s, "/payments/page/paytr/subscribe", None, b);

    // The checks of the page's subscription checkout: the amount is HighLevel's; a trial is refused for PayTR.
    let (status, problem) = begin(body("txn-ps-1", "ghl-ps-1", 1.0)).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("amount_mismatch")),
        "{problem}"
    );
    let (status, problem) = begin(body("txn-ps-t", "ghl-ps-t", 49.99)).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("validation_failed")),
        "{problem}"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("trial"),
        "{problem}"
    );
    assert!(
        fake.lock().unwrap().requests.is_empty(),
        "PayTR was not asked"
    );

    let (status, form) = begin(body("txn-ps-1", "ghl-ps-1", 49.99)).await;
    assert_eq!(status, 200, "{form}");
    let f = &form["fields"];
    assert_eq!(
        (
            f["store_card"].as_str(),
            f["payment_amount"].as_str(),
            f["currency"].as_str(),
            f["non_3d"].as_str()
        ),
        (Some("1"), Some("49.99"), Some("USD"), Some("0")),
        "{form}"
    );
    let charge = form["chargeId"].as_str().unwrap().to_owned();
    let poll = || {
        let url = format!(
            "{}/payments/page/paytr/subscriptions/{charge}?publishableKey={pk}&locationId=Loc1",
            s.api.base_url
        );
        async move { send(client().get(url)).await.1 }
    };
    assert_eq!(poll().await["status"], "pending");
    assert_eq!(
        hl_query(&s, json!({"type": "verify", "subscriptionId": "ghl-ps-1"})).await,
        json!({"success": false})
    );
    // The same transaction cannot begin a second first period.
    let (status, problem) = begin(body("txn-ps-1", "ghl-ps-1", 49.99)).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("transaction_already_used")),
        "{problem}"
    );

    let page = browser_posts_card(form["action"].as_str().unwrap(), f, "4355084355084358").await;
    assert!(page.contains("result=ok"), "{page}");
    let done = poll().await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        hl_query(&s, json!({"type": "verify", "subscriptionId": "ghl-ps-1"})).await,
        json!({"success": true})
    );
    let sub = s
        .api
        .state
        .db
        .run(|c| api_backend::store::subscriptions::find(c, "Loc1", "ghl-ps-1"))
        .await
        .unwrap()
        .expect("the subscription was created");
    assert_eq!(done["subscriptionId"].as_str(), Some(sub.id.as_str()));
    assert_eq!(
        (
            sub.status.to_string().as_str(),
            sub.cycles_paid,
            sub.amount_minor,
            sub.transaction_id.as_str()
        ),
        ("active", 1, 4999, "txn-ps-1")
    );
    // The first period was paid once, by the browser's Direct API payment, under HighLevel's transaction.
    let paid: Vec<_> = fake.lock().unwrap().direct_paid.clone();
    assert_eq!(paid.len(), 1, "{paid:?}");
    assert_eq!((paid[0].1.as_str(), paid[0].2.as_str()), ("4999", "USD"));
    let first = s
        .api
        .state
        .db
        .run(|c| api_backend::store::payments::charge_by_transaction(c, "Loc1", "txn-ps-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            first.id.as_str(),
            first.status.to_string().as_str(),
            first.subscription_id.as_deref()
        ),
        (charge.as_str(), "succeeded", Some(sub.id.as_str()))
    );
    // HighLevel hears the subscription start and its first charge.
    let events = crate::browser_subscription::subscription_events(&s, "ghl-ps-1", 2).await;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(
        kinds.contains(&"subscription.active") && kinds.contains(&"subscription.charged"),
        "{kinds:?}"
    );
    // A repeat of the checkout answers the subscription and begins no second payment.
    let (status, again) = begin(body("txn-ps-1", "ghl-ps-1", 49.99)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (again["subscriptionId"].as_str(), again.get("action")),
        (Some(sub.id.as_str()), None),
        "{again}"
    );

    // The renewal charges the stored card off-session.
    let ctoken = fake.lock().unwrap().cards.values().next().unwrap()[0]["ctoken"]
        .as_str()
        .unwrap()
        .to_owned();
    let report = api_backend::payments::renewals::run_due(
        &s.api.state,
        api_backend::store::now_ms() + 86_400_000 + 60_000,
    )
    .await
    .unwrap();
    assert_eq!(report.charged, 1, "{report:?}");
    let (_, renewal) = fake
        .lock()
        .unwrap()
        .requests
        .iter()
        .rev()
        .find(|(op, f)| op == "odeme" && f.contains_key("recurring_payment"))
        .cloned()
        .unwrap();
    assert_eq!(
        (
            renewal["payment_amount"].as_str(),
            renewal["ctoken"].as_str()
        ),
        ("49.99", ctoken.as_str())
    );
    let sub = s
        .api
        .state
        .db
        .run(|c| api_backend::store::subscriptions::find(c, "Loc1", "ghl-ps-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sub.cycles_paid, 2);
}

/// PayTR's notification that the first period's payment failed: the checkout ends failed, the page's poll
/// says so, and nothing is created (no subscription, no card); HighLevel's `verify` does not find it.
async fn paytr_subscription_from_the_page_declined(backend: Backend) {
    use crate::browser_subscription::hl_query;
    let fake = Arc::new(Mutex::new(Fake::default()));
    let (s, inst) = paytr_stack_installed(backend, &fake, true).await;
    let (_, pk, key) = paytr_provider(&s, Some(true)).await;
    let (product, daily) = daily_plan_at_sim(&s, &inst).await;
    let form = begin_paytr_subscription(&s, &pk, &product, &daily, "txn-pd-1", "ghl-pd-1").await;
    let url = fake.lock().unwrap().notify_url.clone().unwrap();
    let oid = form["fields"]["merchant_oid"].as_str().unwrap();
    assert_eq!(notify(&url, oid, "failed", "4999", "USD", None).await, "OK");
    let charge = form["chargeId"].as_str().unwrap();
    let polled = send(client().get(format!(
        "{}/payments/page/paytr/subscriptions/{charge}?publishableKey={pk}&locationId=Loc1",
        s.api.base_url
    )))
    .await
    .1;
    assert_eq!(polled["status"], "failed", "{polled}");
    // The waiting terms are marked failed: a later notification cannot create the subscription.
    let ch = charge.to_owned();
    let waiting = s
        .api
        .state
        .db
        .run(move |c| api_backend::store::paytr_subscription_checkouts::by_charge(c, &ch))
        .await
        .unwrap()
        .expect("the checkout's terms were kept");
    assert_eq!(waiting.status, "failed", "{waiting:?}");
    assert!(polled["subscriptionId"].is_null(), "{polled}");
    assert_eq!(
        hl_query(&s, json!({"type": "verify", "subscriptionId": "ghl-pd-1"})).await,
        json!({"success": false})
    );
    let found = s
        .api
        .state
        .db
        .run(|c| api_backend::store::subscriptions::find(c, "Loc1", "ghl-pd-1"))
        .await
        .unwrap();
    assert!(found.is_none(), "{found:?}");
    let (_, cards) = post(
        &s,
        "/payments/query",
        None,
        json!({"type": "list_payment_methods", "apiKey": key,
        "locationId": "Loc1", "contactId": "contact-ada"}),
    )
    .await;
    assert_eq!(cards, json!([]));
    // A repeated notification changes nothing.
    assert_eq!(notify(&url, oid, "failed", "4999", "USD", None).await, "OK");
    assert_eq!(charge_status(&s, &pk, charge).await["status"], "failed");

    // A checkout whose notification never comes (the customer left at PayTR's page): once PayTR's checkout has
    // closed, the background pass asks the status query (no payment, 004) and the checkout fails as on a
    // failed notification; nothing is created.
    let form = begin_paytr_subscription(&s, &pk, &product, &daily, "txn-pd-2", "ghl-pd-2").await;
    let charge = form["chargeId"].as_str().unwrap().to_owned();
    // A Direct API payment has no checkout timeout, and 004 also means "in progress": still pending at 31
    // minutes, failed a day after it began.
    let now = api_backend::store::now_ms();
    let closed = now + api_backend::payments::paytr::CHECKOUT_CLOSED_AFTER_MS + 1_000;
    assert_eq!(
        api_backend::payments::charges::settle_unnotified_paytr(&s.api.state, closed).await,
        0
    );
    let given_up = now + api_backend::payments::paytr::DIRECT_GIVEN_UP_AFTER_MS + 1_000;
    assert_eq!(
        api_backend::payments::charges::settle_unnotified_paytr(&s.api.state, given_up).await,
        1
    );
    let ch = charge.clone();
    let waiting = s
        .api
        .state
        .db
        .run(move |c| api_backend::store::paytr_subscription_checkouts::by_charge(c, &ch))
        .await
        .unwrap()
        .expect("the checkout's terms were kept");
    assert_eq!(waiting.status, "failed", "{waiting:?}");
    assert_eq!(
        hl_query(&s, json!({"type": "verify", "subscriptionId": "ghl-pd-2"})).await,
        json!({"success": false})
    );
}

/// A first period PayTR was paid for while no subscription could be created (here PayTR's notification brings
/// no card to renew from) is refunded in full, once, a minute later (PayTR refuses refunds until it has our
/// `OK`): the customer never pays for a subscription that does not exist.
async fn a_paid_subscription_checkout_that_failed_is_refunded(backend: Backend) {
    use api_backend::payments::paytr_subscriptions::refund_paid_failures;
    let fake = Arc::new(Mutex::new(Fake::default()));
    let (s, inst) = paytr_stack_installed(backend, &fake, true).await;
    let (_, pk, _) = paytr_provider(&s, Some(true)).await;
    let (product, daily) = daily_plan_at_sim(&s, &inst).await;
    let form = begin_paytr_subscription(&s, &pk, &product, &daily, "txn-pf-1", "ghl-pf-1").await;
    let url = fake.lock().unwrap().notify_url.clone().unwrap();
    let oid = form["fields"]["merchant_oid"].as_str().unwrap().to_owned();
    // Paid, but no card stored (no `utoken`): no subscription can renew from it.
    assert_eq!(
        notify(&url, &oid, "success", "4999", "USD", None).await,
        "OK"
    );
    let charge = form["chargeId"].as_str().unwrap().to_owned();
    assert_eq!(charge_status(&s, &pk, &charge).await["status"], "succeeded");
    let now = api_backend::store::now_ms();
    assert_eq!(
        refund_paid_failures(&s.api.state, now).await,
        0,
        "not before PayTR has our OK"
    );
    let later = now + 120_000;
    assert_eq!(refund_paid_failures(&s.api.state, later).await, 1);
    let ch = charge.clone();
    let stored = s
        .api
        .state
        .db
        .run(move |c| api_backend::store::payments::charge(c, "Loc1", &ch))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.refunded_minor, 4999, "{stored:?}");
    assert_eq!(fake.lock().unwrap().returns.len(), 1);
    assert_eq!(
        refund_paid_failures(&s.api.state, later + 120_000).await,
        0,
        "once"
    );
}

both_backends!(
    a_paid_subscription_checkout_that_failed_is_refunded,
    paytr_subscription_from_the_page,
    paytr_subscription_from_the_page_declined
);

/// A subscription bought on HighLevel's checkout (the simulator's page, `mode=subscription`) with a PayTR
/// provider that has `paytr.directApi`, in a real browser: the page shows the card form (with the name on the
/// card), posts the card with our signed fields straight to PayTR for the first period's amount with
/// `store_card=1`, PayTR's notification creates the subscription, the page ends with
/// `custom_element_success_response {chargeId}` and HighLevel's `verify` with its `subscriptionId` finds it.
#[actix_web::test]
async fn paytr_subscription_in_a_real_browser() {
    use fantoccini::Locator;
    let fake = Arc::new(Mutex::new(Fake::default()));
    let (s, _) = paytr_stack_installed(Backend::Sqlite, &fake, true).await;
    paytr_provider(&s, Some(true)).await;
    let Some((_driver, c)) = crate::browser::browser().await else {
        return;
    };
    let sim_port = url::Url::parse(&s.sim.base_url).unwrap().port().unwrap();
    c.goto(&format!(
        "http://localhost:{sim_port}/_sim/payments/checkout?locationId=Loc1&amount=49.99&currency=USD&mode=subscription&interval=day"
    ))
    .await
    .unwrap();
    c.enter_frame(0).await.unwrap();
    let button = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#card-form:not([hidden]) #pay"))
        .await
        .expect("the card form shows");
    assert_eq!(button.text().await.unwrap(), "Subscribe");
    assert!(c
        .find(Locator::Css("#owner-row"))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap());
    for (id, v) in [
        ("#owner", "Ada Lovelace"),
        ("#number", "4355 0843 5508 4358"),
        ("#exp-month", "12"),
        ("#exp-year", "2030"),
        ("#cvc", "000"),
    ] {
        c.find(Locator::Css(id))
            .await
            .unwrap()
            .send_keys(v)
            .await
            .unwrap();
    }
    c.find(Locator::Css("#pay"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.enter_parent_frame().await.unwrap();
    let mut result = Value::Null;
    for _ in 0..150 {
        let text = c
            .find(Locator::Css("#result"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if !text.is_empty() {
            result = serde_json::from_str(&text).unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        result["message"]["type"], "custom_element_success_response",
        "{result}"
    );
    let charge_id = result["message"]["chargeId"]
        .as_str()
        .expect("the first period's charge")
        .to_owned();
    assert_eq!(result["verify"], json!({"success": true}), "{result}");
    // The card went to PayTR with our signed fields, for HighLevel's amount, stored by PayTR.
    let (_, posted) = fake
        .lock()
        .unwrap()
        .requests
        .iter()
        .find(|(op, _)| op == "odeme")
        .cloned()
        .expect("the browser posted to PayTR");
    assert_eq!(
        (
            posted["card_number"].as_str(),
            posted["payment_amount"].as_str(),
            posted["store_card"].as_str()
        ),
        ("4355084355084358", "49.99", "1")
    );
    let ghl_sub = result["subscriptionId"].as_str().unwrap().to_owned();
    let sub = s
        .api
        .state
        .db
        .run(move |c| api_backend::store::subscriptions::find(c, "Loc1", &ghl_sub))
        .await
        .unwrap()
        .expect("the subscription was created");
    assert_eq!(
        (sub.status.to_string(), sub.cycles_paid),
        ("active".to_owned(), 1)
    );
    let first = s
        .api
        .state
        .db
        .run(move |c| api_backend::store::payments::charge(c, "Loc1", &charge_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.subscription_id.as_deref(), Some(sub.id.as_str()));
    c.close().await.unwrap();
}
