//! Prometheus metrics of api-backend (`GET /metrics`): HighLevel calls by endpoint, rate-limit waits and 429s,
//! idempotent replays, token fetches and refreshes through the bridge.

use crate::state::AppState;
use prometheus::{Encoder, IntCounter, IntCounterVec, Opts, Registry, TextEncoder};
use std::sync::atomic::Ordering;

pub struct Metrics {
    registry: Registry,
    pub idempotent_replays: IntCounter,
    pacing: IntCounterVec,
    bridge: IntCounterVec,
    calls: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let idempotent_replays = IntCounter::new(
            "api_idempotent_replays_total",
            "Requests answered from an Idempotency-Key record",
        )
        .unwrap_or_else(|_| unreachable!("static metric definition"));
        let pacing = IntCounterVec::new(
            Opts::new("api_highlevel_pacing_total", "HighLevel calls under the rate limit: sent, waited, waited_ms, throttled (429), wait_bound_exceeded, daily_limit_refusals, shared_unreachable (sent on this replica's own window: the shared budget was unreachable), held_for_others (slots held because HighLevel counted more requests than were sent through this budget: another client's share)"),
            &["counter"],
        )
        .unwrap_or_else(|_| unreachable!("static metric definition"));
        let bridge = IntCounterVec::new(
            Opts::new(
                "api_bridge_tokens_total",
                "Tokens through the bridge: fetches, refreshes, cache_hits",
            ),
            &["counter"],
        )
        .unwrap_or_else(|_| unreachable!("static metric definition"));
        let calls = IntCounterVec::new(
            Opts::new(
                "api_highlevel_calls_total",
                "HighLevel answers by endpoint and status (status 0: no answer)",
            ),
            &["endpoint", "status"],
        )
        .unwrap_or_else(|_| unreachable!("static metric definition"));
        for c in [
            Box::new(idempotent_replays.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(pacing.clone()),
            Box::new(bridge.clone()),
            Box::new(calls.clone()),
        ] {
            let _ = registry.register(c);
        }
        Metrics {
            registry,
            idempotent_replays,
            pacing,
            bridge,
            calls,
        }
    }

    /// The clients count in atomics; each Prometheus counter is brought up to its atomic at every scrape (the
    /// atomics only grow, so this keeps the counters' semantics).
    pub fn render(&self, state: &AppState) -> String {
        let catch_up = |c: prometheus::IntCounter, v: u64| {
            if v > c.get() {
                c.inc_by(v - c.get());
            }
        };
        let p = &state.hl.pacer.stats;
        for (name, v) in [
            ("sent", &p.sent),
            ("waited", &p.waited),
            ("waited_ms", &p.waited_ms),
            ("throttled", &p.throttled),
            ("wait_bound_exceeded", &p.wait_bound_exceeded),
            ("daily_limit_refusals", &p.daily_limit_refusals),
            ("shared_unreachable", &p.shared_unreachable),
            ("held_for_others", &p.held_for_others),
        ] {
            catch_up(
                self.pacing.with_label_values(&[name]),
                v.load(Ordering::Relaxed),
            );
        }
        let b = &state.bridge.stats;
        for (name, v) in [
            ("fetches", &b.token_fetches),
            ("refreshes", &b.refreshes),
            ("cache_hits", &b.cache_hits),
        ] {
            catch_up(
                self.bridge.with_label_values(&[name]),
                v.load(Ordering::Relaxed),
            );
        }
        for ((endpoint, status), n) in state
            .hl
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            catch_up(
                self.calls
                    .with_label_values(&[*endpoint, status.to_string().as_str()]),
                *n,
            );
        }
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
