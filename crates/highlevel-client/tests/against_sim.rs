//! The client against the simulator (HighLevel's side, played independently): expiry judged from the token's
//! own `exp` whatever the 401 says, and `/oauth/installedLocations` read page by page.
#![allow(clippy::unwrap_used)]

use highlevel_client::endpoints::PRODUCTS_LIST;
use highlevel_client::{
    Body, ClientConfig, HighLevelClient, HlError, OAuthClient, Request, TokenSource,
};
use secrecy::{ExposeSecret, SecretString};
use shared_types::{AuthClass, TokenAccess};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

const REDIRECT: &str = "http://127.0.0.1:9/cb";

async fn sim(ttl: i64) -> highlevel_sim::RunningSim {
    highlevel_sim::spawn(highlevel_sim::SimConfig {
        port: 0,
        workers: 1,
        access_token_ttl: ttl,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// Consents through the simulator's chooselocation and answers the code.
async fn code(sim: &highlevel_sim::RunningSim, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&format!("{}/v2/oauth/chooselocation", sim.base_url)).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", "dev-client-id")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "products.readonly oauth.readonly oauth.write")
        .extend_pairs(params);
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let back = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    back.query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

fn oauth(sim: &highlevel_sim::RunningSim) -> OAuthClient {
    OAuthClient::new(
        &sim.base_url,
        "dev-client-id",
        SecretString::from("dev-client-secret".to_owned()),
        Duration::from_secs(5),
    )
    .unwrap()
}

/// A token source holding one Location pair, refreshing it when told the token was rejected.
struct Pair {
    oauth: OAuthClient,
    tokens: Mutex<(String, SecretString)>,
    refreshes: AtomicU32,
}

impl Pair {
    fn access(&self) -> TokenAccess {
        TokenAccess {
            installation_id: "inst_test".into(),
            access_token: self.tokens.lock().unwrap().0.clone(),
            token_type: "Bearer".into(),
            expires_at: chrono::Utc::now(),
            auth_class: AuthClass::Location,
            company_id: "comp1".into(),
            location_id: Some("Loc1".into()),
            scopes: vec!["products.readonly".into()],
        }
    }
}

impl TokenSource for Pair {
    async fn token(&self) -> Result<TokenAccess, HlError> {
        Ok(self.access())
    }

    async fn rejected(&self, _token: &TokenAccess) -> Result<TokenAccess, HlError> {
        let rt = self.tokens.lock().unwrap().1.clone();
        let g = self.oauth.refresh(&rt, "Location").await.unwrap();
        *self.tokens.lock().unwrap() = (
            g.access_token.expose_secret().to_owned(),
            g.refresh_token.unwrap(),
        );
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        Ok(self.access())
    }
}

/// HighLevel answers an expired JWT with `401 Invalid JWT` in some cases (measured by third parties). A 401 for a
/// token whose own `exp` has passed is an expiry whatever the message: refreshed once, the request replayed.
#[tokio::test]
async fn a_token_past_its_exp_refused_with_invalid_jwt_is_refreshed_once_and_replayed() {
    let sim = sim(2).await;
    sim.add_location("comp1", "Loc1", "First");
    let c = code(
        &sim,
        &[("sim_user_type", "Location"), ("sim_location_id", "Loc1")],
    )
    .await;
    let oauth = oauth(&sim);
    let g = oauth
        .exchange_code(&c, Some("Location"), REDIRECT)
        .await
        .unwrap();
    let pair = Pair {
        oauth,
        tokens: Mutex::new((
            g.access_token.expose_secret().to_owned(),
            g.refresh_token.unwrap(),
        )),
        refreshes: AtomicU32::new(0),
    };
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let client = HighLevelClient::new(ClientConfig {
        api_url: sim.base_url.clone(),
        ..Default::default()
    })
    .unwrap();
    let req = Request {
        endpoint: &PRODUCTS_LIST,
        path: "/products/".into(),
        query: vec![("locationId".into(), "Loc1".into())],
        body: Body::Empty,
        location: Some("Loc1".into()),
    };
    let answer = client.call(&pair, &req).await;
    assert!(answer.is_ok(), "{:?}", answer.err());
    assert_eq!(pair.refreshes.load(Ordering::SeqCst), 1, "refreshed once");
    let stats = sim.stats();
    assert_eq!(stats.count_status("GET /products/", 401), 1, "refused once");
    assert_eq!(
        stats.count_status("GET /products/", 200),
        1,
        "replayed once"
    );
}

/// The simulator gives an expired JWT HighLevel's measured message.
#[tokio::test]
async fn the_simulator_answers_an_expired_jwt_with_invalid_jwt() {
    let sim = sim(1).await;
    sim.add_location("comp1", "Loc1", "First");
    let c = code(
        &sim,
        &[("sim_user_type", "Location"), ("sim_location_id", "Loc1")],
    )
    .await;
    let g = oauth(&sim).exchange_code(&c, None, REDIRECT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = reqwest::Client::new()
        .get(format!("{}/products/?locationId=Loc1", sim.base_url))
        .header("Version", "2021-07-28")
        .bearer_auth(g.access_token.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["message"], "Invalid JWT");
}

/// HighLevel's OAuth API reference: `skip`/`limit` (default limit 20); the v3 draft caps a page at 100. An agency install with
/// 130 locations is read whole, page by page until `count`.
#[tokio::test]
async fn installed_locations_are_read_page_by_page_until_count() {
    let sim = sim(86_399).await;
    for n in 0..130 {
        sim.add_location("comp9", &format!("L{n:03}"), "Bulk");
    }
    let c = code(
        &sim,
        &[("sim_user_type", "Company"), ("sim_company_id", "comp9")],
    )
    .await;
    let oauth = oauth(&sim);
    // An agency install's code, exchanged without saying the user type (as for a Marketplace install).
    let g = oauth.exchange_code(&c, None, REDIRECT).await.unwrap();
    assert_eq!(g.user_type.as_deref(), Some("Company"));
    let listed = oauth
        .installed_locations(&g.access_token, "comp9", "dev-app-id")
        .await
        .unwrap();
    assert_eq!(listed.len(), 130);
    assert_eq!(listed.first().map(String::as_str), Some("L000"));
    assert_eq!(listed.last().map(String::as_str), Some("L129"));
    assert_eq!(
        sim.stats().count("GET /oauth/installedLocations"),
        2,
        "two pages of 100"
    );
}

/// A Location pair for Loc1, straight from the simulator's consent.
async fn location_pair(sim: &highlevel_sim::RunningSim) -> Pair {
    let c = code(
        sim,
        &[("sim_user_type", "Location"), ("sim_location_id", "Loc1")],
    )
    .await;
    let oauth = oauth(sim);
    let g = oauth
        .exchange_code(&c, Some("Location"), REDIRECT)
        .await
        .unwrap();
    Pair {
        oauth,
        tokens: Mutex::new((
            g.access_token.expose_secret().to_owned(),
            g.refresh_token.unwrap(),
        )),
        refreshes: AtomicU32::new(0),
    }
}

async fn fault(sim: &highlevel_sim::RunningSim, spec: serde_json::Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/_sim/faults", sim.base_url))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// A streamed call ([`HighLevelClient::call_streamed`]) is bounded by `timeout` up to the answer's head only:
/// its body, read by a caller slower than the timeout, arrives whole. Its pacing slot is given back once the
/// head is in (with one slot, a second call goes through while the first answer is still unread). HighLevel
/// stalling mid-body for longer than `idle_timeout` ends the body with an error, without waiting out the stall.
#[tokio::test]
async fn a_streamed_answer_is_bounded_by_its_head_and_its_pauses_not_by_its_length() {
    const SIZE: u64 = 8 * 1024 * 1024;
    let sim = sim(86_399).await;
    sim.add_location("comp1", "Loc1", "First");
    let pair = location_pair(&sim).await;
    let client = HighLevelClient::new(ClientConfig {
        api_url: sim.base_url.clone(),
        timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(300),
        pacing: highlevel_client::PacingConfig {
            max: 1,
            interval: Duration::from_millis(20),
            max_wait: Duration::from_secs(2),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let req = Request {
        endpoint: &PRODUCTS_LIST,
        path: "/products/".into(),
        query: vec![("locationId".into(), "Loc1".into())],
        body: Body::Empty,
        location: Some("Loc1".into()),
    };

    fault(
        &sim,
        serde_json::json!({"path_prefix": "/products/", "answer_bytes": SIZE, "after_handler": true}),
    )
    .await;
    let mut streamed = client.call_streamed(&pair, &req).await.unwrap();
    assert_eq!(streamed.declared_len, Some(SIZE));
    // The only slot was given back with the head: another call is not held up by the unread body.
    let other = tokio::time::timeout(Duration::from_secs(3), client.call(&pair, &req)).await;
    assert!(
        matches!(other, Ok(Ok(_))),
        "a second call while the first answer is unread: {other:?}"
    );
    // A reader slower than the timeout.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut len = 0u64;
    while let Some(chunk) = streamed.chunk().await.unwrap() {
        len += chunk.len() as u64;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(len, SIZE);

    // HighLevel stops sending halfway for 5 s: the body ends in an error after the idle timeout.
    fault(
        &sim,
        serde_json::json!({"path_prefix": "/products/", "answer_bytes": 1024 * 1024,
            "answer_pause_ms": 5000, "after_handler": true}),
    )
    .await;
    let started = std::time::Instant::now();
    let mut streamed = client.call_streamed(&pair, &req).await.unwrap();
    let err = loop {
        match streamed.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("a stalled answer arrived complete"),
            Err(e) => break e,
        }
    };
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(&err, HlError::Unavailable { reason, maybe_applied: true } if reason.contains("timeout")),
        "{err:?}"
    );
}
