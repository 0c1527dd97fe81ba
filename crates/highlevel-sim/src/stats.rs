//! Counters a test reads to prove what HighLevel saw: requests by route and status, refresh grants, reuse.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
pub struct Stats {
    requests: Mutex<BTreeMap<String, BTreeMap<u16, u64>>>,
    token_classes: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    pub refresh_grants: AtomicU64,
    pub refresh_token_reuse: AtomicU64,
    pub refresh_without_user_type: AtomicU64,
    pub authorization_code_grants: AtomicU64,
    pub location_tokens_minted: AtomicU64,
    pub reconnects: AtomicU64,
    pub rate_limited: AtomicU64,
    pub faults_injected: AtomicU64,
    pub webhooks_sent: AtomicU64,
    pub payment_events_received: AtomicU64,
    pub payment_event_repeats: AtomicU64,
    pub payment_event_fields_missing: AtomicU64,
    pub refresh_location_inactive: AtomicU64,
    pub webhook_retries: AtomicU64,
    pub app_uninstalls: AtomicU64,
}

/// A snapshot of the counters, as `GET /_sim/stats` answers it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// `"METHOD /route/pattern"` → status → count.
    pub requests: BTreeMap<String, BTreeMap<u16, u64>>,
    /// `"METHOD /route/pattern"` → token class (`Company`, `Location`) → calls made with a valid token of it.
    #[serde(default)]
    pub token_classes: BTreeMap<String, BTreeMap<String, u64>>,
    pub refresh_grants: u64,
    pub refresh_token_reuse: u64,
    /// Refresh grants that did not say `user_type` (HighLevel asks for it on refresh too).
    pub refresh_without_user_type: u64,
    pub authorization_code_grants: u64,
    pub location_tokens_minted: u64,
    pub reconnects: u64,
    pub rate_limited: u64,
    pub faults_injected: u64,
    pub webhooks_sent: u64,
    /// Payment events a provider reported to `/payments/custom-provider/webhook` (accepted ones).
    pub payment_events_received: u64,
    /// Accepted payment events whose `eventId` had been received before.
    pub payment_event_repeats: u64,
    /// Required fields missing from received payment events, counted over all events (each event's list is kept
    /// with it as `_missing`).
    #[serde(default)]
    pub payment_event_fields_missing: u64,
    /// Refreshes refused with `400 Location is not active` (a suspended sub-account).
    #[serde(default)]
    pub refresh_location_inactive: u64,
    /// Webhook deliveries made again after a `429` (`POST /_sim/webhooks/retry`).
    #[serde(default)]
    pub webhook_retries: u64,
    /// Successful `DELETE /marketplace/app/{appId}/installations` calls.
    #[serde(default)]
    pub app_uninstalls: u64,
}

impl StatsSnapshot {
    /// How many requests a route saw, any status. `route` is `"METHOD /pattern"`, e.g. `"POST /oauth/token"`.
    pub fn count(&self, route: &str) -> u64 {
        self.requests
            .get(route)
            .map(|m| m.values().sum())
            .unwrap_or(0)
    }

    /// How many calls to a route carried a valid token of `class` (`Company` or `Location`).
    pub fn count_class(&self, route: &str, class: &str) -> u64 {
        self.token_classes
            .get(route)
            .and_then(|m| m.get(class))
            .copied()
            .unwrap_or(0)
    }

    pub fn count_status(&self, route: &str, status: u16) -> u64 {
        self.requests
            .get(route)
            .and_then(|m| m.get(&status))
            .copied()
            .unwrap_or(0)
    }
}

impl Stats {
    pub fn record(&self, route: String, status: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(route).or_default().entry(status).or_default() += 1;
    }

    pub fn record_class(&self, route: &str, class: &str) {
        let mut m = self.token_classes.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(route.to_owned())
            .or_default()
            .entry(class.to_owned())
            .or_default() += 1;
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            requests: self
                .requests
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            token_classes: self
                .token_classes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            refresh_grants: get(&self.refresh_grants),
            refresh_token_reuse: get(&self.refresh_token_reuse),
            refresh_without_user_type: get(&self.refresh_without_user_type),
            authorization_code_grants: get(&self.authorization_code_grants),
            location_tokens_minted: get(&self.location_tokens_minted),
            reconnects: get(&self.reconnects),
            rate_limited: get(&self.rate_limited),
            faults_injected: get(&self.faults_injected),
            webhooks_sent: get(&self.webhooks_sent),
            payment_events_received: get(&self.payment_events_received),
            payment_event_repeats: get(&self.payment_event_repeats),
            payment_event_fields_missing: get(&self.payment_event_fields_missing),
            refresh_location_inactive: get(&self.refresh_location_inactive),
            webhook_retries: get(&self.webhook_retries),
            app_uninstalls: get(&self.app_uninstalls),
        }
    }

    pub fn reset(&self) {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.token_classes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        for c in [
            &self.refresh_grants,
            &self.refresh_token_reuse,
            &self.refresh_without_user_type,
            &self.authorization_code_grants,
            &self.location_tokens_minted,
            &self.reconnects,
            &self.rate_limited,
            &self.faults_injected,
            &self.webhooks_sent,
            &self.payment_events_received,
            &self.payment_event_repeats,
            &self.payment_event_fields_missing,
            &self.refresh_location_inactive,
            &self.webhook_retries,
            &self.app_uninstalls,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}
