//! HighLevel's per-app, per-resource rate limit, counted as a sliding window (at most `burst` requests in
//! any `window`), the strictest reading of the documented limit, plus a daily total.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateInfo {
    pub max: u32,
    pub remaining: u32,
    pub interval_ms: u64,
    pub daily_limit: u32,
    pub daily_remaining: u32,
    pub allowed: bool,
}

struct Bucket {
    recent: VecDeque<Instant>,
    day_started: Instant,
    day_count: u32,
}

pub struct RateLimiter {
    burst: u32,
    window: Duration,
    daily: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

const DAY: Duration = Duration::from_secs(86_400);

impl RateLimiter {
    pub fn new(burst: u32, window_ms: u64, daily: u32) -> Self {
        RateLimiter {
            burst,
            window: Duration::from_millis(window_ms),
            daily,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request for `resource` if the limits allow it; refused requests are not counted.
    pub fn check(&self, resource: &str) -> RateInfo {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(resource) {
            buckets.insert(
                resource.to_owned(),
                Bucket {
                    recent: VecDeque::new(),
                    day_started: now,
                    day_count: 0,
                },
            );
        }
        let Some(b) = buckets.get_mut(resource) else {
            unreachable!("inserted above")
        };
        while b
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            b.recent.pop_front();
        }
        if now.duration_since(b.day_started) >= DAY {
            b.day_started = now;
            b.day_count = 0;
        }
        let allowed = (b.recent.len() as u32) < self.burst && b.day_count < self.daily;
        if allowed {
            b.recent.push_back(now);
            b.day_count += 1;
        }
        RateInfo {
            max: self.burst,
            remaining: self.burst.saturating_sub(b.recent.len() as u32),
            interval_ms: self.window.as_millis() as u64,
            daily_limit: self.daily,
            daily_remaining: self.daily.saturating_sub(b.day_count),
            allowed,
        }
    }

    pub fn reset(&self) {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_burst_and_recovers_after_the_window() {
        let r = RateLimiter::new(3, 50, 1000);
        for left in [2, 1, 0] {
            let i = r.check("L");
            assert!(i.allowed);
            assert_eq!(i.remaining, left);
        }
        assert!(!r.check("L").allowed);
        assert!(r.check("other").allowed, "resources are independent");
        std::thread::sleep(Duration::from_millis(60));
        assert!(r.check("L").allowed);
    }

    #[test]
    fn daily_limit_applies() {
        let r = RateLimiter::new(100, 10_000, 2);
        assert!(r.check("L").allowed);
        let i = r.check("L");
        assert!(i.allowed);
        assert_eq!(i.daily_remaining, 0);
        assert!(!r.check("L").allowed);
    }
}
