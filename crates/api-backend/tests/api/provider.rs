//! The payments provider: register, show, remove; keys stored as hashes; PayTR credentials sealed.

use crate::common::*;
use serde_json::json;
use service_common::both_backends;
use service_common::testing::Backend;

async fn register_show_remove(backend: Backend) {
    let s = stack_with(
        backend,
        Default::default(),
        &[(
            "TOKEN_ENCRYPTION_KEYS",
            &service_common::KeyRing::generate_entry("a1"),
        )],
    )
    .await;
    let inst = install(&s, "Location", &["Loc1"]).await;
    let t = session(&s, Some("Loc1")).await;
    let body = json!({"name": "PayTR", "description": "Cards", "imageUrl": "https://x.test/p.png", "gateway": "paytr",
        "paytr": {"merchantId": "123456", "merchantKey": "merchant-key-secret", "merchantSalt": "merchant-salt-secret"}});
    let (status, out) = put(&s, "/api/locations/Loc1/payments/provider", &t, body).await;
    assert_eq!(status, 200, "{out}");
    assert!(!out.to_string().contains("merchant-key-secret"));
    let (status, shown) = get(&s, "/api/locations/Loc1/payments/provider", &t).await;
    assert_eq!(status, 200);
    assert_eq!(shown["publishableKeys"], out["publishableKeys"]);
    assert_eq!(shown["gateway"], "paytr");
    let row = s
        .api
        .state
        .db
        .run(|c| api_backend::store::providers::get(c, "Loc1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.test_api_key_hash.len(),
        64,
        "only a hash of the api key is kept"
    );
    let sealed = row.gateway_credentials.unwrap();
    assert!(
        sealed.starts_with("v1:a1:") && !sealed.contains("merchant"),
        "credentials are sealed"
    );
    assert_eq!(row.installation_id, inst);

    assert_eq!(
        delete(&s, "/api/locations/Loc1/payments/provider", &t)
            .await
            .0,
        204
    );
    let loc = token_for(&s, &inst, Some("Loc1")).await;
    let (status, _) = hl(
        &s,
        reqwest::Method::GET,
        "/payments/custom-provider/connect?locationId=Loc1",
        loc["access_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, 400, "HighLevel no longer holds a config");
    assert_eq!(
        get(&s, "/api/locations/Loc1/payments/provider", &t).await.0,
        404
    );
    // Removing twice is not an error.
    assert_eq!(
        delete(&s, "/api/locations/Loc1/payments/provider", &t)
            .await
            .0,
        204
    );
}

/// After the app is uninstalled from a location (HighLevel's UNINSTALL webhook), its payment keys are refused
/// and its provider configuration forgotten, within PROVIDER_INSTALLED_CHECK_SECS.
async fn an_uninstalled_location_loses_its_provider(backend: Backend) {
    let s = stack_with(
        backend,
        Default::default(),
        &[("PROVIDER_INSTALLED_CHECK_SECS", "1")],
    )
    .await;
    install(&s, "Location", &["Loc1"]).await;
    install(&s, "Location", &["Loc2"]).await;
    let (pk, key) = provider(&s, "Loc1").await;
    let (_, key2) = provider(&s, "Loc2").await;
    let st = &s;
    let verify = |key: String| async move {
        post(
            st,
            "/payments/query",
            None,
            json!({"type": "verify", "apiKey": key, "transactionId": "t-none"}),
        )
        .await
    };
    assert_eq!(verify(key.clone()).await.0, 200);
    let delivered = sim_post(
        &s,
        "/_sim/webhooks/send",
        json!({
        "type": "UNINSTALL", "url": format!("{}/webhooks/highlevel", s.oauth.base_url),
        "appId": "dev-app-id", "companyId": "comp1", "locationId": "Loc1"}),
    )
    .await;
    assert!(delivered.to_string().contains("200"), "{delivered}");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, body) = verify(key).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("provider_key_invalid")),
        "{body}"
    );
    let (status, body) = post(
        &s,
        "/payments/page/check",
        None,
        json!({"publishableKey": pk, "locationId": "Loc1"}),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let gone = s
        .api
        .state
        .db
        .run(|c| api_backend::store::providers::get(c, "Loc1"))
        .await
        .unwrap();
    assert!(gone.is_none(), "the provider configuration is forgotten");
    // Another location is untouched.
    assert_eq!(verify(key2).await.0, 200);
}

both_backends!(
    an_uninstalled_location_loses_its_provider,
    register_show_remove
);
