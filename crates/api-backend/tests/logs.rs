//! A whole flow with every log line of both services captured at debug level: the request id runs through
//! api-backend and oauth-backend, and no secret appears anywhere (tokens, client secret, encryption keys,
//! service JWTs, api keys, SSO payloads, merchant credentials); a proxied answer cut off while it streams is
//! logged with the request's id. Its own test binary: it owns the global log subscriber.
#![allow(clippy::unwrap_used)]

#[path = "api/common.rs"]
mod common;

use common::*;
use serde_json::json;

#[actix_web::test]
async fn a_whole_flow_logs_no_secret() {
    let logs = service_common::testing::CapturedLogs::install();

    let keys = service_common::KeyRing::generate_entry("logk");
    let s = stack_with(
        service_common::testing::Backend::Sqlite,
        Default::default(),
        &[
            ("TOKEN_ENCRYPTION_KEYS", &keys),
            ("PAYMENT_EVENTS_INTERVAL_MS", "100"),
        ],
    )
    .await;
    let inst = install(&s, "Company", &["Loc1", "Loc2"]).await;
    let sso = sso_payload(
        &json!({"userId": "u1", "companyId": "comp1", "type": "agency", "role": "admin"}),
        SSO_KEY,
    );
    let (_, session) = post(&s, "/api/sessions", None, json!({"sso": sso})).await;
    let session = session["token"].as_str().unwrap().to_owned();

    // A product with media, under a request id of the caller's.
    let res = client()
        .post(format!("{}/api/locations/Loc1/products", s.api.base_url))
        .bearer_auth(&session)
        .header("X-Request-Id", "trace-abc-123")
        .json(&product_body("Logged"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["x-request-id"], "trace-abc-123");
    // A refresh: HighLevel expires every token, the next call refreshes and replays.
    sim_post(&s, "/_sim/tokens/expire", json!({})).await;
    assert_eq!(
        get(&s, "/api/locations/Loc1/products", &session).await.0,
        200
    );
    // The payment provider, a queryUrl call, a page charge and its event.
    let (_, provider) = put(&s, "/api/locations/Loc1/payments/provider", &session,
        json!({"name": "PayTR", "description": "d", "imageUrl": "https://x.test/i.png", "gateway": "paytr",
               "paytr": {"merchantId": "123", "merchantKey": "merchant-key-NEVER-LOGGED", "merchantSalt": "merchant-salt-NEVER-LOGGED"}})).await;
    let row = s
        .api
        .state
        .db
        .run(|c| api_backend::store::providers::get(c, "Loc1"))
        .await
        .unwrap()
        .unwrap();
    let api_key = api_backend::payments::keys::api_key(
        &SERVICE_SECRET.to_owned().into(),
        "Loc1",
        api_backend::payments::keys::Mode::Test,
        &row.api_key_salt,
    );
    let (status, _) = post(
        &s,
        "/payments/query",
        None,
        json!({"type": "verify", "apiKey": api_key, "chargeId": "ch_none"}),
    )
    .await;
    assert_eq!(status, 200);
    // A webhook to oauth-backend (its signature is refused: the simulator's keys are not HighLevel's).
    sim_post(&s, "/_sim/webhooks/send", json!({"type": "INSTALL", "url": format!("{}/webhooks/highlevel", s.oauth.base_url), "companyId": "comp1", "locationId": "Loc3"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let text = logs.text();
    assert!(text.len() > 1000, "logs were captured");
    // The request id is on api-backend's lines and on the lines oauth-backend logged for the same request.
    let traced: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("trace-abc-123"))
        .collect();
    assert!(
        traced
            .iter()
            .any(|l| l.contains("/api/locations/Loc1/products")),
        "api-backend's access line"
    );
    assert!(
        traced.iter().any(|l| l.contains("/api/token-access/")),
        "oauth-backend's access line carries the caller's id"
    );

    let mut secrets: Vec<(String, String)> = s
        .sim
        .issued_tokens()
        .into_iter()
        .map(|t| ("a HighLevel token".to_owned(), t))
        .collect();
    secrets.push(("the client secret".into(), "dev-client-secret".into()));
    secrets.push((
        "the encryption key".into(),
        keys.split_once(':').unwrap().1.to_owned(),
    ));
    secrets.push(("the service JWT secret".into(), SERVICE_SECRET.into()));
    secrets.push(("a service JWT".into(), service_token()));
    secrets.push(("a session".into(), session.clone()));
    secrets.push(("the api key".into(), api_key));
    secrets.push(("the SSO payload".into(), sso));
    secrets.push(("the SSO key".into(), SSO_KEY.into()));
    secrets.push((
        "the merchant key".into(),
        "merchant-key-NEVER-LOGGED".into(),
    ));
    secrets.push((
        "the merchant salt".into(),
        "merchant-salt-NEVER-LOGGED".into(),
    ));
    assert!(secrets.len() > 12 && provider["publishableKeys"].is_object());
    for (what, secret) in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{what} appears in the logs"
        );
    }
    let _ = inst;
}

/// The proxy streams HighLevel's answer after its handler has returned; when it cuts one off (grown past
/// PROXY_ANSWER_LIMIT, or HighLevel stalled past HIGHLEVEL_IDLE_TIMEOUT_MS) the warning still carries the
/// request's id.
#[actix_web::test]
async fn a_cut_off_proxied_answer_is_logged_with_the_request_id() {
    let logs = service_common::testing::CapturedLogs::install();
    let scopes = format!("{} calendars.readonly", oauth_backend::settings::DEV_SCOPES);
    let s = stack_scoped(
        service_common::testing::TestDb::new(service_common::testing::Backend::Sqlite),
        service_common::testing::TestDb::new(service_common::testing::Backend::Sqlite),
        Default::default(),
        &[
            ("PROXY_ANSWER_LIMIT", "1MiB"),
            ("HIGHLEVEL_IDLE_TIMEOUT_MS", "300"),
        ],
        Some(&scopes),
    )
    .await;
    install(&s, "Company", &["Loc1"]).await;
    let user = session(&s, Some("Loc1")).await;
    let calendars = format!(
        "{}/api/locations/Loc1/highlevel/calendars/?locationId=Loc1",
        s.api.base_url
    );
    let cases = [
        (
            "proxy-cut-limit-1",
            json!({"answer_bytes": 3 * 1024 * 1024, "undeclared_length": true}),
            "grew past the proxy's limit",
        ),
        (
            "proxy-cut-stall-2",
            json!({"answer_bytes": 512 * 1024, "answer_pause_ms": 3000}),
            "broke off while streaming",
        ),
    ];
    for (id, fault, _) in &cases {
        let mut fault = fault.clone();
        fault["path_prefix"] = json!("/calendars/");
        fault["method"] = json!("GET");
        fault["after_handler"] = json!(true);
        sim_post(&s, "/_sim/faults", fault).await;
        let res = client()
            .get(&calendars)
            .bearer_auth(&user)
            .header("X-Request-Id", *id)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{id}");
        assert!(res.bytes().await.is_err(), "{id}: the answer is cut off");
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let text = logs.text();
    for (id, _, warning) in &cases {
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(warning)).collect();
        assert!(
            !lines.is_empty(),
            "{id}: the warning {warning:?} was logged"
        );
        assert!(
            lines.iter().any(|l| l.contains(id)),
            "{id}: the warning carries the request id: {lines:?}"
        );
    }
}
