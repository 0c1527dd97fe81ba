//! Buffered audit of token reads: the hot path hands an entry to a channel and never waits on the database;
//! a writer task inserts what has accumulated in batches.

use crate::db::Db;
use crate::metrics::Metrics;
use crate::store::audit::AuditEntry;
use std::sync::Arc;
use tokio::sync::mpsc;

const BUFFER: usize = 65_536;
const BATCH: usize = 500;

#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<AuditEntry>,
    metrics: Arc<Metrics>,
}

impl AuditSink {
    /// Starts the writer on the current runtime.
    pub fn start(db: Db, metrics: Arc<Metrics>) -> AuditSink {
        let (tx, rx) = mpsc::channel(BUFFER);
        tokio::spawn(write_batches(db, rx));
        AuditSink { tx, metrics }
    }

    pub fn record(&self, caller: &str, installation: &str, location: Option<&str>, outcome: &str) {
        let entry = AuditEntry {
            caller: caller.to_owned(),
            installation_id: installation.to_owned(),
            location_id: location.map(str::to_owned),
            outcome: outcome.to_owned(),
            at: crate::store::now_ms(),
        };
        if self.tx.try_send(entry).is_err() {
            self.metrics.audit_dropped.inc();
            tracing::warn!(installation, caller, "audit buffer full: entry dropped");
        }
    }
}

async fn write_batches(db: Db, mut rx: mpsc::Receiver<AuditEntry>) {
    let mut buf = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut buf, BATCH).await > 0 {
        let batch = std::mem::take(&mut buf);
        let n = batch.len();
        let mut result = db
            .run({
                let b = batch.clone();
                move |c| crate::store::audit::insert_batch(c, &b)
            })
            .await;
        if result.is_err() {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            result = db
                .run(move |c| crate::store::audit::insert_batch(c, &batch))
                .await;
        }
        if let Err(e) = result {
            tracing::error!(error = %e, entries = n, "audit batch could not be written");
        }
    }
}
