//! Benchmark: bulk product creation against HighLevel's rate-limit floor (DESIGN.md §2).
//!
//! The simulator counts HighLevel's default limit (100 requests per 10 s per location, sliding window).
//! Each product is created with one price through api-backend: two HighLevel calls. The floor for N calls to
//! one location from a standing start is (ceil(N / 100) - 1) × 10 s: 300 products ⇒ 600 calls ⇒ 50 s.
//! Scenarios: 300 concurrent creates for one location; the same for 10 locations at once; two api-backend
//! replicas sharing one location. `BENCH_PRODUCTS` (300) changes N. Run with `bench/run.sh` (release build).

use std::time::{Duration, Instant};

const SECRET: &str = "bench-secret-bench-secret-bench-secret-0";

struct Stack {
    sim: highlevel_sim::RunningSim,
    oauth: oauth_backend::RunningApp,
    _dir: std::path::PathBuf,
}

async fn stack(locations: usize) -> Stack {
    let sim = highlevel_sim::spawn(highlevel_sim::SimConfig {
        port: 0,
        workers: 2,
        ..Default::default()
    })
    .await
    .expect("sim");
    for i in 1..=locations {
        sim.add_location("c1", &format!("L{i}"), "Bench");
    }
    let dir = std::env::temp_dir().join(format!(
        "api-bench-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let settings = oauth_backend::Settings::for_simulator(
        &sim.base_url,
        &format!("sqlite://{}/oauth.db", dir.display()),
        &service_common::KeyRing::generate_entry("k1"),
        SECRET,
        &[
            (
                "POST_INSTALL_REDIRECT_URL",
                "http://127.0.0.1:9/done".into(),
            ),
            ("REFRESHER_INTERVAL_SECS", "0".into()),
        ],
    )
    .expect("settings");
    let oauth = oauth_backend::spawn_app(settings)
        .await
        .expect("oauth-backend");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for i in 1..=locations {
        let res = http
            .get(format!(
                "{}/oauth/install?user_type=Location&sim_user_type=Location&sim_location_id=L{i}",
                oauth.base_url
            ))
            .send()
            .await
            .expect("install");
        let res = http
            .get(res.headers()["location"].to_str().expect("consent"))
            .send()
            .await
            .expect("consent");
        let back =
            url::Url::parse(res.headers()["location"].to_str().expect("callback")).expect("url");
        let res = http
            .get(format!(
                "{}/oauth/callback?{}",
                oauth.base_url,
                back.query().unwrap_or_default()
            ))
            .send()
            .await
            .expect("callback");
        assert_eq!(res.status(), 302);
    }
    Stack {
        sim,
        oauth,
        _dir: dir,
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

async fn api(s: &Stack, dir: &std::path::Path, name: &str) -> api_backend::RunningApp {
    let settings = api_backend::Settings::for_simulator(
        &s.sim.base_url,
        &s.oauth.base_url,
        &format!("sqlite://{}/{name}.db", dir.display()),
        SECRET,
        // Every one of N requests must get through: let them wait for the whole run.
        &[
            ("RATE_LIMIT_MAX_WAIT_MS", "600000".into()),
            ("HIGHLEVEL_TIMEOUT_MS", "60000".into()),
        ],
    )
    .expect("settings");
    api_backend::spawn_app(settings).await.expect("api-backend")
}

struct Run {
    took: Duration,
    created: usize,
    failed: usize,
}

/// `n` concurrent creates per location, spread over the given api-backends.
async fn create_all(apis: &[String], locations: usize, n: usize) -> Run {
    let token =
        service_common::ServiceAuth::for_audiences(&SECRET.to_owned().into(), &["api-backend"])
            .issue("bench", 3600, None)
            .expect("token");
    // HTTP/2 (h2c): thousands of requests waiting at once share a few connections, as a real job runner's
    // would; thousands of simultaneous HTTP/1.1 connections time out in this sandbox's network stack.
    let http = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let started = Instant::now();
    let mut calls = Vec::new();
    for l in 1..=locations {
        for i in 0..n {
            let url = format!("{}/api/locations/L{l}/products", apis[i % apis.len()]);
            let body = serde_json::json!({
                "name": format!("Product {i}"),
                "productType": "DIGITAL",
                "prices": [{"name": "Standard", "type": "one_time", "currency": "USD", "amount": 10 + i}]
            });
            let (http, token) = (http.clone(), token.clone());
            calls.push(tokio::spawn(async move {
                match http.post(url).bearer_auth(token).json(&body).send().await {
                    Ok(r) if r.status().as_u16() == 201 => true,
                    Ok(r) => {
                        eprintln!(
                            "create failed: {} {}",
                            r.status(),
                            r.text().await.unwrap_or_default()
                        );
                        false
                    }
                    Err(e) => {
                        eprintln!("create failed: {e:?}");
                        false
                    }
                }
            }));
        }
    }
    let mut created = 0;
    let mut failed = 0;
    for c in calls {
        if c.await.unwrap_or(false) {
            created += 1;
        } else {
            failed += 1;
        }
    }
    Run {
        took: started.elapsed(),
        created,
        failed,
    }
}

/// (ceil(calls / 100) - 1) × 10 s: the earliest the last call can be sent from a standing start.
fn floor(calls: usize) -> Duration {
    Duration::from_secs((calls.div_ceil(100).saturating_sub(1) * 10) as u64)
}

fn report(label: &str, r: &Run, calls_per_location: usize, sim: &highlevel_sim::RunningSim) -> f64 {
    let f = floor(calls_per_location);
    let ratio = r.took.as_secs_f64() / f.as_secs_f64().max(1.0);
    println!(
        "{label:<44} created {:>5} failed {:>3}  time {:>6.2} s  floor {:>3} s  ratio {:.3}  HighLevel 429s {}",
        r.created,
        r.failed,
        r.took.as_secs_f64(),
        f.as_secs(),
        ratio,
        sim.stats().rate_limited
    );
    ratio
}

#[actix_web::main]
async fn main() {
    let n: usize = std::env::var("BENCH_PRODUCTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);

    let one = stack(1).await;
    let a = api(&one, &one._dir, "api").await;
    let r1 = create_all(std::slice::from_ref(&a.base_url), 1, n).await;
    report(
        &format!("1 location, {n} concurrent creates"),
        &r1,
        2 * n,
        &one.sim,
    );

    let ten = stack(10).await;
    let a = api(&ten, &ten._dir, "api").await;
    let r10 = create_all(std::slice::from_ref(&a.base_url), 10, n).await;
    report(
        &format!("10 locations, {n} concurrent creates each"),
        &r10,
        2 * n,
        &ten.sim,
    );
    println!(
        "{:<44} {:.3} (10 locations' time / 1 location's)",
        "ratio to one location",
        r10.took.as_secs_f64() / r1.took.as_secs_f64()
    );

    let shared = stack(1).await;
    let (a, b) = (
        api(&shared, &shared._dir, "api-a").await,
        api(&shared, &shared._dir, "api-b").await,
    );
    let r2 = create_all(&[a.base_url.clone(), b.base_url.clone()], 1, n).await;
    report(
        &format!("2 replicas sharing 1 location, {n} creates"),
        &r2,
        2 * n,
        &shared.sim,
    );
    for s in [&one, &ten, &shared] {
        let _ = std::fs::remove_dir_all(&s._dir);
    }
}
