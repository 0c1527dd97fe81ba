//! Prometheus metrics of api-backend (`GET /metrics`): HighLevel calls by endpoint, rate-limit waits and 429s,
//! idempotent replays, token fetches and refreshes through the bridge.

use crate::state::AppState;
use prometheus::{Encoder, IntCounter, IntGaugeVec, Opts, Registry, TextEncoder};
use std::sync::atomic::Ordering;

pub struct Metrics {
    registry: Registry,
    pub idempotent_replays: IntCounter,
    pacing: IntGaugeVec,
    bridge: IntGaugeVec,
    calls: IntGaugeVec,
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
        let pacing = IntGaugeVec::new(
            Opts::new("api_highlevel_pacing", "HighLevel calls under the rate limit: sent, waited, waited_ms, throttled (429), wait_bound_exceeded, daily_limit_refusals"),
            &["counter"],
        )
        .unwrap_or_else(|_| unreachable!("static metric definition"));
        let bridge = IntGaugeVec::new(
            Opts::new(
                "api_bridge_tokens",
                "Tokens through the bridge: fetches, refreshes, cache_hits",
            ),
            &["counter"],
        )
        .unwrap_or_else(|_| unreachable!("static metric definition"));
        let calls = IntGaugeVec::new(
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

    pub fn render(&self, state: &AppState) -> String {
        let p = &state.hl.pacer.stats;
        for (name, v) in [
            ("sent", &p.sent),
            ("waited", &p.waited),
            ("waited_ms", &p.waited_ms),
            ("throttled", &p.throttled),
            ("wait_bound_exceeded", &p.wait_bound_exceeded),
            ("daily_limit_refusals", &p.daily_limit_refusals),
        ] {
            self.pacing
                .with_label_values(&[name])
                .set(v.load(Ordering::Relaxed) as i64);
        }
        let b = &state.bridge.stats;
        for (name, v) in [
            ("fetches", &b.token_fetches),
            ("refreshes", &b.refreshes),
            ("cache_hits", &b.cache_hits),
        ] {
            self.bridge
                .with_label_values(&[name])
                .set(v.load(Ordering::Relaxed) as i64);
        }
        for ((endpoint, status), n) in state
            .hl
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            self.calls
                .with_label_values(&[*endpoint, status.to_string().as_str()])
                .set(*n as i64);
        }
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
