//! Settings: built-in defaults < the file named by `CONFIG_FILE` < the environment. A required setting that
//! is missing stops start-up with one line naming it. Secrets are `SecretString`s, never printed.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use service_common::logging::LogFormat;
use service_common::settings::read;
pub use service_common::settings::SettingsError;
use std::time::Duration;

/// HighLevel's app hosts: where a marketplace app's pages are framed from.
pub const HIGHLEVEL_APP_ORIGINS: &str =
    "https://app.gohighlevel.com,https://app.leadconnectorhq.com";

/// Ten files of 25 MB fit, with room for their multipart headers.
pub const DEFAULT_MEDIA_BUFFER_BUDGET: &str = "256MiB";

/// The built-in defaults, by environment name.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("HOST", "0.0.0.0"),
    ("PORT", "8082"),
    ("DATABASE_URL", "sqlite://data/api-backend.db"),
    ("HIGHLEVEL_API_URL", "https://services.leadconnectorhq.com"),
    (
        "HIGHLEVEL_BACKEND_URL",
        "https://backend.leadconnectorhq.com",
    ),
    ("OAUTH_BACKEND_URL", "http://127.0.0.1:8081"),
    ("CORS_ALLOWED_ORIGINS", HIGHLEVEL_APP_ORIGINS),
    ("DB_POOL_SIZE", "10"),
    ("HIGHLEVEL_TIMEOUT_MS", "15000"),
    ("HIGHLEVEL_IDLE_TIMEOUT_MS", "15000"),
    ("RATE_LIMIT_BURST", "100"),
    ("RATE_LIMIT_INTERVAL_MS", "10000"),
    ("RATE_LIMIT_MAX_WAIT_MS", "30000"),
    ("SESSION_TTL_SECS", "3600"),
    ("PROVIDER_INSTALLED_CHECK_SECS", "30"),
    ("SANDBOX_WAIT_MS", "3000"),
    ("PAYMENT_EVENTS_INTERVAL_MS", "1000"),
    ("PAYTR_API_URL", "https://www.paytr.com"),
    ("PAYMENT_PARENT_ORIGINS", ""),
    ("MEDIA_BUFFER_BUDGET", DEFAULT_MEDIA_BUFFER_BUDGET),
    ("PROXY_ANSWER_LIMIT", "10MiB"),
    ("IDEMPOTENCY_RETENTION", "24h"),
    ("IDEMPOTENCY_LEASE", "6s"),
    ("SUBSCRIPTIONS_INTERVAL", "1m"),
    ("SUBSCRIPTIONS_CONCURRENCY", "4"),
    ("SUBSCRIPTION_RETRY_DELAYS", "1d,3d,7d"),
];

/// Field names are the environment's in lower case (`HIGHLEVEL_SSO_KEY` is `highlevel_sso_key`).
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub database_url: String,
    #[serde(deserialize_with = "read::url")]
    pub highlevel_api_url: String,
    /// Where payment provider events go (HIGHLEVEL_BACKEND_URL).
    #[serde(deserialize_with = "read::url")]
    pub highlevel_backend_url: String,
    #[serde(deserialize_with = "read::url")]
    pub oauth_backend_url: String,
    pub service_jwt_secret: SecretString,
    #[serde(rename = "highlevel_sso_key")]
    pub sso_key: SecretString,
    #[serde(deserialize_with = "read::list")]
    pub cors_allowed_origins: Vec<String>,
    /// Public URL HighLevel reaches (queryUrl, paymentsUrl); needed to register the payments provider.
    #[serde(default, deserialize_with = "optional_url")]
    pub public_base_url: Option<String>,
    /// This app's client id, when set: diagnosis spots tokens of another app.
    pub highlevel_client_id: Option<String>,
    /// Seals gateway credentials (PayTR); needed only to register a PayTR provider.
    pub token_encryption_keys: Option<SecretString>,
    #[serde(default = "LogFormat::detect")]
    pub log_format: LogFormat,
    pub db_pool_size: u32,
    /// The bound on one HighLevel call (HIGHLEVEL_TIMEOUT_MS, 15000): a call whose answer is read whole, to
    /// its last byte; one the proxy streams, to the answer's head.
    #[serde(rename = "highlevel_timeout_ms", deserialize_with = "read::millis")]
    pub highlevel_timeout: Duration,
    /// A streamed answer's body (the proxy): the longest HighLevel may leave it without a next piece
    /// (HIGHLEVEL_IDLE_TIMEOUT_MS, 15000); the transfer as a whole has no bound.
    #[serde(
        rename = "highlevel_idle_timeout_ms",
        deserialize_with = "read::millis"
    )]
    pub highlevel_idle_timeout: Duration,
    pub rate_limit_burst: u32,
    #[serde(rename = "rate_limit_interval_ms", deserialize_with = "read::millis")]
    pub rate_limit_interval: Duration,
    /// The longest a request waits for room under HighLevel's rate limit before it gets a 503.
    #[serde(rename = "rate_limit_max_wait_ms", deserialize_with = "read::millis")]
    pub rate_limit_max_wait: Duration,
    pub session_ttl_secs: i64,
    /// How long a location seen installed is trusted before its payments provider asks again
    /// (PROVIDER_INSTALLED_CHECK_SECS, 30): the bound on serving a provider after an uninstall.
    #[serde(
        rename = "provider_installed_check_secs",
        deserialize_with = "read::secs"
    )]
    pub provider_installed_check: Duration,
    /// How long the sandbox's "wait" card keeps a charge pending before it succeeds.
    pub sandbox_wait_ms: i64,
    /// How often the payment events outbox is delivered.
    #[serde(
        rename = "payment_events_interval_ms",
        deserialize_with = "read::millis"
    )]
    pub payment_events_interval: Duration,
    /// PayTR's API base (tests point it at a fake).
    #[serde(deserialize_with = "read::url")]
    pub paytr_api_url: String,
    /// Windows allowed to frame the payment page and send it `payment_initiate_props`.
    #[serde(deserialize_with = "read::list")]
    pub payment_parent_origins: Vec<String>,
    /// Bytes of media uploads this process holds at once (spooled to files in `media_spool_dir` for the send
    /// and a replay); an upload that does not fit gets a 503 with `Retry-After`.
    #[serde(deserialize_with = "read::size")]
    pub media_buffer_budget: u64,
    /// The largest HighLevel answer the proxy passes on (PROXY_ANSWER_LIMIT, 10MiB): one declared larger is
    /// refused with 502 `highlevel_answer_too_large`, one that grows past it while streaming is cut off.
    #[serde(deserialize_with = "read::size")]
    pub proxy_answer_limit: u64,
    /// Where uploads are spooled (the system's temporary folder by default).
    pub media_spool_dir: Option<std::path::PathBuf>,
    /// How long a finished `Idempotency-Key` record is kept (its answer replayed) before it is purged.
    #[serde(with = "humantime_serde")]
    pub idempotency_retention: Duration,
    /// A running keyed request's lease on its key: renewed every third of it while the request runs; a key
    /// whose owner stopped renewing (a crashed replica) is taken over once the lease has run out.
    #[serde(with = "humantime_serde")]
    pub idempotency_lease: Duration,
    /// How often the renewal scheduler looks for subscriptions due (SUBSCRIPTIONS_INTERVAL, 1m; 0 turns the
    /// background loop off, leaving `api-backend subscriptions run-due` to an outside scheduler).
    #[serde(with = "humantime_serde")]
    pub subscriptions_interval: Duration,
    /// Renewals charged at once by one pass (SUBSCRIPTIONS_CONCURRENCY, 4).
    pub subscriptions_concurrency: usize,
    /// When a declined renewal is tried again, counted from the period's due time
    /// (SUBSCRIPTION_RETRY_DELAYS, `1d,3d,7d`); after the last the subscription is `unpaid`.
    #[serde(deserialize_with = "durations")]
    pub subscription_retry_delays: Vec<Duration>,
}

impl Settings {
    pub fn subscription_retry_delays_ms(&self) -> Vec<i64> {
        self.subscription_retry_delays
            .iter()
            .map(|d| d.as_millis() as i64)
            .collect()
    }
}

/// A comma-separated list of durations such as `1d,3d,7d`.
fn durations<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    String::deserialize(d)?
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            humantime::parse_duration(v).map_err(|e| {
                serde::de::Error::custom(format!("`{v}` is not a duration like 1d or 12h ({e})"))
            })
        })
        .collect()
}

fn optional_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    read::url(d).map(Some)
}

/// Each origin is `scheme://host[:port]`.
fn check_origins(name: &str, list: &[String]) -> Result<(), SettingsError> {
    for o in list {
        let ok = (o.starts_with("https://") || o.starts_with("http://"))
            && o.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".:/-".contains(c))
            && o.matches('/').count() == 2;
        if !ok {
            return Err(SettingsError::invalid(
                name,
                format!("`{o}` is not an origin like https://app.gohighlevel.com"),
            ));
        }
    }
    Ok(())
}

impl Settings {
    pub fn load() -> Result<Settings, SettingsError> {
        service_common::settings::load::<Settings>(DEFAULTS)?.checked()
    }

    /// Settings for a HighLevel simulator at `sim_url` and an oauth-backend at `oauth_url`: what the
    /// development stack, the benchmarks and the tests run with. `extra` overrides or adds names.
    pub fn for_simulator(
        sim_url: &str,
        oauth_url: &str,
        database_url: &str,
        service_jwt_secret: &str,
        extra: &[(&str, String)],
    ) -> Result<Settings, SettingsError> {
        let mut vars = Self::simulator_env(sim_url, oauth_url, database_url, service_jwt_secret);
        vars.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
        Settings::from_vars(vars)
    }

    /// The environment `for_simulator` reads, for starting the binary against a simulator (benchmarks, drills).
    pub fn simulator_env<'a>(
        sim_url: &str,
        oauth_url: &str,
        database_url: &str,
        service_jwt_secret: &str,
    ) -> Vec<(&'a str, String)> {
        vec![
            ("HOST", "127.0.0.1".into()),
            ("PORT", "0".into()),
            ("DATABASE_URL", database_url.into()),
            ("HIGHLEVEL_API_URL", sim_url.into()),
            ("HIGHLEVEL_BACKEND_URL", sim_url.into()),
            ("OAUTH_BACKEND_URL", oauth_url.into()),
            ("SERVICE_JWT_SECRET", service_jwt_secret.into()),
            ("HIGHLEVEL_SSO_KEY", "dev-sso-key".into()),
            ("HIGHLEVEL_CLIENT_ID", "dev-client-id".into()),
            ("LOG_FORMAT", "pretty".into()),
        ]
    }

    /// Builds settings from environment-style names and values alone (later names win).
    pub fn from_vars<K: AsRef<str>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Settings, SettingsError> {
        service_common::settings::from_vars::<Settings, _, _>(DEFAULTS, vars)?.checked()
    }

    fn checked(self) -> Result<Settings, SettingsError> {
        let s = self;
        check_origins("PAYMENT_PARENT_ORIGINS", &s.payment_parent_origins)?;
        if !(1..=64).contains(&s.subscriptions_concurrency) {
            return Err(SettingsError::invalid(
                "SUBSCRIPTIONS_CONCURRENCY",
                "use 1 to 64",
            ));
        }
        if s.subscription_retry_delays.len() > 20
            || s.subscription_retry_delays.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(SettingsError::invalid(
                "SUBSCRIPTION_RETRY_DELAYS",
                "list at most 20 increasing delays, e.g. 1d,3d,7d",
            ));
        }
        if s.media_buffer_budget < 1024 * 1024 {
            return Err(SettingsError::invalid(
                "MEDIA_BUFFER_BUDGET",
                "use at least 1MiB",
            ));
        }
        if s.proxy_answer_limit < 64 * 1024 {
            return Err(SettingsError::invalid(
                "PROXY_ANSWER_LIMIT",
                "use at least 64KiB",
            ));
        }
        // No pause at all would cut off every proxied answer that arrives in more than one piece.
        if s.highlevel_idle_timeout < Duration::from_millis(100) {
            return Err(SettingsError::invalid(
                "HIGHLEVEL_IDLE_TIMEOUT_MS",
                "use at least 100",
            ));
        }
        if s.idempotency_lease < Duration::from_secs(1)
            || s.idempotency_lease > Duration::from_secs(300)
        {
            return Err(SettingsError::invalid("IDEMPOTENCY_LEASE", "use 1s to 5m"));
        }
        if s.idempotency_retention < Duration::from_secs(1) {
            return Err(SettingsError::invalid(
                "IDEMPOTENCY_RETENTION",
                "use at least 1s",
            ));
        }
        if s.service_jwt_secret.expose_secret().len() < 32 {
            return Err(SettingsError::invalid(
                "SERVICE_JWT_SECRET",
                "use at least 32 characters",
            ));
        }
        if s.cors_allowed_origins.iter().any(|o| o == "*") {
            return Err(SettingsError::invalid(
                "CORS_ALLOWED_ORIGINS",
                "a wildcard cannot be used with credentials; list the origins",
            ));
        }
        if !(60..=86_400).contains(&s.session_ttl_secs) {
            return Err(SettingsError::invalid(
                "SESSION_TTL_SECS",
                "use 60 to 86400 seconds",
            ));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, String> {
        HashMap::from([
            ("SERVICE_JWT_SECRET", "s".repeat(40)),
            ("HIGHLEVEL_SSO_KEY", "very-secret-sso-key".to_owned()),
        ])
    }

    #[test]
    fn defaults_follow_the_contract() {
        let env = base();
        let s = Settings::from_vars(env.clone()).unwrap();
        assert_eq!(s.port, 8082);
        assert_eq!(s.database_url, "sqlite://data/api-backend.db");
        assert_eq!(s.oauth_backend_url, "http://127.0.0.1:8081");
        assert_eq!(s.cors_allowed_origins.len(), 2);
        assert_eq!(s.media_buffer_budget, 256 * 1024 * 1024);
        assert_eq!(s.idempotency_retention, Duration::from_secs(24 * 3600));
        assert_eq!(s.idempotency_lease, Duration::from_secs(6));
        assert_eq!(s.highlevel_timeout, Duration::from_secs(15));
        assert_eq!(s.highlevel_idle_timeout, Duration::from_secs(15));
        assert!(!format!("{s:?}").contains("very-secret-sso-key"));
    }

    #[test]
    fn a_proxied_answer_may_pause_at_least_100_ms() {
        let mut env = base();
        env.insert("HIGHLEVEL_IDLE_TIMEOUT_MS", "0".into());
        let err = Settings::from_vars(env.clone()).unwrap_err().to_string();
        assert!(err.contains("HIGHLEVEL_IDLE_TIMEOUT_MS"), "{err}");
        env.insert("HIGHLEVEL_IDLE_TIMEOUT_MS", "250".into());
        let s = Settings::from_vars(env).unwrap();
        assert_eq!(s.highlevel_idle_timeout, Duration::from_millis(250));
    }

    #[test]
    fn a_missing_required_setting_is_named_and_wildcards_refused() {
        let mut env = base();
        env.remove("HIGHLEVEL_SSO_KEY");
        let err = Settings::from_vars(env.clone()).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("missing required setting HIGHLEVEL_SSO_KEY"));
        let mut env = base();
        env.insert("CORS_ALLOWED_ORIGINS", "*".into());
        assert!(Settings::from_vars(env.clone()).is_err());
    }

    #[test]
    fn sizes_and_durations_read_as_people_write_them() {
        let mut env = base();
        env.insert("MEDIA_BUFFER_BUDGET", "3MiB".into());
        env.insert("IDEMPOTENCY_RETENTION", "90m".into());
        let s = Settings::from_vars(env.clone()).unwrap();
        assert_eq!(s.media_buffer_budget, 3 * 1024 * 1024);
        assert_eq!(s.idempotency_retention, Duration::from_secs(5400));
        env.insert("IDEMPOTENCY_RETENTION", "a day".into());
        let err = Settings::from_vars(env.clone()).unwrap_err();
        assert!(err.to_string().contains("IDEMPOTENCY_RETENTION"), "{err}");
    }

    #[test]
    fn a_bad_duration_is_one_line_naming_it() {
        let mut env = base();
        env.insert("IDEMPOTENCY_LEASE", "6 parsecs".into());
        let err = Settings::from_vars(env).unwrap_err().to_string();
        assert!(
            err.starts_with("setting IDEMPOTENCY_LEASE is invalid"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn renewal_settings() {
        let mut env = base();
        let s = Settings::from_vars(env.clone()).unwrap();
        assert_eq!(
            s.subscription_retry_delays_ms(),
            [86_400_000, 3 * 86_400_000, 7 * 86_400_000],
            "3 tries over 7 days"
        );
        assert_eq!(s.subscriptions_interval, Duration::from_secs(60));
        assert_eq!(s.subscriptions_concurrency, 4);
        env.insert("SUBSCRIPTION_RETRY_DELAYS", "2h, 1d".into());
        assert_eq!(
            Settings::from_vars(env.clone())
                .unwrap()
                .subscription_retry_delays_ms(),
            [7_200_000, 86_400_000]
        );
        env.insert("SUBSCRIPTION_RETRY_DELAYS", "3d,1d".into());
        let err = Settings::from_vars(env.clone()).unwrap_err();
        assert!(
            err.to_string().contains("SUBSCRIPTION_RETRY_DELAYS"),
            "{err}"
        );
        env.insert("SUBSCRIPTIONS_CONCURRENCY", "0".into());
        assert!(Settings::from_vars(env.clone()).is_err());
    }
}
