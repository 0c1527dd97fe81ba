//! `GET /api/token-access/{id}` and `POST /api/token-access/{id}/refresh`, for internal callers with a service JWT.

use super::{check_id, service_claims, State};
use crate::error::AppError;
use crate::service_auth::allows;
use crate::state::AppState;
use crate::store::audit::Outcome;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use shared_types::RefreshRequest;
use shared_types::ServiceClaims;
use std::sync::Arc;
use std::time::Instant;

/// The read's route.
const TOKEN_ACCESS: &str = "/api/token-access/{installation_id}";

pub fn configure(cfg: &mut web::ServiceConfig) {
    // A GET of a well-formed id is answered before the router: a cached read at once ([`answer_at_once`]),
    // any other by [`HotRead`]. These routes answer everything else (another method, a malformed id, a longer
    // path) and document the API.
    cfg.route(TOKEN_ACCESS, web::get().to(get_token)).route(
        "/api/token-access/{installation_id}/refresh",
        web::post().to(refresh),
    );
}

/// Answers `GET /api/token-access/<id>` (a well-formed id) ahead of actix's router; any other request goes on
/// to the routes unchanged. The router cost a cached read about a tenth of its CPU in the bench: matching the
/// path against the routes in turn, and a boxed future for each of its layers (scope, route, handler). The
/// answer is the route's own: the same handler, auth, audit and errors.
///
/// The common read (a caller this thread verified before, a cached token) is answered before this, at once
/// ([`answer_at_once`]); what reaches this is every other read of a well-formed id.
pub struct HotRead;

impl<S, B> Transform<S, ServiceRequest> for HotRead
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = HotReadService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        std::future::ready(Ok(HotReadService { service }))
    }
}

pub struct HotReadService<S> {
    service: S,
}

type Answer<B> = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>;

impl<S, B> Service<ServiceRequest> for HotReadService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = futures::future::Either<
        futures::future::LocalBoxFuture<'static, Answer<B>>,
        futures::future::MapOk<S::Future, fn(ServiceResponse<B>) -> ServiceResponse<EitherBody<B>>>,
    >;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        use futures::future::{Either, TryFutureExt};
        if req.method() != Method::GET || id_in_path(req.path()).is_none() {
            let left: fn(ServiceResponse<B>) -> ServiceResponse<EitherBody<B>> =
                ServiceResponse::map_into_left_body;
            return Either::Right(self.service.call(req).map_ok(left));
        }
        let (req, _payload) = req.into_parts();
        Either::Left(Box::pin(async move {
            let answer = get_token_by_prefix(&req).await;
            Ok(match answer {
                Ok(res) => ServiceResponse::new(req, res.map_into_right_body()),
                Err(e) => ServiceResponse::from_err(e, req).map_into_right_body(),
            })
        }))
    }
}

/// What follows the prefix in [`TOKEN_ACCESS`].
const ID_SEGMENT: &str = "/{installation_id}";

/// `/api/token-access`: the route before its id (a slice of the route, taken without a search on every read).
fn static_prefix() -> &'static str {
    &TOKEN_ACCESS[..TOKEN_ACCESS.len() - ID_SEGMENT.len()]
}

/// The id of a path `/api/token-access/<id>` whose id is well formed (1-64 letters, digits, `-`, `_`: nothing
/// to decode, nothing after it).
fn id_in_path(path: &str) -> Option<&str> {
    path.strip_prefix(static_prefix())?
        .strip_prefix('/')
        .filter(|id| shared_types::is_id(id))
}

fn json_body(answer: shared_types::TokenAccess) -> bytes::Bytes {
    serde_json::to_vec(&answer)
        .map(bytes::Bytes::from)
        .unwrap_or_default()
}

/// An installation id that passed the id check (`shared_types::is_id`). [`audited`] takes only this, so no
/// route reaches the token store with an id nobody checked, and the hot read does not check it twice.
#[derive(Clone, Copy)]
struct InstallationId<'a>(&'a str);

impl<'a> InstallationId<'a> {
    fn checked(id: &'a str) -> Result<InstallationId<'a>, AppError> {
        check_id("installation id", id)?;
        Ok(InstallationId(id))
    }

    /// The id of a path `/api/token-access/<id>`, if it is well formed ([`id_in_path`]).
    fn in_path(path: &'a str) -> Option<InstallationId<'a>> {
        id_in_path(path).map(InstallationId)
    }

    /// The id of a path [`HotRead`] took: [`id_in_path`] checked it.
    fn of_hot_read(path: &'a str) -> InstallationId<'a> {
        InstallationId(path.get(static_prefix().len() + 1..).unwrap_or_default())
    }
}

#[derive(Deserialize)]
pub struct LocationQuery {
    location_id: Option<String>,
}

/// Verifies the caller and audits the outcome, whatever it is.
async fn audited<F, Fut>(
    req: &HttpRequest,
    state: &AppState,
    installation: InstallationId<'_>,
    location: Option<&str>,
    serve: F,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<bytes::Bytes, AppError>>,
{
    let started = Instant::now();
    if let Some(l) = location {
        check_id("location_id", l)?;
    }
    let claims = service_claims(req, state)?;
    let result = match may_read(&claims, installation) {
        Ok(()) => serve().await,
        Err(e) => Err(e),
    };
    let outcome = match &result {
        Ok(_) => Outcome::Served,
        Err(e) => Outcome::Refused(e.code()),
    };
    finished(state, &claims, installation, location, outcome, started);
    result.map(token_answer)
}

/// Whether the caller may read the installation: the one rule both the handler's path ([`audited`]) and the
/// at-once path ([`answer_at_once`]) apply, so a rule added here holds for every read.
fn may_read(
    claims: &ServiceClaims,
    InstallationId(id): InstallationId<'_>,
) -> Result<(), AppError> {
    if allows(claims, id) {
        Ok(())
    } else {
        Err(AppError::CallerNotAllowed(claims.iss.clone()))
    }
}

/// The cached answer, if the cache holds the token with enough life left (counted as a hit): both paths
/// read the cache here.
fn cached_body(
    state: &AppState,
    InstallationId(id): InstallationId<'_>,
    location: Option<&str>,
    now_ms: i64,
) -> Option<bytes::Bytes> {
    let hit = state.tokens.cached(id, location, now_ms)?;
    state.metrics.cache_hits.mine().inc();
    Some(hit.body)
}

/// What every read leaves behind, whichever path answered it: its audit entry and its answer time.
fn finished(
    state: &AppState,
    claims: &Arc<ServiceClaims>,
    InstallationId(id): InstallationId<'_>,
    location: Option<&str>,
    outcome: Outcome,
    started: Instant,
) {
    state.audit.record(claims, id, location, outcome);
    state
        .metrics
        .token_access_seconds
        .mine()
        .observe(started.elapsed().as_secs_f64());
}

/// A token's answer: its JSON, never to be stored by a cache on the way.
fn token_answer(body: bytes::Bytes) -> HttpResponse {
    use actix_web::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
    // Headers set directly: the builder's conversions cost a read more than the answer's bytes do.
    let mut res = HttpResponse::with_body(actix_web::http::StatusCode::OK, body);
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.map_into_boxed_body()
}

/// The common read, answered at once (`service_common::http::AnswerAtOnce`: before the routes, with no future
/// and no log context): a GET of a well-formed id by a caller this thread verified before (its JWT still
/// live), allowed to read the installation, whose token is cached with enough life left. `None` for anything
/// else (another route, a JWT new to this thread or expired, a caller not allowed, a malformed or unusual
/// query, a miss): [`HotRead`] or the routes then answer, refuse or load it, and audit it, as for any read.
/// What this answers is audited and timed as they would.
pub fn answer_at_once(req: &HttpRequest) -> Option<HttpResponse> {
    if req.method() != Method::GET {
        return None;
    }
    let installation = InstallationId::in_path(req.path())?;
    let started = Instant::now();
    let state: &AppState = req.app_data::<State>()?;
    let location = match req.query_string() {
        "" => None,
        query => {
            let location = web::Query::<LocationQuery>::from_query(query)
                .ok()?
                .into_inner()
                .location_id?;
            if !shared_types::is_id(&location) {
                return None;
            }
            Some(location)
        }
    };
    let location = location.as_deref();
    // One clock read for both checks: the JWT's expiry (seconds) and the token's life left (ms).
    let now = crate::store::now_ms();
    let claims = state.auth.known_at(
        req.headers().get(actix_web::http::header::AUTHORIZATION),
        now.div_euclid(1000),
    )?;
    may_read(&claims, installation).ok()?;
    let body = cached_body(state, installation, location, now)?;
    finished(
        state,
        &claims,
        installation,
        location,
        Outcome::Served,
        started,
    );
    Some(token_answer(body))
}

/// A token for the installation with at least 60 s of life; with `location_id`, always a Location token.
#[utoipa::path(get, path = "/api/token-access/{installation_id}", tag = "tokens",
    params(("installation_id" = String, Path), ("location_id" = Option<String>, Query)),
    responses((status = 200, description = "TokenAccess", body = Object), (status = "4XX", body = shared_types::Problem), (status = "5XX", body = shared_types::Problem)),
    security(("service_jwt" = [])))]
pub async fn get_token(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<LocationQuery>,
) -> Result<HttpResponse, AppError> {
    serve_token(
        &req,
        InstallationId::checked(&path)?,
        query.location_id.as_deref(),
    )
    .await
}

/// [`get_token`] for the reads [`HotRead`] takes (it checked the id).
async fn get_token_by_prefix(req: &HttpRequest) -> Result<HttpResponse, AppError> {
    // Parsed only when there is a query: most reads have none.
    let location = match req.query_string() {
        "" => None,
        query => {
            web::Query::<LocationQuery>::from_query(query)
                .map_err(|e| AppError::InvalidRequest(e.to_string()))?
                .into_inner()
                .location_id
        }
    };
    serve_token(
        req,
        InstallationId::of_hot_read(req.path()),
        location.as_deref(),
    )
    .await
}

async fn serve_token(
    req: &HttpRequest,
    installation: InstallationId<'_>,
    location: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let id = installation.0;
    // The state by reference: extracting `web::Data` clones it, writing a reference count every server
    // thread shares on every read.
    let state: &AppState = req
        .app_data::<State>()
        .ok_or_else(|| AppError::Internal("the application state is not registered".into()))?;
    audited(req, state, installation, location, || async {
        match cached_body(state, installation, location, crate::store::now_ms()) {
            Some(body) => Ok(body),
            None => {
                state.metrics.cache_misses.mine().inc();
                // Boxed: the miss (database, decryption, maybe a refresh at HighLevel) is a future of tens of
                // kilobytes, and a hit would copy all of it each time actix moves this handler's future.
                Box::pin(state.tokens.access(id, location))
                    .await
                    .map(json_body)
            }
        }
    })
    .await
}

/// HighLevel refused `rejected_token`: refreshed only if it is still the current token; the current token
/// either way.
#[utoipa::path(post, path = "/api/token-access/{installation_id}/refresh", tag = "tokens",
    params(("installation_id" = String, Path), ("location_id" = Option<String>, Query)),
    request_body(content = Object, description = "`{rejected_token}`"),
    responses((status = 200, description = "TokenAccess", body = Object), (status = "4XX", body = shared_types::Problem), (status = "5XX", body = shared_types::Problem)),
    security(("service_jwt" = [])))]
pub async fn refresh(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
    query: web::Query<LocationQuery>,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, AppError> {
    let location = query.location_id.as_deref();
    if body.rejected_token.is_empty() || body.rejected_token.len() > 8192 {
        return Err(AppError::InvalidRequest(
            "rejected_token must be the token HighLevel refused".into(),
        ));
    }
    let installation = InstallationId::checked(&path)?;
    audited(&req, &state, installation, location, || async {
        state
            .tokens
            .refresh_rejected(&path, location, &body.rejected_token)
            .await
            .map(json_body)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// actix moves a handler's future (into its box, then through its combinators): every byte of it is copied
    /// on every read. The miss path (database, decryption, a refresh at HighLevel) is tens of kilobytes of
    /// future; inlined, a cached read copied all of it, 4-5 µs a read.
    #[test]
    fn a_cached_read_moves_a_small_future() {
        let req = actix_web::test::TestRequest::default().to_http_request();
        let read = serve_token(&req, InstallationId("inst"), None);
        let size = std::mem::size_of_val(&read);
        eprintln!("serve_token's future: {size} bytes");
        assert!(size <= 2048, "serve_token's future is {size} bytes");
    }

    /// `HotRead` answers a GET of a well-formed id itself (here with the handler's own 500: no state is
    /// registered), and passes every other request to the routes untouched.
    #[actix_web::test]
    async fn the_hot_read_takes_only_gets_of_well_formed_ids() {
        use actix_web::test;
        let app = test::init_service(actix_web::App::new().wrap(HotRead).default_service(web::to(
            || async { HttpResponse::ImATeapot().body("routes") },
        )))
        .await;
        let status = |req: test::TestRequest| {
            let app = &app;
            async move {
                test::call_service(app, req.to_request())
                    .await
                    .status()
                    .as_u16()
            }
        };
        let path = |rest: &str| format!("{}{rest}", static_prefix());
        assert_eq!(
            status(test::TestRequest::get().uri(&path("/inst_1"))).await,
            500
        );
        assert_eq!(
            status(test::TestRequest::get().uri(&path("/inst_1?location_id=L1"))).await,
            500
        );
        for req in [
            test::TestRequest::post().uri(&path("/inst_1")),
            test::TestRequest::default()
                .method(Method::HEAD)
                .uri(&path("/inst_1")),
            test::TestRequest::get().uri(&path("/inst_1/refresh")),
            test::TestRequest::get().uri(&path("/a.b")),
            test::TestRequest::get().uri(&path("")),
            test::TestRequest::get().uri("/healthz"),
        ] {
            assert_eq!(status(req).await, 418);
        }
    }

    #[test]
    fn only_well_formed_ids_are_read_from_the_path() {
        let prefix = static_prefix();
        assert_eq!(format!("{prefix}{ID_SEGMENT}"), TOKEN_ACCESS);
        assert_eq!(ID_SEGMENT, "/{installation_id}");
        let path = |rest: &str| format!("{prefix}{rest}");
        assert_eq!(id_in_path(&path("/inst_1-A")), Some("inst_1-A"));
        for rest in [
            "",
            "/",
            "/a/refresh",
            "/a/",
            "/a.b",
            "/a%2Fb",
            "x/a",
            "//a",
            &format!("/{}", "a".repeat(65)),
        ] {
            assert_eq!(id_in_path(&path(rest)), None, "{rest}");
        }
    }
}
