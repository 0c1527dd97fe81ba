//! The deployment files, checked without a Docker engine (none runs on these machines): the compose file gives
//! each service every variable it requires (its own settings loader accepts them), ports and health paths
//! agree and answer, and the Railway and Docker files say what a deploy needs.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use yaml_rust2::{Yaml, YamlLoader};

fn repo(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn compose() -> Yaml {
    YamlLoader::load_from_str(&repo("docker-compose.yml"))
        .unwrap()
        .remove(0)
}

fn env_of(service: &Yaml) -> HashMap<String, String> {
    service["environment"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Yaml::String(s) => s.clone(),
                Yaml::Integer(i) => i.to_string(),
                other => panic!("{other:?}"),
            };
            (k.as_str().unwrap().to_owned(), v)
        })
        .collect()
}

/// The port the service listens on, the published port and the health check's URL agree.
fn port_and_health(name: &str, service: &Yaml) -> (u16, String) {
    let env = env_of(service);
    let port: u16 = env["PORT"].parse().unwrap();
    let published = service["ports"][0].as_str().unwrap();
    assert_eq!(
        published,
        format!("{port}:{port}"),
        "{name}: published port"
    );
    let test: Vec<&str> = service["healthcheck"]["test"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let url = test.last().unwrap();
    let prefix = format!("http://127.0.0.1:{port}/");
    assert!(
        url.starts_with(&prefix),
        "{name}: health check {url} is not on port {port}"
    );
    (port, url[prefix.len() - 1..].to_owned())
}

#[test]
fn compose_gives_each_service_what_it_requires() {
    let c = compose();
    let services = &c["services"];
    let oauth = env_of(&services["oauth-backend"]);
    oauth_backend::Settings::from_vars(oauth.clone())
        .expect("oauth-backend accepts the compose environment");
    let api = env_of(&services["api-backend"]);
    api_backend::Settings::from_vars(api.clone())
        .expect("api-backend accepts the compose environment");
    assert_eq!(
        oauth["SERVICE_JWT_SECRET"], api["SERVICE_JWT_SECRET"],
        "both services share the service JWT secret"
    );
    assert_eq!(
        api["OAUTH_BACKEND_URL"],
        format!("http://oauth-backend:{}", oauth["PORT"])
    );
    for (name, needs) in [
        ("oauth-backend", &["postgres", "highlevel-sim"][..]),
        ("api-backend", &["postgres", "oauth-backend"]),
    ] {
        for dep in needs {
            assert_eq!(
                services[name]["depends_on"][*dep]["condition"].as_str(),
                Some("service_healthy"),
                "{name} waits for {dep}"
            );
        }
        assert_eq!(
            services[name]["build"]["args"]["SERVICE"].as_str(),
            Some(name)
        );
    }
    assert!(
        repo("docker-compose.yml").contains("DEVELOPMENT VALUE"),
        "development values are marked"
    );
}

#[actix_web::test]
async fn compose_health_paths_answer() {
    let c = compose();
    let services = &c["services"];
    let (_, sim_path) = port_and_health("highlevel-sim", &services["highlevel-sim"]);
    let (_, oauth_path) = port_and_health("oauth-backend", &services["oauth-backend"]);
    let (_, api_path) = port_and_health("api-backend", &services["api-backend"]);
    // The same binaries' libraries, on free ports: each health path answers 200.
    let sim = highlevel_sim::spawn(highlevel_sim::SimConfig {
        port: 0,
        workers: 1,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("deploy-files-{}", std::process::id()));
    let secret = "deploy-files-test-secret-0123456789abcdef";
    let oauth = oauth_backend::spawn_app(
        oauth_backend::Settings::for_simulator(
            &sim.base_url,
            &format!("sqlite://{}/o.db", dir.display()),
            &oauth_backend::crypto::keyring::KeyRing::generate_entry("k"),
            secret,
            &[("REFRESHER_INTERVAL_SECS", "0".into())],
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let api = api_backend::spawn_app(
        api_backend::Settings::for_simulator(
            &sim.base_url,
            &oauth.base_url,
            &format!("sqlite://{}/a.db", dir.display()),
            secret,
            &[],
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    for (base, path) in [
        (&sim.base_url, sim_path),
        (&oauth.base_url, oauth_path),
        (&api.base_url, api_path),
    ] {
        let res = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{base}{path}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn railway_files_build_start_and_check_health() {
    for service in ["oauth-backend", "api-backend"] {
        let r: serde_json::Value =
            serde_json::from_str(&repo(&format!("deploy/railway/{service}.json"))).unwrap();
        assert_eq!(r["build"]["builder"], "DOCKERFILE");
        let dockerfile = r["build"]["dockerfilePath"].as_str().unwrap();
        assert!(!repo(dockerfile).is_empty());
        assert_eq!(
            r["deploy"]["startCommand"],
            format!("/usr/local/bin/{service} serve")
        );
        assert_eq!(r["deploy"]["healthcheckPath"], "/readyz");
        assert_eq!(r["deploy"]["restartPolicyType"], "ON_FAILURE");
        let example = repo(&format!("deploy/{service}.env.example"));
        assert!(
            example.contains(&format!("SERVICE={service}")),
            "the example selects the image"
        );
        // The example's uncommented variables are everything the service requires.
        let env: HashMap<String, String> = example
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.trim().to_owned(), v.trim().trim_matches('"').to_owned())
            })
            .collect();
        let ok = match service {
            "oauth-backend" => oauth_backend::Settings::from_vars(env.clone())
                .map(|_| ())
                .map_err(|e| e.to_string()),
            _ => api_backend::Settings::from_vars(env.clone())
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        // Placeholders are not valid keys, but nothing may be missing.
        if let Err(e) = ok {
            assert!(!e.contains("missing"), "{service}.env.example: {e}");
        }
    }
}

#[test]
fn the_dockerfile_is_a_locked_multi_stage_non_root_build_with_a_health_check() {
    let d = repo("deploy/Dockerfile");
    for needed in [
        "AS build",
        "cargo build --release --locked",
        "ca-certificates",
        "USER app",
        "HEALTHCHECK",
        "ARG SERVICE",
        "bookworm-slim",
    ] {
        assert!(d.contains(needed), "deploy/Dockerfile lacks `{needed}`");
    }
}
