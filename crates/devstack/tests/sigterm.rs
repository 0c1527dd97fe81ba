//! `devstack` end to end: the walkthrough it prints runs as printed, the example app and checkout links it prints
//! open, and it stops within 5 s of SIGTERM (what container hosts and process managers send).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `&` and `"` as the simulator writes them in an attribute.
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;")
}

#[test]
fn the_printed_walkthrough_runs_and_sigterm_stops_the_stack() {
    let dir = std::env::temp_dir().join(format!("devstack-test-{:016x}", rand::random::<u64>()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_devstack"))
        .args(["--data-dir", dir.to_str().unwrap()])
        .args([
            "--sim-port",
            &service_common::testing::free_port().to_string(),
        ])
        .args([
            "--oauth-port",
            &service_common::testing::free_port().to_string(),
        ])
        .args([
            "--api-port",
            &service_common::testing::free_port().to_string(),
        ])
        .args([
            "--frontend-port",
            &service_common::testing::free_port().to_string(),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = Instant::now();
    let mut script = None::<String>;
    loop {
        let line = lines
            .next()
            .expect("devstack printed its walkthrough")
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "devstack did not come up"
        );
        match (&mut script, line.as_str()) {
            (None, "----- walkthrough -----") => script = Some(String::new()),
            (Some(_), "----- end of walkthrough -----") => break,
            (Some(s), l) => {
                s.push_str(l);
                s.push('\n');
            }
            (None, _) => {}
        }
    }
    // The walkthrough, exactly as printed, runs in a shell.
    let script = script.unwrap();
    let path = dir.join("printed-walkthrough.sh");
    std::fs::write(&path, &script).unwrap();
    let out = Command::new("sh").arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the walkthrough failed:\n{script}\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "installation: inst_",
        "\"auth_class\":\"Location\"",
        "\"productType\":\"DIGITAL\"",
        "\"publishableKeys\"",
        "\"ok\":true",
    ] {
        assert!(
            stdout.contains(expected),
            "the walkthrough's output lacks {expected}:\n{stdout}"
        );
    }
    // The example app's link (the simulator's app shell framing the example frontend) and the checkout link.
    let mut printed = std::collections::HashMap::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        for key in ["Example app: ", "Checkout: "] {
            if let Some(url) = line.strip_prefix(key) {
                printed.insert(key, url.to_owned());
            }
        }
        if printed.len() == 2 {
            break;
        }
    }
    let get = |url: &str| {
        let url = url.to_owned();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async {
                let res = reqwest::get(&url).await.unwrap();
                (res.status().as_u16(), res.text().await.unwrap())
            })
        })
        .join()
        .unwrap()
    };
    let shell = &printed["Example app: "];
    let (status, html) = get(shell);
    assert_eq!(status, 200, "{shell}: {html}");
    let src = reqwest::Url::parse(shell)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "src")
        .unwrap()
        .1
        .into_owned();
    assert!(
        html.contains(&html_escape(&src)),
        "the shell frames the example"
    );
    let (status, page) = get(&src);
    assert_eq!(status, 200);
    assert!(page.contains(r#"<script type="module" src="app.js"></script>"#));
    let page_origin = reqwest::Url::parse(&src)
        .unwrap()
        .origin()
        .ascii_serialization();
    let api = reqwest::Url::parse(&src)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "api")
        .unwrap()
        .1
        .into_owned();
    // api-backend lets the example's origin call it (CORS preflight).
    let allowed = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            reqwest::Client::new()
                .request(reqwest::Method::OPTIONS, format!("{api}/api/sessions"))
                .header("origin", &page_origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type")
                .send()
                .await
                .unwrap()
                .headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap().to_owned())
                == Some(page_origin)
        })
    })
    .join()
    .unwrap();
    assert!(allowed, "the example's origin is in CORS_ALLOWED_ORIGINS");
    // The walkthrough registered the provider, so the checkout page opens.
    let (status, checkout) = get(&printed["Checkout: "]);
    assert_eq!(status, 200, "{checkout}");
    assert!(checkout.contains(r#"<iframe id="payment""#));

    let asked = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if asked.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("devstack still running 5 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
