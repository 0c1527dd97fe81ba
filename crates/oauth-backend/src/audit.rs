//! Buffered audit of token reads: the hot path never waits on the database. Each server thread counts its
//! reads in a map of its own (under a lock only the writer also takes, every 100 ms): identical reads (same
//! caller, installation, location and outcome) add to one entry's `count`, so a busy caller costs a counter
//! increment per read and a row per batch, with no string copied, no channel and no memory shared between
//! cores on the way. A writer task takes every thread's map each 100 ms and inserts the rows. The bound on what
//! is buffered is global: one atomic count of distinct entries across every thread, written only when a new
//! entry is added (and when the writer takes them), never for a read that adds to an entry already held.

use crate::db::Db;
use crate::metrics::Metrics;
use crate::store::audit::{AuditEntry, Outcome};
use shared_types::ServiceClaims;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Distinct entries (caller, installation, location, outcome) all threads together hold between two batches at
/// most; past it a new entry is dropped and counted (`oauth_audit_dropped_total`).
const BUFFER: usize = 65_536;
/// How often the writer takes the threads' entries. The writer sleeps instead of being woken, so a read
/// never has to wake it.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Reads of one installation by one caller, with one location and outcome, since the last batch.
struct Pending {
    claims: Arc<ServiceClaims>,
    location: Option<String>,
    outcome: Outcome,
    /// When the first of them happened (epoch ms, the row's `at`).
    at: i64,
    /// The same, on the monotonic clock: rows of one batch are written in the order reads first happened,
    /// whichever thread served them.
    first: Instant,
    count: i64,
}

impl Pending {
    fn is(&self, claims: &Arc<ServiceClaims>, location: Option<&str>, outcome: Outcome) -> bool {
        self.outcome == outcome
            && self.location.as_deref() == location
            && (Arc::ptr_eq(&self.claims, claims) || self.claims.iss == claims.iss)
    }
}

/// One thread's reads since the last batch, by installation.
#[derive(Default)]
struct Shard {
    by_installation: HashMap<String, Vec<Pending>, foldhash::fast::RandomState>,
    /// Entries this shard holds (each also counted in [`Shards::buffered`]).
    distinct: usize,
}

#[derive(Default)]
struct Shards {
    threads: thread_local::ThreadLocal<Mutex<Shard>>,
    /// Distinct entries held by every shard together, bounded by [`BUFFER`]. A shard adds to it under its own
    /// lock before it adds an entry, and the writer takes a shard's count off under the same lock as it takes
    /// the shard's entries, so it never counts less than is held.
    buffered: AtomicUsize,
}

impl Shards {
    /// Every thread's entries, taken (the maps are left empty).
    fn take(&self) -> Vec<(String, Pending)> {
        let mut out = Vec::new();
        for shard in self.threads.iter() {
            let taken = {
                let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
                let taken = std::mem::take(&mut *shard);
                self.buffered.fetch_sub(taken.distinct, Ordering::Relaxed);
                taken
            };
            for (installation, list) in taken.by_installation {
                out.extend(list.into_iter().map(|p| (installation.clone(), p)));
            }
        }
        out
    }
}

#[derive(Clone)]
pub struct AuditSink {
    /// The writer holds the other reference: when only it is left, every sink is gone and it stops.
    shards: Arc<Shards>,
    flushes: mpsc::Sender<tokio::sync::oneshot::Sender<()>>,
    metrics: Arc<Metrics>,
}

impl AuditSink {
    /// Starts the writer on the current runtime.
    pub fn start(db: Db, metrics: Arc<Metrics>) -> AuditSink {
        let shards = Arc::new(Shards::default());
        let (flushes, flush_rx) = mpsc::channel(16);
        tokio::spawn(write_batches(db, shards.clone(), flush_rx));
        AuditSink {
            shards,
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
        outcome: Outcome,
    ) {
        let mut shard = self
            .shards
            .threads
            .get_or_default()
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = shard
            .by_installation
            .get_mut(installation)
            .and_then(|list| list.iter_mut().find(|p| p.is(claims, location, outcome)))
        {
            p.count += 1;
            return;
        }
        // A place in the global bound, reserved only for a new entry (the common read adds to one already held
        // and writes nothing shared).
        let reserved =
            self.shards
                .buffered
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < BUFFER).then_some(n + 1)
                });
        if reserved.is_err() {
            drop(shard);
            self.metrics.audit_dropped.inc();
            tracing::warn!(installation, caller = %claims.iss, "audit buffer full: entry dropped");
            return;
        }
        shard.distinct += 1;
        shard
            .by_installation
            .entry(installation.to_owned())
            .or_default()
            .push(Pending {
                claims: claims.clone(),
                location: location.map(str::to_owned),
                outcome,
                at: crate::store::now_ms(),
                first: Instant::now(),
                count: 1,
            });
    }
}

async fn write_batches(
    db: Db,
    shards: Arc<Shards>,
    mut flushes: mpsc::Receiver<tokio::sync::oneshot::Sender<()>>,
) {
    loop {
        let waiting = tokio::select! {
            _ = tokio::time::sleep(FLUSH_EVERY) => None,
            Some(done) = flushes.recv() => Some(done),
        };
        // Read before taking: a sink dropped after this leaves nothing behind that the take below misses.
        let closed = Arc::strong_count(&shards) == 1;
        let reads = shards.take();
        if !reads.is_empty() {
            write(&db, coalesce(reads)).await;
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
/// loses no audit rows; reads meanwhile add up in the threads' maps (bounded together, [`BUFFER`]).
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

/// Merges the threads' entries into rows (identical reads served by different threads become one), in the
/// order reads first happened, each row with the first time and the sum of the counts.
fn coalesce(mut reads: Vec<(String, Pending)>) -> Vec<AuditEntry> {
    reads.sort_by_key(|(_, p)| p.first);
    let mut out: Vec<AuditEntry> = Vec::with_capacity(reads.len());
    let mut index: HashMap<(String, String, Option<String>, Outcome), usize> =
        HashMap::with_capacity(reads.len());
    for (installation, p) in reads {
        let key = (installation, p.claims.iss.clone(), p.location, p.outcome);
        match index.get(&key) {
            Some(&i) => out[i].count += p.count,
            None => {
                out.push(AuditEntry {
                    caller: key.1.clone(),
                    installation_id: key.0.clone(),
                    location_id: key.2.clone(),
                    outcome: p.outcome,
                    at: p.at,
                    count: p.count,
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
    use shared_types::ProblemCode;

    const SERVED: Outcome = Outcome::Served;

    fn claims(caller: &str) -> Arc<ServiceClaims> {
        Arc::new(ServiceClaims {
            iss: caller.into(),
            aud: "oauth-backend".into(),
            exp: 0,
            iat: None,
            installations: None,
        })
    }

    fn sink() -> AuditSink {
        AuditSink {
            shards: Arc::default(),
            flushes: mpsc::channel(1).0,
            metrics: Arc::default(),
        }
    }

    fn summary(rows: &[AuditEntry]) -> Vec<(&str, &str, Option<&str>, i64)> {
        rows.iter()
            .map(|r| {
                (
                    r.caller.as_str(),
                    r.outcome.as_str(),
                    r.location_id.as_deref(),
                    r.count,
                )
            })
            .collect()
    }

    #[test]
    fn identical_reads_share_a_row_and_nothing_is_lost() {
        let sink = sink();
        let (a, a_again, b) = (claims("a"), claims("a"), claims("b"));
        sink.record(&a, "i", None, SERVED);
        sink.record(&b, "i", None, SERVED);
        // Another token of the same caller: the same row.
        sink.record(&a_again, "i", None, SERVED);
        sink.record(
            &a,
            "i",
            None,
            Outcome::Refused(ProblemCode::CallerNotAllowed),
        );
        sink.record(&a, "i", Some("L1"), SERVED);
        let rows = coalesce(sink.shards.take());
        assert_eq!(
            summary(&rows),
            vec![
                ("a", "served", None, 2),
                ("b", "served", None, 1),
                ("a", "caller_not_allowed", None, 1),
                ("a", "served", Some("L1"), 1),
            ]
        );
        assert!(sink.shards.take().is_empty(), "taken once");
    }

    #[test]
    fn reads_served_by_different_threads_merge_in_the_order_they_happened() {
        let sink = sink();
        let a = claims("a");
        sink.record(&a, "i", None, SERVED);
        std::thread::scope(|s| {
            s.spawn(|| {
                sink.record(&a, "i", None, SERVED);
                sink.record(&a, "j", None, SERVED);
            });
        });
        sink.record(&a, "k", None, SERVED);
        let rows = coalesce(sink.shards.take());
        let seen: Vec<(&str, i64)> = rows
            .iter()
            .map(|r| (r.installation_id.as_str(), r.count))
            .collect();
        assert_eq!(seen, vec![("i", 2), ("j", 1), ("k", 1)]);
    }

    #[test]
    fn a_full_buffer_drops_new_entries_and_counts_them() {
        let sink = sink();
        let a = claims("a");
        for i in 0..BUFFER {
            sink.record(&a, &format!("i{i}"), None, SERVED);
        }
        sink.record(&a, "one-too-many", None, SERVED);
        // An entry already held still counts.
        sink.record(&a, "i0", None, SERVED);
        assert_eq!(sink.metrics.audit_dropped.get(), 1);
        let rows = coalesce(sink.shards.take());
        assert_eq!(rows.len(), BUFFER);
        assert_eq!(rows[0].count, 2);
    }

    /// The bound holds for all server threads together: four threads each offering half the buffer's worth of
    /// new entries end with exactly `BUFFER` held, the rest dropped and counted; reads of entries already held
    /// still count; once the writer has taken the entries there is room again.
    #[test]
    fn the_bound_is_shared_by_every_thread() {
        const THREADS: usize = 4;
        let sink = sink();
        let a = claims("a");
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (sink, a) = (&sink, &a);
                s.spawn(move || {
                    for i in 0..BUFFER / 2 {
                        sink.record(a, &format!("t{t}-i{i}"), None, SERVED);
                    }
                    // Held or dropped, a repeat never adds an entry.
                    sink.record(a, &format!("t{t}-i0"), None, SERVED);
                });
            }
        });
        let rows = coalesce(sink.shards.take());
        assert_eq!(rows.len(), BUFFER, "entries held by all threads together");
        // Every read is either in a row's count or counted as dropped.
        let reads = (THREADS * (BUFFER / 2 + 1)) as u64;
        let kept: i64 = rows.iter().map(|r| r.count).sum();
        assert_eq!(kept as u64 + sink.metrics.audit_dropped.get(), reads);
        assert!(sink.metrics.audit_dropped.get() >= (THREADS * (BUFFER / 2) - BUFFER) as u64);
        // Taken: the whole bound is free again.
        for i in 0..BUFFER {
            sink.record(&a, &format!("again-{i}"), None, SERVED);
        }
        assert_eq!(coalesce(sink.shards.take()).len(), BUFFER);
    }
}
