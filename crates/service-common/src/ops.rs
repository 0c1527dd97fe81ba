//! The operations routes both services serve the same way: `/healthz` (the process is up), `/readyz` (the
//! database answers, and whatever else the service needs), `/metrics` (Prometheus text).

use crate::db::{Db, DbError};
use actix_web::{web, HttpResponse};
use futures::future::BoxFuture;
use shared_types::{Problem, ProblemCode};
use std::sync::Arc;

/// What the ops routes read: the database, the service's metrics text, and its other readiness checks.
#[derive(Clone)]
pub struct Ops {
    db: Db,
    metrics: Arc<dyn Fn() -> String + Send + Sync>,
    ready: Arc<dyn Fn() -> BoxFuture<'static, Result<(), Problem>> + Send + Sync>,
}

impl Ops {
    pub fn new(db: Db, metrics: impl Fn() -> String + Send + Sync + 'static) -> Ops {
        Ops {
            db,
            metrics: Arc::new(metrics),
            ready: Arc::new(|| Box::pin(async { Ok(()) })),
        }
    }

    /// A readiness check past the database (a dependency the service cannot work without).
    pub fn ready_also(
        mut self,
        check: impl Fn() -> BoxFuture<'static, Result<(), Problem>> + Send + Sync + 'static,
    ) -> Ops {
        self.ready = Arc::new(check);
        self
    }

    /// Registers the three routes.
    pub fn configure(self) -> impl FnOnce(&mut web::ServiceConfig) {
        move |cfg| {
            cfg.app_data(web::Data::new(self))
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
                .route("/metrics", web::get().to(metrics));
        }
    }
}

/// The answer to a database that cannot be reached: 503 `database_unavailable`, the cause in the log only.
pub fn database_unavailable() -> Problem {
    Problem::of(
        ProblemCode::DatabaseUnavailable,
        "the database is unreachable",
    )
    .with_fix(
        "Check DATABASE_URL and that the database server is up; the server log has the cause.",
    )
}

/// What a database failure means to a caller.
#[derive(Debug)]
pub enum DbFailure {
    /// Unreachable (logged here): answer [`database_unavailable`].
    Unavailable,
    /// Anything else: an internal error with this cause.
    Internal(String),
}

impl From<DbError> for DbFailure {
    fn from(e: DbError) -> DbFailure {
        if e.is_unavailable() {
            tracing::error!(error = %e, "database unavailable");
            DbFailure::Unavailable
        } else {
            DbFailure::Internal(e.to_string())
        }
    }
}

/// A problem body as an answer.
pub fn problem_response(p: &Problem) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(p.status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .content_type(Problem::CONTENT_TYPE)
        .json(p)
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Object)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// The database answers (and the service's other dependencies do).
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, body = Object), (status = 503, body = shared_types::Problem)))]
pub async fn readyz(ops: web::Data<Ops>) -> HttpResponse {
    if let Err(e) = ops.db.ping().await {
        tracing::error!(error = %e, "not ready: database unreachable");
        return problem_response(&database_unavailable());
    }
    if let Err(p) = (ops.ready)().await {
        return problem_response(&p);
    }
    HttpResponse::Ok().json(serde_json::json!({"status": "ready", "database": "ok"}))
}

/// Prometheus text.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(ops: web::Data<Ops>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body((ops.metrics)())
}
