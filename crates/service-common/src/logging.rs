//! Log set-up shared by the binaries: `LOG_FORMAT` (`json` or `pretty`), `RUST_LOG` filters.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl LogFormat {
    /// `LOG_FORMAT` as given, or `pretty` on a terminal and `json` elsewhere.
    pub fn parse(value: Option<&str>) -> Result<LogFormat, String> {
        match value {
            Some("json") => Ok(LogFormat::Json),
            Some("pretty") => Ok(LogFormat::Pretty),
            Some(other) => Err(format!("`{other}`: use json or pretty")),
            None if std::io::IsTerminal::is_terminal(&std::io::stderr()) => Ok(LogFormat::Pretty),
            None => Ok(LogFormat::Json),
        }
    }
}

pub fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
