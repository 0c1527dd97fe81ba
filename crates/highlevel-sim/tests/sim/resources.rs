//! Products, prices, media and payments: state per location, HighLevel's shapes.

use crate::common::*;
use reqwest::Method;
use serde_json::json;

#[actix_web::test]
async fn product_crud_with_highlevel_shapes() {
    let sim = sim().await;
    let token = location_token(&sim, ALL_SCOPES, "Loc1").await;
    let (status, created, _) = call(
        &sim,
        Method::POST,
        "/products/",
        &token,
        Some(product("Loc1")),
    )
    .await;
    assert_eq!(status, 201);
    let id = created["_id"].as_str().unwrap().to_owned();
    assert!(created.get("id").is_none());
    for _ in 0..2 {
        call(
            &sim,
            Method::POST,
            "/products/",
            &token,
            Some(json!({"name": "Other", "locationId": "Loc1", "productType": "SERVICE"})),
        )
        .await;
    }
    let (_, list, _) = call(
        &sim,
        Method::GET,
        "/products/?locationId=Loc1&limit=2&offset=0",
        &token,
        None,
    )
    .await;
    assert_eq!(list["products"].as_array().unwrap().len(), 2);
    assert_eq!(list["total"], json!([{"total": 3}]));
    let (_, found, _) = call(
        &sim,
        Method::GET,
        "/products/?locationId=Loc1&search=cour",
        &token,
        None,
    )
    .await;
    assert_eq!(found["total"], json!([{"total": 1}]));

    let (status, got, _) = call(
        &sim,
        Method::GET,
        &format!("/products/{id}?locationId=Loc1"),
        &token,
        None,
    )
    .await;
    assert_eq!((status, got["name"].as_str().unwrap()), (200, "Course"));
    let (status, updated, _) = call(
        &sim,
        Method::PUT,
        &format!("/products/{id}"),
        &token,
        Some(json!({"name": "Course v2", "locationId": "Loc1", "productType": "DIGITAL"})),
    )
    .await;
    assert_eq!(
        (status, updated["name"].as_str().unwrap()),
        (200, "Course v2")
    );
    let (status, deleted, _) = call(
        &sim,
        Method::DELETE,
        &format!("/products/{id}?locationId=Loc1"),
        &token,
        None,
    )
    .await;
    assert_eq!((status, deleted), (200, json!({"status": true})));
    let (status, _, _) = call(
        &sim,
        Method::GET,
        &format!("/products/{id}?locationId=Loc1"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Another location sees none of it.
    let other = location_token(&sim, ALL_SCOPES, "Loc2").await;
    let (_, list, _) = call(
        &sim,
        Method::GET,
        "/products/?locationId=Loc2",
        &other,
        None,
    )
    .await;
    assert_eq!(list["total"], json!([{"total": 0}]));
}

#[actix_web::test]
async fn prices_take_decimal_amounts_and_recurring_rules() {
    let sim = sim().await;
    let token = location_token(&sim, ALL_SCOPES, "Loc1").await;
    let (_, p, _) = call(
        &sim,
        Method::POST,
        "/products/",
        &token,
        Some(product("Loc1")),
    )
    .await;
    let pid = p["_id"].as_str().unwrap();
    let (status, price, _) = call(&sim, Method::POST, &format!("/products/{pid}/price"), &token,
        Some(json!({"name": "Monthly", "type": "recurring", "currency": "USD", "amount": 99.99, "locationId": "Loc1",
                    "recurring": {"interval": "month", "intervalCount": 1}}))).await;
    assert_eq!(status, 201, "{price}");
    assert_eq!(price["amount"], 99.99);
    assert_eq!(price["product"], pid);
    let (status, err, _) = call(&sim, Method::POST, &format!("/products/{pid}/price"), &token,
        Some(json!({"name": "Bad", "type": "recurring", "currency": "USD", "amount": "9999", "locationId": "Loc1"}))).await;
    assert_eq!(status, 422);
    let msgs = err["message"].as_array().unwrap();
    assert!(msgs.contains(&json!("recurring should not be empty")));
    assert!(msgs.contains(&json!(
        "amount must be a number conforming to the specified constraints"
    )));
    let (_, list, _) = call(
        &sim,
        Method::GET,
        &format!("/products/{pid}/price?locationId=Loc1"),
        &token,
        None,
    )
    .await;
    assert_eq!(list["total"], 1);
    let price_id = price["_id"].as_str().unwrap();
    let (status, _, _) = call(
        &sim,
        Method::DELETE,
        &format!("/products/{pid}/price/{price_id}?locationId=Loc1"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = call(&sim, Method::POST, "/products/nope/price", &token,
        Some(json!({"name": "x", "type": "one_time", "currency": "USD", "amount": 1, "locationId": "Loc1"}))).await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn media_upload_multipart_hosted_list_and_delete() {
    let sim = sim().await;
    let token = location_token(&sim, ALL_SCOPES, "Loc1").await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(vec![7u8; 4096])
            .file_name("cover.png")
            .mime_str("image/png")
            .unwrap(),
    );
    let res = client()
        .post(format!("{}/medias/upload-file", sim.base_url))
        .header("Version", VERSION)
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let up: serde_json::Value = res.json().await.unwrap();
    assert!(up["fileId"].is_string() && up["url"].as_str().unwrap().contains("cover.png"));

    let hosted = reqwest::multipart::Form::new()
        .text("hosted", "true")
        .text("fileUrl", "https://cdn.example/a.jpg");
    let res = client()
        .post(format!("{}/medias/upload-file", sim.base_url))
        .header("Version", VERSION)
        .bearer_auth(&token)
        .multipart(hosted)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["url"], "https://cdn.example/a.jpg");

    let missing_url = reqwest::multipart::Form::new().text("hosted", "true");
    let res = client()
        .post(format!("{}/medias/upload-file", sim.base_url))
        .header("Version", VERSION)
        .bearer_auth(&token)
        .multipart(missing_url)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);

    let list_path =
        "/medias/files?sortBy=createdAt&sortOrder=asc&type=file&altType=location&altId=Loc1";
    let (_, list, _) = call(&sim, Method::GET, list_path, &token, None).await;
    assert_eq!(list["files"].as_array().unwrap().len(), 2);
    let id = up["fileId"].as_str().unwrap();
    let (status, _, _) = call(
        &sim,
        Method::DELETE,
        &format!("/medias/{id}?altType=location&altId=Loc1"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (_, list, _) = call(&sim, Method::GET, list_path, &token, None).await;
    assert_eq!(list["files"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn media_over_25_mb_is_refused() {
    let sim = sim().await;
    let token = location_token(&sim, ALL_SCOPES, "Loc1").await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(vec![0u8; 25 * 1024 * 1024 + 1]).file_name("big.bin"),
    );
    let res = client()
        .post(format!("{}/medias/upload-file", sim.base_url))
        .header("Version", VERSION)
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await;
    // The simulator answers 413 as soon as the limit is crossed; the client may see the answer or a reset.
    if let Ok(res) = res {
        assert_eq!(res.status(), 413);
    }
    let (_, list, _) = call(
        &sim,
        Method::GET,
        "/medias/files?sortBy=createdAt&sortOrder=asc&type=file&altType=location&altId=Loc1",
        &token,
        None,
    )
    .await;
    assert_eq!(list["files"].as_array().unwrap().len(), 0);
}

#[actix_web::test]
async fn custom_provider_lifecycle() {
    let sim = sim().await;
    let token = location_token(&sim, ALL_SCOPES, "Loc1").await;
    let (status, err, _) = call(
        &sim,
        Method::GET,
        "/payments/custom-provider/connect?locationId=Loc1",
        &token,
        None,
    )
    .await;
    assert_eq!(
        (status, err["message"].as_str().unwrap()),
        (400, "No such config exists")
    );
    let provider = json!({"name": "PayTR", "description": "Turkish gateway", "imageUrl": "https://x/i.png",
        "queryUrl": "https://app/payments/query", "paymentsUrl": "https://app/payments/page", "supportsSubscriptionSchedule": true});
    let (status, created, _) = call(
        &sim,
        Method::POST,
        "/payments/custom-provider/provider?locationId=Loc1",
        &token,
        Some(provider),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["marketplaceAppId"], "dev-app-id");
    assert_eq!(created["locationId"], "Loc1");
    let keys = json!({"live": {"apiKey": "live_sk", "publishableKey": "live_pk"}, "test": {"apiKey": "test_sk", "publishableKey": "test_pk"}});
    let (status, connected, _) = call(
        &sim,
        Method::POST,
        "/payments/custom-provider/connect?locationId=Loc1",
        &token,
        Some(keys),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        connected["paymentProvider"]["live"]["publishableKey"],
        "live_pk"
    );
    assert!(
        !connected.to_string().contains("live_sk"),
        "apiKeys are never echoed"
    );
    let (status, _, _) = call(
        &sim,
        Method::GET,
        "/payments/custom-provider/connect?locationId=Loc1",
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, ok, _) = call(
        &sim,
        Method::POST,
        "/payments/custom-provider/disconnect?locationId=Loc1",
        &token,
        Some(json!({"liveMode": false})),
    )
    .await;
    assert_eq!((status, ok), (200, json!({"success": true})));
    let (status, _, _) = call(
        &sim,
        Method::PUT,
        "/payments/custom-provider/capabilities",
        &token,
        Some(json!({"supportsSubscriptionSchedules": false, "locationId": "Loc1"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, ok, _) = call(
        &sim,
        Method::DELETE,
        "/payments/custom-provider/provider?locationId=Loc1",
        &token,
        None,
    )
    .await;
    assert_eq!((status, ok), (200, json!({"success": true})));
    let (status, err, _) = call(
        &sim,
        Method::POST,
        "/payments/custom-provider/provider?locationId=Loc1",
        &token,
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, 422);
    assert!(err["message"]
        .as_array()
        .unwrap()
        .contains(&json!("queryUrl should not be empty")));
}

#[actix_web::test]
async fn whitelabel_takes_a_location_token_and_only_nmi_or_authorize_net() {
    let sim = sim().await;
    let token = location_token(&sim, ALL_SCOPES, "Loc1").await;
    let mut body = json!({"altId": "Loc1", "altType": "location", "uniqueName": "my-nmi", "title": "NMI",
        "provider": "nmi", "description": "d", "imageUrl": "https://x/i.png"});
    let (status, _, _) = call(
        &sim,
        Method::POST,
        "/payments/integrations/provider/whitelabel",
        &token,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 200);
    body["provider"] = json!("paytr");
    let (status, err, _) = call(
        &sim,
        Method::POST,
        "/payments/integrations/provider/whitelabel",
        &token,
        Some(body),
    )
    .await;
    assert_eq!(status, 422);
    assert!(err["message"].as_array().unwrap().contains(&json!(
        "provider must be one of the following values: authorize-net, nmi"
    )));
}
