#![allow(dead_code)]
//! Test harness: a simulator, a real database (a SQLite file, or a fresh schema in the PostgreSQL test
//! database), and oauth-backend on a random port.

use diesel::{connection::SimpleConnection, Connection, PgConnection};
use highlevel_sim::{RunningSim, SimConfig};
use oauth_backend::{RunningApp, Settings};
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test body once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }
            #[actix_web::test]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    )*};
}

pub const SCOPES: &str = "products.write products.readonly oauth.write oauth.readonly medias.write";
pub const SERVICE_SECRET: &str = "test-service-secret-0123456789abcdef0123456789";

/// A database for one test; PostgreSQL schemas are dropped at the end.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    pub sqlite_path: Option<std::path::PathBuf>,
    schema: Option<String>,
    _dir: Option<tempdir::TempDir>,
}

mod tempdir {
    /// A temporary folder removed on drop.
    pub struct TempDir(pub std::path::PathBuf);
    impl TempDir {
        pub fn new() -> TempDir {
            let p =
                std::env::temp_dir().join(format!("oauth-test-{:032x}", rand::random::<u128>()));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn pg_base_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempdir::TempDir::new();
                let path = dir.0.join("oauth.db");
                TestDb {
                    url: format!("sqlite://{}", path.display()),
                    backend,
                    sqlite_path: Some(path),
                    schema: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let schema = format!("t_{:016x}", rand::random::<u64>());
                let mut c = PgConnection::establish(&pg_base_url()).unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL test database unreachable ({}): {e}",
                        pg_base_url()
                    )
                });
                c.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap();
                let sep = if pg_base_url().contains('?') {
                    '&'
                } else {
                    '?'
                };
                let url = format!("{}{sep}options=-csearch_path%3D{schema}", pg_base_url());
                TestDb {
                    url,
                    backend,
                    sqlite_path: None,
                    schema: Some(schema),
                    _dir: None,
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(schema) = &self.schema {
            if let Ok(mut c) = PgConnection::establish(&pg_base_url()) {
                let _ = c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
            }
        }
    }
}

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
    let mut env: HashMap<String, String> = HashMap::from([
        ("HOST".into(), "127.0.0.1".into()),
        ("PORT".into(), "0".into()),
        ("DATABASE_URL".into(), db.url.clone()),
        ("HIGHLEVEL_API_URL".into(), sim.base_url.clone()),
        (
            "HIGHLEVEL_AUTHORIZE_URL".into(),
            format!("{}/oauth/chooselocation", sim.base_url),
        ),
        ("HIGHLEVEL_CLIENT_ID".into(), "dev-client-id".into()),
        ("HIGHLEVEL_CLIENT_SECRET".into(), "dev-client-secret".into()),
        ("HIGHLEVEL_APP_ID".into(), "dev-app-id".into()),
        (
            "HIGHLEVEL_REDIRECT_URI".into(),
            "http://127.0.0.1:9/oauth/callback".into(),
        ),
        ("HIGHLEVEL_SCOPES".into(), SCOPES.into()),
        ("TOKEN_ENCRYPTION_KEYS".into(), keys.into()),
        ("SERVICE_JWT_SECRET".into(), SERVICE_SECRET.into()),
        (
            "POST_INSTALL_REDIRECT_URL".into(),
            "http://127.0.0.1:9/installed".into(),
        ),
        ("REFRESHER_INTERVAL_SECS".into(), "0".into()),
        ("LOG_FORMAT".into(), "pretty".into()),
        ("DB_POOL_SIZE".into(), "8".into()),
        ("HIGHLEVEL_TIMEOUT_MS".into(), "5000".into()),
    ]);
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    Settings::from_lookup(|k| env.get(k).cloned()).unwrap()
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
    let mut url = format!(
        "{}/oauth/install?user_type={user_type}&sim_user_type={user_type}",
        app.base_url
    );
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
    let callback = format!("{}/oauth/callback?{}", app.base_url, back.query().unwrap());
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
