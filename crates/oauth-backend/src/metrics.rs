//! Prometheus metrics: refresh outcomes, token-access latency, cache hits, location tokens, audit drops,
//! webhooks received and forwarded.

use prometheus::local::{LocalHistogram, LocalIntCounter};
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A metric each thread counts into alone (the token-access path's: observing touches no cache line another
/// core writes); what the threads hold is added into the registered metric whenever metrics are rendered.
pub struct PerThread<M: prometheus::local::LocalMetric + Send> {
    local: thread_local::ThreadLocal<Mutex<M>>,
    new_local: Box<dyn Fn() -> M + Send + Sync>,
}

impl<M: prometheus::local::LocalMetric + Send> PerThread<M> {
    fn new(new_local: impl Fn() -> M + Send + Sync + 'static) -> Self {
        PerThread {
            local: thread_local::ThreadLocal::new(),
            new_local: Box::new(new_local),
        }
    }

    /// This thread's part.
    pub fn mine(&self) -> MutexGuard<'_, M> {
        self.local
            .get_or(|| Mutex::new((self.new_local)()))
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds every thread's part into the registered metric.
    fn flush(&self) {
        for local in self.local.iter() {
            local.lock().unwrap_or_else(PoisonError::into_inner).flush();
        }
    }
}

pub struct Metrics {
    registry: Registry,
    refresh: IntCounterVec,
    pub token_access_seconds: PerThread<LocalHistogram>,
    pub cache_hits: PerThread<LocalIntCounter>,
    pub cache_misses: PerThread<LocalIntCounter>,
    location_minted: IntCounter,
    absent_hits: IntCounter,
    pub audit_dropped: IntCounter,
    webhooks: IntCounterVec,
    forwards: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let refresh = IntCounterVec::new(
            Opts::new(
                "oauth_refresh_total",
                "Installation token refreshes by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let token_access_seconds = Histogram::with_opts(
            HistogramOpts::new("oauth_token_access_seconds", "Token-access answer time").buckets(
                vec![0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0],
            ),
        )
        .expect("valid metric");
        let cache = IntCounterVec::new(
            Opts::new("oauth_token_cache_total", "Token cache lookups"),
            &["result"],
        )
        .expect("valid metric");
        let location_minted = IntCounter::new(
            "oauth_location_tokens_minted_total",
            "Location tokens minted",
        )
        .expect("valid metric");
        let absent_hits = IntCounter::new(
            "oauth_absent_location_hits_total",
            "Requests for a location HighLevel did not list, answered from the negative cache",
        )
        .expect("valid metric");
        let audit_dropped = IntCounter::new(
            "oauth_audit_dropped_total",
            "Audit entries dropped (buffer full)",
        )
        .expect("valid metric");
        let webhooks = IntCounterVec::new(
            Opts::new(
                "oauth_webhooks_total",
                "Webhooks received by type and outcome",
            ),
            &["type", "outcome"],
        )
        .expect("valid metric");
        let forwards = IntCounterVec::new(
            Opts::new(
                "oauth_webhook_forwards_total",
                "Attempts to forward a webhook to the app, by outcome (delivered, retry, dead)",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        for c in [&refresh, &cache, &webhooks, &forwards] {
            let _ = registry.register(Box::new(c.clone()));
        }
        let _ = registry.register(Box::new(token_access_seconds.clone()));
        let _ = registry.register(Box::new(location_minted.clone()));
        let _ = registry.register(Box::new(absent_hits.clone()));
        let _ = registry.register(Box::new(audit_dropped.clone()));
        // Resolved once: the hot path must not hash label values on every request.
        let cache_hits = cache.with_label_values(&["hit"]);
        let cache_misses = cache.with_label_values(&["miss"]);
        Metrics {
            registry,
            refresh,
            token_access_seconds: PerThread::new(move || token_access_seconds.local()),
            cache_hits: PerThread::new(move || cache_hits.local()),
            cache_misses: PerThread::new(move || cache_misses.local()),
            location_minted,
            absent_hits,
            audit_dropped,
            webhooks,
            forwards,
        }
    }

    pub fn refresh(&self, outcome: &str) {
        self.refresh.with_label_values(&[outcome]).inc();
    }

    pub fn location_minted(&self) {
        self.location_minted.inc();
    }

    pub fn absent_location_hit(&self) {
        self.absent_hits.inc();
    }

    pub fn webhook(&self, kind: &str, outcome: &str) {
        self.webhooks.with_label_values(&[kind, outcome]).inc();
    }

    pub fn forward(&self, outcome: &str) {
        self.forwards.with_label_values(&[outcome]).inc();
    }

    pub fn render(&self) -> String {
        self.token_access_seconds.flush();
        self.cache_hits.flush();
        self.cache_misses.flush();
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
