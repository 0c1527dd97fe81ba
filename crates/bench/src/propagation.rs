//! Propagation between replicas: two oauth-backend replicas (release binaries, one PostgreSQL database). A
//! refresh through A, then B is read until it serves the new token; an UNINSTALL webhook delivered to A, then
//! B is read until it refuses the installation. The time is from A's answer (its transaction committed) to
//! B's first answer that reflects it, with B holding the old token in its cache beforehand: what the change
//! feed (`LISTEN/NOTIFY`, docs/design.md, replicas) costs. B is read back to back (each read ~0.1 ms), so the
//! figure's resolution is one read.

use crate::report::Report;
use crate::stack::{self, Service};
use anyhow::Context;
use serde_json::{json, Value};
use service_common::testing::{Backend, TestDb};
use std::time::{Duration, Instant};

async fn read(http: &reqwest::Client, base: &str, id: &str, token: &str) -> (u16, Value) {
    match http
        .get(format!("{base}/api/token-access/{id}"))
        .bearer_auth(token)
        .send()
        .await
    {
        Ok(res) => (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        ),
        Err(_) => (0, Value::Null),
    }
}

/// Reads B until `done`; the time since `from` and how many reads still showed the old state.
async fn until(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    token: &str,
    from: Instant,
    done: impl Fn(u16, &Value) -> bool,
) -> anyhow::Result<(Duration, usize)> {
    let mut stale = 0;
    loop {
        let (status, body) = read(http, base, id, token).await;
        if done(status, &body) {
            return Ok((from.elapsed(), stale));
        }
        stale += 1;
        anyhow::ensure!(
            from.elapsed() < Duration::from_secs(10),
            "B still answered {status} {} 10 s after the change",
            body["code"]
        );
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn summary(label: &str, mut took: Vec<Duration>, stale: usize) -> String {
    took.sort();
    format!(
        "| {label} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {stale} |",
        took.len(),
        percentile(&took, 0.5),
        percentile(&took, 0.9),
        percentile(&took, 0.99),
        took.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    )
}

pub async fn run(report: &mut Report, n: usize) -> anyhow::Result<()> {
    let scratch = stack::Scratch::new("propagation");
    let sim = stack::sim(2, None).await?;
    let http = stack::http();
    let hl_keys: Value = http
        .get(format!("{}/_sim/keys", sim.base_url))
        .send()
        .await?
        .json()
        .await?;
    let db = TestDb::new(Backend::Postgres);
    let keys = service_common::KeyRing::generate_entry("k1");
    let mut env =
        oauth_backend::Settings::simulator_env(&sim.base_url, &db.url, &keys, stack::SECRET);
    env.extend([
        (
            "POST_INSTALL_REDIRECT_URL",
            "http://127.0.0.1:9/done".to_owned(),
        ),
        ("REFRESHER_INTERVAL_SECS", "0".to_owned()),
        (
            "WEBHOOK_ED25519_PUBLIC_KEY",
            hl_keys["ed25519"]["publicKeyPem"]
                .as_str()
                .context("the simulator's ed25519 key")?
                .to_owned(),
        ),
        (
            "WEBHOOK_RSA_PUBLIC_KEY",
            hl_keys["rsa"]["publicKeyPem"]
                .as_str()
                .context("the simulator's RSA key")?
                .to_owned(),
        ),
    ]);
    let dirs = [scratch.0.join("a"), scratch.0.join("b")];
    for d in &dirs {
        std::fs::create_dir_all(d)?;
    }
    let a = Service::start("oauth-backend", &env, &dirs[0]).await?;
    let b = Service::start("oauth-backend", &env, &dirs[1]).await?;
    let token = stack::service_token("oauth-backend");

    // Refreshes: one installation, n refreshes through A, each read on B until B serves the new token.
    sim.add_location("pc", "P-refresh", "Bench");
    let id = stack::install_location(&http, a.base_url(), "P-refresh").await?;
    let (mut refreshes, mut refresh_stale) = (Vec::with_capacity(n), 0);
    for _ in 0..n {
        let (status, old) = read(&http, b.base_url(), &id, &token).await;
        anyhow::ensure!(status == 200, "B answered {status} before a refresh");
        let old = old["access_token"].as_str().context("a token")?.to_owned();
        let res = http
            .post(format!("{}/api/token-access/{id}/refresh", a.base_url()))
            .bearer_auth(&token)
            .json(&json!({ "rejected_token": old }))
            .send()
            .await?;
        let committed = Instant::now();
        anyhow::ensure!(
            res.status() == 200,
            "refresh through A answered {}",
            res.status()
        );
        let new: Value = res.json().await?;
        let new = new["access_token"]
            .as_str()
            .context("a new token")?
            .to_owned();
        anyhow::ensure!(new != old, "the refresh gave the same token");
        let (took, stale) = until(&http, b.base_url(), &id, &token, committed, |s, body| {
            s == 200 && body["access_token"] == new.as_str()
        })
        .await?;
        refreshes.push(took);
        refresh_stale += stale;
    }

    // Uninstalls: n installations, each cached on B, uninstalled through a webhook delivered to A.
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let location = format!("P-u{i}");
        sim.add_location("pc", &location, "Bench");
        ids.push((
            location.clone(),
            stack::install_location(&http, a.base_url(), &location).await?,
        ));
    }
    let (mut uninstalls, mut uninstall_stale) = (Vec::with_capacity(n), 0);
    for (location, id) in &ids {
        let (status, _) = read(&http, b.base_url(), id, &token).await;
        anyhow::ensure!(status == 200, "B answered {status} before the uninstall");
        let answer: Value = http
            .post(format!("{}/_sim/webhooks/send", sim.base_url))
            .json(
                &json!({"type": "UNINSTALL", "companyId": "pc", "locationId": location,
                          "url": format!("{}/webhooks/highlevel", a.base_url())}),
            )
            .send()
            .await?
            .json()
            .await?;
        let committed = Instant::now();
        anyhow::ensure!(answer["status"] == 200, "A refused the UNINSTALL: {answer}");
        let (took, stale) = until(&http, b.base_url(), id, &token, committed, |s, body| {
            s == 410 && body["code"] == "installation_uninstalled"
        })
        .await?;
        uninstalls.push(took);
        uninstall_stale += stale;
    }

    report.add(
        "Propagation between replicas",
        format!(
            "| change through replica A | changes | p50 ms | p90 ms | p99 ms | max ms | reads of B still stale |\n\
             |---|---:|---:|---:|---:|---:|---:|\n{}\n{}\n\n\
             Two oauth-backend replicas on one PostgreSQL database; B held the old state in its cache. Time from \
             A's answer (its transaction committed) to B's first answer reflecting the change; B read back to back. \
             B's RSS after: {:.1} MiB.\n",
            summary("refresh (B serves the new token)", refreshes, refresh_stale),
            summary("UNINSTALL webhook (B answers 410)", uninstalls, uninstall_stale),
            b.rss_mib(),
        ),
    );
    Ok(())
}
