//! Where settings come from (the `config` crate): each service's `#[derive(Deserialize)]` struct is read from
//! its built-in defaults < the file named by `CONFIG_FILE` < the environment. Names are the environment's
//! (`PORT`, `DATABASE_URL`, …; lower case in the file); an empty value counts as unset. Whatever is wrong stops
//! start-up with one line naming the setting.

use serde::de::DeserializeOwned;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("missing required setting {0} (set it in the environment or in the file named by CONFIG_FILE)")]
    Missing(String),
    #[error("setting {name} is invalid: {why}")]
    Invalid { name: String, why: String },
    #[error("cannot read settings: {0}")]
    Source(String),
}

impl SettingsError {
    pub fn invalid(name: &str, why: impl Into<String>) -> SettingsError {
        SettingsError::Invalid {
            name: name.to_owned(),
            why: why.into(),
        }
    }
}

/// `T` from `defaults`, `CONFIG_FILE` (optional) and the process environment.
pub fn load<T: DeserializeOwned>(defaults: &[(&str, &str)]) -> Result<T, SettingsError> {
    let file = std::env::var("CONFIG_FILE").ok().filter(|f| !f.is_empty());
    read(defaults, file.as_deref(), std::env::vars())
}

/// One setting by its environment name, for commands that need only one or two (`migrate`, `service-token`).
pub fn one(name: &str, defaults: &[(&str, &str)]) -> Result<Option<String>, SettingsError> {
    let all: std::collections::HashMap<String, String> = load(defaults)?;
    Ok(all.get(&name.to_ascii_lowercase()).cloned())
}

/// [`one`], required.
pub fn required(name: &str, defaults: &[(&str, &str)]) -> Result<String, SettingsError> {
    one(name, defaults)?.ok_or_else(|| SettingsError::Missing(name.to_owned()))
}

/// `T` from `defaults` and `vars` alone (environment-style names): the simulator settings and tests.
pub fn from_vars<T, K, V>(
    defaults: &[(&str, &str)],
    vars: impl IntoIterator<Item = (K, V)>,
) -> Result<T, SettingsError>
where
    T: DeserializeOwned,
    K: AsRef<str>,
    V: Into<String>,
{
    read(defaults, None, vars)
}

fn read<T, K, V>(
    defaults: &[(&str, &str)],
    file: Option<&str>,
    vars: impl IntoIterator<Item = (K, V)>,
) -> Result<T, SettingsError>
where
    T: DeserializeOwned,
    K: AsRef<str>,
    V: Into<String>,
{
    let source = |e: config::ConfigError| SettingsError::Source(e.to_string());
    let mut builder = config::Config::builder();
    for (name, value) in defaults {
        builder = builder
            .set_default(name.to_ascii_lowercase(), *value)
            .map_err(source)?;
    }
    if let Some(file) = file {
        builder = builder.add_source(config::File::with_name(file).required(true));
    }
    let vars: config::Map<String, String> = vars
        .into_iter()
        .map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.into()))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    builder
        .add_source(config::Environment::default().source(Some(vars)))
        .build()
        .map_err(source)?
        .try_deserialize()
        .map_err(explain)
}

/// `config`'s error as one line naming the setting in the environment's spelling.
fn explain(e: config::ConfigError) -> SettingsError {
    use config::ConfigError as E;
    match e {
        E::NotFound(key) => SettingsError::Missing(key.to_ascii_uppercase()),
        E::Type {
            unexpected,
            expected,
            key: Some(key),
            ..
        } => SettingsError::invalid(
            &key.to_ascii_uppercase(),
            format!("{unexpected}, expected {expected}"),
        ),
        E::At {
            error,
            key: Some(key),
            ..
        } => SettingsError::invalid(&key.to_ascii_uppercase(), error.to_string()),
        other => SettingsError::Source(other.to_string()),
    }
}

/// Field readers for `#[serde(deserialize_with = …)]`: the forms people write in an environment.
pub mod read {
    use super::Duration;
    use serde::{Deserialize, Deserializer};

    /// A number of milliseconds (`…_MS` settings).
    pub fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }

    /// A number of seconds (`…_SECS` settings).
    pub fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }

    /// `true`/`1`/`on` or `false`/`0`/`off`.
    pub fn switch<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match String::deserialize(d)?.as_str() {
            "true" | "1" | "on" => Ok(true),
            "false" | "0" | "off" => Ok(false),
            other => Err(serde::de::Error::custom(format!(
                "`{other}` is not true or false"
            ))),
        }
    }

    /// A size such as `256MiB`, `1GB` or `1048576` (bytes).
    pub fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let v = String::deserialize(d)?;
        parse_size::parse_size(v.trim())
            .map_err(|e| serde::de::Error::custom(format!("`{v}` is not a size like 256MiB ({e})")))
    }

    /// A comma- or space-separated list.
    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(String::deserialize(d)?
            .split([',', ' '])
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect())
    }

    /// A URL without its trailing `/`.
    pub fn url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(String::deserialize(d)?.trim_end_matches('/').to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Example {
        port: u16,
        service_jwt_secret: String,
        #[serde(with = "humantime_serde")]
        idempotency_lease: Duration,
        #[serde(deserialize_with = "read::switch")]
        token_cache: bool,
        log_format: crate::logging::LogFormat,
    }

    const DEFAULTS: &[(&str, &str)] = &[
        ("PORT", "8080"),
        ("IDEMPOTENCY_LEASE", "6s"),
        ("TOKEN_CACHE", "on"),
        ("LOG_FORMAT", "json"),
    ];

    fn read(vars: &[(&str, &str)]) -> Result<Example, SettingsError> {
        from_vars(DEFAULTS, vars.iter().map(|(k, v)| (*k, *v)))
    }

    #[test]
    fn every_error_is_one_line_naming_the_setting() {
        let ok = read(&[("SERVICE_JWT_SECRET", "s"), ("IDEMPOTENCY_LEASE", "1m 30s")]).unwrap();
        assert_eq!(ok.idempotency_lease, Duration::from_secs(90));
        assert!(ok.token_cache);
        let cases: [(&[(&str, &str)], &str); 5] = [
            (
                &[("SERVICE_JWT_SECRET", "")],
                "missing required setting SERVICE_JWT_SECRET",
            ),
            (
                &[("SERVICE_JWT_SECRET", "s"), ("PORT", "eighty")],
                "setting PORT is invalid",
            ),
            (
                &[
                    ("SERVICE_JWT_SECRET", "s"),
                    ("IDEMPOTENCY_LEASE", "6 parsecs"),
                ],
                "setting IDEMPOTENCY_LEASE is invalid",
            ),
            (
                &[("SERVICE_JWT_SECRET", "s"), ("TOKEN_CACHE", "maybe")],
                "setting TOKEN_CACHE is invalid",
            ),
            (
                &[("SERVICE_JWT_SECRET", "s"), ("LOG_FORMAT", "xml")],
                "setting LOG_FORMAT is invalid",
            ),
        ];
        for (vars, starts) in cases {
            let err = read(vars).unwrap_err().to_string();
            assert!(err.starts_with(starts), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
