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

/// One pass: refreshes every installation token expiring within the margin (plus up to a fifth, so replicas
/// and installations spread out).
pub async fn tick(
    tokens: &TokenService,
    margin_secs: i64,
) -> Result<usize, crate::error::AppError> {
    let margin_ms = margin_secs * 1000;
    let horizon =
        now_ms() + margin_ms + (rand::random::<u64>() % (margin_ms as u64 / 5 + 1)) as i64;
    let due = tokens
        .db
        .run(move |c| store::tokens::due_for_refresh(c, horizon, 200))
        .await?;
    let mut refreshed = 0;
    for (id, version) in due {
        let inst = match tokens.usable_installation(&id).await {
            Ok(i) => i,
            Err(_) => continue,
        };
        match tokens.refresh_installation(&inst, version).await {
            Ok(_) => refreshed += 1,
            Err(e) => tracing::warn!(installation = %id, error = %e, "background refresh failed"),
        }
    }
    Ok(refreshed)
}
