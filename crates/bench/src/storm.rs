//! Refresh storm: N installations × M concurrent callers across two oauth-backend instances sharing one
//! PostgreSQL database, after HighLevel rejected every token. Each caller reports its rejected token to
//! `POST /api/token-access/<id>/refresh`, half of them to each instance. The figure: refresh grants = N,
//! zero refresh-token reuse, and the time until every caller holds a fresh token.

use crate::report::Report;
use crate::stack;
use service_common::testing::{Backend, TestDb};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

pub async fn run(report: &mut Report, installations: usize, callers: usize) -> anyhow::Result<()> {
    let sim = stack::sim(2, None).await?;
    let db = TestDb::new(Backend::Postgres);
    let keys = service_common::KeyRing::generate_entry("k1");
    let settings = || {
        oauth_backend::Settings::for_simulator(
            &sim.base_url,
            &db.url,
            &keys,
            stack::SECRET,
            &[
                (
                    "POST_INSTALL_REDIRECT_URL",
                    "http://127.0.0.1:9/done".into(),
                ),
                ("REFRESHER_INTERVAL_SECS", "0".into()),
                ("DB_POOL_SIZE", "20".into()),
            ],
        )
    };
    let a = oauth_backend::spawn_app(settings()?).await?;
    let b = oauth_backend::spawn_app(settings()?).await?;
    let http = stack::http();
    let token = stack::service_token("oauth-backend");
    let mut old = Vec::new();
    for i in 0..installations {
        let location = format!("storm-{i}");
        sim.add_location("c1", &location, "Storm");
        let id = stack::install_location(&http, &a.base_url, &location).await?;
        let body: serde_json::Value = http
            .get(format!("{}/api/token-access/{id}", a.base_url))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        let access = body["access_token"].as_str().unwrap_or_default().to_owned();
        old.push((id, access));
    }
    // HighLevel rejects every token at once (they expired early).
    http.post(format!("{}/_sim/tokens/expire", sim.base_url))
        .json(&serde_json::json!({}))
        .send()
        .await?
        .error_for_status()?;
    let grants_before = sim.stats().refresh_grants;

    // HTTP/2: the 10 000 callers share a few connections, as a job runner's pool would.
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build()?;
    let started = Instant::now();
    let mut calls = Vec::with_capacity(installations * callers);
    for (id, rejected) in &old {
        for m in 0..callers {
            let base = if m % 2 == 0 { &a.base_url } else { &b.base_url };
            let (h2, url, token, rejected, id) = (
                h2.clone(),
                format!("{base}/api/token-access/{id}/refresh"),
                token.clone(),
                rejected.clone(),
                id.clone(),
            );
            calls.push(tokio::spawn(async move {
                let res = h2
                    .post(url)
                    .bearer_auth(token)
                    .json(&serde_json::json!({ "rejected_token": rejected }))
                    .send()
                    .await
                    .map_err(|e| eprintln!("storm: {e}"))
                    .ok()?;
                if res.status() != 200 {
                    eprintln!(
                        "storm: {} {}",
                        res.status(),
                        res.text().await.unwrap_or_default()
                    );
                    return None;
                }
                let body: serde_json::Value = res.json().await.ok()?;
                Some((id, body["access_token"].as_str()?.to_owned()))
            }));
        }
    }
    let mut fresh: HashMap<String, HashSet<String>> = HashMap::new();
    let mut failed = 0;
    for c in calls {
        match c.await? {
            Some((id, t)) => {
                fresh.entry(id).or_default().insert(t);
            }
            None => failed += 1,
        }
    }
    let took = started.elapsed();
    let stats = sim.stats();
    let grants = stats.refresh_grants - grants_before;
    let stale = old
        .iter()
        .filter(|(id, rejected)| {
            fresh
                .get(id)
                .is_none_or(|ts| ts.len() != 1 || ts.contains(rejected))
        })
        .count();
    let ok = grants == installations as u64
        && stats.refresh_token_reuse == 0
        && failed == 0
        && stale == 0;
    let verdict = if ok {
        "as it must be"
    } else {
        "NOT as it must be"
    };
    report.add(
        "Refresh storm",
        format!(
            "| installations N | callers per installation M | instances | refresh grants | refresh-token reuse | failed calls | installations not on one fresh token | time until all fresh |\n\
             |---:|---:|---:|---:|---:|---:|---:|---:|\n\
             | {installations} | {callers} | 2 (one PostgreSQL) | {grants} | {} | {failed} | {stale} | {:.2} s |\n\n\
             {verdict}: one grant per installation, whichever instance a caller asked. Every call is \
             `POST /api/token-access/<id>/refresh` with the rejected token, over HTTP/2.\n",
            stats.refresh_token_reuse,
            took.as_secs_f64()
        ),
    );
    anyhow::ensure!(ok, "the refresh storm went wrong (see the table)");
    Ok(())
}
