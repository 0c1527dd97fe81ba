#![allow(dead_code)]
//! Test harness: highlevel-sim, oauth-backend and api-backend on random ports; installs through the real
//! OAuth dance; sessions built with `openssl enc` (an implementation independent of ours).

use api_backend::payments::keys::{api_key, Mode};
use highlevel_sim::{RunningSim, SimConfig};
use serde_json::{json, Value};
use service_common::testing::{Backend, TestDb};

pub const SERVICE_SECRET: &str = "test-service-secret-0123456789abcdef0123456789";
pub const SSO_KEY: &str = "test-shared-secret-for-user-context";
pub const PUBLIC_URL: &str = "https://app.example.test";

pub struct Stack {
    pub sim: RunningSim,
    pub oauth: oauth_backend::RunningApp,
    pub api: api_backend::RunningApp,
    pub db: TestDb,
    _oauth_db: TestDb,
}

pub async fn stack(backend: Backend) -> Stack {
    stack_with(backend, SimConfig::default(), &[]).await
}

pub fn sim_config(burst: u32, window_ms: u64) -> SimConfig {
    SimConfig {
        rate_burst: burst,
        rate_window_ms: window_ms,
        ..SimConfig::default()
    }
}

pub fn api_settings(
    sim: &RunningSim,
    oauth_url: &str,
    db: &TestDb,
    extra: &[(&str, &str)],
) -> api_backend::Settings {
    let mut all: Vec<(&str, String)> = vec![
        ("HIGHLEVEL_SSO_KEY", SSO_KEY.into()),
        ("PUBLIC_BASE_URL", PUBLIC_URL.into()),
        ("CORS_ALLOWED_ORIGINS", "https://app.gohighlevel.com".into()),
        ("DB_POOL_SIZE", "4".into()),
        ("HIGHLEVEL_TIMEOUT_MS", "5000".into()),
    ];
    all.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    api_backend::Settings::for_simulator(&sim.base_url, oauth_url, &db.url, SERVICE_SECRET, &all)
        .unwrap()
}

/// The environment api-backend runs with as its own process (the binary, as a deployment runs it) on the
/// stack's database and simulator; `extra` comes last and wins.
pub fn replica_env<'a>(s: &Stack, extra: &[(&'a str, &str)]) -> Vec<(&'a str, String)> {
    let mut env = api_backend::Settings::simulator_env(
        &s.sim.base_url,
        &s.oauth.base_url,
        &s.db.url,
        SERVICE_SECRET,
    );
    env.extend([
        ("HIGHLEVEL_SSO_KEY", SSO_KEY.to_owned()),
        ("DB_POOL_SIZE", "8".to_owned()),
        ("RUST_LOG", "error".to_owned()),
    ]);
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    env
}

/// api-backend as its own process on the stack's database and simulator (see [`replica_env`]).
pub async fn replica(s: &Stack, extra: &[(&str, &str)]) -> service_common::testing::ChildService {
    service_common::testing::ChildService::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_api-backend")),
        &replica_env(s, extra),
        None,
    )
    .await
    .unwrap()
}

/// A stack whose simulator counts the rate limit as `sim` says (tests that do not test pacing get a limit
/// high enough never to matter).
pub async fn stack_with(backend: Backend, sim: SimConfig, api_extra: &[(&str, &str)]) -> Stack {
    stack_on(TestDb::new(backend), TestDb::new(backend), sim, api_extra).await
}

/// A stack on the given databases (oauth-backend's, api-backend's), e.g. on a drill's own PostgreSQL server.
pub async fn stack_on(
    oauth_db: TestDb,
    db: TestDb,
    sim: SimConfig,
    api_extra: &[(&str, &str)],
) -> Stack {
    stack_scoped(oauth_db, db, sim, api_extra, None).await
}

/// A stack whose app asks for `scopes` at install (HIGHLEVEL_SCOPES) instead of the development set.
pub async fn stack_scoped(
    oauth_db: TestDb,
    db: TestDb,
    sim: SimConfig,
    api_extra: &[(&str, &str)],
    scopes: Option<&str>,
) -> Stack {
    let sim = highlevel_sim::spawn(SimConfig {
        port: 0,
        workers: 2,
        ..sim
    })
    .await
    .unwrap();
    for (l, n) in [("Loc1", "First"), ("Loc2", "Second"), ("Loc3", "Third")] {
        sim.add_location("comp1", l, n);
    }
    sim.add_location("comp2", "Other1", "Other company");
    // oauth-backend checks webhooks with the simulator's signing keys (as it would with HighLevel's).
    let keys: Value = client()
        .get(format!("{}/_sim/keys", sim.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let oauth_settings = oauth_backend::Settings::for_simulator(
        &sim.base_url,
        &oauth_db.url,
        &service_common::KeyRing::generate_entry("k1"),
        SERVICE_SECRET,
        &[
            (
                "POST_INSTALL_REDIRECT_URL",
                "http://127.0.0.1:9/installed".into(),
            ),
            (
                "WEBHOOK_ED25519_PUBLIC_KEY",
                keys["ed25519"]["publicKeyPem"].as_str().unwrap().into(),
            ),
            (
                "WEBHOOK_RSA_PUBLIC_KEY",
                keys["rsa"]["publicKeyPem"].as_str().unwrap().into(),
            ),
            ("REFRESHER_INTERVAL_SECS", "0".into()),
            ("DB_POOL_SIZE", "4".into()),
            // PayTR's token request names the paying contact, read from HighLevel.
            (
                "HIGHLEVEL_SCOPES",
                scopes.map_or_else(
                    || format!("{} contacts.readonly", oauth_backend::settings::DEV_SCOPES),
                    str::to_owned,
                ),
            ),
        ],
    )
    .unwrap();
    let oauth = oauth_backend::spawn_app(oauth_settings).await.unwrap();
    let api = api_backend::spawn_app(api_settings(&sim, &oauth.base_url, &db, api_extra))
        .await
        .unwrap();
    Stack {
        sim,
        oauth,
        api,
        db,
        _oauth_db: oauth_db,
    }
}

thread_local! {
    // Idle connections are dropped before the services' keep-alive (actix: 5 s) would close them: a request
    // sent on a connection the server is closing at that moment fails with no answer (hyper's IncompleteMessage).
    static CLIENT: reqwest::Client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build()
        .unwrap();
}

/// A service's `/metrics` text.
pub async fn metrics_text(base: &str) -> String {
    client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// An `api_highlevel_pacing_total` counter in a `/metrics` text; `None` before it is first counted.
pub fn pacing_counter(metrics: &str, counter: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                "api_highlevel_pacing_total{{counter=\"{counter}\"}} "
            ))
        })
        .and_then(|v| v.trim().parse().ok())
}

/// Polls `done` every 100 ms for up to 10 s.
pub async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

pub fn client() -> reqwest::Client {
    CLIENT.with(|c| c.clone())
}

/// The OAuth dance through oauth-backend and the simulator's consent page; the new installation's id.
pub async fn install(s: &Stack, user_type: &str, locations: &[&str]) -> String {
    match try_install(s, user_type, locations).await {
        Ok(id) => id,
        Err(refused) => panic!("the install failed: {refused:?}"),
    }
}

/// An install that may fail (a drill's database outage): the id, or the refusing answer's status and whether
/// it was a problem body.
pub async fn try_install(
    s: &Stack,
    user_type: &str,
    locations: &[&str],
) -> Result<String, (u16, bool)> {
    let mut url = format!(
        "{}/oauth/install?user_type={user_type}&sim_user_type={user_type}",
        s.oauth.base_url
    );
    for l in locations {
        url.push_str(&format!("&sim_location_id={l}"));
    }
    let refused = |res: &reqwest::Response| (res.status().as_u16(), is_problem(res));
    let c = client();
    let res = c.get(&url).send().await.unwrap();
    if res.status() != 302 {
        return Err(refused(&res));
    }
    let consent = res.headers()["location"].to_str().unwrap().to_owned();
    let res = c.get(&consent).send().await.unwrap();
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
    if res.status() != 302 {
        return Err(refused(&res));
    }
    let done = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    Ok(done
        .query_pairs()
        .find(|(k, _)| k == "installation_id")
        .unwrap()
        .1
        .into_owned())
}

/// Whether an answer is an `application/problem+json` body.
pub fn is_problem(res: &reqwest::Response) -> bool {
    res.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json"))
}

/// A service JWT for api-backend.
pub fn service_token() -> String {
    let auth = service_common::ServiceAuth::for_audiences(
        &SERVICE_SECRET.to_owned().into(),
        &["api-backend"],
    );
    auth.issue("test-job", 300, None).unwrap()
}

/// A service JWT for oauth-backend (to read tokens the way a job would).
pub fn oauth_token() -> String {
    service_common::ServiceAuth::new(&SERVICE_SECRET.to_owned().into())
        .issue("test", 300, None)
        .unwrap()
}

/// HighLevel's encrypted user context, made by `openssl enc` (CryptoJS's passphrase format).
pub fn sso_payload(user: &Value, key: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .args([
            "enc",
            "-aes-256-cbc",
            "-md",
            "md5",
            "-salt",
            "-a",
            "-A",
            "-pass",
        ])
        .arg(format!("pass:{key}"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl must be installed for the session tests");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(user.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A session for a location user of `location`, or (None) an agency user of comp1.
pub async fn session(s: &Stack, location: Option<&str>) -> String {
    let user = match location {
        Some(l) => {
            json!({"userId": "u-loc", "companyId": "comp1", "role": "admin", "type": "location", "activeLocation": l, "userName": "Loc User", "email": "l@example.test"})
        }
        None => {
            json!({"userId": "u-agency", "companyId": "comp1", "role": "admin", "type": "agency", "isAgencyOwner": true})
        }
    };
    let (status, body) = post(
        s,
        "/api/sessions",
        None,
        json!({"sso": sso_payload(&user, SSO_KEY)}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

pub async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub async fn get(s: &Stack, path: &str, token: &str) -> (u16, Value) {
    send(
        client()
            .get(format!("{}{path}", s.api.base_url))
            .bearer_auth(token),
    )
    .await
}

pub async fn post(s: &Stack, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = client()
        .post(format!("{}{path}", s.api.base_url))
        .json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    send(r).await
}

pub async fn put(s: &Stack, path: &str, token: &str, body: Value) -> (u16, Value) {
    send(
        client()
            .put(format!("{}{path}", s.api.base_url))
            .bearer_auth(token)
            .json(&body),
    )
    .await
}

pub async fn delete(s: &Stack, path: &str, token: &str) -> (u16, Value) {
    send(
        client()
            .delete(format!("{}{path}", s.api.base_url))
            .bearer_auth(token),
    )
    .await
}

pub async fn sim_post(s: &Stack, path: &str, body: Value) -> Value {
    send(
        client()
            .post(format!("{}{path}", s.sim.base_url))
            .json(&body),
    )
    .await
    .1
}

/// A token from oauth-backend, as a job would fetch it.
pub async fn token_for(s: &Stack, installation: &str, location: Option<&str>) -> Value {
    let mut url = format!("{}/api/token-access/{installation}", s.oauth.base_url);
    if let Some(l) = location {
        url.push_str(&format!("?location_id={l}"));
    }
    let (status, body) = send(client().get(url).bearer_auth(oauth_token())).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Calls the simulator directly, as an app calling HighLevel itself would.
pub async fn hl(
    s: &Stack,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = client()
        .request(method, format!("{}{path}", s.sim.base_url))
        .header("Version", "2021-07-28")
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    send(r).await
}

/// Products the simulator holds for a location (read with a fresh Location token).
pub async fn sim_products(s: &Stack, installation: &str, location: &str) -> Vec<Value> {
    let t = token_for(s, installation, Some(location)).await;
    let mut all = Vec::new();
    loop {
        let (status, body) = hl(
            s,
            reqwest::Method::GET,
            &format!(
                "/products/?locationId={location}&limit=100&offset={}",
                all.len()
            ),
            t["access_token"].as_str().unwrap(),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let page = body["products"].as_array().unwrap().clone();
        let last = page.len() < 100;
        all.extend(page);
        if last {
            return all;
        }
    }
}

pub async fn sim_media(s: &Stack, installation: &str, location: &str) -> Vec<Value> {
    let t = token_for(s, installation, Some(location)).await;
    let path = format!(
        "/medias/files?altId={location}&altType=location&sortBy=createdAt&sortOrder=desc&type=file"
    );
    let (status, body) = hl(
        s,
        reqwest::Method::GET,
        &path,
        t["access_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["files"].as_array().unwrap().clone()
}

/// How many requests the simulator saw for routes starting with `prefix` (e.g. `POST /products`).
pub fn sim_count(s: &Stack, prefix: &str) -> u64 {
    s.sim
        .stats()
        .requests
        .iter()
        .filter(|(route, _)| route.starts_with(prefix))
        .map(|(_, by_status)| by_status.values().sum::<u64>())
        .sum()
}

pub fn product_body(name: &str) -> Value {
    json!({
        "name": name,
        "productType": "DIGITAL",
        "description": "made by a test",
        "images": ["https://cdn.example.test/a.png", "https://cdn.example.test/b.png"],
        "prices": [
            {"name": "Once", "type": "one_time", "currency": "USD", "amount": 99.99},
            {"name": "Monthly", "type": "recurring", "currency": "USD", "amount": 9.5, "recurring": {"interval": "month", "intervalCount": 1}}
        ]
    })
}

/// Registers a sandbox provider on `location`; answers its test publishable key and test api key.
pub async fn provider(s: &Stack, location: &str) -> (String, String) {
    let (status, out) = put(s, &format!("/api/locations/{location}/payments/provider"), &service_token(),
        json!({"name": "Sandbox", "description": "Test payments", "imageUrl": "https://x.test/p.png", "gateway": "sandbox"})).await;
    assert_eq!(status, 200, "{out}");
    let l = location.to_owned();
    let row = s
        .api
        .state
        .db
        .run(move |c| api_backend::store::providers::get(c, &l))
        .await
        .unwrap()
        .unwrap();
    let key = api_key(
        &SERVICE_SECRET.to_owned().into(),
        location,
        Mode::Test,
        &row.api_key_salt,
    );
    (
        out["publishableKeys"]["test"].as_str().unwrap().to_owned(),
        key,
    )
}

/// What HighLevel records when a checkout starts: an order and transaction `txn` of `amount` (major units).
pub async fn checkout_at_sim(s: &Stack, location: &str, txn: &str, amount: f64, currency: &str) {
    let out = sim_post(
        s,
        "/_sim/payments/orders",
        json!({"locationId": location, "transactionId": txn, "amount": amount, "currency": currency}),
    )
    .await;
    assert_eq!(out["transactionId"], txn, "{out}");
}

/// A charge through the payment page's API with a test card, for a transaction of 49.99 USD HighLevel
/// recorded first (as its checkout does).
pub async fn page_charge(
    s: &Stack,
    pk: &str,
    location: &str,
    txn: &str,
    card: &str,
    save: bool,
) -> (u16, Value) {
    checkout_at_sim(s, location, txn, 49.99, "USD").await;
    post(s, "/payments/page/charge", None, json!({
        "publishableKey": pk, "locationId": location, "transactionId": txn, "amount": 49.99, "currency": "USD",
        "contactId": "contact1", "saveCard": save,
        "card": {"number": card, "expMonth": 12, "expYear": 2099, "cvc": "123"}
    })).await
}
