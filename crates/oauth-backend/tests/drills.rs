//! Drill: an oauth-backend instance killed with SIGKILL in the middle of a refresh storm, then restarted.
//! Every installation must still be active and serve a token HighLevel accepts, none `needs_reauth`, and the
//! simulator must see no refresh-token reuse (a lease that lapsed under the dead process is repaired through
//! reconnect, never by replaying its possibly spent refresh token).
//!
//! Small by default (it runs in `.ci/run`); the larger one: `DRILL_SCALE=large cargo test -p oauth-backend
//! --test drills -- --nocapture`.
#![allow(clippy::unwrap_used)]

#[path = "oauth/common.rs"]
mod common;

use common::*;
use serde_json::{json, Value};
use service_common::both_backends;
use service_common::testing::ChildService;
use std::time::{Duration, Instant};

/// (installations, callers per installation)
fn size() -> (usize, usize) {
    match std::env::var("DRILL_SCALE").as_deref() {
        Ok("large") => (200, 50),
        _ => (12, 10),
    }
}

/// oauth-backend as its own process (the real binary), so it can be killed for real.
async fn instance(sim: &highlevel_sim::RunningSim, db: &TestDb, keys: &str) -> ChildService {
    let mut env =
        oauth_backend::Settings::simulator_env(&sim.base_url, &db.url, keys, SERVICE_SECRET);
    env.extend([
        ("HIGHLEVEL_SCOPES", SCOPES.to_owned()),
        (
            "POST_INSTALL_REDIRECT_URL",
            "http://127.0.0.1:9/installed".to_owned(),
        ),
        ("REFRESHER_INTERVAL_SECS", "0".to_owned()),
        ("RUST_LOG", "error".to_owned()),
    ]);
    ChildService::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_oauth-backend")),
        &env,
        None,
    )
    .await
    .unwrap()
}

async fn get(url: String, token: &str) -> (u16, Value) {
    let res = client().get(url).bearer_auth(token).send().await.unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

async fn kill_9_in_the_middle_of_a_refresh_storm(backend: Backend) {
    let (n, m) = size();
    let sim = sim().await;
    let db = TestDb::new(backend);
    let keys = oauth_backend::crypto::keyring::KeyRing::generate_entry("k1");
    let mut a = instance(&sim, &db, &keys).await;
    let b = instance(&sim, &db, &keys).await;
    let token = service_common::ServiceAuth::new(&SERVICE_SECRET.to_owned().into())
        .issue("drill", 600, None)
        .unwrap();
    let mut installs = Vec::new();
    for i in 0..n {
        let location = format!("drill-{i}");
        sim.add_location("comp1", &location, "Drill");
        let id = install_at(&a.base_url, "Location", &[location.as_str()]).await;
        let (status, body) = get(format!("{}/api/token-access/{id}", a.base_url), &token).await;
        assert_eq!(status, 200, "{body}");
        installs.push((
            id,
            location,
            body["access_token"].as_str().unwrap().to_owned(),
        ));
    }
    // HighLevel rejects every token, and answers refreshes slowly, so the kill lands while refreshes are in
    // flight: some leases are held by the instance that dies, some answers from HighLevel never get stored.
    sim_post(&sim, "/_sim/tokens/expire", json!({})).await;
    sim_post(
        &sim,
        "/_sim/faults",
        json!({"path_prefix": "/oauth/token", "latency_ms": 400, "times": 100000}),
    )
    .await;
    // The callers of the instance that will die go first; once it holds refresh leases, the other instance's
    // callers join, and the first instance is killed while its refreshes are in flight (HighLevel takes 400 ms).
    let storm = |base: String| {
        installs
            .iter()
            .flat_map(|(id, _, rejected)| {
                std::iter::repeat_n((id.clone(), rejected.clone()), m / 2)
            })
            .map(|(id, rejected)| {
                let (base, token) = (base.clone(), token.clone());
                tokio::spawn(async move {
                    client()
                        .post(format!("{base}/api/token-access/{id}/refresh"))
                        .bearer_auth(token)
                        .json(&json!({ "rejected_token": rejected }))
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .ok()
                })
            })
            .collect::<Vec<_>>()
    };
    let mut calls = storm(a.base_url.clone());
    let store = service_common::Db::connect(&db.url, 1).unwrap();
    let started = Instant::now();
    loop {
        let leases: i64 = store
            .run(|c| {
                use diesel::prelude::*;
                use oauth_backend::db::schema::tokens::dsl;
                Ok(dsl::tokens
                    .filter(dsl::lease_owner.is_not_null())
                    .count()
                    .get_result(c)?)
            })
            .await
            .unwrap();
        if leases >= 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the instance never started refreshing"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    calls.extend(storm(b.base_url.clone()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.kill_9();
    let a = instance(&sim, &db, &keys).await;
    let mut statuses = std::collections::BTreeMap::new();
    for c in calls {
        *statuses.entry(c.await.unwrap()).or_insert(0) += 1;
    }
    client()
        .delete(format!("{}/_sim/faults", sim.base_url))
        .send()
        .await
        .unwrap();
    // Callers of the killed instance lost their connection; every other caller got a token.
    for (status, count) in &statuses {
        assert!(
            matches!(status, Some(200) | None),
            "unexpected answers during the drill: {statuses:?} ({count})"
        );
    }
    for (id, location, rejected) in &installs {
        for base in [&a.base_url, &b.base_url] {
            let (status, body) = get(format!("{base}/api/token-access/{id}"), &token).await;
            assert_eq!(status, 200, "{id}: {body}");
            let fresh = body["access_token"].as_str().unwrap();
            assert_ne!(fresh, rejected);
            assert_eq!(
                hl_get(&sim, &format!("/products/?locationId={location}"), fresh).await,
                200,
                "HighLevel accepts the token served for {id}"
            );
        }
        let (_, inst) = get(format!("{}/api/installations/{id}", a.base_url), &token).await;
        assert_eq!(inst["state"], "active", "{inst}");
    }
    let stats = sim.stats();
    assert_eq!(stats.refresh_token_reuse, 0, "no refresh token used twice");
    assert!(
        stats.reconnects >= 1,
        "the killed instance held no lease when it died: the drill tested nothing"
    );
    println!(
        "drill: {n} installations × {m} callers; answers {statuses:?}; refresh grants {}, reconnects {}, reuse {}",
        stats.refresh_grants, stats.reconnects, stats.refresh_token_reuse
    );
}

both_backends!(kill_9_in_the_middle_of_a_refresh_storm);

/// Drill: the database stops (a crash or a failover) while HighLevel delivers an INSTALL webhook. HighLevel
/// retries a webhook only when it is answered 429 (any other failure is final and the event lost), so the
/// delivery is answered 429 with `Retry-After`, never 5xx; once the database is back, HighLevel's retry of
/// the same delivery records the installation, once.
#[actix_web::test]
async fn a_webhook_arriving_while_the_database_is_down_is_answered_429_and_recorded_on_retry() {
    let pg = service_common::testing::OwnPostgres::start();
    let sim = sim().await;
    let db = TestDb::postgres_at(&pg.url());
    let keys = oauth_backend::crypto::keyring::KeyRing::generate_entry("k1");
    let hl_keys = webhook_key_settings(&sim).await;
    let extra: Vec<(&str, &str)> = hl_keys.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = oauth_backend::spawn_app(settings(&sim, &db, &keys, &extra))
        .await
        .unwrap();
    let url = format!("{}/webhooks/highlevel", app.base_url);

    pg.stop();
    let started = Instant::now();
    let answer = sim_post(
        &sim,
        "/_sim/webhooks/send",
        json!({"type": "INSTALL", "companyId": "comp1", "locationId": "Loc1", "webhookId": "wh-outage", "url": url}),
    )
    .await;
    println!(
        "answered {} in {:?} with the database down",
        answer["status"],
        started.elapsed()
    );
    assert_eq!(answer["status"], 429, "{answer}");
    let problem: Value = serde_json::from_str(answer["response"].as_str().unwrap()).unwrap();
    assert_eq!(problem["status"], 429, "{problem}");
    pg.start_again();
    // HighLevel retries the queued delivery: the same bytes, the same webhookId.
    let mut recorded = false;
    for _ in 0..50 {
        let retried = client()
            .post(format!("{}/_sim/webhooks/retry", sim.base_url))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        let statuses: Vec<u64> = retried["retried"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_u64().unwrap())
            .collect();
        if statuses == [200] {
            recorded = true;
            break;
        }
        assert!(
            statuses.iter().all(|s| *s == 429),
            "only 429 while the database comes back: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recorded, "the retry was never recorded");
    // A further redelivery of the same webhook is a duplicate: 200, nothing recorded twice.
    let again = sim_post(
        &sim,
        "/_sim/webhooks/send",
        json!({"type": "INSTALL", "companyId": "comp1", "locationId": "Loc1", "webhookId": "wh-outage", "url": url}),
    )
    .await;
    assert_eq!(again["status"], 200, "{again}");
    let token = service_token(&app, "ops", None);
    let (_, list) = installations_api(&app, "?location_id=Loc1", &token).await;
    assert_eq!(
        list["installations"].as_array().unwrap().len(),
        1,
        "recorded once: {list}"
    );
    assert!(sim.stats().webhook_retries >= 1);
}

/// The 429 carries `Retry-After`, read straight from a delivery made while the database is down.
#[actix_web::test]
async fn the_429_for_an_unrecorded_webhook_carries_retry_after() {
    let pg = service_common::testing::OwnPostgres::start();
    let sim = sim().await;
    let db = TestDb::postgres_at(&pg.url());
    let keys = oauth_backend::crypto::keyring::KeyRing::generate_entry("k1");
    // A webhook signed with a key of the test's own, which this oauth-backend trusts as HighLevel's.
    let signing = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let public_pem = {
        use ed25519_dalek::pkcs8::EncodePublicKey;
        signing
            .verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap()
    };
    let app = oauth_backend::spawn_app(settings(
        &sim,
        &db,
        &keys,
        &[("WEBHOOK_ED25519_PUBLIC_KEY", public_pem.as_str())],
    ))
    .await
    .unwrap();
    let body = json!({"type": "INSTALL", "appId": "dev-app-id", "companyId": "comp1", "locationId": "Loc1",
        "webhookId": "wh-direct", "timestamp": chrono::Utc::now().to_rfc3339()})
    .to_string();
    let sig = {
        use base64::Engine;
        use ed25519_dalek::Signer;
        base64::engine::general_purpose::STANDARD.encode(signing.sign(body.as_bytes()).to_bytes())
    };
    pg.stop();
    let res = client()
        .post(format!("{}/webhooks/highlevel", app.base_url))
        .header("x-ghl-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    pg.start_again();
}
