use clap::Parser;

#[actix_web::main]
async fn main() {
    let cli = oauth_backend::cli::Cli::parse();
    if let Err(e) = oauth_backend::cli::run(cli).await {
        eprintln!("oauth-backend: {e:#}");
        std::process::exit(2);
    }
}
