//! Log set-up shared by the binaries: `LOG_FORMAT` (`json` or `pretty`), `RUST_LOG` filters, and every line
//! written while a request is served marked with it ([`WithRequest`]).

use tracing_subscriber::fmt::format::{Format, Full, Json, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

impl LogFormat {
    /// When `LOG_FORMAT` is unset: `pretty` on a terminal, `json` elsewhere.
    pub fn detect() -> LogFormat {
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            LogFormat::Pretty
        } else {
            LogFormat::Json
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
        LogFormat::Json => builder.json().event_format(WithRequest::json()).try_init(),
        LogFormat::Pretty => builder.event_format(WithRequest::pretty()).try_init(),
    };
}

/// The standard line, and the request being served when it was written ([`crate::http::RequestInfo`]: its id,
/// method and path). In JSON as a `tracing` span named `request` with those fields would be, under `span` and as
/// the one entry of `spans` (`{"span":{"method":…,"name":"request","path":…,"request_id":…},"spans":[…],…}`);
/// in the pretty format before the line (`[<id> GET /path] …`, the path escaped).
pub struct WithRequest<F> {
    inner: F,
    /// The same format without span fields, for lines written during a request (JSON only): the request takes
    /// `span` and `spans`, so a `tracing` span current then could not add a second `span` key.
    in_request: Option<F>,
}

impl WithRequest<Format<Json>> {
    pub fn json() -> Self {
        let json = tracing_subscriber::fmt::format().json();
        WithRequest {
            inner: json.clone(),
            in_request: Some(json.with_current_span(false).with_span_list(false)),
        }
    }
}

impl WithRequest<Format<Full>> {
    pub fn pretty() -> Self {
        WithRequest {
            inner: tracing_subscriber::fmt::format(),
            in_request: None,
        }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithRequest<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let request = crate::http::RequestInfo::with_current(|r| {
            (
                String::from_utf8_lossy(r.id.as_bytes()).into_owned(),
                r.method.to_string(),
                r.path().to_owned(),
            )
        });
        let Some((id, method, path)) = request else {
            return self.inner.format_event(ctx, writer, event);
        };
        let Some(in_request) = &self.in_request else {
            writer.write_str(&pretty_prefix(&id, &method, &path))?;
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        in_request.format_event(ctx, Writer::new(&mut line), event)?;
        let span = serde_json::json!({
            "request_id": id,
            "method": method,
            "path": path,
            "name": "request",
        });
        match line.strip_prefix('{') {
            Some(rest) if !rest.trim_start().starts_with('}') => {
                write!(writer, "{{\"span\":{span},\"spans\":[{span}],{rest}")
            }
            _ => writer.write_str(&line),
        }
    }
}

/// `[<id> <method> <path>] `: the id is a checked token and the method a token, but the path may hold any UTF-8
/// a caller sent, so it is escaped (no line separators, bidi overrides or control characters reach a terminal).
fn pretty_prefix(id: &str, method: &str, path: &str) -> String {
    format!("[{id} {method} {}] ", path.escape_debug())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_pretty_prefix_escapes_what_a_caller_put_in_the_path() {
        assert_eq!(
            super::pretty_prefix("id1", "GET", "/x/y"),
            "[id1 GET /x/y] "
        );
        let sneaky = super::pretty_prefix("id1", "GET", "/a\u{2028}b\u{202e}c\u{9b}d\ne");
        assert!(
            !sneaky.contains(['\u{2028}', '\u{202e}', '\u{9b}', '\n']),
            "{sneaky}"
        );
    }
}
