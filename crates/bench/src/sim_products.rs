//! The simulator itself: `GET /products/` (20 products) next to the trivial handler, 64 connections. Shows the
//! simulator is never the bottleneck of the other figures.

use crate::report::Report;
use crate::stack;
use crate::wrk::{trivial_server, wrk_async};

pub async fn run(report: &mut Report, seconds: u32) -> anyhow::Result<()> {
    let sim = stack::sim(2, None).await?;
    let grant = sim
        .seed_location_installs("c1", "L", 1, &["products.readonly", "products.write"])
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no install seeded"))?;
    let token = grant["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let http = stack::http();
    for i in 0..20 {
        http.post(format!("{}/products/", sim.base_url))
            .header("Version", "2021-07-28")
            .bearer_auth(&token)
            .json(&serde_json::json!({"name": format!("Product {i}"), "locationId": "L-0", "productType": "DIGITAL"}))
            .send()
            .await?
            .error_for_status()?;
    }
    let (trivial_url, trivial) = trivial_server()?;
    tokio::spawn(trivial);
    let headers = vec![
        format!("Authorization: Bearer {token}"),
        "Version: 2021-07-28".to_owned(),
    ];
    let base = wrk_async(trivial_url, 64, seconds, vec![]).await?;
    let listed = wrk_async(
        format!("{}/products/?locationId=L-0&limit=20", sim.base_url),
        64,
        seconds,
        headers,
    )
    .await?;
    report.add(
        "Simulator",
        format!(
            "| | req/s | ratio | p99 ms |\n|---|---:|---:|---:|\n| trivial handler | {:.0} | 1.00 | {:.2} |\n| sim `GET /products/` (20 products) | {:.0} | {:.2} | {:.2} |\n",
            base.requests_per_sec,
            base.p99_ms,
            listed.requests_per_sec,
            listed.requests_per_sec / base.requests_per_sec,
            listed.p99_ms
        ),
    );
    Ok(())
}
