//! Nothing grows without bound: the install link writes nothing, old rows are purged on a schedule with
//! their retention settings, and no audit row is dropped whatever the size of a write batch.

use crate::common::*;
use diesel::prelude::*;
use oauth_backend::db::schema;
use oauth_backend::store::now_ms;
use service_common::both_backends;
use std::sync::Arc;

const DAY: i64 = 86_400_000;

async fn count(env: &Env, table: &'static str) -> i64 {
    env.app
        .state
        .tokens
        .db
        .run(move |c| {
            Ok(match table {
                "oauth_states" => schema::oauth_states::table.count().get_result(c)?,
                "oauth_used_states" => schema::oauth_used_states::table.count().get_result(c)?,
                "webhook_events" => schema::webhook_events::table.count().get_result(c)?,
                "token_audit" => schema::token_audit::table.count().get_result(c)?,
                "installation_changes" => {
                    schema::installation_changes::table.count().get_result(c)?
                }
                other => panic!("no table {other}"),
            })
        })
        .await
        .unwrap()
}

/// An unauthenticated flood of `/oauth/install` cannot fill the disk: it stores nothing.
async fn the_install_link_writes_nothing(backend: Backend) {
    let env = env(backend).await;
    for _ in 0..50 {
        let res = client()
            .get(format!(
                "{}/oauth/install?user_type=Location",
                env.app.base_url
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 302);
    }
    assert_eq!(count(&env, "oauth_states").await, 0);
    assert_eq!(count(&env, "oauth_used_states").await, 0);
}

/// The state carries its own expiry under the signature: extending it breaks the signature.
async fn a_state_with_a_changed_expiry_is_refused(backend: Backend) {
    let env = env(backend).await;
    let res = client()
        .get(format!(
            "{}/oauth/install?sim_user_type=Location&sim_location_id=Loc1",
            env.app.base_url
        ))
        .send()
        .await
        .unwrap();
    let consent = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let state = consent
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let parts: Vec<&str> = state.split('.').collect();
    assert!(parts.len() >= 3, "{state}");
    let later = (parts[1].parse::<i64>().unwrap() + 10 * DAY).to_string();
    let mut forged = parts.clone();
    forged[1] = &later;
    let res = client()
        .get(format!(
            "{}/oauth/callback?code=x&state={}",
            env.app.base_url,
            forged.join(".")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["code"],
        "invalid_state"
    );
    assert_eq!(env.sim.stats().authorization_code_grants, 0);
}

/// One secret, one purpose: a state signed with SERVICE_JWT_SECRET itself (what signs service JWTs) is refused;
/// states have a key of their own, derived with HKDF.
async fn a_state_signed_with_the_service_secret_is_refused(backend: Backend) {
    use base64::Engine;
    use hmac::Mac;
    let env = env(backend).await;
    let payload = format!("{:032x}.{}.L", 9u128 << 64 | 1, now_ms() + 600_000);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SERVICE_SECRET.as_bytes()).unwrap();
    mac.update(b"oauth-state-v2:");
    mac.update(payload.as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    let res = client()
        .get(format!(
            "{}/oauth/callback?code=x&state={payload}.{sig}",
            env.app.base_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["code"],
        "invalid_state"
    );
    assert_eq!(env.sim.stats().authorization_code_grants, 0);
}

/// A state issued by the previous version (stored in `oauth_states`, `<id>.<HMAC>`) still completes its
/// install once after an upgrade, and only once.
async fn a_state_issued_before_the_upgrade_completes_once(backend: Backend) {
    use base64::Engine;
    use hmac::Mac;
    let env = env(backend).await;
    let id = format!("{:032x}", 7u128 << 64 | 42);
    let now = now_ms();
    let row = id.clone();
    env.app
        .state
        .tokens
        .db
        .run(move |c| {
            use schema::oauth_states::dsl;
            diesel::insert_into(dsl::oauth_states)
                .values((
                    dsl::id.eq(row),
                    dsl::user_type.eq(Some("Location")),
                    dsl::created_at.eq(now),
                    dsl::expires_at.eq(now + 600_000),
                ))
                .execute(c)?;
            Ok(())
        })
        .await
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SERVICE_SECRET.as_bytes()).unwrap();
    mac.update(b"oauth-state:");
    mac.update(id.as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    let state = format!("{id}.{sig}");
    let consent = format!(
        "{}/oauth/chooselocation?response_type=code&client_id=dev-client-id&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Foauth%2Fcallback&scope=oauth.write&state={state}&sim_user_type=Location&sim_location_id=Loc1",
        env.sim.base_url
    );
    let res = client().get(&consent).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let back = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let callback = format!(
        "{}/oauth/callback?{}",
        env.app.base_url,
        back.query().unwrap()
    );
    let res = client().get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 302, "{}", res.text().await.unwrap());
    let replay = client().get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), 400);
    assert_eq!(
        replay.json::<serde_json::Value>().await.unwrap()["code"],
        "invalid_state"
    );
}

/// A purge pass deletes expired states, webhook ids older than WEBHOOK_RETENTION_DAYS (7), forwarded webhooks
/// delivered more than WEBHOOK_DELIVERED_RETENTION_DAYS (7) ago and dead ones older than
/// WEBHOOK_DEAD_RETENTION_DAYS (30), audit rows older than AUDIT_RETENTION_DAYS (90) and change-feed rows older
/// than an hour; newer rows, and pending forwards of any age, stay.
async fn old_rows_are_purged_and_recent_ones_stay(backend: Backend) {
    let env = env(backend).await;
    let now = now_ms();
    env.app
        .state
        .tokens
        .db
        .run(move |c| {
            use schema::*;
            for (id, expires) in [("used-old", now - 1), ("used-new", now + 60_000)] {
                diesel::insert_into(oauth_used_states::table)
                    .values((
                        oauth_used_states::id.eq(id),
                        oauth_used_states::expires_at.eq(expires),
                    ))
                    .execute(c)?;
            }
            for (id, expires) in [("legacy-old", now - 1), ("legacy-new", now + 60_000)] {
                diesel::insert_into(oauth_states::table)
                    .values((
                        oauth_states::id.eq(id),
                        oauth_states::created_at.eq(now - 600_000),
                        oauth_states::expires_at.eq(expires),
                    ))
                    .execute(c)?;
            }
            for (id, at) in [("wh-old", now - 8 * DAY), ("wh-new", now - 6 * DAY)] {
                diesel::insert_into(webhook_events::table)
                    .values((
                        webhook_events::webhook_id.eq(id),
                        webhook_events::event_type.eq("INSTALL"),
                        webhook_events::received_at.eq(at),
                    ))
                    .execute(c)?;
            }
            use oauth_backend::store::webhook_deliveries::DeliveryState::{
                Dead, Delivered, Pending,
            };
            for (id, state, at) in [
                ("delivered-old", Delivered, now - 8 * DAY),
                ("delivered-new", Delivered, now - 6 * DAY),
                ("dead-old", Dead, now - 31 * DAY),
                ("dead-new", Dead, now - 29 * DAY),
                ("pending-old", Pending, now - 90 * DAY),
            ] {
                let row = oauth_backend::store::webhook_deliveries::Delivery {
                    id: id.into(),
                    event_id: format!("msg_{id}"),
                    webhook_id: format!("wh_{id}"),
                    event_type: "ContactCreate".into(),
                    url: "https://app.example/hooks".into(),
                    installation_id: None,
                    location_id: Some("Loc1".into()),
                    company_id: None,
                    payload: "{}".into(),
                    state,
                    attempts: 1,
                    next_attempt_at: at,
                    retry_from: at,
                    last_status: None,
                    last_error: None,
                    occurred_at: at,
                    created_at: at,
                    delivered_at: (state == Delivered).then_some(at),
                    updated_at: at,
                };
                oauth_backend::store::webhook_deliveries::enqueue(c, &[row])?;
            }
            for (caller, at) in [("old", now - 91 * DAY), ("new", now - 89 * DAY)] {
                diesel::insert_into(token_audit::table)
                    .values((
                        token_audit::caller.eq(caller),
                        token_audit::installation_id.eq("i"),
                        token_audit::outcome.eq("served"),
                        token_audit::at.eq(at),
                        token_audit::count.eq(1i64),
                    ))
                    .execute(c)?;
            }
            for (inst, at) in [("old", now - 2 * 3_600_000), ("new", now - 60_000)] {
                diesel::insert_into(installation_changes::table)
                    .values((
                        installation_changes::installation_id.eq(inst),
                        installation_changes::state.eq("uninstalled"),
                        installation_changes::changed_at.eq(at),
                    ))
                    .execute(c)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let retention = oauth_backend::purge::Retention::from_settings(&env.app.state.settings);
    let purged = env
        .app
        .state
        .tokens
        .db
        .run(move |c| oauth_backend::purge::purge_once(c, now, &retention))
        .await
        .unwrap();
    assert_eq!(
        purged,
        oauth_backend::purge::Purged {
            states: 2,
            webhook_events: 1,
            webhook_deliveries: 2,
            audit: 1,
            changes: 1
        }
    );
    let left = env
        .app
        .state
        .tokens
        .db
        .run(|c| {
            use schema::*;
            Ok((
                oauth_used_states::table
                    .select(oauth_used_states::id)
                    .load::<String>(c)?,
                oauth_states::table
                    .select(oauth_states::id)
                    .load::<String>(c)?,
                webhook_events::table
                    .select(webhook_events::webhook_id)
                    .load::<String>(c)?,
                token_audit::table
                    .select(token_audit::caller)
                    .load::<String>(c)?,
                installation_changes::table
                    .select(installation_changes::installation_id)
                    .load::<String>(c)?,
                webhook_deliveries::table
                    .select(webhook_deliveries::id)
                    .order(webhook_deliveries::id)
                    .load::<String>(c)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(
        left,
        (
            vec!["used-new".to_owned()],
            vec!["legacy-new".to_owned()],
            vec!["wh-new".to_owned()],
            vec!["new".to_owned()],
            vec!["new".to_owned()],
            vec![
                "dead-new".to_owned(),
                "delivered-new".to_owned(),
                "pending-old".to_owned()
            ],
        )
    );
}

/// One write batch of 50 000 distinct audit rows (300 000 bind parameters, past PostgreSQL's 65 535 per
/// statement) is written whole. (On SQLite diesel inserts rows with an optional column one statement per row, so
/// there no limit is reached either way; the test keeps it so.)
async fn an_audit_batch_past_the_bind_limits_loses_no_row(backend: Backend) {
    let env = env(backend).await;
    let claims = Arc::new(shared_types::ServiceClaims {
        iss: "bulk-job".into(),
        aud: "oauth-backend".into(),
        exp: 0,
        iat: None,
        installations: None,
    });
    const N: usize = 50_000;
    // No await in between: the writer takes all of them as one batch.
    for i in 0..N {
        env.app.state.audit.record(
            &claims,
            &format!("inst_{i}"),
            Some(&format!("loc_{i}")),
            oauth_backend::store::audit::Outcome::Served,
        );
    }
    env.app.state.audit.flush().await;
    assert_eq!(count(&env, "token_audit").await, N as i64);
}

both_backends!(
    the_install_link_writes_nothing,
    a_state_with_a_changed_expiry_is_refused,
    a_state_signed_with_the_service_secret_is_refused,
    a_state_issued_before_the_upgrade_completes_once,
    old_rows_are_purged_and_recent_ones_stay,
    an_audit_batch_past_the_bind_limits_loses_no_row,
);
