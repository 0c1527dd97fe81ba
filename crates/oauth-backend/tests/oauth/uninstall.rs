//! The app uninstalls itself (HighLevel's marketplace API, `uninstall-application`: `DELETE /marketplace/app/{appId}/
//! installations`, scope `oauth.write`, a Location token naming its `locationId` or an Agency token naming its
//! `companyId`, which removes the agency and all its sub-accounts): `DELETE /api/installations/{id}` and
//! `oauth-backend installations uninstall ID`.

use crate::common::*;
use service_common::both_backends;

async fn delete(
    app: &oauth_backend::RunningApp,
    id: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut req = client().delete(format!(
        "{}/api/installations/{id}?reason=unpaid",
        app.base_url
    ));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

async fn the_app_uninstalls_a_location_installation_at_highlevel(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let token = service_token(&env.app, "billing", None);
    let (_, served) = token_access(&env.app, &id, None, &token).await;
    let at = served["access_token"].as_str().unwrap().to_owned();

    assert_eq!(
        delete(&env.app, &id, None).await.0,
        401,
        "a service JWT is required"
    );
    let limited = service_token(&env.app, "other", Some(vec!["inst_other".into()]));
    assert_eq!(delete(&env.app, &id, Some(&limited)).await.0, 403);

    let (status, body) = delete(&env.app, &id, Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "uninstalled");
    assert_eq!(env.sim.stats().app_uninstalls, 1);
    assert_eq!(
        env.sim
            .stats()
            .count_status("DELETE /marketplace/app/{appId}/installations", 200),
        1
    );
    assert_eq!(
        hl_get(&env.sim, "/products/?locationId=Loc1", &at).await,
        401,
        "HighLevel stopped the install's token"
    );
    let (status, body) = token_access(&env.app, &id, None, &token).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (410, Some("installation_uninstalled"))
    );
    // Again: already uninstalled, nothing sent.
    assert_eq!(delete(&env.app, &id, Some(&token)).await.0, 200);
    assert_eq!(env.sim.stats().app_uninstalls, 1);
    assert_eq!(delete(&env.app, "inst_nope", Some(&token)).await.0, 404);
}

async fn the_app_uninstalls_an_agency_installation_and_its_sub_accounts(backend: Backend) {
    let env = env(backend).await;
    let agency = install(&env.app, "Company", &["Loc1", "Loc2"]).await;
    let own = install(&env.app, "Location", &["Loc3"]).await;
    let token = service_token(&env.app, "billing", None);
    assert_eq!(
        token_access(&env.app, &agency, Some("Loc1"), &token)
            .await
            .0,
        200
    );
    let (status, body) = delete(&env.app, &agency, Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    for id in [&agency, &own] {
        let (_, inst) = installations_api(&env.app, &format!("/{id}"), &token).await;
        assert_eq!(inst["state"], "uninstalled", "{inst}");
    }
    assert_eq!(
        token_access(&env.app, &agency, Some("Loc1"), &token)
            .await
            .0,
        410
    );
}

/// `oauth-backend installations uninstall ID` from a terminal does the same.
async fn the_cli_uninstalls_an_installation(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Location", &["Loc2"]).await;
    let vars = oauth_backend::Settings::simulator_env(
        &env.sim.base_url,
        &env.db.url,
        &env.keys,
        SERVICE_SECRET,
    );
    let out = tokio::task::spawn_blocking(move || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_oauth-backend"));
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "error")
            .args(["installations", "uninstall", &id, "--reason", "unpaid"]);
        for (k, v) in vars {
            c.env(k, v);
        }
        (id, c.output().unwrap())
    })
    .await
    .unwrap();
    let (id, out) = out;
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("uninstalled"));
    let token = service_token(&env.app, "ops", None);
    let (_, inst) = installations_api(&env.app, &format!("/{id}"), &token).await;
    assert_eq!(inst["state"], "uninstalled");
    assert_eq!(env.sim.stats().app_uninstalls, 1);
}

both_backends!(
    the_app_uninstalls_a_location_installation_at_highlevel,
    the_app_uninstalls_an_agency_installation_and_its_sub_accounts,
    the_cli_uninstalls_an_installation,
);
