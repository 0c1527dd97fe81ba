//! What both HTTP services wrap every request in.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use std::time::Instant;
use tracing::Instrument;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served on this task, if any (passed on to oauth-backend and HighLevel).
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A caller's `X-Request-Id` is kept if it is a sane token; otherwise a new one is made.
fn request_id_of(req: &ServiceRequest) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        })
        .map(str::to_owned)
        .unwrap_or_else(new_request_id)
}

/// 32 hex digits: a random prefix drawn once per thread and the thread's counter. Unique like a random one
/// (threads and processes differ by prefix), without a random draw, a formatter or a shared atomic on every
/// request (together 2 % of a cached token read).
fn new_request_id() -> String {
    use std::cell::Cell;
    thread_local! {
        static NEXT: Cell<(u64, u64)> = Cell::new((rand::random::<u64>(), 0));
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let (prefix, n) = NEXT.with(|next| {
        let (prefix, n) = next.get();
        next.set((prefix, n.wrapping_add(1)));
        (prefix, n)
    });
    let mut out = [0u8; 32];
    for (i, byte) in prefix
        .to_be_bytes()
        .into_iter()
        .chain(n.to_be_bytes())
        .enumerate()
    {
        out[2 * i] = HEX[usize::from(byte >> 4)];
        out[2 * i + 1] = HEX[usize::from(byte & 0xf)];
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// Gives every request an id (the caller's `X-Request-Id`, or a new one): every log line of the request carries
/// it (a tracing span), calls made for the request pass it on, and the answer returns it.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request_id_of(&req);
    let span = tracing::info_span!("request", request_id = %id);
    let mut res = REQUEST_ID
        .scope(id.clone(), next.call(req).instrument(span))
        .await?;
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&id) {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-request-id"),
            v,
        );
    }
    Ok(res)
}

/// One line per request: method, path (never the query: it can carry OAuth codes), status, time. Server
/// errors at `error`, the rest at `debug`; health and metrics scrapes are not logged.
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let res = next.call(req).await?;
    let (status, ms) = (
        res.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0,
    );
    let (method, path) = (res.request().method(), res.request().path());
    if status >= 500 {
        tracing::error!(%method, %path, status, ms, "request");
    } else if path != "/healthz" && path != "/metrics" {
        tracing::debug!(%method, %path, status, ms, "request");
    }
    Ok(res)
}

/// Binds a listening socket with a deep accept queue. `std`'s `TcpListener::bind` asks for 128, too few when
/// thousands of callers connect at once (they wait at api-backend for room under HighLevel's rate limit):
/// connections past the queue stall until the client times out.
pub fn listen(host: &str, port: u16) -> std::io::Result<std::net::TcpListener> {
    use std::net::ToSocketAddrs;
    let addr = (host, port).to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address for the host")
    })?;
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// Every refusal as an RFC 9457 problem body, the framework's own included: a wrong method (405), a body over
/// a size limit (413), an unreadable payload. Answers our handlers already shaped pass untouched.
pub async fn problem_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use actix_web::http::{header, StatusCode};
    use shared_types::{Problem, ProblemCode};
    let res = next.call(req).await?.map_into_boxed_body();
    let status = res.status();
    let shaped = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("json"));
    if !(status.is_client_error() || status.is_server_error()) || shaped {
        return Ok(res);
    }
    let (code, title) = match status {
        StatusCode::NOT_FOUND => (ProblemCode::NotFound, "Not found"),
        StatusCode::METHOD_NOT_ALLOWED => (ProblemCode::MethodNotAllowed, "Method not allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => (ProblemCode::PayloadTooLarge, "Payload too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            (ProblemCode::UnsupportedMediaType, "Unsupported media type")
        }
        s if s.is_client_error() => (ProblemCode::InvalidRequest, "Invalid request"),
        _ => (ProblemCode::Internal, "Internal error"),
    };
    let detail = match (status, res.response().error()) {
        (StatusCode::METHOD_NOT_ALLOWED, _) => format!(
            "{} is not served on {}",
            res.request().method(),
            res.request().path()
        ),
        (s, Some(e)) if s.is_client_error() => e.to_string().chars().take(300).collect(),
        (s, _) if s.is_client_error() => status.canonical_reason().unwrap_or("refused").to_owned(),
        _ => "An internal error occurred; the server log has the cause.".to_owned(),
    };
    let problem = Problem::new(status.as_u16(), code, title, detail);
    let body = serde_json::to_string(&problem).unwrap_or_default();
    let (request, _) = res.into_parts();
    let response = actix_web::HttpResponse::build(status)
        .content_type(Problem::CONTENT_TYPE)
        .body(body);
    Ok(ServiceResponse::new(request, response))
}

/// The address tests and clients reach a server bound to `host` at: `0.0.0.0` is reached on loopback.
pub fn base_url(host: &str, port: u16) -> String {
    let host = if host == "0.0.0.0" { "127.0.0.1" } else { host };
    format!("http://{host}:{port}")
}

/// Resolves on Ctrl-C or SIGTERM (what container hosts send to stop a process).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
