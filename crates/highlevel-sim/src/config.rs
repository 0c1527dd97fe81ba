//! How one simulator instance is configured: flags with environment fallbacks, or built in code by tests.

use clap::Parser;

/// A faithful HighLevel (LeadConnector) API simulator for local runs and tests.
///
/// It serves HighLevel's OAuth, products, prices, media and payments routes with HighLevel's bodies and
/// refusals, counts a sliding-window rate limit, and exposes a control surface under /_sim/ (reset, tenants,
/// token expiry, fault injection, signed webhooks, stats). See docs/api.md and docs/highlevel.md.
#[derive(Debug, Clone, Parser)]
#[command(name = "highlevel-sim", version)]
pub struct SimConfig {
    /// Port to listen on (127.0.0.1 unless --host says otherwise).
    #[arg(long, env = "PORT", default_value_t = 8090)]
    pub port: u16,

    /// Address to bind.
    #[arg(long, env = "SIM_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// The marketplace app's client id; tokens carry it as `sourceId`.
    #[arg(long, env = "HIGHLEVEL_CLIENT_ID", default_value = "dev-client-id")]
    pub client_id: String,

    /// The marketplace app's client secret; `/oauth/token` refuses any other.
    #[arg(
        long,
        env = "HIGHLEVEL_CLIENT_SECRET",
        default_value = "dev-client-secret",
        hide_default_value = true
    )]
    pub client_secret: String,

    /// The marketplace app id (`appId` in webhooks and `/oauth/installedLocations`).
    #[arg(long, env = "HIGHLEVEL_APP_ID", default_value = "dev-app-id")]
    pub app_id: String,

    /// The app's Shared Secret: `/_sim/sso` and `/_sim/app` encrypt user context with it, as HighLevel does for app pages.
    #[arg(
        long,
        env = "HIGHLEVEL_SSO_KEY",
        default_value = "dev-sso-key",
        hide_default_value = true
    )]
    pub sso_key: String,

    /// Lifetime of issued access tokens, in seconds.
    #[arg(long, env = "SIM_ACCESS_TOKEN_TTL", default_value_t = 86_399)]
    pub access_token_ttl: i64,

    /// Requests allowed per app per location or company in any one window.
    #[arg(long, env = "SIM_RATE_BURST", default_value_t = 100)]
    pub rate_burst: u32,

    /// Length of the sliding rate-limit window, in milliseconds.
    #[arg(long, env = "SIM_RATE_WINDOW_MS", default_value_t = 10_000)]
    pub rate_window_ms: u64,

    /// Requests allowed per app per location or company per day.
    #[arg(long, env = "SIM_RATE_DAILY", default_value_t = 200_000)]
    pub rate_daily: u32,

    /// Worker threads (0: one per core).
    #[arg(long, env = "SIM_WORKERS", default_value_t = 0)]
    pub workers: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            port: 0,
            host: "127.0.0.1".into(),
            client_id: "dev-client-id".into(),
            client_secret: "dev-client-secret".into(),
            app_id: "dev-app-id".into(),
            sso_key: "dev-sso-key".into(),
            access_token_ttl: 86_399,
            rate_burst: 100,
            rate_window_ms: 10_000,
            rate_daily: 200_000,
            workers: 2,
        }
    }
}
