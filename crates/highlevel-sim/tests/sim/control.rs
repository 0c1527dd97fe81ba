//! Rate limits, fault injection, signed webhooks, stats and reset.

use crate::common::*;
use reqwest::Method;
use serde_json::{json, Value};

#[actix_web::test]
async fn the_101st_request_in_a_window_is_429_with_headers() {
    let sim = sim().await;
    let token = location_token(&sim, ALL_SCOPES, "Loc1").await;
    for i in 0..100u32 {
        let (status, _, h) = call(
            &sim,
            Method::GET,
            "/products/?locationId=Loc1",
            &token,
            None,
        )
        .await;
        assert_eq!(status, 200, "request {i}");
        assert_eq!(h["x-ratelimit-remaining"], (99 - i).to_string().as_str());
    }
    let (status, body, h) = call(
        &sim,
        Method::GET,
        "/products/?locationId=Loc1",
        &token,
        None,
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({"statusCode": 429, "message": "Too Many Requests"})
    );
    assert_eq!(h["x-ratelimit-max"], "100");
    assert_eq!(h["x-ratelimit-remaining"], "0");
    assert_eq!(h["x-ratelimit-interval-milliseconds"], "10000");
    assert_eq!(h["x-ratelimit-limit-daily"], "200000");
    assert_eq!(h["x-ratelimit-daily-remaining"], "199900");
    assert_eq!(sim.stats().rate_limited, 1);
    // Another location of the same app has its own budget.
    let other = location_token(&sim, ALL_SCOPES, "Loc2").await;
    let (status, _, _) = call(
        &sim,
        Method::GET,
        "/products/?locationId=Loc2",
        &other,
        None,
    )
    .await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn the_window_slides() {
    let sim = sim_with(highlevel_sim::SimConfig {
        rate_burst: 3,
        rate_window_ms: 300,
        ..Default::default()
    })
    .await;
    let token = location_token(&sim, ALL_SCOPES, "Loc1").await;
    for _ in 0..3 {
        assert_eq!(
            call(
                &sim,
                Method::GET,
                "/products/?locationId=Loc1",
                &token,
                None
            )
            .await
            .0,
            200
        );
    }
    assert_eq!(
        call(
            &sim,
            Method::GET,
            "/products/?locationId=Loc1",
            &token,
            None
        )
        .await
        .0,
        429
    );
    tokio::time::sleep(std::time::Duration::from_millis(320)).await;
    assert_eq!(
        call(
            &sim,
            Method::GET,
            "/products/?locationId=Loc1",
            &token,
            None
        )
        .await
        .0,
        200
    );
}

async fn fault(sim: &highlevel_sim::RunningSim, spec: Value) {
    let res = client()
        .post(format!("{}/_sim/faults", sim.base_url))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[actix_web::test]
async fn a_status_fault_applies_times_then_stops() {
    let sim = sim().await;
    let token = location_token(&sim, ALL_SCOPES, "Loc1").await;
    fault(
        &sim,
        json!({"path_prefix": "/products", "status": 503, "times": 2}),
    )
    .await;
    for _ in 0..2 {
        let (status, body, _) = call(
            &sim,
            Method::GET,
            "/products/?locationId=Loc1",
            &token,
            None,
        )
        .await;
        assert_eq!((status, body["statusCode"].as_u64()), (503, Some(503)));
    }
    assert_eq!(
        call(
            &sim,
            Method::GET,
            "/products/?locationId=Loc1",
            &token,
            None
        )
        .await
        .0,
        200
    );
}

#[actix_web::test]
async fn a_latency_fault_stalls_the_answer() {
    let sim = sim().await;
    let token = location_token(&sim, ALL_SCOPES, "Loc1").await;
    fault(
        &sim,
        json!({"path_prefix": "/products", "latency_ms": 400, "times": 1}),
    )
    .await;
    let started = std::time::Instant::now();
    let (status, _, _) = call(
        &sim,
        Method::GET,
        "/products/?locationId=Loc1",
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
    let res = client()
        .get(format!("{}/_sim/faults", sim.base_url))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(res["faults"], json!([]));
}

#[actix_web::test]
async fn a_dropped_connection_fault_gives_the_client_no_answer() {
    let sim = sim().await;
    let token = location_token(&sim, ALL_SCOPES, "Loc1").await;
    fault(
        &sim,
        json!({"path_prefix": "/products", "drop_connection": true, "times": 1}),
    )
    .await;
    let res = client()
        .get(format!("{}/products/?locationId=Loc1", sim.base_url))
        .header("Version", VERSION)
        .bearer_auth(&token)
        .send()
        .await;
    let failed = match res {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(failed, "the client must not get a complete answer");
    assert_eq!(
        call(
            &sim,
            Method::GET,
            "/products/?locationId=Loc1",
            &token,
            None
        )
        .await
        .0,
        200
    );
}

#[actix_web::test]
async fn an_after_handler_fault_loses_the_answer_but_keeps_the_effect() {
    let sim = sim().await;
    let t = install(&sim, "Location", &["Loc1"], ALL_SCOPES).await;
    fault(
        &sim,
        json!({"path_prefix": "/oauth/token", "status": 502, "after_handler": true}),
    )
    .await;
    let res = refresh(&sim, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 502);
    assert_eq!(sim.stats().refresh_grants, 1, "HighLevel did the refresh");
    // The caller never saw the new pair, and the old refresh token is dead.
    assert_eq!(
        refresh(&sim, t["refresh_token"].as_str().unwrap())
            .await
            .status(),
        400
    );
    assert_eq!(sim.stats().refresh_token_reuse, 1);
}

mod webhooks {
    use super::*;
    use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
    use base64::Engine;
    use std::sync::{Arc, Mutex};

    type Seen = Arc<Mutex<Vec<(Vec<u8>, Option<String>, Option<String>)>>>;

    async fn receiver() -> (String, Seen) {
        let seen: Seen = Arc::default();
        let data = web::Data::new(seen.clone());
        let server = HttpServer::new(move || {
            App::new().app_data(data.clone()).route(
                "/hook",
                web::post().to(
                    |req: HttpRequest, body: web::Bytes, seen: web::Data<Seen>| async move {
                        let h =
                            |n: &str| req.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
                        seen.lock().unwrap().push((
                            body.to_vec(),
                            h("x-ghl-signature"),
                            h("x-wh-signature"),
                        ));
                        HttpResponse::Ok().body("ok")
                    },
                ),
            )
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        (format!("http://127.0.0.1:{port}/hook"), seen)
    }

    #[actix_web::test]
    async fn webhooks_are_signed_over_the_exact_body_with_ed25519_and_rsa() {
        use ed25519_dalek::pkcs8::DecodePublicKey as _;
        use rsa::signature::Verifier as _;

        let sim = sim().await;
        let (url, seen) = receiver().await;
        let res = client()
            .post(format!("{}/_sim/webhooks/send", sim.base_url))
            .json(&json!({"type": "INSTALL", "url": url, "companyId": "comp1", "locationId": "Loc1", "installType": "Location"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let answer: Value = res.json().await.unwrap();
        assert_eq!(answer["status"], 200);

        let keys: Value = client()
            .get(format!("{}/_sim/keys", sim.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (body, ed, rsa_sig) = seen.lock().unwrap()[0].clone();
        let payload: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(payload["type"], "INSTALL");
        assert_eq!(payload["appId"], "dev-app-id");
        assert!(payload["webhookId"].is_string() && payload["timestamp"].is_string());

        let b64 = base64::engine::general_purpose::STANDARD;
        let ed_key = ed25519_dalek::VerifyingKey::from_public_key_pem(
            keys["ed25519"]["publicKeyPem"].as_str().unwrap(),
        )
        .unwrap();
        let ed_sig =
            ed25519_dalek::Signature::from_slice(&b64.decode(ed.unwrap()).unwrap()).unwrap();
        ed_key.verify_strict(&body, &ed_sig).unwrap();
        let mut tampered = body.clone();
        tampered[0] = b' ';
        assert!(ed_key.verify_strict(&tampered, &ed_sig).is_err());

        let rsa_key =
            rsa::RsaPublicKey::from_public_key_pem(keys["rsa"]["publicKeyPem"].as_str().unwrap())
                .unwrap();
        let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(rsa_key);
        let sig =
            rsa::pkcs1v15::Signature::try_from(b64.decode(rsa_sig.unwrap()).unwrap().as_slice())
                .unwrap();
        verifier.verify(&body, &sig).unwrap();
        assert!(verifier.verify(&tampered, &sig).is_err());
    }

    #[actix_web::test]
    async fn an_uninstall_webhook_also_uninstalls_on_the_platform() {
        let sim = sim().await;
        let (url, seen) = receiver().await;
        let t = install(&sim, "Location", &["Loc1"], ALL_SCOPES).await;
        client()
            .post(format!("{}/_sim/webhooks/send", sim.base_url))
            .json(&json!({"type": "UNINSTALL", "url": url, "locationId": "Loc1", "sim_sign": "ed25519"}))
            .send()
            .await
            .unwrap();
        let (_, ed, rsa_sig) = seen.lock().unwrap()[0].clone();
        assert!(ed.is_some() && rsa_sig.is_none());
        assert_eq!(
            call(
                &sim,
                Method::GET,
                "/products/?locationId=Loc1",
                at(&t),
                None
            )
            .await
            .0,
            401
        );
    }

    /// Any event type of HighLevel's webhook events docs, with the fields its page documents, signed.
    #[actix_web::test]
    async fn any_documented_event_type_is_sent_with_its_documented_fields() {
        let sim = sim().await;
        let (url, seen) = receiver().await;
        let types: Value = client()
            .get(format!("{}/_sim/webhooks/events", sim.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let types: Vec<&str> = types["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        for t in [
            "ContactCreate",
            "AppointmentCreate",
            "OpportunityStatusUpdate",
            "InvoicePaid",
            "PLAN_CHANGE",
        ] {
            assert!(types.contains(&t), "{t} in {types:?}");
        }
        let res = client()
            .post(format!(
                "{}/_sim/webhooks/events/OpportunityStatusUpdate",
                sim.base_url
            ))
            .json(&json!({"url": url, "locationId": "Loc1", "status": "won"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let (body, ed, rsa_sig) = seen.lock().unwrap()[0].clone();
        assert!(ed.is_some() && rsa_sig.is_some());
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (&body["type"], &body["locationId"], &body["status"]),
            (
                &json!("OpportunityStatusUpdate"),
                &json!("Loc1"),
                &json!("won")
            )
        );
        for field in [
            "id",
            "assignedTo",
            "contactId",
            "monetaryValue",
            "name",
            "pipelineId",
            "pipelineStageId",
            "source",
            "dateAdded",
            "appId",
            "timestamp",
            "webhookId",
        ] {
            assert!(body.get(field).is_some(), "{field} in {body}");
        }
        let res = client()
            .post(format!("{}/_sim/webhooks/events/NoSuchEvent", sim.base_url))
            .json(&json!({"url": url}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "nothing sent for an unknown type"
        );
    }
}

#[actix_web::test]
async fn stats_count_routes_by_status_and_reset_forgets_everything_but_the_app() {
    let sim = sim().await;
    let token = location_token(&sim, ALL_SCOPES, "Loc1").await;
    call(
        &sim,
        Method::GET,
        "/products/?locationId=Loc1",
        &token,
        None,
    )
    .await;
    call(
        &sim,
        Method::GET,
        "/products/?locationId=LOC1",
        &token,
        None,
    )
    .await;
    let stats: highlevel_sim::StatsSnapshot = client()
        .get(format!("{}/_sim/stats", sim.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats.count_status("GET /products/", 200), 1);
    assert_eq!(stats.count_status("GET /products/", 403), 1);
    assert_eq!(stats.count("POST /oauth/token"), 1);
    assert_eq!(stats.authorization_code_grants, 1);

    client()
        .post(format!("{}/_sim/reset", sim.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(sim.stats().count("GET /products/"), 0);
    assert_eq!(
        call(
            &sim,
            Method::GET,
            "/products/?locationId=Loc1",
            &token,
            None
        )
        .await
        .0,
        401
    );
    let locs: Value = client()
        .get(format!("{}/_sim/locations", sim.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(locs["locations"], json!([]));
    // The app itself is still configured: a new tenant can install it.
    let res = client()
        .post(format!("{}/_sim/locations", sim.base_url))
        .json(&json!({"companyId": "c9", "locationId": "L9", "name": "New"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    install(&sim, "Location", &["L9"], "products.readonly").await;
}
