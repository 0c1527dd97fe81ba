//! The background refresher: renews installation tokens before they expire (margin, jittered), so reads
//! rarely wait on HighLevel. Safe with many replicas: the lease makes sure each token is refreshed once.

use super::TokenService;
use crate::store::{self, now_ms};
use std::sync::Arc;
use std::time::Duration;

/// Runs forever; spawn it.
pub async fn run(tokens: Arc<TokenService>, interval: Duration, margin_secs: i64) {
    loop {
        let jitter =
            Duration::from_millis(rand::random::<u64>() % (interval.as_millis() as u64 / 5 + 1));
        tokio::time::sleep(interval + jitter).await;
        if let Err(e) = tick(&tokens, margin_secs).await {
            tracing::warn!(error = %e, "background refresh pass failed");
        }
    }
}

/// Renewals run side by side, this many at once: many tokens falling due together are not refreshed one after
/// the other, and HighLevel is not flooded either.
const CONCURRENT_REFRESHES: usize = 16;

/// One pass: refreshes every installation token due (see `store::tokens::due_for_refresh`; the margin is
/// stretched by up to a fifth, so replicas and installations spread out).
pub async fn tick(
    tokens: &TokenService,
    margin_secs: i64,
) -> Result<usize, crate::error::AppError> {
    use futures::StreamExt;
    let margin_ms = margin_secs * 1000;
    let margin_ms = margin_ms + (rand::random::<u64>() % (margin_ms as u64 / 5 + 1)) as i64;
    let now = now_ms();
    let due = tokens
        .db
        .run(move |c| store::tokens::due_for_refresh(c, now, margin_ms, 200))
        .await?;
    let refreshed = futures::stream::iter(due)
        .map(|(id, version)| async move {
            let inst = tokens.usable_installation(&id).await.ok()?;
            match tokens.refresh_installation(&inst, version).await {
                Ok(_) => Some(()),
                Err(e) => {
                    tracing::warn!(installation = %id, error = %e, "background refresh failed");
                    None
                }
            }
        })
        .buffer_unordered(CONCURRENT_REFRESHES)
        .filter(|r| std::future::ready(r.is_some()))
        .count()
        .await;
    Ok(refreshed)
}
