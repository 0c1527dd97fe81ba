//! Buffered audit of token reads: the hot path hands an entry to a channel and never waits on the database;
//! a writer task inserts what has accumulated in batches. Identical reads in one batch (same caller,
//! installation, location and outcome) become one row with a `count`, so a busy caller costs a row per batch,
//! not per read.

use crate::db::Db;
use crate::metrics::Metrics;
use crate::store::audit::AuditEntry;
use shared_types::ServiceClaims;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const BUFFER: usize = 65_536;
/// How often the writer drains the buffer. The writer sleeps instead of waiting on the channel, so a read
/// never has to wake it: handing over an entry stays a few atomic operations.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// One token read, as the hot path hands it over: no string is copied for the caller or the outcome.
struct Read {
    claims: Arc<ServiceClaims>,
    installation: String,
    location: Option<String>,
    outcome: &'static str,
    at: i64,
}

#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<Read>,
    flushes: mpsc::Sender<tokio::sync::oneshot::Sender<()>>,
    metrics: Arc<Metrics>,
}

impl AuditSink {
    /// Starts the writer on the current runtime.
    pub fn start(db: Db, metrics: Arc<Metrics>) -> AuditSink {
        let (tx, rx) = mpsc::channel(BUFFER);
        let (flushes, flush_rx) = mpsc::channel(16);
        tokio::spawn(write_batches(db, rx, flush_rx));
        AuditSink {
            tx,
            flushes,
            metrics,
        }
    }

    /// Writes everything recorded so far (at shutdown, and for tests and benchmarks that count rows).
    pub async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.flushes.send(done).await.is_ok() {
            let _ = wait.await;
        }
    }

    pub fn record(
        &self,
        claims: &Arc<ServiceClaims>,
        installation: &str,
        location: Option<&str>,
        outcome: &'static str,
    ) {
        let read = Read {
            claims: claims.clone(),
            installation: installation.to_owned(),
            location: location.map(str::to_owned),
            outcome,
            at: crate::store::now_ms(),
        };
        if self.tx.try_send(read).is_err() {
            self.metrics.audit_dropped.inc();
            tracing::warn!(installation, caller = %claims.iss, "audit buffer full: entry dropped");
        }
    }
}

async fn write_batches(
    db: Db,
    mut rx: mpsc::Receiver<Read>,
    mut flushes: mpsc::Receiver<tokio::sync::oneshot::Sender<()>>,
) {
    let mut reads = Vec::new();
    loop {
        let waiting = tokio::select! {
            _ = tokio::time::sleep(FLUSH_EVERY) => None,
            Some(done) = flushes.recv() => Some(done),
        };
        let closed = loop {
            match rx.try_recv() {
                Ok(r) => reads.push(r),
                Err(mpsc::error::TryRecvError::Empty) => break false,
                Err(mpsc::error::TryRecvError::Disconnected) => break true,
            }
        };
        if !reads.is_empty() {
            let batch = coalesce(std::mem::take(&mut reads));
            write(&db, batch).await;
        }
        if let Some(done) = waiting {
            let _ = done.send(());
        }
        if closed {
            return;
        }
    }
}

/// Writes a batch, retried for a minute while the database is away (a restart or a failover), so an outage
/// loses no audit rows; reads meanwhile wait in the bounded channel.
async fn write(db: &Db, batch: Vec<AuditEntry>) {
    let n = batch.len();
    let result = db
        .run_until_reachable(Duration::from_secs(60), move |c| {
            crate::store::audit::insert_batch(c, &batch)
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, rows = n, "audit batch could not be written: dropped");
    }
}

/// Merges identical reads into rows, keeping the first time and the order of first appearance. Linear in the
/// batch (a full buffer is 65 536 reads).
fn coalesce(reads: Vec<Read>) -> Vec<AuditEntry> {
    let mut out: Vec<AuditEntry> = Vec::with_capacity(reads.len().min(16));
    let mut index: std::collections::HashMap<
        (String, String, Option<String>, &'static str),
        usize,
    > = std::collections::HashMap::new();
    for r in reads {
        let key = (r.installation, r.claims.iss.clone(), r.location, r.outcome);
        match index.get(&key) {
            Some(&i) => out[i].count += 1,
            None => {
                out.push(AuditEntry {
                    caller: key.1.clone(),
                    installation_id: key.0.clone(),
                    location_id: key.2.clone(),
                    outcome: r.outcome.to_owned(),
                    at: r.at,
                    count: 1,
                });
                index.insert(key, out.len() - 1);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(caller: &str, outcome: &'static str, at: i64) -> Read {
        let claims = ServiceClaims {
            iss: caller.into(),
            aud: "oauth-backend".into(),
            exp: 0,
            iat: None,
            installations: None,
        };
        Read {
            claims: Arc::new(claims),
            installation: "i".into(),
            location: None,
            outcome,
            at,
        }
    }

    #[test]
    fn identical_reads_share_a_row_and_nothing_is_lost() {
        let rows = coalesce(vec![
            entry("a", "served", 1),
            entry("b", "served", 2),
            entry("a", "served", 3),
            entry("a", "caller_not_allowed", 4),
        ]);
        let summary: Vec<(&str, &str, i64, i64)> = rows
            .iter()
            .map(|r| (r.caller.as_str(), r.outcome.as_str(), r.at, r.count))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a", "served", 1, 2),
                ("b", "served", 2, 1),
                ("a", "caller_not_allowed", 4, 1)
            ]
        );
        assert_eq!(rows.iter().map(|r| r.count).sum::<i64>(), 4);
    }
}
