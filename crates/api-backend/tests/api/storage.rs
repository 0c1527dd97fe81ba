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
        gateway: providers::Gateway::Sandbox,
        gateway_credentials: None,
        api_key_salt: "salt".into(),
        test_api_key_hash: "t".repeat(64),
        live_api_key_hash: "l".repeat(64),
        test_publishable_key: "pk_test".into(),
        live_publishable_key: "pk_live".into(),
        created_at: 1,
        updated_at: 1,
        marketplace_app_id: Some("app1".into()),
        paytr_direct_api: false,
    };
    let r = row.clone();
    db.run(move |c| {
        providers::upsert(c, &r)?;
        let again = ProviderRow {
            name: "renamed".into(),
            updated_at: 2,
            paytr_direct_api: true,
            ..r.clone()
        };
        providers::upsert(c, &again)?;
        let got = providers::get(c, "L1")?.unwrap();
        assert_eq!(
            (
                got.name.as_str(),
                got.created_at,
                got.updated_at,
                got.paytr_direct_api
            ),
            ("renamed", 1, 2, true)
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

/// A charge `status` this version does not know is an error naming the charge, never read as pending, paid or
/// declined.
async fn an_unknown_charge_status_names_the_row(backend: Backend) {
    use api_backend::store::payments::{self, Charge, ChargeStatus};
    use diesel::RunQueryDsl;
    let t = TestDb::new(backend);
    let db = db(&t);
    let charge = Charge {
        id: "ch_1".into(),
        location_id: "L1".into(),
        live_mode: false,
        transaction_id: "txn_1".into(),
        gateway: providers::Gateway::Sandbox,
        gateway_ref: None,
        status: ChargeStatus::Pending,
        amount_minor: 1_000,
        currency: "USD".into(),
        refunded_minor: 0,
        contact_id: None,
        payment_method_id: None,
        subscription_id: None,
        description: None,
        failure: None,
        created_at: 1_000,
        updated_at: 1_000,
    };
    let err = db
        .run(move |c| {
            let (stored, inserted) = payments::insert_charge_once(c, &charge)?;
            assert!(inserted && stored == charge, "{stored:?}");
            diesel::sql_query("UPDATE payment_charges SET status = 'disputed' WHERE id = 'ch_1'")
                .execute(c)?;
            payments::charge(c, "L1", "ch_1")
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("payment charge ch_1") && err.contains("`disputed`"),
        "{err}"
    );
}

fn sandbox_charge(
    id: &str,
    status: api_backend::store::payments::ChargeStatus,
) -> api_backend::store::payments::Charge {
    api_backend::store::payments::Charge {
        id: id.into(),
        location_id: "L1".into(),
        live_mode: false,
        transaction_id: format!("txn_{id}"),
        gateway: providers::Gateway::Sandbox,
        gateway_ref: None,
        status,
        amount_minor: 1_000,
        currency: "USD".into(),
        refunded_minor: 0,
        contact_id: None,
        payment_method_id: None,
        subscription_id: None,
        description: None,
        failure: None,
        created_at: 1_000,
        updated_at: 1_000,
    }
}

/// A refund `status` this version does not know is an error naming the refund, on every read of it: the
/// repeat check and the outcome inside their transactions, and the charge's list of refunds.
async fn an_unknown_refund_status_names_the_row(backend: Backend) {
    use api_backend::store::payments::{self, ChargeStatus, RefundClaim};
    use diesel::RunQueryDsl;
    let t = TestDb::new(backend);
    let db = db(&t);
    let errors = db
        .run(move |c| {
            payments::insert_charge_once(c, &sandbox_charge("ch_1", ChargeStatus::Succeeded))?;
            let claim = payments::begin_refund(c, "L1", "ch_1", 100, "re_1", "k1", 0, 2_000)?;
            assert!(matches!(claim, RefundClaim::New(_)), "{claim:?}");
            diesel::sql_query("UPDATE payment_refunds SET status = 'disputed' WHERE id = 're_1'")
                .execute(c)?;
            Ok([
                payments::begin_refund(c, "L1", "ch_1", 100, "re_2", "k1", 0, 3_000).map(|_| ()),
                payments::finish_refund(c, "re_1", true, 3_000).map(|_| ()),
                payments::refunds_of(c, "ch_1").map(|_| ()),
            ])
        })
        .await
        .unwrap();
    for err in errors {
        let err = err.unwrap_err().to_string();
        assert!(
            err.contains("payment refund re_1") && err.contains("`disputed`"),
            "{err}"
        );
    }
}

/// A subscription `status` this version does not know is an error naming the subscription, never read as
/// live or final.
async fn an_unknown_subscription_status_names_the_row(backend: Backend) {
    use api_backend::store::subscriptions::{self as subs, Subscription, SubscriptionStatus};
    use diesel::RunQueryDsl;
    let t = TestDb::new(backend);
    let db = db(&t);
    let sub = Subscription {
        id: "sub_1".into(),
        location_id: "L1".into(),
        live_mode: false,
        transaction_id: "txn_1".into(),
        contact_id: Some("contact1".into()),
        payment_method_id: "pm_1".into(),
        amount_minor: 1_000,
        currency: "USD".into(),
        interval_unit: "month".into(),
        interval_count: 1,
        status: SubscriptionStatus::Active,
        created_at: 1_000,
        updated_at: 1_000,
        ghl_subscription_id: Some("ghl_sub_1".into()),
        first_amount_minor: None,
        trial_end: None,
        total_cycles: None,
        cycles_paid: 1,
        next_charge_at: Some(2_000),
        attempt_at: Some(2_000),
        failed_attempts: 0,
        claimed_by: None,
        claimed_until: None,
    };
    let errors = db
        .run(move |c| {
            let (stored, inserted) = subs::insert_once(c, &sub)?;
            assert!(inserted && stored == sub, "{stored:?}");
            diesel::sql_query(
                "UPDATE payment_subscriptions SET status = 'paused' WHERE id = 'sub_1'",
            )
            .execute(c)?;
            Ok([
                subs::get(c, "sub_1").map(|_| ()),
                subs::find(c, "L1", "ghl_sub_1").map(|_| ()),
                subs::of_location(c, "L1", 10).map(|_| ()),
                subs::insert_once(c, &sub).map(|_| ()),
            ])
        })
        .await
        .unwrap();
    for err in errors {
        let err = err.unwrap_err().to_string();
        assert!(
            err.contains("payment subscription sub_1") && err.contains("`paused`"),
            "{err}"
        );
    }
}

/// PayTR's customer tokens: a row begins with the address, the first token PayTR gives stays; the contact's
/// PayTR cards follow PayTR's list (added by ctoken, removed when no longer listed, ids stable).
async fn paytr_customers_and_cards(backend: Backend) {
    use api_backend::store::payments::{self, Method};
    use api_backend::store::paytr_customers;
    let t = TestDb::new(backend);
    let db = db(&t);
    db.run(|c| {
        assert!(paytr_customers::get(c, "L1", false, "ct1")?.is_none());
        let row = paytr_customers::begin(c, "L1", false, "ct1", "1.2.3.4", 10)?;
        assert_eq!((row.utoken_sealed, row.user_ip.as_str()), (None, "1.2.3.4"));
        assert!(
            !paytr_customers::keep_token(c, "L1", true, "ct1", "sealed-live", 11)?,
            "no live row"
        );
        assert!(paytr_customers::keep_token(
            c, "L1", false, "ct1", "sealed-1", 12
        )?);
        assert!(
            !paytr_customers::keep_token(c, "L1", false, "ct1", "sealed-2", 13)?,
            "the first token stays"
        );
        let again = paytr_customers::begin(c, "L1", false, "ct1", "5.6.7.8", 14)?;
        assert_eq!(
            (
                again.utoken_sealed.as_deref(),
                again.user_ip.as_str(),
                again.created_at
            ),
            (Some("sealed-1"), "5.6.7.8", 10)
        );
        let card = |id: &str, ctoken: &str, at: i64| Method {
            id: id.into(),
            location_id: "L1".into(),
            live_mode: false,
            contact_id: "ct1".into(),
            brand: "VISA".into(),
            last4: "4358".into(),
            exp_month: 12,
            exp_year: 2030,
            sandbox_outcome: None,
            created_at: at,
            gateway_ref: Some(ctoken.into()),
        };
        let first = payments::sync_gateway_methods(
            c,
            "L1",
            "ct1",
            false,
            &[card("pm_a", "ct-a", 1), card("pm_b", "ct-b", 2)],
        )?;
        assert_eq!(
            first.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
            ["pm_a", "pm_b"]
        );
        // PayTR no longer lists ct-a and lists a new ct-c; ct-b keeps its id whatever id the new list proposes.
        let second = payments::sync_gateway_methods(
            c,
            "L1",
            "ct1",
            false,
            &[card("pm_x", "ct-b", 5), card("pm_c", "ct-c", 6)],
        )?;
        assert_eq!(
            second.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
            ["pm_b", "pm_c"]
        );
        assert!(payments::method(c, "L1", "pm_a")?.is_none());
        assert!(
            payments::sync_gateway_methods(c, "L1", "ct1", true, &[])?.is_empty(),
            "live is apart"
        );
        assert_eq!(payments::methods(c, "L1", "ct1", false)?.len(), 2);
        Ok(())
    })
    .await
    .unwrap();
}

/// PayTR subscription checkouts waiting for PayTR's notification: one per charge and per location and
/// HighLevel transaction; a pending one moves once to `created` or `failed`, and the first outcome stands.
async fn paytr_subscription_checkouts(backend: Backend) {
    use api_backend::store::paytr_subscription_checkouts::{self as pending, SubscriptionCheckout};
    let t = TestDb::new(backend);
    let db = db(&t);
    db.run(|c| {
        let row = |charge: &str, txn: &str| SubscriptionCheckout {
            charge_id: charge.into(),
            location_id: "L1".into(),
            live_mode: false,
            transaction_id: txn.into(),
            ghl_subscription_id: "ghl-sub".into(),
            subscription_id: "sub_1".into(),
            contact_id: "ct1".into(),
            terms: r#"{"amount":49.99}"#.into(),
            known_cards: r#"["ct-a"]"#.into(),
            status: pending::PENDING.into(),
            failure: None,
            created_at: 10,
            updated_at: 10,
        };
        assert!(pending::by_charge(c, "ch_1")?.is_none());
        pending::insert(c, &row("ch_1", "txn-1"))?;
        assert_eq!(pending::by_charge(c, "ch_1")?, Some(row("ch_1", "txn-1")));
        assert!(
            pending::insert(c, &row("ch_2", "txn-1")).is_err(),
            "one checkout per location and transaction"
        );
        assert!(
            pending::insert(c, &row("ch_1", "txn-2")).is_err(),
            "one per charge"
        );
        assert!(pending::finish(
            c,
            "ch_1",
            pending::FAILED,
            Some("Declined"),
            20
        )?);
        assert!(
            !pending::finish(c, "ch_1", pending::CREATED, None, 21)?,
            "the first outcome stands"
        );
        let after = pending::by_charge(c, "ch_1")?.unwrap();
        assert_eq!(
            (
                after.status.as_str(),
                after.failure.as_deref(),
                after.updated_at
            ),
            ("failed", Some("Declined"), 20)
        );
        assert!(!pending::finish(c, "ch_none", pending::CREATED, None, 22)?);
        Ok(())
    })
    .await
    .unwrap();
}

/// The outbox sends a subject's events in order: only the first undelivered one is due, and while it waits
/// for a retry the ones behind it wait too, so they never fill a batch and keep other events out.
async fn outbox_order_per_subject(backend: Backend) {
    use api_backend::store::events::{self as outbox, Event};
    let t = TestDb::new(backend);
    let db = db(&t);
    db.run(|c| {
        let event = |id: String, subject: Option<&str>, at: i64| Event {
            id,
            location_id: "L1".into(),
            live_mode: false,
            event_type: "subscription.charged".into(),
            payload: "{}".into(),
            attempts: 0,
            next_attempt_at: at,
            delivered_at: None,
            last_error: None,
            created_at: at,
            subject: subject.map(str::to_owned),
        };
        // Sixty events of one subscription, one millisecond apart, then one of its own.
        for i in 0..60 {
            outbox::enqueue(c, &event(format!("e{i:02}"), Some("sub_a"), 1_000 + i))?;
        }
        outbox::enqueue(c, &event("lone".into(), None, 2_000))?;
        let ids = |due: Vec<Event>| due.into_iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(
            ids(outbox::due(c, 5_000, 50)?),
            ["e00", "lone"],
            "only the first of sub_a; the 59 held back do not crowd out the rest"
        );
        assert!(outbox::claim(c, "e00", 5_000, 30_000)?);
        outbox::failed(c, "e00", 9_000, "HighLevel answered 503")?;
        let waits = |c: &mut _, prefix: &str| -> Result<Vec<i64>, _> {
            Ok::<_, api_backend::db::DbError>(
                outbox::all(c)?
                    .into_iter()
                    .filter(|e| e.id.starts_with(prefix) && e.delivered_at.is_none())
                    .map(|e| e.next_attempt_at)
                    .collect(),
            )
        };
        assert!(
            waits(c, "e")?.iter().all(|at| *at == 9_000),
            "the events behind e00 wait for its retry: {:?}",
            waits(c, "e")?
        );
        assert_eq!(
            ids(outbox::due(c, 5_001, 50)?),
            ["lone"],
            "sub_a waits for its retry"
        );
        outbox::delivered(c, "lone", 5_002)?;
        assert_eq!(ids(outbox::due(c, 9_000, 50)?), ["e00"]);
        outbox::delivered(c, "e00", 9_001)?;
        assert_eq!(ids(outbox::due(c, 9_001, 50)?), ["e01"]);
        // Two events of one millisecond are ordered by id, and neither waits for the other forever.
        outbox::enqueue(c, &event("b2".into(), Some("sub_b"), 3_000))?;
        outbox::enqueue(c, &event("b1".into(), Some("sub_b"), 3_000))?;
        let due = ids(outbox::due(c, 9_001, 50)?);
        assert!(
            due.contains(&"b1".to_owned()) && !due.contains(&"b2".to_owned()),
            "{due:?}"
        );
        outbox::delivered(c, "b1", 9_002)?;
        assert!(ids(outbox::due(c, 9_002, 50)?).contains(&"b2".to_owned()));
        for e in outbox::due(c, 9_002, 50)? {
            outbox::delivered(c, &e.id, 9_003)?;
        }
        // HighLevel refuses for a while: sixty subscriptions' first events wait for their retry, and each
        // subscription writes another event meanwhile. An event that can go still goes.
        for i in 0..60 {
            let first = format!("s{i:02}-1");
            outbox::enqueue(
                c,
                &event(first.clone(), Some(&format!("sub{i:02}")), 10_000),
            )?;
            assert!(outbox::claim(c, &first, 10_000, 30_000)?);
            outbox::failed(c, &first, 70_000, "HighLevel answered 503")?;
        }
        for i in 0..60 {
            let later = format!("s{i:02}-2");
            outbox::enqueue(c, &event(later, Some(&format!("sub{i:02}")), 20_000 + i))?;
        }
        assert!(
            waits(c, "s")?.iter().all(|at| *at == 70_000),
            "an event written behind a failed one waits for its retry: {:?}",
            waits(c, "s")?
        );
        outbox::enqueue(c, &event("lone2".into(), None, 30_000))?;
        // (sub_a's e02 is due too: its turn came when e01 was delivered.)
        assert_eq!(ids(outbox::due(c, 30_001, 50)?), ["e02", "lone2"]);
        let due: Vec<String> = ids(outbox::due(c, 70_000, 100)?)
            .into_iter()
            .filter(|id| id.starts_with('s'))
            .collect();
        assert_eq!(due.len(), 60, "each subscription's first event: {due:?}");
        assert!(due.iter().all(|id| id.ends_with("-1")), "{due:?}");
        // An event HighLevel keeps refusing holds its subscription's later events for HOLDS_FOR_ATTEMPTS
        // attempts, then no longer: it is still retried, and the later ones go.
        outbox::enqueue(c, &event("p1".into(), Some("sub_p"), 100_000))?;
        outbox::enqueue(c, &event("p2".into(), Some("sub_p"), 100_001))?;
        let mut at = 100_002;
        for attempt in 1..=outbox::HOLDS_FOR_ATTEMPTS {
            let due = ids(outbox::due(c, at, 500)?);
            assert!(
                !due.contains(&"p2".to_owned()),
                "attempt {attempt}: {due:?}"
            );
            assert!(due.contains(&"p1".to_owned()), "attempt {attempt}: {due:?}");
            assert!(outbox::claim(c, "p1", at, 30_000)?);
            outbox::failed(c, "p1", at + 10, "HighLevel answered 400")?;
            at += 10;
        }
        let due = ids(outbox::due(c, at, 500)?);
        assert!(
            due.contains(&"p1".to_owned()) && due.contains(&"p2".to_owned()),
            "{due:?}"
        );
        Ok(())
    })
    .await
    .unwrap();
}

both_backends!(
    outbox_order_per_subject,
    idempotency_records,
    provider_rows,
    paytr_customers_and_cards,
    paytr_subscription_checkouts,
    an_unknown_record_state_names_the_row,
    an_unknown_charge_status_names_the_row,
    an_unknown_refund_status_names_the_row,
    an_unknown_subscription_status_names_the_row
);

/// The shared rate budget (`hl_rate_slots`). PostgreSQL only: it exists for replicas, and a SQLite deployment
/// is one process that paces in memory.
#[tokio::test]
async fn the_shared_rate_budget_hands_out_at_most_max_slots() {
    use api_backend::store::rate_budget::{hold_used, release, take};
    use highlevel_client::pacing::{Claim, Release, Take};
    use std::time::Duration;

    let t = TestDb::new(Backend::Postgres);
    let db = db(&t);
    let lease = Duration::from_secs(30);
    let interval = Duration::from_secs(10);
    let got = |t: Take| match t {
        Take::Got(c) if c.len() == 1 => c[0],
        other => panic!("expected one slot, got {other:?}"),
    };
    let busy = |t: Take| match t {
        Take::Busy { retry_in } => retry_in,
        Take::Got(c) => panic!("expected no slot, got {c:?}"),
    };
    let claims = db
        .run(move |c| {
            let claims: Vec<Claim> = (1..=3)
                .map(|h| take(c, "L", 3, 1, lease, interval, h).map(got))
                .collect::<Result<_, _>>()?;
            // The fourth waits: a claim under way holds its slot for at least an interval more (its lease is
            // longer); another resource has a window of its own.
            let wait = busy(take(c, "L", 3, 1, lease, interval, 4)?);
            assert!(
                wait > Duration::from_secs(9) && wait <= interval,
                "{wait:?}"
            );
            got(take(c, "M", 3, 1, lease, interval, 5)?);
            Ok(claims)
        })
        .await
        .unwrap();
    assert_eq!(
        claims
            .iter()
            .map(|c| c.slot)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3,
        "three distinct slots"
    );
    // Answered: the slot stays taken for the interval (200 ms) after the release, then frees.
    let first = claims[0];
    db.run(move |c| {
        let r = Release {
            resource: "L".into(),
            claim: first,
            hold: Duration::from_millis(200),
        };
        assert_eq!(release(c, &[r])?, 1);
        assert!(busy(take(c, "L", 3, 1, lease, interval, 6)?) <= Duration::from_millis(200));
        Ok(())
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let again = db
        .run(move |c| take(c, "L", 3, 1, lease, interval, 7).map(got))
        .await
        .unwrap();
    assert_eq!(again.slot, first.slot);
    // A late release of a claim whose slot was claimed again leaves the new claim alone.
    db.run(move |c| {
        let late = Release {
            resource: "L".into(),
            claim: first,
            hold: Duration::ZERO,
        };
        assert_eq!(release(c, &[late])?, 0, "holder 1 no longer holds the slot");
        busy(take(c, "L", 3, 1, lease, interval, 8)?);
        Ok(())
    })
    .await
    .unwrap();
    // A claim whose replica died lapses with its lease.
    db.run(move |c| {
        got(take(c, "D", 1, 1, Duration::from_millis(100), interval, 9)?);
        busy(take(c, "D", 1, 1, lease, interval, 10)?);
        Ok(())
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let claims_s_t = db
        .run(move |c| {
            got(take(c, "D", 1, 1, lease, interval, 11)?);
            // Another client spent 4 of 5: with our one, hold 3 more; one is left.
            got(take(c, "N", 5, 1, lease, interval, 12)?);
            assert_eq!(hold_used(c, "N", 5, 4, None, lease)?, 3);
            got(take(c, "N", 5, 1, lease, interval, 13)?);
            busy(take(c, "N", 5, 1, lease, interval, 14)?);
            // A wider window learnt from the headers gets its new slots.
            got(take(c, "N", 7, 1, lease, interval, 15)?);
            got(take(c, "N", 7, 1, lease, interval, 16)?);
            busy(take(c, "N", 7, 1, lease, interval, 17)?);
            // HighLevel's count of 1 was made after our claim; the claim has come free since (here its lease
            // lapsed; an answer's release does the same). The count is ours, not another client's: nothing is held.
            let s = got(take(c, "S", 2, 1, Duration::from_millis(50), interval, 18)?);
            // A count as old as its hold holds nothing.
            let t = got(take(c, "T", 2, 1, lease, interval, 21)?);
            Ok((s, t))
        })
        .await
        .unwrap();
    let (s_claim, t_claim) = claims_s_t;
    tokio::time::sleep(Duration::from_millis(100)).await;
    db.run(move |c| {
        assert_eq!(hold_used(c, "S", 2, 1, Some(s_claim.at_us), lease)?, 0);
        // Counted now, the same 1 is another client's: one slot is held.
        assert_eq!(hold_used(c, "S", 2, 1, None, lease)?, 1);
        got(take(c, "S", 2, 1, lease, interval, 19)?);
        busy(take(c, "S", 2, 1, lease, interval, 20)?);
        let hold = Duration::from_millis(50);
        assert_eq!(hold_used(c, "T", 2, 2, Some(t_claim.at_us), hold)?, 0);
        // The same count, fresh: the other slot is held, until `hold` after the claim.
        assert_eq!(hold_used(c, "T", 2, 2, Some(t_claim.at_us), lease)?, 1);
        busy(take(c, "T", 2, 1, lease, interval, 22)?);
        // One query claims several slots (for the requests a replica has waiting), never past `max`.
        let slots = |t: Take| match t {
            Take::Got(c) => c
                .iter()
                .map(|c| c.slot)
                .collect::<std::collections::BTreeSet<_>>(),
            busy => panic!("expected slots, got {busy:?}"),
        };
        let first = slots(take(c, "B", 5, 3, lease, interval, 23)?);
        let rest = slots(take(c, "B", 5, 5, lease, interval, 24)?);
        assert_eq!((first.len(), rest.len()), (3, 2));
        assert!(first.is_disjoint(&rest));
        busy(take(c, "B", 5, 1, lease, interval, 25)?);
        Ok(())
    })
    .await
    .unwrap();
}
