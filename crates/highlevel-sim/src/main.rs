use clap::Parser;
use highlevel_sim::SimConfig;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let config = SimConfig::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let (running, server) = highlevel_sim::start(config)?;
    tracing::info!(base_url = %running.base_url, client_id = %running.config().client_id, "highlevel-sim listening; control surface under /_sim/");
    server.await
}
