//! The bytes of media uploads this process holds at once (`MEDIA_BUFFER_BUDGET`): every upload under way takes
//! its room from one semaphore counted in KiB, so concurrent uploads can never exhaust memory or disk; past the
//! budget a caller is told to come back (503 with `Retry-After`).

use crate::error::ApiError;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How soon an upload refused for want of room should be tried again.
pub const BUDGET_RETRY_AFTER_SECS: u64 = 5;

/// The bytes of uploads this process holds at once, counted in KiB permits of one semaphore.
pub struct MediaBudget {
    kib: Arc<Semaphore>,
    total_kib: usize,
    pub dir: std::path::PathBuf,
}

impl MediaBudget {
    pub fn new(bytes: u64, dir: Option<std::path::PathBuf>) -> MediaBudget {
        let total_kib = ((bytes / 1024) as usize).min(Semaphore::MAX_PERMITS);
        MediaBudget {
            kib: Arc::new(Semaphore::new(total_kib)),
            total_kib,
            dir: dir.unwrap_or_else(std::env::temp_dir),
        }
    }

    /// Room for `bytes` more, added to `held`; refused at once when there is none.
    pub fn take(
        &self,
        held: &mut Option<OwnedSemaphorePermit>,
        bytes: u64,
    ) -> Result<(), ApiError> {
        let have = held.as_ref().map_or(0, |p| p.num_permits());
        let need = (bytes.div_ceil(1024) as usize).saturating_sub(have);
        if need == 0 {
            return Ok(());
        }
        if have + need > self.total_kib {
            return Err(ApiError::PayloadTooLarge(format!(
                "the upload ({} KiB) is larger than this server's media budget ({} KiB, MEDIA_BUFFER_BUDGET)",
                have + need,
                self.total_kib
            )));
        }
        let more = u32::try_from(need)
            .ok()
            .and_then(|n| self.kib.clone().try_acquire_many_owned(n).ok())
            .ok_or(ApiError::UploadCapacity {
                retry_after_secs: BUDGET_RETRY_AFTER_SECS,
            })?;
        match held {
            Some(p) => p.merge(more),
            None => *held = Some(more),
        }
        Ok(())
    }
}
