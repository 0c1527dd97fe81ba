//! One renewal per token row inside a process: concurrent callers that saw the same version of a row share
//! one renewal and its answer (moka's `try_get_with`); across processes the row's lease still lets one through.

use crate::error::{AppError, AppResult};
use shared_types::TokenAccess;
use std::future::Future;
use std::time::Duration;

/// Renewals in flight, by token row and the version its callers saw. An answer is kept only until the
/// renewal's callers have it: a caller that comes later reads the renewed row (or its cache) instead.
pub struct SingleFlight {
    flights: moka::future::Cache<(String, i64), TokenAccess>,
}

impl Default for SingleFlight {
    fn default() -> Self {
        SingleFlight {
            flights: moka::future::Cache::builder()
                .max_capacity(10_000)
                // A bound only: each flight removes its answer as soon as it is given.
                .time_to_live(Duration::from_secs(60))
                .build(),
        }
    }
}

impl SingleFlight {
    /// `renew`'s answer, run once for every caller that asks for `row` at `seen_version` meanwhile: they all
    /// get its token, or its error.
    pub async fn run(
        &self,
        row: String,
        seen_version: i64,
        renew: impl Future<Output = AppResult<TokenAccess>>,
    ) -> AppResult<TokenAccess> {
        let key = (row, seen_version);
        let answer = self.flights.try_get_with_by_ref(&key, renew).await;
        self.flights.invalidate(&key).await;
        answer.map_err(|shared| AppError::clone(&shared))
    }
}
