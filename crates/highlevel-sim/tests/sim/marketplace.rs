//! The simulator playing HighLevel's side of installs: the Marketplace listing (a redirect with only `code`),
//! the current consent path, suspended sub-accounts, `installedLocations` paging, the app uninstalling itself,
//! and the retry of webhooks answered 429.

use crate::common::*;
use reqwest::Method;
use serde_json::{json, Value};

async fn get_redirect(url: String) -> url::Url {
    let res = client().get(url).send().await.unwrap();
    assert_eq!(res.status(), 302, "{}", res.text().await.unwrap());
    url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap()
}

/// HighLevel's OAuth docs: the browser comes back with the code "passed inside the code query parameter".
/// An install started on the listing carries no state; the consent page needs none from the app either.
#[actix_web::test]
async fn a_marketplace_install_redirects_with_only_a_code() {
    let sim = sim().await;
    let back = get_redirect(format!(
        "{}/_sim/marketplace/install?user_type=Company&location_id=Loc1&location_id=Loc2&redirect_uri=http://app.test/cb",
        sim.base_url
    ))
    .await;
    let keys: Vec<String> = back.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert_eq!(keys, ["code"]);
    let code = back.query_pairs().next().unwrap().1.into_owned();
    // Exchanged without a user_type: the answer says what it is.
    let res = token_request(
        &sim,
        &[
            ("client_id", "dev-client-id"),
            ("client_secret", "dev-client-secret"),
            ("grant_type", "authorization_code"),
            ("code", &code),
        ],
    )
    .await;
    let grant: Value = res.json().await.unwrap();
    assert_eq!(grant["userType"], "Company", "{grant}");
    assert_eq!(grant["isBulkInstallation"], true);
    assert_eq!(grant["approvedLocations"], json!(["Loc1", "Loc2"]));

    // The current consent path, and no state from the app: none comes back.
    let back = get_redirect(format!(
        "{}/v2/oauth/chooselocation?response_type=code&client_id=dev-client-id&redirect_uri=http://app.test/cb&scope=oauth.readonly&sim_user_type=Location&sim_location_id=Loc1",
        sim.base_url
    ))
    .await;
    let keys: Vec<String> = back.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert_eq!(keys, ["code"]);
}

/// A suspended sub-account's refresh is refused for the account (`400 Location is not active`), its refresh
/// token stays alive, and it refreshes again once reactivated.
#[actix_web::test]
async fn a_suspended_location_refuses_refreshes_and_keeps_its_refresh_token() {
    let sim = sim().await;
    let grant = install(&sim, "Location", &["Loc1"], ALL_SCOPES).await;
    let rt = grant["refresh_token"].as_str().unwrap();
    let res = client()
        .post(format!("{}/_sim/locations/Loc1/status", sim.base_url))
        .json(&json!({"active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = refresh(&sim, rt).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["message"], "Location is not active", "{body}");
    client()
        .post(format!("{}/_sim/locations/Loc1/status", sim.base_url))
        .json(&json!({"active": true}))
        .send()
        .await
        .unwrap();
    let res = refresh(&sim, rt).await;
    assert_eq!(res.status(), 200, "the same refresh token works again");
    assert_eq!(sim.stats().refresh_token_reuse, 0);
}

/// HighLevel's OAuth API reference: `skip`/`limit`, limit 20 by default; a page holds at most 100 (the v3 draft); `count` is
/// the total.
#[actix_web::test]
async fn installed_locations_are_paged_by_skip_and_limit() {
    let sim = sim().await;
    for n in 0..130 {
        sim.add_location("comp7", &format!("P{n:03}"), "Paged");
    }
    let back = get_redirect(format!(
        "{}/_sim/marketplace/install?user_type=Company&company_id=comp7&redirect_uri=http://app.test/cb",
        sim.base_url
    ))
    .await;
    let code = back.query_pairs().next().unwrap().1.into_owned();
    let grant = exchange(&sim, &code, "Company").await;
    let page = |q: &str| {
        let (sim, t) = (&sim, at(&grant).to_owned());
        let path = format!("/oauth/installedLocations?companyId=comp7&appId=dev-app-id{q}");
        async move { call(sim, Method::GET, &path, &t, None).await }
    };
    let (status, body, _) = page("").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["locations"].as_array().unwrap().len(),
        20,
        "default limit"
    );
    assert_eq!(body["count"], 130);
    let (_, body, _) = page("&limit=500").await;
    assert_eq!(
        body["locations"].as_array().unwrap().len(),
        100,
        "at most 100 a page"
    );
    let (_, body, _) = page("&skip=100&limit=100").await;
    let last = body["locations"].as_array().unwrap();
    assert_eq!(last.len(), 30);
    assert_eq!(last[0]["_id"], "P100");
}

/// HighLevel's marketplace API, `uninstall-application`: a Location token names its location, an Agency token its company;
/// the install's tokens stop working.
#[actix_web::test]
async fn the_app_uninstalls_itself() {
    let sim = sim().await;
    let loc = install(&sim, "Location", &["Loc1"], ALL_SCOPES).await;
    let path = "/marketplace/app/dev-app-id/installations";
    let (status, body, _) = call(
        &sim,
        Method::DELETE,
        path,
        at(&loc),
        Some(json!({"locationId": "Loc2"})),
    )
    .await;
    assert_eq!(status, 403, "another location: {body}");
    let (status, body, _) = call(
        &sim,
        Method::DELETE,
        path,
        at(&loc),
        Some(json!({"locationId": "Loc1", "reason": "unpaid"})),
    )
    .await;
    assert_eq!((status, &body), (200, &json!({"success": true})));
    let (status, _, _) = call(
        &sim,
        Method::GET,
        "/products/?locationId=Loc1",
        at(&loc),
        None,
    )
    .await;
    assert_eq!(status, 401, "its token stopped");
    assert_eq!(
        refresh(&sim, loc["refresh_token"].as_str().unwrap())
            .await
            .status(),
        400
    );

    let agency = install(&sim, "Company", &["Loc2"], ALL_SCOPES).await;
    let (status, _, _) = call(&sim, Method::DELETE, path, at(&agency), Some(json!({}))).await;
    assert_eq!(status, 422, "an agency token must name its company");
    let (status, _, _) = call(
        &sim,
        Method::DELETE,
        path,
        at(&agency),
        Some(json!({"companyId": "comp1"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(sim.stats().app_uninstalls, 2);
}

/// HighLevel retries a webhook only when it was answered 429: the simulator keeps such a delivery and sends the
/// same bytes again on `POST /_sim/webhooks/retry`; other answers are final.
#[actix_web::test]
async fn only_webhooks_answered_429_are_delivered_again() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    let sim = sim().await;
    let hits = Arc::new(AtomicU32::new(0));
    let seen = hits.clone();
    let server = actix_web::HttpServer::new(move || {
        let seen = seen.clone();
        actix_web::App::new().default_service(actix_web::web::to(
            move |body: actix_web::web::Bytes| {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let v: Value = serde_json::from_slice(&body).unwrap();
                async move {
                    if v["type"] == "INSTALL" && n == 0 {
                        actix_web::HttpResponse::TooManyRequests().finish()
                    } else if v["type"] == "UNINSTALL" {
                        actix_web::HttpResponse::InternalServerError().finish()
                    } else {
                        actix_web::HttpResponse::Ok().finish()
                    }
                }
            },
        ))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    let url = format!("http://{addr}/hook");
    for kind in ["INSTALL", "UNINSTALL"] {
        client()
            .post(format!("{}/_sim/webhooks/send", sim.base_url))
            .json(&json!({"type": kind, "companyId": "comp1", "url": url}))
            .send()
            .await
            .unwrap();
    }
    let retried: Value = client()
        .post(format!("{}/_sim/webhooks/retry", sim.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let statuses: Vec<u64> = retried["retried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200], "only the 429 was retried: {retried}");
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}
