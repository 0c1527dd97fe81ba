//! One HighLevel call, done right: the token the endpoint needs, the `Version` header, pacing, a single
//! replay after a 401 for an expired or replaced token, retries for idempotent calls only, and every refusal
//! classified and diagnosed.

use crate::diagnosis::{self, Context, Presented};
use crate::endpoints::Endpoint;
use crate::error::{message_of, HlError};
use crate::oauth::{truncate, without_url};
use crate::pacing::{Pacer, PacingConfig, RateHeaders};
use crate::API_VERSION;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;
use shared_types::{AuthClass, TokenAccess};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the client gets its tokens (api-backend: oauth-backend through the bridge).
pub trait TokenSource: Sync {
    /// A token for the call.
    fn token(&self) -> impl Future<Output = Result<TokenAccess, HlError>> + Send;
    /// HighLevel rejected `token` as expired or replaced: the current one.
    fn rejected(
        &self,
        token: &TokenAccess,
    ) -> impl Future<Output = Result<TokenAccess, HlError>> + Send;
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub api_url: String,
    /// Where a custom payment provider reports its events (`/payments/custom-provider/webhook`): HighLevel's
    /// `backend.` host, not the API host.
    pub backend_url: String,
    /// The bound on one exchange: for a call whose answer is read whole ([`HighLevelClient::call`]), from
    /// connecting to the answer's last byte; for a streamed one ([`HighLevelClient::call_streamed`]), from
    /// connecting to the answer's head only (a successful answer's body is bounded by `idle_timeout`, not by a
    /// total: a large answer passed on to a slow reader takes as long as the reader takes; a refusal, read whole
    /// for its diagnosis, is still bounded by `timeout` to its last byte).
    pub timeout: Duration,
    /// A streamed answer's body: the longest HighLevel may leave it without a next piece while it is being
    /// waited for. Time the caller spends between two reads does not count.
    pub idle_timeout: Duration,
    /// This app's client id, when known: lets diagnosis spot a token of another app.
    pub app_client_id: Option<String>,
    pub pacing: PacingConfig,
    /// Attempts after the first for idempotent calls on 5xx and network errors.
    pub retries: u32,
    pub backoff: Duration,
    /// The id of the request being served, sent as `X-Request-Id` with every call.
    pub request_id: Option<fn() -> Option<String>>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            api_url: "https://services.leadconnectorhq.com".into(),
            backend_url: "https://backend.leadconnectorhq.com".into(),
            timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(15),
            app_client_id: None,
            pacing: PacingConfig::default(),
            retries: 3,
            backoff: Duration::from_millis(200),
            request_id: None,
        }
    }
}

/// A file for a multipart upload; kept as bytes so a replay can rebuild the form.
#[derive(Clone)]
pub struct FilePart {
    pub file_name: String,
    pub content_type: String,
    pub bytes: Bytes,
}

impl std::fmt::Debug for FilePart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilePart")
            .field("file_name", &self.file_name)
            .field("content_type", &self.content_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// A file for a multipart upload spooled to disk by the caller: streamed from the file when sent, and read
/// again from the start for a replay, so no upload is held in memory. The file lives as long as `file` does
/// (e.g. a `tempfile::TempPath`, which removes it when the last clone is dropped).
#[derive(Clone)]
pub struct SpooledFile {
    pub file_name: String,
    pub content_type: String,
    pub len: u64,
    pub file: Arc<dyn AsRef<std::path::Path> + Send + Sync>,
}

impl std::fmt::Debug for SpooledFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpooledFile")
            .field("file_name", &self.file_name)
            .field("content_type", &self.content_type)
            .field("len", &self.len)
            .finish()
    }
}

#[derive(Clone)]
pub enum Body {
    Empty,
    Json(Value),
    /// Text fields and at most one file under `file`.
    Multipart {
        fields: Vec<(String, String)>,
        file: Option<FilePart>,
    },
    /// Text fields and one file under `file`, streamed from disk.
    MultipartSpooled {
        fields: Vec<(String, String)>,
        file: SpooledFile,
    },
}

// Bodies can carry secrets (the custom provider's api keys): Debug shows their shape, never their values.
impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Json(v) => {
                let keys: Vec<&str> = v
                    .as_object()
                    .map(|o| o.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                f.debug_struct("Json").field("keys", &keys).finish()
            }
            Body::Multipart { fields, file } => f
                .debug_struct("Multipart")
                .field(
                    "fields",
                    &fields.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                )
                .field("file", file)
                .finish(),
            Body::MultipartSpooled { fields, file } => f
                .debug_struct("MultipartSpooled")
                .field(
                    "fields",
                    &fields.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                )
                .field("file", file)
                .finish(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub endpoint: &'static Endpoint,
    /// The concrete path (placeholders filled, each id checked).
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Body,
    /// The location id the request names (query or body), for the pre-send check and diagnosis.
    pub location: Option<String>,
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
    /// The headers a caller may pass on: `Content-Type` and HighLevel's `X-RateLimit-*`.
    pub headers: Vec<(String, String)>,
    endpoint: &'static str,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HlError> {
        serde_json::from_slice(&self.body).map_err(|e| HlError::BadAnswer {
            endpoint: self.endpoint,
            reason: e.to_string(),
        })
    }
}

/// A successful answer whose body is still arriving ([`HighLevelClient::call_streamed`]): read it chunk by
/// chunk, so a caller that passes it on never holds all of it.
#[derive(Debug)]
pub struct Streamed {
    pub status: u16,
    /// As [`Answer::headers`].
    pub headers: Vec<(String, String)>,
    /// The body's length when HighLevel declared it (`Content-Length`).
    pub declared_len: Option<u64>,
    response: reqwest::Response,
    endpoint: &'static str,
    path: &'static str,
    idle_timeout: Duration,
}

impl Streamed {
    /// The next piece of the body; `None` once it is complete. HighLevel has [`ClientConfig::idle_timeout`] to
    /// send it, counted from this call (not from the previous piece: a caller that reads slowly is not cut
    /// off for its own pace).
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, HlError> {
        let cut = |why: String| HlError::Unavailable {
            reason: format!("{}: the answer was cut off ({why})", self.path),
            maybe_applied: true,
        };
        match tokio::time::timeout(self.idle_timeout, self.response.chunk()).await {
            Ok(Ok(chunk)) => Ok(chunk),
            Ok(Err(e)) => Err(cut(without_url(&e))),
            Err(_) => Err(cut(format!(
                "timeout: nothing more arrived for {} ms",
                self.idle_timeout.as_millis()
            ))),
        }
    }

    /// The endpoint's name (metrics, logs).
    pub fn endpoint(&self) -> &'static str {
        self.endpoint
    }
}

/// What one exchange with HighLevel ended with: a body read whole, or a successful one still open.
enum Reply {
    Read(Answer),
    Open(Streamed),
}

/// A refusal's body is read up to this much for its message and diagnosis; the rest is not waited for.
pub const REFUSAL_BODY_LIMIT: usize = 64 * 1024;

/// Reads at most `limit` bytes of a body; what lies past it is left unread (the connection is dropped).
async fn read_bounded(mut res: reqwest::Response, limit: usize) -> reqwest::Result<Bytes> {
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = res.chunk().await? {
        let room = limit - out.len();
        if chunk.len() >= room {
            out.extend_from_slice(&chunk[..room]);
            break;
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

#[derive(Clone)]
pub struct HighLevelClient {
    http: reqwest::Client,
    cfg: Arc<ClientConfig>,
    pub pacer: Arc<Pacer>,
    /// Answers HighLevel gave, by endpoint name and status (0: no answer), for `/metrics`.
    pub calls: Arc<std::sync::Mutex<std::collections::BTreeMap<(&'static str, u16), u64>>>,
}

/// The rate-limit bucket a token's calls count against: its location, or its company.
pub fn pace_key(token: &TokenAccess) -> String {
    match (token.auth_class, &token.location_id) {
        (AuthClass::Location, Some(l)) => l.clone(),
        _ => token.company_id.clone(),
    }
}

impl HighLevelClient {
    /// Fails only if the HTTP client cannot be built; there is no fallback to a client without timeouts.
    pub fn new(cfg: ClientConfig) -> Result<HighLevelClient, crate::ClientBuildError> {
        // No total timeout on the client: each call sets its own bound (see `ClientConfig::timeout`).
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(HighLevelClient {
            calls: Arc::default(),
            pacer: Arc::new(Pacer::new(cfg.pacing.clone())),
            cfg: Arc::new(ClientConfig {
                api_url: cfg.api_url.trim_end_matches('/').to_owned(),
                ..cfg
            }),
            http,
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    fn context<'a>(&'a self, req: &'a Request, token: &'a Presented) -> Context<'a> {
        Context {
            endpoint: req.endpoint,
            token,
            location: req.location.as_deref(),
            app_client_id: self.cfg.app_client_id.as_deref(),
        }
    }

    /// The request, ready to send; fails only when a spooled file cannot be opened.
    fn build(
        &self,
        token: &TokenAccess,
        req: &Request,
    ) -> std::io::Result<reqwest::RequestBuilder> {
        let method = match req.endpoint.method {
            crate::endpoints::Method::Get => reqwest::Method::GET,
            crate::endpoints::Method::Post => reqwest::Method::POST,
            crate::endpoints::Method::Put => reqwest::Method::PUT,
            crate::endpoints::Method::Patch => reqwest::Method::PATCH,
            crate::endpoints::Method::Delete => reqwest::Method::DELETE,
        };
        let mut b = self
            .http
            .request(method, format!("{}{}", self.cfg.api_url, req.path))
            .header("Version", API_VERSION)
            .header("Accept", "application/json")
            .bearer_auth(&token.access_token);
        if let Some(id) = self.cfg.request_id.and_then(|f| f()) {
            b = b.header("X-Request-Id", id);
        }
        if !req.query.is_empty() {
            b = b.query(&req.query);
        }
        let text_form = |fields: &[(String, String)]| {
            let mut form = reqwest::multipart::Form::new();
            for (k, v) in fields {
                form = form.text(k.clone(), v.clone());
            }
            form
        };
        Ok(match &req.body {
            Body::Empty => b,
            Body::Json(v) => b.json(v),
            Body::Multipart { fields, file } => {
                let mut form = text_form(fields);
                if let Some(f) = file {
                    let part = reqwest::multipart::Part::stream(f.bytes.clone())
                        .file_name(f.file_name.clone())
                        .mime_str(&f.content_type)
                        .unwrap_or_else(|_| reqwest::multipart::Part::stream(f.bytes.clone()));
                    form = form.part("file", part);
                }
                b.multipart(form)
            }
            Body::MultipartSpooled { fields, file } => {
                // Opened anew for every attempt: a replay streams the file again from its start.
                let open = || -> std::io::Result<reqwest::Body> {
                    let f = std::fs::File::open(file.file.as_ref().as_ref())?;
                    Ok(reqwest::Body::from(tokio::fs::File::from_std(f)))
                };
                let part = reqwest::multipart::Part::stream_with_length(open()?, file.len)
                    .file_name(file.file_name.clone());
                let part = match part.mime_str(&file.content_type) {
                    Ok(p) => p,
                    Err(_) => reqwest::multipart::Part::stream_with_length(open()?, file.len)
                        .file_name(file.file_name.clone()),
                };
                b.multipart(text_form(fields).part("file", part))
            }
        })
    }

    /// Sends a request with a token from `source`; see the module comment for what happens on the way.
    pub async fn call<S: TokenSource>(&self, source: &S, req: &Request) -> Result<Answer, HlError> {
        match self.exchange(source, req, false).await? {
            Reply::Read(answer) => Ok(answer),
            Reply::Open(mut open) => {
                let mut body = bytes::BytesMut::new();
                while let Some(chunk) = open.chunk().await? {
                    body.extend_from_slice(&chunk);
                }
                Ok(Answer {
                    status: open.status,
                    body: body.freeze(),
                    headers: open.headers,
                    endpoint: open.endpoint,
                })
            }
        }
    }

    /// As [`HighLevelClient::call`], but a successful answer is handed over as soon as its head arrives, its
    /// body unread ([`Streamed`]); refusals are read (up to [`REFUSAL_BODY_LIMIT`]) and diagnosed as ever.
    pub async fn call_streamed<S: TokenSource>(
        &self,
        source: &S,
        req: &Request,
    ) -> Result<Streamed, HlError> {
        match self.exchange(source, req, true).await? {
            Reply::Open(open) => Ok(open),
            Reply::Read(answer) => Err(HlError::BadAnswer {
                endpoint: answer.endpoint,
                reason: "the answer was read whole although it was asked for as a stream".into(),
            }),
        }
    }

    async fn exchange<S: TokenSource>(
        &self,
        source: &S,
        req: &Request,
        stream: bool,
    ) -> Result<Reply, HlError> {
        let ep = req.endpoint;
        let mut token = source.token().await?;
        let deadline = Instant::now() + self.cfg.pacing.max_wait;
        let mut replayed = false;
        let mut attempt = 0u32;
        // Waits between attempts: doubling from `backoff`, each with up to as much again at random.
        let mut delays = backon::BackoffBuilder::build(
            backon::ExponentialBuilder::default()
                .with_min_delay(self.cfg.backoff)
                .with_jitter()
                .with_max_times(self.cfg.retries as usize),
        );
        loop {
            let presented = Presented::of(&token);
            // A call known to be refused is not sent (nor counted against the rate limit).
            if let Some(diagnosis) = diagnosis::predict(&self.context(req, &presented))
                .filter(|d| d.cause != shared_types::Cause::WrongProviderEndpoint)
            {
                // An expired token is sent anyway: its 401 leads to the one refresh-and-replay.
                if diagnosis.cause != shared_types::Cause::TokenExpired || replayed {
                    return Err(HlError::WouldBeRefused {
                        endpoint: ep.name,
                        diagnosis,
                    });
                }
            }
            let resource = pace_key(&token);
            let slot = self.pacer.acquire(&resource, deadline).await?;
            let started = Instant::now();
            let builder = match self.build(&token, req) {
                Ok(b) => b,
                Err(e) => {
                    drop(slot);
                    return Err(HlError::Unavailable {
                        reason: format!(
                            "{} {}: the upload could not be read back: {e}",
                            ep.method.as_str(),
                            ep.path
                        ),
                        maybe_applied: false,
                    });
                }
            };
            // A body read whole is bounded with the rest of the exchange; a streamed one only up to its head,
            // its body then by `idle_timeout` between pieces (`Streamed::chunk`).
            let sent = if stream {
                match tokio::time::timeout(self.cfg.timeout, builder.send()).await {
                    Ok(sent) => sent.map_err(|e| (e.is_connect(), without_url(&e))),
                    Err(_) => Err((
                        false,
                        format!(
                            "timeout: no answer within {} ms",
                            self.cfg.timeout.as_millis()
                        ),
                    )),
                }
            } else {
                builder
                    .timeout(self.cfg.timeout)
                    .send()
                    .await
                    .map_err(|e| (e.is_connect(), without_url(&e)))
            };
            let res = match sent {
                Ok(res) => res,
                // A connection that never opened carried nothing: safe to send again, even a create.
                Err((never_sent, error)) => {
                    self.count(ep.name, 0);
                    drop(slot);
                    if (ep.method.is_idempotent() || ep.upsert || never_sent)
                        && attempt < self.cfg.retries
                    {
                        attempt += 1;
                        tracing::warn!(endpoint = ep.name, attempt, %error, "HighLevel call failed; retrying");
                        tokio::time::sleep(delays.next().unwrap_or(self.cfg.backoff)).await;
                        continue;
                    }
                    return Err(HlError::Unavailable {
                        reason: format!("{} {}: {error}", ep.method.as_str(), ep.path),
                        maybe_applied: !never_sent,
                    });
                }
            };
            let status = res.status().as_u16();
            self.count(ep.name, status);
            let headers = RateHeaders::read(res.headers());
            let passed = passed_headers(res.headers());
            let success = (200..300).contains(&status);
            if success && stream {
                self.pacer.observe(&resource, headers, slot);
                return Ok(Reply::Open(Streamed {
                    status,
                    headers: passed,
                    declared_len: res.content_length(),
                    response: res,
                    endpoint: ep.name,
                    path: ep.path,
                    idle_timeout: self.cfg.idle_timeout,
                }));
            }
            let read = if success {
                res.bytes().await.map_err(|e| without_url(&e))
            } else {
                // Enough for HighLevel's message and the diagnosis, however large the refusal. A streamed
                // call's request has no total bound: its refusal, read whole, gets what is left of `timeout`.
                let refusal = read_bounded(res, REFUSAL_BODY_LIMIT);
                if stream {
                    let left = self.cfg.timeout.saturating_sub(started.elapsed());
                    match tokio::time::timeout(left, refusal).await {
                        Ok(read) => read.map_err(|e| without_url(&e)),
                        Err(_) => Err(format!(
                            "timeout: the refusal was not read within {} ms",
                            self.cfg.timeout.as_millis()
                        )),
                    }
                } else {
                    refusal.await.map_err(|e| without_url(&e))
                }
            };
            let body = match read {
                Ok(b) => b,
                Err(e) => {
                    self.pacer.observe(&resource, headers, slot);
                    if (ep.method.is_idempotent() || ep.upsert) && attempt < self.cfg.retries {
                        attempt += 1;
                        tokio::time::sleep(delays.next().unwrap_or(self.cfg.backoff)).await;
                        continue;
                    }
                    return Err(HlError::Unavailable {
                        reason: format!(
                            "{} {}: the answer was lost ({e})",
                            ep.method.as_str(),
                            ep.path,
                        ),
                        maybe_applied: true,
                    });
                }
            };
            tracing::debug!(
                endpoint = ep.name,
                status,
                ms = started.elapsed().as_millis() as u64,
                "HighLevel call"
            );
            if status == 429 {
                if self.pacer.throttled(&resource, headers, slot) {
                    return Err(HlError::DailyLimitSpent {
                        resource,
                        retry_after: self.cfg.pacing.daily_probe_after,
                    });
                }
                // Nothing was done: send again once there is room (bounded by the deadline).
                continue;
            }
            self.pacer.observe(&resource, headers, slot);
            match status {
                200..=299 => {
                    return Ok(Reply::Read(Answer {
                        status,
                        body,
                        headers: passed,
                        endpoint: ep.name,
                    }))
                }
                // HighLevel answers an expired JWT with `Invalid JWT` in some cases: a 401 for a token whose own
                // `exp` has passed is an expiry whatever the message.
                401 if !replayed
                    && (stale_token(&body)
                        || presented
                            .exp
                            .is_some_and(|exp| exp <= chrono::Utc::now().timestamp())) =>
                {
                    tracing::info!(endpoint = ep.name, installation = %token.installation_id, "HighLevel rejected the token as expired or replaced; fetching the current one and replaying once");
                    token = source.rejected(&token).await?;
                    replayed = true;
                }
                400..=499 => {
                    let value: Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
                        Value::String(truncate(&String::from_utf8_lossy(&body)))
                    });
                    let message = message_of(&value);
                    let diagnosis =
                        diagnosis::diagnose(&self.context(req, &presented), status, &message);
                    return Err(HlError::Refused {
                        endpoint: ep.name,
                        status,
                        message,
                        body: value,
                        diagnosis,
                    });
                }
                _ => {
                    if (ep.method.is_idempotent() || ep.upsert) && attempt < self.cfg.retries {
                        attempt += 1;
                        tracing::warn!(
                            endpoint = ep.name,
                            status,
                            attempt,
                            "HighLevel answered 5xx; retrying"
                        );
                        tokio::time::sleep(delays.next().unwrap_or(self.cfg.backoff)).await;
                        continue;
                    }
                    return Err(HlError::Unavailable {
                        reason: format!(
                            "{} {} answered {status}: {}",
                            ep.method.as_str(),
                            ep.path,
                            truncate(&String::from_utf8_lossy(&body))
                        ),
                        maybe_applied: !ep.method.is_idempotent(),
                    });
                }
            }
        }
    }

    /// A POST that proves itself with something in its body rather than a bearer token (the custom provider's
    /// webhook carries the provider's api key): the `Version` header, timeouts and the answer counts of every
    /// call, no token and no pacing. Not retried here: the caller keeps what it sends and tries again.
    pub(crate) async fn post_unauthenticated(
        &self,
        name: &'static str,
        path: &str,
        body: &Value,
    ) -> Result<(), HlError> {
        let mut b = self
            .http
            .post(format!("{}{path}", self.cfg.backend_url))
            .timeout(self.cfg.timeout)
            .header("Version", API_VERSION)
            .json(body);
        if let Some(id) = self.cfg.request_id.and_then(|f| f()) {
            b = b.header("X-Request-Id", id);
        }
        let res = b.send().await.map_err(|e| {
            self.count(name, 0);
            HlError::Unavailable {
                reason: format!("POST {path}: {}", without_url(&e)),
                maybe_applied: !e.is_connect(),
            }
        })?;
        let status = res.status().as_u16();
        self.count(name, status);
        if (200..300).contains(&status) {
            return Ok(());
        }
        let text = res.text().await.unwrap_or_default();
        if (400..500).contains(&status) && status != 429 {
            let value: Value =
                serde_json::from_str(&text).unwrap_or_else(|_| Value::String(truncate(&text)));
            let message = message_of(&value);
            return Err(HlError::Refused {
                endpoint: name,
                status,
                diagnosis: shared_types::Diagnosis {
                    cause: shared_types::Cause::Unknown,
                    detail: format!("HighLevel answered {status}: {message}"),
                    fix: "Check that the provider is still connected with the key this service derives (PUT /api/locations/{locationId}/payments/provider registers it again).".into(),
                },
                message,
                body: value,
            });
        }
        Err(HlError::Unavailable {
            reason: format!("POST {path} answered {status}: {}", truncate(&text)),
            maybe_applied: true,
        })
    }

    fn count(&self, endpoint: &'static str, status: u16) {
        *self
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((endpoint, status))
            .or_default() += 1;
    }
}

/// The answer's headers that say something about the body or the rate limit, for callers that pass them on.
fn passed_headers(h: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .filter(|(name, _)| {
            let n = name.as_str();
            n == "content-type" || n.starts_with("x-ratelimit-")
        })
        .filter_map(|(name, v)| Some((name.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

/// HighLevel's 401 for an expired or replaced (refreshed) access token.
fn stale_token(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .map(|v| message_of(&v).starts_with(diagnosis::messages::TOKEN_INVALID))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_never_debug_print_their_values() {
        let b = Body::Json(serde_json::json!({"live": {"apiKey": "sk_live_secret"}}));
        let m = Body::Multipart {
            fields: vec![("fileUrl".into(), "https://x/secret-path".into())],
            file: None,
        };
        let printed = format!("{b:?} {m:?}");
        assert!(
            printed.contains("live")
                && !printed.contains("sk_live_secret")
                && !printed.contains("secret-path")
        );
    }
}
