//! Installs as HighLevel starts them (HighLevel's OAuth docs: the browser comes back to the redirect URI
//! with the code "passed inside the code query parameter", and nothing else): most start on the app's
//! Marketplace listing, with no `state` the app issued. A `state` that is present is still checked.

use crate::common::*;
use service_common::both_backends;

async fn a_marketplace_install_with_only_a_code_becomes_an_active_installation(backend: Backend) {
    let env = env(backend).await;
    let token = service_token(&env.app, "jobs", None);

    let res = marketplace_install_at(&env.sim, &env.app.base_url, "Location", &["Loc1"]).await;
    assert_eq!(res.status(), 302, "{}", res.text().await.unwrap());
    let id = installed_id(&res);
    let (status, inst) = installations_api(&env.app, &format!("/{id}"), &token).await;
    assert_eq!(status, 200, "{inst}");
    assert_eq!(inst["state"], "active");
    assert_eq!(inst["auth_class"], "Location");
    assert_eq!(inst["location_id"], "Loc1");
    assert_eq!(inst["company_id"], "comp1");
    let (status, body) = token_access(&env.app, &id, None, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        hl_get(
            &env.sim,
            "/products/?locationId=Loc1",
            body["access_token"].as_str().unwrap()
        )
        .await,
        200,
        "HighLevel takes the token"
    );

    // An agency picking two sub-accounts on the listing: a bulk Company install, told by the token answer.
    let res =
        marketplace_install_at(&env.sim, &env.app.base_url, "Company", &["Loc2", "Loc3"]).await;
    assert_eq!(res.status(), 302, "{}", res.text().await.unwrap());
    let company = installed_id(&res);
    let (_, inst) = installations_api(&env.app, &format!("/{company}"), &token).await;
    assert_eq!(inst["state"], "active", "{inst}");
    assert_eq!(inst["auth_class"], "Company");
    assert_eq!(inst["company_id"], "comp1");
    assert_eq!(inst["is_bulk"], true);
    assert_eq!(
        inst["approved_locations"],
        serde_json::json!(["Loc2", "Loc3"])
    );
    let (status, body) = token_access(&env.app, &company, Some("Loc3"), &token).await;
    assert_eq!(
        (status, body["auth_class"].as_str()),
        (200, Some("Location")),
        "{body}"
    );
    assert_eq!(env.sim.stats().authorization_code_grants, 2);
}

/// A state that is present must be ours, unexpired and unused: a forged one and one that expired (validly
/// signed) are refused before the code reaches HighLevel.
async fn a_forged_or_expired_state_is_still_refused(backend: Backend) {
    use base64::Engine;
    use hmac::Mac;
    let env = env(backend).await;
    // A real code, so only the state can be the reason for a refusal.
    let mut url =
        url::Url::parse(&format!("{}/_sim/marketplace/install", env.sim.base_url)).unwrap();
    url.query_pairs_mut()
        .append_pair("user_type", "Location")
        .append_pair("location_id", "Loc1")
        .append_pair("redirect_uri", "http://127.0.0.1:9/cb");
    let res = client().get(url).send().await.unwrap();
    let back = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();

    let key = service_common::crypto::purpose::purpose_key(
        &SERVICE_SECRET.to_owned().into(),
        service_common::crypto::purpose::Purpose::OauthState,
    );
    let signed = |payload: &str| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(b"oauth-state-v2:");
        mac.update(payload.as_bytes());
        let sig =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{payload}.{sig}")
    };
    let now = chrono::Utc::now().timestamp_millis();
    let expired = signed(&format!("{:032x}.{}.L", 7u128 << 64 | 3, now - 1000));
    let forged = format!("{:032x}.{}.L.bm90LW91cnM", 7u128 << 64 | 4, now + 600_000);
    for (what, state) in [("expired", expired.as_str()), ("forged", forged.as_str())] {
        let mut cb = url::Url::parse(&format!("{}/oauth/callback", env.app.base_url)).unwrap();
        cb.query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", state);
        let res = client().get(cb).send().await.unwrap();
        assert_eq!(res.status(), 400, "{what}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["code"], "invalid_state", "{what}: {body}");
    }
    assert_eq!(
        env.sim.stats().authorization_code_grants,
        0,
        "no refused state let its code reach HighLevel"
    );
    // The same code without a state is a Marketplace install and goes through.
    let res = client()
        .get(format!("{}/oauth/callback?code={code}", env.app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
}

/// The install link goes to HighLevel's current consent page, `/v2/oauth/chooselocation`.
async fn the_install_link_goes_to_the_current_consent_page(backend: Backend) {
    let env = env(backend).await;
    let res = client()
        .get(format!(
            "{}/oauth/install?user_type=Location",
            env.app.base_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let to = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(to.path(), "/v2/oauth/chooselocation");
    // The full dance through it works (the simulator serves the current path).
    let id = install(&env.app, "Location", &["Loc1"]).await;
    assert!(id.starts_with("inst_"));
    assert_eq!(
        env.sim.stats().count("GET /v2/oauth/chooselocation"),
        1,
        "{:?}",
        env.sim.stats().requests.keys().collect::<Vec<_>>()
    );
}

both_backends!(
    a_marketplace_install_with_only_a_code_becomes_an_active_installation,
    a_forged_or_expired_state_is_still_refused,
    the_install_link_goes_to_the_current_consent_page,
);
