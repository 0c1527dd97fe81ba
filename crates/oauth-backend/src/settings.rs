//! Settings: built-in defaults < the file named by `CONFIG_FILE` < the environment (the `config` crate).
//! A required setting that is missing stops start-up with one line naming it. Secrets are `SecretString`s,
//! so they never reach a log line or a `Debug` print.

use secrecy::SecretString;
use serde::Deserialize;
use service_common::settings::read;
pub use service_common::settings::SettingsError;

/// HighLevel's published key for `x-ghl-signature` (Ed25519, SPKI, base64 DER).
pub const HIGHLEVEL_ED25519_PUBLIC_KEY: &str =
    "MCowBQYDK2VwAyEAi2HR1srL4o18O8BRa7gVJY7G7bupbN3H9AwJrHCDiOg=";
/// HighLevel's published key for the legacy `x-wh-signature` (RSA-SHA256).
pub const HIGHLEVEL_RSA_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAokvo/r9tVgcfZ5DysOSC
Frm602qYV0MaAiNnX9O8KxMbiyRKWeL9JpCpVpt4XHIcBOK4u3cLSqJGOLaPuXw6
dO0t6Q/ZVdAV5Phz+ZtzPL16iCGeK9po6D6JHBpbi989mmzMryUnQJezlYJ3DVfB
csedpinheNnyYeFXolrJvcsjDtfAeRx5ByHQmTnSdFUzuAnC9/GepgLT9SM4nCpv
uxmZMxrJt5Rw+VUaQ9B8JSvbMPpez4peKaJPZHBbU3OdeCVx5klVXXZQGNHOs8gF
3kvoV5rTnXV0IknLBXlcKKAQLZcY/Q9rG6Ifi9c+5vqlvHPCUJFT5XUGG5RKgOKU
J062fRtN+rLYZUV+BjafxQauvC8wSWeYja63VSUruvmNj8xkx2zE/Juc+yjLjTXp
IocmaiFeAO6fUtNjDeFVkhf5LNb59vECyrHD2SQIrhgXpO4Q3dVNA5rw576PwTzN
h/AMfHKIjE4xQA1SZuYJmNnmVZLIZBlQAF9Ntd03rfadZ+yDiOXCCs9FkHibELhC
HULgCsnuDJHcrGNd5/Ddm5hxGQ0ASitgHeMZ0kcIOwKDOzOU53lDza6/Y09T7sYJ
PQe7z0cvj7aE4B+Ax1ZoZGPzpJlZtGXCsu9aTEGEnKzmsFqwcSsnw3JB31IGKAyk
T1hhTiaCeIY/OwwwNUY2yvcCAwEAAQ==
-----END PUBLIC KEY-----";

pub use service_common::logging::LogFormat;

/// Every scope the services use: what development installs ask for.
pub const DEV_SCOPES: &str = "products.write products.readonly products/prices.write products/prices.readonly oauth.write oauth.readonly medias.write medias.readonly payments/custom-provider.write payments/custom-provider.readonly payments/integration.write payments/transactions.readonly payments/orders.readonly payments/subscriptions.readonly";

/// The built-in defaults, by environment name.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("HOST", "0.0.0.0"),
    ("PORT", "8081"),
    ("DATABASE_URL", "sqlite://data/oauth-backend.db"),
    ("HIGHLEVEL_API_URL", "https://services.leadconnectorhq.com"),
    (
        "HIGHLEVEL_AUTHORIZE_URL",
        "https://marketplace.gohighlevel.com/v2/oauth/chooselocation",
    ),
    ("HIGHLEVEL_SCOPES", ""),
    ("WEBHOOK_ED25519_PUBLIC_KEY", HIGHLEVEL_ED25519_PUBLIC_KEY),
    ("WEBHOOK_RSA_PUBLIC_KEY", HIGHLEVEL_RSA_PUBLIC_KEY),
    ("REFRESH_MARGIN_SECS", "600"),
    ("REFRESHER_INTERVAL_SECS", "60"),
    ("SUSPENDED_RETRY_SECS", "300"),
    ("ABSENT_LOCATION_TTL_SECS", "60"),
    ("REFRESHER_CONCURRENCY", "16"),
    ("TOKEN_CACHE", "true"),
    ("WEBHOOK_TOLERANCE_SECS", "300"),
    ("DB_POOL_SIZE", "10"),
    ("HIGHLEVEL_TIMEOUT_MS", "10000"),
    ("CACHE_SYNC_INTERVAL_MS", "200"),
    ("CACHE_MAX_STALE_SECS", "60"),
    ("PURGE_INTERVAL_SECS", "3600"),
    ("AUDIT_RETENTION_DAYS", "90"),
    ("WEBHOOK_RETENTION_DAYS", "7"),
    ("WEBHOOK_FORWARD_URLS", ""),
    ("WEBHOOK_FORWARD_RETRY", "1s,1h,3d"),
    ("WEBHOOK_FORWARD_TIMEOUT_MS", "10000"),
    ("WEBHOOK_FORWARD_INTERVAL_MS", "1000"),
    ("WEBHOOK_DELIVERED_RETENTION_DAYS", "7"),
    ("WEBHOOK_DEAD_RETENTION_DAYS", "30"),
];

/// Field names are the environment's in lower case (`HIGHLEVEL_CLIENT_ID` is `highlevel_client_id`).
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub database_url: String,
    #[serde(deserialize_with = "read::url")]
    pub highlevel_api_url: String,
    pub highlevel_authorize_url: String,
    #[serde(rename = "highlevel_client_id")]
    pub client_id: String,
    #[serde(rename = "highlevel_client_secret")]
    pub client_secret: SecretString,
    #[serde(rename = "highlevel_app_id")]
    pub app_id: String,
    #[serde(rename = "highlevel_redirect_uri")]
    pub redirect_uri: String,
    #[serde(rename = "highlevel_scopes")]
    pub scopes: String,
    pub token_encryption_keys: SecretString,
    pub service_jwt_secret: SecretString,
    pub webhook_ed25519_public_key: String,
    pub webhook_rsa_public_key: String,
    pub post_install_redirect_url: Option<String>,
    #[serde(default = "LogFormat::detect")]
    pub log_format: LogFormat,
    /// Refresh installation tokens this long before they expire (jittered by up to a fifth more).
    pub refresh_margin_secs: i64,
    /// How often the background refresher looks for tokens to refresh; 0 turns it off.
    pub refresher_interval_secs: u64,
    /// How long a `suspended` installation waits between refresh attempts (SUSPENDED_RETRY_SECS, 300).
    pub suspended_retry_secs: i64,
    /// How long a location HighLevel did not list for an agency install is remembered as absent
    /// (ABSENT_LOCATION_TTL_SECS, 60; 0 remembers nothing).
    pub absent_location_ttl_secs: u64,
    /// How many tokens the background refresher renews at once.
    pub refresher_concurrency: usize,
    /// The in-memory token cache (on by default; off only to measure or debug the database path).
    #[serde(deserialize_with = "read::switch")]
    pub token_cache: bool,
    /// Webhooks whose `timestamp` is further than this from now are refused.
    pub webhook_tolerance_secs: i64,
    pub db_pool_size: u32,
    /// Timeout of one call to HighLevel.
    pub highlevel_timeout_ms: u64,
    /// How often each process reads the change feed (uninstalls, `needs_reauth`, new tokens anywhere) into its
    /// token cache. PostgreSQL also wakes it at once with NOTIFY; this is the bound on SQLite.
    pub cache_sync_interval_ms: u64,
    /// A process that cannot read the change feed this long stops serving tokens from memory.
    pub cache_max_stale_secs: u64,
    /// How often old rows are purged (expired OAuth states, webhook replay records, audit rows, the change
    /// feed); 0 turns the purge off.
    pub purge_interval_secs: u64,
    /// Audit rows are kept this many days.
    pub audit_retention_days: u64,
    /// Webhook ids are kept this many days to recognise redeliveries (HighLevel retries for about an hour).
    pub webhook_retention_days: u64,
    /// The app's endpoints that receive every HighLevel webhook (WEBHOOK_FORWARD_URLS).
    #[serde(deserialize_with = "forward_urls")]
    pub webhook_forward_urls: Vec<ForwardTarget>,
    /// Standard Webhooks signing secret for forwarded webhooks (WEBHOOK_FORWARD_SECRET, `whsec_…`).
    pub webhook_forward_secret: Option<SecretString>,
    /// When a failed forward is tried again, and when it is given up (WEBHOOK_FORWARD_RETRY).
    #[serde(deserialize_with = "retry_schedule")]
    pub webhook_forward_retry: RetrySchedule,
    /// Timeout of one forwarding attempt (WEBHOOK_FORWARD_TIMEOUT_MS, 10000).
    pub webhook_forward_timeout_ms: u64,
    /// How often each process looks for forwards that are due (WEBHOOK_FORWARD_INTERVAL_MS, 1000); a webhook
    /// received by this process is sent at once.
    pub webhook_forward_interval_ms: u64,
    /// Delivered forwards are kept this many days (WEBHOOK_DELIVERED_RETENTION_DAYS, 7), dead ones (the dead
    /// letters, replayable) this many (WEBHOOK_DEAD_RETENTION_DAYS, 30).
    pub webhook_delivered_retention_days: u64,
    pub webhook_dead_retention_days: u64,
}

fn forward_urls<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ForwardTarget>, D::Error> {
    parse_forward_urls(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn retry_schedule<'de, D: serde::Deserializer<'de>>(d: D) -> Result<RetrySchedule, D::Error> {
    RetrySchedule::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// A forward URL as it may be shown (listings, the command line, `Debug`): without user info or query, either
/// of which may carry the app's own credentials.
pub fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let hidden =
                if u.query().is_some() || !u.username().is_empty() || u.password().is_some() {
                    " (credentials or query not shown)"
                } else {
                    ""
                };
            format!(
                "{}://{}{port}{}{hidden}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.path()
            )
        }
        Err(_) => "(not a URL)".into(),
    }
}

/// One entry of WEBHOOK_FORWARD_URLS: `url` (every event type) or `Type|Type=url` (only those types).
#[derive(Clone, PartialEq, Eq)]
pub struct ForwardTarget {
    /// `None`: every type.
    pub types: Option<Vec<String>>,
    pub url: String,
}

impl std::fmt::Debug for ForwardTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardTarget")
            .field("types", &self.types)
            .field("url", &shown_url(&self.url))
            .finish()
    }
}

impl ForwardTarget {
    pub fn wants(&self, event_type: &str) -> bool {
        self.types
            .as_ref()
            .is_none_or(|t| t.iter().any(|t| t == event_type))
    }
}

/// Parses WEBHOOK_FORWARD_URLS: comma-separated entries, each `url` or `EventType|EventType=url`.
pub fn parse_forward_urls(v: &str) -> Result<Vec<ForwardTarget>, String> {
    let mut out = Vec::new();
    for entry in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        // The types end at the first `=` that comes before the URL's scheme (a query may hold `=` too).
        let (types, url) = match (entry.find('='), entry.find("://")) {
            (Some(eq), Some(scheme)) if eq < scheme => (Some(&entry[..eq]), &entry[eq + 1..]),
            _ => (None, entry),
        };
        let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!("`{url}` is not an http(s) URL"));
        }
        let types = match types {
            None => None,
            Some(t) => {
                let list: Vec<String> = t.split('|').map(|t| t.trim().to_owned()).collect();
                if list.iter().any(|t| {
                    t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                }) {
                    return Err(format!(
                        "`{t}` is not a list of event types like `ContactCreate|ContactUpdate`"
                    ));
                }
                Some(list)
            }
        };
        out.push(ForwardTarget {
            types,
            url: url.to_owned(),
        });
    }
    Ok(out)
}

/// WEBHOOK_FORWARD_RETRY: `first,cap,total`. After a failed attempt the next waits `first`, then twice as
/// long each time up to `cap`; a delivery not made within `total` of its first attempt is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    pub first_ms: i64,
    pub cap_ms: i64,
    pub total_ms: i64,
}

impl RetrySchedule {
    pub fn parse(v: &str) -> Result<RetrySchedule, String> {
        let parts: Vec<i64> = v
            .split(',')
            .map(|p| {
                humantime::parse_duration(p.trim())
                    .map(|d| d.as_millis().min(i64::MAX as u128) as i64)
                    .map_err(|e| format!("`{}`: {e}", p.trim()))
            })
            .collect::<Result<_, _>>()?;
        let [first_ms, cap_ms, total_ms] = parts[..] else {
            return Err(
                "use three durations: first wait, longest wait, total (e.g. `1s,1h,3d`)".into(),
            );
        };
        if first_ms < 1 || cap_ms < first_ms {
            return Err(
                "the first wait must be positive and the longest at least the first".into(),
            );
        }
        Ok(RetrySchedule {
            first_ms,
            cap_ms,
            total_ms,
        })
    }

    /// The wait after the `failures`-th failed attempt (1, 2, …).
    pub fn delay_ms(&self, failures: i32) -> i64 {
        let doublings = failures.saturating_sub(1).clamp(0, 40) as u32;
        self.first_ms
            .saturating_mul(1i64 << doublings)
            .min(self.cap_ms)
    }
}

/// A Standard Webhooks secret: `whsec_` and the base64 of 24 to 64 random bytes.
fn check_forward_secret(s: &str) -> Result<(), String> {
    use base64::Engine as _;
    let key = s
        .strip_prefix("whsec_")
        .ok_or("it must start with `whsec_`")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| "after `whsec_` it must be base64")?;
    if !(24..=64).contains(&bytes.len()) {
        return Err(
            "it must hold 24 to 64 bytes (e.g. `whsec_` + `openssl rand -base64 32`)".into(),
        );
    }
    Ok(())
}

impl Settings {
    /// Reads the settings from `CONFIG_FILE` (optional) and the environment.
    pub fn load() -> Result<Settings, SettingsError> {
        service_common::settings::load::<Settings>(DEFAULTS)?.checked()
    }

    /// Settings for a HighLevel simulator at `sim_url` with its default app (`dev-client-id`, …): what the
    /// development stack, the benchmarks and the tests run with. `extra` overrides or adds names.
    pub fn for_simulator(
        sim_url: &str,
        database_url: &str,
        token_encryption_keys: &str,
        service_jwt_secret: &str,
        extra: &[(&str, String)],
    ) -> Result<Settings, SettingsError> {
        let mut vars = Self::simulator_env(
            sim_url,
            database_url,
            token_encryption_keys,
            service_jwt_secret,
        );
        vars.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
        Settings::from_vars(vars)
    }

    /// The environment `for_simulator` reads, for starting the binary against a simulator (benchmarks, drills).
    pub fn simulator_env<'a>(
        sim_url: &str,
        database_url: &str,
        token_encryption_keys: &str,
        service_jwt_secret: &str,
    ) -> Vec<(&'a str, String)> {
        vec![
            ("HOST", "127.0.0.1".into()),
            ("PORT", "0".into()),
            ("DATABASE_URL", database_url.into()),
            ("HIGHLEVEL_API_URL", sim_url.into()),
            (
                "HIGHLEVEL_AUTHORIZE_URL",
                format!("{sim_url}/v2/oauth/chooselocation"),
            ),
            ("HIGHLEVEL_CLIENT_ID", "dev-client-id".into()),
            ("HIGHLEVEL_CLIENT_SECRET", "dev-client-secret".into()),
            ("HIGHLEVEL_APP_ID", "dev-app-id".into()),
            (
                "HIGHLEVEL_REDIRECT_URI",
                "http://127.0.0.1:9/oauth/callback".into(),
            ),
            ("HIGHLEVEL_SCOPES", DEV_SCOPES.into()),
            ("TOKEN_ENCRYPTION_KEYS", token_encryption_keys.into()),
            ("SERVICE_JWT_SECRET", service_jwt_secret.into()),
            ("LOG_FORMAT", "pretty".into()),
            // The simulator's control routes add a location to an agency install without the INSTALL webhook
            // HighLevel would send (which forgets a remembered absence at once): no negative cache by default.
            ("ABSENT_LOCATION_TTL_SECS", "0".into()),
        ]
    }

    /// Builds settings from environment-style names and values alone (later names win).
    pub fn from_vars<K: AsRef<str>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Settings, SettingsError> {
        service_common::settings::from_vars::<Settings, _, _>(DEFAULTS, vars)?.checked()
    }

    fn checked(self) -> Result<Settings, SettingsError> {
        if let Some(secret) = &self.webhook_forward_secret {
            check_forward_secret(secrecy::ExposeSecret::expose_secret(secret))
                .map_err(|why| SettingsError::invalid("WEBHOOK_FORWARD_SECRET", why))?;
        }
        if !self.webhook_forward_urls.is_empty() && self.webhook_forward_secret.is_none() {
            return Err(SettingsError::Missing("WEBHOOK_FORWARD_SECRET".into()));
        }
        for (name, value, least) in [
            ("CACHE_SYNC_INTERVAL_MS", self.cache_sync_interval_ms, 10),
            ("CACHE_MAX_STALE_SECS", self.cache_max_stale_secs, 1),
            ("AUDIT_RETENTION_DAYS", self.audit_retention_days, 1),
            ("WEBHOOK_RETENTION_DAYS", self.webhook_retention_days, 1),
            (
                "WEBHOOK_DELIVERED_RETENTION_DAYS",
                self.webhook_delivered_retention_days,
                1,
            ),
            (
                "WEBHOOK_DEAD_RETENTION_DAYS",
                self.webhook_dead_retention_days,
                1,
            ),
            (
                "WEBHOOK_FORWARD_INTERVAL_MS",
                self.webhook_forward_interval_ms,
                10,
            ),
            (
                "WEBHOOK_FORWARD_TIMEOUT_MS",
                self.webhook_forward_timeout_ms,
                100,
            ),
        ] {
            if value < least {
                return Err(SettingsError::invalid(
                    name,
                    format!("use at least {least}"),
                ));
            }
        }
        if secrecy::ExposeSecret::expose_secret(&self.service_jwt_secret).len() < 32 {
            return Err(SettingsError::invalid(
                "SERVICE_JWT_SECRET",
                "use at least 32 characters",
            ));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, String> {
        HashMap::from([
            ("HIGHLEVEL_CLIENT_ID", "id".to_owned()),
            ("HIGHLEVEL_CLIENT_SECRET", "very-secret-value".to_owned()),
            ("HIGHLEVEL_APP_ID", "app".to_owned()),
            (
                "HIGHLEVEL_REDIRECT_URI",
                "http://x/oauth/callback".to_owned(),
            ),
            (
                "TOKEN_ENCRYPTION_KEYS",
                crate::crypto::keyring::KeyRing::generate_entry("k1"),
            ),
            ("SERVICE_JWT_SECRET", "s".repeat(40)),
        ])
    }

    #[test]
    fn defaults_follow_the_contract() {
        let env = base();
        let s = Settings::from_vars(env.clone()).unwrap();
        assert_eq!(s.port, 8081);
        assert_eq!(s.database_url, "sqlite://data/oauth-backend.db");
        assert_eq!(s.highlevel_api_url, "https://services.leadconnectorhq.com");
        assert_eq!(s.refresh_margin_secs, 600);
        assert_eq!(s.cache_sync_interval_ms, 200);
        assert_eq!(s.cache_max_stale_secs, 60);
        assert_eq!(s.purge_interval_secs, 3600);
        assert_eq!(s.audit_retention_days, 90);
        assert_eq!(s.webhook_retention_days, 7);
        // HighLevel's current consent page (HighLevel's OAuth docs).
        assert_eq!(
            s.highlevel_authorize_url,
            "https://marketplace.gohighlevel.com/v2/oauth/chooselocation"
        );
        assert_eq!(s.suspended_retry_secs, 300);
        assert_eq!(s.absent_location_ttl_secs, 60);
        assert!(s.webhook_forward_urls.is_empty() && s.webhook_forward_secret.is_none());
        assert_eq!(
            s.webhook_forward_retry,
            RetrySchedule::parse("1s,1h,3d").unwrap()
        );
        assert!(
            !format!("{s:?}").contains("very-secret-value"),
            "secrets must not reach Debug"
        );
    }

    #[test]
    fn forward_urls_take_an_optional_list_of_types() {
        let t = parse_forward_urls(
            "https://app.example/hooks, ContactCreate|ContactUpdate=https://crm.example/in?x=1 ,",
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert!(t[0].wants("AppointmentCreate") && t[0].types.is_none());
        assert_eq!(t[1].url, "https://crm.example/in?x=1");
        assert!(t[1].wants("ContactUpdate") && !t[1].wants("ContactDelete"));
        // A `=` in the query is the URL's, not a type list.
        assert_eq!(
            parse_forward_urls("http://a.example/x?y=z").unwrap()[0].types,
            None
        );
        for bad in [
            "ftp://a.example/",
            "not a url",
            "=https://a.example/",
            "Contact Create=https://a.example/",
        ] {
            assert!(parse_forward_urls(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarding_needs_a_standard_webhooks_secret() {
        let mut env = base();
        env.insert("WEBHOOK_FORWARD_URLS", "https://app.example/hooks".into());
        let err = Settings::from_vars(env.clone()).unwrap_err();
        assert!(err.to_string().contains("WEBHOOK_FORWARD_SECRET"), "{err}");
        env.insert("WEBHOOK_FORWARD_SECRET", "plain-text".into());
        assert!(Settings::from_vars(env.clone()).is_err());
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        env.insert("WEBHOOK_FORWARD_SECRET", secret.into());
        let s = Settings::from_vars(env.clone()).unwrap();
        assert!(
            !format!("{s:?}").contains(secret),
            "secrets must not reach Debug"
        );
    }

    #[test]
    fn forward_urls_are_shown_without_credentials() {
        let t = parse_forward_urls("https://user:pw@app.example:8443/hooks?token=abc").unwrap();
        let shown = format!("{t:?}");
        assert!(!shown.contains("abc") && !shown.contains("pw"), "{shown}");
        assert!(shown.contains("https://app.example:8443/hooks"), "{shown}");
        assert_eq!(shown_url("http://a.example/x"), "http://a.example/x");
    }

    #[test]
    fn the_retry_schedule_doubles_up_to_its_cap() {
        let r = RetrySchedule::parse("1s,1h,3d").unwrap();
        assert_eq!(
            (r.delay_ms(1), r.delay_ms(2), r.delay_ms(3)),
            (1000, 2000, 4000)
        );
        assert_eq!(r.delay_ms(13), 3_600_000);
        assert_eq!(r.delay_ms(1000), 3_600_000);
        assert_eq!(r.total_ms, 3 * 86_400_000);
        assert!(RetrySchedule::parse("1s,1h").is_err());
        assert!(RetrySchedule::parse("1h,1s,3d").is_err());
        assert!(RetrySchedule::parse("0s,1s,3d").is_err());
    }

    #[test]
    fn a_missing_required_setting_is_named() {
        let mut env = base();
        env.remove("TOKEN_ENCRYPTION_KEYS");
        let err = Settings::from_vars(env.clone()).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("missing required setting TOKEN_ENCRYPTION_KEYS"));
    }
}
