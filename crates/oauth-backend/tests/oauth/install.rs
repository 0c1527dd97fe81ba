use crate::common::*;
use service_common::both_backends;

async fn location_install_end_to_end(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    assert!(
        id.starts_with("inst_") && id.len() > 30,
        "unguessable id: {id}"
    );
    let token = service_token(&env.app, "jobs", None);
    let (status, body) = token_access(&env.app, &id, None, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["auth_class"], "Location");
    assert_eq!(body["location_id"], "Loc1");
    assert_eq!(body["company_id"], "comp1");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none());
    assert!(body["scopes"]
        .as_array()
        .unwrap()
        .contains(&"products.write".into()));
    // The token served works on HighLevel.
    let at = body["access_token"].as_str().unwrap();
    assert_eq!(
        hl_get(&env.sim, "/products/?locationId=Loc1", at).await,
        200
    );
    // Asked with its own location, it is the same token.
    let (status, same) = token_access(&env.app, &id, Some("Loc1"), &token).await;
    assert_eq!(
        (status, &same["access_token"]),
        (200, &body["access_token"])
    );
}

async fn location_differing_in_case_is_refused_with_a_fix(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let token = service_token(&env.app, "jobs", None);
    let (status, body) = token_access(&env.app, &id, Some("loc1"), &token).await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], "location_not_in_installation");
    assert!(body["fix"].as_str().unwrap().contains("case"), "{body}");
    let (status, body) = token_access(&env.app, &id, Some("Loc2"), &token).await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (403, "location_not_in_installation")
    );
}

async fn company_install_mints_and_reuses_location_tokens(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Company", &["Loc1"]).await;
    let token = service_token(&env.app, "jobs", None);
    let (status, company) = token_access(&env.app, &id, None, &token).await;
    assert_eq!(status, 200);
    assert_eq!(company["auth_class"], "Company");
    assert!(company["location_id"].is_null());

    let (status, loc) = token_access(&env.app, &id, Some("Loc1"), &token).await;
    assert_eq!(status, 200, "{loc}");
    assert_eq!(loc["auth_class"], "Location");
    assert_eq!(loc["location_id"], "Loc1");
    let at = loc["access_token"].as_str().unwrap();
    assert_eq!(
        hl_get(&env.sim, "/products/?locationId=Loc1", at).await,
        200
    );
    assert_eq!(env.sim.stats().location_tokens_minted, 1);

    // Reused until close to expiry, from this replica's cache and from a fresh replica's database read.
    let (_, again) = token_access(&env.app, &id, Some("Loc1"), &token).await;
    assert_eq!(again["access_token"], loc["access_token"]);
    let replica = env.replica().await;
    let (_, from_db) = token_access(&replica, &id, Some("Loc1"), &token).await;
    assert_eq!(from_db["access_token"], loc["access_token"]);
    assert_eq!(env.sim.stats().location_tokens_minted, 1);

    // A location outside the installation.
    let (status, body) = token_access(&env.app, &id, Some("Loc3"), &token).await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (403, "location_not_in_installation")
    );
    assert_eq!(env.sim.stats().location_tokens_minted, 1);
}

async fn bulk_install_and_reinstall_update_without_duplicates(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Company", &["Loc1", "Loc2"]).await;
    let token = service_token(&env.app, "ops", None);
    let (_, status) = installations_api(&env.app, &format!("/{id}"), &token).await;
    assert_eq!(status["is_bulk"], true);
    assert_eq!(
        status["approved_locations"],
        serde_json::json!(["Loc1", "Loc2"])
    );
    assert_eq!(status["state"], "active");
    assert!(status.get("access_token").is_none() && !status.to_string().contains("eyJ"));
    for l in ["Loc1", "Loc2"] {
        let (s, b) = token_access(&env.app, &id, Some(l), &token).await;
        assert_eq!((s, b["location_id"].as_str().unwrap()), (200, l));
    }

    let again = install(&env.app, "Company", &["Loc1", "Loc2"]).await;
    assert_eq!(again, id, "re-install updates the same installation");
    let loc = install(&env.app, "Location", &["Loc3"]).await;
    assert_ne!(loc, id);
    let (_, list) = installations_api(&env.app, "?company_id=comp1", &token).await;
    assert_eq!(list["installations"].as_array().unwrap().len(), 2);
}

async fn a_bad_or_replayed_state_is_refused(backend: Backend) {
    let env = env(backend).await;
    let c = client();
    let res = c
        .get(format!(
            "{}/oauth/callback?code=x&state=forged.sig",
            env.app.base_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "invalid_state");

    let res = c
        .get(format!(
            "{}/oauth/install?sim_user_type=Location&sim_location_id=Loc1",
            env.app.base_url
        ))
        .send()
        .await
        .unwrap();
    let consent = res.headers()["location"].to_str().unwrap().to_owned();
    let res = c.get(&consent).send().await.unwrap();
    let back = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let callback = format!(
        "{}/oauth/callback?{}",
        env.app.base_url,
        back.query().unwrap()
    );
    assert_eq!(c.get(&callback).send().await.unwrap().status(), 302);
    let replay = c.get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), 400);
    assert_eq!(
        replay.json::<serde_json::Value>().await.unwrap()["code"],
        "invalid_state"
    );
    assert_eq!(
        env.sim.stats().authorization_code_grants,
        1,
        "the replayed code never reached HighLevel"
    );
}

async fn without_redirect_the_callback_answers_a_page(backend: Backend) {
    let sim = sim().await;
    let db = TestDb::new(backend);
    let keys = oauth_backend::crypto::keyring::KeyRing::generate_entry("k1");
    let mut s = settings(&sim, &db, &keys, &[]);
    s.post_install_redirect_url = None;
    let app = oauth_backend::spawn_app(s).await.unwrap();
    let c = client();
    let res = c
        .get(format!(
            "{}/oauth/install?sim_user_type=Location&sim_location_id=Loc1",
            app.base_url
        ))
        .send()
        .await
        .unwrap();
    let res = c
        .get(res.headers()["location"].to_str().unwrap())
        .send()
        .await
        .unwrap();
    let back = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let res = c
        .get(format!(
            "{}/oauth/callback?{}",
            app.base_url,
            back.query().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("App installed") && page.contains("inst_") && !page.contains("eyJ"));
}

both_backends!(
    location_install_end_to_end,
    location_differing_in_case_is_refused_with_a_fix,
    company_install_mints_and_reuses_location_tokens,
    bulk_install_and_reinstall_update_without_duplicates,
    a_bad_or_replayed_state_is_refused,
    without_redirect_the_callback_answers_a_page,
);
