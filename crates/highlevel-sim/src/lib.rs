//! highlevel-sim: the only HighLevel any test or local run talks to.
//!
//! Use it as a binary (`highlevel-sim --help`) or as a library: [`spawn`] starts one on a random port and
//! hands back its base URL and a handle to read its stats.

pub mod access;
pub mod config;
pub mod errors;
pub mod faults;
mod gateway;
pub mod rate_limit;
mod routes;
pub mod sso;
mod state;
pub mod stats;
mod tokens;
mod validate;
pub mod webhooks;

pub use config::SimConfig;
pub use stats::StatsSnapshot;

use actix_web::{middleware::from_fn, web, App, HttpServer};
use state::Sim;
use std::net::TcpListener;

/// JSON bodies larger than this are refused (uploads go through multipart, capped at 25 MB separately).
const JSON_LIMIT: usize = 2 * 1024 * 1024;

pub fn configure_app(sim: web::Data<Sim>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(sim)
            .app_data(web::PayloadConfig::new(JSON_LIMIT))
            .configure(routes::configure);
    }
}

/// A running simulator.
pub struct RunningSim {
    pub base_url: String,
    pub port: u16,
    sim: web::Data<Sim>,
    handle: actix_web::dev::ServerHandle,
}

impl RunningSim {
    pub fn stats(&self) -> StatsSnapshot {
        self.sim.stats.snapshot()
    }

    pub fn config(&self) -> &SimConfig {
        &self.sim.config
    }

    /// Adds a tenant, as `POST /_sim/locations` does.
    pub fn add_location(&self, company_id: &str, location_id: &str, name: &str) {
        self.sim.world().locations.insert(
            location_id.to_owned(),
            state::Location {
                id: location_id.to_owned(),
                company_id: company_id.to_owned(),
                name: name.to_owned(),
            },
        );
    }

    /// The payment events providers reported, in arrival order (without their api keys).
    pub fn payment_events(&self) -> Vec<serde_json::Value> {
        self.sim.world().payment_events.clone()
    }

    /// Every access and refresh token the simulator has issued (for tests that look for leaked tokens).
    pub fn issued_tokens(&self) -> Vec<String> {
        let world = self.sim.world();
        world
            .access_tokens
            .keys()
            .chain(world.refresh_tokens.keys())
            .cloned()
            .collect()
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

/// Binds and starts a simulator. Port 0 picks a free port.
pub fn start(config: SimConfig) -> std::io::Result<(RunningSim, actix_web::dev::Server)> {
    let listener = TcpListener::bind((config.host.as_str(), config.port))?;
    let port = listener.local_addr()?.port();
    let workers = if config.workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        config.workers
    };
    let host = if config.host == "0.0.0.0" {
        "127.0.0.1".to_owned()
    } else {
        config.host.clone()
    };
    let sim = web::Data::new(Sim::new(config));
    let data = sim.clone();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(gateway::gateway))
            .configure(configure_app(data.clone()))
    })
    .workers(workers)
    .listen(listener)?
    .run();
    let running = RunningSim {
        base_url: format!("http://{host}:{port}"),
        port,
        sim,
        handle: server.handle(),
    };
    Ok((running, server))
}

/// Starts a simulator in the background of the current tokio runtime (for tests).
pub async fn spawn(config: SimConfig) -> std::io::Result<RunningSim> {
    let (running, server) = start(config)?;
    tokio::spawn(server);
    Ok(running)
}
