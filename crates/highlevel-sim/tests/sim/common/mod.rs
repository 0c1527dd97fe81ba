#![allow(dead_code, clippy::unwrap_used)]
//! Helpers the simulator tests share: start a simulator, install the app, call it like a client would.

use highlevel_sim::{RunningSim, SimConfig};
use serde_json::{json, Value};

pub const VERSION: &str = "2021-07-28";
pub const ALL_SCOPES: &str =
    "products.write products.readonly products/prices.write products/prices.readonly \
medias.write medias.readonly payments/custom-provider.write payments/custom-provider.readonly \
payments/integration.write payments/integration.readonly oauth.write oauth.readonly";

pub async fn sim_with(config: SimConfig) -> RunningSim {
    let sim = highlevel_sim::spawn(SimConfig {
        port: 0,
        workers: 1,
        ..config
    })
    .await
    .unwrap();
    sim.add_location("comp1", "Loc1", "First");
    sim.add_location("comp1", "Loc2", "Second");
    sim.add_location("comp2", "Other1", "Other company");
    sim
}

pub async fn sim() -> RunningSim {
    sim_with(SimConfig::default()).await
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Consents through chooselocation and returns the one-time code.
pub async fn code(sim: &RunningSim, user_type: &str, locations: &[&str], scopes: &str) -> String {
    let mut url = url::Url::parse(&format!("{}/oauth/chooselocation", sim.base_url)).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", "dev-client-id")
            .append_pair("redirect_uri", "http://127.0.0.1:1/callback")
            .append_pair("scope", scopes)
            .append_pair("state", "st4te")
            .append_pair("sim_user_type", user_type);
        for l in locations {
            q.append_pair("sim_location_id", l);
        }
    }
    let res = client().get(url).send().await.unwrap();
    assert_eq!(res.status(), 302, "{}", res.text().await.unwrap());
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let redirect = url::Url::parse(&location).unwrap();
    let pairs: std::collections::HashMap<_, _> = redirect.query_pairs().into_owned().collect();
    assert_eq!(pairs["state"], "st4te");
    pairs["code"].clone()
}

pub async fn token_request(sim: &RunningSim, form: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(format!("{}/oauth/token", sim.base_url))
        .form(form)
        .send()
        .await
        .unwrap()
}

pub async fn exchange(sim: &RunningSim, code: &str, user_type: &str) -> Value {
    let res = token_request(
        sim,
        &[
            ("client_id", "dev-client-id"),
            ("client_secret", "dev-client-secret"),
            ("grant_type", "authorization_code"),
            ("code", code),
            ("user_type", user_type),
            ("redirect_uri", "http://127.0.0.1:1/callback"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

pub async fn refresh(sim: &RunningSim, refresh_token: &str) -> reqwest::Response {
    token_request(
        sim,
        &[
            ("client_id", "dev-client-id"),
            ("client_secret", "dev-client-secret"),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("user_type", "Location"),
        ],
    )
    .await
}

/// A fresh install's token answer.
pub async fn install(sim: &RunningSim, user_type: &str, locations: &[&str], scopes: &str) -> Value {
    let c = code(sim, user_type, locations, scopes).await;
    exchange(sim, &c, user_type).await
}

pub async fn location_token(sim: &RunningSim, scopes: &str, location: &str) -> String {
    install(sim, "Location", &[location], scopes).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub fn at(v: &Value) -> &str {
    v["access_token"].as_str().unwrap()
}

pub async fn call(
    sim: &RunningSim,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = client()
        .request(method, format!("{}{}", sim.base_url, path))
        .header("Version", VERSION)
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(json!(text)),
        headers,
    )
}

pub fn product(location: &str) -> Value {
    json!({"name": "Course", "locationId": location, "productType": "DIGITAL"})
}
