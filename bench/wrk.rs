// Shared by the benchmark examples (included with `include!`): run wrk, read requests/s and p99 latency.

#[allow(dead_code)]
pub struct WrkResult {
    pub requests_per_sec: f64,
    pub p99_ms: f64,
    pub non_2xx: u64,
}

/// Runs `wrk --latency` against `url` with extra headers; panics with a clear message if wrk is missing.
#[allow(dead_code)]
pub fn wrk(url: &str, connections: u32, seconds: u32, headers: &[String]) -> WrkResult {
    let mut cmd = std::process::Command::new("wrk");
    cmd.args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s"), "--latency"]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().unwrap_or_else(|e| panic!("wrk not found ({e}): apt-get install wrk"));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let number_after = |label: &str| -> Option<String> {
        text.lines().find(|l| l.trim_start().starts_with(label)).and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
    };
    let rps: f64 = number_after("Requests/sec:").and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let p99 = number_after("99%").map(|v| to_ms(&v)).unwrap_or(f64::NAN);
    let non_2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    WrkResult { requests_per_sec: rps, p99_ms: p99, non_2xx }
}

fn to_ms(v: &str) -> f64 {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => n,
    }
}

/// A handler that does nothing: the baseline every figure is a ratio to.
#[allow(dead_code)]
pub fn trivial_server() -> (String, actix_web::dev::Server) {
    let server = actix_web::HttpServer::new(|| {
        actix_web::App::new().route("/", actix_web::web::get().to(|| async { actix_web::HttpResponse::Ok().body("ok") }))
    })
    .workers(2)
    .bind("127.0.0.1:0")
    .expect("bind");
    let port = server.addrs()[0].port();
    (format!("http://127.0.0.1:{port}/"), server.run())
}

/// A simulator for benchmarks: no rate limit, one tenant (`c1` / `L1`).
#[allow(dead_code)]
pub async fn bench_sim(workers: usize) -> highlevel_sim::RunningSim {
    let config = highlevel_sim::SimConfig {
        port: 0,
        workers,
        rate_burst: u32::MAX,
        rate_daily: u32::MAX,
        ..Default::default()
    };
    let sim = highlevel_sim::spawn(config).await.expect("sim");
    sim.add_location("c1", "L1", "Bench");
    sim
}

/// Runs wrk on the trivial handler and then on `url`, prints both and their ratio, and returns the target's result.
#[allow(dead_code)]
pub async fn compare(label: &str, trivial_url: String, url: String, headers: Vec<String>, seconds: u32) -> WrkResult {
    let base = tokio::task::spawn_blocking(move || wrk(&trivial_url, 64, seconds, &[])).await.expect("wrk");
    let target = tokio::task::spawn_blocking(move || wrk(&url, 64, seconds, &headers)).await.expect("wrk");
    println!("{:<24}: {:>9.0} req/s  p99 {:>7.2} ms", "trivial actix handler", base.requests_per_sec, base.p99_ms);
    println!(
        "{label:<24}: {:>9.0} req/s  p99 {:>7.2} ms  (non-2xx: {})",
        target.requests_per_sec, target.p99_ms, target.non_2xx
    );
    println!("{:<24}: {:.2} of the trivial handler", "ratio", target.requests_per_sec / base.requests_per_sec);
    target
}
