//! Following the change feed, so that every process drops what changed anywhere (docs/design.md, replicas).
//!
//! Triggers write a row to `installation_changes` in the transaction of every state change of an installation
//! (uninstall, `needs_reauth`, anything else an operator writes) and of every new or deleted token row. Each
//! process reads the rows after the last `seq` it saw and drops the cache entries they concern:
//! - on PostgreSQL the triggers also `NOTIFY`; a listener thread wakes the reader at once (it looks for
//!   notifications every 10 ms without a round trip), so a change is applied within milliseconds of its commit;
//! - on both backends the reader also polls every `CACHE_SYNC_INTERVAL_MS` (200 ms): the bound on SQLite, where
//!   several processes may share one file, and the fallback on PostgreSQL if a notification is missed.
//!
//! The hot path reads only memory. If this process cannot read the feed for `CACHE_MAX_STALE_SECS`, it stops
//! serving hits (reads go to the database, which tells the truth or fails), and when it can read it again it
//! drops its whole cache before serving from memory again.
//!
//! PostgreSQL may commit a later `seq` before an earlier one; a missing `seq` is asked for again on every
//! poll for `GAP_GRACE_MS` (a rolled-back change never comes), so a late commit is applied, not skipped.

use super::cache::TokenCache;
use super::TokenService;
use crate::db::{Backend, DbError};
use crate::store::changes::{self, Change};
use crate::store::now_ms;
use shared_types::InstallationState;
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// The channel the PostgreSQL triggers notify.
pub const CHANNEL: &str = "oauth_backend_changes";
/// Rows read per query.
const BATCH: i64 = 1000;
/// How long a missing `seq` is waited for.
const GAP_GRACE_MS: i64 = 5_000;
/// At start, changes this recent are read again (some may still have been committing).
const START_LOOKBACK_MS: i64 = 30_000;
/// Missing `seq`s remembered at most.
const MAX_MISSING: usize = 1_000;
/// How often the listener looks for notifications (no round trip: it reads what the socket already holds).
const LISTEN_POLL: Duration = Duration::from_millis(10);

/// Where this process is in the feed.
#[derive(Debug)]
pub struct Feed {
    /// The highest `seq` applied.
    pub high: i64,
    /// `seq`s below `high` not seen yet (still committing, or rolled back), with when they were first missed.
    missing: BTreeMap<i64, i64>,
}

impl Feed {
    pub fn new(high: i64) -> Feed {
        Feed {
            high,
            missing: BTreeMap::new(),
        }
    }

    pub fn missing(&self) -> Vec<i64> {
        self.missing.keys().copied().collect()
    }

    /// Applies new rows (`fresh`: after `high`, in order) and rows that filled a gap (`late`) to the cache.
    /// Returns how many changes were applied.
    pub fn apply(
        &mut self,
        cache: &TokenCache,
        fresh: &[Change],
        late: &[Change],
        now: i64,
    ) -> usize {
        let mut applied = 0;
        for c in late {
            if self.missing.remove(&c.seq).is_some() {
                apply_one(cache, c);
                applied += 1;
            }
        }
        for c in fresh {
            if c.seq <= self.high {
                continue;
            }
            let gap = c.seq - self.high - 1;
            if gap > 0 {
                if gap as usize + self.missing.len() <= MAX_MISSING {
                    self.missing
                        .extend((self.high + 1..c.seq).map(|s| (s, now)));
                } else {
                    tracing::warn!(
                        from = self.high + 1,
                        to = c.seq - 1,
                        "change feed: a gap too large to wait for"
                    );
                }
            }
            self.high = c.seq;
            apply_one(cache, c);
            applied += 1;
        }
        self.missing.retain(|_, first| now - *first < GAP_GRACE_MS);
        applied
    }
}

/// The `scope_key` of a change to an installation's approved locations (no token row has this name).
pub const APPROVED_CHANGED: &str = "*";

/// Drops what one change makes stale.
fn apply_one(cache: &TokenCache, c: &Change) {
    match (&c.scope_key, c.state) {
        // A revived installation: its new tokens arrive as token changes of their own.
        (None, Some(InstallationState::Active)) => {}
        // Uninstalled, suspended or needs_reauth: serve nothing from memory. (A state this version does not know
        // is an error reading the feed, naming the change.)
        (None, _) => cache.remove_installation(&c.installation_id),
        // The installation's approved locations changed (a location was taken out): forget all of it.
        (Some(row), _) if row == APPROVED_CHANGED => cache.remove_installation(&c.installation_id),
        (Some(row), _) => cache.remove_row(&c.installation_id, row, c.token_version),
    }
}

/// Reads what is new in the feed and applies it.
async fn poll(tokens: &TokenService, feed: &mut Option<Feed>) -> Result<usize, DbError> {
    if feed.is_none() {
        let now = now_ms();
        let high = tokens
            .db
            .run(move |c| changes::start_after(c, now, START_LOOKBACK_MS))
            .await?;
        *feed = Some(Feed::new(high));
    }
    let Some(f) = feed.as_mut() else {
        return Ok(0);
    };
    let mut applied = 0;
    loop {
        let (high, missing) = (f.high, f.missing());
        let (fresh, late) = tokens
            .db
            .run(move |c| {
                let fresh = changes::after(c, high, BATCH)?;
                let late = if missing.is_empty() {
                    Vec::new()
                } else {
                    changes::these(c, &missing)?
                };
                Ok((fresh, late))
            })
            .await?;
        applied += f.apply(&tokens.cache, &fresh, &late, now_ms());
        if (fresh.len() as i64) < BATCH {
            return Ok(applied);
        }
    }
}

/// Follows the feed until the runtime stops. Spawn it once per process.
pub async fn run(
    tokens: Arc<TokenService>,
    database_url: String,
    interval: Duration,
    max_stale: Duration,
) {
    let wake = Arc::new(Notify::new());
    if tokens.db.backend == Backend::Postgres {
        let (url, weak) = (database_url, Arc::downgrade(&wake));
        // On the runtime's blocking pool, not a detached thread: a runtime that shuts down drops this future
        // (the listener then ends within LISTEN_POLL) and waits for it, so no thread is still inside libpq
        // while the process exits.
        tokio::task::spawn_blocking(move || listen(&url, weak));
    }
    let max_stale_ms = max_stale.as_millis() as i64;
    tokens.cache.synced_until(now_ms() + max_stale_ms);
    let mut feed = None;
    let mut last_ok = now_ms();
    let mut failing = false;
    loop {
        let started = now_ms();
        if started - last_ok > max_stale_ms && feed.is_some() {
            // Blind for longer than the bound: hits were refused meanwhile, and what changed is unknown.
            feed = None;
        }
        match poll(&tokens, &mut feed).await {
            Ok(applied) => {
                if started - last_ok > max_stale_ms {
                    tokens.cache.clear();
                    tracing::warn!(
                        blind_ms = started - last_ok,
                        "change feed readable again after longer than CACHE_MAX_STALE_SECS: token cache dropped"
                    );
                } else if failing {
                    tracing::info!("change feed readable again");
                }
                failing = false;
                last_ok = started;
                tokens.cache.synced_until(started + max_stale_ms);
                if applied > 0 {
                    tracing::debug!(applied, "token cache: changes applied");
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot read the change feed; cached tokens are served for at most CACHE_MAX_STALE_SECS more");
                }
                failing = true;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = wake.notified() => {}
        }
    }
}

/// PostgreSQL: `LISTEN` on a connection of its own and wake the reader on every notification. Ends when the
/// reader is gone. A lost connection is opened again; the reader then catches up from its last `seq`.
fn listen(url: &str, wake: Weak<Notify>) {
    use backon::BlockingRetryable;
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection};
    while wake.strong_count() > 0 {
        let connect = || {
            PgConnection::establish(url)
                .map_err(|e| e.to_string())
                .and_then(|mut c| {
                    c.batch_execute(&format!("LISTEN {CHANNEL}"))
                        .map(|()| c)
                        .map_err(|e| e.to_string())
                })
        };
        let mut failing = false;
        let conn = connect
            .retry(
                backon::ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_delay(Duration::from_secs(5))
                    .without_max_times(),
            )
            .sleep(std::thread::sleep)
            .when(|_| wake.strong_count() > 0)
            .notify(|e, _| {
                if !failing {
                    tracing::warn!(error = %e, "change listener cannot connect; polling only until it can");
                }
                failing = true;
            })
            .call();
        let Ok(mut conn) = conn else {
            return;
        };
        if let Some(w) = wake.upgrade() {
            w.notify_one();
        }
        loop {
            let Some(w) = wake.upgrade() else {
                return;
            };
            let (mut got, mut lost) = (false, None);
            for n in conn.notifications_iter() {
                match n {
                    Ok(_) => got = true,
                    Err(e) => {
                        lost = Some(e);
                        break;
                    }
                }
            }
            if got {
                w.notify_one();
            }
            drop(w);
            if let Some(e) = lost {
                tracing::warn!(error = %e, "change listener lost its connection; reconnecting");
                break;
            }
            std::thread::sleep(LISTEN_POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::cache::Cached;
    use shared_types::{AuthClass, TokenAccess};

    fn put(cache: &TokenCache, inst: &str, row: &str, version: i64) {
        let answer = TokenAccess {
            installation_id: inst.into(),
            access_token: "t".into(),
            token_type: "Bearer".into(),
            expires_at: chrono::Utc::now(),
            auth_class: AuthClass::Location,
            company_id: "c".into(),
            location_id: None,
            scopes: vec![],
        };
        let g = cache.generation(inst);
        cache.put(inst, row, Cached::new(answer, row, i64::MAX, version), g);
    }

    fn state(seq: i64, inst: &str, s: &str) -> Change {
        Change {
            seq,
            installation_id: inst.into(),
            scope_key: None,
            state: Some(InstallationState::parse(s).unwrap()),
            token_version: None,
        }
    }

    #[test]
    fn a_change_committed_late_fills_its_gap_and_is_applied() {
        let cache = TokenCache::default();
        put(&cache, "a", "", 1);
        put(&cache, "b", "", 1);
        let mut feed = Feed::new(10);
        // 11 is still committing when 12 is read.
        assert_eq!(
            feed.apply(&cache, &[state(12, "b", "uninstalled")], &[], 0),
            1
        );
        assert!(cache.get("b", "").is_none() && cache.get("a", "").is_some());
        assert_eq!((feed.high, feed.missing()), (12, vec![11]));
        assert_eq!(
            feed.apply(&cache, &[], &[state(11, "a", "needs_reauth")], 100),
            1
        );
        assert!(cache.get("a", "").is_none());
        assert!(feed.missing().is_empty());
    }

    #[test]
    fn a_gap_that_never_commits_is_forgotten_after_the_grace() {
        let cache = TokenCache::default();
        let mut feed = Feed::new(0);
        feed.apply(&cache, &[state(3, "x", "active")], &[], 0);
        assert_eq!(feed.missing(), vec![1, 2]);
        feed.apply(&cache, &[], &[], GAP_GRACE_MS + 1);
        assert!(feed.missing().is_empty());
    }

    #[test]
    fn active_keeps_the_cache_and_any_other_state_drops_it() {
        let cache = TokenCache::default();
        put(&cache, "a", "", 1);
        let mut feed = Feed::new(0);
        feed.apply(&cache, &[state(1, "a", "active")], &[], 0);
        assert!(cache.get("a", "").is_some());
        feed.apply(&cache, &[state(2, "a", "suspended")], &[], 0);
        assert!(cache.get("a", "").is_none(), "fail closed");
    }
}
