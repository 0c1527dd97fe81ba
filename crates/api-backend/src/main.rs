use clap::Parser;

#[actix_web::main]
async fn main() {
    let cli = api_backend::cli::Cli::parse();
    match api_backend::cli::run(cli).await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("api-backend: {e:#}");
            std::process::exit(2);
        }
    }
}
