//! The payment page in a real browser (Debian's chromium through chromedriver, driven by fantoccini): a host
//! page plays HighLevel's parent window. `SKIP_BROWSER_TESTS=1` skips these where no browser is installed.

use crate::common::*;
use actix_web::{web, App, HttpResponse, HttpServer};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::time::Duration;

/// chromedriver on a free port, stopped on drop.
pub(crate) struct Driver {
    child: std::process::Child,
    _profile: service_common::testing::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) async fn browser() -> Option<(Driver, Client)> {
    if std::env::var("SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("SKIP_BROWSER_TESTS=1: browser test skipped");
        return None;
    }
    let driver = which("chromedriver").expect("chromedriver is needed: apt-get install chromium chromium-driver (or SKIP_BROWSER_TESTS=1)");
    let port = free_port();
    let child = std::process::Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let profile = service_common::testing::TempDir::new("chromium-profile");
    let driver = Driver {
        child,
        _profile: profile,
    };
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if client().get(format!("{url}/status")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": which("chromium").unwrap_or_else(|| "/usr/bin/chromium".into()),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     format!("--user-data-dir={}", driver._profile.0.display())]
        }),
    );
    let c = ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&url)
        .await
        .expect("a chromium session");
    Some((driver, c))
}

fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| format!("{d}/{name}"))
        .find(|p| std::path::Path::new(p).exists())
}

/// HighLevel's parent window: frames the payment page, answers `custom_provider_ready` with the props, and
/// keeps every message it receives in `window.received`. `/attacker` is a foreign window that sends props too.
pub(crate) async fn host_server(port: u16, api_origin: String) -> actix_web::dev::ServerHandle {
    let server = HttpServer::new(move || {
        let api = api_origin.clone();
        App::new()
            .route("/host", web::get().to({
                let api = api.clone();
                move |q: web::Query<std::collections::HashMap<String, String>>| {
                    let api = api.clone();
                    async move { HttpResponse::Ok().content_type("text/html").body(host_page(&api, &q)) }
                }
            }))
            .route("/attacker", web::get().to(move |q: web::Query<std::collections::HashMap<String, String>>| {
                let props = q.get("props").cloned().unwrap_or_default();
                async move {
                    HttpResponse::Ok().content_type("text/html").body(format!(
                        "<script>var p = {props}; var n = 0; var t = setInterval(function () {{ parent.frames[0].postMessage(JSON.stringify(p), '*'); if (++n > 10) clearInterval(t); }}, 200);</script>"
                    ))
                }
            }))
    })
    .workers(1)
    .bind(("127.0.0.1", port))
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    handle
}

fn host_page(api: &str, q: &std::collections::HashMap<String, String>) -> String {
    let props = json!({
        "type": "payment_initiate_props", "publishableKey": q["pk"], "amount": 49.99, "currency": "usd", "mode": "payment",
        "productDetails": {"productId": "p1", "priceId": "pr1"}, "contact": {"id": "contact1", "name": "Ada"},
        "orderId": q["txn"], "transactionId": q["txn"], "subscriptionId": null, "locationId": q["loc"],
    });
    let answer = q.get("answer").is_none_or(|a| a != "no");
    let foreign = q
        .get("foreign")
        .map(|f| {
            format!(
                r#"<iframe src="{f}/attacker?props={}"></iframe>"#,
                urlencode(&props.to_string())
            )
        })
        .unwrap_or_default();
    format!(
        r#"<!doctype html><html><body>
<script>
window.received = [];
window.addEventListener("message", function (e) {{
  if (e.origin !== "{api}") return;
  var d = JSON.parse(e.data);
  window.received.push(d);
  if (d.type === "custom_provider_ready" && {answer}) {{
    document.getElementById("pay").contentWindow.postMessage(JSON.stringify({props}), "{api}");
  }}
}});
</script>
<iframe id="pay" src="{api}/payments/page" width="420" height="420"></iframe>
{foreign}
</body></html>"#
    )
}

pub(crate) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(crate) async fn received(c: &Client) -> Vec<Value> {
    c.execute("return window.received || [];", vec![])
        .await
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub(crate) async fn wait_message(c: &Client, kind: &str) -> Value {
    for _ in 0..100 {
        if let Some(m) = received(c).await.into_iter().find(|m| m["type"] == kind) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the host never received {kind}: {:?}", received(c).await);
}

pub(crate) async fn pay(c: &Client, card: &str) {
    c.enter_frame(0).await.unwrap();
    let form = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#card-form:not([hidden])"))
        .await
        .expect("the card form shows");
    let _ = form;
    for (id, v) in [
        ("#number", card),
        ("#exp-month", "12"),
        ("#exp-year", "2099"),
        ("#cvc", "123"),
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
}

#[actix_web::test]
async fn the_payment_page_in_a_real_browser() {
    let host_port = free_port();
    let host_origin = format!("http://127.0.0.1:{host_port}");
    let parents = format!("{host_origin} https://app.gohighlevel.com");
    let s = stack_with(
        service_common::testing::Backend::Sqlite,
        Default::default(),
        &[
            ("PAYMENT_PARENT_ORIGINS", &parents),
            ("PAYMENT_EVENTS_INTERVAL_MS", "100"),
        ],
    )
    .await;
    let Some((_driver, c)) = browser().await else {
        return;
    };
    install(&s, "Location", &["Loc1"]).await;
    install(&s, "Location", &["Loc2"]).await;
    let body = json!({"name": "Sandbox", "description": "Test", "imageUrl": "https://x.test/p.png", "gateway": "sandbox"});
    let token = service_token();
    let (_, p1) = put(
        &s,
        "/api/locations/Loc1/payments/provider",
        &token,
        body.clone(),
    )
    .await;
    let (_, p2) = put(&s, "/api/locations/Loc2/payments/provider", &token, body).await;
    let pk1 = p1["publishableKeys"]["test"].as_str().unwrap().to_owned();
    let pk2 = p2["publishableKeys"]["test"].as_str().unwrap().to_owned();
    // The host listens on the port the page was told to allow.
    let host = host_server(host_port, s.api.base_url.clone()).await;

    // The sandbox card that succeeds.
    checkout_at_sim(&s, "Loc1", "txn-browser-1", 49.99, "USD").await;
    c.goto(&format!(
        "{host_origin}/host?pk={pk1}&loc=Loc1&txn=txn-browser-1"
    ))
    .await
    .unwrap();
    assert_eq!(
        wait_message(&c, "custom_provider_ready").await["loaded"],
        true
    );
    pay(&c, "4242424242424242").await;
    let ok = wait_message(&c, "custom_element_success_response").await;
    let charge_id = ok["chargeId"].as_str().unwrap().to_owned();
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
    let (_, v) = post(&s, "/payments/query", None, json!({"type": "verify", "apiKey": key, "chargeId": charge_id, "transactionId": "txn-browser-1"})).await;
    assert_eq!(v, json!({"success": true}));
    for _ in 0..50 {
        if s.sim
            .payment_events()
            .iter()
            .any(|e| e["event"] == "payment.captured" && e["chargeId"] == charge_id.as_str())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        s.sim
            .payment_events()
            .iter()
            .any(|e| e["chargeId"] == charge_id.as_str()),
        "the simulator received payment.captured"
    );

    // A declining card: the error message, in the page and to the parent.
    checkout_at_sim(&s, "Loc1", "txn-browser-2", 49.99, "USD").await;
    c.goto(&format!(
        "{host_origin}/host?pk={pk1}&loc=Loc1&txn=txn-browser-2"
    ))
    .await
    .unwrap();
    wait_message(&c, "custom_provider_ready").await;
    pay(&c, "4000000000000002").await;
    let err = wait_message(&c, "custom_element_error_response").await;
    assert!(
        err["error"]["description"]
            .as_str()
            .unwrap()
            .contains("declined"),
        "{err}"
    );
    c.enter_frame(0).await.unwrap();
    let shown = c
        .find(Locator::Css("#error"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(shown.contains("declined"), "{shown}");
    c.enter_parent_frame().await.unwrap();

    // Another location's publishable key: ignored, the form never shows.
    checkout_at_sim(&s, "Loc1", "txn-browser-3", 49.99, "USD").await;
    c.goto(&format!(
        "{host_origin}/host?pk={pk2}&loc=Loc1&txn=txn-browser-3"
    ))
    .await
    .unwrap();
    wait_message(&c, "custom_provider_ready").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.enter_frame(0).await.unwrap();
    assert!(
        !c.find(Locator::Css("#card-form"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap(),
        "the form stays hidden"
    );
    c.enter_parent_frame().await.unwrap();

    // Props from a foreign window (another origin framed in the host): ignored.
    let foreign = format!("http://localhost:{host_port}");
    checkout_at_sim(&s, "Loc1", "txn-browser-4", 49.99, "USD").await;
    c.goto(&format!(
        "{host_origin}/host?pk={pk1}&loc=Loc1&txn=txn-browser-4&answer=no&foreign={}",
        urlencode(&foreign)
    ))
    .await
    .unwrap();
    wait_message(&c, "custom_provider_ready").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    c.enter_frame(0).await.unwrap();
    assert!(
        !c.find(Locator::Css("#card-form"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap(),
        "a foreign origin's props are ignored"
    );
    c.enter_parent_frame().await.unwrap();
    assert!(!received(&c)
        .await
        .iter()
        .any(|m| m["type"] == "custom_element_success_response"));
    c.close().await.unwrap();
    host.stop(false).await;
}

/// The page carries no inline script and allows framing only by the configured parents.
#[actix_web::test]
async fn the_payment_page_is_locked_down() {
    let s = stack_with(
        service_common::testing::Backend::Sqlite,
        Default::default(),
        &[(
            "PAYMENT_PARENT_ORIGINS",
            "https://app.gohighlevel.com,http://127.0.0.1:9999",
        )],
    )
    .await;
    let res = client()
        .get(format!("{}/payments/page", s.api.base_url))
        .send()
        .await
        .unwrap();
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert!(
        csp.ends_with("frame-ancestors https://app.gohighlevel.com http://127.0.0.1:9999 'self' https://www.paytr.com"),
        "{csp}"
    );
    let html = res.text().await.unwrap();
    assert!(
        !html.contains("<script>")
            && html.contains(r#"<script src="/payments/page.js" defer></script>"#)
    );
    assert!(
        html.contains(r#"data-parent-origins="https://app.gohighlevel.com http://127.0.0.1:9999""#)
    );
    let js = client()
        .get(format!("{}/payments/page.js", s.api.base_url))
        .send()
        .await
        .unwrap();
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/javascript"));
    let (status, body) = post(
        &s,
        "/payments/page/check",
        None,
        json!({"publishableKey": "pk_test_nope", "locationId": "Loc1"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("provider_key_invalid"))
    );
}

/// HighLevel's checkout (the simulator's checkout page) on an origin no list names, with a parent that sends
/// the props only after 3 s: the page keeps saying ready, takes the card, and `verify` says paid; HighLevel
/// (the simulator) receives `payment.captured`.
#[actix_web::test]
async fn checkout_on_any_origin_with_slow_props() {
    let s = checkout_stack().await;
    let Some((_driver, c)) = browser().await else {
        return;
    };
    // The simulator's own host under another name: `localhost`, not the 127.0.0.1 of any setting.
    c.goto(&format!(
        "{}/_sim/payments/checkout?locationId=Loc1&amount=49.99&currency=USD&mode=payment&propsDelayMs=3000",
        sim_on_localhost(&s)
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let early = received(&c).await;
    assert!(
        early
            .iter()
            .filter(|m| m["type"] == "custom_provider_ready")
            .count()
            >= 3,
        "ready is said again while the props are late: {early:?}"
    );
    pay(&c, "4242424242424242").await;
    let result = result_of(&c).await;
    assert_eq!(
        result["message"]["type"], "custom_element_success_response",
        "{result}"
    );
    assert_eq!(result["verify"], json!({"success": true}), "{result}");
    let txn = result["transactionId"].as_str().unwrap().to_owned();
    let e = event_for(&s, &txn)
        .await
        .expect("the simulator received payment.captured");
    assert_eq!(e["event"], "payment.captured");
    assert_eq!(
        e["_missing"],
        json!([]),
        "every field HighLevel requires: {e}"
    );
    assert_eq!(e["chargeSnapshot"]["amount"], json!(49.99));
    assert_eq!(e["chargeSnapshot"]["status"], "succeeded");
    c.close().await.unwrap();
}

/// Without PAYMENT_PARENT_ORIGINS, any https: origin may frame the page (checkout runs on agencies' own
/// domains); with it, only those.
#[actix_web::test]
async fn any_https_parent_by_default() {
    let s = stack(service_common::testing::Backend::Sqlite).await;
    let res = client()
        .get(format!("{}/payments/page", s.api.base_url))
        .send()
        .await
        .unwrap();
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.ends_with("frame-ancestors https:"), "{csp}");
    assert!(res
        .text()
        .await
        .unwrap()
        .contains(r#"data-parent-origins="""#));
}

/// A stack whose api-backend is reachable at its PUBLIC_BASE_URL (the simulator calls its queryUrl), with a
/// sandbox provider registered on Loc1.
pub(crate) async fn checkout_stack() -> Stack {
    let api_port = free_port();
    let api_url = format!("http://127.0.0.1:{api_port}");
    let s = stack_with(
        service_common::testing::Backend::Sqlite,
        Default::default(),
        &[
            ("PORT", &api_port.to_string()),
            ("PUBLIC_BASE_URL", &api_url),
            ("PAYMENT_EVENTS_INTERVAL_MS", "100"),
        ],
    )
    .await;
    install(&s, "Location", &["Loc1"]).await;
    let (status, out) = put(&s, "/api/locations/Loc1/payments/provider", &service_token(),
        json!({"name": "Sandbox", "description": "Test", "imageUrl": "https://x.test/p.png", "gateway": "sandbox"})).await;
    assert_eq!(status, 200, "{out}");
    s
}

/// The simulator under the name `localhost`: an origin no setting names.
pub(crate) fn sim_on_localhost(s: &Stack) -> String {
    let port = url::Url::parse(&s.sim.base_url).unwrap().port().unwrap();
    format!("http://localhost:{port}")
}

/// The payment event the simulator received for HighLevel's transaction `txn`, waiting up to 5 s.
pub(crate) async fn event_for(s: &Stack, txn: &str) -> Option<Value> {
    for _ in 0..50 {
        if let Some(e) = s
            .sim
            .payment_events()
            .into_iter()
            .find(|e| e["ghlTransactionId"] == txn)
        {
            return Some(e);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

pub(crate) async fn result_of(c: &Client) -> Value {
    for _ in 0..100 {
        let text = c
            .find(Locator::Css("#result"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if !text.is_empty() {
            return serde_json::from_str(&text).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the checkout page never finished");
}

/// Card on file as HighLevel runs it: the page says it keeps cards, saves one from `setup_initiate_props`
/// without charging it, HighLevel lists it (`list_payment_methods`) and charges it off-session
/// (`charge_payment`), and hears of the capture.
#[actix_web::test]
async fn card_on_file_saved_listed_and_charged() {
    let s = checkout_stack().await;
    let Some((_driver, c)) = browser().await else {
        return;
    };
    c.goto(&format!(
        "{}/_sim/payments/checkout?locationId=Loc1&amount=0&currency=USD&mode=setup",
        sim_on_localhost(&s)
    ))
    .await
    .unwrap();
    let ready = wait_message(&c, "custom_provider_ready").await;
    assert_eq!(ready["addCardOnFileSupported"], true, "{ready}");
    pay(&c, "4242424242424242").await;
    let result = result_of(&c).await;
    assert_eq!(
        result["message"]["type"], "custom_element_success_response",
        "{result}"
    );
    assert!(
        result["message"].get("chargeId").is_none(),
        "no charge after a setup: {result}"
    );
    let listed = result["verify"]
        .as_array()
        .expect("list_payment_methods answers an array")
        .clone();
    assert_eq!(listed.len(), 1, "{result}");
    assert!(listed[0]["subTitle"].as_str().unwrap().ends_with("4242"));
    assert_eq!(
        sim_count(&s, "POST /payments/custom-provider/webhook"),
        0,
        "nothing was charged"
    );
    // HighLevel charges the saved card off-session.
    let answer = sim_post(&s, "/_sim/payments/query", json!({"locationId": "Loc1", "live": false, "payload": {
        "type": "charge_payment", "paymentMethodId": listed[0]["id"], "contactId": "sim-contact",
        "transactionId": "txn-off-session-1", "chargeDescription": "Renewal", "amount": 12.5, "currency": "USD"}})).await;
    assert_eq!(answer["body"]["success"], true, "{answer}");
    let e = event_for(&s, "txn-off-session-1")
        .await
        .expect("HighLevel heard of the off-session charge");
    assert_eq!(
        (e["event"].as_str(), e["_missing"].clone()),
        (Some("payment.captured"), json!([]))
    );
    c.close().await.unwrap();
}
