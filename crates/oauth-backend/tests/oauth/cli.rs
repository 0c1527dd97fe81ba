//! The binary: `--help`, a missing setting named in one line, `service-token`.

use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_oauth-backend"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

#[test]
fn help_explains_the_subcommands() {
    let out = bin().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "serve",
        "migrate",
        "service-token",
        "rotate-keys",
        "installations",
        "TOKEN_ENCRYPTION_KEYS",
        "CACHE_SYNC_INTERVAL_MS",
        "CACHE_MAX_STALE_SECS",
        "PURGE_INTERVAL_SECS",
        "AUDIT_RETENTION_DAYS",
        "WEBHOOK_RETENTION_DAYS",
        "webhooks",
        "WEBHOOK_FORWARD_URLS",
        "WEBHOOK_FORWARD_SECRET",
        "WEBHOOK_FORWARD_RETRY",
    ] {
        assert!(text.contains(word), "--help lacks {word}");
    }
}

#[test]
fn a_missing_required_setting_stops_start_up_in_one_line() {
    let out = bin()
        .env("SERVICE_JWT_SECRET", "x".repeat(40))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("missing required setting HIGHLEVEL_CLIENT_ID"),
        "{err}"
    );
}

#[test]
fn service_token_prints_a_verifiable_token() {
    let secret = "cli-test-secret-cli-test-secret-0123";
    let out = bin()
        .env("SERVICE_JWT_SECRET", secret)
        .args([
            "service-token",
            "--caller",
            "nightly-job",
            "--ttl",
            "15m",
            "--installation",
            "inst_a",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let auth = oauth_backend::service_auth::ServiceAuth::new(&secrecy::SecretString::from(
        secret.to_owned(),
    ));
    let claims = auth
        .verify(Some(&format!("Bearer {}", token.trim())))
        .unwrap();
    assert_eq!(claims.iss, "nightly-job");
    assert_eq!(claims.installations, Some(vec!["inst_a".to_owned()]));
    assert!(claims.exp - chrono::Utc::now().timestamp() <= 900);
    let bad = bin()
        .env("SERVICE_JWT_SECRET", secret)
        .args(["service-token", "--caller", "x", "--ttl", "2h"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// SIGTERM (what container hosts send) ends the service within 5 s, the audit buffer flushed.
#[test]
fn sigterm_stops_the_service_within_five_seconds() {
    let port = service_common::testing::free_port();
    let dir = service_common::testing::TempDir::new("oauth-sigterm");
    let mut cmd = bin();
    cmd.env(
        "SERVICE_JWT_SECRET",
        "sigterm-test-secret-0123456789abcdef0123",
    )
    .env("HIGHLEVEL_CLIENT_ID", "id")
    .env("HIGHLEVEL_CLIENT_SECRET", "secret")
    .env("HIGHLEVEL_APP_ID", "app")
    .env(
        "HIGHLEVEL_REDIRECT_URI",
        "http://127.0.0.1:9/oauth/callback",
    )
    .env(
        "TOKEN_ENCRYPTION_KEYS",
        oauth_backend::crypto::keyring::KeyRing::generate_entry("k1"),
    )
    .env("REFRESHER_INTERVAL_SECS", "0")
    .env("PORT", port.to_string())
    .env(
        "DATABASE_URL",
        format!("sqlite://{}/oauth.db", dir.0.display()),
    );
    service_common::testing::assert_stops_on_sigterm(cmd, port);
}

/// A machine without CA certificates (a bare container) cannot build HighLevel's HTTP client. That stops
/// start-up with one line naming the cause, never a panic and never a fallback client without timeouts.
#[test]
fn an_http_client_that_cannot_be_built_stops_start_up_in_one_line() {
    let dir = service_common::testing::TempDir::new("oauth-no-ca");
    let empty = dir.0.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let out = bin()
        .env("SSL_CERT_FILE", &empty)
        .env("SERVICE_JWT_SECRET", "x".repeat(40))
        .env("HIGHLEVEL_CLIENT_ID", "id")
        .env("HIGHLEVEL_CLIENT_SECRET", "secret")
        .env("HIGHLEVEL_APP_ID", "app")
        .env("HIGHLEVEL_REDIRECT_URI", "http://127.0.0.1:9/cb")
        .env(
            "TOKEN_ENCRYPTION_KEYS",
            oauth_backend::crypto::keyring::KeyRing::generate_entry("k1"),
        )
        .env("PORT", "0")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "off")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/oauth.db", dir.0.display()),
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot build the HTTP client for HighLevel")
            && err.contains("No CA certificates"),
        "{err}"
    );
}

/// `GET /openapi.json` describes every route oauth-backend serves (each path literal in its sources), each
/// with its problem answers where it can fail.
#[actix_web::test]
async fn openapi_covers_every_route() {
    let env = crate::common::env(service_common::testing::Backend::Sqlite).await;
    let doc: serde_json::Value = crate::common::client()
        .get(format!("{}/openapi.json", env.app.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut routes = Vec::new();
    // The ops routes are service-common's.
    let mut dirs = vec![
        std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
        std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../service-common/src"
        )),
    ];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            for rest in text.split("\"/").skip(1) {
                let piece = format!("/{}", rest.split('"').next().unwrap_or_default());
                let routed = [
                    "/api/",
                    "/oauth/",
                    "/webhooks/",
                    "/healthz",
                    "/readyz",
                    "/metrics",
                    "/openapi.json",
                ]
                .iter()
                .any(|p| piece.starts_with(p));
                if routed
                    && !piece.contains(' ')
                    && !piece.contains('?')
                    && !routes.contains(&piece)
                {
                    routes.push(piece);
                }
            }
        }
    }
    assert!(routes.len() >= 10, "{routes:?}");
    for r in &routes {
        assert!(
            paths.contains_key(r),
            "{r} is served but not in /openapi.json"
        );
    }
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            if path.starts_with("/api/") {
                assert!(
                    op["responses"]
                        .as_object()
                        .unwrap()
                        .keys()
                        .any(|k| k.starts_with('4')),
                    "{method} {path} lacks its problem answers"
                );
            }
        }
    }
}
