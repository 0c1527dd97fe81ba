//! Bad input: each gets a 4xx problem with a stable code; nothing is sent to HighLevel and nothing stored.

use crate::common::*;
use service_common::both_backends;
use service_common::testing::Backend;

async fn bad_input_is_refused_before_highlevel(backend: Backend) {
    let s = stack(backend).await;
    install(&s, "Location", &["Loc1"]).await;
    let t = service_token();
    let url = format!("{}/api/locations/Loc1/products", s.api.base_url);
    let raw = |body: &'static str| {
        send(
            client()
                .post(&url)
                .bearer_auth(&t)
                .header("content-type", "application/json")
                .header("Idempotency-Key", "k")
                .body(body),
        )
    };
    let cases: Vec<(u16, &str, (u16, serde_json::Value))> = vec![
        (400, "invalid_request", raw("{not json").await),
        (422, "validation_failed", raw(r#"{"productType":"DIGITAL"}"#).await),
        (422, "validation_failed", raw(r#"{"name":"x","productType":"EBOOK"}"#).await),
        (422, "validation_failed", raw(r#"{"name":"x","productType":"DIGITAL","price":[]}"#).await),
        (422, "validation_failed", raw(r#"{"name":"x","productType":"DIGITAL","prices":[{"name":"p","type":"one_time","currency":"USD","amount":"9.99"}]}"#).await),
        (422, "validation_failed", raw(r#"{"name":"x","productType":"DIGITAL","prices":[{"name":"p","type":"recurring","currency":"USD","amount":9.99}]}"#).await),
        (422, "validation_failed", raw(r#"{"name":"x","productType":"DIGITAL","prices":[{"name":"p","type":"one_time","currency":"DOLLARS","amount":1}]}"#).await),
        (422, "validation_failed", raw(r#"{"name":"x","productType":"DIGITAL","images":["ftp://nope"]}"#).await),
        (413, "payload_too_large", send(client().post(&url).bearer_auth(&t).header("content-type", "application/json").body(format!(r#"{{"name":"{}","productType":"DIGITAL"}}"#, "x".repeat(300 * 1024)))).await),
        (415, "unsupported_media_type", send(client().post(&url).bearer_auth(&t).header("content-type", "text/plain").body("name=x")).await),
        (400, "invalid_request", get(&s, "/api/locations/Loc1/products/not%20an%20id", &t).await),
        (400, "invalid_request", get(&s, "/api/locations/Loc1/products?limit=1000", &t).await),
        (400, "invalid_request", get(&s, "/api/locations/Loc1/products?limit=ten", &t).await),
        (401, "session_required", send(client().get(&url)).await),
        (401, "session_invalid", get(&s, "/api/locations/Loc1/products", "not-a-token").await),
        (404, "not_found", get(&s, "/api/nowhere", &t).await),
        (405, "method_not_allowed", send(client().patch(&url).bearer_auth(&t).json(&serde_json::json!({}))).await),
    ];
    for (want, code, (status, body)) in cases {
        assert_eq!(status, want, "{body}");
        assert_eq!(body["code"], code, "{body}");
        assert!(body["detail"].is_string());
    }
    assert_eq!(
        sim_count(&s, "POST /products"),
        0,
        "nothing reached HighLevel"
    );
    assert_eq!(sim_count(&s, "GET /products"), 0);
    let location = "Loc1".to_owned();
    let stored = s
        .api
        .state
        .db
        .run(move |c| api_backend::store::idempotency::claim(c, &location, "k", "probe", 0))
        .await
        .unwrap();
    assert_eq!(
        stored,
        api_backend::store::idempotency::Claim::Run { retry_of: None },
        "no idempotency record was kept for refused input"
    );
}

async fn unknown_location_is_explained(backend: Backend) {
    let s = stack(backend).await;
    install(&s, "Location", &["Loc1"]).await;
    let (status, body) = get(&s, "/api/locations/Loc3/products", &service_token()).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "location_not_installed");
    assert!(body["fix"].as_str().unwrap().contains("/oauth/install"));
}

both_backends!(
    bad_input_is_refused_before_highlevel,
    unknown_location_is_explained
);
