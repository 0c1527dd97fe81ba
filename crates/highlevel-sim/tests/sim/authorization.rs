//! Every refusal in docs/highlevel.md's table of refusals, with its status, message and NestJS body.

use crate::common::*;
use reqwest::Method;
use serde_json::json;

#[actix_web::test]
async fn a_token_the_platform_never_issued_is_an_invalid_jwt() {
    let sim = sim().await;
    let (status, body, _) = call(
        &sim,
        Method::GET,
        "/products/?locationId=Loc1",
        "eyJhbGciOi.not.ours",
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"statusCode": 401, "message": "Invalid JWT", "error": "Unauthorized"})
    );
}

#[actix_web::test]
async fn an_expired_token_is_invalid() {
    let sim = sim().await;
    let token = location_token(&sim, "products.readonly", "Loc1").await;
    let res = client()
        .post(format!("{}/_sim/tokens/expire", sim.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["expired"], 1);
    let (status, body, _) = call(
        &sim,
        Method::GET,
        "/products/?locationId=Loc1",
        &token,
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"statusCode": 401, "message": "Invalid token: access token is invalid", "error": "Unauthorized"})
    );
}

#[actix_web::test]
async fn a_short_ttl_token_expires_by_itself() {
    let sim = sim_with(highlevel_sim::SimConfig {
        access_token_ttl: 1,
        ..Default::default()
    })
    .await;
    let token = location_token(&sim, "products.readonly", "Loc1").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body, _) = call(
        &sim,
        Method::GET,
        "/products/?locationId=Loc1",
        &token,
        None,
    )
    .await;
    // A JWT past its own `exp` gets HighLevel's measured message for it (field): `Invalid JWT`.
    assert_eq!(
        (status, body["message"].as_str().unwrap()),
        (401, "Invalid JWT")
    );
}

#[actix_web::test]
async fn a_missing_scope_is_refused() {
    let sim = sim().await;
    let token = location_token(&sim, "products.readonly", "Loc1").await;
    let (status, body, _) = call(
        &sim,
        Method::POST,
        "/products/",
        &token,
        Some(product("Loc1")),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body["message"],
        "The token is not authorized for this scope."
    );
}

#[actix_web::test]
async fn incident_one_company_token_on_post_products_is_forbidden_resource() {
    let sim = sim().await;
    let company = install(&sim, "Company", &["Loc1"], ALL_SCOPES).await;
    let (status, body, _) = call(
        &sim,
        Method::POST,
        "/products/",
        at(&company),
        Some(product("Loc1")),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"statusCode": 403, "message": "Forbidden resource", "error": "Forbidden"})
    );
    assert_eq!(sim.stats().count_status("POST /products/", 403), 1);
}

#[actix_web::test]
async fn incident_two_company_token_on_whitelabel_is_refused_by_auth_class() {
    let sim = sim().await;
    let company = install(&sim, "Company", &["Loc1"], ALL_SCOPES).await;
    let body = json!({"altId": "Loc1", "altType": "location", "uniqueName": "paytr", "title": "PayTR",
        "provider": "nmi", "description": "d", "imageUrl": "https://x/i.png"});
    let (status, answer, _) = call(
        &sim,
        Method::POST,
        "/payments/integrations/provider/whitelabel",
        at(&company),
        Some(body),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        answer["message"],
        "This authClass type is not allowed to access this scope. Please verify your IAM configuration if this is not the case."
    );
    // The same Company token on every other Location-only route gets the same answer.
    for path in [
        "/medias/files?sortBy=createdAt&sortOrder=asc&type=file&altType=location&altId=Loc1",
        "/payments/custom-provider/connect?locationId=Loc1",
    ] {
        let (status, answer, _) = call(&sim, Method::GET, path, at(&company), None).await;
        assert_eq!(status, 401, "{path}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .starts_with("This authClass type"),
            "{path}"
        );
    }
}

#[actix_web::test]
async fn a_location_differing_only_in_letter_case_is_refused() {
    let sim = sim().await;
    let token = location_token(&sim, ALL_SCOPES, "Loc1").await;
    let (status, body, _) = call(
        &sim,
        Method::POST,
        "/products/",
        &token,
        Some(product("loc1")),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"statusCode": 403, "message": "The token does not have access to this location.", "error": "Forbidden"})
    );
    let (status, _, _) = call(
        &sim,
        Method::GET,
        "/products/?locationId=LOC1",
        &token,
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = call(
        &sim,
        Method::POST,
        "/products/",
        &token,
        Some(product("Loc1")),
    )
    .await;
    assert_eq!(status, 201);
}

#[actix_web::test]
async fn missing_or_mistyped_fields_are_422_with_an_array_message() {
    let sim = sim().await;
    let token = location_token(&sim, ALL_SCOPES, "Loc1").await;
    let (status, body, _) = call(
        &sim,
        Method::POST,
        "/products/",
        &token,
        Some(json!({"locationId": "Loc1", "productType": "EBOOK"})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"], "Unprocessable Entity");
    let msgs = body["message"].as_array().unwrap();
    assert!(msgs.contains(&json!("name should not be empty")));
    assert!(msgs.contains(&json!("productType must be one of the following values: DIGITAL, PHYSICAL, SERVICE, PHYSICAL/DIGITAL")));
    assert!(sim.stats().count_status("POST /products/", 201) == 0);
}

#[actix_web::test]
async fn version_header_is_required_and_both_current_versions_work() {
    let sim = sim().await;
    let token = location_token(&sim, ALL_SCOPES, "Loc1").await;
    let url = format!("{}/products/?locationId=Loc1", sim.base_url);
    let none = client().get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(none.status(), 400);
    for v in ["2021-07-28", "2023-02-21"] {
        let res = client()
            .get(&url)
            .bearer_auth(&token)
            .header("Version", v)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{v}");
    }
}

#[actix_web::test]
async fn uninstall_kills_every_token_of_the_install() {
    let sim = sim().await;
    let t = install(&sim, "Location", &["Loc1"], ALL_SCOPES).await;
    let res = client()
        .post(format!("{}/_sim/uninstall", sim.base_url))
        .json(&json!({"locationId": "Loc1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, _, _) = call(
        &sim,
        Method::GET,
        "/products/?locationId=Loc1",
        at(&t),
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        refresh(&sim, t["refresh_token"].as_str().unwrap())
            .await
            .status(),
        400
    );
}
