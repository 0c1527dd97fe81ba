//! Every HighLevel webhook forwarded to the app's own endpoint (WEBHOOK_FORWARD_URLS), as the Standard Webhooks
//! spec signs it, at least once from a durable outbox, retried, dead-lettered and replayed. The simulator sends
//! HighLevel's documented event types; a receiver run by the test plays the app.

use crate::common::*;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};
use service_common::both_backends;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A Standard Webhooks secret (`whsec_` + base64 of 32 bytes).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAAAAAAAAAAA=";

/// One request the app's endpoint received.
#[derive(Clone)]
struct Got {
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
    status: u16,
    /// On INSTALL / UNINSTALL / PLAN_CHANGE: what oauth-backend's `GET /api/installations?location_id=` said at
    /// that moment.
    installations: Option<Value>,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn header(&self, name: &str) -> &str {
        self.headers[name].to_str().unwrap()
    }
}

/// The app's endpoint.
#[derive(Default)]
struct Inbox {
    got: Mutex<Vec<Got>>,
    /// Answer 500 to this many requests first.
    fail_first: AtomicUsize,
    /// oauth-backend's base URL and a service token, to look an installation up when it hears of one.
    lookup: Mutex<Option<(String, String)>>,
}

impl Inbox {
    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
    /// The requests answered 2xx.
    fn accepted(&self) -> Vec<Got> {
        self.got().into_iter().filter(|g| g.status == 200).collect()
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, inbox: web::Data<Inbox>) -> HttpResponse {
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in req.headers() {
        headers.insert(
            reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
            reqwest::header::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    let kind = serde_json::from_slice::<Value>(&body).unwrap()["type"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let lookup = inbox.lookup.lock().unwrap().clone();
    let mut installations = None;
    if let (Some((base, token)), "INSTALL" | "UNINSTALL" | "PLAN_CHANGE") = (lookup, kind.as_str())
    {
        let location = serde_json::from_slice::<Value>(&body).unwrap()["location_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let res = client()
            .get(format!("{base}/api/installations?location_id={location}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        installations = Some(res.json::<Value>().await.unwrap()["installations"].clone());
    }
    let fail = inbox
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if fail { 500 } else { 200 };
    inbox.got.lock().unwrap().push(Got {
        headers,
        body: body.to_vec(),
        status,
        installations,
    });
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
}

/// Starts the app's endpoint on `port` (0: any free one). Answers its URL.
fn receiver_on(port: u16, inbox: Arc<Inbox>) -> String {
    let data = web::Data::from(inbox);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/hooks", web::post().to(receive))
    })
    .workers(1)
    .bind(("127.0.0.1", port))
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    format!("http://127.0.0.1:{port}/hooks")
}

fn receiver(inbox: Arc<Inbox>) -> String {
    receiver_on(0, inbox)
}

/// oauth-backend settings that trust the simulator's webhook keys and forward to `urls`, polling every 20 ms.
async fn forwarding_settings(
    sim: &highlevel_sim::RunningSim,
    db: &TestDb,
    keys: &str,
    urls: &str,
    retry: &str,
) -> oauth_backend::Settings {
    let mut extra = webhook_key_settings(sim).await;
    extra.extend([
        ("WEBHOOK_FORWARD_URLS", urls.to_owned()),
        ("WEBHOOK_FORWARD_SECRET", SECRET.to_owned()),
        ("WEBHOOK_FORWARD_RETRY", retry.to_owned()),
        ("WEBHOOK_FORWARD_INTERVAL_MS", "20".to_owned()),
    ]);
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    settings(sim, db, keys, &extra)
}

async fn forwarding_env(backend: Backend, urls: &str, retry: &str) -> Env {
    let sim = sim().await;
    let db = TestDb::new(backend);
    let keys = oauth_backend::crypto::keyring::KeyRing::generate_entry("k1");
    let s = forwarding_settings(&sim, &db, &keys, urls, retry).await;
    let app = oauth_backend::spawn_app(s).await.unwrap();
    Env { sim, db, app, keys }
}

/// Has the simulator send a webhook of a documented type to `app`.
async fn hl_sends(env: &Env, app: &oauth_backend::RunningApp, kind: &str, fields: Value) -> Value {
    let mut body = json!({"url": format!("{}/webhooks/highlevel", app.base_url)});
    body.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let answer = sim_post(&env.sim, &format!("/_sim/webhooks/events/{kind}"), body).await;
    assert_eq!(answer["status"], 200, "{answer}");
    answer
}

/// Waits (polling, bounded) until `done` holds.
async fn until<F: std::future::Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    for _ in 0..1500 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never: {what}");
}

async fn deliveries(env: &Env, query: &str) -> (u16, Value) {
    let token = service_token(&env.app, "ops", None);
    let res = client()
        .get(format!(
            "{}/api/webhooks/deliveries{query}",
            env.app.base_url
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

async fn in_state(env: &Env, state: &str) -> Vec<Value> {
    let (status, body) = deliveries(env, &format!("?state={state}&limit=200")).await;
    assert_eq!(status, 200, "{body}");
    body["deliveries"].as_array().unwrap().clone()
}

fn verifier() -> standardwebhooks::Webhook {
    standardwebhooks::Webhook::new(SECRET).unwrap()
}

async fn contact_appointment_and_opportunity_events_reach_the_app_once_signed(backend: Backend) {
    let inbox = Arc::new(Inbox::default());
    let opportunities = Arc::new(Inbox::default());
    let urls = format!(
        "{},OpportunityStatusUpdate={}",
        receiver(inbox.clone()),
        receiver(opportunities.clone())
    );
    let env = forwarding_env(backend, &urls, "1s,1h,3d").await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let mut sent = HashMap::new();
    for kind in [
        "ContactCreate",
        "AppointmentCreate",
        "OpportunityStatusUpdate",
    ] {
        let answer = hl_sends(&env, &env.app, kind, json!({"locationId": "Loc1"})).await;
        sent.insert(kind, answer["payload"].clone());
    }
    until("four deliveries made", || async {
        in_state(&env, "delivered").await.len() == 4
    })
    .await;

    let got = inbox.got();
    assert_eq!(got.len(), 3, "each event once");
    let ids: std::collections::HashSet<&str> = got.iter().map(|g| g.header("webhook-id")).collect();
    assert_eq!(ids.len(), 3, "one webhook-id per event");
    for g in &got {
        verifier()
            .verify(&g.body, &g.headers)
            .expect("the Standard Webhooks verifier accepts it");
        let mut tampered = g.body.clone();
        tampered.push(b' ');
        assert!(verifier().verify(&tampered, &g.headers).is_err());
        assert!(
            standardwebhooks::Webhook::new("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
                .unwrap()
                .verify(&g.body, &g.headers)
                .is_err()
        );
        let body = g.json();
        let kind = body["type"].as_str().unwrap();
        let hl = &sent[kind];
        assert_eq!(&body["data"], hl, "HighLevel's payload, unchanged");
        assert_eq!(
            (
                body["installation_id"].as_str(),
                body["location_id"].as_str(),
                body["company_id"].as_str()
            ),
            (Some(id.as_str()), Some("Loc1"), Some("comp1"))
        );
        assert_eq!(g.header("x-installation-id"), id);
        assert_eq!(body["webhook_id"], hl["webhookId"]);
        let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
        assert_eq!(
            at(&body["timestamp"]),
            at(&hl["timestamp"]),
            "HighLevel's time"
        );
    }
    // The documented fields of each type reach the app.
    let by_type =
        |t: &str| got.iter().map(Got::json).find(|b| b["type"] == t).unwrap()["data"].clone();
    let contact = by_type("ContactCreate");
    for f in [
        "id",
        "email",
        "firstName",
        "lastName",
        "phone",
        "tags",
        "dateAdded",
    ] {
        assert!(contact.get(f).is_some(), "{f}: {contact}");
    }
    let appointment = by_type("AppointmentCreate");
    for f in [
        "id",
        "calendarId",
        "contactId",
        "startTime",
        "endTime",
        "appointmentStatus",
    ] {
        assert!(
            appointment["appointment"].get(f).is_some(),
            "{f}: {appointment}"
        );
    }
    let opportunity = by_type("OpportunityStatusUpdate");
    for f in [
        "id",
        "status",
        "pipelineId",
        "pipelineStageId",
        "monetaryValue",
        "contactId",
    ] {
        assert!(opportunity.get(f).is_some(), "{f}: {opportunity}");
    }
    // An endpoint limited to one type gets only that one, under the same webhook-id.
    let only = opportunities.got();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].json()["type"], "OpportunityStatusUpdate");
    let same = got
        .iter()
        .find(|g| g.json()["type"] == "OpportunityStatusUpdate")
        .unwrap();
    assert_eq!(only[0].header("webhook-id"), same.header("webhook-id"));
    // HighLevel redelivering a processed webhook forwards nothing again.
    let again = sent["ContactCreate"].clone();
    let mut body = again.clone();
    body["url"] = json!(format!("{}/webhooks/highlevel", env.app.base_url));
    let answer = sim_post(&env.sim, "/_sim/webhooks/send", body).await;
    assert_eq!(answer["status"], 200, "{answer}");
    assert!(answer["response"].as_str().unwrap().contains("duplicate"));
    assert_eq!(in_state(&env, "pending").await.len(), 0);
    assert_eq!(in_state(&env, "delivered").await.len(), 4);
}

async fn a_receiver_failing_twice_gets_the_event_on_the_third_try(backend: Backend) {
    let inbox = Arc::new(Inbox::default());
    inbox.fail_first.store(2, Ordering::SeqCst);
    let env = forwarding_env(backend, &receiver(inbox.clone()), "10ms,50ms,1h").await;
    hl_sends(
        &env,
        &env.app,
        "ContactCreate",
        json!({"locationId": "Loc1"}),
    )
    .await;
    until("delivered", || async {
        in_state(&env, "delivered").await.len() == 1
    })
    .await;
    let got = inbox.got();
    assert_eq!(
        got.iter().map(|g| g.status).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    assert!(got
        .iter()
        .all(|g| g.header("webhook-id") == got[0].header("webhook-id")));
    for g in &got {
        verifier().verify(&g.body, &g.headers).unwrap();
    }
    let row = &in_state(&env, "delivered").await[0];
    assert_eq!(
        (row["attempts"].as_i64(), row["last_status"].as_i64()),
        (Some(3), Some(200))
    );
    assert_eq!(row["event_id"].as_str(), Some(got[0].header("webhook-id")));
}

fn bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_oauth-backend"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

async fn an_event_past_the_retry_window_is_dead_until_replayed(backend: Backend) {
    // The app's endpoint is down: nothing listens on its port yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hooks");
    let env = forwarding_env(backend, &url, "10ms,20ms,300ms").await;
    hl_sends(
        &env,
        &env.app,
        "ContactCreate",
        json!({"locationId": "Loc1"}),
    )
    .await;
    hl_sends(
        &env,
        &env.app,
        "AppointmentCreate",
        json!({"locationId": "Loc1"}),
    )
    .await;
    until("both dead", || async {
        in_state(&env, "dead").await.len() == 2
    })
    .await;
    let dead = in_state(&env, "dead").await;
    for d in &dead {
        assert!(d["attempts"].as_i64().unwrap() >= 2, "{d}");
        assert!(d["last_error"].as_str().is_some(), "{d}");
        assert_eq!(d["url"], url.as_str());
    }
    assert!(in_state(&env, "pending").await.is_empty());

    // Listed by the CLI too.
    let out = bin()
        .env("DATABASE_URL", &env.db.url)
        .args([
            "webhooks",
            "deliveries",
            "list",
            "--state",
            "dead",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.len(), 2);

    // The app is back; one dead letter is replayed through the API, the other through the CLI.
    let inbox = Arc::new(Inbox::default());
    receiver_on(port, inbox.clone());
    let token = service_token(&env.app, "ops", None);
    let first = dead[0]["id"].as_str().unwrap();
    let res = client()
        .post(format!(
            "{}/api/webhooks/deliveries/{first}/replay",
            env.app.base_url
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let replayed: Value = res.json().await.unwrap();
    assert_eq!(replayed["id"], first);
    until("the replayed one arrives", || async {
        inbox.accepted().len() == 1
    })
    .await;
    assert_eq!(
        inbox.got()[0].header("webhook-id"),
        dead[0]["event_id"].as_str().unwrap(),
        "the same webhook-id: the app tells a repeat"
    );
    verifier()
        .verify(&inbox.got()[0].body, &inbox.got()[0].headers)
        .unwrap();

    let second = dead[1]["id"].as_str().unwrap();
    let out = bin()
        .env("DATABASE_URL", &env.db.url)
        .args(["webhooks", "deliveries", "replay", second])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    until("the second arrives", || async {
        inbox.accepted().len() == 2
    })
    .await;
    until("both delivered", || async {
        in_state(&env, "delivered").await.len() == 2
    })
    .await;
    assert_eq!(inbox.got().len(), 2, "each once");
    assert!(in_state(&env, "dead").await.is_empty());

    // Bad input and the wrong callers change nothing.
    let post = |path: String, token: Option<String>| {
        let req = client().post(format!("{}{path}", env.app.base_url));
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap()["code"].clone())
        }
    };
    assert_eq!(
        post(
            "/api/webhooks/deliveries/whd_nope/replay".into(),
            Some(token.clone())
        )
        .await,
        (404, json!("not_found"))
    );
    assert_eq!(
        post(format!("/api/webhooks/deliveries/{first}/replay"), None).await,
        (401, json!("service_auth_required"))
    );
    let limited = service_token(&env.app, "tenant-job", Some(vec!["inst_x".into()]));
    assert_eq!(
        post(
            format!("/api/webhooks/deliveries/{first}/replay"),
            Some(limited)
        )
        .await,
        (403, json!("caller_not_allowed"))
    );
    for query in ["?state=lost", "?limit=0", "?limit=201", "?offset=-1"] {
        let (status, body) = deliveries(&env, query).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_request")),
            "{query}"
        );
    }
    let (_, page) = deliveries(&env, "?limit=1").await;
    assert_eq!(page["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(page["next_offset"], 1);
    let (_, last) = deliveries(&env, "?limit=1&offset=1").await;
    assert_eq!(last["next_offset"], Value::Null);
    assert_ne!(last["deliveries"][0]["id"], page["deliveries"][0]["id"]);
}

async fn two_instances_on_one_database_deliver_each_event_once(backend: Backend) {
    let inbox = Arc::new(Inbox::default());
    let url = receiver(inbox.clone());
    let env = forwarding_env(backend, &url, "10ms,50ms,1h").await;
    let other = oauth_backend::spawn_app(
        forwarding_settings(&env.sim, &env.db, &env.keys, &url, "10ms,50ms,1h").await,
    )
    .await
    .unwrap();
    const N: usize = 30;
    let sends = (0..N).map(|i| {
        let app = if i % 2 == 0 { &env.app } else { &other };
        hl_sends(&env, app, "ContactCreate", json!({"locationId": "Loc1"}))
    });
    futures::future::join_all(sends).await;
    until("all delivered", || async {
        in_state(&env, "delivered").await.len() == N
    })
    .await;
    let got = inbox.got();
    let ids: std::collections::HashSet<&str> = got.iter().map(|g| g.header("webhook-id")).collect();
    assert_eq!((got.len(), ids.len()), (N, N), "each event once");
    other.stop().await;
}

async fn an_install_reaches_the_app_after_its_installation_exists(backend: Backend) {
    let inbox = Arc::new(Inbox::default());
    let env = forwarding_env(backend, &receiver(inbox.clone()), "1s,1h,3d").await;
    *inbox.lookup.lock().unwrap() = Some((
        env.app.base_url.clone(),
        service_token(&env.app, "the-app", None),
    ));
    hl_sends(
        &env,
        &env.app,
        "INSTALL",
        json!({"locationId": "Loc1", "companyId": "comp1"}),
    )
    .await;
    until("the install arrives", || async { inbox.got().len() == 1 }).await;
    let got = &inbox.got()[0];
    let seen = got.installations.as_ref().unwrap().as_array().unwrap();
    assert_eq!(seen.len(), 1, "the installation was in place: {seen:?}");
    assert_eq!(seen[0]["state"], "active");
    assert_eq!(got.json()["installation_id"], seen[0]["id"]);

    // A plan change reaches the app with its plans and the installation it belongs to.
    hl_sends(
        &env,
        &env.app,
        "PLAN_CHANGE",
        json!({"locationId": "Loc1", "companyId": "comp1", "newPlanId": "plan-2"}),
    )
    .await;
    until("the plan change arrives", || async {
        inbox.got().len() == 2
    })
    .await;
    let plan = inbox.got()[1].json();
    assert_eq!(
        (
            &plan["type"],
            &plan["installation_id"],
            &plan["data"]["newPlanId"]
        ),
        (&json!("PLAN_CHANGE"), &seen[0]["id"], &json!("plan-2"))
    );
    assert!(plan["data"]["currentPlanId"].is_string(), "{plan}");

    hl_sends(&env, &env.app, "UNINSTALL", json!({"locationId": "Loc1"})).await;
    until("the uninstall arrives", || async { inbox.got().len() == 3 }).await;
    let got = &inbox.got()[2];
    let seen = got.installations.as_ref().unwrap();
    assert_eq!(seen[0]["state"], "uninstalled", "acted on first: {seen}");
    assert_eq!(got.json()["installation_id"], seen[0]["id"]);
}

/// One installation as `GET /api/installations/{id}` shows it.
async fn installation(env: &Env, id: &str) -> Value {
    let res = client()
        .get(format!("{}/api/installations/{id}", env.app.base_url))
        .bearer_auth(service_token(&env.app, "the-app", None))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// HighLevel's INSTALL webhook names the paid app's plan (`planId`), PLAN_CHANGE the new one (`newPlanId`, with
/// `currentPlanId`): the installation records the plan and shows it, and the event reaches the app after it was
/// recorded. An older PLAN_CHANGE delivered late changes nothing (each carries HighLevel's time) but is still
/// forwarded. A location of an agency-level install changes the agency install's plan. The OAuth grant's
/// `planId` is recorded too.
async fn the_plan_is_recorded_at_install_and_changed_by_plan_change(backend: Backend) {
    let inbox = Arc::new(Inbox::default());
    let env = forwarding_env(backend, &receiver(inbox.clone()), "1s,1h,3d").await;
    *inbox.lookup.lock().unwrap() = Some((
        env.app.base_url.clone(),
        service_token(&env.app, "the-app", None),
    ));
    hl_sends(
        &env,
        &env.app,
        "INSTALL",
        json!({"locationId": "Loc1", "companyId": "comp1", "planId": "plan-basic"}),
    )
    .await;
    until("the install arrives", || async { inbox.got().len() == 1 }).await;
    let seen = inbox.got()[0].installations.clone().unwrap();
    assert_eq!(seen[0]["plan_id"], "plan-basic", "{seen}");
    let id = seen[0]["id"].as_str().unwrap().to_owned();

    hl_sends(
        &env,
        &env.app,
        "PLAN_CHANGE",
        json!({"locationId": "Loc1", "companyId": "comp1", "currentPlanId": "plan-basic", "newPlanId": "plan-pro"}),
    )
    .await;
    until("the plan change arrives", || async {
        inbox.got().len() == 2
    })
    .await;
    let got = &inbox.got()[1];
    let seen = got.installations.clone().unwrap();
    assert_eq!(
        seen[0]["plan_id"], "plan-pro",
        "recorded before forwarded: {seen}"
    );
    assert_eq!(got.json()["installation_id"], id.as_str());
    assert_eq!(got.json()["data"]["newPlanId"], "plan-pro");
    let shown = installation(&env, &id).await;
    assert_eq!(shown["plan_id"], "plan-pro", "{shown}");
    let changed_at = shown["plan_changed_at"].as_str().unwrap().to_owned();

    // Sent two minutes ago, delivered now: the later plan stands; the app still hears of it.
    let earlier = (chrono::Utc::now() - chrono::Duration::seconds(120))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    hl_sends(
        &env,
        &env.app,
        "PLAN_CHANGE",
        json!({"locationId": "Loc1", "companyId": "comp1", "currentPlanId": "plan-none",
            "newPlanId": "plan-old", "timestamp": earlier}),
    )
    .await;
    until("the late plan change arrives", || async {
        inbox.got().len() == 3
    })
    .await;
    let shown = installation(&env, &id).await;
    assert_eq!(
        (shown["plan_id"].as_str(), shown["plan_changed_at"].as_str()),
        (Some("plan-pro"), Some(changed_at.as_str())),
        "{shown}"
    );

    // An agency-level install: its locations' plan changes are its own.
    hl_sends(
        &env,
        &env.app,
        "INSTALL",
        json!({"locationId": "LocA", "companyId": "comp2", "installType": "Company", "planId": "agency-1"}),
    )
    .await;
    hl_sends(
        &env,
        &env.app,
        "PLAN_CHANGE",
        json!({"locationId": "LocA", "companyId": "comp2", "currentPlanId": "agency-1", "newPlanId": "agency-2"}),
    )
    .await;
    until("both agency events arrive", || async {
        inbox.got().len() == 5
    })
    .await;
    let res = client()
        .get(format!(
            "{}/api/installations?company_id=comp2",
            env.app.base_url
        ))
        .bearer_auth(service_token(&env.app, "the-app", None))
        .send()
        .await
        .unwrap();
    let list: Value = res.json().await.unwrap();
    let agency = &list["installations"][0];
    assert_eq!(
        (agency["auth_class"].as_str(), agency["plan_id"].as_str()),
        (Some("Company"), Some("agency-2")),
        "{list}"
    );
    // The CLI's list shows the plan too.
    let out = bin()
        .env("DATABASE_URL", &env.db.url)
        .args(["installations", "--company-id", "comp2"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(table.lines().next().unwrap().contains("plan"), "{table}");
    assert!(table.contains("agency-2"), "{table}");

    // A plan change naming no installation known here is acknowledged and still forwarded.
    hl_sends(
        &env,
        &env.app,
        "PLAN_CHANGE",
        json!({"locationId": "LocZ", "companyId": "compZ", "newPlanId": "plan-x"}),
    )
    .await;
    until("the stray plan change arrives", || async {
        inbox.got().len() == 6
    })
    .await;

    // The OAuth grant (the simulator answers `planId: sim-plan`) records the plan too.
    let granted = install(&env.app, "Location", &["Loc2"]).await;
    assert_eq!(installation(&env, &granted).await["plan_id"], "sim-plan");
}

both_backends!(
    contact_appointment_and_opportunity_events_reach_the_app_once_signed,
    a_receiver_failing_twice_gets_the_event_on_the_third_try,
    an_event_past_the_retry_window_is_dead_until_replayed,
    two_instances_on_one_database_deliver_each_event_once,
    an_install_reaches_the_app_after_its_installation_exists,
    the_plan_is_recorded_at_install_and_changed_by_plan_change,
);
