//! Scale: N installations (100 000 by default) whose tokens all fall due at the same moment, renewed by the
//! background refreshers of two oauth-backend replicas (release binaries, one PostgreSQL database) sharing the
//! work through the refresh lease. The generator writes real encrypted rows through oauth-backend's storage
//! layer, for installs the simulator knows (so every refresh is a real grant). Reports refreshes per second,
//! time to renew all, each replica's resident memory, and token-access on a replica during the renewal
//! against the same measurement before it.

use crate::report::Report;
use crate::stack::{self, Service};
use crate::wrk::{trivial_server, wrk_async};
use diesel::prelude::*;
use oauth_backend::db::schema::{installations as inst_t, tokens as tok_t};
use oauth_backend::store::{installations::InstallFacts, now_ms, tokens::INSTALLATION_SCOPE};
use service_common::testing::{Backend, TestDb};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MARGIN_SECS: i64 = 600;

pub struct Options {
    pub installations: usize,
    pub concurrency: usize,
    pub seconds: u32,
}

pub async fn run(report: &mut Report, o: Options) -> anyhow::Result<()> {
    let scratch = stack::Scratch::new("scale");
    let sim = stack::sim(2, None).await?;
    let db = TestDb::new(Backend::Postgres);
    let keys = service_common::KeyRing::generate_entry("k1");
    let mut env =
        oauth_backend::Settings::simulator_env(&sim.base_url, &db.url, &keys, stack::SECRET);
    env.push(("REFRESHER_INTERVAL_SECS", "0".into()));

    // The generator: oauth-backend's own storage layer and key ring, in this process.
    let generator = oauth_backend::spawn_app(oauth_backend::Settings::for_simulator(
        &sim.base_url,
        &db.url,
        &keys,
        stack::SECRET,
        &[("REFRESHER_INTERVAL_SECS", "0".into())],
    )?)
    .await?;
    let started = Instant::now();
    let scopes: Vec<&str> = ["products.readonly", "products.write"].to_vec();
    let bodies = sim.seed_location_installs("scale-co", "scale", o.installations, &scopes);
    let mut first = None;
    for (chunk_no, chunk) in bodies.chunks(1000).enumerate() {
        let mut rows = Vec::with_capacity(chunk.len());
        for (i, body) in chunk.iter().enumerate() {
            let grant: highlevel_client::Grant = serde_json::from_value(body.clone())?;
            let id = format!(
                "inst_{:08x}{:024x}",
                std::process::id(),
                chunk_no * 1000 + i
            );
            let sealed = generator.state.tokens.seal_installation_grant(&id, &grant);
            let facts = InstallFacts {
                auth_class: shared_types::AuthClass::Location,
                company_id: "scale-co".into(),
                location_id: body["locationId"].as_str().map(str::to_owned),
                app_id: Some("dev-app-id".into()),
                user_id: Some("sim-seeded-user".into()),
                scopes: Some(scopes.join(" ")),
                is_bulk: false,
                approved_locations: Vec::new(),
            };
            first.get_or_insert_with(|| id.clone());
            rows.push((id, facts, sealed));
        }
        generator
            .state
            .tokens
            .db
            .run(move |c| {
                c.transaction(|c| {
                    let now = now_ms();
                    for (id, facts, sealed) in &rows {
                        oauth_backend::store::installations::upsert(c, facts, id, now)?;
                        oauth_backend::store::tokens::store(
                            c,
                            id,
                            INSTALLATION_SCOPE,
                            sealed,
                            now,
                        )?;
                    }
                    Ok::<_, service_common::DbError>(())
                })
            })
            .await?;
    }
    let generated = started.elapsed();
    let first = first.ok_or_else(|| anyhow::anyhow!("no installations generated"))?;
    println!(
        "generated {} installations in {:.1} s",
        o.installations,
        generated.as_secs_f64()
    );

    // Two replicas, refreshers on.
    let mut replica_env = env.clone();
    replica_env.retain(|(k, _)| *k != "REFRESHER_INTERVAL_SECS");
    replica_env.extend([
        ("REFRESHER_INTERVAL_SECS", "1".to_owned()),
        ("REFRESH_MARGIN_SECS", MARGIN_SECS.to_string()),
        ("REFRESHER_CONCURRENCY", o.concurrency.to_string()),
        ("DB_POOL_SIZE", "20".to_owned()),
    ]);
    let dirs = [scratch.0.join("a"), scratch.0.join("b")];
    for d in &dirs {
        std::fs::create_dir_all(d)?;
    }
    let a = Service::start("oauth-backend", &replica_env, &dirs[0]).await?;
    let b = Service::start("oauth-backend", &replica_env, &dirs[1]).await?;
    let idle = (a.rss_mib(), b.rss_mib());
    let http = stack::http();
    let token = stack::service_token("oauth-backend");
    let url = format!("{}/api/token-access/{first}", a.base_url());
    anyhow::ensure!(
        http.get(&url).bearer_auth(&token).send().await?.status() == 200,
        "token-access failed"
    );
    let headers = vec![format!("Authorization: Bearer {token}")];
    let (trivial_url, trivial) = trivial_server()?;
    tokio::spawn(trivial);
    let base_trivial = wrk_async(trivial_url.clone(), 64, o.seconds, vec![]).await?;
    let before = wrk_async(url.clone(), 64, o.seconds, headers.clone()).await?;

    // Every token falls due now: an hour old, 200 s left, inside the 600 s margin.
    let grants_before = sim.stats().refresh_grants;
    let now = now_ms();
    generator
        .state
        .tokens
        .db
        .run(move |c| {
            diesel::update(tok_t::table)
                .set((
                    tok_t::expires_at.eq(now + 200_000),
                    tok_t::updated_at.eq(now - 3_600_000),
                ))
                .execute(c)
                .map_err(service_common::DbError::from)
        })
        .await?;
    let renewal_started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let peaks = (
        stack::sample_peak_rss(a.pid(), stop.clone()),
        stack::sample_peak_rss(b.pid(), stop.clone()),
    );
    let during = wrk_async(url.clone(), 64, o.seconds, headers.clone()).await?;
    let during_trivial_wrk_ok = during.non_2xx == 0;
    let target = grants_before + o.installations as u64;
    let deadline = Duration::from_secs(3600);
    while sim.stats().refresh_grants < target && renewal_started.elapsed() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = renewal_started.elapsed();
    // Anything refreshed twice would show as more grants (or reuse) a little later.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let peaks = (peaks.0.await?, peaks.1.await?);
    let stats = sim.stats();
    let grants = stats.refresh_grants - grants_before;
    let now = now_ms();
    let (still_due, not_active): (i64, i64) = generator
        .state
        .tokens
        .db
        .run(move |c| {
            let due = tok_t::table
                .filter(tok_t::expires_at.lt(now + MARGIN_SECS * 1000))
                .count()
                .get_result(c)?;
            let inactive = inst_t::table
                .filter(inst_t::state.ne("active"))
                .count()
                .get_result(c)?;
            Ok::<_, service_common::DbError>((due, inactive))
        })
        .await?;
    let ok = grants == o.installations as u64
        && stats.refresh_token_reuse == 0
        && still_due == 0
        && not_active == 0
        && during_trivial_wrk_ok;
    report.add(
        &format!("Scale: {} installations", o.installations),
        format!(
            "| installations | replicas | concurrency per replica | generated in | renewed all in | refreshes/s | refresh grants | reuse | still due after | not active |\n\
             |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n\
             | {n} | 2 (one PostgreSQL) | {c} | {gen:.1} s | {took:.1} s | {rate:.0} | {grants} | {reuse} | {still_due} | {not_active} |\n\n\
             | replica | idle RSS MiB | peak RSS during renewal MiB |\n|---|---:|---:|\n| a | {ia:.1} | {pa:.1} |\n| b | {ib:.1} | {pb:.1} |\n\n\
             | token-access on replica a, 64 connections | req/s | ratio to trivial ({tr:.0} req/s) | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|\n\
             | before the renewal | {b_rps:.0} | {b_ratio:.2} | {b50:.2} | {b99:.2} |\n\
             | during the renewal | {d_rps:.0} | {d_ratio:.2} | {d50:.2} | {d99:.2} |\n\n\
             Every token was written due at the same moment (an hour old, 200 s left, margin {MARGIN_SECS} s). \
             {verdict}\n",
            n = o.installations,
            c = o.concurrency,
            gen = generated.as_secs_f64(),
            took = took.as_secs_f64(),
            rate = grants as f64 / took.as_secs_f64(),
            reuse = stats.refresh_token_reuse,
            ia = idle.0,
            ib = idle.1,
            pa = peaks.0,
            pb = peaks.1,
            tr = base_trivial.requests_per_sec,
            b_rps = before.requests_per_sec,
            b_ratio = before.requests_per_sec / base_trivial.requests_per_sec,
            b50 = before.p50_ms,
            b99 = before.p99_ms,
            d_rps = during.requests_per_sec,
            d_ratio = during.requests_per_sec / base_trivial.requests_per_sec,
            d50 = during.p50_ms,
            d99 = during.p99_ms,
            verdict = if ok {
                "Each token was refreshed exactly once (grants = installations, no reuse) and none is left due."
            } else {
                "NOT every token was renewed exactly once: see the figures."
            }
        ),
    );
    anyhow::ensure!(ok, "the scale run went wrong (see the table)");
    Ok(())
}
