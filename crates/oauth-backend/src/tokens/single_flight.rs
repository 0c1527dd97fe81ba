//! One renewal per key inside a process: concurrent callers queue on the same async mutex, and whoever
//! comes after the leader re-reads the row and finds the new token instead of refreshing again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

#[derive(Default)]
pub struct SingleFlight {
    locks: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

pub struct Flight {
    _guard: OwnedMutexGuard<()>,
}

impl SingleFlight {
    pub async fn enter(&self, key: &str) -> Flight {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            // Drop locks nobody holds or waits on, so the map does not grow without bound.
            if locks.len() > 1024 {
                locks.retain(|_, l| Arc::strong_count(l) > 1);
            }
            locks.entry(key.to_owned()).or_default().clone()
        };
        Flight {
            _guard: lock.lock_owned().await,
        }
    }
}
