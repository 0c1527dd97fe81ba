//! Bulk product creation against HighLevel's rate-limit floor (docs/design.md, pacing).
//!
//! The simulator counts HighLevel's default limit (100 requests per 10 s per location, sliding window). Each
//! product is created with one price through api-backend: two HighLevel calls. The floor for N calls to one
//! location from a standing start is (ceil(N / 100) - 1) × 10 s: 300 products ⇒ 600 calls ⇒ 50 s. Scenarios:
//! N concurrent creates for one location; the same for 10 locations at once; 2 and 4 api-backend replicas on one
//! PostgreSQL database sharing one location (they share its budget there); 10 locations through 4 replicas; and
//! N concurrent `POST /contacts/` through the whole-API proxy (one call each: N calls, floor 20 s for 300).

use crate::report::Report;
use crate::stack::{self, Scratch};
use service_common::testing::{Backend, TestDb};
use std::time::{Duration, Instant};

struct Stack {
    sim: highlevel_sim::RunningSim,
    oauth: oauth_backend::RunningApp,
    scratch: Scratch,
}

async fn stack(name: &str, locations: usize) -> anyhow::Result<Stack> {
    // HighLevel's real limits here: this scenario measures how close we get to them.
    let sim = highlevel_sim::spawn(highlevel_sim::SimConfig {
        port: 0,
        workers: 2,
        ..Default::default()
    })
    .await?;
    for i in 1..=locations {
        sim.add_location("c1", &format!("L{i}"), "Bench");
    }
    let scratch = Scratch::new(name);
    let oauth = oauth_backend::spawn_app(oauth_backend::Settings::for_simulator(
        &sim.base_url,
        &scratch.sqlite("oauth"),
        &service_common::KeyRing::generate_entry("k1"),
        stack::SECRET,
        &[
            (
                "POST_INSTALL_REDIRECT_URL",
                "http://127.0.0.1:9/done".into(),
            ),
            ("REFRESHER_INTERVAL_SECS", "0".into()),
            // The proxied scenario creates contacts.
            (
                "HIGHLEVEL_SCOPES",
                format!(
                    "{} contacts.write contacts.readonly",
                    oauth_backend::settings::DEV_SCOPES
                ),
            ),
        ],
    )?)
    .await?;
    let http = stack::http();
    for i in 1..=locations {
        stack::install_location(&http, &oauth.base_url, &format!("L{i}")).await?;
    }
    Ok(Stack {
        sim,
        oauth,
        scratch,
    })
}

async fn api(s: &Stack, name: &str) -> anyhow::Result<api_backend::RunningApp> {
    api_on(s, &s.scratch.sqlite(name)).await
}

/// `n` api-backend replicas on one PostgreSQL database (a schema of their own).
async fn replicas(s: &Stack, n: usize) -> anyhow::Result<(Vec<api_backend::RunningApp>, TestDb)> {
    let db = TestDb::new(Backend::Postgres);
    let mut apis = Vec::new();
    for _ in 0..n {
        apis.push(api_on(s, &db.url).await?);
    }
    Ok((apis, db))
}

async fn api_on(s: &Stack, database_url: &str) -> anyhow::Result<api_backend::RunningApp> {
    let settings = api_backend::Settings::for_simulator(
        &s.sim.base_url,
        &s.oauth.base_url,
        database_url,
        stack::SECRET,
        // Every one of N requests must get through: let them wait for the whole run.
        &[
            ("RATE_LIMIT_MAX_WAIT_MS", "600000".into()),
            ("HIGHLEVEL_TIMEOUT_MS", "60000".into()),
        ],
    )?;
    api_backend::spawn_app(settings).await
}

struct Run {
    took: Duration,
    created: usize,
    failed: usize,
    /// Requests the client sent again because no answer came back.
    retried: usize,
}

/// `n` concurrent creates per location, spread over the given api-backends.
async fn create_all(apis: &[String], locations: usize, n: usize) -> anyhow::Result<Run> {
    send_all(apis, locations, n, |l, i| {
        (
            format!("/api/locations/L{l}/products"),
            serde_json::json!({
                "name": format!("Product {i}"),
                "productType": "DIGITAL",
                "prices": [{"name": "Standard", "type": "one_time", "currency": "USD", "amount": 10 + i}]
            }),
        )
    })
    .await
}

/// `n` concurrent `POST /contacts/` per location through the proxy (one HighLevel call each).
async fn proxy_all(apis: &[String], locations: usize, n: usize) -> anyhow::Result<Run> {
    send_all(apis, locations, n, |l, i| {
        (
            format!("/api/locations/L{l}/highlevel/contacts/"),
            serde_json::json!({
                "locationId": format!("L{l}"),
                "firstName": format!("Contact {i}"),
                "email": format!("contact{i}@example.test"),
            }),
        )
    })
    .await
}

/// `n` concurrent POSTs per location (`request(location, i)`: path and body), spread over the api-backends.
async fn send_all(
    apis: &[String],
    locations: usize,
    n: usize,
    request: impl Fn(usize, usize) -> (String, serde_json::Value),
) -> anyhow::Result<Run> {
    let token = stack::service_token("api-backend");
    // HTTP/2 (h2c): thousands of requests waiting at once share a few connections, as a real job runner's
    // would; thousands of simultaneous HTTP/1.1 connections time out in this sandbox's network stack.
    let http = reqwest::Client::builder().http2_prior_knowledge().build()?;
    let started = Instant::now();
    let mut calls = Vec::new();
    for l in 1..=locations {
        for i in 0..n {
            let (path, body) = request(l, i);
            let url = format!("{}{path}", apis[i % apis.len()]);
            let (http, token, key) = (http.clone(), token.clone(), format!("bench-{l}-{i}"));
            calls.push(tokio::spawn(async move {
                // As a job runner would: an Idempotency-Key per product, and a retry when the request never got
                // an answer (e.g. the HTTP/2 server refused a stream of a connection carrying thousands).
                for attempt in 1..=3 {
                    let sent = http
                        .post(&url)
                        .bearer_auth(&token)
                        .header("Idempotency-Key", &key)
                        .json(&body)
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().is_success() => return (true, attempt - 1),
                        Ok(r) => {
                            eprintln!(
                                "create failed: {} {}",
                                r.status(),
                                r.text().await.unwrap_or_default()
                            );
                            return (false, attempt - 1);
                        }
                        Err(e) if attempt < 3 => {
                            eprintln!("create not answered, retrying: {e}");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        Err(e) => {
                            eprintln!("create failed: {e:?}");
                            return (false, attempt - 1);
                        }
                    }
                }
                (false, 3)
            }));
        }
    }
    let (mut created, mut failed, mut retried) = (0, 0, 0);
    for c in calls {
        let (ok, retries) = c.await.unwrap_or((false, 0));
        retried += retries;
        if ok {
            created += 1;
        } else {
            failed += 1;
        }
    }
    Ok(Run {
        took: started.elapsed(),
        created,
        failed,
        retried,
    })
}

/// (ceil(calls / 100) - 1) × 10 s: the earliest the last call can be sent from a standing start.
fn floor(calls: usize) -> Duration {
    Duration::from_secs((calls.div_ceil(100).saturating_sub(1) * 10) as u64)
}

/// Slots the api-backends held for "another client" (HighLevel's `X-RateLimit-Remaining` lower than their own
/// count). There is no other client here: anything but 0 is the pacer's model of the window gone wrong.
fn held_for_others(apis: &[&api_backend::RunningApp]) -> u64 {
    apis.iter()
        .map(|a| {
            a.state
                .hl
                .pacer
                .stats
                .held_for_others
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum()
}

fn row(
    label: &str,
    r: &Run,
    calls_per_location: usize,
    sim: &highlevel_sim::RunningSim,
    apis: &[&api_backend::RunningApp],
) -> String {
    let f = floor(calls_per_location);
    format!(
        "| {label} | {} | {} | {} | {:.1} s | {} s | {:.3} | {} | {} |",
        r.created,
        r.failed,
        r.retried,
        r.took.as_secs_f64(),
        f.as_secs(),
        r.took.as_secs_f64() / f.as_secs_f64().max(1.0),
        sim.stats().rate_limited,
        held_for_others(apis),
    )
}

pub async fn run(report: &mut Report, n: usize) -> anyhow::Result<()> {
    let one = stack("bulk-1", 1).await?;
    let a1 = api(&one, "api").await?;
    let r1 = create_all(std::slice::from_ref(&a1.base_url), 1, n).await?;
    let ten = stack("bulk-10", 10).await?;
    let a10 = api(&ten, "api").await?;
    let r10 = create_all(std::slice::from_ref(&a10.base_url), 10, n).await?;
    let mut shared_rows = Vec::new();
    for (replica_count, locations) in [(2, 1), (4, 1), (4, 10)] {
        let s = stack(&format!("bulk-r{replica_count}-l{locations}"), locations).await?;
        let (apis, _db) = replicas(&s, replica_count).await?;
        let urls: Vec<String> = apis.iter().map(|a| a.base_url.clone()).collect();
        let r = create_all(&urls, locations, n).await?;
        let label = if locations == 1 {
            format!("{replica_count} replicas sharing 1 location, {n} creates")
        } else {
            format!(
                "{locations} locations through {replica_count} replicas, {n} creates each ({:.3}× one location's time)",
                r.took.as_secs_f64() / r1.took.as_secs_f64()
            )
        };
        let apis: Vec<&api_backend::RunningApp> = apis.iter().collect();
        shared_rows.push(row(&label, &r, 2 * n, &s.sim, &apis));
    }
    // The whole-API proxy: one HighLevel call per request, so the floor is that of `n` calls.
    let proxied = stack("bulk-proxy", 1).await?;
    let a = api(&proxied, "api").await?;
    let rp = proxy_all(std::slice::from_ref(&a.base_url), 1, n).await?;
    shared_rows.push(row(
        &format!("1 location, {n} concurrent proxied `POST /contacts/`"),
        &rp,
        n,
        &proxied.sim,
        &[&a],
    ));
    report.add(
        "Bulk product creation against the rate-limit floor",
        format!(
            "| scenario | created | failed | client retries | time | floor | ratio to floor | HighLevel 429s | slots held for others |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n{}\n{}\n{}\n\n\
             Each product has one price: two HighLevel calls, {calls} per location; a proxied contact is one call. Ten locations took {:.3}× one \
             location's time: each location's limit is its own. Replicas run on one PostgreSQL database and share \
             each location's budget there (docs/design.md, replicas share one budget). Every create \
             carries an Idempotency-Key; client retries are requests that got no answer at all (the HTTP/2 server \
             refusing streams on a connection carrying thousands) and were sent again. Slots held for others: \
             slots the api-backends held because HighLevel's `X-RateLimit-Remaining` counted more requests than \
             they had sent (no other client spends these budgets, so each is a slot the model wasted).\n",
            row(&format!("1 location, {n} concurrent creates"), &r1, 2 * n, &one.sim, &[&a1]),
            row(&format!("10 locations, {n} concurrent creates each"), &r10, 2 * n, &ten.sim, &[&a10]),
            shared_rows.join("\n"),
            r10.took.as_secs_f64() / r1.took.as_secs_f64(),
            calls = 2 * n,
        ),
    );
    Ok(())
}
