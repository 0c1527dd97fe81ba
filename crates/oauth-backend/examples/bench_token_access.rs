//! Benchmark: the hot token-access path (service JWT check, cache hit, buffered audit) against a trivial
//! actix handler in the same run, 64 connections. Run with `bench/run.sh` (release build, wrk).
//! `BENCH_DATABASE_URL` picks the database (default: a SQLite file in a temporary folder).

include!("../../../bench/wrk.rs");

#[actix_web::main]
async fn main() {
    let seconds: u32 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let sim = bench_sim(1).await;
    let dir = std::env::temp_dir().join(format!("oauth-bench-{}", std::process::id()));
    let db_url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/oauth.db", dir.display()));
    let settings = oauth_backend::Settings::for_simulator(
        &sim.base_url,
        &db_url,
        &oauth_backend::crypto::keyring::KeyRing::generate_entry("k1"),
        "bench-secret-bench-secret-bench-secret-0",
        &[
            ("HIGHLEVEL_SCOPES", "products.readonly oauth.write".into()),
            (
                "POST_INSTALL_REDIRECT_URL",
                "http://127.0.0.1:9/done".into(),
            ),
            ("REFRESHER_INTERVAL_SECS", "0".into()),
        ],
    )
    .expect("settings");
    let app = oauth_backend::spawn_app(settings)
        .await
        .expect("oauth-backend");

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let res = http
        .get(format!(
            "{}/oauth/install?sim_user_type=Location&sim_location_id=L1",
            app.base_url
        ))
        .send()
        .await
        .expect("install");
    let res = http
        .get(res.headers()["location"].to_str().expect("consent"))
        .send()
        .await
        .expect("consent");
    let back = url::Url::parse(res.headers()["location"].to_str().expect("callback")).expect("url");
    let res = http
        .get(format!(
            "{}/oauth/callback?{}",
            app.base_url,
            back.query().unwrap_or_default()
        ))
        .send()
        .await
        .expect("callback");
    let done = url::Url::parse(res.headers()["location"].to_str().expect("done")).expect("url");
    let id = done
        .query_pairs()
        .find(|(k, _)| k == "installation_id")
        .expect("id")
        .1
        .into_owned();
    let token = app
        .state
        .auth
        .issue("bench", 3600, None)
        .expect("service token");

    let (trivial_url, trivial) = trivial_server();
    tokio::spawn(trivial);
    let url = format!("{}/api/token-access/{id}", app.base_url);
    let headers = vec![format!("Authorization: Bearer {token}")];
    // Warm the cache once so the measured path is the hot one.
    assert_eq!(
        http.get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("warm")
            .status(),
        200
    );
    compare("GET /api/token-access", trivial_url, url, headers, seconds).await;
    println!(
        "HighLevel calls during the run: {} (refresh grants {})",
        sim.stats().count("POST /oauth/token"),
        sim.stats().refresh_grants
    );
    app.state.audit.flush().await;
    let audited: i64 = app
        .state
        .tokens
        .db
        .run(move |c| {
            Ok(oauth_backend::store::audit::for_installation(c, &id)?
                .iter()
                .map(|a| a.count)
                .sum())
        })
        .await
        .expect("audit");
    let dropped = app.state.metrics.audit_dropped.get();
    println!("reads audited           : {audited} (dropped: {dropped}; wrk counts its own requests in its report)");
    let _ = std::fs::remove_dir_all(&dir);
}
