//! Sessions from HighLevel's user context, and the location wall: a session for one location cannot read or
//! change another location's products, prices, media or provider.

use crate::common::*;
use serde_json::json;
use service_common::both_backends;
use service_common::testing::Backend;

async fn a_session_is_limited_to_its_location(backend: Backend) {
    let s = stack(backend).await;
    let inst = install(&s, "Company", &["Loc1", "Loc2"]).await;
    let agency = session(&s, None).await;
    let (status, p) = post(
        &s,
        "/api/locations/Loc2/products",
        Some(&agency),
        json!({"name": "Theirs", "productType": "DIGITAL"}),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_str().unwrap();
    let loc1 = session(&s, Some("Loc1")).await;
    let before = s
        .sim
        .stats()
        .requests
        .values()
        .map(|m| m.values().sum::<u64>())
        .sum::<u64>();
    let tries = [
        get(&s, "/api/locations/Loc2/products", &loc1).await,
        get(&s, &format!("/api/locations/Loc2/products/{id}"), &loc1).await,
        put(&s, &format!("/api/locations/Loc2/products/{id}"), &loc1, json!({"name": "Mine now", "productType": "DIGITAL"})).await,
        delete(&s, &format!("/api/locations/Loc2/products/{id}"), &loc1).await,
        get(&s, &format!("/api/locations/Loc2/products/{id}/prices"), &loc1).await,
        post(&s, &format!("/api/locations/Loc2/products/{id}/prices"), Some(&loc1), json!({"name": "p", "type": "one_time", "currency": "USD", "amount": 1})).await,
        get(&s, "/api/locations/Loc2/media", &loc1).await,
        post(&s, "/api/locations/Loc2/media", Some(&loc1), json!({"url": "https://x.test/a.png"})).await,
        get(&s, "/api/locations/Loc2/payments/provider", &loc1).await,
        put(&s, "/api/locations/Loc2/payments/provider", &loc1, json!({"name": "n", "description": "d", "imageUrl": "https://x.test/i.png", "gateway": "sandbox"})).await,
        delete(&s, "/api/locations/Loc2/payments/provider", &loc1).await,
        get(&s, "/api/locations/Loc2/diagnostics", &loc1).await,
    ];
    for (status, body) in tries {
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["code"], "location_not_allowed");
    }
    let after = s
        .sim
        .stats()
        .requests
        .values()
        .map(|m| m.values().sum::<u64>())
        .sum::<u64>();
    assert_eq!(after, before, "nothing reached HighLevel");
    assert_eq!(sim_products(&s, &inst, "Loc2").await[0]["name"], "Theirs");
    // Its own location works; an agency user of another company does not even learn comp1's locations exist.
    assert_eq!(get(&s, "/api/locations/Loc1/products", &loc1).await.0, 200);
    let other = json!({"userId": "u9", "companyId": "comp2", "type": "agency", "role": "admin"});
    let (_, sess) = post(
        &s,
        "/api/sessions",
        None,
        json!({"sso": sso_payload(&other, SSO_KEY)}),
    )
    .await;
    let (status, body) = get(
        &s,
        "/api/locations/Loc1/products",
        sess["token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("location_not_installed")),
        "{body}"
    );
}

async fn session_payloads_are_checked(backend: Backend) {
    let s = stack(backend).await;
    let user = json!({"userId": "u1", "companyId": "comp1", "type": "location", "activeLocation": "Loc1", "role": "user"});
    let (status, body) = post(
        &s,
        "/api/sessions",
        None,
        json!({"sso": sso_payload(&user, SSO_KEY)}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (body["locationId"].as_str(), body["userId"].as_str()),
        (Some("Loc1"), Some("u1"))
    );
    for bad in [
        sso_payload(&user, "another app's secret"),
        "garbage".into(),
        String::new(),
    ] {
        let (status, body) = post(&s, "/api/sessions", None, json!({"sso": bad})).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("session_invalid")),
            "{body}"
        );
    }
    let (status, body) = post(&s, "/api/sessions", None, json!({"payload": "x"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed")),
        "{body}"
    );
    // A session never opens oauth-backend.
    let sess = body_token(&s, &user).await;
    let res = client()
        .get(format!("{}/api/installations", s.oauth.base_url))
        .bearer_auth(&sess)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

async fn body_token(s: &Stack, user: &serde_json::Value) -> String {
    post(
        s,
        "/api/sessions",
        None,
        json!({"sso": sso_payload(user, SSO_KEY)}),
    )
    .await
    .1["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A sub-account the agency added after installing: an agency session reaches it with no re-install.
async fn a_location_added_after_install_is_served(backend: Backend) {
    let s = stack(backend).await;
    install(&s, "Company", &["Loc1"]).await;
    let agency = session(&s, None).await;
    let (status, body) = get(&s, "/api/locations/Loc3/products", &agency).await;
    assert_eq!(status, 403, "not installed there yet: {body}");
    assert_eq!(body["code"], "location_not_in_installation");
    sim_post(
        &s,
        "/_sim/installs/locations",
        json!({"companyId": "comp1", "locationId": "Loc3"}),
    )
    .await;
    let (status, body) = post(
        &s,
        "/api/locations/Loc3/products",
        Some(&agency),
        json!({"name": "New shop", "productType": "PHYSICAL"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["locationId"], "Loc3");
}

both_backends!(
    a_location_added_after_install_is_served,
    a_session_is_limited_to_its_location,
    session_payloads_are_checked
);
