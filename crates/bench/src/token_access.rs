//! Token-access throughput and latency at 1, 16, 64 and 256 connections, next to a trivial actix handler in the
//! same run; cached (the hot path) and uncached (`TOKEN_CACHE=false`: every read decrypts the row from the
//! database, as the first read after another replica's refresh does). The services run as their release
//! binaries, so the memory figures are each service's own: idle, and at its peak under this load.

use crate::report::Report;
use crate::stack::{self, Service};
use crate::wrk::{trivial_server, trivial_server_answering, wrk_async, WrkResult};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const CONNECTIONS: [u32; 4] = [1, 16, 64, 256];

/// Paired rounds per connection count (see `run`).
pub const ROUNDS: usize = 6;

/// One wrk run and the CPU the server spent on it.
#[derive(Clone, Copy)]
pub struct Measured {
    pub wrk: WrkResult,
    /// The serving process's CPU time (user + system, every thread) per request, in µs.
    pub cpu_us: f64,
}

impl Measured {
    fn new(wrk: WrkResult, cpu_ticks: u64, seconds: u32) -> Measured {
        let requests = wrk.requests_per_sec * f64::from(seconds);
        Measured {
            wrk,
            cpu_us: cpu_ticks as f64 * 1e6 / stack::TICKS_PER_SECOND / requests.max(1.0),
        }
    }
}

struct Round {
    trivial: Measured,
    same_bytes: Measured,
    cached: Measured,
}

/// A connection count's figures: for each of the trivial handler, the same-bytes handler and the cached read,
/// the round whose req/s is the median; the ratios are the medians of the rounds' own ratios.
pub struct Row {
    pub connections: u32,
    pub trivial: Measured,
    /// The trivial handler answering token-access's own bytes to token-access's own request.
    pub same_bytes: Measured,
    pub cached: Measured,
    pub ratio: f64,
    pub ratio_same_bytes: f64,
    /// The same-bytes handler ÷ the trivial handler (median of the rounds): what moving token-access's answer
    /// costs by itself, and so the most `ratio` can be with nothing else done per read.
    pub ceiling: f64,
    pub uncached: WrkResult,
    rounds_non_2xx: u64,
}

impl Row {
    fn of(connections: u32, rounds: Vec<Round>, uncached: WrkResult) -> Row {
        let median_run = |pick: fn(&Round) -> Measured| {
            let mut runs: Vec<Measured> = rounds.iter().map(pick).collect();
            runs.sort_by(|a, b| a.wrk.requests_per_sec.total_cmp(&b.wrk.requests_per_sec));
            runs[runs.len() / 2]
        };
        // The median over the rounds of `of`'s req/s ÷ `base`'s, each round's pair measured back to back.
        let median_ratio = |of: fn(&Round) -> Measured, base: fn(&Round) -> Measured| {
            let mut ratios: Vec<f64> = rounds
                .iter()
                .map(|r| of(r).wrk.requests_per_sec / base(r).wrk.requests_per_sec)
                .collect();
            ratios.sort_by(f64::total_cmp);
            ratios[ratios.len() / 2]
        };
        Row {
            connections,
            trivial: median_run(|r| r.trivial),
            same_bytes: median_run(|r| r.same_bytes),
            cached: median_run(|r| r.cached),
            ratio: median_ratio(|r| r.cached, |r| r.trivial),
            ratio_same_bytes: median_ratio(|r| r.cached, |r| r.same_bytes),
            ceiling: median_ratio(|r| r.same_bytes, |r| r.trivial),
            uncached,
            rounds_non_2xx: rounds
                .iter()
                .map(|r| r.trivial.wrk.non_2xx + r.same_bytes.wrk.non_2xx + r.cached.wrk.non_2xx)
                .sum(),
        }
    }
}

/// Runs `load` and measures the CPU process `pid` spent meanwhile (clock ticks).
async fn timed(
    pid: u32,
    load: impl std::future::Future<Output = anyhow::Result<WrkResult>>,
) -> anyhow::Result<(WrkResult, u64)> {
    let before = stack::cpu_ticks(pid);
    let result = load.await?;
    Ok((result, stack::cpu_ticks(pid).saturating_sub(before)))
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
    let mut answer = bytes::Bytes::new();
    for s in [&cached, &uncached] {
        let res = http
            .get(format!("{}{path}", s.base_url()))
            .bearer_auth(&token)
            .send()
            .await?;
        let status = res.status();
        anyhow::ensure!(
            status == 200,
            "token-access answered {status} before the run"
        );
        answer = res.bytes().await?;
    }
    let (trivial_url, trivial) = trivial_server()?;
    tokio::spawn(trivial);
    let answer_len = answer.len();
    let (same_bytes_url, same_bytes) = trivial_server_answering(answer)?;
    tokio::spawn(same_bytes);
    let same_bytes_url = format!("{}{}", same_bytes_url.trim_end_matches('/'), path);

    let oauth_idle = cached.rss_mib();
    let stop = Arc::new(AtomicBool::new(false));
    let peak = stack::sample_peak_rss(cached.pid(), stop.clone());
    let mut rows = Vec::new();
    let cached_url = format!("{}{path}", cached.base_url());
    for c in CONNECTIONS {
        // Paired rounds: the baselines and the cached read back to back, ROUNDS times; a row's ratios are the
        // medians of the rounds' ratios, so a moment when the machine is slower weighs on both sides of one
        // ratio and on one round only. Each round starts with the next of the three (ROUNDS a multiple of three:
        // each starts as often), so none always runs first.
        let mut rounds = Vec::new();
        for round in 0..ROUNDS {
            let me = std::process::id();
            let (mut trivial, mut same_bytes, mut hot) = (None, None, None);
            for turn in 0..3 {
                match (round + turn) % 3 {
                    0 => {
                        trivial = Some(
                            timed(me, wrk_async(trivial_url.clone(), c, seconds, vec![])).await?,
                        )
                    }
                    1 => {
                        same_bytes = Some(
                            timed(
                                me,
                                wrk_async(same_bytes_url.clone(), c, seconds, headers.clone()),
                            )
                            .await?,
                        )
                    }
                    _ => {
                        hot = Some(
                            timed(
                                cached.pid(),
                                wrk_async(cached_url.clone(), c, seconds, headers.clone()),
                            )
                            .await?,
                        )
                    }
                }
            }
            let (
                Some((trivial, trivial_cpu)),
                Some((same_bytes, same_bytes_cpu)),
                Some((hot, hot_cpu)),
            ) = (trivial, same_bytes, hot)
            else {
                anyhow::bail!("a round ran without one of its three runs");
            };
            rounds.push(Round {
                trivial: Measured::new(trivial, trivial_cpu, seconds),
                same_bytes: Measured::new(same_bytes, same_bytes_cpu, seconds),
                cached: Measured::new(hot, hot_cpu, seconds),
            });
        }
        let cold = wrk_async(
            format!("{}{path}", uncached.base_url()),
            c,
            seconds,
            headers.clone(),
        )
        .await?;
        let row = Row::of(c, rounds, cold);
        println!(
            "{c:>3} connections: trivial {:>8.0} req/s ({:.1} µs CPU) | same bytes {:>8.0} req/s ({:.1} µs; {:.2}× trivial) | cached {:>8.0} req/s ({:.1} µs; {:.2}×, {:.2}× same bytes, p50 {:.2} ms, p99 {:.2} ms) | uncached {:>8.0} req/s ({:.2}×, p99 {:.2} ms)",
            row.trivial.wrk.requests_per_sec,
            row.trivial.cpu_us,
            row.same_bytes.wrk.requests_per_sec,
            row.same_bytes.cpu_us,
            row.ceiling,
            row.cached.wrk.requests_per_sec,
            row.cached.cpu_us,
            row.ratio,
            row.ratio_same_bytes,
            row.cached.wrk.p50_ms,
            row.cached.wrk.p99_ms,
            row.uncached.requests_per_sec,
            row.uncached.requests_per_sec / row.trivial.wrk.requests_per_sec,
            row.uncached.p99_ms
        );
        anyhow::ensure!(
            row.rounds_non_2xx == 0 && row.uncached.non_2xx == 0,
            "token-access answered errors under load (cached {}, uncached {}); see the service logs in {}",
            row.rounds_non_2xx,
            row.uncached.non_2xx,
            scratch.0.display()
        );
        rows.push(row);
    }
    stop.store(true, Ordering::Relaxed);
    let oauth_peak = peak.await?;
    let calls = sim.stats().count("POST /oauth/token");
    report.token_access(&rows, seconds, calls, answer_len)?;

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
