//! Idempotency records do not grow without bound, and a crashed owner's lease lapses: the store on a real
//! SQLite file and a real PostgreSQL schema, and the scheduled purge of a running service.

use crate::common::*;
use api_backend::db::{Db, MIGRATIONS};
use api_backend::store::idempotency::{self, Claim, Holder};
use serde_json::json;
use service_common::both_backends;
use service_common::testing::{Backend, TestDb};
use std::time::{Duration, Instant};

fn db(t: &TestDb) -> Db {
    let db = Db::connect(&t.url, 2).unwrap();
    db.migrate(MIGRATIONS).unwrap();
    db
}

fn held(owner: &str, lease_until: i64) -> Holder<'_> {
    Holder { owner, lease_until }
}

/// A key's owner renews its lease while it runs; once it stops, the key is taken over as soon as the lease has
/// run out, by one claimant, who learns when the first attempt began; the old owner can then neither renew
/// nor write an outcome over the new owner's.
async fn a_lapsed_lease_is_taken_over(backend: Backend) {
    let t = TestDb::new(backend);
    let db = db(&t);
    db.run(|c| {
        fn claim(
            c: &mut api_backend::db::DbConn,
            who: &str,
            until: i64,
            now: i64,
        ) -> Result<Claim, api_backend::db::DbError> {
            idempotency::claim_held(c, "L1", "k", "h", held(who, until), now)
        }
        assert_eq!(claim(c, "a", 7_000, 1_000)?, Claim::Run { retry_of: None });
        assert_eq!(claim(c, "b", 12_000, 6_000)?, Claim::InProgress);
        assert!(idempotency::renew(c, "L1", "k", "a", 13_000)?);
        assert_eq!(
            claim(c, "b", 18_000, 12_000)?,
            Claim::InProgress,
            "a renewed lease holds"
        );
        // `a` stopped renewing: 1 ms after its lease ran out, `b` takes the key over; `c` then cannot.
        assert_eq!(
            claim(c, "b", 19_001, 13_001)?,
            Claim::Run {
                retry_of: Some(1_000)
            }
        );
        assert_eq!(claim(c, "c", 19_002, 13_002)?, Claim::InProgress);
        assert!(!idempotency::renew(c, "L1", "k", "a", 20_000)?);
        assert!(!idempotency::release_held(c, "L1", "k", "a", 13_003)?);
        assert!(!idempotency::complete_held(
            c, "L1", "k", "a", 500, "{}", 13_004
        )?);
        assert!(idempotency::complete_held(
            c,
            "L1",
            "k",
            "b",
            201,
            "{\"id\":\"p\"}",
            13_005
        )?);
        assert_eq!(
            claim(c, "c", 30_000, 24_000)?,
            Claim::Replay {
                status: 201,
                body: "{\"id\":\"p\"}".into()
            }
        );
        Ok(())
    })
    .await
    .unwrap();
}

/// Finished records older than the retention go; recent ones, and running ones whose owner still holds the
/// lease, stay.
async fn old_finished_records_are_purged(backend: Backend) {
    let t = TestDb::new(backend);
    let db = db(&t);
    let left = db
        .run(|c| {
            for (key, at) in [
                ("old-done", 1_000),
                ("old-failed", 2_000),
                ("new-done", 200_000),
            ] {
                idempotency::claim_held(c, "L1", key, "h", held("a", at + 6_000), at)?;
            }
            idempotency::complete_held(c, "L1", "old-done", "a", 201, "{}", 1_500)?;
            idempotency::release_held(c, "L1", "old-failed", "a", 2_500)?;
            idempotency::complete_held(c, "L1", "new-done", "a", 201, "{}", 200_500)?;
            // Began long ago and still running: its owner renews the lease.
            idempotency::claim_held(c, "L1", "old-running", "h", held("a", 7_000), 1_000)?;
            idempotency::renew(c, "L1", "old-running", "a", 206_000)?;
            idempotency::claim_held(c, "L1", "new-running", "h", held("a", 206_000), 200_000)?;
            let purged = idempotency::purge(c, 100_000)?;
            assert_eq!(purged, 2);
            let mut left = Vec::new();
            for key in [
                "old-done",
                "old-failed",
                "new-done",
                "old-running",
                "new-running",
            ] {
                // A purged key is a fresh key: the claim runs with no earlier attempt.
                let claim =
                    idempotency::claim_held(c, "L1", key, "h", held("b", 300_000), 205_000)?;
                left.push((key, claim));
            }
            Ok(left)
        })
        .await
        .unwrap();
    assert_eq!(
        left,
        vec![
            ("old-done", Claim::Run { retry_of: None }),
            ("old-failed", Claim::Run { retry_of: None }),
            (
                "new-done",
                Claim::Replay {
                    status: 201,
                    body: "{}".into()
                }
            ),
            ("old-running", Claim::InProgress),
            ("new-running", Claim::InProgress),
        ]
    );
}

/// A running service purges on its own: with IDEMPOTENCY_RETENTION=1s a finished create's record is gone
/// within seconds, and the key then runs as a new one.
async fn the_service_purges_on_a_schedule(backend: Backend) {
    let s = stack_with(
        backend,
        highlevel_sim::SimConfig::default(),
        &[("IDEMPOTENCY_RETENTION", "1s")],
    )
    .await;
    install(&s, "Location", &["Loc1"]).await;
    let create = || {
        client()
            .post(format!("{}/api/locations/Loc1/products", s.api.base_url))
            .bearer_auth(service_token())
            .header("Idempotency-Key", "purge-me")
            .json(&json!({"name": "Purged key", "productType": "DIGITAL"}))
    };
    let (status, body) = send(create()).await;
    assert_eq!(status, 201, "{body}");
    let started = Instant::now();
    loop {
        let claim = s
            .api
            .state
            .db
            .run(|c| idempotency::claim(c, "Loc1", "purge-me", "probe", 0))
            .await
            .unwrap();
        if claim == (Claim::Run { retry_of: None }) {
            break;
        }
        assert_eq!(claim, Claim::Mismatch, "the record is still there");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the finished record was not purged within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

both_backends!(
    a_lapsed_lease_is_taken_over,
    old_finished_records_are_purged,
    the_service_purges_on_a_schedule
);
