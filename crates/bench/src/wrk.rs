//! Runs wrk (the load generator the figures come from) and reads requests/s, p50 and p99 from its report.

use std::process::Command;

#[derive(Debug, Clone, Copy)]
pub struct WrkResult {
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub non_2xx: u64,
}

/// `wrk --latency` against `url` with `connections` connections (two threads, one for a single connection).
pub fn wrk(
    url: &str,
    connections: u32,
    seconds: u32,
    headers: &[String],
) -> anyhow::Result<WrkResult> {
    let threads = connections.clamp(1, 2);
    let mut cmd = Command::new("wrk");
    cmd.args([
        format!("-t{threads}"),
        format!("-c{connections}"),
        format!("-d{seconds}s"),
        "--latency".into(),
    ]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().map_err(|e| {
        anyhow::anyhow!("wrk could not run ({e}); install it: apt-get install -y wrk")
    })?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let after = |label: &str| -> Option<String> {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
    };
    let requests_per_sec = after("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("wrk printed no Requests/sec:\n{text}"))?;
    let non_2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok(WrkResult {
        requests_per_sec,
        p50_ms: after("50%").map_or(f64::NAN, |v| to_ms(&v)),
        p99_ms: after("99%").map_or(f64::NAN, |v| to_ms(&v)),
        non_2xx,
    })
}

fn to_ms(v: &str) -> f64 {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => n,
    }
}

/// `wrk` on a blocking thread, so servers in this process keep running.
pub async fn wrk_async(
    url: String,
    connections: u32,
    seconds: u32,
    headers: Vec<String>,
) -> anyhow::Result<WrkResult> {
    tokio::task::spawn_blocking(move || wrk(&url, connections, seconds, &headers)).await?
}

/// A handler that does nothing: the baseline every throughput figure is a ratio to. Served as the services
/// serve (`service_common::server`): the same listener, HTTP/1.1 and h2c, and actix's default worker count
/// (one per core), so a ratio measures the service's own work per request.
pub fn trivial_server() -> anyhow::Result<(String, actix_web::dev::Server)> {
    let listener = service_common::http::listen("127.0.0.1", 0)?;
    let port = listener.local_addr()?.port();
    let server = actix_web::HttpServer::new(|| {
        actix_web::App::new().route(
            "/",
            actix_web::web::get().to(|| async { actix_web::HttpResponse::Ok().body("ok") }),
        )
    })
    .listen_auto_h2c(listener)?
    .run();
    Ok((format!("http://127.0.0.1:{port}/"), server))
}

/// The trivial handler, answering `body` (the same bytes every time) as JSON: the baseline for a route whose
/// answer is larger than `ok`, so that a ratio leaves out what the kernel and the load generator pay to move
/// the answer's bytes and keeps only the service's own work.
pub fn trivial_server_answering(
    body: bytes::Bytes,
) -> anyhow::Result<(String, actix_web::dev::Server)> {
    let listener = service_common::http::listen("127.0.0.1", 0)?;
    let port = listener.local_addr()?.port();
    let server = actix_web::HttpServer::new(move || {
        let body = body.clone();
        actix_web::App::new().default_service(actix_web::web::to(move || {
            let body = body.clone();
            async move {
                actix_web::HttpResponse::Ok()
                    .content_type("application/json")
                    .body(body)
            }
        }))
    })
    .listen_auto_h2c(listener)?
    .run();
    Ok((format!("http://127.0.0.1:{port}/"), server))
}

#[cfg(test)]
mod tests {
    #[test]
    fn wrk_units_become_milliseconds() {
        assert_eq!(super::to_ms("250.00us"), 0.25);
        assert_eq!(super::to_ms("1.50ms"), 1.5);
        assert_eq!(super::to_ms("2.00s"), 2000.0);
    }
}
