use crate::common::*;
use serde_json::Value;

#[actix_web::test]
async fn location_install_issues_a_jwt_with_highlevel_claims() {
    let sim = sim().await;
    let t = install(&sim, "Location", &["Loc1"], "products.write oauth.readonly").await;
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["userType"], "Location");
    assert_eq!(t["locationId"], "Loc1");
    assert_eq!(t["companyId"], "comp1");
    assert_eq!(t["expires_in"], 86_399);
    assert_eq!(t["isBulkInstallation"], false);
    assert!(t["refresh_token"].is_string());
    assert_eq!(t["scope"], "oauth.readonly products.write");
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(at(&t)).unwrap();
    assert_eq!(claims["authClass"], "Location");
    assert_eq!(claims["authClassId"], "Loc1");
    assert_eq!(claims["sourceId"], "dev-client-id");
    assert_eq!(
        claims["oauthMeta"]["scopes"],
        serde_json::json!(["oauth.readonly", "products.write"])
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        86_399
    );
}

#[actix_web::test]
async fn company_and_bulk_installs() {
    let sim = sim().await;
    let t = install(&sim, "Company", &["Loc1"], "oauth.write").await;
    assert_eq!(t["userType"], "Company");
    assert_eq!(t["companyId"], "comp1");
    assert!(t.get("locationId").is_none());
    assert_eq!(t["approvedLocations"], serde_json::json!(["Loc1"]));
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(at(&t)).unwrap();
    assert_eq!(claims["authClass"], "Company");
    assert_eq!(claims["authClassId"], "comp1");

    let bulk = install(
        &sim,
        "Company",
        &["Loc1", "Loc2"],
        "oauth.write oauth.readonly",
    )
    .await;
    assert_eq!(bulk["isBulkInstallation"], true);
    assert_eq!(
        bulk["approvedLocations"],
        serde_json::json!(["Loc1", "Loc2"])
    );
    let (status, body, _) = call(
        &sim,
        reqwest::Method::GET,
        "/oauth/installedLocations?companyId=comp1&appId=dev-app-id",
        at(&bulk),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 2);
    assert!(body["locations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["isInstalled"] == true));
}

#[actix_web::test]
async fn a_company_install_across_two_companies_is_refused() {
    let sim = sim().await;
    let url = format!(
        "{}/oauth/chooselocation?client_id=dev-client-id&redirect_uri=http://x/cb&sim_user_type=Company&sim_location_id=Loc1&sim_location_id=Other1",
        sim.base_url
    );
    assert_eq!(client().get(url).send().await.unwrap().status(), 400);
}

#[actix_web::test]
async fn bad_used_and_unknown_codes_and_wrong_secret_are_refused() {
    let sim = sim().await;
    let c = code(&sim, "Location", &["Loc1"], "products.write").await;
    let wrong_secret = token_request(
        &sim,
        &[
            ("client_id", "dev-client-id"),
            ("client_secret", "nope"),
            ("grant_type", "authorization_code"),
            ("code", &c),
        ],
    )
    .await;
    assert_eq!(wrong_secret.status(), 401);
    let body: Value = wrong_secret.json().await.unwrap();
    assert_eq!(body["error"], "UnAuthorized!");

    exchange(&sim, &c, "Location").await;
    for code in [c.as_str(), "never-issued"] {
        let res = token_request(
            &sim,
            &[
                ("client_id", "dev-client-id"),
                ("client_secret", "dev-client-secret"),
                ("grant_type", "authorization_code"),
                ("code", code),
            ],
        )
        .await;
        assert_eq!(res.status(), 401);
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error":"UnAuthorized!","error_description":"Authorization code not found"})
        );
    }
    let missing = token_request(&sim, &[("client_id", "dev-client-id")]).await;
    assert_eq!(missing.status(), 422);
    let body: Value = missing.json().await.unwrap();
    assert!(body["message"]
        .as_array()
        .unwrap()
        .contains(&"client_secret should not be empty".into()));
}

#[actix_web::test]
async fn refresh_rotates_and_a_reused_refresh_token_is_refused_and_counted() {
    let sim = sim().await;
    let first = install(&sim, "Location", &["Loc1"], "products.readonly").await;
    let res = refresh(&sim, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200);
    let second: Value = res.json().await.unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_ne!(at(&second), at(&first));

    // The replaced access token no longer works; the new one does.
    let (status, body, _) = call(
        &sim,
        reqwest::Method::GET,
        "/products/?locationId=Loc1",
        at(&first),
        None,
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str().unwrap()),
        (401, "Invalid token: access token is invalid")
    );
    let (status, _, _) = call(
        &sim,
        reqwest::Method::GET,
        "/products/?locationId=Loc1",
        at(&second),
        None,
    )
    .await;
    assert_eq!(status, 200);

    // The dead refresh token, presented again.
    let res = refresh(&sim, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"],
        "Invalid grant: refresh token is invalid"
    );
    let stats = sim.stats();
    assert_eq!(stats.refresh_grants, 1);
    assert_eq!(stats.refresh_token_reuse, 1);
    assert_eq!(stats.refresh_without_user_type, 0);
    let no_user_type = token_request(
        &sim,
        &[
            ("client_id", "dev-client-id"),
            ("client_secret", "dev-client-secret"),
            ("grant_type", "refresh_token"),
            ("refresh_token", second["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(no_user_type.status(), 200);
    assert_eq!(
        sim.stats().refresh_without_user_type,
        1,
        "counted, so clients can be checked"
    );
    // A token never issued is invalid but is not reuse.
    assert_eq!(refresh(&sim, "made-up").await.status(), 400);
    assert_eq!(sim.stats().refresh_token_reuse, 1);
}

#[actix_web::test]
async fn location_token_exchange_mints_a_location_token_from_a_company_token() {
    let sim = sim().await;
    let company = install(&sim, "Company", &["Loc1", "Loc2"], ALL_SCOPES).await;
    let res = client()
        .post(format!("{}/oauth/locationToken", sim.base_url))
        .header("Version", VERSION)
        .bearer_auth(at(&company))
        .form(&[("companyId", "comp1"), ("locationId", "Loc2")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["locationId"], "Loc2");
    assert!(body.get("refresh_token").is_none());
    let claims: Value =
        jsonwebtoken::dangerous::insecure_decode_claims::<Value>(at(&body)).unwrap();
    assert_eq!(claims["authClass"], "Location");
    assert_eq!(claims["authClassId"], "Loc2");
    let (status, _, _) = call(
        &sim,
        reqwest::Method::POST,
        "/products/",
        at(&body),
        Some(product("Loc2")),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(sim.stats().location_tokens_minted, 1);

    // A location of another company, and a Location token instead of a Company one, are refused.
    let other = client()
        .post(format!("{}/oauth/locationToken", sim.base_url))
        .header("Version", VERSION)
        .bearer_auth(at(&company))
        .form(&[("companyId", "comp1"), ("locationId", "Other1")])
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403);
    let loc_token = location_token(&sim, "oauth.write", "Loc1").await;
    let wrong_class = client()
        .post(format!("{}/oauth/locationToken", sim.base_url))
        .header("Version", VERSION)
        .bearer_auth(&loc_token)
        .form(&[("companyId", "comp1"), ("locationId", "Loc1")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_class.status(), 401);
}

#[actix_web::test]
async fn location_token_needs_oauth_write() {
    let sim = sim().await;
    let company = install(&sim, "Company", &["Loc1"], "products.write").await;
    let res = client()
        .post(format!("{}/oauth/locationToken", sim.base_url))
        .header("Version", VERSION)
        .bearer_auth(at(&company))
        .form(&[("companyId", "comp1"), ("locationId", "Loc1")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["message"],
        "The token is not authorized for this scope."
    );
}

#[actix_web::test]
async fn reconnect_hands_back_a_code_that_yields_a_new_pair() {
    let sim = sim().await;
    let first = install(&sim, "Location", &["Loc1"], "products.readonly").await;
    let res = client()
        .post(format!("{}/oauth/reconnect", sim.base_url))
        .json(&serde_json::json!({"clientKey": "dev-client-id", "clientSecret": "dev-client-secret", "locationId": "Loc1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let again = exchange(
        &sim,
        body["authorizationCode"].as_str().unwrap(),
        "Location",
    )
    .await;
    assert_ne!(again["refresh_token"], first["refresh_token"]);
    assert_eq!(
        refresh(&sim, first["refresh_token"].as_str().unwrap())
            .await
            .status(),
        400
    );
    assert_eq!(
        refresh(&sim, again["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    let unknown = client()
        .post(format!("{}/oauth/reconnect", sim.base_url))
        .json(&serde_json::json!({"clientKey": "dev-client-id", "clientSecret": "dev-client-secret", "locationId": "Loc2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    assert_eq!(sim.stats().reconnects, 1);
}
