//! Refresh refusals told apart. Only a refresh token HighLevel calls invalid or used is dead (reconnect, then
//! `needs_reauth`). HighLevel answers a suspended sub-account's refresh with `400 Location is not active`
//! (highlevel-api-docs issue #249): that is the account, not the token. The pair is kept, the installation is
//! `suspended` with the reason, refreshes back off, and it becomes `active` again by itself once a refresh
//! succeeds after the sub-account is reactivated: no re-install.

use crate::common::*;
use serde_json::json;
use service_common::both_backends;

async fn a_suspended_location_is_suspended_not_needs_reauth_and_recovers_by_itself(
    backend: Backend,
) {
    let env = env_with(backend, &[("SUSPENDED_RETRY_SECS", "1")]).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let token = service_token(&env.app, "jobs", None);
    let (_, first) = token_access(&env.app, &id, None, &token).await;
    let old = first["access_token"].as_str().unwrap().to_owned();

    let answer = sim_post(
        &env.sim,
        "/_sim/locations/Loc1/status",
        json!({"active": false}),
    )
    .await;
    assert_eq!(answer["active"], false, "{answer}");
    // HighLevel refuses the token (the caller says so) and the refresh: for the account.
    let (status, body) = refresh(&env.app, &id, None, &token, &old).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "installation_suspended", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("Location is not active"),
        "{body}"
    );
    let (_, inst) = installations_api(&env.app, &format!("/{id}"), &token).await;
    assert_eq!(inst["state"], "suspended", "{inst}");
    assert!(inst["last_error"]
        .as_str()
        .unwrap()
        .contains("Location is not active"));
    let stats = env.sim.stats();
    assert_eq!(stats.refresh_location_inactive, 1);
    assert_eq!(stats.refresh_token_reuse, 0);

    // Backing off: asked again at once, HighLevel is not asked.
    let (status, body) = refresh(&env.app, &id, None, &token, &old).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("installation_suspended"))
    );
    assert_eq!(
        env.sim.stats().refresh_location_inactive,
        1,
        "no second refresh within the back-off"
    );

    // Reactivated at HighLevel: the background refresher's next pass after the back-off resumes it, with the
    // refresh token it kept (no reconnect, no re-install).
    sim_post(
        &env.sim,
        "/_sim/locations/Loc1/status",
        json!({"active": true}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let grants = env.sim.stats().refresh_grants;
    oauth_backend::tokens::refresher::tick(&env.app.state.tokens, 600, 4)
        .await
        .unwrap();
    assert_eq!(env.sim.stats().refresh_grants, grants + 1);
    let (_, inst) = installations_api(&env.app, &format!("/{id}"), &token).await;
    assert_eq!(inst["state"], "active", "{inst}");
    assert!(inst["last_error"].is_null(), "{inst}");
    let (status, body) = token_access(&env.app, &id, None, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["access_token"].as_str().unwrap(), old);
    assert_eq!(
        hl_get(
            &env.sim,
            "/products/?locationId=Loc1",
            body["access_token"].as_str().unwrap()
        )
        .await,
        200
    );
    let stats = env.sim.stats();
    assert_eq!((stats.reconnects, stats.refresh_token_reuse), (0, 0));
    assert_eq!(stats.authorization_code_grants, 1, "no re-install");
}

/// A suspended installation still serves its token while it lasts, and a caller asking for a fresh one after
/// the back-off gets it once HighLevel takes the refresh again.
async fn a_suspended_installation_resumes_on_a_callers_refresh(backend: Backend) {
    let env = env_with(backend, &[("SUSPENDED_RETRY_SECS", "1")]).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let token = service_token(&env.app, "jobs", None);
    let (_, first) = token_access(&env.app, &id, None, &token).await;
    let old = first["access_token"].as_str().unwrap().to_owned();
    sim_post(
        &env.sim,
        "/_sim/locations/Loc1/status",
        json!({"active": false}),
    )
    .await;
    assert_eq!(refresh(&env.app, &id, None, &token, &old).await.0, 503);
    let (status, body) = token_access(&env.app, &id, None, &token).await;
    assert_eq!(status, 200, "the kept token is still served: {body}");
    sim_post(
        &env.sim,
        "/_sim/locations/Loc1/status",
        json!({"active": true}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body) = refresh(&env.app, &id, None, &token, &old).await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["access_token"].as_str().unwrap(), old);
    let (_, inst) = installations_api(&env.app, &format!("/{id}"), &token).await;
    assert_eq!(inst["state"], "active", "{inst}");
}

/// A refresh token HighLevel calls invalid is still dead: reconnect, then needs_reauth when that fails too.
async fn an_invalid_refresh_token_still_means_needs_reauth(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let token = service_token(&env.app, "jobs", None);
    let (_, first) = token_access(&env.app, &id, None, &token).await;
    let old = first["access_token"].as_str().unwrap().to_owned();
    sim_post(&env.sim, "/_sim/uninstall", json!({"locationId": "Loc1"})).await;
    let (status, body) = refresh(&env.app, &id, None, &token, &old).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("reauthorization_required")),
        "{body}"
    );
    let (_, inst) = installations_api(&env.app, &format!("/{id}"), &token).await;
    assert_eq!(inst["state"], "needs_reauth");
}

both_backends!(
    a_suspended_location_is_suspended_not_needs_reauth_and_recovers_by_itself,
    a_suspended_installation_resumes_on_a_callers_refresh,
    an_invalid_refresh_token_still_means_needs_reauth,
);
