//! Pacing under HighLevel's rate limit (docs/design.md, pacing): many concurrent requests, zero 429s; past the wait
//! bound a clear 503 with Retry-After; locations never wait on each other.

use crate::common::*;
use service_common::both_backends;
use service_common::testing::Backend;
use std::time::{Duration, Instant};

async fn concurrent_requests_never_exceed_the_limit(backend: Backend) {
    let s = stack_with(
        backend,
        sim_config(10, 1000),
        &[
            ("RATE_LIMIT_BURST", "10"),
            ("RATE_LIMIT_INTERVAL_MS", "1000"),
        ],
    )
    .await;
    install(&s, "Location", &["Loc1"]).await;
    install(&s, "Location", &["Loc2"]).await;
    let t = service_token();
    let started = Instant::now();
    let calls: Vec<_> = (0..40)
        .map(|i| {
            get(
                &s,
                if i % 2 == 0 {
                    "/api/locations/Loc1/products"
                } else {
                    "/api/locations/Loc2/products"
                },
                &t,
            )
        })
        .collect();
    for (status, body) in futures::future::join_all(calls).await {
        assert_eq!(status, 200, "{body}");
    }
    // 20 per location at 10 per second: the second block waits one interval; locations run side by side.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert_eq!(s.sim.stats().rate_limited, 0, "no 429 from HighLevel");
}

async fn waiting_past_the_bound_is_a_503_with_retry_after(backend: Backend) {
    let s = stack_with(
        backend,
        sim_config(5, 5000),
        &[
            ("RATE_LIMIT_BURST", "5"),
            ("RATE_LIMIT_INTERVAL_MS", "5000"),
            ("RATE_LIMIT_MAX_WAIT_MS", "300"),
        ],
    )
    .await;
    install(&s, "Location", &["Loc1"]).await;
    let t = service_token();
    let url = format!("{}/api/locations/Loc1/products", s.api.base_url);
    let calls: Vec<_> = (0..8)
        .map(|_| client().get(&url).bearer_auth(&t).send())
        .collect();
    let mut ok = 0;
    for res in futures::future::join_all(calls).await {
        let res = res.unwrap();
        match res.status().as_u16() {
            200 => ok += 1,
            503 => {
                assert_eq!(res.headers()["retry-after"], "5");
                let body: serde_json::Value = res.json().await.unwrap();
                assert_eq!(body["code"], "rate_limited");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 5);
    assert_eq!(s.sim.stats().rate_limited, 0);
}

/// A spent daily budget fails at once with a clear problem, without another request to HighLevel.
async fn a_spent_daily_limit_fails_at_once(backend: Backend) {
    let sim = highlevel_sim::SimConfig {
        rate_daily: 3,
        ..highlevel_sim::SimConfig::default()
    };
    let s = stack_with(backend, sim, &[]).await;
    install(&s, "Location", &["Loc1"]).await;
    let t = service_token();
    let mut codes = Vec::new();
    for _ in 0..5 {
        let (status, body) = get(&s, "/api/locations/Loc1/products", &t).await;
        codes.push((status, body["code"].as_str().map(str::to_owned)));
    }
    assert_eq!(
        codes[..3].iter().filter(|(s, _)| *s == 200).count(),
        3,
        "{codes:?}"
    );
    for (status, code) in &codes[3..] {
        assert_eq!(
            (*status, code.as_deref()),
            (429, Some("daily_limit_spent")),
            "{codes:?}"
        );
    }
    // The third answer said the day was spent: neither of the last two reached HighLevel.
    assert_eq!(sim_count(&s, "GET /products"), 3, "{codes:?}");
}

both_backends!(
    a_spent_daily_limit_fails_at_once,
    concurrent_requests_never_exceed_the_limit,
    waiting_past_the_bound_is_a_503_with_retry_after
);
