//! Tokens at rest: encrypted, bound to their rows, re-encryptable under a new key.

use crate::common::*;
use diesel::prelude::*;
use oauth_backend::crypto::keyring::KeyRing;
use service_common::both_backends;

/// Every text a token could hide in, as stored by the backend itself.
async fn stored_bytes(env: &Env) -> Vec<u8> {
    match env.db.backend {
        Backend::Sqlite => {
            let path = env.db.sqlite_path.clone().unwrap();
            let mut bytes = Vec::new();
            for suffix in ["", "-wal", "-shm"] {
                let p = format!("{}{suffix}", path.display());
                bytes.extend(std::fs::read(&p).unwrap_or_default());
            }
            bytes
        }
        Backend::Postgres => {
            let mut c = diesel::PgConnection::establish(&env.db.url).unwrap();
            #[derive(QueryableByName)]
            struct Dump {
                #[diesel(sql_type = diesel::sql_types::Text)]
                t: String,
            }
            let mut all = String::new();
            for table in [
                "installations",
                "tokens",
                "oauth_states",
                "webhook_events",
                "token_audit",
            ] {
                let rows: Vec<Dump> =
                    diesel::sql_query(format!("SELECT CAST(x AS TEXT) AS t FROM {table} x"))
                        .load(&mut c)
                        .unwrap();
                for r in rows {
                    all.push_str(&r.t);
                }
            }
            all.into_bytes()
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn no_token_is_stored_in_plain_text(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Company", &["Loc1"]).await;
    let token = service_token(&env.app, "jobs", None);
    assert_eq!(
        token_access(&env.app, &id, Some("Loc1"), &token).await.0,
        200
    );
    let (_, t) = token_access(&env.app, &id, None, &token).await;
    refresh(
        &env.app,
        &id,
        None,
        &token,
        t["access_token"].as_str().unwrap(),
    )
    .await;
    let issued = env.sim.issued_tokens();
    assert!(
        issued.len() >= 5,
        "access, refresh and location tokens were issued"
    );
    let bytes = stored_bytes(&env).await;
    assert!(contains(&bytes, &id), "the scan does see stored data");
    for t in issued {
        assert!(!contains(&bytes, &t), "a token is stored in plain text");
        // Not even its signature part.
        let sig = t.rsplit('.').next().unwrap();
        assert!(!contains(&bytes, sig));
    }
}

async fn rotate_keys_re_encrypts_under_the_first_key(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Company", &["Loc1"]).await;
    let token = service_token(&env.app, "jobs", None);
    let (_, before) = token_access(&env.app, &id, Some("Loc1"), &token).await;

    let new_entry = KeyRing::generate_entry("k2");
    let both = KeyRing::parse(&format!("{new_entry},{}", env.keys)).unwrap();
    let (done, skipped) = oauth_backend::cli::rotate_keys(&env.app.state.tokens.db, &both).unwrap();
    assert_eq!(
        (done, skipped),
        (2, 0),
        "installation token and location token"
    );
    let rows = env
        .app
        .state
        .tokens
        .db
        .run(oauth_backend::store::tokens::all)
        .await
        .unwrap();
    for r in &rows {
        assert_eq!(
            KeyRing::key_id_of(r.access_token_enc.as_deref().unwrap()),
            Some("k2")
        );
    }

    // A replica that knows only the new key serves the same tokens.
    let only_new = oauth_backend::spawn_app(settings(&env.sim, &env.db, &new_entry, &[]))
        .await
        .unwrap();
    let (status, after) = token_access(&only_new, &id, Some("Loc1"), &token).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["access_token"], before["access_token"]);
    // One that knows only the old key cannot, and says why in its log, not in the answer.
    let only_old = oauth_backend::spawn_app(settings(&env.sim, &env.db, &env.keys, &[]))
        .await
        .unwrap();
    let (status, body) = token_access(&only_old, &id, None, &token).await;
    assert_eq!((status, body["code"].as_str().unwrap()), (500, "internal"));
    assert!(!body.to_string().contains("k2"));
}

async fn ciphertexts_moved_to_another_row_do_not_decrypt(backend: Backend) {
    use oauth_backend::db::schema::tokens::dsl;
    let env = env(backend).await;
    let a = install(&env.app, "Location", &["Loc1"]).await;
    let b = install(&env.app, "Location", &["Loc2"]).await;
    let (a2, b2) = (a.clone(), b.clone());
    env.app
        .state
        .tokens
        .db
        .run(move |c| {
            let enc: Option<String> = dsl::tokens
                .filter(dsl::installation_id.eq(&a2))
                .select(dsl::access_token_enc)
                .first(c)?;
            diesel::update(dsl::tokens.filter(dsl::installation_id.eq(&b2)))
                .set(dsl::access_token_enc.eq(enc))
                .execute(c)?;
            Ok(())
        })
        .await
        .unwrap();
    let fresh = env.replica().await;
    let token = service_token(&fresh, "jobs", None);
    assert_eq!(
        token_access(&fresh, &b, None, &token).await.0,
        500,
        "a swapped ciphertext is refused, not served"
    );
    assert_eq!(token_access(&fresh, &a, None, &token).await.0, 200);
}

async fn two_replicas_starting_together_migrate_once(backend: Backend) {
    let sim = sim().await;
    let db = TestDb::new(backend);
    let keys = KeyRing::generate_entry("k1");
    let (a, b) = tokio::join!(
        oauth_backend::spawn_app(settings(&sim, &db, &keys, &[])),
        oauth_backend::spawn_app(settings(&sim, &db, &keys, &[]))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    for app in [&a, &b] {
        let res = client()
            .get(format!("{}/readyz", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let metrics = client()
        .get(format!("{}/metrics", a.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("oauth_token_access_seconds"));
}

both_backends!(
    no_token_is_stored_in_plain_text,
    rotate_keys_re_encrypts_under_the_first_key,
    ciphertexts_moved_to_another_row_do_not_decrypt,
    two_replicas_starting_together_migrate_once,
);
