//! Every HighLevel webhook, forwarded to the app's own endpoints (WEBHOOK_FORWARD_URLS), signed the Standard
//! Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 with a `whsec_` secret).
//!
//! The webhook route writes one outbox row per endpoint in the transaction that records the webhook as
//! processed, after acting on it (so an INSTALL reaches the app once its installation exists). A sender in every
//! process takes due rows with a database claim (one sender per row across replicas), posts them, and on failure
//! waits by WEBHOOK_FORWARD_RETRY until the row is delivered or, past the retry window, dead (listed and
//! replayed through `/api/webhooks/deliveries` or the CLI). Delivery is at least once; order is not promised,
//! and each body carries HighLevel's timestamp.

use crate::db::{Db, DbConn, DbError};
use crate::settings::{ForwardTarget, RetrySchedule, Settings};
use crate::store::installations::install_key;
use crate::store::webhook_deliveries::{self as outbox, Delivery, DeliveryState};
use crate::store::{self, now_ms};
use futures::StreamExt as _;
use secrecy::ExposeSecret as _;
use serde_json::{json, Value};
use shared_types::AuthClass;
use std::sync::Arc;
use std::time::Duration;

/// Attempts one pass makes at once. A pass claims no more than it attempts at once, so every claim is used
/// within its lease (one attempt's timeout plus a margin): a claim that lapsed while its row waited its turn
/// would let another replica send the same event.
const CONCURRENCY: usize = 16;
const BATCH: i64 = CONCURRENCY as i64;
/// A claim outlives the longest attempt by this much, so no second sender starts while the first still may.
const LEASE_MARGIN_MS: i64 = 30_000;

pub struct Forwarder {
    targets: Vec<ForwardTarget>,
    signer: Option<standardwebhooks::Webhook>,
    http: reqwest::Client,
    retry: RetrySchedule,
    lease_ms: i64,
    /// Woken when this process queued deliveries: they are sent at once, not at the next poll.
    pub wake: tokio::sync::Notify,
}

/// A received webhook, as the outbox rows are built from it.
pub struct Received<'a> {
    pub webhook_id: &'a str,
    pub event_type: &'a str,
    pub payload: &'a Value,
    /// HighLevel's timestamp (epoch ms), or when it was received if HighLevel sent none.
    pub occurred_at: i64,
}

/// Which installation, location and company an event belongs to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Owner {
    pub installation_id: Option<String>,
    pub location_id: Option<String>,
    pub company_id: Option<String>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v[key].as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The event's location and company as HighLevel's bodies name them: `locationId` (most events), or
/// `altId` with `altType: location` (invoices, orders), and `companyId`.
fn named(payload: &Value) -> (Option<String>, Option<String>) {
    let location = text(payload, "locationId").or_else(|| {
        (payload["altType"].as_str() == Some("location"))
            .then(|| text(payload, "altId"))
            .flatten()
    });
    (location, text(payload, "companyId"))
}

/// The event's owner: the location's own installation, else an agency install that lists the location, else
/// the company's agency install.
pub fn owner(conn: &mut DbConn, payload: &Value) -> Result<Owner, DbError> {
    let (location_id, mut company_id) = named(payload);
    let mut found = None;
    if let Some(l) = &location_id {
        found = store::installations::find_by_key(
            conn,
            &install_key(AuthClass::Location, "", Some(l)),
        )?;
        if found.is_none() {
            found = store::installations::companies_with_location(conn, l)?
                .into_iter()
                .next();
        }
    }
    if found.is_none() {
        if let Some(c) = &company_id {
            found =
                store::installations::find_by_key(conn, &install_key(AuthClass::Company, c, None))?;
        }
    }
    if company_id.is_none() {
        company_id = found
            .as_ref()
            .map(|i| i.company_id.clone())
            .filter(|c| !c.is_empty());
    }
    Ok(Owner {
        installation_id: found.map(|i| i.id),
        location_id,
        company_id,
    })
}

impl Forwarder {
    pub fn new(settings: &Settings) -> anyhow::Result<Forwarder> {
        let signer = settings
            .webhook_forward_secret
            .as_ref()
            .map(|s| standardwebhooks::Webhook::new(s.expose_secret()))
            .transpose()
            .map_err(|_| {
                anyhow::anyhow!("WEBHOOK_FORWARD_SECRET is not a Standard Webhooks secret")
            })?;
        let timeout = Duration::from_millis(settings.webhook_forward_timeout_ms);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            // A redirect is not a delivery: the endpoint is configured, not discovered.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                anyhow::anyhow!("cannot build the HTTP client for webhook forwarding: {e}")
            })?;
        Ok(Forwarder {
            targets: settings.webhook_forward_urls.clone(),
            signer,
            http,
            retry: settings.webhook_forward_retry,
            lease_ms: settings.webhook_forward_timeout_ms as i64 + LEASE_MARGIN_MS,
            wake: tokio::sync::Notify::new(),
        })
    }

    /// Whether this process sends forwards (a signing secret is configured).
    pub fn sends(&self) -> bool {
        self.signer.is_some()
    }

    /// The outbox rows for one received webhook: one per endpoint that wants its type, all with one event id.
    pub fn deliveries(&self, event: &Received, owner: &Owner, now: i64) -> Vec<Delivery> {
        let targets: Vec<&ForwardTarget> = self
            .targets
            .iter()
            .filter(|t| t.wants(event.event_type))
            .collect();
        if targets.is_empty() || self.signer.is_none() {
            return Vec::new();
        }
        let event_id = format!("msg_{:032x}", rand::random::<u128>());
        let timestamp = chrono::DateTime::from_timestamp_millis(event.occurred_at)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let body = json!({
            "type": event.event_type,
            "timestamp": timestamp,
            "webhook_id": event.webhook_id,
            "installation_id": owner.installation_id,
            "location_id": owner.location_id,
            "company_id": owner.company_id,
            "data": event.payload,
        })
        .to_string();
        targets
            .into_iter()
            .map(|t| Delivery {
                id: format!("whd_{:032x}", rand::random::<u128>()),
                event_id: event_id.clone(),
                webhook_id: event.webhook_id.to_owned(),
                event_type: event.event_type.to_owned(),
                url: t.url.clone(),
                installation_id: owner.installation_id.clone(),
                location_id: owner.location_id.clone(),
                company_id: owner.company_id.clone(),
                payload: body.clone(),
                state: DeliveryState::Pending,
                attempts: 0,
                next_attempt_at: now,
                retry_from: now,
                last_status: None,
                last_error: None,
                occurred_at: event.occurred_at,
                created_at: now,
                delivered_at: None,
                updated_at: now,
            })
            .collect()
    }

    /// One attempt: the endpoint's status when it answered 2xx, else the status (if any) and why not.
    async fn attempt(&self, d: &Delivery) -> Result<i32, (Option<i32>, String)> {
        let signer = self
            .signer
            .as_ref()
            .ok_or((None, "no WEBHOOK_FORWARD_SECRET to sign with".to_owned()))?;
        let ts = chrono::Utc::now().timestamp();
        let signature = signer
            .sign(&d.event_id, ts, d.payload.as_bytes())
            .map_err(|e| (None, e.to_string()))?;
        let mut req = self
            .http
            .post(&d.url)
            .header("content-type", "application/json")
            .header("webhook-id", &d.event_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature);
        // For routing without parsing the body; the signed truth is the body's.
        for (name, value) in [
            ("x-installation-id", &d.installation_id),
            ("x-location-id", &d.location_id),
            ("x-company-id", &d.company_id),
        ] {
            if let Some(v) = value {
                req = req.header(name, v);
            }
        }
        match req.body(d.payload.clone()).send().await {
            Ok(res) if res.status().is_success() => Ok(res.status().as_u16() as i32),
            Ok(res) => Err((
                Some(res.status().as_u16() as i32),
                format!("the endpoint answered {}", res.status()),
            )),
            // Without the URL: a query may hold the app's own token.
            Err(e) => Err((None, e.without_url().to_string())),
        }
    }

    /// When a delivery that failed its `failures`-th attempt is tried again, or `None` when it is dead.
    fn retry_at(&self, d: &Delivery, failures: i32, now: i64) -> Option<i64> {
        let at = now + self.retry.delay_ms(failures);
        (at <= d.retry_from.saturating_add(self.retry.total_ms)).then_some(at)
    }
}

/// One pass: claims what is due and attempts it. Answers how many rows were taken.
pub async fn run_once(db: &Db, fwd: &Forwarder, metrics: &crate::metrics::Metrics) -> usize {
    let now = now_ms();
    let lease = fwd.lease_ms;
    let claimed = db
        .run(move |c| {
            let mut mine = Vec::new();
            for d in outbox::due(c, now, BATCH)? {
                if outbox::claim(c, &d.id, now, lease)? {
                    mine.push(d);
                }
            }
            Ok(mine)
        })
        .await;
    let claimed = match claimed {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "webhook forwards: cannot read the outbox");
            return 0;
        }
    };
    let taken = claimed.len();
    futures::stream::iter(claimed)
        .for_each_concurrent(CONCURRENCY, |d| async move {
            let outcome = fwd.attempt(&d).await;
            let now = now_ms();
            let id = d.id.clone();
            let stored = match outcome {
                Ok(status) => {
                    metrics.forward("delivered");
                    tracing::info!(delivery = %d.id, kind = %d.event_type, "webhook forwarded");
                    db.run(move |c| outbox::delivered(c, &id, status, now)).await
                }
                Err((status, why)) => {
                    let retry_at = fwd.retry_at(&d, d.attempts + 1, now);
                    if retry_at.is_some() {
                        metrics.forward("retry");
                        tracing::warn!(delivery = %d.id, kind = %d.event_type, attempts = d.attempts + 1, error = %why, "webhook not forwarded; will retry");
                    } else {
                        metrics.forward("dead");
                        tracing::error!(delivery = %d.id, kind = %d.event_type, attempts = d.attempts + 1, error = %why, "webhook not forwarded within the retry window; dead until replayed");
                    }
                    db.run(move |c| outbox::failed(c, &id, status, &why, retry_at, now))
                        .await
                }
            };
            // The claim lapses by itself: the row is attempted again after the lease.
            if let Err(e) = stored {
                tracing::warn!(delivery = %d.id, error = %e, "webhook forward outcome not recorded");
            }
        })
        .await;
    taken
}

/// Sends forwards until the process stops: at once when this process queued some, else every `interval`.
pub async fn run(
    db: Db,
    fwd: Arc<Forwarder>,
    metrics: Arc<crate::metrics::Metrics>,
    interval: Duration,
) {
    loop {
        // A full batch may have more behind it: go again at once.
        if run_once(&db, &fwd, &metrics).await < BATCH as usize {
            tokio::select! {
                _ = fwd.wake.notified() => {}
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}
