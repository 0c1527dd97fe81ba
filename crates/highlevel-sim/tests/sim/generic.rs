//! Every operation of HighLevel's files the simulator does not model in depth (contacts, calendars, locations
//! search, …): HighLevel's refusals for the wrong class, scope or location (docs/highlevel.md's table of
//! refusals; classes from the OpenAPI files and the scope table), a plausible echo otherwise, and the token
//! class of each call counted.

use crate::common::*;
use reqwest::Method;
use serde_json::json;

const SCOPES: &str = "contacts.write contacts.readonly calendars.readonly locations.readonly";

#[actix_web::test]
async fn contacts_take_a_location_token_with_their_scope_and_location() {
    let sim = sim().await;
    let token = location_token(&sim, SCOPES, "Loc1").await;
    let (status, created, headers) = call(
        &sim,
        Method::POST,
        "/contacts/",
        &token,
        Some(json!({"locationId": "Loc1", "firstName": "Ada"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert!(headers.contains_key("x-ratelimit-remaining"));
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, got, _) = call(&sim, Method::GET, &format!("/contacts/{id}"), &token, None).await;
    // HighLevel answers `{contact: {...}}` (contacts.json, GET /contacts/{contactId}).
    assert_eq!(
        (status, got["contact"]["firstName"].as_str()),
        (200, Some("Ada")),
        "{got}"
    );

    // Another location in the body or query: HighLevel's 403.
    let (status, body, _) = call(
        &sim,
        Method::POST,
        "/contacts/",
        &token,
        Some(json!({"locationId": "Loc2"})),
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (
            403,
            Some("The token does not have access to this location.")
        )
    );
    let (status, _, _) = call(
        &sim,
        Method::GET,
        "/calendars/?locationId=Loc2",
        &token,
        None,
    )
    .await;
    assert_eq!(status, 403);

    // Without the scope: 401.
    let narrow = location_token(&sim, "contacts.readonly", "Loc1").await;
    let (status, body, _) = call(
        &sim,
        Method::POST,
        "/contacts/",
        &narrow,
        Some(json!({"locationId": "Loc1"})),
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("The token is not authorized for this scope."))
    );

    let stats = sim.stats();
    assert_eq!(stats.count_class("POST /contacts/", "Location"), 3);
    assert_eq!(
        stats.count_class("GET /contacts/{contactId}", "Location"),
        1
    );
    assert_eq!(stats.count_status("POST /contacts/", 201), 1);
}

/// The scope table gives contacts as Sub-Account: a Company token is refused with the authClass message;
/// `GET /locations/search` takes a Company token (its `security` lists Agency-Access).
#[actix_web::test]
async fn the_class_each_operation_takes() {
    let sim = sim().await;
    let company = install(&sim, "Company", &["Loc1", "Loc2"], SCOPES).await;
    let token = at(&company);
    let (status, body, _) = call(
        &sim,
        Method::POST,
        "/contacts/",
        token,
        Some(json!({"locationId": "Loc1"})),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("This authClass type is not allowed"));
    let (status, body, _) = call(
        &sim,
        Method::GET,
        "/locations/search?companyId=comp1",
        token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["locations"].is_array(), "{body}");
    assert_eq!(
        sim.stats().count_class("GET /locations/search", "Company"),
        1
    );
}

#[actix_web::test]
async fn unknown_routes_and_missing_versions() {
    let sim = sim().await;
    let token = location_token(&sim, SCOPES, "Loc1").await;
    let (status, body, _) = call(&sim, Method::GET, "/no/such/route", &token, None).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (404, Some("Cannot GET /no/such/route"))
    );
    let res = client()
        .get(format!("{}/calendars/?locationId=Loc1", sim.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}
