//! Settings: built-in defaults < the file named by `CONFIG_FILE` < the environment. A required setting that
//! is missing stops start-up with one line naming it. Secrets are `SecretString`s, never printed.

use secrecy::{ExposeSecret, SecretString};
use service_common::logging::LogFormat;
use std::time::Duration;

/// HighLevel's app hosts: where a marketplace app's pages are framed from.
pub const HIGHLEVEL_APP_ORIGINS: &str =
    "https://app.gohighlevel.com,https://app.leadconnectorhq.com";

/// Ten files of 25 MB fit, with room for their multipart headers.
pub const DEFAULT_MEDIA_BUFFER_BUDGET: &str = "256MiB";

#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub database_url: String,
    pub highlevel_api_url: String,
    /// Where payment provider events go (HIGHLEVEL_BACKEND_URL).
    pub highlevel_backend_url: String,
    pub oauth_backend_url: String,
    pub service_jwt_secret: SecretString,
    pub sso_key: SecretString,
    pub cors_allowed_origins: Vec<String>,
    /// Public URL HighLevel reaches (queryUrl, paymentsUrl); needed to register the payments provider.
    pub public_base_url: Option<String>,
    /// This app's client id, when set: diagnosis spots tokens of another app.
    pub highlevel_client_id: Option<String>,
    /// Seals gateway credentials (PayTR); needed only to register a PayTR provider.
    pub token_encryption_keys: Option<SecretString>,
    pub log_format: LogFormat,
    pub db_pool_size: u32,
    pub highlevel_timeout: Duration,
    pub rate_limit_burst: u32,
    pub rate_limit_interval: Duration,
    /// The longest a request waits for room under HighLevel's rate limit before it gets a 503.
    pub rate_limit_max_wait: Duration,
    pub session_ttl_secs: i64,
    /// How long a location seen installed is trusted before its payments provider asks again
    /// (PROVIDER_INSTALLED_CHECK_SECS, 30): the bound on serving a provider after an uninstall.
    pub provider_installed_check: Duration,
    /// How long the sandbox's "wait" card keeps a charge pending before it succeeds.
    pub sandbox_wait_ms: i64,
    /// How often the payment events outbox is delivered.
    pub payment_events_interval: Duration,
    /// PayTR's API base (tests point it at a fake).
    pub paytr_api_url: String,
    /// Windows allowed to frame the payment page and send it `payment_initiate_props`.
    pub payment_parent_origins: Vec<String>,
    /// Bytes of media uploads this process holds at once (spooled to files in `media_spool_dir` for the send
    /// and a replay); an upload that does not fit gets a 503 with `Retry-After`.
    pub media_buffer_budget: u64,
    /// Where uploads are spooled (the system's temporary folder by default).
    pub media_spool_dir: Option<std::path::PathBuf>,
    /// How long a finished `Idempotency-Key` record is kept (its answer replayed) before it is purged.
    pub idempotency_retention: Duration,
    /// A running keyed request's lease on its key: renewed every third of it while the request runs; a key
    /// whose owner stopped renewing (a crashed replica) is taken over once the lease has run out.
    pub idempotency_lease: Duration,
    /// How often the renewal scheduler looks for subscriptions due (SUBSCRIPTIONS_INTERVAL, 1m; 0 turns the
    /// background loop off, leaving `api-backend subscriptions run-due` to an outside scheduler).
    pub subscriptions_interval: Duration,
    /// Renewals charged at once by one pass (SUBSCRIPTIONS_CONCURRENCY, 4).
    pub subscriptions_concurrency: usize,
    /// When a declined renewal is tried again, counted from the period's due time
    /// (SUBSCRIPTION_RETRY_DELAYS, `1d,3d,7d`); after the last the subscription is `unpaid`.
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

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("missing required setting {0} (set it in the environment or in the file named by CONFIG_FILE)")]
    Missing(&'static str),
    #[error("setting {name} is invalid: {why}")]
    Invalid { name: &'static str, why: String },
    #[error("{0}")]
    Source(String),
}

/// A duration such as `24h`, `90m`, `30s` or `1h 30m`.
fn duration(name: &'static str, v: String) -> Result<Duration, SettingsError> {
    humantime::parse_duration(v.trim()).map_err(|e| SettingsError::Invalid {
        name,
        why: format!("`{v}` is not a duration like 24h or 90s ({e})"),
    })
}

/// A size such as `256MiB`, `1GB` or `1048576` (bytes).
fn size(name: &'static str, v: String) -> Result<u64, SettingsError> {
    parse_size::parse_size(v.trim()).map_err(|e| SettingsError::Invalid {
        name,
        why: format!("`{v}` is not a size like 256MiB ({e})"),
    })
}

fn number<T: std::str::FromStr>(name: &'static str, v: String) -> Result<T, SettingsError> {
    v.parse().map_err(|_| SettingsError::Invalid {
        name,
        why: format!("`{v}` is not a number"),
    })
}

/// A space- or comma-separated list of origins (`scheme://host[:port]`), each checked.
fn origins(name: &'static str, v: &str) -> Result<Vec<String>, SettingsError> {
    v.split([',', ' '])
        .map(|o| o.trim().trim_end_matches('/'))
        .filter(|o| !o.is_empty())
        .map(|o| {
            let ok = (o.starts_with("https://") || o.starts_with("http://"))
                && o.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".:/-".contains(c))
                && o.matches('/').count() == 2;
            if ok {
                Ok(o.to_owned())
            } else {
                Err(SettingsError::Invalid {
                    name,
                    why: format!("`{o}` is not an origin like https://app.gohighlevel.com"),
                })
            }
        })
        .collect()
}

impl Settings {
    pub fn load() -> Result<Settings, SettingsError> {
        let get = service_common::settings::lookup().map_err(SettingsError::Source)?;
        Settings::from_lookup(get)
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
        Settings::from_lookup(service_common::settings::pairs_lookup(
            Self::simulator_env(sim_url, oauth_url, database_url, service_jwt_secret),
            extra,
        ))
    }

    /// The environment `for_simulator` reads, for starting the binary against a simulator (benchmarks, drills).
    pub fn simulator_env(
        sim_url: &str,
        oauth_url: &str,
        database_url: &str,
        service_jwt_secret: &str,
    ) -> Vec<(&'static str, String)> {
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

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let required = |name: &'static str| get(name).ok_or(SettingsError::Missing(name));
        let or = |name: &str, default: &str| get(name).unwrap_or_else(|| default.to_owned());
        let url = |v: String| v.trim_end_matches('/').to_owned();
        let s = Settings {
            host: or("HOST", "0.0.0.0"),
            port: number("PORT", or("PORT", "8082"))?,
            database_url: or("DATABASE_URL", "sqlite://data/api-backend.db"),
            highlevel_api_url: url(or(
                "HIGHLEVEL_API_URL",
                "https://services.leadconnectorhq.com",
            )),
            highlevel_backend_url: url(or(
                "HIGHLEVEL_BACKEND_URL",
                "https://backend.leadconnectorhq.com",
            )),
            oauth_backend_url: url(or("OAUTH_BACKEND_URL", "http://127.0.0.1:8081")),
            service_jwt_secret: SecretString::from(required("SERVICE_JWT_SECRET")?),
            sso_key: SecretString::from(required("HIGHLEVEL_SSO_KEY")?),
            cors_allowed_origins: or("CORS_ALLOWED_ORIGINS", HIGHLEVEL_APP_ORIGINS)
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            public_base_url: get("PUBLIC_BASE_URL").map(url),
            highlevel_client_id: get("HIGHLEVEL_CLIENT_ID"),
            token_encryption_keys: get("TOKEN_ENCRYPTION_KEYS").map(SecretString::from),
            log_format: LogFormat::parse(get("LOG_FORMAT").as_deref()).map_err(|why| {
                SettingsError::Invalid {
                    name: "LOG_FORMAT",
                    why,
                }
            })?,
            db_pool_size: number("DB_POOL_SIZE", or("DB_POOL_SIZE", "10"))?,
            highlevel_timeout: Duration::from_millis(number(
                "HIGHLEVEL_TIMEOUT_MS",
                or("HIGHLEVEL_TIMEOUT_MS", "15000"),
            )?),
            rate_limit_burst: number("RATE_LIMIT_BURST", or("RATE_LIMIT_BURST", "100"))?,
            rate_limit_interval: Duration::from_millis(number(
                "RATE_LIMIT_INTERVAL_MS",
                or("RATE_LIMIT_INTERVAL_MS", "10000"),
            )?),
            rate_limit_max_wait: Duration::from_millis(number(
                "RATE_LIMIT_MAX_WAIT_MS",
                or("RATE_LIMIT_MAX_WAIT_MS", "30000"),
            )?),
            session_ttl_secs: number("SESSION_TTL_SECS", or("SESSION_TTL_SECS", "3600"))?,
            provider_installed_check: Duration::from_secs(number(
                "PROVIDER_INSTALLED_CHECK_SECS",
                or("PROVIDER_INSTALLED_CHECK_SECS", "30"),
            )?),
            sandbox_wait_ms: number("SANDBOX_WAIT_MS", or("SANDBOX_WAIT_MS", "3000"))?,
            paytr_api_url: url(or("PAYTR_API_URL", "https://www.paytr.com")),
            payment_parent_origins: origins(
                "PAYMENT_PARENT_ORIGINS",
                &or("PAYMENT_PARENT_ORIGINS", ""),
            )?,
            payment_events_interval: Duration::from_millis(number(
                "PAYMENT_EVENTS_INTERVAL_MS",
                or("PAYMENT_EVENTS_INTERVAL_MS", "1000"),
            )?),
            media_buffer_budget: size(
                "MEDIA_BUFFER_BUDGET",
                or("MEDIA_BUFFER_BUDGET", DEFAULT_MEDIA_BUFFER_BUDGET),
            )?,
            media_spool_dir: get("MEDIA_SPOOL_DIR").map(std::path::PathBuf::from),
            idempotency_retention: duration(
                "IDEMPOTENCY_RETENTION",
                or("IDEMPOTENCY_RETENTION", "24h"),
            )?,
            idempotency_lease: duration("IDEMPOTENCY_LEASE", or("IDEMPOTENCY_LEASE", "6s"))?,
            subscriptions_interval: duration(
                "SUBSCRIPTIONS_INTERVAL",
                or("SUBSCRIPTIONS_INTERVAL", "1m"),
            )?,
            subscriptions_concurrency: number(
                "SUBSCRIPTIONS_CONCURRENCY",
                or("SUBSCRIPTIONS_CONCURRENCY", "4"),
            )?,
            subscription_retry_delays: or("SUBSCRIPTION_RETRY_DELAYS", "1d,3d,7d")
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(|d| duration("SUBSCRIPTION_RETRY_DELAYS", d.to_owned()))
                .collect::<Result<_, _>>()?,
        };
        if !(1..=64).contains(&s.subscriptions_concurrency) {
            return Err(SettingsError::Invalid {
                name: "SUBSCRIPTIONS_CONCURRENCY",
                why: "use 1 to 64".into(),
            });
        }
        if s.subscription_retry_delays.len() > 20
            || s.subscription_retry_delays.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(SettingsError::Invalid {
                name: "SUBSCRIPTION_RETRY_DELAYS",
                why: "list at most 20 increasing delays, e.g. 1d,3d,7d".into(),
            });
        }
        if s.media_buffer_budget < 1024 * 1024 {
            return Err(SettingsError::Invalid {
                name: "MEDIA_BUFFER_BUDGET",
                why: "use at least 1MiB".into(),
            });
        }
        if s.idempotency_lease < Duration::from_secs(1)
            || s.idempotency_lease > Duration::from_secs(300)
        {
            return Err(SettingsError::Invalid {
                name: "IDEMPOTENCY_LEASE",
                why: "use 1s to 5m".into(),
            });
        }
        if s.idempotency_retention < Duration::from_secs(1) {
            return Err(SettingsError::Invalid {
                name: "IDEMPOTENCY_RETENTION",
                why: "use at least 1s".into(),
            });
        }
        if s.service_jwt_secret.expose_secret().len() < 32 {
            return Err(SettingsError::Invalid {
                name: "SERVICE_JWT_SECRET",
                why: "use at least 32 characters".into(),
            });
        }
        if s.cors_allowed_origins.iter().any(|o| o == "*") {
            return Err(SettingsError::Invalid {
                name: "CORS_ALLOWED_ORIGINS",
                why: "a wildcard cannot be used with credentials; list the origins".into(),
            });
        }
        if !(60..=86_400).contains(&s.session_ttl_secs) {
            return Err(SettingsError::Invalid {
                name: "SESSION_TTL_SECS",
                why: "use 60 to 86400 seconds".into(),
            });
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
        let s = Settings::from_lookup(|k| env.get(k).cloned()).unwrap();
        assert_eq!(s.port, 8082);
        assert_eq!(s.database_url, "sqlite://data/api-backend.db");
        assert_eq!(s.oauth_backend_url, "http://127.0.0.1:8081");
        assert_eq!(s.cors_allowed_origins.len(), 2);
        assert_eq!(s.media_buffer_budget, 256 * 1024 * 1024);
        assert_eq!(s.idempotency_retention, Duration::from_secs(24 * 3600));
        assert_eq!(s.idempotency_lease, Duration::from_secs(6));
        assert!(!format!("{s:?}").contains("very-secret-sso-key"));
    }

    #[test]
    fn a_missing_required_setting_is_named_and_wildcards_refused() {
        let mut env = base();
        env.remove("HIGHLEVEL_SSO_KEY");
        let err = Settings::from_lookup(|k| env.get(k).cloned()).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("missing required setting HIGHLEVEL_SSO_KEY"));
        let mut env = base();
        env.insert("CORS_ALLOWED_ORIGINS", "*".into());
        assert!(Settings::from_lookup(|k| env.get(k).cloned()).is_err());
    }

    #[test]
    fn sizes_and_durations_read_as_people_write_them() {
        let mut env = base();
        env.insert("MEDIA_BUFFER_BUDGET", "3MiB".into());
        env.insert("IDEMPOTENCY_RETENTION", "90m".into());
        let s = Settings::from_lookup(|k| env.get(k).cloned()).unwrap();
        assert_eq!(s.media_buffer_budget, 3 * 1024 * 1024);
        assert_eq!(s.idempotency_retention, Duration::from_secs(5400));
        env.insert("IDEMPOTENCY_RETENTION", "a day".into());
        let err = Settings::from_lookup(|k| env.get(k).cloned()).unwrap_err();
        assert!(err.to_string().contains("IDEMPOTENCY_RETENTION"), "{err}");
    }

    #[test]
    fn renewal_settings() {
        let mut env = base();
        let s = Settings::from_lookup(|k| env.get(k).cloned()).unwrap();
        assert_eq!(
            s.subscription_retry_delays_ms(),
            [86_400_000, 3 * 86_400_000, 7 * 86_400_000],
            "3 tries over 7 days"
        );
        assert_eq!(s.subscriptions_interval, Duration::from_secs(60));
        assert_eq!(s.subscriptions_concurrency, 4);
        env.insert("SUBSCRIPTION_RETRY_DELAYS", "2h, 1d".into());
        assert_eq!(
            Settings::from_lookup(|k| env.get(k).cloned())
                .unwrap()
                .subscription_retry_delays_ms(),
            [7_200_000, 86_400_000]
        );
        env.insert("SUBSCRIPTION_RETRY_DELAYS", "3d,1d".into());
        let err = Settings::from_lookup(|k| env.get(k).cloned()).unwrap_err();
        assert!(
            err.to_string().contains("SUBSCRIPTION_RETRY_DELAYS"),
            "{err}"
        );
        env.insert("SUBSCRIPTION_RETRY_DELAYS", "".into());
        assert!(Settings::from_lookup(|k| env.get(k).cloned())
            .unwrap()
            .subscription_retry_delays
            .is_empty());
        env.insert("SUBSCRIPTIONS_CONCURRENCY", "0".into());
        assert!(Settings::from_lookup(|k| env.get(k).cloned()).is_err());
    }
}
