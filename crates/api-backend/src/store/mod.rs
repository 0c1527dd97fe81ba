//! One small repository module per table; callers run them through `Db::run`, off the async workers.

pub mod events;
pub mod idempotency;
pub mod payments;
pub mod paytr_customers;
pub mod paytr_subscription_checkouts;
pub mod providers;
pub mod rate_budget;
pub mod subscriptions;

/// Now, in Unix epoch milliseconds: the unit of every timestamp column.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
