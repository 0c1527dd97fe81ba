//! The repository modules on a real SQLite file and a real PostgreSQL schema.

use api_backend::db::{Db, MIGRATIONS};
use api_backend::store::idempotency::{self, Claim, STALE_AFTER_MS};
use api_backend::store::providers::{self, ProviderRow};
use service_common::both_backends;
use service_common::testing::{Backend, TestDb};

fn db(t: &TestDb) -> Db {
    let db = Db::connect(&t.url, 2).unwrap();
    db.migrate(MIGRATIONS).unwrap();
    db
}

async fn idempotency_records(backend: Backend) {
    let t = TestDb::new(backend);
    let db = db(&t);
    db.run(|c| {
        assert_eq!(
            idempotency::claim(c, "L1", "k", "h1", 1_000)?,
            Claim::Run { retry_of: None }
        );
        assert_eq!(
            idempotency::claim(c, "L1", "k", "h1", 1_001)?,
            Claim::InProgress
        );
        assert_eq!(
            idempotency::claim(c, "L1", "k", "h2", 1_002)?,
            Claim::Mismatch
        );
        assert_eq!(
            idempotency::claim(c, "L2", "k", "h2", 1_003)?,
            Claim::Run { retry_of: None },
            "keys are per location"
        );
        idempotency::complete(c, "L1", "k", 201, "{\"id\":\"p\"}", 1_004)?;
        assert_eq!(
            idempotency::claim(c, "L1", "k", "h1", 1_005)?,
            Claim::Replay {
                status: 201,
                body: "{\"id\":\"p\"}".into()
            }
        );
        // A record left running by a dead process is taken over once it is stale, by one claimant only.
        assert_eq!(
            idempotency::claim(c, "L2", "k", "h2", 1_003 + STALE_AFTER_MS + 1)?,
            Claim::Run {
                retry_of: Some(1_003)
            }
        );
        assert_eq!(
            idempotency::claim(c, "L2", "k", "h2", 1_003 + STALE_AFTER_MS + 2)?,
            Claim::InProgress
        );
        // A failure worth retrying leaves the key retryable: the retry runs, knowing when the first attempt
        // began (to adopt what it made); the key still binds its body.
        idempotency::release(c, "L2", "k", 5_000_000)?;
        assert_eq!(
            idempotency::claim(c, "L2", "k", "h3", 5_000_001)?,
            Claim::Mismatch
        );
        assert_eq!(
            idempotency::claim(c, "L2", "k", "h2", 5_000_002)?,
            Claim::Run {
                retry_of: Some(1_003)
            }
        );
        assert_eq!(
            idempotency::claim(c, "L2", "k", "h2", 5_000_003)?,
            Claim::InProgress
        );
        Ok(())
    })
    .await
    .unwrap();
}

async fn provider_rows(backend: Backend) {
    let t = TestDb::new(backend);
    let db = db(&t);
    let row = ProviderRow {
        location_id: "L1".into(),
        installation_id: "inst".into(),
        name: "n".into(),
        description: "d".into(),
        image_url: "https://x.test/i.png".into(),
        gateway: "sandbox".into(),
        gateway_credentials: None,
        api_key_salt: "salt".into(),
        test_api_key_hash: "t".repeat(64),
        live_api_key_hash: "l".repeat(64),
        test_publishable_key: "pk_test".into(),
        live_publishable_key: "pk_live".into(),
        created_at: 1,
        updated_at: 1,
        marketplace_app_id: Some("app1".into()),
    };
    let r = row.clone();
    db.run(move |c| {
        providers::upsert(c, &r)?;
        let again = ProviderRow {
            name: "renamed".into(),
            updated_at: 2,
            ..r.clone()
        };
        providers::upsert(c, &again)?;
        let got = providers::get(c, "L1")?.unwrap();
        assert_eq!(
            (got.name.as_str(), got.created_at, got.updated_at),
            ("renamed", 1, 2)
        );
        let (found, live) = providers::by_api_key_hash(c, &"l".repeat(64))?.unwrap();
        assert!(live && found.location_id == "L1");
        let (_, live) = providers::by_api_key_hash(c, &"t".repeat(64))?.unwrap();
        assert!(!live);
        assert!(providers::by_api_key_hash(c, "nope")?.is_none());
        assert!(providers::delete(c, "L1")?);
        assert!(!providers::delete(c, "L1")?);
        Ok(())
    })
    .await
    .unwrap();
}

/// A `state` this version does not know (written by hand, or by a newer version) is an error naming the record,
/// never read as some other state.
async fn an_unknown_record_state_names_the_row(backend: Backend) {
    use diesel::RunQueryDsl;
    let t = TestDb::new(backend);
    let db = db(&t);
    let err = db
        .run(|c| {
            idempotency::claim(c, "L1", "k1", "h1", 1_000)?;
            diesel::sql_query(
                "UPDATE idempotency_records SET state = 'paused' WHERE location_id = 'L1' AND idem_key = 'k1'",
            )
            .execute(c)?;
            idempotency::claim(c, "L1", "k1", "h1", 1_001)
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("idempotency record (L1, k1)") && err.contains("`paused`"),
        "{err}"
    );
}

both_backends!(
    idempotency_records,
    provider_rows,
    an_unknown_record_state_names_the_row
);
