//! The background refresher: renews installation tokens before they expire (margin, jittered), so reads
//! rarely wait on HighLevel. Safe with many replicas: the lease makes sure each token is refreshed once.
//!
//! It yields to reads (docs/design.md, refresh: the background refresher): it runs on a thread and runtime
//! of its own whose threads have a lower scheduling priority (so when reads want every core, a mass renewal
//! gets about a tenth of the CPU, and all of it when they do not), and whose database work runs on at most
//! [`db_threads`] blocking threads, each holding at most one pooled connection: the rest of the pool stays
//! free for reads.

use super::TokenService;
use crate::store::tokens::INSTALLATION_SCOPE;
use crate::store::{self, now_ms};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The refresher's threads' niceness (0 is the default; 10 weighs about a tenth of a default thread).
const NICE: i32 = 10;

/// Blocking threads (so pooled connections) the refresher's database work may use: a quarter of the pool.
pub fn db_threads(pool_size: u32) -> usize {
    (pool_size as usize / 4).max(1)
}

/// Lowers the calling thread's scheduling priority (Linux: niceness is per thread). Best effort.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICE) {
        tracing::debug!(error = %e, "could not lower the refresher's priority");
    }
}

/// Starts the refresher on a thread of its own (see the module note). It ends once `tokens` is dropped
/// everywhere else (the app stopped), at the latest one interval later.
pub fn spawn(
    tokens: &Arc<TokenService>,
    interval: Duration,
    margin_secs: i64,
    concurrency: usize,
    pool_size: u32,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(db_threads(pool_size))
        .thread_name("refresher-db")
        .on_thread_start(lower_priority)
        .build()?;
    let tokens = Arc::downgrade(tokens);
    std::thread::Builder::new()
        .name("refresher".into())
        .spawn(move || {
            lower_priority();
            runtime.block_on(run(tokens, interval, margin_secs, concurrency));
        })?;
    Ok(())
}

/// Runs until `tokens` is gone.
pub async fn run(
    tokens: Weak<TokenService>,
    interval: Duration,
    margin_secs: i64,
    concurrency: usize,
) {
    loop {
        let jitter =
            Duration::from_millis(rand::random::<u64>() % (interval.as_millis() as u64 / 5 + 1));
        tokio::time::sleep(interval + jitter).await;
        let Some(tokens) = tokens.upgrade() else {
            return;
        };
        match tick(&tokens, margin_secs, concurrency).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(refreshed = n, "background refresh pass done"),
            Err(e) => tracing::warn!(error = %e, "background refresh pass failed"),
        }
    }
}

/// Rows read per query; a pass reads page after page until nothing it has not tried is due.
const PAGE: i64 = 500;

/// One pass: refreshes every installation token due (see `store::tokens::due_for_refresh`; the margin is
/// stretched by up to a fifth, so replicas and installations spread out), `concurrency` at a time: many tokens
/// falling due together are renewed side by side, not one after the other, and HighLevel is not flooded.
/// Tokens another replica is renewing are skipped; a token that fails is not retried until the next pass.
pub async fn tick(
    tokens: &TokenService,
    margin_secs: i64,
    concurrency: usize,
) -> Result<usize, crate::error::AppError> {
    use futures::StreamExt;
    let margin_ms = margin_secs * 1000;
    let suspended_retry_ms = tokens.suspended_retry_ms;
    let margin_ms = margin_ms + (rand::random::<u64>() % (margin_ms as u64 / 5 + 1)) as i64;
    let mut tried = std::collections::HashSet::new();
    let mut refreshed = 0;
    loop {
        let now = now_ms();
        let mut due = tokens
            .db
            .run(move |c| {
                store::tokens::due_for_refresh_with(c, now, margin_ms, PAGE, suspended_retry_ms)
            })
            .await?;
        due.retain(|(id, _)| !tried.contains(id));
        if due.is_empty() {
            return Ok(refreshed);
        }
        // Replicas reading the same page at once start at different places in it.
        let start = rand::random::<u64>() as usize % due.len();
        due.rotate_left(start);
        tried.extend(due.iter().map(|(id, _)| id.clone()));
        refreshed += futures::stream::iter(due)
            .map(|(id, version)| async move {
                let gen = tokens.cache.generation(&id);
                let inst = tokens.usable_installation(&id).await.ok()?;
                // Renewing is not reading: a token nobody read here stays out of the cache, so memory follows
                // the tokens in use, not every installation. The refresh caches a Location installation's token
                // under two keys ('' and its location id), both from row '': all of that row's entries go.
                let was_cached = tokens.cache.holds(&id);
                match tokens.refresh_installation(&inst, version, gen).await {
                    Ok(_) => {
                        if !was_cached {
                            tokens.cache.remove_row(&id, INSTALLATION_SCOPE, None);
                        }
                        Some(())
                    }
                    Err(e) => {
                        tracing::warn!(installation = %id, error = %e, "background refresh failed");
                        None
                    }
                }
            })
            .buffer_unordered(concurrency.max(1))
            .filter(|r| std::future::ready(r.is_some()))
            .count()
            .await;
    }
}
