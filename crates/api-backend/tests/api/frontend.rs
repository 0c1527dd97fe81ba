//! The example frontend (examples/frontend) in a real browser, inside the simulator's app shell (`/_sim/app`):
//! the page asks for the user context, opens a session, and calls api-backend across origins (CORS), as an
//! app's page in HighLevel does. The page is served from examples/frontend by a small static server of the
//! test's own, on an origin listed in api-backend's `CORS_ALLOWED_ORIGINS`. `SKIP_BROWSER_TESTS=1` skips the
//! browser tests.

use crate::browser::{browser, free_port};
use crate::common::*;
use actix_web::{web, App, HttpResponse, HttpServer};
use fantoccini::{Client, Locator};
use highlevel_sim::SimConfig;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/frontend")
}

/// Serves the files of examples/frontend (no subfolders) on `port`, as any static host would.
async fn serve_example(port: u16) -> actix_web::dev::ServerHandle {
    async fn file(path: web::Path<String>) -> HttpResponse {
        let name = match path.as_str() {
            "" => "index.html",
            n => n,
        };
        let kind = match name.rsplit_once('.').map(|(_, e)| e) {
            Some("html") => "text/html; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            _ => "text/plain; charset=utf-8",
        };
        let safe = !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        match std::fs::read(example_dir().join(name)) {
            Ok(body) if safe => HttpResponse::Ok().content_type(kind).body(body),
            _ => HttpResponse::NotFound().finish(),
        }
    }
    let server = HttpServer::new(|| App::new().route("/{file:.*}", web::get().to(file)))
        .workers(1)
        .bind(("127.0.0.1", port))
        .unwrap()
        .run();
    let handle = server.handle();
    tokio::spawn(server);
    handle
}

/// A stack whose simulator encrypts user context with the app's Shared Secret, and whose api-backend lets the
/// example's origin call it; the example served on that origin.
struct Front {
    s: Stack,
    origin: String,
    server: actix_web::dev::ServerHandle,
}

async fn front() -> Front {
    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let s = stack_with(
        service_common::testing::Backend::Sqlite,
        SimConfig {
            sso_key: SSO_KEY.into(),
            ..SimConfig::default()
        },
        &[(
            "CORS_ALLOWED_ORIGINS",
            &format!("https://app.gohighlevel.com,{origin}"),
        )],
    )
    .await;
    let server = serve_example(port).await;
    Front { s, origin, server }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Opens the simulator's app shell for this user (`shell`: the shell's query) around the example page
/// (`page`: extra query of the page), and enters the page's frame.
async fn open_app(c: &Client, f: &Front, shell: &str, page: &str) {
    let src = format!(
        "{}/index.html?api={}{page}",
        f.origin,
        urlencode(&f.s.api.base_url)
    );
    c.goto(&format!(
        "{}/_sim/app?{shell}&src={}",
        f.s.sim.base_url,
        urlencode(&src)
    ))
    .await
    .unwrap();
    c.enter_frame(0).await.unwrap();
}

/// Waits until the page's current action ends; its state (`ok` or `refused`) and status line.
async fn settled(c: &Client) -> (String, String) {
    let s = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(
            r#"#status[data-state="ok"], #status[data-state="refused"]"#,
        ))
        .await
        .expect("the page finishes what it does");
    (
        s.attr("data-state").await.unwrap().unwrap_or_default(),
        s.text().await.unwrap(),
    )
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn fill(c: &Client, css: &str, value: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// With `SCREENSHOT_DIR` set, saves what the browser shows (the app shell and the page) as `<name>.png` there.
async fn snap(c: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("SCREENSHOT_DIR") {
        let png = c.screenshot().await.unwrap();
        std::fs::write(PathBuf::from(dir).join(format!("{name}.png")), png).unwrap();
    }
}

/// The problem body the page shows (its "whole problem body" block).
async fn shown_problem(c: &Client) -> Value {
    let raw = c
        .execute(
            "return document.getElementById('problem-json').textContent;",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_str(raw.as_str().unwrap_or_default()).unwrap_or(Value::Null)
}

/// Inside the app shell, a location admin's page opens a session, creates a product with one image and one
/// price, lists it, shows the doctor's report and registers the payment provider; HighLevel (the simulator)
/// holds the product and its price.
#[actix_web::test]
async fn the_example_page_in_the_app_shell() {
    let f = front().await;
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let inst = install(&f.s, "Location", &["Loc1"]).await;
    open_app(&c, &f, "locationId=Loc1&userType=location&role=admin", "").await;
    let (state, line) = settled(&c).await;
    assert_eq!(state, "ok", "{line}: {}", shown_problem(&c).await);
    assert!(line.contains("in Loc1"), "{line}");
    let who = text(&c, "#who").await;
    assert!(
        who.contains("(admin)") && who.contains("location Loc1"),
        "{who}"
    );

    fill(&c, "#product-name", "Browser course").await;
    fill(&c, "#product-image", "https://cdn.example.test/course.png").await;
    fill(&c, "#price-amount", "19.9").await;
    fill(&c, "#price-currency", "usd").await;
    click(&c, "#create").await;
    let (state, line) = settled(&c).await;
    assert_eq!(state, "ok", "{line}: {}", shown_problem(&c).await);
    assert!(line.starts_with("Created Browser course"), "{line}");
    let items = c.find_all(Locator::Css("#products li")).await.unwrap();
    assert_eq!(items.len(), 1);
    let item = items[0].text().await.unwrap();
    assert!(
        item.contains("Browser course") && item.contains("19.90 USD"),
        "{item}"
    );
    snap(&c, "location-admin-created").await;

    let held = sim_products(&f.s, &inst, "Loc1").await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["name"], "Browser course");
    assert_eq!(
        held[0]["medias"][0]["url"], "https://cdn.example.test/course.png",
        "{}",
        held[0]
    );
    assert_eq!(sim_count(&f.s, "POST /products/{productId}/price"), 1);
    let listed = items[0].attr("data-id").await.unwrap();
    assert_eq!(listed.as_deref(), held[0]["_id"].as_str());

    click(&c, "#doctor").await;
    let (state, line) = settled(&c).await;
    assert_eq!(state, "ok", "{line}: {}", shown_problem(&c).await);
    let report = text(&c, "#diagnostics").await;
    assert!(report.contains(&format!("installation {inst}")), "{report}");
    assert!(report.contains("location token: Location Loc1"), "{report}");
    snap(&c, "doctor").await;

    click(&c, "#provider").await;
    let (state, line) = settled(&c).await;
    assert_eq!(state, "ok", "{line}: {}", shown_problem(&c).await);
    assert!(text(&c, "#provider-out").await.contains("pk_test_"));
    let (status, _) = get(
        &f.s,
        "/api/locations/Loc1/payments/provider",
        &service_token(),
    )
    .await;
    assert_eq!(
        status, 200,
        "an admin registered the provider from the page"
    );

    // The shell answered the page's request for the user context.
    c.enter_parent_frame().await.unwrap();
    let answered: u32 = text(&c, "#answered").await.parse().unwrap();
    assert!(answered >= 1);
    c.close().await.unwrap();
    f.server.stop(false).await;
}

/// The walls, as a page shows them: an agency user may name any location of its company; a location user's
/// page naming another location shows the 403 with its detail; a non-admin cannot change the payment provider.
#[actix_web::test]
async fn the_example_page_shows_the_walls() {
    let f = front().await;
    let Some((_driver, c)) = browser().await else {
        return;
    };
    install(&f.s, "Company", &["Loc1", "Loc2"]).await;
    // Another company's location, installed too.
    install(&f.s, "Location", &["Other1"]).await;

    // An agency admin: Loc2 (named by the page's query), then Loc1 typed in the page.
    open_app(
        &c,
        &f,
        "companyId=comp1&userType=agency&role=admin",
        "&location=Loc2",
    )
    .await;
    let (state, line) = settled(&c).await;
    assert_eq!(state, "ok", "{line}: {}", shown_problem(&c).await);
    assert!(line.contains("in Loc2"), "{line}");
    assert!(text(&c, "#who").await.contains("agency user"));
    fill(&c, "#location", "Loc1").await;
    click(&c, "#load").await;
    let (state, line) = settled(&c).await;
    assert_eq!(state, "ok", "{line}: {}", shown_problem(&c).await);
    assert_eq!(line, "0 product(s) in Loc1");
    // Not a location of another company.
    fill(&c, "#location", "Other1").await;
    click(&c, "#load").await;
    let (state, line) = settled(&c).await;
    assert_eq!(state, "refused", "{line}");
    assert_eq!(text(&c, "#problem-status").await, "403");
    // Refused whichever way api-backend finds out (the company's installation does not hold that location).
    let code = text(&c, "#problem-code").await;
    assert!(
        ["location_not_allowed", "location_not_in_installation"].contains(&code.as_str()),
        "{code}"
    );
    assert!(
        text(&c, "#problem-detail").await.contains("Other1"),
        "{}",
        shown_problem(&c).await
    );
    snap(&c, "agency-other-company").await;

    // A location user of Loc1 whose page names Loc2.
    open_app(
        &c,
        &f,
        "locationId=Loc1&userType=location&role=admin",
        "&location=Loc2",
    )
    .await;
    let (state, line) = settled(&c).await;
    assert_eq!(state, "refused", "{line}");
    let p = shown_problem(&c).await;
    assert_eq!(text(&c, "#problem-status").await, "403");
    assert_eq!(text(&c, "#problem-code").await, "location_not_allowed");
    let detail = text(&c, "#problem-detail").await;
    assert!(
        !detail.is_empty() && detail == p["detail"],
        "{detail} / {p}"
    );
    assert!(detail.contains("Loc2"), "{detail}");
    snap(&c, "location-user-other-location").await;

    // A location user without the admin role: may list, may not change the payment provider.
    open_app(&c, &f, "locationId=Loc1&userType=location&role=user", "").await;
    let (state, line) = settled(&c).await;
    assert_eq!(state, "ok", "{line}: {}", shown_problem(&c).await);
    assert!(text(&c, "#who").await.contains("(user)"));
    click(&c, "#provider").await;
    let (state, _) = settled(&c).await;
    assert_eq!(state, "refused");
    assert_eq!(text(&c, "#problem-status").await, "403");
    assert_eq!(text(&c, "#problem-code").await, "admin_required");
    let detail = text(&c, "#problem-detail").await;
    assert!(detail.contains("role is `user`"), "{detail}");
    assert!(!text(&c, "#problem-fix").await.is_empty());
    snap(&c, "non-admin-provider").await;
    let (status, _) = get(
        &f.s,
        "/api/locations/Loc1/payments/provider",
        &service_token(),
    )
    .await;
    assert_eq!(status, 404, "nothing was registered");
    c.close().await.unwrap();
    f.server.stop(false).await;
}

/// When HighLevel refuses (the simulator told to answer 422 to the next product create), the page shows
/// api-backend's problem and HighLevel's diagnosis: cause, detail and fix.
#[actix_web::test]
async fn the_example_page_shows_highlevels_refusal_and_the_diagnosis() {
    let f = front().await;
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let inst = install(&f.s, "Location", &["Loc1"]).await;
    open_app(&c, &f, "locationId=Loc1", "").await;
    let (state, line) = settled(&c).await;
    assert_eq!(state, "ok", "{line}: {}", shown_problem(&c).await);

    let fault = sim_post(
        &f.s,
        "/_sim/faults",
        json!({"path_prefix": "/products/", "method": "POST", "status": 422, "times": 1}),
    )
    .await;
    assert_eq!(fault["status"], 422, "{fault}");
    fill(&c, "#product-name", "Refused course").await;
    click(&c, "#create").await;
    let (state, line) = settled(&c).await;
    assert_eq!(state, "refused", "{line}");
    let p = shown_problem(&c).await;
    assert_eq!(p["code"], "rolled_back", "{p}");
    assert_eq!(p["cause"]["code"], "highlevel_refused", "{p}");
    assert_eq!(text(&c, "#problem-status").await, "422");
    assert_eq!(text(&c, "#problem-code").await, "rolled_back");
    let detail = text(&c, "#problem-detail").await;
    assert!(detail.contains("Unprocessable Entity"), "{detail}");
    assert_eq!(text(&c, "#diagnosis-cause").await, "validation_failed");
    let why = text(&c, "#diagnosis-detail").await;
    assert!(why.contains("HighLevel refused"), "{why}");
    assert_eq!(
        text(&c, "#diagnosis-fix").await,
        p["diagnosis"]["fix"].as_str().unwrap()
    );
    snap(&c, "highlevel-refused").await;
    assert!(
        sim_products(&f.s, &inst, "Loc1").await.is_empty(),
        "nothing left behind"
    );

    // The next create goes through, and the problem goes away.
    click(&c, "#create").await;
    let (state, line) = settled(&c).await;
    assert_eq!(state, "ok", "{line}: {}", shown_problem(&c).await);
    assert!(c
        .find(Locator::Css("#problem"))
        .await
        .unwrap()
        .attr("hidden")
        .await
        .unwrap()
        .is_some());
    assert_eq!(sim_products(&f.s, &inst, "Loc1").await.len(), 1);
    c.close().await.unwrap();
    f.server.stop(false).await;
}

/// The example's typed client was generated from today's OpenAPI document: api-types.d.ts names the
/// document's sha256 (scripts/gen-frontend-client.sh writes it; `.ci/run` regenerates and diffs the output).
#[test]
fn the_generated_client_is_fresh() {
    use sha2::{Digest, Sha256};
    let printed = format!(
        "{}\n",
        serde_json::to_string_pretty(&api_backend::openapi::document()).unwrap()
    );
    let now: String = Sha256::digest(printed.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let types = std::fs::read_to_string(example_dir().join("api-types.d.ts")).unwrap();
    let recorded = types
        .lines()
        .find_map(|l| l.strip_prefix("// openapi.json sha256: "))
        .expect("api-types.d.ts names the document it was generated from");
    assert_eq!(
        recorded, now,
        "api-backend's OpenAPI document changed since examples/frontend/api-types.d.ts was generated: run scripts/gen-frontend-client.sh and commit the result"
    );
}

/// The app shell without a browser: a wrong query is refused with HighLevel's error shape; a good one frames
/// `src`, answers only `src`'s origin, and carries a user context api-backend opens a session with.
#[actix_web::test]
async fn the_app_shell_carries_a_user_context_api_backend_accepts() {
    let f = front().await;
    let shell = |q: &str| format!("{}/_sim/app?{q}", f.s.sim.base_url);
    for bad in [
        "locationId=Loc1",
        "locationId=Loc1&companyId=comp2&src=https://x.test/",
        "companyId=comp1&userType=location&src=https://x.test/",
        "locationId=Loc1&role=owner&src=https://x.test/",
        "locationId=Loc1&src=javascript:alert(1)",
    ] {
        let (status, body) = send(client().get(shell(bad))).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["message"].is_string(), "{body}");
    }
    let src = format!("{}/index.html?api=x&a=\"<b>", f.origin);
    let (status, html) = send(client().get(shell(&format!(
        "locationId=Loc2&userType=location&role=user&src={}",
        urlencode(&src)
    ))))
    .await;
    assert_eq!(status, 200);
    let html = html.as_str().unwrap().to_owned();
    assert!(
        html.contains(&format!(
            r#"<iframe id="app" src="{}/index.html?api=x&amp;a=%22%3Cb%3E""#,
            f.origin
        )),
        "{html}"
    );
    assert!(html.contains(&format!(r#"var pageOrigin = "{}";"#, f.origin)));
    let payload = html
        .split("var payload = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let (status, session) = post(&f.s, "/api/sessions", None, json!({"sso": payload})).await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(
        (
            session["companyId"].as_str(),
            session["locationId"].as_str(),
            session["role"].as_str()
        ),
        (Some("comp1"), Some("Loc2"), Some("user"))
    );
    f.server.stop(false).await;
}
