#![allow(dead_code)]
//! Test harness: a simulator, a real database (a SQLite file, or a fresh schema in the PostgreSQL test
//! database), and oauth-backend on a random port.

use highlevel_sim::{RunningSim, SimConfig};
use oauth_backend::{RunningApp, Settings};
use serde_json::Value;

pub use service_common::testing::{Backend, TestDb};

pub const SCOPES: &str = "products.write products.readonly oauth.write oauth.readonly medias.write";
pub const SERVICE_SECRET: &str = "test-service-secret-0123456789abcdef0123456789";

pub async fn sim() -> RunningSim {
    sim_with(SimConfig::default()).await
}

pub async fn sim_with(config: SimConfig) -> RunningSim {
    let sim = highlevel_sim::spawn(SimConfig {
        port: 0,
        workers: 2,
        rate_burst: 100_000,
        ..config
    })
    .await
    .unwrap();
    sim.add_location("comp1", "Loc1", "First");
    sim.add_location("comp1", "Loc2", "Second");
    sim.add_location("comp1", "Loc3", "Third");
    sim
}

pub fn settings(sim: &RunningSim, db: &TestDb, keys: &str, extra: &[(&str, &str)]) -> Settings {
    let mut all: Vec<(&str, String)> = vec![
        ("HIGHLEVEL_SCOPES", SCOPES.into()),
        (
            "POST_INSTALL_REDIRECT_URL",
            "http://127.0.0.1:9/installed".into(),
        ),
        ("REFRESHER_INTERVAL_SECS", "0".into()),
        ("DB_POOL_SIZE", "8".into()),
        ("HIGHLEVEL_TIMEOUT_MS", "5000".into()),
    ];
    all.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    Settings::for_simulator(&sim.base_url, &db.url, keys, SERVICE_SECRET, &all).unwrap()
}

pub struct Env {
    pub sim: RunningSim,
    pub db: TestDb,
    pub app: RunningApp,
    pub keys: String,
}

pub async fn env(backend: Backend) -> Env {
    env_with(backend, &[]).await
}

pub async fn env_with(backend: Backend, extra: &[(&str, &str)]) -> Env {
    let sim = sim().await;
    let db = TestDb::new(backend);
    let keys = oauth_backend::crypto::keyring::KeyRing::generate_entry("k1");
    let app = oauth_backend::spawn_app(settings(&sim, &db, &keys, extra))
        .await
        .unwrap();
    Env { sim, db, app, keys }
}

impl Env {
    /// Another replica on the same database.
    pub async fn replica(&self) -> RunningApp {
        oauth_backend::spawn_app(settings(&self.sim, &self.db, &self.keys, &[]))
            .await
            .unwrap()
    }
}

thread_local! {
    // One client per test thread (each test has its own thread and runtime): building a client is costly,
    // and a storm of 200 calls must not spend its time loading TLS roots.
    static CLIENT: reqwest::Client =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
}

pub fn client() -> reqwest::Client {
    CLIENT.with(|c| c.clone())
}

pub fn service_token(app: &RunningApp, caller: &str, installations: Option<Vec<String>>) -> String {
    app.state.auth.issue(caller, 300, installations).unwrap()
}

/// The whole install dance: /oauth/install → the simulator's consent → /oauth/callback. Returns the
/// installation id the callback redirected with.
pub async fn install(app: &RunningApp, user_type: &str, locations: &[&str]) -> String {
    install_at(&app.base_url, user_type, locations).await
}

/// `install` against any oauth-backend (e.g. one running as its own process).
pub async fn install_at(base_url: &str, user_type: &str, locations: &[&str]) -> String {
    let mut url =
        format!("{base_url}/oauth/install?user_type={user_type}&sim_user_type={user_type}");
    for l in locations {
        url.push_str(&format!("&sim_location_id={l}"));
    }
    let c = client();
    let res = c.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let consent = res.headers()["location"].to_str().unwrap().to_owned();
    let res = c.get(&consent).send().await.unwrap();
    assert_eq!(res.status(), 302, "{}", res.text().await.unwrap());
    let back = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let callback = format!("{base_url}/oauth/callback?{}", back.query().unwrap());
    let res = c.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 302, "{}", res.text().await.unwrap());
    let done = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    done.query_pairs()
        .find(|(k, _)| k == "installation_id")
        .unwrap()
        .1
        .into_owned()
}

pub async fn token_access(
    app: &RunningApp,
    id: &str,
    location: Option<&str>,
    token: &str,
) -> (u16, Value) {
    let mut url = format!("{}/api/token-access/{id}", app.base_url);
    if let Some(l) = location {
        url.push_str(&format!("?location_id={l}"));
    }
    let res = client().get(url).bearer_auth(token).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub async fn refresh(
    app: &RunningApp,
    id: &str,
    location: Option<&str>,
    token: &str,
    rejected: &str,
) -> (u16, Value) {
    let mut url = format!("{}/api/token-access/{id}/refresh", app.base_url);
    if let Some(l) = location {
        url.push_str(&format!("?location_id={l}"));
    }
    let res = client()
        .post(url)
        .bearer_auth(token)
        .json(&serde_json::json!({"rejected_token": rejected}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// `GET /api/installations{rest}` (e.g. `/inst_…` or `?company_id=…`) with a service token.
pub async fn installations_api(app: &RunningApp, rest: &str, token: &str) -> (u16, Value) {
    let res = client()
        .get(format!("{}/api/installations{rest}", app.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Calls the simulator like a client of HighLevel would, with a token.
pub async fn hl_get(sim: &RunningSim, path: &str, token: &str) -> u16 {
    client()
        .get(format!("{}{path}", sim.base_url))
        .header("Version", "2021-07-28")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub async fn sim_post(sim: &RunningSim, path: &str, body: Value) -> Value {
    client()
        .post(format!("{}{path}", sim.base_url))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(Value::Null)
}

/// Waits until the buffered audit log holds at least `n` entries for the installation.
pub async fn audit_entries(
    app: &RunningApp,
    id: &str,
    n: usize,
) -> Vec<oauth_backend::store::audit::AuditEntry> {
    for _ in 0..100 {
        let owned = id.to_owned();
        let rows = app
            .state
            .tokens
            .db
            .run(move |c| oauth_backend::store::audit::for_installation(c, &owned))
            .await
            .unwrap();
        if rows.len() >= n {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("audit log never reached {n} entries");
}

/// An install started on the app's Marketplace listing, as HighLevel plays it: the simulator's listing sends
/// the browser to the callback with `?code=` only. Answers the callback's response.
pub async fn marketplace_install_at(
    sim: &RunningSim,
    base_url: &str,
    user_type: &str,
    locations: &[&str],
) -> reqwest::Response {
    let mut url = url::Url::parse(&format!("{}/_sim/marketplace/install", sim.base_url)).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("user_type", user_type)
            .append_pair("redirect_uri", &format!("{base_url}/oauth/callback"));
        for l in locations {
            q.append_pair("location_id", l);
        }
    }
    let c = client();
    let res = c.get(url).send().await.unwrap();
    assert_eq!(res.status(), 302, "{}", res.text().await.unwrap());
    let back = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let keys: Vec<String> = back.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert_eq!(keys, ["code"], "HighLevel sends only the code: {back}");
    c.get(back).send().await.unwrap()
}

/// The installation id a callback answered with (its redirect to POST_INSTALL_REDIRECT_URL).
pub fn installed_id(res: &reqwest::Response) -> String {
    let done = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    done.query_pairs()
        .find(|(k, _)| k == "installation_id")
        .unwrap()
        .1
        .into_owned()
}

/// The simulator's webhook signing keys as oauth-backend settings.
pub async fn webhook_key_settings(sim: &RunningSim) -> Vec<(&'static str, String)> {
    let keys: Value = client()
        .get(format!("{}/_sim/keys", sim.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    vec![
        (
            "WEBHOOK_ED25519_PUBLIC_KEY",
            keys["ed25519"]["publicKeyPem"].as_str().unwrap().to_owned(),
        ),
        (
            "WEBHOOK_RSA_PUBLIC_KEY",
            keys["rsa"]["publicKeyPem"].as_str().unwrap().to_owned(),
        ),
    ]
}
