//! A replica that dies or is stopped does not hold `Idempotency-Key`s hostage: api-backend as real processes
//! (the binary, as a deployment runs it) on one database, killed with SIGKILL or stopped with SIGTERM while
//! keyed creates are under way; the same keys retried on another process. Nothing may be made twice.

use crate::common::*;
use serde_json::{json, Value};
use service_common::both_backends;
use service_common::testing::Backend;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn body(key: &str) -> Value {
    json!({"name": format!("takeover {key}"), "productType": "DIGITAL"})
}

async fn create(base: &str, key: &str) -> Result<reqwest::Response, reqwest::Error> {
    client()
        .post(format!("{base}/api/locations/Loc1/products"))
        .bearer_auth(service_token())
        .header("Idempotency-Key", key)
        .json(&body(key))
        .timeout(Duration::from_secs(60))
        .send()
        .await
}

/// Products at the simulator per name (all of them must be 1).
async fn made(s: &Stack, installation: &str) -> BTreeMap<String, usize> {
    let mut by_name = BTreeMap::new();
    for p in sim_products(s, installation, "Loc1").await {
        *by_name
            .entry(p["name"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    by_name
}

/// Keyed creates are under way on replica A, stalled at HighLevel, when A is killed with SIGKILL. Retried on
/// replica B, each key is taken over within 10 s of the kill (not 409 until a two-minute timeout), and every
/// product exists exactly once.
async fn a_killed_replicas_keys_are_taken_over(backend: Backend) {
    // DRILL_SCALE=large: the 40 queued creates of the incident.
    let n = if std::env::var("DRILL_SCALE").as_deref() == Ok("large") {
        40
    } else {
        8
    };
    let s = stack_with(backend, sim_config(100_000, 10_000), &[]).await;
    let installation = install(&s, "Location", &["Loc1"]).await;
    let mut a = replica(&s, &[]).await;
    let b = replica(&s, &[]).await;
    // HighLevel answers these creates slowly: they are under way when A dies.
    sim_post(
        &s,
        "/_sim/faults",
        json!({"path_prefix": "/products", "method": "POST", "latency_ms": 2500, "times": n}),
    )
    .await;
    let keys: Vec<String> = (0..n).map(|i| format!("crash-{i}")).collect();
    let on_a: Vec<_> = keys
        .iter()
        .map(|k| {
            let (base, k) = (a.base_url.clone(), k.clone());
            tokio::spawn(async move { create(&base, &k).await.map(|r| r.status().as_u16()) })
        })
        .collect();
    let started = Instant::now();
    while s.sim.stats().faults_injected < n as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the creates did not reach HighLevel"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.kill_9();
    let killed = Instant::now();
    for r in on_a {
        assert!(
            r.await.unwrap().is_err(),
            "A answered although it was killed mid-request"
        );
    }
    // Each key is retried on B, as a client would: again after a 409, until another answer.
    let retries: Vec<_> = keys
        .iter()
        .map(|k| {
            let (base, k) = (b.base_url.clone(), k.clone());
            tokio::spawn(async move {
                let mut conflicts = 0;
                loop {
                    let res = create(&base, &k).await.unwrap();
                    let status = res.status().as_u16();
                    if status != 409 || killed.elapsed() > Duration::from_secs(30) {
                        let text = res.text().await.unwrap();
                        return (k, status, killed.elapsed(), conflicts, text);
                    }
                    conflicts += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    let mut conflicts = 0;
    for r in retries {
        let (key, status, after, c, text) = r.await.unwrap();
        assert_eq!(status, 201, "{key}: {text}");
        assert!(
            after <= Duration::from_secs(10),
            "{key} was taken over only {after:?} after the kill"
        );
        slowest = slowest.max(after);
        conflicts += c;
    }
    println!(
        "{backend:?}: {n} keys taken over at most {slowest:?} after SIGKILL ({conflicts} × 409 before)"
    );
    let made = made(&s, &installation).await;
    for k in &keys {
        assert_eq!(
            made.get(&format!("takeover {k}")),
            Some(&1),
            "{k} made once: {made:?}"
        );
    }
}

/// SIGTERM while keyed creates wait for a slot under HighLevel's rate limit: they are answered 503 with
/// `Retry-After` (not cut off when the process exits), their keys released, so the same keys on a fresh
/// process run at once (no 409); the creates that had a slot finish, and nothing is made twice.
async fn sigterm_answers_the_waiting_and_releases_their_keys(backend: Backend) {
    // HighLevel allows 2 calls per 3 s; a caller may wait a whole minute for a slot.
    let s = stack_with(backend, sim_config(2, 3_000), &[]).await;
    let installation = install(&s, "Location", &["Loc1"]).await;
    let a = replica(
        &s,
        &[
            ("RATE_LIMIT_BURST", "2"),
            ("RATE_LIMIT_INTERVAL_MS", "3000"),
            ("RATE_LIMIT_MAX_WAIT_MS", "60000"),
        ],
    )
    .await;
    // The two creates that get the slots are slow at HighLevel: they finish within the 4 s drain, but hold
    // their slots until 3 s after that, past the process's exit, so the other three would wait past it.
    sim_post(
        &s,
        "/_sim/faults",
        json!({"path_prefix": "/products", "method": "POST", "latency_ms": 2500, "times": 2}),
    )
    .await;
    let keys: Vec<String> = (0..5).map(|i| format!("term-{i}")).collect();
    let on_a: Vec<_> = keys
        .iter()
        .map(|k| {
            let (base, k) = (a.base_url.clone(), k.clone());
            tokio::spawn(async move {
                let res = create(&base, &k).await?;
                let status = res.status().as_u16();
                let retry_after = res
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                let problem = is_problem(&res);
                Ok::<_, reqwest::Error>((k, status, retry_after, problem, res.text().await?))
            })
        })
        .collect();
    // Three of them wait for a slot, and the other two are at HighLevel. (On PostgreSQL the slots are rows taken
    // with `FOR UPDATE SKIP LOCKED`: a create whose claim meets another claim's lock is counted as waiting before
    // it takes the slot left free, so three waits (or four) alone do not mean that two creates hold the slots.)
    let started = Instant::now();
    loop {
        let metrics = metrics_text(&a.base_url).await;
        let waited = pacing_counter(&metrics, "waited").unwrap_or(0);
        if waited >= 3 && s.sim.stats().faults_injected >= 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the creates are not waiting: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &a.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let termed = Instant::now();
    let mut answers = BTreeMap::new();
    for w in on_a {
        let (k, status, retry_after, problem, text) = w
            .await
            .unwrap()
            .expect("every request is answered, none cut off, when the process stops");
        if status == 503 {
            assert!(problem, "{text}");
            assert!(
                retry_after.is_some_and(|v| v.parse::<u64>().is_ok()),
                "503 without Retry-After: {text}"
            );
        }
        answers.insert(k, (status, text));
    }
    let count = |want| answers.values().filter(|(s, _)| *s == want).count();
    assert_eq!((count(201), count(503)), (2, 3), "{answers:?}");
    assert!(
        termed.elapsed() < Duration::from_secs(5),
        "answered only {:?} after SIGTERM",
        termed.elapsed()
    );
    // A fresh process: the released keys run at once, the finished ones replay their answers.
    let b = replica(&s, &[]).await;
    for k in &keys {
        let res = create(&b.base_url, k).await.unwrap();
        let status = res.status().as_u16();
        let replayed = res.headers().contains_key("idempotent-replayed");
        let text = res.text().await.unwrap();
        assert_eq!(status, 201, "{k}: {text}");
        if answers[k].0 == 201 {
            assert!(replayed, "{k}");
            assert_eq!(text, answers[k].1, "{k}");
        }
    }
    // The simulator's window, spent by B's retries, passes before the products are counted.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let made = made(&s, &installation).await;
    for k in &keys {
        assert_eq!(
            made.get(&format!("takeover {k}")),
            Some(&1),
            "{k} made once: {made:?}"
        );
    }
}

both_backends!(
    a_killed_replicas_keys_are_taken_over,
    sigterm_answers_the_waiting_and_releases_their_keys
);
