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

both_backends!(
    an_unknown_state_in_the_change_feed_names_the_change,
    an_unknown_state_is_not_active,
    unreadable_approved_locations_do_not_mean_every_location,
    an_unknown_auth_class_is_refused,
);
