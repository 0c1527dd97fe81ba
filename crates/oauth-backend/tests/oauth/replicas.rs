//! Several oauth-backend processes on one database (PostgreSQL, or one SQLite file): an uninstall, a
//! `needs_reauth` or a refresh that happens through one of them is honoured by every other one, whose
//! in-memory token cache would otherwise keep serving the old token (CONTRACTS: UNINSTALL is acted on;
//! docs/design.md, replicas).
//!
//! The bound: PostgreSQL wakes every process with NOTIFY when the change commits; SQLite processes poll the
//! change feed every CACHE_SYNC_INTERVAL_MS (200 ms). The test asserts 1 s on both and prints what it saw.
//! `OAUTH_BACKEND_EXE` runs it against another build of the binary (e.g. the previous commit's).

use crate::common::*;
use serde_json::{json, Value};
use service_common::both_backends;
use service_common::testing::ChildService;
use std::time::{Duration, Instant};

const BOUND: Duration = Duration::from_secs(1);

fn exe() -> std::path::PathBuf {
    std::env::var_os("OAUTH_BACKEND_EXE")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_oauth-backend").into())
}

/// oauth-backend as its own process, trusting the simulator's webhook keys.
async fn replica(
    sim: &highlevel_sim::RunningSim,
    db: &TestDb,
    keys: &str,
    hl_keys: &Value,
) -> ChildService {
    let mut env =
        oauth_backend::Settings::simulator_env(&sim.base_url, &db.url, keys, SERVICE_SECRET);
    env.extend([
        ("HIGHLEVEL_SCOPES", SCOPES.to_owned()),
        (
            "POST_INSTALL_REDIRECT_URL",
            "http://127.0.0.1:9/installed".to_owned(),
        ),
        ("REFRESHER_INTERVAL_SECS", "0".to_owned()),
        ("DB_POOL_SIZE", "4".to_owned()),
        (
            "WEBHOOK_ED25519_PUBLIC_KEY",
            hl_keys["ed25519"]["publicKeyPem"]
                .as_str()
                .unwrap()
                .to_owned(),
        ),
        (
            "WEBHOOK_RSA_PUBLIC_KEY",
            hl_keys["rsa"]["publicKeyPem"].as_str().unwrap().to_owned(),
        ),
        ("RUST_LOG", "error".to_owned()),
    ]);
    ChildService::start(&exe(), &env, None).await.unwrap()
}

async fn read(base: &str, id: &str, token: &str) -> (u16, Value) {
    let res = client()
        .get(format!("{base}/api/token-access/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

/// Reads from `base` until `done` holds for the answer; how long it took.
async fn until(
    base: &str,
    id: &str,
    token: &str,
    what: &str,
    done: impl Fn(u16, &Value) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let (status, body) = read(base, id, token).await;
        if done(status, &body) {
            return started.elapsed();
        }
        // The body may hold a token: only its status and code are shown.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: still answered {status} {} after 10 s",
            body["code"]
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn changes_through_one_replica_are_honoured_by_the_others(backend: Backend) {
    let sim = sim().await;
    let hl_keys: Value = client()
        .get(format!("{}/_sim/keys", sim.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let db = TestDb::new(backend);
    let keys = oauth_backend::crypto::keyring::KeyRing::generate_entry("k1");
    let a = replica(&sim, &db, &keys, &hl_keys).await;
    let b = replica(&sim, &db, &keys, &hl_keys).await;
    let token = service_common::ServiceAuth::new(&SERVICE_SECRET.to_owned().into())
        .issue("replicas", 600, None)
        .unwrap();
    let id = install_at(&a.base_url, "Location", &["Loc1"]).await;
    let mut seen = Vec::new();

    // 1. UNINSTALL delivered to B: A, which holds the token in memory, refuses it.
    for base in [&a.base_url, &a.base_url, &b.base_url] {
        assert_eq!(read(base, &id, &token).await.0, 200, "served and cached");
    }
    let answer = sim_post(
        &sim,
        "/_sim/webhooks/send",
        json!({"type": "UNINSTALL", "companyId": "comp1", "locationId": "Loc1",
               "url": format!("{}/webhooks/highlevel", b.base_url)}),
    )
    .await;
    assert_eq!(answer["status"], 200, "{answer}");
    let took = until(&a.base_url, &id, &token, "uninstall", |s, body| {
        s == 410 && body["code"] == "installation_uninstalled"
    })
    .await;
    seen.push(("uninstall", took));

    // 2. needs_reauth written by another process (as B's failed refresh would): A refuses.
    assert_eq!(install_at(&b.base_url, "Location", &["Loc1"]).await, id);
    until(&a.base_url, &id, &token, "re-install", |s, _| s == 200).await;
    assert_eq!(read(&a.base_url, &id, &token).await.0, 200, "cached again");
    let store = service_common::Db::connect(&db.url, 1).unwrap();
    let owned = id.clone();
    store
        .run(move |c| {
            oauth_backend::store::installations::set_state(
                c,
                &owned,
                shared_types::InstallationState::NeedsReauth,
                Some("refresh token refused"),
                oauth_backend::store::now_ms(),
            )
        })
        .await
        .unwrap();
    let took = until(&a.base_url, &id, &token, "needs_reauth", |s, body| {
        s == 409 && body["code"] == "reauthorization_required"
    })
    .await;
    seen.push(("needs_reauth", took));

    // 3. A refresh through B: A serves the new token, not the one it holds in memory.
    assert_eq!(install_at(&b.base_url, "Location", &["Loc1"]).await, id);
    until(&a.base_url, &id, &token, "re-install", |s, _| s == 200).await;
    let (_, old) = read(&a.base_url, &id, &token).await;
    let old = old["access_token"].as_str().unwrap().to_owned();
    let res = client()
        .post(format!("{}/api/token-access/{id}/refresh", b.base_url))
        .bearer_auth(&token)
        .json(&json!({ "rejected_token": old }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let new = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new, old);
    let took = until(&a.base_url, &id, &token, "refresh", |s, body| {
        s == 200 && body["access_token"] == new.as_str()
    })
    .await;
    seen.push(("refresh elsewhere", took));

    println!("replicas on {backend:?}: change seen by the other process after {seen:?}");
    for (what, took) in seen {
        assert!(
            took < BOUND,
            "{what} took {took:?} to reach the other replica"
        );
    }
}

async fn read_location(base: &str, id: &str, location: &str, token: &str) -> (u16, Value) {
    let res = client()
        .get(format!(
            "{base}/api/token-access/{id}?location_id={location}"
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

/// HighLevel's AppUninstall webhook docs: a location-level UNINSTALL is `{type, appId, locationId}`, no `companyId`. Delivered to one
/// of two processes, it stops that location being served by both: taken out of the agency install that held
/// it (its minted Location token destroyed), and its own Location installation uninstalled. The other
/// locations go on being served.
async fn a_location_level_uninstall_stops_the_location_on_every_replica(backend: Backend) {
    let sim = sim().await;
    let hl_keys: Value = client()
        .get(format!("{}/_sim/keys", sim.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let db = TestDb::new(backend);
    let keys = oauth_backend::crypto::keyring::KeyRing::generate_entry("k1");
    let a = replica(&sim, &db, &keys, &hl_keys).await;
    let b = replica(&sim, &db, &keys, &hl_keys).await;
    let token = service_common::ServiceAuth::new(&SERVICE_SECRET.to_owned().into())
        .issue("jobs", 600, None)
        .unwrap();
    let agency = install_at(&a.base_url, "Company", &["Loc1", "Loc2"]).await;
    let own = install_at(&a.base_url, "Location", &["Loc3"]).await;
    // Both processes serve (and cache) the Location token of Loc2 and the installation token of Loc3.
    for base in [&a.base_url, &b.base_url] {
        for l in ["Loc1", "Loc2"] {
            let (status, body) = read_location(base, &agency, l, &token).await;
            assert_eq!(status, 200, "{l}: {}", body["code"]);
        }
        assert_eq!(read(base, &own, &token).await.0, 200);
    }

    for location in ["Loc2", "Loc3"] {
        let answer = sim_post(
            &sim,
            "/_sim/webhooks/send",
            json!({"type": "UNINSTALL", "locationId": location, "url": format!("{}/webhooks/highlevel", a.base_url)}),
        )
        .await;
        assert_eq!(answer["status"], 200, "{answer}");
        assert!(answer["payload"].get("companyId").is_none());
    }
    for base in [&a.base_url, &b.base_url] {
        let started = Instant::now();
        loop {
            let (status, body) = read_location(base, &agency, "Loc2", &token).await;
            if status == 403 {
                assert_eq!(body["code"], "location_not_in_installation");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "Loc2 still served by {base}: {status}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        println!("{base}: Loc2 refused after {:?}", started.elapsed());
        let took = until(base, &own, &token, "Loc3 uninstalled", |s, b| {
            s == 410 && b["code"] == "installation_uninstalled"
        })
        .await;
        assert!(took < BOUND, "{base}: Loc3 served for {took:?}");
        let (status, body) = read_location(base, &agency, "Loc1", &token).await;
        assert_eq!(status, 200, "Loc1 goes on: {}", body["code"]);
    }
    // The status API says so too: Loc3 has no active installation any more (api-backend's signal).
    let res = client()
        .get(format!("{}/api/installations?location_id=Loc3", b.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let list: Value = res.json().await.unwrap();
    let states: Vec<&str> = list["installations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["uninstalled"]);
    let res = client()
        .get(format!("{}/api/installations/{agency}", b.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let inst: Value = res.json().await.unwrap();
    assert_eq!(inst["approved_locations"], json!(["Loc1"]));
    // The approved list's change is in the change feed itself (every replica drops the agency install from
    // its cache), not only the deletion of the minted token.
    let store = service_common::Db::connect(&db.url, 1).unwrap();
    let agency_id = agency.clone();
    let approved_changes: i64 = store
        .run(move |c| {
            use diesel::prelude::*;
            use oauth_backend::db::schema::installation_changes::dsl;
            Ok(dsl::installation_changes
                .filter(dsl::installation_id.eq(agency_id))
                .filter(dsl::scope_key.eq("*"))
                .count()
                .get_result(c)?)
        })
        .await
        .unwrap();
    assert!(
        approved_changes >= 1,
        "no change-feed row for the approved list"
    );
}

both_backends!(
    changes_through_one_replica_are_honoured_by_the_others,
    a_location_level_uninstall_stops_the_location_on_every_replica,
);
