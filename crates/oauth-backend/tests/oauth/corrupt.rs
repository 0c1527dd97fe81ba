//! Fail closed: a row this version cannot read serves nothing. An unknown `state` is not `active`, an
//! unreadable `approved_locations` is not "every location"; the refusal is a 500 problem naming the row.

use crate::common::*;
use diesel::prelude::*;
use oauth_backend::db::schema::installations::dsl;
use serde_json::Value;
use service_common::both_backends;

/// Writes a column of an installation row directly, as a bad migration, a manual edit or a newer version
/// would, bypassing the store.
async fn corrupt(env: &Env, id: &str, column: &'static str, value: &'static str) {
    let id = id.to_owned();
    env.app
        .state
        .tokens
        .db
        .run(move |c| {
            let row = dsl::installations.find(id);
            let n = match column {
                "state" => diesel::update(row).set(dsl::state.eq(value)).execute(c)?,
                "approved_locations" => diesel::update(row)
                    .set(dsl::approved_locations.eq(value))
                    .execute(c)?,
                "auth_class" => diesel::update(row)
                    .set(dsl::auth_class.eq(value))
                    .execute(c)?,
                other => panic!("no such column {other}"),
            };
            assert_eq!(n, 1);
            Ok(())
        })
        .await
        .unwrap();
}

fn assert_names_the_row(status: u16, body: &Value, id: &str, field: &str) {
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["code"], "internal", "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(id) && detail.contains(field),
        "the detail names the row and the field: {body}"
    );
    assert!(body.get("access_token").is_none());
}

async fn an_unknown_state_is_not_active(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let token = service_token(&env.app, "jobs", None);
    corrupt(&env, &id, "state", "paused").await;
    for location in [None, Some("Loc1")] {
        let (status, body) = token_access(&env.app, &id, location, &token).await;
        assert_names_the_row(status, &body, &id, "state");
    }
    let (status, body) = refresh(&env.app, &id, None, &token, "whatever").await;
    assert_names_the_row(status, &body, &id, "state");
    let (status, body) = installations_api(&env.app, &format!("/{id}"), &token).await;
    assert_names_the_row(status, &body, &id, "state");
}

async fn unreadable_approved_locations_do_not_mean_every_location(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Company", &["Loc1"]).await;
    let token = service_token(&env.app, "jobs", None);
    for bad in ["not json", "null", "{\"Loc1\":true}"] {
        corrupt(&env, &id, "approved_locations", bad).await;
        for location in ["Loc1", "Loc2"] {
            let (status, body) = token_access(&env.app, &id, Some(location), &token).await;
            assert_names_the_row(status, &body, &id, "approved_locations");
        }
    }
}

async fn an_unknown_auth_class_is_refused(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Company", &["Loc1"]).await;
    let token = service_token(&env.app, "jobs", None);
    corrupt(&env, &id, "auth_class", "Agency").await;
    let (status, body) = token_access(&env.app, &id, None, &token).await;
    assert_names_the_row(status, &body, &id, "auth_class");
}

/// A state in the change feed this version does not know (written by hand, or by a newer version) is an error
/// naming the change, never read as some state: the process then stops serving from memory (see replicas.rs).
async fn an_unknown_state_in_the_change_feed_names_the_change(backend: Backend) {
    use oauth_backend::db::schema::installation_changes::dsl as feed;
    use oauth_backend::store::changes;
    let env = env(backend).await;
    let errors = env
        .app
        .state
        .tokens
        .db
        .run(move |c| {
            diesel::insert_into(feed::installation_changes)
                .values((
                    feed::installation_id.eq("inst-x"),
                    feed::state.eq("paused"),
                    feed::changed_at.eq(1_000_i64),
                ))
                .execute(c)?;
            let seq: i64 = feed::installation_changes
                .filter(feed::installation_id.eq("inst-x"))
                .select(feed::seq)
                .first(c)?;
            Ok((
                seq,
                [
                    changes::after(c, seq - 1, 100).map(|_| ()),
                    changes::after(c, 0, 100).map(|_| ()),
                    changes::these(c, &[seq]).map(|_| ()),
                ],
            ))
        })
        .await
        .unwrap();
    let (seq, errors) = errors;
    for err in errors {
        let err = err.unwrap_err().to_string();
        assert!(
            err.contains(&format!("installation change {seq}")) && err.contains("`paused`"),
            "{err}"
        );
    }
}

/// A forwarded webhook whose `state` this version does not know (a manual edit, a newer version) is an error
/// naming the delivery on every read of it, is never replayed as if it were dead, and the listing answers a
/// 500 problem rather than some default state. A caller's unknown `state` filter stays a 400.
async fn an_unknown_delivery_state_names_the_row(backend: Backend) {
    use oauth_backend::store::webhook_deliveries::{self as outbox, Delivery, DeliveryState};
    let env = env(backend).await;
    let row = |id: &str, created_at: i64| Delivery {
        id: id.into(),
        event_id: format!("msg_{id}"),
        webhook_id: format!("wh_{id}"),
        event_type: "ContactCreate".into(),
        url: "https://app.example/hooks".into(),
        installation_id: None,
        location_id: Some("Loc1".into()),
        company_id: None,
        payload: "{}".into(),
        state: DeliveryState::Pending,
        attempts: 0,
        // Far ahead: no forwarder pass takes it meanwhile.
        next_attempt_at: i64::MAX / 2,
        retry_from: created_at,
        last_status: None,
        last_error: None,
        occurred_at: created_at,
        created_at,
        delivered_at: None,
        updated_at: created_at,
    };
    let (errors, replayed, stored) = env
        .app
        .state
        .tokens
        .db
        .run(move |c| {
            outbox::enqueue(c, &[row("whd_good", 1_000), row("whd_bad", 2_000)])?;
            diesel::sql_query(
                "UPDATE webhook_deliveries SET state = 'paused' WHERE id = 'whd_bad'",
            )
            .execute(c)?;
            let errors = [
                outbox::get(c, "whd_bad").map(|_| ()),
                outbox::list(c, None, 50, 0).map(|_| ()),
                outbox::list(c, None, 1, 0).map(|_| ()),
            ];
            let replayed = outbox::replay(c, "whd_bad", 3_000);
            let stored: String = oauth_backend::db::schema::webhook_deliveries::table
                .find("whd_bad")
                .select(oauth_backend::db::schema::webhook_deliveries::state)
                .first(c)?;
            Ok((errors, replayed, stored))
        })
        .await
        .unwrap();
    for err in errors {
        let err = err.unwrap_err().to_string();
        assert!(
            err.contains("webhook delivery whd_bad") && err.contains("`paused`"),
            "{err}"
        );
    }
    assert!(!replayed.unwrap(), "an unreadable state is not replayed");
    assert_eq!(
        stored, "paused",
        "the row is left for the operator to repair"
    );

    let token = service_token(&env.app, "ops", None);
    let get = |query: &'static str| {
        let url = format!("{}/api/webhooks/deliveries{query}", env.app.base_url);
        let token = token.clone();
        async move {
            let res = client().get(url).bearer_auth(token).send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = get("").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["code"], "internal", "{body}");
    let (status, body) = get("?state=paused").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "invalid_request", "{body}");
    // The rows that can be read are listed as before, their state a lowercase string.
    let (status, body) = get("?state=pending").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deliveries"][0]["id"], "whd_good", "{body}");
    assert_eq!(body["deliveries"][0]["state"], "pending", "{body}");
    assert_eq!(body["deliveries"].as_array().unwrap().len(), 1, "{body}");
    let res = client()
        .post(format!(
            "{}/api/webhooks/deliveries/whd_bad/replay",
            env.app.base_url
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 500);
}

/// A token-audit `outcome` this version does not know is an error naming the audit row, never read as
/// `served`; a refusal's outcome is stored as its problem code.
async fn an_unknown_audit_outcome_names_the_row(backend: Backend) {
    use oauth_backend::db::schema::token_audit::dsl as audit_table;
    use oauth_backend::store::audit::{self, AuditEntry, Outcome};
    use shared_types::ProblemCode;
    let env = env(backend).await;
    let entry = |outcome: Outcome, at: i64| AuditEntry {
        caller: "jobs".into(),
        installation_id: "inst-a".into(),
        location_id: None,
        outcome,
        at,
        count: 1,
    };
    let (read, stored, bad, err) = env
        .app
        .state
        .tokens
        .db
        .run(move |c| {
            audit::insert_batch(
                c,
                &[
                    entry(Outcome::Served, 1_000),
                    entry(Outcome::Refused(ProblemCode::CallerNotAllowed), 2_000),
                ],
            )?;
            let read: Vec<Outcome> = audit::for_installation(c, "inst-a")?
                .into_iter()
                .map(|e| e.outcome)
                .collect();
            let stored: Vec<(i64, String)> = audit_table::token_audit
                .order(audit_table::id.asc())
                .select((audit_table::id, audit_table::outcome))
                .load(c)?;
            let bad = stored[0].0;
            diesel::sql_query(format!(
                "UPDATE token_audit SET outcome = 'leaked' WHERE id = {bad}"
            ))
            .execute(c)?;
            let err = audit::for_installation(c, "inst-a").map(|_| ());
            Ok((read, stored, bad, err))
        })
        .await
        .unwrap();
    assert_eq!(
        read,
        vec![
            Outcome::Served,
            Outcome::Refused(ProblemCode::CallerNotAllowed)
        ]
    );
    assert_eq!(
        stored.iter().map(|(_, o)| o.as_str()).collect::<Vec<_>>(),
        vec!["served", "caller_not_allowed"]
    );
    let err = err.unwrap_err().to_string();
    assert!(
        err.contains(&format!("token audit row {bad}")) && err.contains("`leaked`"),
        "{err}"
    );
}

both_backends!(
    an_unknown_delivery_state_names_the_row,
    an_unknown_audit_outcome_names_the_row,
    an_unknown_state_in_the_change_feed_names_the_change,
    an_unknown_state_is_not_active,
    unreadable_approved_locations_do_not_mean_every_location,
    an_unknown_auth_class_is_refused,
);
