//! Drills: PostgreSQL stopped and started under load (a server of the drill's own), and HighLevel failing in
//! every way the simulator can during a bulk create. Small by default (they run in `.ci/run`);
//! `DRILL_SCALE=large cargo test -p api-backend --test api drills -- --nocapture` runs them longer and wider.

use crate::common::*;
use serde_json::{json, Value};
use service_common::both_backends;
use service_common::testing::{Backend, OwnPostgres, TestDb};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn large() -> bool {
    std::env::var("DRILL_SCALE").as_deref() == Ok("large")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Before,
    Outage,
    After,
}

#[derive(Debug, Clone)]
struct Outcome {
    op: &'static str,
    key: String,
    status: u16,
    problem: bool,
    phase: Phase,
}

type Log = Arc<Mutex<Vec<Outcome>>>;

async fn create_product(s: &Stack, key: &str) -> (u16, bool, Value) {
    let res = client()
        .post(format!("{}/api/locations/Loc1/products", s.api.base_url))
        .bearer_auth(service_token())
        .header("Idempotency-Key", key)
        .json(&json!({
            "name": format!("drill {key}"),
            "productType": "DIGITAL",
            "prices": [{"name": "Once", "type": "one_time", "currency": "USD", "amount": 10}]
        }))
        .send()
        .await
        .unwrap();
    let (status, problem) = (res.status().as_u16(), is_problem(&res));
    (status, problem, res.json().await.unwrap_or(Value::Null))
}

async fn charge(s: &Stack, pk: &str, txn: &str) -> (u16, bool, Value) {
    checkout_at_sim(s, "Loc1", txn, 12.5, "USD").await;
    let res = client()
        .post(format!("{}/payments/page/charge", s.api.base_url))
        .json(&json!({
            "publishableKey": pk, "locationId": "Loc1", "transactionId": txn, "amount": 12.5, "currency": "USD",
            "card": {"number": "4242424242424242", "expMonth": 12, "expYear": 2099, "cvc": "123"}
        }))
        .send()
        .await
        .unwrap();
    let (status, problem) = (res.status().as_u16(), is_problem(&res));
    (status, problem, res.json().await.unwrap_or(Value::Null))
}

/// PostgreSQL (both services' database) stops at once and comes back while installs, token reads, product
/// creates and charges keep arriving: during the outage every refusal is a 503 problem, after it everything
/// works again, and nothing that was answered as done is missing.
#[actix_web::test]
async fn postgres_restarted_under_load() {
    let pg = OwnPostgres::start();
    let s = stack_on(
        TestDb::postgres_at(&pg.url()),
        TestDb::postgres_at(&pg.url()),
        sim_config(100_000, 10_000),
        &[("SANDBOX_WAIT_MS", "300")],
    )
    .await;
    let installation = install(&s, "Location", &["Loc1"]).await;
    let (pk, _) = provider(&s, "Loc1").await;
    let outage = Duration::from_secs(if large() { 20 } else { 7 });

    let log: Log = Arc::default();
    let phase = Arc::new(Mutex::new(Phase::Before));
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::new(s);
    let mut workers = Vec::new();
    for op in ["install", "read", "product", "charge"] {
        let (s, log, phase, stop, pk, installation) = (
            s.clone(),
            log.clone(),
            phase.clone(),
            stop.clone(),
            pk.clone(),
            installation.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let at = *phase.lock().unwrap();
                let key = format!("{op}-{i}");
                let (status, problem, ok) = match op {
                    "install" => {
                        let location = format!("Drill{i}");
                        s.sim.add_location("comp1", &location, "Drill");
                        match try_install(&s, "Location", &[location.as_str()]).await {
                            Ok(id) => (302, false, Some(format!("{location}={id}"))),
                            Err((status, problem)) => (status, problem, None),
                        }
                    }
                    "read" => {
                        let res = client()
                            .get(format!(
                                "{}/api/token-access/{installation}",
                                s.oauth.base_url
                            ))
                            .bearer_auth(oauth_token())
                            .send()
                            .await
                            .unwrap();
                        (res.status().as_u16(), is_problem(&res), None)
                    }
                    "product" => {
                        let (status, problem, body) = create_product(&s, &key).await;
                        (status, problem, body["id"].as_str().map(str::to_owned))
                    }
                    _ => {
                        let (status, problem, body) = charge(&s, &pk, &key).await;
                        (
                            status,
                            problem,
                            body["chargeId"].as_str().map(str::to_owned),
                        )
                    }
                };
                // A request sent before the outage that was still under way when the server stopped belongs
                // to the outage: it may rightly fail.
                let at = match (at, *phase.lock().unwrap()) {
                    (Phase::Before, now) => now,
                    (at, _) => at,
                };
                log.lock().unwrap().push(Outcome {
                    op,
                    key: ok.map_or(key.clone(), |v| format!("{key}|{v}")),
                    status,
                    problem,
                    phase: at,
                });
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    *phase.lock().unwrap() = Phase::Outage;
    pg.stop();
    tokio::time::sleep(outage).await;
    pg.start_again();
    // Requests already waiting when the server came back may still fail; count from a moment later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    *phase.lock().unwrap() = Phase::After;
    tokio::time::sleep(Duration::from_secs(if large() { 10 } else { 4 })).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let log = log.lock().unwrap().clone();
    let mut summary: BTreeMap<(Phase, &str, u16), usize> = BTreeMap::new();
    for o in &log {
        *summary.entry((o.phase, o.op, o.status)).or_default() += 1;
    }
    println!("postgres drill: {summary:?}");

    let success = |o: &Outcome| {
        matches!(
            (o.op, o.status),
            ("install", 302) | ("product", 201) | (_, 200)
        )
    };
    for o in &log {
        if !success(o) {
            assert!(
                o.status == 503 && o.problem,
                "a refusal that is not a 503 problem: {o:?}"
            );
            assert_ne!(o.phase, Phase::Before, "a failure before the outage: {o:?}");
        }
    }
    for op in ["install", "read", "product", "charge"] {
        assert!(
            log.iter()
                .any(|o| o.op == op && o.phase == Phase::Outage && o.status == 503)
                || op == "read",
            "{op}: the outage was not felt (no 503): {summary:?}"
        );
        assert!(
            log.iter()
                .any(|o| o.op == op && o.phase == Phase::After && success(o)),
            "{op}: did not recover after PostgreSQL came back: {summary:?}"
        );
    }

    // Nothing answered as done is missing, and nothing was done twice.
    let token = oauth_token();
    for o in log.iter().filter(|o| o.op == "install" && success(o)) {
        let id = o.key.rsplit('=').next().unwrap();
        let res = client()
            .get(format!("{}/api/installations/{id}", s.oauth.base_url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            200,
            "install {o:?} was answered but is not stored"
        );
    }
    let mut product_ids = HashMap::new();
    for o in log.iter().filter(|o| o.op == "product") {
        let key = o.key.split('|').next().unwrap();
        // A repeat with the same key: the stored answer for those that were created, the create for the rest.
        let (status, _, body) = create_product(&s, key).await;
        assert_eq!(status, 201, "{key} after the outage: {body}");
        let id = body["id"].as_str().unwrap().to_owned();
        if let Some(first) = o.key.split('|').nth(1) {
            assert_eq!(id, first, "{key} was created twice");
        }
        product_ids.insert(key.to_owned(), id);
    }
    let listed = sim_products(&s, &installation, "Loc1").await;
    let mut names: HashMap<String, usize> = HashMap::new();
    for p in &listed {
        *names
            .entry(p["name"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    assert!(
        names.values().all(|n| *n == 1),
        "duplicate products at HighLevel: {names:?}"
    );
    assert_eq!(
        listed.len(),
        product_ids.len(),
        "one product per idempotency key"
    );
    for o in log.iter().filter(|o| o.op == "charge" && success(o)) {
        let (key, id) = o.key.split_once('|').unwrap();
        let (status, _, body) = charge(&s, &pk, key).await;
        assert_eq!(
            (status, body["chargeId"].as_str()),
            (200, Some(id)),
            "charge {key} was not kept"
        );
        assert_eq!(body["status"], "succeeded");
    }
    s.oauth.state.audit.flush().await;
    let reads = log
        .iter()
        .filter(|o| o.op == "read" && o.status == 200)
        .count() as i64;
    let inst = installation.clone();
    let audited: i64 = s
        .oauth
        .state
        .tokens
        .db
        .run(move |c| {
            Ok(oauth_backend::store::audit::for_installation(c, &inst)?
                .iter()
                .map(|a| a.count)
                .sum())
        })
        .await
        .unwrap();
    assert!(
        audited >= reads,
        "audit rows lost: {audited} audited, {reads} reads served"
    );
}

/// HighLevel answering 10 % 5xx, stalling 2 s, dropping connections and losing answers after it acted, during a
/// bulk create with idempotency keys: every product ends up created exactly once after the caller's retries,
/// and every failure on the way is classified.
async fn simulator_faults_during_a_bulk_create(backend: Backend) {
    let n = if large() { 90 } else { 24 };
    let s = stack_with(
        backend,
        sim_config(100_000, 10_000),
        &[("HIGHLEVEL_TIMEOUT_MS", "1500")],
    )
    .await;
    let installation = install(&s, "Location", &["Loc1"]).await;
    for fault in [
        json!({"path_prefix": "/products", "status": 503, "times": 100000, "one_in": 10}),
        json!({"path_prefix": "/products", "latency_ms": 2000, "times": 100000, "one_in": 13}),
        json!({"path_prefix": "/products", "drop_connection": true, "times": 100000, "one_in": 17}),
        json!({"path_prefix": "/products", "method": "POST", "status": 502, "after_handler": true, "times": 100000, "one_in": 11}),
    ] {
        sim_post(&s, "/_sim/faults", fault).await;
    }
    let started = Instant::now();
    let mut classified: BTreeMap<(u16, String), usize> = BTreeMap::new();
    let mut pending: Vec<String> = (0..n).map(|i| format!("bulk-{i}")).collect();
    let mut rounds = 0;
    while !pending.is_empty() && rounds < 20 {
        rounds += 1;
        let calls: Vec<_> = pending
            .iter()
            .map(|key| {
                let (s, key) = (&s, key.clone());
                async move { (key.clone(), create_product(s, &key).await) }
            })
            .collect();
        let answers = futures::future::join_all(calls).await;
        pending.clear();
        for (key, (status, problem, body)) in answers {
            if status == 201 {
                continue;
            }
            assert!(
                problem,
                "{key}: a failure that is not a problem body: {status} {body}"
            );
            let code = body["code"].as_str().unwrap_or_default().to_owned();
            assert!(
                !code.is_empty() && body["detail"].is_string(),
                "{key}: unclassified: {body}"
            );
            // A retry is the caller's move when the answer says it may be: 5xx and 409 in progress.
            assert!(
                status >= 500 || status == 409,
                "{key}: refused for good: {status} {body}"
            );
            *classified.entry((status, code)).or_default() += 1;
            pending.push(key);
        }
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    client()
        .delete(format!("{}/_sim/faults", s.sim.base_url))
        .send()
        .await
        .unwrap();
    assert!(
        pending.is_empty(),
        "not created after {rounds} rounds: {pending:?}"
    );
    assert!(
        !classified.is_empty(),
        "the faults never hit: the drill tested nothing"
    );
    let listed = sim_products(&s, &installation, "Loc1").await;
    let mut names: HashMap<String, usize> = HashMap::new();
    for p in &listed {
        *names
            .entry(p["name"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    let duplicates: Vec<_> = names.iter().filter(|(_, c)| **c > 1).collect();
    assert!(duplicates.is_empty(), "duplicate products: {duplicates:?}");
    assert_eq!(listed.len(), n, "exactly one product per key");
    println!(
        "faults drill ({backend:?}): {n} products in {rounds} rounds, {:.1} s; failures on the way: {classified:?}",
        started.elapsed().as_secs_f64()
    );
}

both_backends!(simulator_faults_during_a_bulk_create);
