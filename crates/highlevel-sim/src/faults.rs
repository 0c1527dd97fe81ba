//! Fault injection: the next `times` requests under a path prefix fail with a status, stall, or lose their
//! connection — before the handler runs, or after it (HighLevel did the work, the caller never hears of it).

use serde::{Deserialize, Serialize};
use std::sync::Mutex;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FaultSpec {
    pub path_prefix: String,
    /// Only requests with this method (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Answer this status with a HighLevel-shaped body.
    #[serde(default)]
    pub status: Option<u16>,
    /// How many matching requests this fault applies to.
    #[serde(default = "one")]
    pub times: u32,
    /// Stall this long first.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Close the connection without a complete answer.
    #[serde(default)]
    pub drop_connection: bool,
    /// Let the handler run (and change state) first, then fail the answer.
    #[serde(default)]
    pub after_handler: bool,
    /// Let this many matching requests through untouched first (e.g. fail only the second price).
    #[serde(default)]
    pub skip: u32,
    /// Apply to one matching request in this many (2 = every second, 10 = a steady 10 %); the others pass
    /// untouched and do not use up `times`. Deterministic, so a drill fails the same way every run.
    #[serde(default = "one")]
    pub one_in: u32,
    /// Let the handler run, then answer its success (or `status`) with a JSON body of this many bytes, streamed
    /// (for a caller's limit on answers).
    #[serde(default)]
    pub answer_bytes: Option<u64>,
    /// With `answer_bytes`: send no `Content-Length` (a chunked answer whose size is learnt only by reading it).
    #[serde(default)]
    pub undeclared_length: bool,
    /// With `answer_bytes`: stall this long halfway through the body (HighLevel stops sending mid-answer).
    #[serde(default)]
    pub answer_pause_ms: Option<u64>,
    /// Matching requests seen so far (for `one_in`).
    #[serde(default, skip_serializing)]
    pub seen: u32,
}

fn one() -> u32 {
    1
}

#[derive(Default)]
pub struct Faults {
    active: Mutex<Vec<FaultSpec>>,
}

impl Faults {
    pub fn add(&self, f: FaultSpec) {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(f);
    }

    pub fn clear(&self) {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub fn list(&self) -> Vec<FaultSpec> {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The fault that applies to this request, if any, consuming one of its `times`. Faults are tried in the
    /// order they were added; a `one_in` fault whose turn it is not lets the next matching fault have a go.
    pub fn take(&self, method: &str, path: &str) -> Option<FaultSpec> {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        if active.is_empty() {
            return None;
        }
        for i in 0..active.len() {
            let f = &mut active[i];
            let matches = path.starts_with(&f.path_prefix)
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && f.times > 0;
            if !matches {
                continue;
            }
            if f.skip > 0 {
                f.skip -= 1;
                return None;
            }
            f.seen = f.seen.wrapping_add(1);
            if f.one_in > 1 && !f.seen.is_multiple_of(f.one_in) {
                continue;
            }
            f.times -= 1;
            let taken = f.clone();
            if f.times == 0 {
                active.remove(i);
            }
            return Some(taken);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_applies_times_then_disappears() {
        let f = Faults::default();
        f.add(FaultSpec {
            path_prefix: "/products".into(),
            method: None,
            status: Some(503),
            times: 2,
            latency_ms: None,
            drop_connection: false,
            after_handler: false,
            skip: 0,
            one_in: 1,
            answer_bytes: None,
            undeclared_length: false,
            answer_pause_ms: None,
            seen: 0,
        });
        assert!(f.take("GET", "/medias/files").is_none());
        assert!(f.take("GET", "/products/").is_some());
        assert!(f.take("POST", "/products/x").is_some());
        assert!(f.take("GET", "/products/").is_none());
        assert!(f.list().is_empty());
    }

    #[test]
    fn skipped_requests_pass_untouched() {
        let f = Faults::default();
        f.add(FaultSpec {
            path_prefix: "/products/".into(),
            method: Some("POST".into()),
            status: Some(422),
            times: 1,
            latency_ms: None,
            drop_connection: false,
            after_handler: false,
            skip: 2,
            one_in: 1,
            answer_bytes: None,
            undeclared_length: false,
            answer_pause_ms: None,
            seen: 0,
        });
        assert!(f.take("POST", "/products/").is_none());
        assert!(f.take("GET", "/products/").is_none());
        assert!(f.take("POST", "/products/p/price").is_none());
        assert_eq!(
            f.take("POST", "/products/p/price").unwrap().status,
            Some(422)
        );
    }

    #[test]
    fn one_in_n_fails_a_steady_share() {
        let f = Faults::default();
        f.add(FaultSpec {
            path_prefix: "/products/".into(),
            method: None,
            status: Some(503),
            times: u32::MAX,
            latency_ms: None,
            drop_connection: false,
            after_handler: false,
            skip: 0,
            one_in: 10,
            answer_bytes: None,
            undeclared_length: false,
            answer_pause_ms: None,
            seen: 0,
        });
        let failed = (0..100)
            .filter(|_| f.take("POST", "/products/").is_some())
            .count();
        assert_eq!(failed, 10);
    }

    #[test]
    fn a_one_in_fault_not_due_lets_the_next_one_apply() {
        let f = Faults::default();
        for (status, one_in) in [(503, 2), (502, 3)] {
            f.add(FaultSpec {
                path_prefix: "/products/".into(),
                method: None,
                status: Some(status),
                times: u32::MAX,
                latency_ms: None,
                drop_connection: false,
                after_handler: false,
                skip: 0,
                one_in,
                answer_bytes: None,
                undeclared_length: false,
                answer_pause_ms: None,
                seen: 0,
            });
        }
        let seen: Vec<Option<u16>> = (0..6)
            .map(|_| f.take("GET", "/products/").and_then(|x| x.status))
            .collect();
        // The 503 fault takes every 2nd request; of those it leaves, the 502 fault takes every 3rd.
        assert_eq!(
            seen,
            [None, Some(503), None, Some(503), Some(502), Some(503)]
        );
    }
}
