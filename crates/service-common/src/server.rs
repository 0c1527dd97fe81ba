//! Start and stop, the same for both services: bind with a deep accept queue, serve HTTP/1.1 and h2c, stop on
//! SIGTERM or Ctrl-C after a service's own first step (`before_stop`), drain for at most 4 s, and stop the
//! background tasks with the server.

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, App, HttpServer};
use std::net::TcpListener;

/// A running service: its address, its state, and how to stop it.
pub struct RunningApp<S: 'static> {
    pub base_url: String,
    pub port: u16,
    pub state: web::Data<S>,
    handle: ServerHandle,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    before_stop: fn(&S),
}

impl<S: 'static> RunningApp<S> {
    /// Runs the service's first step of a stop, stops serving (finishing requests under way) and stops its
    /// background tasks, as a SIGTERM does.
    pub async fn stop(&self) {
        (self.before_stop)(&self.state);
        self.handle.stop(true).await;
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What a service hands to [`serve`] besides its routes.
pub struct Parts<S: 'static> {
    pub listener: TcpListener,
    /// The host the listener was bound on (for the base URL).
    pub host: String,
    pub state: web::Data<S>,
    /// Background tasks stopped with the server.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    /// What a stop does first, before the server drains (a plain `fn`, so a stop cannot capture the state
    /// twice).
    pub before_stop: fn(&S),
    /// The service's answer at once to its hottest request, if it has one ([`crate::http::AnswerAtOnce`]).
    pub at_once: Option<crate::http::AnswerAtOnce>,
}

/// [`crate::http::listen`] with an error that names the address.
pub fn bind(host: &str, port: u16) -> std::io::Result<TcpListener> {
    crate::http::listen(host, port)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {host}:{port}: {e}")))
}

/// Starts the server on the current runtime (it runs when the returned `Server` is awaited or spawned).
/// `app` builds one worker's `App`; every request passes through [`crate::http::RequestContext`] first.
pub fn serve<S, F, T, B>(parts: Parts<S>, app: F) -> std::io::Result<(RunningApp<S>, Server)>
where
    S: Send + Sync + 'static,
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    let Parts {
        listener,
        host,
        state,
        tasks,
        before_stop,
        at_once,
    } = parts;
    let port = listener.local_addr()?.port();
    // Before the server can answer anything: a SIGTERM from then on is ours to handle.
    let signalled = crate::http::shutdown_signal();
    let context = crate::http::RequestContext { at_once };
    let server = HttpServer::new(move || app().wrap(context))
        // HTTP/1.1, and HTTP/2 without TLS for callers that multiplex many waiting requests on one connection.
        .listen_auto_h2c(listener)?
        // A stop (SIGTERM, Ctrl-C) drains requests under way for at most 4 s, so the process ends within 5 s.
        .shutdown_timeout(4)
        // Signals are ours (below): a stop first runs the service's `before_stop`.
        .disable_signals()
        .run();
    let handle = server.handle();
    let stopping = (state.clone(), handle.clone());
    tokio::spawn(async move {
        signalled.await;
        tracing::info!("stopping: draining requests under way");
        before_stop(&stopping.0);
        stopping.1.stop(true).await;
    });
    let running = RunningApp {
        base_url: crate::http::base_url(&host, port),
        port,
        state,
        handle,
        tasks,
        before_stop,
    };
    Ok((running, server))
}
