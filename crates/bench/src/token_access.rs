//! Token-access throughput and latency at 1, 16, 64 and 256 connections, next to a trivial actix handler in the
//! same run; cached (the hot path) and uncached (`TOKEN_CACHE=false`: every read decrypts the row from the
//! database, as the first read after another replica's refresh does). The services run as their release
//! binaries, so the memory figures are each service's own: idle, and at its peak under this load.

use crate::report::Report;
use crate::stack::{self, Service};
use crate::wrk::{trivial_server, wrk_async, WrkResult};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const CONNECTIONS: [u32; 4] = [1, 16, 64, 256];

pub struct Row {
    pub connections: u32,
    pub trivial: WrkResult,
    pub cached: WrkResult,
    pub uncached: WrkResult,
}

pub async fn run(report: &mut Report, seconds: u32) -> anyhow::Result<()> {
    let scratch = stack::Scratch::new("token-access");
    let sim = stack::sim(1, None).await?;
    sim.add_location("c1", "L1", "Bench");
    let db = std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| scratch.sqlite("oauth"));
    let keys = service_common::KeyRing::generate_entry("k1");
    let env = |cache: &str| {
        let mut env =
            oauth_backend::Settings::simulator_env(&sim.base_url, &db, &keys, stack::SECRET);
        env.extend([
            (
                "POST_INSTALL_REDIRECT_URL",
                "http://127.0.0.1:9/done".to_owned(),
            ),
            ("REFRESHER_INTERVAL_SECS", "0".to_owned()),
            ("TOKEN_CACHE", cache.to_owned()),
        ]);
        env
    };
    let cached = Service::start("oauth-backend", &env("true"), &scratch.0).await?;
    let http = stack::http();
    let id = stack::install_location(&http, cached.base_url(), "L1").await?;
    let uncached_dir = scratch.0.join("uncached");
    std::fs::create_dir_all(&uncached_dir)?;
    let uncached = Service::start("oauth-backend", &env("false"), &uncached_dir).await?;
    let token = stack::service_token("oauth-backend");
    let headers = vec![format!("Authorization: Bearer {token}")];
    let path = format!("/api/token-access/{id}");
    for s in [&cached, &uncached] {
        let status = http
            .get(format!("{}{path}", s.base_url()))
            .bearer_auth(&token)
            .send()
            .await?
            .status();
        anyhow::ensure!(
            status == 200,
            "token-access answered {status} before the run"
        );
    }
    let (trivial_url, trivial) = trivial_server()?;
    tokio::spawn(trivial);

    let oauth_idle = cached.rss_mib();
    let stop = Arc::new(AtomicBool::new(false));
    let peak = stack::sample_peak_rss(cached.pid(), stop.clone());
    let mut rows = Vec::new();
    for c in CONNECTIONS {
        let trivial = wrk_async(trivial_url.clone(), c, seconds, vec![]).await?;
        let hot = wrk_async(
            format!("{}{path}", cached.base_url()),
            c,
            seconds,
            headers.clone(),
        )
        .await?;
        let cold = wrk_async(
            format!("{}{path}", uncached.base_url()),
            c,
            seconds,
            headers.clone(),
        )
        .await?;
        println!(
            "{c:>3} connections: trivial {:>8.0} req/s | cached {:>8.0} req/s ({:.2}×, p50 {:.2} ms, p99 {:.2} ms) | uncached {:>8.0} req/s ({:.2}×, p99 {:.2} ms)",
            trivial.requests_per_sec,
            hot.requests_per_sec,
            hot.requests_per_sec / trivial.requests_per_sec,
            hot.p50_ms,
            hot.p99_ms,
            cold.requests_per_sec,
            cold.requests_per_sec / trivial.requests_per_sec,
            cold.p99_ms
        );
        anyhow::ensure!(
            hot.non_2xx == 0 && cold.non_2xx == 0,
            "token-access answered errors under load (cached {}, uncached {}); see the service logs in {}",
            hot.non_2xx,
            cold.non_2xx,
            scratch.0.display()
        );
        rows.push(Row {
            connections: c,
            trivial,
            cached: hot,
            uncached: cold,
        });
    }
    stop.store(true, Ordering::Relaxed);
    let oauth_peak = peak.await?;
    let calls = sim.stats().count("POST /oauth/token");
    report.token_access(&rows, seconds, calls)?;

    // api-backend: idle, and under a read it serves from its cached token (HighLevel's product list).
    let api_env = {
        let mut env = api_backend::Settings::simulator_env(
            &sim.base_url,
            cached.base_url(),
            &scratch.sqlite("api"),
            stack::SECRET,
        );
        env.push(("RATE_LIMIT_BURST", "100000000".to_owned()));
        env
    };
    let api_dir = scratch.0.join("api");
    std::fs::create_dir_all(&api_dir)?;
    let api = Service::start("api-backend", &api_env, &api_dir).await?;
    let api_idle = api.rss_mib();
    let api_token = stack::service_token("api-backend");
    let list = format!("{}/api/locations/L1/products", api.base_url());
    let status = http
        .get(&list)
        .bearer_auth(&api_token)
        .send()
        .await?
        .status();
    anyhow::ensure!(
        status == 200,
        "the product list answered {status} before the run"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let peak = stack::sample_peak_rss(api.pid(), stop.clone());
    let trivial = wrk_async(trivial_url.clone(), 64, seconds, vec![]).await?;
    let listed = wrk_async(
        list,
        64,
        seconds,
        vec![format!("Authorization: Bearer {api_token}")],
    )
    .await?;
    stop.store(true, Ordering::Relaxed);
    let api_peak = peak.await?;
    println!(
        "api-backend GET products (64 connections): {:.0} req/s ({:.2}× trivial), p99 {:.2} ms",
        listed.requests_per_sec,
        listed.requests_per_sec / trivial.requests_per_sec,
        listed.p99_ms
    );
    report.memory(
        oauth_idle, oauth_peak, api_idle, api_peak, &listed, &trivial,
    );
    Ok(())
}
