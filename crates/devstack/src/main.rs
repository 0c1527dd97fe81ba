//! `devstack`: the simulator and the services in one process, on SQLite, with development secrets generated
//! on first run and kept in `<data-dir>/devstack.env` (so stored tokens stay readable across restarts).
//! Prints the URLs and a short walkthrough, and stays up until Ctrl-C.

use actix_web::{web, App, HttpResponse, HttpServer};
use clap::Parser;
use highlevel_sim::SimConfig;
use oauth_backend::crypto::keyring::KeyRing;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Run highlevel-sim, oauth-backend and api-backend together for local development.
#[derive(Debug, Parser)]
#[command(name = "devstack", version)]
struct Args {
    /// Where the SQLite databases and the generated secrets live.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// The simulator's port.
    #[arg(long, default_value_t = 8090)]
    sim_port: u16,
    /// oauth-backend's port.
    #[arg(long, default_value_t = 8081)]
    oauth_port: u16,
    /// api-backend's port.
    #[arg(long, default_value_t = 8082)]
    api_port: u16,
    /// The port the example frontend (examples/frontend) is served on; its origin is added to api-backend's
    /// CORS_ALLOWED_ORIGINS.
    #[arg(long, default_value_t = 8083)]
    frontend_port: u16,
    /// Where the example frontend's files are (default: examples/frontend of the source tree devstack was
    /// built from).
    #[arg(long)]
    frontend_dir: Option<PathBuf>,
}

/// examples/frontend of the source tree this binary was built from.
fn default_frontend_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/frontend")
}

/// Serves the files of `dir` (no subfolders), `/` being `index.html`, with no caching, so edits to the example
/// show on reload. Only plain file names are served.
async fn example_file(dir: web::Data<PathBuf>, name: web::Path<String>) -> HttpResponse {
    let name = match name.as_str() {
        "" => "index.html",
        n => n,
    };
    let plain = !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    let kind = match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    };
    match std::fs::read(dir.join(name)) {
        Ok(body) if plain => HttpResponse::Ok()
            .content_type(kind)
            .insert_header(("Cache-Control", "no-cache"))
            .body(body),
        _ => HttpResponse::NotFound()
            .content_type("text/plain")
            .body("not found"),
    }
}

fn serve_example(dir: PathBuf, port: u16) -> std::io::Result<actix_web::dev::Server> {
    let dir = web::Data::new(dir);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(dir.clone())
            .route("/{name:.*}", web::get().to(example_file))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", port))?
    .run())
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved characters).
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The lines around the printed walkthrough (a test runs exactly what is between them).
const WALKTHROUGH_START: &str = "----- walkthrough -----";
const WALKTHROUGH_END: &str = "----- end of walkthrough -----";

/// The walkthrough, as a POSIX shell script whose every command works as printed: install as an agency, fetch
/// a Location token, open a session, create a product with an image and a price, register the payment
/// provider, run the doctor.
fn walkthrough(sim: &str, oauth: &str, api: &str, token: &str) -> String {
    format!(
        r#"set -eu
SIM={sim}
OAUTH={oauth}
API={api}
export TOKEN={token}
# 1. Install the app as an agency on both locations (the simulator consents at once):
curl -sfL -o /dev/null "$OAUTH/oauth/install?user_type=Company&sim_user_type=Company&sim_location_id=dev-location-1&sim_location_id=dev-location-2"
INSTALLATION=$(curl -sf -H "Authorization: Bearer $TOKEN" "$OAUTH/api/installations?company_id=dev-company" | grep -o 'inst_[0-9a-f]*' | head -n1)
echo "installation: $INSTALLATION"
# 2. A Location token for dev-location-1, minted from the agency's Company token:
curl -sf -H "Authorization: Bearer $TOKEN" "$OAUTH/api/token-access/$INSTALLATION?location_id=dev-location-1" | grep -o '"auth_class":"Location"'
# 3. A session from the user context HighLevel hands the app's page (the simulator encrypts it):
SSO=$(curl -sf -XPOST "$SIM/_sim/sso" -H 'content-type: application/json' -d '{{"userId":"dev-user","companyId":"dev-company","type":"agency","role":"admin"}}')
SESSION=$(curl -sf -XPOST "$API/api/sessions" -H 'content-type: application/json' -d "{{\"sso\":\"$SSO\"}}" | grep -o '"token":"[^"]*"' | cut -d'"' -f4)
# 4. A product with an image and a price (all or nothing):
curl -sf -XPOST "$API/api/locations/dev-location-1/products" -H "Authorization: Bearer $SESSION" -H 'content-type: application/json' -d '{{"name":"Course","productType":"DIGITAL","images":["https://picsum.photos/200"],"prices":[{{"name":"Once","type":"one_time","currency":"USD","amount":49}}]}}'
echo
# 5. Register the payment provider (HighLevel's custom provider, with a Location token):
curl -sf -XPUT "$API/api/locations/dev-location-1/payments/provider" -H "Authorization: Bearer $SESSION" -H 'content-type: application/json' -d '{{"name":"Sandbox","description":"Test payments","imageUrl":"https://picsum.photos/64","gateway":"sandbox"}}'
echo
# 6. The doctor: what the token is, what it may call, what would fail and why:
curl -sf "$API/api/locations/dev-location-1/diagnostics" -H "Authorization: Bearer $SESSION"
echo
"#
    )
}

fn secret<'a>(secrets: &'a HashMap<String, String>, name: &str) -> anyhow::Result<&'a str> {
    secrets.get(name).map(String::as_str).ok_or_else(|| {
        anyhow::anyhow!(
            "{name} is missing from devstack.env: delete the file to have it made again"
        )
    })
}

/// Loads `devstack.env`, creating it with fresh secrets the first time.
fn dev_secrets(dir: &Path) -> anyhow::Result<HashMap<String, String>> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("devstack.env");
    if !path.exists() {
        let secret: [u8; 32] = rand::random();
        let body = format!(
            "# Development secrets generated by devstack. Not for production.\nTOKEN_ENCRYPTION_KEYS={}\nSERVICE_JWT_SECRET={}\n",
            KeyRing::generate_entry("dev1"),
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, secret)
        );
        std::fs::write(&path, body)?;
    }
    Ok(std::fs::read_to_string(&path)?
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect())
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    oauth_backend::cli::init_logging(oauth_backend::settings::LogFormat::Pretty);
    let secrets = dev_secrets(&args.data_dir)?;

    let sim = highlevel_sim::spawn(SimConfig {
        port: args.sim_port,
        workers: 1,
        ..Default::default()
    })
    .await?;
    sim.add_location("dev-company", "dev-location-1", "Dev Location One");
    sim.add_location("dev-company", "dev-location-2", "Dev Location Two");

    let frontend_dir = args
        .frontend_dir
        .clone()
        .unwrap_or_else(default_frontend_dir);
    let frontend_dir = frontend_dir.canonicalize().unwrap_or(frontend_dir);
    if !frontend_dir.join("index.html").is_file() {
        anyhow::bail!(
            "the example frontend is not in {} (no index.html): pass --frontend-dir",
            frontend_dir.display()
        );
    }
    let frontend = serve_example(frontend_dir.clone(), args.frontend_port).map_err(|e| {
        anyhow::anyhow!(
            "cannot serve the example frontend on port {}: {e} (pass --frontend-port)",
            args.frontend_port
        )
    })?;
    let frontend_handle = frontend.handle();
    actix_web::rt::spawn(frontend);
    let frontend_url = format!("http://127.0.0.1:{}", args.frontend_port);

    let oauth_url = format!("http://127.0.0.1:{}", args.oauth_port);
    // Trust the simulator's webhook keys, so the webhooks it signs are accepted.
    let keys = highlevel_sim::webhooks::SigningKeys::shared();
    let settings = oauth_backend::Settings::for_simulator(
        &sim.base_url,
        &format!("sqlite://{}/oauth-backend.db", args.data_dir.display()),
        secret(&secrets, "TOKEN_ENCRYPTION_KEYS")?,
        secret(&secrets, "SERVICE_JWT_SECRET")?,
        &[
            ("PORT", args.oauth_port.to_string()),
            (
                "HIGHLEVEL_REDIRECT_URI",
                format!("{oauth_url}/oauth/callback"),
            ),
            (
                "WEBHOOK_ED25519_PUBLIC_KEY",
                keys.ed25519_public_pem.clone(),
            ),
            ("WEBHOOK_RSA_PUBLIC_KEY", keys.rsa_public_pem.clone()),
        ],
    )?;
    let oauth = oauth_backend::spawn_app(settings).await?;
    let token = oauth.state.auth.issue("devstack", 3600, None)?;
    let api_url = format!("http://127.0.0.1:{}", args.api_port);
    let api = api_backend::spawn_app(api_backend::Settings::for_simulator(
        &sim.base_url,
        &oauth.base_url,
        &format!("sqlite://{}/api-backend.db", args.data_dir.display()),
        secret(&secrets, "SERVICE_JWT_SECRET")?,
        &[
            ("PORT", args.api_port.to_string()),
            ("PUBLIC_BASE_URL", api_url),
            // HighLevel's app hosts, and the example frontend's origin (its page calls api-backend from there).
            (
                "CORS_ALLOWED_ORIGINS",
                format!(
                    "{},{frontend_url},http://localhost:{}",
                    api_backend::settings::HIGHLEVEL_APP_ORIGINS,
                    args.frontend_port
                ),
            ),
            // The simulator plays HighLevel's app in development: it may frame the payment page too.
            (
                "PAYMENT_PARENT_ORIGINS",
                format!(
                    "{} {}",
                    api_backend::settings::HIGHLEVEL_APP_ORIGINS.replace(',', " "),
                    sim.base_url
                ),
            ),
        ],
    )?)
    .await?;

    let example = format!("{frontend_url}/index.html?api={}", urlencode(&api.base_url));
    let example_app = format!(
        "{}/_sim/app?locationId=dev-location-1&companyId=dev-company&userType=location&role=admin&src={}",
        sim.base_url,
        urlencode(&example)
    );
    let checkout = format!(
        "{}/_sim/payments/checkout?locationId=dev-location-1&amount=49.99&currency=USD&mode=payment",
        sim.base_url
    );
    let script = walkthrough(&sim.base_url, &oauth.base_url, &api.base_url, &token);
    let script_path = args.data_dir.join("walkthrough.sh");
    std::fs::write(&script_path, &script)?;
    println!(
        "\n  highlevel-sim  {sim}      (control surface: {sim}/_sim/stats, /_sim/routes)\n  oauth-backend  {oauth}\n  api-backend    {api}      (OpenAPI: {api}/openapi.json)\n\n\
         Walkthrough: copy the commands below into a shell, or run `sh {path}` (curl is needed).\n\
         {WALKTHROUGH_START}\n{script}{WALKTHROUGH_END}\n\n\
         In a browser: {oauth}/oauth/install?sim_user_type=Location&sim_location_id=dev-location-1 installs on one location.\n\
         Example app: {example_app}\n\
         \x20 the example frontend ({front_dir}, served at {frontend_url}/) inside HighLevel's app shell, as a location\n\
         \x20 admin of dev-location-1; it needs an install (step 1 of the walkthrough). Change the link's userType=agency\n\
         \x20 for an agency user (who types a location id in the page), role=user for a user without the admin role.\n\
         Checkout: {checkout}\n\
         \x20 HighLevel's checkout page paying through the app; it needs the payment provider registered for dev-location-1\n\
         \x20 (step 5 of the walkthrough does it, or the example app's \"Register the sandbox provider\" button).\n\
         Data and development secrets: {data}/ . Ctrl-C (or SIGTERM) stops it.\n",
        sim = sim.base_url,
        oauth = oauth.base_url,
        api = api.base_url,
        path = script_path.display(),
        front_dir = frontend_dir.display(),
        data = args.data_dir.display(),
    );
    service_common::http::shutdown_signal().await;
    println!("stopping…");
    api.stop().await;
    oauth.stop().await;
    // The token reads served so far reach the audit log.
    oauth.state.audit.flush().await;
    sim.stop().await;
    frontend_handle.stop(true).await;
    Ok(())
}
