//! One small repository module per table. Every function takes a connection and does one thing; callers
//! run them through `Db::run`, off the async workers.

pub mod audit;
pub mod changes;
pub mod installations;
pub mod states;
pub mod tokens;
pub mod webhook_deliveries;
pub mod webhook_events;

/// Now, in Unix epoch milliseconds: the unit of every timestamp column. (From the system clock directly: every
/// token read asks, and a calendar date is not needed.)
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
