//! Exactly-once refresh, across tasks and replicas, and what happens when HighLevel misbehaves.

use crate::common::*;
use diesel::prelude::*;
use oauth_backend::db::schema::tokens::dsl;
use serde_json::json;
use service_common::both_backends;

/// Makes the stored installation token look close to expiry (as time would).
async fn age_token(app: &oauth_backend::RunningApp, id: &str, seconds_left: i64) {
    let id = id.to_owned();
    app.state
        .tokens
        .db
        .run(move |c| {
            let at = chrono::Utc::now().timestamp_millis() + seconds_left * 1000;
            diesel::update(
                dsl::tokens
                    .filter(dsl::installation_id.eq(id))
                    .filter(dsl::scope_key.eq("")),
            )
            // Issued a day ago, `seconds_left` to live.
            .set((dsl::expires_at.eq(at), dsl::updated_at.eq(at - 86_399_000)))
            .execute(c)?;
            Ok(())
        })
        .await
        .unwrap();
}

async fn current(app: &oauth_backend::RunningApp, id: &str) -> String {
    let token = service_token(app, "test", None);
    let (status, body) = token_access(app, id, None, &token).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn refresh_storm_across_two_replicas_makes_one_grant(backend: Backend) {
    let env = env(backend).await;
    let other = env.replica().await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let old = current(&env.app, &id).await;
    sim_post(&env.sim, "/_sim/tokens/expire", json!({})).await;
    assert_eq!(
        hl_get(&env.sim, "/products/?locationId=Loc1", &old).await,
        401
    );

    let token = service_token(&env.app, "storm", None);
    let calls = (0..200).map(|i| {
        let app = if i % 2 == 0 { &env.app } else { &other };
        refresh(app, &id, None, &token, &old)
    });
    let answers = futures::future::join_all(calls).await;
    let new = answers[0].1["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(
            body["access_token"],
            new.as_str(),
            "every caller gets the one new token"
        );
    }
    let stats = env.sim.stats();
    assert_eq!(stats.refresh_grants, 1);
    assert_eq!(stats.refresh_token_reuse, 0);
    assert_eq!(
        stats.refresh_without_user_type, 0,
        "user_type is sent on refresh"
    );
    assert_eq!(
        hl_get(&env.sim, "/products/?locationId=Loc1", &new).await,
        200
    );
}

async fn refresh_storm_over_fifty_installations_makes_fifty_grants(backend: Backend) {
    let env = env(backend).await;
    let other = env.replica().await;
    let mut installs = Vec::new();
    for i in 0..50 {
        let loc = format!("Storm{i}");
        env.sim.add_location("comp9", &loc, "storm");
        let id = install(&env.app, "Location", &[&loc]).await;
        let old = current(&env.app, &id).await;
        installs.push((id, old));
    }
    sim_post(&env.sim, "/_sim/tokens/expire", json!({})).await;
    let token = service_token(&env.app, "storm", None);
    let calls = installs.iter().flat_map(|(id, old)| {
        (0..4).map(|i| {
            let app = if i % 2 == 0 { &env.app } else { &other };
            refresh(app, id, None, &token, old)
        })
    });
    let answers = futures::future::join_all(calls).await;
    assert!(answers.iter().all(|(s, _)| *s == 200));
    let stats = env.sim.stats();
    assert_eq!(stats.refresh_grants, 50);
    assert_eq!(stats.refresh_token_reuse, 0);
}

async fn a_read_with_under_a_minute_left_refreshes_inline_once(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let old = current(&env.app, &id).await;
    age_token(&env.app, &id, 30).await;
    // A fresh replica has no cache: its read sees the stored expiry.
    let replica = env.replica().await;
    let token = service_token(&replica, "jobs", None);
    let reads =
        futures::future::join_all((0..20).map(|_| token_access(&replica, &id, None, &token))).await;
    let new = reads[0].1["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(reads
        .iter()
        .all(|(s, b)| *s == 200 && b["access_token"] == new.as_str()));
    let expires =
        chrono::DateTime::parse_from_rfc3339(reads[0].1["expires_at"].as_str().unwrap()).unwrap();
    assert!(expires.timestamp() - chrono::Utc::now().timestamp() > 3600);
    assert_eq!(env.sim.stats().refresh_grants, 1);
}

async fn a_replica_with_a_stale_cache_catches_up_without_a_grant(backend: Backend) {
    let env = env(backend).await;
    let b = env.replica().await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let old = current(&b, &id).await; // cached in b
    let token = service_token(&env.app, "jobs", None);
    let (_, renewed) = refresh(&env.app, &id, None, &token, &old).await;
    let new = renewed["access_token"].as_str().unwrap();
    // b may still serve its cached token for a moment (the change feed drops it within its bound: see
    // replicas.rs); never anything but the old or the new one.
    let seen = current(&b, &id).await;
    assert!(
        seen == old || seen == new,
        "b serves the old or the new token"
    );
    // b's caller gets a 401 from HighLevel and reports it: b serves the stored token, no second grant.
    let (status, caught_up) = refresh(&b, &id, None, &token, &old).await;
    assert_eq!(
        (status, caught_up["access_token"].as_str().unwrap()),
        (200, new)
    );
    assert_eq!(current(&b, &id).await, new);
    assert_eq!(env.sim.stats().refresh_grants, 1);
}

async fn a_lost_refresh_answer_is_recovered_through_reconnect(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let old = current(&env.app, &id).await;
    // HighLevel performs the refresh, and the answer never arrives: the crash window of docs/design.md, refresh.
    sim_post(
        &env.sim,
        "/_sim/faults",
        json!({"path_prefix": "/oauth/token", "status": 502, "after_handler": true, "times": 1}),
    )
    .await;
    let token = service_token(&env.app, "jobs", None);
    let (status, body) = refresh(&env.app, &id, None, &token, &old).await;
    assert_eq!(status, 200, "{body}");
    let new = body["access_token"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(
        hl_get(&env.sim, "/products/?locationId=Loc1", new).await,
        200
    );
    let stats = env.sim.stats();
    assert_eq!(stats.refresh_grants, 1, "the lost refresh");
    assert_eq!(
        stats.refresh_token_reuse, 1,
        "the retry with the now-dead refresh token"
    );
    assert_eq!(stats.reconnects, 1);
    assert_eq!(
        installations_api(&env.app, &format!("/{id}"), &token)
            .await
            .1["state"],
        "active"
    );
    // And the recovered pair refreshes normally afterwards.
    let (status, again) = refresh(&env.app, &id, None, &token, new).await;
    assert_eq!(status, 200);
    assert_ne!(again["access_token"], new);
    assert_eq!(env.sim.stats().refresh_grants, 2);
}

async fn a_dead_refresh_token_and_refused_reconnect_mean_needs_reauth(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let old = current(&env.app, &id).await;
    // Removed on HighLevel's side without a webhook reaching us: refresh and reconnect both fail.
    sim_post(&env.sim, "/_sim/uninstall", json!({"locationId": "Loc1"})).await;
    let token = service_token(&env.app, "jobs", None);
    let (status, body) = refresh(&env.app, &id, None, &token, &old).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "reauthorization_required");
    assert!(body["fix"].as_str().unwrap().contains("/oauth/install"));
    let (_, status_body) = installations_api(&env.app, &format!("/{id}"), &token).await;
    assert_eq!(status_body["state"], "needs_reauth");
    assert!(status_body["last_error"]
        .as_str()
        .unwrap()
        .contains("reconnect failed"));
    // Kept, and reads now say so at once.
    let (status, body) = token_access(&env.app, &id, None, &token).await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (409, "reauthorization_required")
    );
    assert_eq!(env.sim.stats().reconnects, 0);
}

async fn highlevel_5xx_keeps_the_old_refresh_token(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let old = current(&env.app, &id).await;
    sim_post(
        &env.sim,
        "/_sim/faults",
        json!({"path_prefix": "/oauth/token", "status": 503, "times": 10}),
    )
    .await;
    let token = service_token(&env.app, "jobs", None);
    let (status, body) = refresh(&env.app, &id, None, &token, &old).await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (503, "highlevel_unavailable")
    );
    client()
        .delete(format!("{}/_sim/faults", env.sim.base_url))
        .send()
        .await
        .unwrap();
    // A transient 503 is retried with backoff inside one call.
    sim_post(
        &env.sim,
        "/_sim/faults",
        json!({"path_prefix": "/oauth/token", "status": 503, "times": 1}),
    )
    .await;
    let (status, body) = refresh(&env.app, &id, None, &token, &old).await;
    assert_eq!(status, 200, "{body}");
    let stats = env.sim.stats();
    assert_eq!(
        (
            stats.refresh_grants,
            stats.refresh_token_reuse,
            stats.reconnects
        ),
        (1, 0, 0)
    );
}

/// Callers of one process that find the same token to renew share one renewal (docs/design.md, refresh):
/// while HighLevel answers 503, ten at once cost HighLevel what one costs, and all hear 503; once HighLevel is
/// slow but well, ten at once make one refresh call and all get its token.
async fn concurrent_renewals_in_one_process_share_one_call(backend: Backend) {
    const N: usize = 10;
    let env = env(backend).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let old = current(&env.app, &id).await;
    let token = service_token(&env.app, "jobs", None);
    let token_calls = || env.sim.stats().count("POST /oauth/token");
    let down = json!({"path_prefix": "/oauth/token", "status": 503, "times": 1000});

    sim_post(&env.sim, "/_sim/faults", down.clone()).await;
    let before = token_calls();
    let (status, body) = refresh(&env.app, &id, None, &token, &old).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("highlevel_unavailable"))
    );
    let one_caller = token_calls() - before;
    assert!(one_caller >= 1);

    let before = token_calls();
    let answers =
        futures::future::join_all((0..N).map(|_| refresh(&env.app, &id, None, &token, &old))).await;
    for (status, body) in &answers {
        assert_eq!(
            (*status, body["code"].as_str()),
            (503, Some("highlevel_unavailable")),
            "{body}"
        );
    }
    assert_eq!(
        token_calls() - before,
        one_caller,
        "{N} callers at once ask HighLevel as often as one"
    );

    client()
        .delete(format!("{}/_sim/faults", env.sim.base_url))
        .send()
        .await
        .unwrap();
    let slow = json!({"path_prefix": "/oauth/token", "latency_ms": 300, "times": 1000});
    sim_post(&env.sim, "/_sim/faults", slow).await;
    let before = token_calls();
    let answers =
        futures::future::join_all((0..N).map(|_| refresh(&env.app, &id, None, &token, &old))).await;
    let new = answers[0].1["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    for (status, body) in &answers {
        assert_eq!(
            (*status, body["access_token"].as_str()),
            (200, Some(new.as_str())),
            "{body}"
        );
    }
    assert_eq!(
        token_calls() - before,
        1,
        "one refresh call for {N} callers"
    );
    assert_eq!(env.sim.stats().refresh_grants, 1);
}

async fn the_background_refresher_renews_tokens_before_they_expire(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let other = install(&env.app, "Location", &["Loc2"]).await;
    let old = current(&env.app, &id).await;
    age_token(&env.app, &id, 300).await;
    let n = oauth_backend::tokens::refresher::tick(&env.app.state.tokens, 600, 16)
        .await
        .unwrap();
    assert_eq!(n, 1, "only the token inside the margin");
    assert_eq!(env.sim.stats().refresh_grants, 1);
    let new = current(&env.app, &id).await;
    assert_ne!(new, old);
    assert_eq!(
        hl_get(&env.sim, "/products/?locationId=Loc1", &new).await,
        200
    );
    let _ = other;
}

/// Renewing is not reading: a renewed token nobody read on this process is not kept in memory, under any of
/// its keys (a Location installation's token is cached under '' and under its location id), so a mass renewal
/// costs no memory per installation; a token that was read is served renewed, never the token it replaced (it
/// stays cached renewed, unless a change-feed report of the installation raced the renewal: then it is read
/// again from the database).
async fn a_renewal_keeps_in_memory_only_tokens_read_here(backend: Backend) {
    let env = env(backend).await;
    let unread = install(&env.app, "Location", &["Loc1"]).await;
    let read = install(&env.app, "Location", &["Loc2"]).await;
    let cache = &env.app.state.tokens.cache;
    cache.clear();
    let old = current(&env.app, &read).await;
    // The installs' own change reports may still be on their way: a read they race is not cached (by design),
    // so read until one is.
    for _ in 0..100 {
        if cache.holds(&read) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(current(&env.app, &read).await, old);
    }
    assert_eq!(cache.installations(), 1);
    age_token(&env.app, &unread, 300).await;
    age_token(&env.app, &read, 300).await;
    let n = oauth_backend::tokens::refresher::tick(&env.app.state.tokens, 600, 16)
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert!(
        cache.installations() <= 1,
        "only the installation read here"
    );
    assert!(cache.get(&unread, "").is_none() && cache.get(&unread, "Loc1").is_none());
    if let Some(hit) = cache.get(&read, "") {
        assert_ne!(hit.answer.access_token, old, "renewed in the cache too");
    }
    assert_ne!(current(&env.app, &read).await, old, "served renewed");
}

/// A token living shorter than the refresh margin is renewed once per lifetime (when half of it is left), not on
/// every pass.
async fn a_token_shorter_lived_than_the_margin_is_renewed_once_per_lifetime(backend: Backend) {
    let sim = sim_with(highlevel_sim::SimConfig {
        access_token_ttl: 4,
        ..Default::default()
    })
    .await;
    let db = TestDb::new(backend);
    let keys = oauth_backend::crypto::keyring::KeyRing::generate_entry("k1");
    let app = oauth_backend::spawn_app(settings(&sim, &db, &keys, &[]))
        .await
        .unwrap();
    install(&app, "Location", &["Loc1"]).await;
    let tick = || oauth_backend::tokens::refresher::tick(&app.state.tokens, 600, 16);
    for _ in 0..3 {
        tick().await.unwrap();
    }
    assert_eq!(
        sim.stats().refresh_grants,
        0,
        "more than half of its 4 s left: not due"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
    for _ in 0..3 {
        tick().await.unwrap();
    }
    assert_eq!(
        sim.stats().refresh_grants,
        1,
        "renewed once, not on every pass"
    );
}

async fn an_expired_location_token_is_minted_again_from_a_refreshed_company_token(
    backend: Backend,
) {
    let env = env(backend).await;
    let id = install(&env.app, "Company", &["Loc1"]).await;
    let token = service_token(&env.app, "jobs", None);
    let (_, first) = token_access(&env.app, &id, Some("Loc1"), &token).await;
    let first = first["access_token"].as_str().unwrap().to_owned();
    sim_post(&env.sim, "/_sim/tokens/expire", json!({})).await;
    // The caller's location token was refused; the Company token is dead too (HighLevel expired both).
    let (status, body) = refresh(&env.app, &id, Some("Loc1"), &token, &first).await;
    assert_eq!(status, 200, "{body}");
    let minted = body["access_token"].as_str().unwrap();
    assert_ne!(minted, first);
    assert_eq!(
        hl_get(&env.sim, "/products/?locationId=Loc1", minted).await,
        200
    );
    let stats = env.sim.stats();
    assert_eq!((stats.location_tokens_minted, stats.refresh_grants), (2, 1));
}

both_backends!(
    a_token_shorter_lived_than_the_margin_is_renewed_once_per_lifetime,
    refresh_storm_across_two_replicas_makes_one_grant,
    refresh_storm_over_fifty_installations_makes_fifty_grants,
    a_read_with_under_a_minute_left_refreshes_inline_once,
    a_replica_with_a_stale_cache_catches_up_without_a_grant,
    a_lost_refresh_answer_is_recovered_through_reconnect,
    a_dead_refresh_token_and_refused_reconnect_mean_needs_reauth,
    highlevel_5xx_keeps_the_old_refresh_token,
    concurrent_renewals_in_one_process_share_one_call,
    the_background_refresher_renews_tokens_before_they_expire,
    a_renewal_keeps_in_memory_only_tokens_read_here,
    an_expired_location_token_is_minted_again_from_a_refreshed_company_token,
);
