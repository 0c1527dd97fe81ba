//! One renewal per key inside a process: concurrent callers queue on the same async mutex, and whoever
//! comes after the leader re-reads the row and finds the new token instead of refreshing again.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// The locks of keys renewed recently, bounded (`moka`). A lock forgotten while held (idle for minutes, or
/// pushed out by many others) only lets a second caller reach the row's lease, which still lets one through.
pub struct SingleFlight {
    locks: moka::sync::Cache<String, Arc<AsyncMutex<()>>>,
}

impl Default for SingleFlight {
    fn default() -> Self {
        SingleFlight {
            locks: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(Duration::from_secs(600))
                .build(),
        }
    }
}

pub struct Flight {
    _guard: OwnedMutexGuard<()>,
}

impl SingleFlight {
    pub async fn enter(&self, key: &str) -> Flight {
        // `get_with` makes one lock per key even when callers arrive together.
        let lock = self.locks.get_with_by_ref(key, Default::default);
        Flight {
            _guard: lock.lock_owned().await,
        }
    }
}
