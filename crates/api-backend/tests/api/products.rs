//! Products and prices through api-backend: CRUD, the all-or-nothing composite create, Idempotency-Key,
//! and no duplicate when HighLevel acted but its answer was lost.

use crate::common::*;
use serde_json::json;
use service_common::both_backends;
use service_common::testing::Backend;

async fn crud(backend: Backend) {
    let s = stack(backend).await;
    install(&s, "Location", &["Loc1"]).await;
    let t = session(&s, Some("Loc1")).await;
    let (status, p) = post(
        &s,
        "/api/locations/Loc1/products",
        Some(&t),
        json!({"name": "Plain", "productType": "SERVICE"}),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_str().unwrap().to_owned();
    let (status, list) = get(&s, "/api/locations/Loc1/products?limit=10&search=pla", &t).await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 1);
    assert_eq!(list["products"][0]["id"], id.as_str());
    let (status, got) = put(
        &s,
        &format!("/api/locations/Loc1/products/{id}"),
        &t,
        json!({"name": "Renamed", "productType": "SERVICE"}),
    )
    .await;
    assert_eq!((status, got["name"].as_str()), (200, Some("Renamed")));
    let (status, price) = post(
        &s,
        &format!("/api/locations/Loc1/products/{id}/prices"),
        Some(&t),
        json!({"name": "Once", "type": "one_time", "currency": "eur", "amount": 12.5}),
    )
    .await;
    assert_eq!(status, 201, "{price}");
    assert_eq!(price["currency"], "EUR");
    let pid = price["id"].as_str().unwrap();
    let (status, prices) = get(&s, &format!("/api/locations/Loc1/products/{id}/prices"), &t).await;
    assert_eq!((status, prices["total"].as_u64()), (200, Some(1)));
    let (status, _) = put(
        &s,
        &format!("/api/locations/Loc1/products/{id}/prices/{pid}"),
        &t,
        json!({"name": "Once", "type": "one_time", "currency": "EUR", "amount": 15}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, one) = get(
        &s,
        &format!("/api/locations/Loc1/products/{id}/prices/{pid}"),
        &t,
    )
    .await;
    assert_eq!((status, one["amount"].as_f64()), (200, Some(15.0)));
    assert_eq!(
        delete(
            &s,
            &format!("/api/locations/Loc1/products/{id}/prices/{pid}"),
            &t
        )
        .await
        .0,
        204
    );
    assert_eq!(
        delete(&s, &format!("/api/locations/Loc1/products/{id}"), &t)
            .await
            .0,
        204
    );
    let (status, gone) = get(&s, &format!("/api/locations/Loc1/products/{id}"), &t).await;
    assert_eq!(status, 404, "{gone}");
    assert_eq!(gone["code"], "highlevel_refused");
    assert_eq!(gone["detail"], "Product not found");
}

/// A price HighLevel refuses: the product, its first price and both uploaded images are removed, and the
/// caller gets HighLevel's status and words.
async fn composite_create_is_all_or_nothing(backend: Backend) {
    let s = stack(backend).await;
    let inst = install(&s, "Location", &["Loc1"]).await;
    // Product create and the first price pass; the second price is refused.
    sim_post(
        &s,
        "/_sim/faults",
        json!({"path_prefix": "/products/", "method": "POST", "status": 422, "skip": 2}),
    )
    .await;
    let (status, body) = post(
        &s,
        "/api/locations/Loc1/products",
        Some(&service_token()),
        product_body("Doomed"),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "rolled_back");
    assert_eq!(body["leftovers"], json!([]));
    assert_eq!(body["cause"]["code"], "highlevel_refused");
    assert!(
        sim_products(&s, &inst, "Loc1").await.is_empty(),
        "no product left behind"
    );
    assert!(
        sim_media(&s, &inst, "Loc1").await.is_empty(),
        "no media left behind"
    );
    assert_eq!(
        sim_count(&s, "DELETE /products/{productId}/price/{priceId}"),
        1
    );
}

async fn idempotency_key(backend: Backend) {
    let s = stack(backend).await;
    let inst = install(&s, "Location", &["Loc1"]).await;
    let t = service_token();
    let send_with = |key: &'static str, body: serde_json::Value| {
        send(
            client()
                .post(format!("{}/api/locations/Loc1/products", s.api.base_url))
                .bearer_auth(&t)
                .header("Idempotency-Key", key)
                .json(&body),
        )
    };
    let (s1, first) = send_with("key-1", product_body("Once only")).await;
    let (s2, second) = send_with("key-1", product_body("Once only")).await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(first, second, "the repeat gets the first answer");
    assert_eq!(sim_products(&s, &inst, "Loc1").await.len(), 1);
    assert_eq!(
        sim_count(&s, "POST /products/"),
        1 + 2,
        "one product and its two prices, once"
    );
    let (status, body) = send_with("key-1", product_body("Another body")).await;
    assert_eq!(status, 422);
    assert_eq!(body["code"], "idempotency_key_reused");
    assert_eq!(sim_products(&s, &inst, "Loc1").await.len(), 1);
    assert_eq!(s.api.state.metrics.idempotent_replays.get(), 1);
}

/// HighLevel created the product but the answer was lost: the workflow finds it instead of creating another.
async fn lost_answer_makes_no_duplicate(backend: Backend) {
    let s = stack(backend).await;
    let inst = install(&s, "Location", &["Loc1"]).await;
    sim_post(&s, "/_sim/faults", json!({"path_prefix": "/products", "method": "POST", "status": 500, "after_handler": true, "times": 1})).await;
    let (status, body) = post(
        &s,
        "/api/locations/Loc1/products",
        Some(&service_token()),
        product_body("Lost answer"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let held = sim_products(&s, &inst, "Loc1").await;
    assert_eq!(held.len(), 1, "exactly one product at HighLevel");
    assert_eq!(held[0]["_id"], body["id"]);
    assert_eq!(body["prices"].as_array().unwrap().len(), 2);
    // A lost price answer is recovered the same way.
    sim_post(&s, "/_sim/faults", json!({"path_prefix": "/products/", "method": "POST", "drop_connection": true, "after_handler": true, "skip": 1})).await;
    let (status, body) = post(
        &s,
        "/api/locations/Loc1/products",
        Some(&service_token()),
        product_body("Lost price"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap();
    let (_, prices) = get(
        &s,
        &format!("/api/locations/Loc1/products/{id}/prices"),
        &service_token(),
    )
    .await;
    assert_eq!(prices["total"], 2, "{prices}");
}

/// Idempotent calls are retried on 5xx; the caller never sees the passing failure.
async fn reads_are_retried(backend: Backend) {
    let s = stack(backend).await;
    install(&s, "Location", &["Loc1"]).await;
    sim_post(
        &s,
        "/_sim/faults",
        json!({"path_prefix": "/products", "method": "GET", "status": 503, "times": 2}),
    )
    .await;
    let (status, body) = get(&s, "/api/locations/Loc1/products", &service_token()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sim_count(&s, "GET /products"), 3);
    // /metrics shows HighLevel's answers by endpoint and status.
    let text = metrics_text(&s.api.base_url).await;
    assert!(
        text.contains(r#"api_highlevel_calls_total{endpoint="products.list",status="503"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"api_highlevel_calls_total{endpoint="products.list",status="200"} 1"#),
        "{text}"
    );
    // Counts are Prometheus counters (rate() works on them), not gauges named `_total`.
    for name in [
        "api_highlevel_calls_total",
        "api_highlevel_pacing_total",
        "api_bridge_tokens_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} counter")),
            "{name}: {text}"
        );
    }
}

both_backends!(
    crud,
    composite_create_is_all_or_nothing,
    idempotency_key,
    lost_answer_makes_no_duplicate,
    reads_are_retried
);
