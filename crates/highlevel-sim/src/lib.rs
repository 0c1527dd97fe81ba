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
pub mod spec;
pub mod sso;
mod state;
pub mod stats;
mod tokens;
mod validate;
pub mod webhook_events;
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

    /// Installs the app on `count` new locations of `company_id` (ids `<prefix>-<n>`) with `scopes`, as if each
    /// had consented and its code had been exchanged, and answers each install's `/oauth/token` body. For
    /// scale benchmarks that need many installs without running the OAuth dance for each.
    pub fn seed_location_installs(
        &self,
        company_id: &str,
        prefix: &str,
        count: usize,
        scopes: &[&str],
    ) -> Vec<serde_json::Value> {
        let scopes: std::sync::Arc<std::collections::BTreeSet<String>> =
            std::sync::Arc::new(scopes.iter().map(|s| s.to_string()).collect());
        let mut world = self.sim.world();
        (0..count)
            .filter_map(|n| {
                let id = format!("{prefix}-{n}");
                world.locations.insert(
                    id.clone(),
                    state::Location {
                        id: id.clone(),
                        company_id: company_id.to_owned(),
                        name: id.clone(),
                    },
                );
                let key = state::InstallKey::Location(id.clone());
                world.installs.insert(
                    key.clone(),
                    state::Install {
                        class: state::TokenClass::Location,
                        company_id: company_id.to_owned(),
                        location_id: Some(id),
                        scopes: scopes.clone(),
                        is_bulk: false,
                        approved_locations: Vec::new(),
                        user_id: "sim-seeded-user".into(),
                        current_access: None,
                        current_refresh: None,
                        installed: true,
                    },
                );
                tokens::new_pair(&self.sim, &mut world, &key)
            })
            .collect()
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
    let sim = web::Data::new(Sim::new(config).map_err(|e| {
        std::io::Error::other(format!("cannot build the simulator's HTTP client: {e}"))
    })?);
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
