//! Benchmark: the simulator answering `GET /products/` (20 products) against a trivial actix handler in the
//! same run. Run with `bench/run.sh` (release build, wrk).

include!("../../../bench/wrk.rs");

#[actix_web::main]
async fn main() {
    let seconds: u32 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let sim = bench_sim(2).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let consent = format!(
        "{}/oauth/chooselocation?client_id=dev-client-id&redirect_uri=http://x/cb&scope=products.write%20products.readonly&sim_user_type=Location&sim_location_id=L1",
        sim.base_url
    );
    let res = http.get(consent).send().await.expect("consent");
    let location = res.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let code = url::Url::parse(&location)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .expect("code")
        .1
        .into_owned();
    let grant: serde_json::Value = http
        .post(format!("{}/oauth/token", sim.base_url))
        .form(&[
            ("client_id", "dev-client-id"),
            ("client_secret", "dev-client-secret"),
            ("grant_type", "authorization_code"),
            ("code", &code),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let token = grant["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    for i in 0..20 {
        http.post(format!("{}/products/", sim.base_url))
            .header("Version", "2021-07-28")
            .bearer_auth(&token)
            .json(&serde_json::json!({"name": format!("Product {i}"), "locationId": "L1", "productType": "DIGITAL"}))
            .send()
            .await
            .expect("create");
    }
    let (trivial_url, trivial) = trivial_server();
    tokio::spawn(trivial);

    let headers = vec![
        format!("Authorization: Bearer {token}"),
        "Version: 2021-07-28".to_owned(),
    ];
    let url = format!("{}/products/?locationId=L1&limit=20", sim.base_url);
    compare("sim GET /products/", trivial_url, url, headers, seconds).await;
}
