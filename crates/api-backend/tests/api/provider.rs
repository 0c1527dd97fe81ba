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

both_backends!(register_show_remove);
