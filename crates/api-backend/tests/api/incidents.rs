//! The two incidents this project exists to end, end to end, plus the refresh-and-replay after expiry.

use crate::common::*;
use reqwest::Method;
use serde_json::json;
use service_common::both_backends;
use service_common::testing::Backend;

/// An agency (Company) install; a product with two images and two prices through api-backend succeeds
/// because a Location token is minted; the same call with the Company token gets HighLevel's 403; the
/// doctor names the cause and the fix.
async fn first_incident(backend: Backend) {
    let s = stack(backend).await;
    let inst = install(&s, "Company", &["Loc1", "Loc2"]).await;
    let agency = session(&s, None).await;

    let (status, body) = post(
        &s,
        "/api/locations/Loc1/products",
        Some(&agency),
        product_body("Course"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["medias"].as_array().unwrap().len(), 2);
    assert_eq!(body["prices"].as_array().unwrap().len(), 2);
    assert_eq!(body["locationId"], "Loc1");
    assert!(s.sim.stats().location_tokens_minted >= 1);
    let held = sim_products(&s, &inst, "Loc1").await;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["medias"].as_array().unwrap().len(), 2);
    assert_eq!(sim_media(&s, &inst, "Loc1").await.len(), 2);

    // The same create sent straight to HighLevel with the installation's Company token.
    let company = token_for(&s, &inst, None).await;
    assert_eq!(company["auth_class"], "Company");
    let (status, body) = hl(
        &s,
        Method::POST,
        "/products/",
        company["access_token"].as_str().unwrap(),
        Some(json!({"name": "Course", "locationId": "Loc1", "productType": "DIGITAL"})),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["message"], "Forbidden resource");

    // The doctor on the installation's own token names the cause and the fix.
    let inst_status = s.api.state.bridge.installation(&inst).await.unwrap();
    let r = api_backend::doctor::report(
        &s.api.state.bridge,
        &inst_status,
        None,
        Some("dev-client-id"),
        None,
    )
    .await
    .unwrap();
    assert!(!r.ok);
    let d = r
        .problems
        .iter()
        .find(|d| d.cause == shared_types::Cause::CompanyTokenOnLocationEndpoint)
        .expect("the cause is named");
    assert!(d.fix.contains("/oauth/locationToken"), "{}", d.fix);
    assert!(api_backend::doctor::render(&r).contains("company_token_on_location_endpoint"));
    // With the location, the token api-backend uses may do everything the app needs.
    let r = api_backend::doctor::report(
        &s.api.state.bridge,
        &inst_status,
        Some("Loc1"),
        Some("dev-client-id"),
        None,
    )
    .await
    .unwrap();
    assert!(r.ok, "{}", api_backend::doctor::render(&r));
    assert_eq!(
        r.location_token.unwrap().auth_class,
        Some(shared_types::AuthClass::Location)
    );
    // The same report over HTTP, for the session's location.
    let (status, body) = get(&s, "/api/locations/Loc1/diagnostics", &agency).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["ok"].as_bool(),
            body["installationToken"]["authClass"].as_str()
        ),
        (Some(true), Some("Company"))
    );
    assert_eq!(body["locationToken"]["authClassId"], "Loc1");
}

/// A location id one letter's case away from the installed one: the exact fix, and nothing sent.
async fn location_case_mismatch(backend: Backend) {
    let s = stack(backend).await;
    install(&s, "Location", &["Loc1"]).await;
    let before = sim_count(&s, "GET /products");
    let (status, body) = get(&s, "/api/locations/loc1/products", &service_token()).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "location_case_mismatch");
    assert_eq!(body["diagnosis"]["cause"], "location_case_mismatch");
    assert!(body["fix"].as_str().unwrap().contains("`Loc1`"), "{body}");
    assert_eq!(sim_count(&s, "GET /products"), before);

    // Sent straight to HighLevel with the Location token, the refusal is diagnosed the same way.
    let inst = install(&s, "Location", &["Loc2"]).await;
    let t = token_for(&s, &inst, None).await;
    let (status, body) = hl(
        &s,
        Method::GET,
        "/products/?locationId=loc2",
        t["access_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (
            403,
            Some("The token does not have access to this location.")
        )
    );
    let ctx = highlevel_client::diagnosis::Presented::of(&serde_json::from_value(t).unwrap());
    let d = highlevel_client::diagnosis::diagnose(
        &highlevel_client::diagnosis::Context {
            endpoint: &highlevel_client::endpoints::PRODUCTS_LIST,
            token: &ctx,
            location: Some("loc2"),
            app_client_id: None,
        },
        403,
        body["message"].as_str().unwrap(),
    );
    assert_eq!(d.cause, shared_types::Cause::LocationCaseMismatch);
    assert!(d.fix.contains("`Loc2`"));
}

/// The payment app's incident: the white-label attempt is named `wrong_provider_endpoint`; the custom
/// provider registers with a Location token and the simulator holds the connected keys.
async fn second_incident(backend: Backend) {
    let s = stack(backend).await;
    let inst = install(&s, "Company", &["Loc1"]).await;

    let company = token_for(&s, &inst, None).await;
    let (status, body) = hl(&s, Method::POST, "/payments/integrations/provider/whitelabel", company["access_token"].as_str().unwrap(),
        Some(json!({"altId": "Loc1", "altType": "location", "uniqueName": "paytr", "title": "PayTR", "provider": "nmi", "description": "d", "imageUrl": "https://x.test/i.png"}))).await;
    assert_eq!(status, 401);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("This authClass type is not allowed"));
    let inst_status = s.api.state.bridge.installation(&inst).await.unwrap();
    let r = api_backend::doctor::report(
        &s.api.state.bridge,
        &inst_status,
        Some("Loc1"),
        None,
        Some("whitelabel.create"),
    )
    .await
    .unwrap();
    assert!(!r.ok);
    assert_eq!(
        r.problems[0].cause,
        shared_types::Cause::WrongProviderEndpoint
    );
    assert!(r.problems[0].fix.contains("custom-provider"));

    let agency = session(&s, None).await;
    let (status, body) = put(&s, "/api/locations/Loc1/payments/provider", &agency,
        json!({"name": "PayTR", "description": "Cards through PayTR", "imageUrl": "https://x.test/paytr.png", "gateway": "sandbox"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["queryUrl"], format!("{PUBLIC_URL}/payments/query"));
    assert!(
        body.get("apiKey").is_none() && !body.to_string().contains("sk_"),
        "no api key in the answer: {body}"
    );
    let loc = token_for(&s, &inst, Some("Loc1")).await;
    let (status, held) = hl(
        &s,
        Method::GET,
        "/payments/custom-provider/connect?locationId=Loc1",
        loc["access_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, 200, "{held}");
    assert_eq!(
        held["paymentProvider"]["live"]["publishableKey"],
        body["publishableKeys"]["live"]
    );
    assert_eq!(
        held["paymentProvider"]["test"]["publishableKey"],
        body["publishableKeys"]["test"]
    );
    assert_eq!(held["queryUrl"], format!("{PUBLIC_URL}/payments/query"));
    // Nothing went to the white-label endpoint.
    assert_eq!(sim_count(&s, "POST /payments/integrations"), 1);
}

/// After every token expires at HighLevel: exactly one refresh at oauth-backend, the request is replayed,
/// the caller sees success.
async fn expired_token_is_refreshed_once_and_replayed(backend: Backend) {
    let s = stack(backend).await;
    install(&s, "Location", &["Loc1"]).await;
    let t = service_token();
    let (status, _) = get(&s, "/api/locations/Loc1/products", &t).await;
    assert_eq!(status, 200);
    let before = s.sim.stats().refresh_grants;
    sim_post(&s, "/_sim/tokens/expire", json!({})).await;
    let calls: Vec<_> = (0..8)
        .map(|_| get(&s, "/api/locations/Loc1/products", &t))
        .collect();
    for (status, body) in futures::future::join_all(calls).await {
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        s.sim.stats().refresh_grants - before,
        1,
        "exactly one refresh"
    );
    assert_eq!(s.sim.stats().refresh_token_reuse, 0);
    assert_eq!(
        s.api
            .state
            .bridge
            .stats
            .refreshes
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

both_backends!(
    first_incident,
    location_case_mismatch,
    second_incident,
    expired_token_is_refreshed_once_and_replayed
);
