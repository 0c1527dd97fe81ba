//! What both HTTP services wrap every request in: [`RequestContext`] (the request id, the request's log context
//! and its access line, problem bodies for the framework's own refusals), and helpers both use.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{Method, Uri};
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

tokio::task_local! {
    static REQUEST: RequestInfo;
}

/// The request a task is serving: its id, method and path. Every log line written while it is served carries
/// them ([`crate::logging`] reads them here), and calls made for it pass the id on. A task-local rather than a
/// `tracing` span: a span per request cost a token read a quarter of its CPU under the default log filter
/// (the span's fields formatted when it opens, a shared lock taken on each enter and exit), where this costs
/// a move in and out; the fields are formatted only for a line that is written.
#[derive(Clone)]
pub struct RequestInfo {
    pub id: HeaderValue,
    pub method: Method,
    /// The whole URI is kept (its parts are reference-counted slices of the request), but only its path is
    /// logged: the query can carry OAuth codes.
    uri: Uri,
}

impl RequestInfo {
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The request being served on this task, if any.
    pub fn current() -> Option<RequestInfo> {
        REQUEST.try_with(RequestInfo::clone).ok()
    }

    /// Runs `fut` as part of this request: what it logs carries the request's id, method and path (for work
    /// that goes on after the handler has returned, such as a streamed answer's body).
    pub fn scope<F: Future>(self, fut: F) -> tokio::task::futures::TaskLocalFuture<RequestInfo, F> {
        REQUEST.scope(self, fut)
    }

    /// Reads the request served on this task, if any, without copying it.
    pub fn with_current<R>(f: impl FnOnce(&RequestInfo) -> R) -> Option<R> {
        REQUEST.try_with(f).ok()
    }
}

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served on this task, if any (passed on to oauth-backend and HighLevel).
pub fn current_request_id() -> Option<String> {
    RequestInfo::with_current(|r| r.id.to_str().ok().map(str::to_owned)).flatten()
}

/// A caller's `X-Request-Id` is kept if it is a sane token (the header's own bytes, not copied); otherwise a
/// new one is made.
fn request_id_of(req: &ServiceRequest) -> HeaderValue {
    req.headers()
        .get(X_REQUEST_ID)
        .filter(|v| {
            let v = v.as_bytes();
            !v.is_empty()
                && v.len() <= 128
                && v.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || b"-_.:".contains(&c))
        })
        .cloned()
        .unwrap_or_else(new_request_id)
}

/// 32 hex digits: a random prefix drawn once per thread and the thread's counter. Unique like a random one
/// (threads and processes differ by prefix), without a random draw, a formatter or a shared atomic on every
/// request.
fn new_request_id() -> HeaderValue {
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
    let id = (u128::from(prefix) << 64) | u128::from(n);
    let mut out = [0u8; 32];
    for (i, digit) in out.iter_mut().enumerate() {
        *digit = HEX[((id >> (124 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&out).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// What every request of both services passes through, in one layer (one future, nothing boxed):
/// - an id (the caller's `X-Request-Id`, or a new one): every log line of the request carries it, with the
///   method and path ([`RequestInfo`]; never the query: it can carry OAuth codes), calls made for the request
///   pass it on ([`current_request_id`]), and the answer returns it;
/// - one access line when the answer is ready (server errors at `error`, the rest at `debug`; health and
///   metrics scrapes are not logged);
/// - every refusal as an RFC 9457 problem body, the framework's own included ([`problem_body`]).
///
/// A service may answer its hottest request at once ([`AnswerAtOnce`]): such an answer carries the id like any
/// other, without the request's log context or a future.
#[derive(Clone, Copy, Default)]
pub struct RequestContext {
    pub at_once: Option<AnswerAtOnce>,
}

/// A service's answer to a request it can give at once, before its routes and without a future (the cached
/// token read): a success, or `None` to let the request through to the routes. It runs ahead of everything in
/// the service's `App` (its middleware included) and before the request's log context is set, so a line it
/// writes carries no request id: refusals and whatever else needs explaining, it leaves to the routes. It is
/// asked only while no `debug` line can be written (`tracing`'s global level hint, which any `debug` directive
/// raises), so a debug run logs every request with its access line.
pub type AnswerAtOnce = fn(&actix_web::HttpRequest) -> Option<actix_web::HttpResponse>;

impl<S, B> Transform<S, ServiceRequest> for RequestContext
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RequestContextService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestContextService {
            service,
            at_once: self.at_once,
        }))
    }
}

pub struct RequestContextService<S> {
    service: S,
    at_once: Option<AnswerAtOnce>,
}

impl<S, B> Service<ServiceRequest> for RequestContextService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = futures::future::Either<
        Ready<Result<Self::Response, Self::Error>>,
        RequestContextFuture<S::Future>,
    >;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        use futures::future::Either;
        let id = request_id_of(&req);
        if let Some(res) = self
            .at_once
            .filter(|_| !tracing::level_enabled!(tracing::Level::DEBUG))
            .and_then(|at_once| at_once(req.request()))
        {
            if !res.status().is_success() {
                let status = res.status().as_u16();
                tracing::error!(
                    status,
                    path = req.path(),
                    "an answer at once is not a success"
                );
            }
            let mut res = req.into_response(res.map_into_right_body());
            res.headers_mut().insert(X_REQUEST_ID, id);
            return Either::Left(ready(Ok(res)));
        }
        let started = Instant::now();
        let info = RequestInfo {
            id,
            method: req.method().clone(),
            uri: req.uri().clone(),
        };
        // Routing and the handler's set-up run here, outside the context (the handler's own code runs when the
        // future is polled). Nothing of ours logs there; actix-cors's refusal of an origin (at debug) does, without
        // the id, and the access line that follows it carries the id.
        let inner = self.service.call(req);
        Either::Right(RequestContextFuture {
            // The context lives in the task-local while the request is served and is taken back for the answer.
            inner: REQUEST.scope(info, inner),
            started,
        })
    }
}

pin_project_lite::pin_project! {
    pub struct RequestContextFuture<F: Future> {
        #[pin]
        inner: tokio::task::futures::TaskLocalFuture<RequestInfo, F>,
        started: Instant,
    }
}

impl<F, B> Future for RequestContextFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
    B: MessageBody,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let res = match this.inner.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => {
                let status = e.as_response_error().status_code().as_u16();
                let failed = || tracing::error!(status, "request failed before an answer");
                match this.inner.take_value() {
                    Some(info) => info.scope_sync(failed),
                    None => failed(),
                }
                return Poll::Ready(Err(e));
            }
            Poll::Ready(Ok(res)) => res,
        };
        let info = this.inner.take_value();
        let status = res.status().as_u16();
        let path = res.request().path();
        let method = res.request().method();
        let ms = || this.started.elapsed().as_secs_f64() * 1000.0;
        // In the request's context only when a line is written: the common read writes none.
        let in_context = |line: &dyn Fn()| match &info {
            Some(info) => info.scope_sync(line),
            None => line(),
        };
        if status >= 500 {
            in_context(&|| tracing::error!(%method, path, status, ms = ms(), "request"));
        } else if path != "/healthz"
            && path != "/metrics"
            && tracing::level_enabled!(tracing::Level::DEBUG)
        {
            in_context(&|| tracing::debug!(%method, path, status, ms = ms(), "request"));
        }
        let mut res = problem_body(res);
        if let Some(info) = info {
            res.headers_mut().insert(X_REQUEST_ID, info.id);
        }
        Poll::Ready(Ok(res))
    }
}

impl RequestInfo {
    /// Runs `f` with this request as the task's (for a line logged outside the request's future).
    fn scope_sync<R>(&self, f: impl FnOnce() -> R) -> R {
        REQUEST.sync_scope(self.clone(), f)
    }
}

/// The token of an `Authorization: Bearer <token>` header value, if it is one.
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    let header = authorization?;
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The `Authorization` header of a request, if it is text ([`header_text`]).
pub fn authorization(req: &actix_web::HttpRequest) -> Option<&str> {
    header_text(req.headers().get(actix_web::http::header::AUTHORIZATION)?)
}

/// A header value as text, if it is visible ASCII (or tabs), as `HeaderValue::to_str` wants. Checked without
/// stopping at the first byte, so the check runs several bytes at a time: a service JWT is a few hundred bytes.
pub fn header_text(value: &HeaderValue) -> Option<&str> {
    let bytes = value.as_bytes();
    let visible = bytes.iter().fold(true, |ok, &b| {
        ok & ((0x20..0x7f).contains(&b) | (b == b'\t'))
    });
    visible.then(|| std::str::from_utf8(bytes).ok()).flatten()
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
fn problem_body<B: MessageBody>(res: ServiceResponse<B>) -> ServiceResponse<EitherBody<B>> {
    use actix_web::http::{header, StatusCode};
    use shared_types::{Problem, ProblemCode};
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res.map_into_left_body();
    }
    let shaped = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("json"));
    if shaped {
        return res.map_into_left_body();
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
    let response: actix_web::HttpResponse<BoxBody> = actix_web::HttpResponse::build(status)
        .content_type(Problem::CONTENT_TYPE)
        .body(body);
    ServiceResponse::new(request, response).map_into_right_body()
}

/// The address tests and clients reach a server bound to `host` at: `0.0.0.0` is reached on loopback.
pub fn base_url(host: &str, port: u16) -> String {
    let host = if host == "0.0.0.0" { "127.0.0.1" } else { host };
    format!("http://{host}:{port}")
}

/// SIGTERM (what container hosts send to stop a process) or SIGINT (Ctrl-C). The handlers are in place when
/// this returns (before a server answers anything); the future completes when a signal arrives.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let streams = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        );
        async move {
            match streams {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => std::future::pending::<()>().await,
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_request_ids_are_a_thread_prefix_and_a_counter_in_hex() {
        let a = new_request_id();
        let b = new_request_id();
        let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
        for id in [a, b] {
            assert_eq!(id.len(), 32, "{id}");
            assert!(
                id.bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
                "{id}"
            );
        }
        assert_eq!(a[..16], b[..16]);
        let n = |id: &str| u64::from_str_radix(&id[16..], 16).unwrap();
        assert_eq!(n(b), n(a).wrapping_add(1));
        let other = std::thread::spawn(|| new_request_id().to_str().unwrap().to_owned())
            .join()
            .unwrap();
        assert_ne!(other[..16], a[..16]);
    }
    use actix_web::http::header::AUTHORIZATION;
    use actix_web::test as actix_test;
    use actix_web::{web, App, HttpResponse};

    #[test]
    fn authorization_is_text_exactly_when_the_header_value_is() {
        for raw in [
            b"Bearer abc.def-ghi_jkl".as_slice(),
            b"Bearer \tx",
            b"Bearer caf\xc3\xa9",
            b"\xff",
            b"",
        ] {
            let value = HeaderValue::from_bytes(raw).unwrap();
            let req = actix_test::TestRequest::default()
                .insert_header((AUTHORIZATION, value.clone()))
                .to_http_request();
            assert_eq!(authorization(&req), value.to_str().ok(), "{raw:?}");
        }
        assert_eq!(
            authorization(&actix_test::TestRequest::default().to_http_request()),
            None
        );
    }

    /// Every line written while a request is served carries its id, method and path (never its query), in the
    /// shape a `tracing` span named `request` had; lines of no request carry none.
    #[actix_web::test]
    async fn lines_written_for_a_request_carry_its_id_method_and_path() {
        let lines = crate::testing::CapturedLogs::install();
        let app = actix_test::init_service(App::new().wrap(RequestContext::default()).route(
            "/x",
            web::get().to(|| async {
                tracing::info!(answer = 42, "in the handler");
                // A span of the handler's own does not make a second `span` key.
                tracing::info_span!("inner", x = 1).in_scope(|| tracing::info!("in a span"));
                HttpResponse::Ok().finish()
            }),
        ))
        .await;
        let req = actix_test::TestRequest::get()
            .uri("/x?code=secret-oauth-code")
            .insert_header(("x-request-id", "logged-req-1"))
            .to_request();
        assert_eq!(actix_test::call_service(&app, req).await.status(), 200);
        tracing::info!("outside any request");

        let text = lines.text();
        assert!(!text.contains("secret-oauth-code"), "{text}");
        let parsed: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|l: &serde_json::Value| {
                l["span"]["request_id"] == "logged-req-1" || l.get("span").is_none()
            })
            .collect();
        let line = |message: &str| {
            parsed
                .iter()
                .find(|l| l["fields"]["message"] == message)
                .unwrap_or_else(|| panic!("{message:?} in {text}"))
                .clone()
        };
        let expected = serde_json::json!({
            "request_id": "logged-req-1", "method": "GET", "path": "/x", "name": "request"
        });
        let handler = line("in the handler");
        assert_eq!(handler["span"], expected);
        assert_eq!(handler["spans"], serde_json::json!([expected]));
        assert_eq!(handler["fields"]["answer"], 42);
        assert_eq!(handler["level"], "INFO");
        let in_span = line("in a span");
        assert_eq!(in_span["span"], expected);
        assert_eq!(text.lines().filter(|l| l.contains("in a span")).count(), 1);
        assert_eq!(
            text.lines()
                .find(|l| l.contains("in a span"))
                .map(|l| l.matches("\"span\":").count()),
            Some(1)
        );
        // The access line too.
        assert_eq!(line("request")["span"], expected);
        assert_eq!(line("outside any request").get("span"), None);
    }

    /// While `debug` lines can be written (this binary's captured logs are at `debug`), a service's answer at
    /// once is not asked: every request goes to the routes and has its access line. (The answer at once itself
    /// is tested in `tests/at_once.rs`, a binary with no subscriber.)
    #[actix_web::test]
    async fn a_debug_run_answers_every_request_through_the_routes() {
        let lines = crate::testing::CapturedLogs::install();
        assert!(tracing::level_enabled!(tracing::Level::DEBUG));
        let app = actix_test::init_service(
            App::new()
                .wrap(RequestContext {
                    at_once: Some(|_| Some(HttpResponse::Ok().body("at once"))),
                })
                .default_service(web::to(|| async { HttpResponse::Ok().body("routes") })),
        )
        .await;
        let req = actix_test::TestRequest::get()
            .uri("/fast")
            .insert_header(("x-request-id", "debug-run-1"))
            .to_request();
        let res = actix_test::call_service(&app, req).await;
        assert_eq!(res.headers().get("x-request-id").unwrap(), "debug-run-1");
        assert_eq!(actix_test::read_body(res).await, "routes");
        let text = lines.text();
        assert!(
            text.lines()
                .any(|l| l.contains("\"request_id\":\"debug-run-1\"")
                    && l.contains("\"message\":\"request\"")),
            "{text}"
        );
    }

    #[actix_web::test]
    async fn every_answer_carries_the_request_id_and_refusals_are_problems() {
        let app = actix_test::init_service(
            App::new()
                .wrap(RequestContext::default())
                // A resource (not `App::route`, whose method guard would make another method a 404): another
                // method is the framework's 405.
                .service(web::resource("/id").route(web::get().to(|| async {
                    HttpResponse::Ok().body(current_request_id().unwrap_or_default())
                })))
                .route(
                    "/fail",
                    web::get().to(|| async { HttpResponse::BadGateway().finish() }),
                ),
        )
        .await;
        // A caller's sane id is kept, seen by the handler and returned.
        let req = actix_test::TestRequest::get()
            .uri("/id")
            .insert_header(("x-request-id", "trace-abc:1.2_3"))
            .to_request();
        let res = actix_test::call_service(&app, req).await;
        assert_eq!(
            res.headers().get("x-request-id").unwrap(),
            "trace-abc:1.2_3"
        );
        assert_eq!(actix_test::read_body(res).await, "trace-abc:1.2_3");
        // Anything else is replaced by a new id, different on every request.
        let mut seen = Vec::new();
        let long = "x".repeat(129);
        for bad in ["has space", "", long.as_str()] {
            let req = actix_test::TestRequest::get()
                .uri("/id")
                .insert_header(("x-request-id", bad))
                .to_request();
            let res = actix_test::call_service(&app, req).await;
            let id = res
                .headers()
                .get("x-request-id")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            assert!(
                id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                "{id}"
            );
            assert_eq!(actix_test::read_body(res).await, id.as_str());
            seen.push(id);
        }
        seen.dedup();
        assert_eq!(seen.len(), 3);
        // The framework's and the handlers' bare refusals become problem bodies, with the id.
        for (uri, status, code) in [("/nowhere", 404, "not_found"), ("/fail", 502, "internal")] {
            let res = actix_test::call_service(
                &app,
                actix_test::TestRequest::get().uri(uri).to_request(),
            )
            .await;
            assert_eq!(res.status().as_u16(), status);
            assert!(res.headers().contains_key("x-request-id"));
            assert_eq!(
                res.headers().get("content-type").unwrap(),
                "application/problem+json"
            );
            let body: serde_json::Value = actix_test::read_body_json(res).await;
            assert_eq!(body["code"], code, "{body}");
        }
        let res = actix_test::call_service(
            &app,
            actix_test::TestRequest::post().uri("/id").to_request(),
        )
        .await;
        assert_eq!(res.status().as_u16(), 405);
        let body: serde_json::Value = actix_test::read_body_json(res).await;
        assert_eq!(body["code"], "method_not_allowed");
    }
}
