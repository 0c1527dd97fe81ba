//! Signed INSTALL / UNINSTALL webhooks, delivered by the simulator (Ed25519 and legacy RSA).

use crate::common::*;
use serde_json::{json, Value};
use service_common::both_backends;

/// An environment whose oauth-backend trusts the simulator's webhook keys.
async fn webhook_env(backend: Backend) -> Env {
    webhook_env_with(backend, &[]).await
}

async fn webhook_env_with(backend: Backend, extra: &[(&str, &str)]) -> Env {
    let sim = sim().await;
    let keys: Value = client()
        .get(format!("{}/_sim/keys", sim.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let db = TestDb::new(backend);
    let ring = oauth_backend::crypto::keyring::KeyRing::generate_entry("k1");
    let mut all = vec![
        (
            "WEBHOOK_ED25519_PUBLIC_KEY",
            keys["ed25519"]["publicKeyPem"].as_str().unwrap(),
        ),
        (
            "WEBHOOK_RSA_PUBLIC_KEY",
            keys["rsa"]["publicKeyPem"].as_str().unwrap(),
        ),
    ];
    all.extend_from_slice(extra);
    let s = settings(&sim, &db, &ring, &all);
    let app = oauth_backend::spawn_app(s).await.unwrap();
    Env {
        sim,
        db,
        app,
        keys: ring,
    }
}

async fn send(env: &Env, mut payload: Value) -> Value {
    payload["url"] = json!(format!("{}/webhooks/highlevel", env.app.base_url));
    sim_post(&env.sim, "/_sim/webhooks/send", payload).await
}

async fn uninstall_destroys_tokens_and_keeps_the_installation(backend: Backend) {
    let env = webhook_env(backend).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let token = service_token(&env.app, "jobs", None);
    assert_eq!(token_access(&env.app, &id, None, &token).await.0, 200);
    let answer = send(
        &env,
        json!({"type": "UNINSTALL", "companyId": "comp1", "locationId": "Loc1"}),
    )
    .await;
    assert_eq!(answer["status"], 200, "{answer}");
    let (status, body) = token_access(&env.app, &id, None, &token).await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (410, "installation_uninstalled")
    );
    let owned = id.clone();
    let rows = env
        .app
        .state
        .tokens
        .db
        .run(move |c| {
            Ok(oauth_backend::store::tokens::all(c)?
                .into_iter()
                .filter(|r| r.installation_id == owned)
                .count())
        })
        .await
        .unwrap();
    assert_eq!(rows, 0, "tokens destroyed");
    assert_eq!(
        installations_api(&env.app, &format!("/{id}"), &token)
            .await
            .1["state"],
        "uninstalled"
    );
    // Installing again brings it back.
    assert_eq!(install(&env.app, "Location", &["Loc1"]).await, id);
    assert_eq!(token_access(&env.app, &id, None, &token).await.0, 200);
}

async fn uninstalling_a_company_destroys_its_location_tokens(backend: Backend) {
    let env = webhook_env(backend).await;
    let id = install(&env.app, "Company", &["Loc1", "Loc2"]).await;
    let token = service_token(&env.app, "jobs", None);
    assert_eq!(
        token_access(&env.app, &id, Some("Loc1"), &token).await.0,
        200
    );
    let answer = send(&env, json!({"type": "UNINSTALL", "companyId": "comp1"})).await;
    assert_eq!(answer["status"], 200);
    assert_eq!(
        token_access(&env.app, &id, Some("Loc1"), &token).await.0,
        410
    );
    let rows = env
        .app
        .state
        .tokens
        .db
        .run(|c| Ok(oauth_backend::store::tokens::all(c)?.len()))
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

async fn install_webhooks_record_agency_and_bulk_installs(backend: Backend) {
    let env = webhook_env(backend).await;
    for loc in ["Loc1", "Loc2"] {
        let a = send(&env, json!({"type": "INSTALL", "companyId": "comp1", "locationId": loc, "installType": "Company"})).await;
        assert_eq!(a["status"], 200, "{a}");
    }
    let a = send(&env, json!({"type": "INSTALL", "companyId": "comp1", "locationId": "Loc3", "installType": "Location"})).await;
    assert_eq!(a["status"], 200);
    let token = service_token(&env.app, "ops", None);
    let (_, list) = installations_api(&env.app, "?company_id=comp1", &token).await;
    let list = list["installations"].as_array().unwrap();
    // A location-level INSTALL in a company with an agency install joins that install (it is served with
    // a Location token minted from the Company token); a user's own OAuth install still makes its own row.
    assert_eq!(list.len(), 1);
    let agency = list.iter().find(|i| i["auth_class"] == "Company").unwrap();
    assert_eq!(
        agency["approved_locations"],
        json!(["Loc1", "Loc2", "Loc3"])
    );
    let a = send(&env, json!({"type": "INSTALL", "companyId": "comp2", "locationId": "Other1", "installType": "Location"})).await;
    assert_eq!(a["status"], 200);
    let (_, list) = installations_api(&env.app, "?company_id=comp2", &token).await;
    assert_eq!(
        list["installations"][0]["auth_class"], "Location",
        "no agency install there: recorded as a Location install"
    );
    // Other event types are acknowledged.
    let a = send(&env, json!({"type": "ContactCreate", "locationId": "Loc1"})).await;
    assert_eq!(a["status"], 200);
}

async fn forged_stale_and_replayed_webhooks_are_refused(backend: Backend) {
    let env = webhook_env(backend).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let url = format!("{}/webhooks/highlevel", env.app.base_url);
    let body = json!({"type": "UNINSTALL", "appId": "dev-app-id", "locationId": "Loc1", "companyId": "comp1",
        "timestamp": chrono::Utc::now().to_rfc3339(), "webhookId": "wh-forged"}).to_string();
    let forged = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 64]);
    for (name, value) in [
        ("x-ghl-signature", forged.as_str()),
        ("x-wh-signature", "bm90IGEgc2lnbmF0dXJl"),
    ] {
        let res = client()
            .post(&url)
            .header(name, value)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{name}");
        assert_eq!(
            res.json::<Value>().await.unwrap()["code"],
            "invalid_signature"
        );
    }
    let res = client().post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(res.status(), 401, "unsigned");

    let stale = send(&env, json!({"type": "UNINSTALL", "locationId": "Loc1", "companyId": "comp1", "timestamp": "2020-01-01T00:00:00Z"})).await;
    assert_eq!(stale["status"], 400, "{stale}");
    assert!(stale["response"]
        .as_str()
        .unwrap()
        .contains("stale_webhook"));

    // The legacy RSA signature alone is accepted; the same webhookId a second time is not.
    let first = send(&env, json!({"type": "INSTALL", "companyId": "comp1", "locationId": "Loc1", "installType": "Location", "webhookId": "wh-1", "sim_sign": "rsa"})).await;
    assert_eq!(first["status"], 200, "{first}");
    // HighLevel retries only what was answered 429, and treats any other 4xx as final: a redelivery of a
    // processed webhookId answers 200 and does nothing again.
    let again = send(&env, json!({"type": "INSTALL", "companyId": "comp1", "locationId": "Loc1", "installType": "Location", "webhookId": "wh-1"})).await;
    assert_eq!(again["status"], 200, "{again}");
    assert!(again["response"].as_str().unwrap().contains("duplicate"));
    let token = service_token(&env.app, "jobs", None);
    assert_eq!(
        token_access(&env.app, &id, None, &token).await.0,
        200,
        "nothing forged took effect"
    );
}

async fn an_oversized_webhook_is_refused(backend: Backend) {
    let env = webhook_env(backend).await;
    let res = client()
        .post(format!("{}/webhooks/highlevel", env.app.base_url))
        .header("x-ghl-signature", "AAAA")
        .body(vec![b'a'; 5 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "payload_too_large", "{body}");
    // The framework's other refusals are problem bodies too.
    let res = client()
        .get(format!("{}/webhooks/highlevel", env.app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            res.status().as_u16(),
            res.headers()["content-type"].to_str().unwrap()
        ),
        (405, "application/problem+json")
    );
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "method_not_allowed");
}

async fn concurrent_installs_of_one_company_make_one_installation(backend: Backend) {
    let env = webhook_env(backend).await;
    let locations: Vec<String> = (0..12).map(|i| format!("Bulk{i}")).collect();
    for l in &locations {
        env.sim.add_location("comp1", l, "bulk");
    }
    let sends = locations.iter().map(|l| send(&env, json!({"type": "INSTALL", "companyId": "comp1", "locationId": l, "installType": "Company"})));
    let answers = futures::future::join_all(sends).await;
    assert!(answers.iter().all(|a| a["status"] == 200), "{answers:?}");
    let token = service_token(&env.app, "ops", None);
    let (_, list) = installations_api(&env.app, "?company_id=comp1", &token).await;
    let list = list["installations"].as_array().unwrap();
    assert_eq!(list.len(), 1, "one installation per company");
    assert_eq!(
        list[0]["approved_locations"].as_array().unwrap().len(),
        12,
        "no location lost"
    );
}

/// A sub-account the agency adds after an agency-level install: its INSTALL webhook joins it to that
/// install (no tokenless Location installation), and a location HighLevel lists in
/// `/oauth/installedLocations` is served without any webhook at all.
async fn locations_added_after_an_agency_install_are_served(backend: Backend) {
    let env = webhook_env_with(backend, &[("ABSENT_LOCATION_TTL_SECS", "1")]).await;
    let id = install(&env.app, "Company", &["Loc1"]).await;
    let token = service_token(&env.app, "jobs", None);
    sim_post(
        &env.sim,
        "/_sim/installs/locations",
        json!({"companyId": "comp1", "locationId": "Loc2"}),
    )
    .await;
    let answer = send(&env, json!({"type": "INSTALL", "companyId": "comp1", "locationId": "Loc2", "installType": "Location"})).await;
    assert_eq!(answer["status"], 200, "{answer}");
    let (_, status) = installations_api(&env.app, &format!("/{id}"), &token).await;
    assert_eq!(status["approved_locations"], json!(["Loc1", "Loc2"]));
    let (_, all) = installations_api(&env.app, "", &token).await;
    assert_eq!(
        all["installations"].as_array().unwrap().len(),
        1,
        "no second, tokenless installation"
    );
    let (code, body) = token_access(&env.app, &id, Some("Loc2"), &token).await;
    assert_eq!(
        (code, body["auth_class"].as_str()),
        (200, Some("Location")),
        "{body}"
    );

    // No webhook for Loc3: HighLevel's installed-locations list is asked instead.
    let (code, _) = token_access(&env.app, &id, Some("Loc3"), &token).await;
    assert_eq!(code, 403, "not installed there yet");
    sim_post(
        &env.sim,
        "/_sim/installs/locations",
        json!({"companyId": "comp1", "locationId": "Loc3"}),
    )
    .await;
    // HighLevel's "not listed" is remembered for ABSENT_LOCATION_TTL_SECS (1 s here): asked again after it.
    let calls = env.sim.stats().count("GET /oauth/installedLocations");
    let (code, _) = token_access(&env.app, &id, Some("Loc3"), &token).await;
    assert_eq!(code, 403, "still remembered as absent");
    assert_eq!(
        env.sim.stats().count("GET /oauth/installedLocations"),
        calls,
        "no call for a location remembered as absent"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (code, body) = token_access(&env.app, &id, Some("Loc3"), &token).await;
    assert_eq!(
        (code, body["location_id"].as_str()),
        (200, Some("Loc3")),
        "{body}"
    );
    let (_, status) = installations_api(&env.app, &format!("/{id}"), &token).await;
    assert_eq!(
        status["approved_locations"],
        json!(["Loc1", "Loc2", "Loc3"])
    );
}

/// Some deliveries carry `x-ghl-signature: N/A`: a header that is not base64 counts as absent and the legacy
/// `x-wh-signature` is checked instead.
async fn a_signature_header_of_na_counts_as_absent(backend: Backend) {
    let env = webhook_env(backend).await;
    let answer = send(
        &env,
        json!({"type": "INSTALL", "companyId": "comp1", "locationId": "Loc1", "sim_sign": "na"}),
    )
    .await;
    assert_eq!(answer["status"], 200, "{answer}");
    let token = service_token(&env.app, "ops", None);
    let (_, list) = installations_api(&env.app, "?location_id=Loc1", &token).await;
    assert_eq!(list["installations"].as_array().unwrap().len(), 1, "{list}");
}

/// HighLevel's AppInstall webhook docs: "In case of app installation via future locations, you may not get these fields" (companyId,
/// userId). Such an INSTALL is accepted: the company comes from the agency install HighLevel lists it under.
async fn an_install_without_company_id_joins_the_agency_install_holding_it(backend: Backend) {
    let env = webhook_env(backend).await;
    let id = install(&env.app, "Company", &["Loc1"]).await;
    let token = service_token(&env.app, "jobs", None);
    // The agency installs to future locations: HighLevel adds Loc2 and says only its locationId.
    sim_post(
        &env.sim,
        "/_sim/installs/locations",
        json!({"companyId": "comp1", "locationId": "Loc2"}),
    )
    .await;
    let answer = send(&env, json!({"type": "INSTALL", "locationId": "Loc2"})).await;
    assert_eq!(answer["status"], 200, "{answer}");
    assert!(answer["payload"].get("companyId").is_none());
    let (_, status) = installations_api(&env.app, &format!("/{id}"), &token).await;
    assert_eq!(
        status["approved_locations"],
        json!(["Loc1", "Loc2"]),
        "{status}"
    );
    let (_, all) = installations_api(&env.app, "", &token).await;
    assert_eq!(all["installations"].as_array().unwrap().len(), 1);
    // A location already known (its company recorded here) needs no call to HighLevel.
    let calls = env.sim.stats().count("GET /oauth/installedLocations");
    let answer = send(&env, json!({"type": "INSTALL", "locationId": "Loc1"})).await;
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(
        env.sim.stats().count("GET /oauth/installedLocations"),
        calls
    );
    let (code, body) = token_access(&env.app, &id, Some("Loc2"), &token).await;
    assert_eq!(
        (code, body["location_id"].as_str()),
        (200, Some("Loc2")),
        "{body}"
    );
}

both_backends!(
    a_signature_header_of_na_counts_as_absent,
    an_install_without_company_id_joins_the_agency_install_holding_it,
    locations_added_after_an_agency_install_are_served,
    concurrent_installs_of_one_company_make_one_installation,
    uninstall_destroys_tokens_and_keeps_the_installation,
    uninstalling_a_company_destroys_its_location_tokens,
    install_webhooks_record_agency_and_bulk_installs,
    forged_stale_and_replayed_webhooks_are_refused,
    an_oversized_webhook_is_refused,
);
