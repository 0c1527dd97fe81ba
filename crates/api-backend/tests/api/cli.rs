//! The binary: `--help`, a missing setting named in one line, and `doctor` against a running stack.

use crate::common::*;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_api-backend"));
    for (k, _) in std::env::vars() {
        if k.starts_with("HIGHLEVEL_")
            || k == "SERVICE_JWT_SECRET"
            || k == "DATABASE_URL"
            || k == "CONFIG_FILE"
        {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn help_explains_every_command() {
    let out = bin().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "serve",
        "migrate",
        "doctor",
        "openapi",
        "subscriptions",
        "SUBSCRIPTION_RETRY_DELAYS",
        "HIGHLEVEL_SSO_KEY",
        "OAUTH_BACKEND_URL",
    ] {
        assert!(text.contains(word), "--help lacks {word}:\n{text}");
    }
    let out = bin().args(["doctor", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--installation"));
    let out = bin()
        .args(["subscriptions", "run-due", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--now"));
}

#[test]
fn a_missing_setting_is_named() {
    let out = bin()
        .env("SERVICE_JWT_SECRET", "x".repeat(40))
        .env("PORT", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("missing required setting HIGHLEVEL_SSO_KEY"),
        "{err}"
    );
}

#[actix_web::test]
async fn doctor_names_the_cause_and_exits_non_zero() {
    let s = stack(service_common::testing::Backend::Sqlite).await;
    let inst = install(&s, "Company", &["Loc1"]).await;
    let oauth_url = s.oauth.base_url.clone();
    let run = move |args: Vec<String>| {
        let url = oauth_url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                bin()
                    .env("SERVICE_JWT_SECRET", SERVICE_SECRET)
                    .env("OAUTH_BACKEND_URL", url)
                    .args(args)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let out = run(vec!["doctor".into(), "--installation".into(), inst.clone()]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("company_token_on_location_endpoint")
            && text.contains("/oauth/locationToken"),
        "{text}"
    );
    let out = run(vec![
        "doctor".into(),
        "--installation".into(),
        inst.clone(),
        "--location".into(),
        "Loc1".into(),
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = run(vec![
        "doctor".into(),
        "--installation".into(),
        inst.clone(),
        "--location".into(),
        "loc1".into(),
    ])
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("location_case_mismatch") && text.contains("`Loc1`"),
        "{text}"
    );
    let out = run(vec![
        "doctor".into(),
        "--installation".into(),
        inst,
        "--location".into(),
        "Loc1".into(),
        "--endpoint".into(),
        "whitelabel.create".into(),
        "--json".into(),
    ])
    .await;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(report["problems"][0]["cause"], "wrong_provider_endpoint");
}

#[actix_web::test]
async fn openapi_covers_every_route() {
    let s = stack(service_common::testing::Backend::Sqlite).await;
    let res = client()
        .get(format!("{}/openapi.json", s.api.base_url))
        .send()
        .await
        .unwrap();
    let doc: serde_json::Value = res.json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/sessions", &["post"][..]),
        ("/api/locations/{locationId}/products", &["get", "post"]),
        (
            "/api/locations/{locationId}/products/{productId}",
            &["get", "put", "delete"],
        ),
        (
            "/api/locations/{locationId}/products/{productId}/prices",
            &["get", "post"],
        ),
        (
            "/api/locations/{locationId}/products/{productId}/prices/{priceId}",
            &["get", "put", "delete"],
        ),
        ("/api/locations/{locationId}/media", &["get", "post"]),
        ("/api/locations/{locationId}/media/{mediaId}", &["delete"]),
        (
            "/api/locations/{locationId}/payments/provider",
            &["get", "put", "delete"],
        ),
        ("/api/locations/{locationId}/diagnostics", &["get"]),
        (
            "/api/locations/{locationId}/highlevel/{path}",
            &["get", "post", "put", "patch", "delete"],
        ),
        (
            "/api/companies/{companyId}/highlevel/{path}",
            &["get", "post", "put", "patch", "delete"],
        ),
    ] {
        for m in methods {
            let op = &paths[path][*m];
            assert!(op.is_object(), "{m} {path} missing");
            assert!(
                op["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .any(|k| k.starts_with('4')),
                "{m} {path} lacks its problem answers"
            );
        }
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["components"]["schemas"]["ProductInput"].is_object());
    // Every route the service registers (each path literal in its sources) is in the document.
    for route in registered_routes() {
        assert!(
            paths.contains_key(&route),
            "{route} is served but not in /openapi.json"
        );
    }
}

/// Path literals (`"/api/…"`, `"/payments…"`, ops) in api-backend's sources: the routes it registers.
fn registered_routes() -> Vec<String> {
    let mut out = Vec::new();
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
            // Each `"/…"` up to its closing quote (parity-free: raw strings hold quotes too).
            for piece in text
                .split("\"/")
                .skip(1)
                .filter_map(|rest| rest.split('"').next())
            {
                // A segment with a pattern (`{path:.*}`) is documented under its name (`{path}`).
                let piece = &format!("/{piece}").replace(":.*}", "}");
                let routed = [
                    "/api/",
                    "/payments/",
                    "/healthz",
                    "/readyz",
                    "/metrics",
                    "/openapi.json",
                ]
                .iter()
                .any(|p| piece.starts_with(p));
                if routed && !piece.contains(' ') && !piece.contains('?') && !out.contains(piece) {
                    out.push(piece.clone());
                }
            }
        }
    }
    assert!(out.len() > 15, "{out:?}");
    out
}

#[actix_web::test]
async fn cors_allows_only_the_configured_origins() {
    let s = stack(service_common::testing::Backend::Sqlite).await;
    let preflight = |origin: &'static str| {
        client()
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/locations/Loc1/products", s.api.base_url),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type,idempotency-key",
            )
            .send()
    };
    let ok = preflight("https://app.gohighlevel.com").await.unwrap();
    assert!(ok.status().is_success());
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.gohighlevel.com"
    );
    assert_eq!(ok.headers()["access-control-allow-credentials"], "true");
    let foreign = preflight("https://evil.example").await.unwrap();
    assert!(foreign
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

/// SIGTERM (what container hosts send) ends the service within 5 s.
#[test]
fn sigterm_stops_the_service_within_five_seconds() {
    let port = service_common::testing::free_port();
    let dir = service_common::testing::TempDir::new("api-sigterm");
    let mut cmd = bin();
    cmd.env(
        "SERVICE_JWT_SECRET",
        "sigterm-test-secret-0123456789abcdef0123",
    )
    .env("HIGHLEVEL_SSO_KEY", "sigterm-sso")
    .env("OAUTH_BACKEND_URL", "http://127.0.0.1:9")
    .env("PORT", port.to_string())
    .env(
        "DATABASE_URL",
        format!("sqlite://{}/api.db", dir.0.display()),
    );
    service_common::testing::assert_stops_on_sigterm(cmd, port);
}
