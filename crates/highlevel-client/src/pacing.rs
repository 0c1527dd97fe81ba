//! Staying under HighLevel's rate limit without wasting it (docs/design.md, pacing).
//!
//! Each resource (a location, or a company for Company calls) has a sliding window of `max` requests per
//! `interval`. A request holds one of `max` slots from the moment it is sent until `interval` after its answer
//! arrived: HighLevel counts a request when it receives it, which is between the two, so at most `max`
//! requests can ever fall within one of HighLevel's windows. Waiters are served first come, first served
//! (tokio's semaphore is fair). The window is seeded with 100 per 10 s and corrected from every answer's
//! `X-RateLimit-*` headers: a `Remaining` lower than our own count means another client (a second replica)
//! spends the same budget, and its share is held for an interval too. A 429 means the model was wrong: the
//! whole window is held for an interval and the 429 is counted.
//!
//! **Replicas.** With a [`SharedBudget`] (api-backend keeps one in PostgreSQL) the window is shared by every
//! replica: after its local slot, a request also takes one of the resource's `max` slots in the shared budget
//! (one short round trip, no lock held across the HighLevel call). A shared slot is claimed for a lease
//! (the HighLevel timeout plus an interval, so a replica that dies mid-call frees its slots on its own) and,
//! once the answer is in, kept for one interval from then, like a local one; those releases are written in
//! batches by a background task, off the request's path. Within one process only one request per resource
//! asks the shared budget at a time (the others queue on the local, fair semaphore and gate); it claims, in
//! the same query, a slot for each request of the process waiting at the gate (up to 32), which take them in
//! turn without a query, and when none is free it sleeps until the time the budget says the next slot frees.
//! So a window's turn costs each replica a few queries, not one per slot, and no slot waits behind a queue of
//! round trips. The headers' correction is compared there with the slots taken
//! since the request's claim, on the budget's own clock (HighLevel counted after the claim). When the shared
//! budget cannot be reached, requests fall back to the local window and a warning is logged.

use crate::error::HlError;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// A boxed future, as the [`SharedBudget`] trait returns (it is used as a trait object).
pub type BudgetFuture<T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send>>;

/// One claimed slot of a shared window: which slot, the claim's own mark (a slot whose lease lapsed and
/// was claimed again is not released by the late first holder), and when it was claimed by the budget's own
/// clock (microseconds since the Unix epoch): the request reached HighLevel after that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub slot: i32,
    pub holder: i64,
    pub at_us: i64,
}

/// What [`SharedBudget::take`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    /// At least one claim, at most as many as were asked for.
    Got(Vec<Claim>),
    /// Every slot is taken; the earliest frees in about `retry_in` (a claim under way may free sooner).
    Busy { retry_in: Duration },
}

/// A claim ended by an answer: its slot stays taken for `hold` from now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub resource: String,
    pub claim: Claim,
    pub hold: Duration,
}

/// A rate budget every replica shares. Errors are strings for the log: the pacer falls back to its local
/// window on any of them.
pub trait SharedBudget: Send + Sync + 'static {
    /// Claims up to `want` of the first `max` slots of `resource` until `lease` from now. When none is free,
    /// says when the next frees: a claim whose answer is not in yet holds its slot for at least `interval` more.
    fn take(
        &self,
        resource: &str,
        max: u32,
        want: u32,
        lease: Duration,
        interval: Duration,
    ) -> BudgetFuture<Take>;
    /// Ends claims; each slot stays taken for its `hold` from now.
    fn release(&self, releases: Vec<Release>) -> BudgetFuture<()>;
    /// HighLevel had counted `used` requests of the window when it received a request claimed at `since` (the
    /// claim's [`Claim::at_us`]; `None`: now). Every request HighLevel counted then holds, or held, a slot still
    /// taken at `since`; so take free slots until at least `used` of the first `max` slots are taken or were
    /// taken at any time after `since`, each until `hold` after `since`. Answers how many it took. (Measured
    /// from the claim on the budget's clock, not from a moment this process computes: slots that merely came
    /// free between the claim and this statement are never held again as if another client had spent them.)
    fn hold_used(
        &self,
        resource: &str,
        max: u32,
        used: u32,
        since: Option<i64>,
        hold: Duration,
    ) -> BudgetFuture<usize>;
}

/// The longest a request waiting for a shared slot sleeps before asking again (a lease may lapse, or another
/// client's correction be lifted, before the time the budget gave).
const SHARED_NAP_MAX: Duration = Duration::from_millis(1000);

/// The most slots one query claims at once (for the requests of this process waiting on the resource).
const CLAIM_BATCH: u32 = 32;

/// How long a slot claimed for a waiting request may wait for it: one that waited longer (its request gave up)
/// is handed back rather than sent on a lease partly spent.
const SPARE_FRESH: Duration = Duration::from_millis(1000);

enum BudgetNote {
    /// A claim ended at the instant given: its hold counts from then, however late the note is written.
    Release(Release, Instant),
    HoldUsed {
        resource: String,
        max: u32,
        used: u32,
        /// The claim of the request whose answer carried the count (`None`: now).
        since: Option<i64>,
        /// Held until this much after `since`.
        hold: Duration,
    },
}

struct Shared {
    budget: Arc<dyn SharedBudget>,
    lease: Duration,
    notes: mpsc::Sender<BudgetNote>,
    /// A warning is logged once per fall-back period, not once per request.
    warned: AtomicBool,
}

#[derive(Debug, Clone)]
pub struct PacingConfig {
    pub max: u32,
    pub interval: Duration,
    /// The longest a request may wait for room; past it the caller gets `RateLimited` with a retry time.
    pub max_wait: Duration,
    /// Once the daily budget is spent, requests fail at once for this long before one probe is let through.
    pub daily_probe_after: Duration,
}

impl Default for PacingConfig {
    fn default() -> Self {
        PacingConfig {
            max: 100,
            interval: Duration::from_millis(10_000),
            max_wait: Duration::from_secs(30),
            daily_probe_after: Duration::from_secs(300),
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct PacingStats {
    pub sent: AtomicU64,
    /// Requests that had to wait for room.
    pub waited: AtomicU64,
    pub waited_ms: AtomicU64,
    /// 429s HighLevel answered anyway.
    pub throttled: AtomicU64,
    /// Requests refused because waiting would exceed the bound.
    pub wait_bound_exceeded: AtomicU64,
    pub daily_limit_refusals: AtomicU64,
    /// Requests that went out on the local window only because the shared budget could not be reached.
    pub shared_unreachable: AtomicU64,
    /// Slots held because HighLevel counted more requests in the window than this pacer (or, shared, every
    /// replica) had sent: another client's share. Steadily rising with no other client means a wrong model.
    pub held_for_others: AtomicU64,
}

struct Bucket {
    slots: Arc<Semaphore>,
    state: Mutex<BucketState>,
    /// One request per resource asks the shared budget at a time (tokio's mutex is fair). It claims a slot
    /// for every request of this process waiting for the gate too (up to [`CLAIM_BATCH`]) and leaves the
    /// others here, with when they were claimed; each later holder of the gate takes one before asking.
    gate: tokio::sync::Mutex<Vec<(Claim, Instant)>>,
    /// Requests of this process wanting a shared slot of the resource (holding the gate or waiting for it).
    asking: AtomicU64,
}

/// Counts a request in [`Bucket::asking`] while it lives.
struct Asking<'a>(&'a AtomicU64);

impl<'a> Asking<'a> {
    fn new(n: &'a AtomicU64) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Asking(n)
    }
}

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

struct BucketState {
    max: u32,
    interval: Duration,
    daily_spent_until: Option<Instant>,
}

/// One request's place in a window. Dropping it (or [`Pacer::observe`]) keeps the place taken for one
/// interval more, then frees it.
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    interval: Duration,
    /// The shared slot, and where to send its release.
    shared: Option<(Release, mpsc::Sender<BudgetNote>)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(p) = self.permit.take() {
            hold_for(vec![p], self.interval);
        }
        if let Some((mut release, notes)) = self.shared.take() {
            release.hold = self.interval;
            // A full queue only means the claim runs to its lease: later than needed, never too early.
            let _ = notes.try_send(BudgetNote::Release(release, Instant::now()));
        }
    }
}

/// Keeps permits taken for `interval`, then frees them.
fn hold_for(permits: Vec<OwnedSemaphorePermit>, interval: Duration) {
    if permits.is_empty() {
        return;
    }
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            tokio::time::sleep(interval).await;
            drop(permits);
        });
    }
}

/// What an answer's `X-RateLimit-*` headers say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateHeaders {
    pub max: Option<u32>,
    pub remaining: Option<u32>,
    pub interval_ms: Option<u64>,
    pub daily_remaining: Option<u64>,
}

impl RateHeaders {
    pub fn read(headers: &reqwest::header::HeaderMap) -> RateHeaders {
        fn num<T: std::str::FromStr>(h: &reqwest::header::HeaderMap, name: &str) -> Option<T> {
            h.get(name)?.to_str().ok()?.trim().parse().ok()
        }
        RateHeaders {
            max: num(headers, "x-ratelimit-max"),
            remaining: num(headers, "x-ratelimit-remaining"),
            interval_ms: num(headers, "x-ratelimit-interval-milliseconds"),
            daily_remaining: num(headers, "x-ratelimit-daily-remaining"),
        }
    }
}

pub struct Pacer {
    cfg: PacingConfig,
    /// One bucket per resource (location or company) called lately: bounded, and forgotten after an idle hour
    /// (HighLevel's headers teach a new bucket its window again).
    buckets: moka::sync::Cache<String, Arc<Bucket>>,
    pub stats: Arc<PacingStats>,
    /// Cancelled when the process is stopping: requests still waiting for room are refused at once (with a
    /// short retry time: another replica, or this one restarted, can serve them), so they can be answered and
    /// their work released before the process exits.
    stopping: CancellationToken,
    shared: Option<Shared>,
}

/// How soon a request refused because the process is stopping should be retried.
pub const RETRY_AFTER_STOP: Duration = Duration::from_secs(1);

impl Pacer {
    pub fn new(cfg: PacingConfig) -> Pacer {
        Pacer {
            cfg,
            buckets: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
            stats: Arc::new(PacingStats::default()),
            stopping: CancellationToken::new(),
            shared: None,
        }
    }

    /// A pacer whose windows every replica shares through `budget`. A claim lapses after `lease` unless its
    /// answer came first (give it the HighLevel timeout plus one interval). Spawns the task that writes
    /// releases: call it inside a tokio runtime.
    pub fn shared(cfg: PacingConfig, budget: Arc<dyn SharedBudget>, lease: Duration) -> Pacer {
        let (notes, rx) = mpsc::channel(16_384);
        let pacer = Pacer::new(cfg);
        tokio::spawn(write_notes(budget.clone(), rx, pacer.stats.clone()));
        Pacer {
            shared: Some(Shared {
                budget,
                lease,
                notes,
                warned: AtomicBool::new(false),
            }),
            ..pacer
        }
    }

    /// Whether the windows are shared with other replicas.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// The process is stopping: every request waiting for room now, and any that would have to wait from now
    /// on, gets `RateLimited` with [`RETRY_AFTER_STOP`] instead of waiting.
    pub fn stop_waiting(&self) {
        self.stopping.cancel();
    }

    pub fn config(&self) -> &PacingConfig {
        &self.cfg
    }

    fn bucket(&self, resource: &str) -> Arc<Bucket> {
        self.buckets.get_with_by_ref(resource, || {
            Arc::new(Bucket {
                slots: Arc::new(Semaphore::new(self.cfg.max as usize)),
                state: Mutex::new(BucketState {
                    max: self.cfg.max,
                    interval: self.cfg.interval,
                    daily_spent_until: None,
                }),
                gate: tokio::sync::Mutex::new(Vec::new()),
                asking: AtomicU64::new(0),
            })
        })
    }

    /// Waits for room to send one request to `resource`, at most until `deadline`.
    pub async fn acquire(&self, resource: &str, deadline: Instant) -> Result<Slot, HlError> {
        let bucket = self.bucket(resource);
        let interval = {
            let mut st = bucket.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(until) = st.daily_spent_until {
                let now = Instant::now();
                if now < until {
                    self.stats
                        .daily_limit_refusals
                        .fetch_add(1, Ordering::Relaxed);
                    return Err(HlError::DailyLimitSpent {
                        resource: resource.to_owned(),
                        retry_after: until - now,
                    });
                }
                // Let this one through as a probe; its answer tells whether the day has turned.
                st.daily_spent_until = None;
            }
            st.interval
        };
        let permit = match bucket.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let started = Instant::now();
                self.stats.waited.fetch_add(1, Ordering::Relaxed);
                let wait = deadline.saturating_duration_since(started);
                let got = tokio::select! {
                    got = tokio::time::timeout(wait, bucket.slots.clone().acquire_owned()) => Some(got),
                    () = self.stopping.cancelled() => None,
                };
                self.stats
                    .waited_ms
                    .fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                match got {
                    Some(Ok(Ok(p))) => p,
                    None => {
                        return Err(HlError::RateLimited {
                            resource: resource.to_owned(),
                            retry_after: RETRY_AFTER_STOP,
                        });
                    }
                    _ => {
                        self.stats
                            .wait_bound_exceeded
                            .fetch_add(1, Ordering::Relaxed);
                        return Err(HlError::RateLimited {
                            resource: resource.to_owned(),
                            retry_after: interval,
                        });
                    }
                }
            }
        };
        let shared = match &self.shared {
            Some(shared) => {
                self.take_shared(shared, &bucket, resource, deadline)
                    .await?
            }
            None => None,
        };
        self.stats.sent.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            permit: Some(permit),
            interval,
            shared,
        })
    }

    /// Claims a slot of the shared window, waiting (bounded by `deadline`) while every slot is taken.
    async fn take_shared(
        &self,
        shared: &Shared,
        bucket: &Bucket,
        resource: &str,
        deadline: Instant,
    ) -> Result<Option<(Release, mpsc::Sender<BudgetNote>)>, HlError> {
        let started = Instant::now();
        let mut waited = false;
        let asking = Asking::new(&bucket.asking);
        let gate = tokio::select! {
            g = tokio::time::timeout(deadline.saturating_duration_since(started), bucket.gate.lock()) => g.ok(),
            () = self.stopping.cancelled() => return Err(HlError::RateLimited {
                resource: resource.to_owned(),
                retry_after: RETRY_AFTER_STOP,
            }),
        };
        let mut gate = gate;
        let result = loop {
            let (max, interval) = {
                let st = bucket.state.lock().unwrap_or_else(|p| p.into_inner());
                (st.max, st.interval)
            };
            let Some(spare) = gate.as_mut() else {
                break Err(interval);
            };
            let release = |claim, hold| Release {
                resource: resource.to_owned(),
                claim,
                hold,
            };
            // A slot claimed for this request by an earlier holder of the gate.
            let mut fresh = None;
            while let Some((mut claim, at)) = spare.pop() {
                if at.elapsed() < SPARE_FRESH {
                    // Its request is sent now, not when the batch was claimed: the claim's time moves on by the
                    // time it waited here (still no later than now on the budget's clock), so a header
                    // correction never counts slots that came free meanwhile as taken.
                    claim.at_us += at.elapsed().as_micros().min(i64::MAX as u128) as i64;
                    fresh = Some(claim);
                    break;
                }
                // Its request gave up waiting: never sent, so free at once.
                let _ = shared.notes.try_send(BudgetNote::Release(
                    release(claim, Duration::ZERO),
                    Instant::now(),
                ));
            }
            if let Some(claim) = fresh {
                break Ok(Some((release(claim, interval), shared.notes.clone())));
            }
            let want =
                (asking.0.load(Ordering::Relaxed) as u32).clamp(1, CLAIM_BATCH.min(max).max(1));
            match shared
                .budget
                .take(resource, max, want, shared.lease, interval)
                .await
            {
                Ok(Take::Got(mut claims)) => {
                    shared.warned.store(false, Ordering::Relaxed);
                    let Some(claim) = claims.pop() else {
                        continue;
                    };
                    let now = Instant::now();
                    spare.extend(claims.into_iter().map(|c| (c, now)));
                    break Ok(Some((release(claim, interval), shared.notes.clone())));
                }
                Ok(Take::Busy { retry_in }) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break Err(interval);
                    }
                    waited = true;
                    // Wake when the next slot frees, not on a short poll: a burst costs each replica about one
                    // query per slot that frees, however many requests wait.
                    let nap = retry_in
                        .clamp(Duration::from_millis(1), SHARED_NAP_MAX)
                        .min(deadline - now);
                    tokio::select! {
                        () = tokio::time::sleep(nap) => {}
                        () = self.stopping.cancelled() => return Err(HlError::RateLimited {
                            resource: resource.to_owned(),
                            retry_after: RETRY_AFTER_STOP,
                        }),
                    }
                }
                Err(why) => {
                    self.stats
                        .shared_unreachable
                        .fetch_add(1, Ordering::Relaxed);
                    if !shared.warned.swap(true, Ordering::Relaxed) {
                        tracing::warn!(resource, error = %why, "the shared rate budget cannot be reached; pacing on this replica's own window until it can");
                    }
                    break Ok(None);
                }
            }
        };
        if waited {
            self.stats.waited.fetch_add(1, Ordering::Relaxed);
            self.stats
                .waited_ms
                .fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
        result.map_err(|interval| {
            self.stats
                .wait_bound_exceeded
                .fetch_add(1, Ordering::Relaxed);
            HlError::RateLimited {
                resource: resource.to_owned(),
                retry_after: interval,
            }
        })
    }

    /// Learns from an answer's headers; the slot is held for one interval from now.
    pub fn observe(&self, resource: &str, h: RateHeaders, slot: Slot) {
        let bucket = self.bucket(resource);
        let mut st = bucket.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ms) = h.interval_ms.filter(|ms| *ms > 0) {
            st.interval = Duration::from_millis(ms);
        }
        if let Some(max) = h.max.filter(|m| *m > 0) {
            if max > st.max {
                bucket.slots.add_permits((max - st.max) as usize);
                st.max = max;
            } else if max < st.max {
                // Take the surplus out of circulation for good, as it comes free.
                let surplus = st.max - max;
                st.max = max;
                let slots = bucket.slots.clone();
                tokio::spawn(async move {
                    if let Ok(p) = slots.acquire_many_owned(surplus).await {
                        p.forget();
                    }
                });
            }
        }
        if h.daily_remaining == Some(0) {
            st.daily_spent_until = Some(Instant::now() + self.cfg.daily_probe_after);
        }
        let interval = st.interval;
        let max = st.max;
        drop(st);
        // Another client's share of the window: hold it too, so our next requests do not overrun it. With a
        // shared budget the other replicas' share is already held there: the correction goes there too,
        // compared with what was taken when this request was claimed (HighLevel counted it after that).
        let claimed = slot
            .shared
            .as_ref()
            .map(|(r, notes)| (r.claim.at_us, notes));
        if let (Some(remaining), Some((since, notes))) = (h.remaining, claimed) {
            let _ = notes.try_send(BudgetNote::HoldUsed {
                resource: resource.to_owned(),
                max,
                used: max.saturating_sub(remaining),
                since: Some(since),
                hold: interval,
            });
        } else if let Some(remaining) = h.remaining {
            let ours = max as usize - bucket.slots.available_permits().min(max as usize);
            let used = max.saturating_sub(remaining) as usize;
            if used > ours {
                let others = (used - ours).min(bucket.slots.available_permits()) as u32;
                if let Ok(p) = bucket.slots.clone().try_acquire_many_owned(others) {
                    self.stats
                        .held_for_others
                        .fetch_add(u64::from(others), Ordering::Relaxed);
                    hold_for(vec![p], interval);
                }
            }
        }
        let mut slot = slot;
        slot.interval = interval;
        drop(slot);
    }

    /// HighLevel answered 429: hold the whole window for one interval. `true` when the daily budget is spent.
    pub fn throttled(&self, resource: &str, h: RateHeaders, slot: Slot) -> bool {
        self.stats.throttled.fetch_add(1, Ordering::Relaxed);
        let bucket = self.bucket(resource);
        let spent_today = h.daily_remaining == Some(0);
        self.observe(resource, h, slot);
        let interval = bucket
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .interval;
        let free = bucket.slots.available_permits() as u32;
        if free > 0 {
            if let Ok(p) = bucket.slots.clone().try_acquire_many_owned(free) {
                hold_for(vec![p], interval);
            }
        }
        if let Some(shared) = &self.shared {
            let max = bucket.state.lock().unwrap_or_else(|p| p.into_inner()).max;
            let _ = shared.notes.try_send(BudgetNote::HoldUsed {
                resource: resource.to_owned(),
                max,
                used: max,
                since: None,
                hold: interval,
            });
        }
        tracing::warn!(
            resource,
            spent_today,
            "HighLevel answered 429; holding the window for one interval"
        );
        spent_today
    }
}

/// Writes releases and corrections to the shared budget in batches, until every sender is gone. Releases
/// first, in one statement, each held from its answer rather than from when it is written. Of a
/// batch's corrections only the newest per resource is written: it is HighLevel's latest count.
async fn write_notes(
    budget: Arc<dyn SharedBudget>,
    mut rx: mpsc::Receiver<BudgetNote>,
    stats: Arc<PacingStats>,
) {
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        let mut releases = Vec::new();
        let mut holds: Vec<(String, u32, u32, Option<i64>, Duration)> = Vec::new();
        for note in batch.drain(..) {
            match note {
                BudgetNote::Release(r, ended) => releases.push((r, ended)),
                BudgetNote::HoldUsed {
                    resource,
                    max,
                    used,
                    since,
                    hold,
                } => {
                    let newer = |old: Option<i64>| match (old, since) {
                        (None, _) => false,
                        (Some(_), None) => true,
                        (Some(a), Some(b)) => b >= a,
                    };
                    match holds.iter_mut().find(|h| h.0 == resource) {
                        Some(h) if newer(h.3) => *h = (resource, max, used, since, hold),
                        Some(_) => {}
                        None => holds.push((resource, max, used, since, hold)),
                    }
                }
            }
        }
        if !releases.is_empty() {
            // The hold is written as "until `hold` from the database's now": less the time the note waited
            // here, so a busy writer never keeps a slot past one interval after its answer. The statement runs
            // after this subtraction, so the database's now is never earlier than the note's instant plus the
            // time subtracted: the slot is never freed sooner than one interval after its answer.
            let releases = releases
                .into_iter()
                .map(|(mut r, ended)| {
                    r.hold = r.hold.saturating_sub(ended.elapsed());
                    r
                })
                .collect();
            if let Err(why) = budget.release(releases).await {
                // The claims run to their leases instead: later than needed, never too early.
                tracing::warn!(error = %why, "could not release slots of the shared rate budget");
            }
        }
        for (resource, max, used, since, hold) in holds {
            match budget.hold_used(&resource, max, used, since, hold).await {
                Ok(0) => {}
                Ok(n) => {
                    stats.held_for_others.fetch_add(n as u64, Ordering::Relaxed);
                    tracing::debug!(resource, held = n, used, max, "HighLevel counted more requests than the shared budget sent: holding another client's share");
                }
                Err(why) => {
                    tracing::debug!(resource, error = %why, "could not hold another client's share in the shared rate budget");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer(max: u32, interval_ms: u64, wait_ms: u64) -> Pacer {
        Pacer::new(PacingConfig {
            max,
            interval: Duration::from_millis(interval_ms),
            max_wait: Duration::from_millis(wait_ms),
            daily_probe_after: Duration::from_secs(60),
        })
    }

    #[tokio::test]
    async fn the_window_refills_one_interval_after_each_answer() {
        let p = pacer(2, 200, 1000);
        let deadline = Instant::now() + Duration::from_secs(1);
        let start = Instant::now();
        for _ in 0..2 {
            let s = p.acquire("L", deadline).await.unwrap();
            p.observe("L", RateHeaders::default(), s);
        }
        let _third = p.acquire("L", deadline).await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(190));
        // Another resource never waits on this one.
        let t = Instant::now();
        let _other = p.acquire("M", deadline).await.unwrap();
        assert!(t.elapsed() < Duration::from_millis(50));
    }

    #[tokio::test]
    async fn past_the_bound_the_caller_is_told_when_to_retry() {
        let p = pacer(1, 10_000, 50);
        let _held = p
            .acquire("L", Instant::now() + Duration::from_secs(1))
            .await
            .unwrap();
        let err = p
            .acquire("L", Instant::now() + Duration::from_millis(50))
            .await
            .err()
            .unwrap();
        assert!(
            matches!(err, HlError::RateLimited { retry_after, .. } if retry_after == Duration::from_secs(10))
        );
        assert_eq!(p.stats.wait_bound_exceeded.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_spent_day_fails_at_once() {
        let p = pacer(10, 100, 1000);
        let s = p
            .acquire("L", Instant::now() + Duration::from_secs(1))
            .await
            .unwrap();
        p.observe(
            "L",
            RateHeaders {
                daily_remaining: Some(0),
                ..RateHeaders::default()
            },
            s,
        );
        let err = p
            .acquire("L", Instant::now() + Duration::from_secs(1))
            .await
            .err()
            .unwrap();
        assert!(matches!(err, HlError::DailyLimitSpent { .. }));
    }

    #[tokio::test]
    async fn another_clients_share_is_held() {
        let p = pacer(10, 300, 1000);
        let s = p
            .acquire("L", Instant::now() + Duration::from_secs(1))
            .await
            .unwrap();
        // HighLevel counted 9 requests in the window: ours plus 8 of somebody else's.
        p.observe(
            "L",
            RateHeaders {
                remaining: Some(1),
                ..RateHeaders::default()
            },
            s,
        );
        let b = p.bucket("L");
        assert_eq!(b.slots.available_permits(), 1);
    }

    /// A shared budget in memory: `max` slots, free or taken; counts its queries.
    #[derive(Default)]
    struct InMemory {
        taken: Mutex<Vec<bool>>,
        takes: AtomicU64,
        released: Mutex<Vec<Release>>,
    }

    impl SharedBudget for Arc<InMemory> {
        fn take(
            &self,
            _resource: &str,
            max: u32,
            want: u32,
            _lease: Duration,
            _interval: Duration,
        ) -> BudgetFuture<Take> {
            self.takes.fetch_add(1, Ordering::Relaxed);
            let mut taken = self.taken.lock().unwrap();
            taken.resize(max as usize, false);
            let claims: Vec<Claim> = (0..max as i32)
                .filter(|&slot| !taken[slot as usize])
                .take(want as usize)
                .map(|slot| Claim {
                    slot,
                    holder: 1,
                    at_us: 0,
                })
                .collect();
            for c in &claims {
                taken[c.slot as usize] = true;
            }
            let answer = if claims.is_empty() {
                Take::Busy {
                    retry_in: Duration::from_millis(10),
                }
            } else {
                Take::Got(claims)
            };
            // A round trip's time: requests arriving meanwhile wait for the gate.
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(answer)
            })
        }
        fn release(&self, releases: Vec<Release>) -> BudgetFuture<()> {
            self.released.lock().unwrap().extend(releases);
            Box::pin(async { Ok(()) })
        }
        fn hold_used(
            &self,
            _: &str,
            _: u32,
            _: u32,
            _: Option<i64>,
            _: Duration,
        ) -> BudgetFuture<usize> {
            Box::pin(async { Ok(0) })
        }
    }

    /// Requests of one process waiting for a resource's shared slots are served by a few queries, each
    /// claiming for the requests waiting then, and every request gets a slot of its own.
    #[tokio::test]
    async fn one_query_claims_for_every_waiting_request() {
        let budget = Arc::new(InMemory::default());
        let cfg = PacingConfig {
            max: 50,
            ..PacingConfig::default()
        };
        let p = Arc::new(Pacer::shared(
            cfg,
            Arc::new(budget.clone()),
            Duration::from_secs(30),
        ));
        let deadline = Instant::now() + Duration::from_secs(5);
        let calls: Vec<_> = (0..40)
            .map(|_| {
                let p = p.clone();
                tokio::spawn(async move { p.acquire("L", deadline).await })
            })
            .collect();
        let mut slots = std::collections::BTreeSet::new();
        let mut held = Vec::new();
        for c in calls {
            let slot = c.await.unwrap().unwrap();
            let (release, _) = slot.shared.as_ref().expect("a shared claim");
            slots.insert(release.claim.slot);
            held.push(slot);
        }
        assert_eq!(slots.len(), 40, "a slot of its own for each request");
        let takes = budget.takes.load(Ordering::Relaxed);
        assert!(takes <= 5, "{takes} queries for 40 requests");
    }

    /// A slot claimed for a request that gave up waiting is handed back free (hold zero), not sent on.
    #[tokio::test]
    async fn a_stale_spare_claim_is_handed_back() {
        let budget = Arc::new(InMemory::default());
        let p = Pacer::shared(
            PacingConfig::default(),
            Arc::new(budget.clone()),
            Duration::from_secs(30),
        );
        let bucket = p.bucket("L");
        let stale = Claim {
            slot: 7,
            holder: 9,
            at_us: 0,
        };
        bucket
            .gate
            .lock()
            .await
            .push((stale, Instant::now() - SPARE_FRESH));
        let slot = p
            .acquire("L", Instant::now() + Duration::from_secs(1))
            .await
            .unwrap();
        let (release, _) = slot.shared.as_ref().unwrap();
        assert_ne!(release.claim, stale, "the stale claim is not used");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let released = budget.released.lock().unwrap().clone();
        assert!(
            released
                .iter()
                .any(|r| r.claim == stale && r.hold == Duration::ZERO),
            "{released:?}"
        );
    }

    /// A slot claimed for a waiting request carries the time it is handed over, not the batch's claim time.
    #[tokio::test]
    async fn a_spare_claim_is_timed_when_it_is_used() {
        let budget = Arc::new(InMemory::default());
        let p = Pacer::shared(
            PacingConfig::default(),
            Arc::new(budget.clone()),
            Duration::from_secs(30),
        );
        let spare = Claim {
            slot: 3,
            holder: 9,
            at_us: 1_000_000,
        };
        p.bucket("L")
            .gate
            .lock()
            .await
            .push((spare, Instant::now() - Duration::from_millis(400)));
        let slot = p
            .acquire("L", Instant::now() + Duration::from_secs(1))
            .await
            .unwrap();
        let (release, _) = slot.shared.as_ref().unwrap();
        assert_eq!(release.claim.slot, 3);
        assert!(
            release.claim.at_us >= 1_400_000 && release.claim.at_us < 1_900_000,
            "{:?}",
            release.claim
        );
    }

    /// A release written late is held from its answer, not from when it is written.
    #[tokio::test]
    async fn a_late_release_is_held_from_its_answer() {
        let budget = Arc::new(InMemory::default());
        let (tx, rx) = mpsc::channel(8);
        let writer = tokio::spawn(write_notes(
            Arc::new(budget.clone()),
            rx,
            Arc::new(PacingStats::default()),
        ));
        let claim = Claim {
            slot: 0,
            holder: 1,
            at_us: 0,
        };
        let release = Release {
            resource: "L".into(),
            claim,
            hold: Duration::from_secs(10),
        };
        let answered = Instant::now() - Duration::from_millis(300);
        tx.send(BudgetNote::Release(release, answered))
            .await
            .unwrap();
        drop(tx);
        writer.await.unwrap();
        let hold = budget.released.lock().unwrap()[0].hold;
        assert!(
            hold <= Duration::from_millis(9_700) && hold > Duration::from_millis(9_000),
            "{hold:?}"
        );
    }

    #[tokio::test]
    async fn a_stop_refuses_the_waiting_at_once() {
        let p = Arc::new(pacer(1, 10_000, 60_000));
        let _held = p
            .acquire("L", Instant::now() + Duration::from_secs(60))
            .await
            .unwrap();
        let waiter = {
            let p = p.clone();
            tokio::spawn(async move {
                p.acquire("L", Instant::now() + Duration::from_secs(60))
                    .await
                    .err()
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        p.stop_waiting();
        let err = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter is answered well before its 60 s bound")
            .unwrap()
            .unwrap();
        assert!(
            matches!(err, HlError::RateLimited { retry_after, .. } if retry_after == RETRY_AFTER_STOP)
        );
    }
}
