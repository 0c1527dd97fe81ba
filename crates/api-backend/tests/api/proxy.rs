//! The HighLevel proxy (docs/api.md, HighLevel proxy; issue 16) against the simulator: the right token class
//! reaches HighLevel for each operation (the simulator counts calls by class), bad input is refused with nothing
//! sent, and many concurrent calls stay under the rate limit.

use crate::common::*;
use serde_json::{json, Value};
use service_common::both_backends;
use service_common::testing::{Backend, TestDb};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// The development scopes and the ones the proxied calls need (the scope table: contacts, calendars, locations).
fn scopes() -> String {
    format!(
        "{} contacts.write contacts.readonly calendars.readonly locations.readonly",
        oauth_backend::settings::DEV_SCOPES
    )
}

async fn proxy_stack(
    backend: Backend,
    sim: highlevel_sim::SimConfig,
    api_extra: &[(&str, &str)],
) -> Stack {
    stack_scoped(
        TestDb::new(backend),
        TestDb::new(backend),
        sim,
        api_extra,
        Some(&scopes()),
    )
    .await
}

fn url(s: &Stack, path: &str) -> String {
    format!("{}{path}", s.api.base_url)
}

/// Routes the simulator saw other than OAuth's (token grants and mints) and its own control routes.
fn sent_beyond_oauth(s: &Stack) -> Vec<String> {
    s.sim
        .stats()
        .requests
        .keys()
        .filter(|r| !r.contains("/oauth/") && !r.contains(" /_sim/"))
        .cloned()
        .collect()
}

/// A location user's session on an agency install: POST /contacts/ (a Location token minted from the Company
/// token), GET /contacts/{id}, GET /calendars/?locationId=…; a service JWT on the company: GET
/// /locations/search?companyId=… with the Company token. HighLevel's status, Content-Type, rate-limit headers
/// and body pass through.
async fn proxied_calls_reach_highlevel_with_the_right_token(backend: Backend) {
    let s = proxy_stack(backend, highlevel_sim::SimConfig::default(), &[]).await;
    install(&s, "Company", &["Loc1", "Loc2"]).await;
    let user = session(&s, Some("Loc1")).await;
    let c = client();

    let res = c
        .post(url(&s, "/api/locations/Loc1/highlevel/contacts/"))
        .bearer_auth(&user)
        .json(&json!({"locationId": "Loc1", "firstName": "Ada", "email": "ada@example.test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert!(res.headers().contains_key("x-ratelimit-remaining"));
    assert!(res.headers().contains_key("x-ratelimit-max"));
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["firstName"], "Ada", "{created}");
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, got) = get(
        &s,
        &format!("/api/locations/Loc1/highlevel/contacts/{id}"),
        &user,
    )
    .await;
    // HighLevel answers `{contact: {...}}` (contacts.json, GET /contacts/{contactId}).
    assert_eq!(
        (status, got["contact"]["id"].as_str()),
        (200, Some(id.as_str())),
        "{got}"
    );
    let (status, calendars) = get(
        &s,
        "/api/locations/Loc1/highlevel/calendars/?locationId=Loc1",
        &user,
    )
    .await;
    assert_eq!(status, 200, "{calendars}");

    let (status, found) = get(
        &s,
        "/api/companies/comp1/highlevel/locations/search?companyId=comp1",
        &service_token(),
    )
    .await;
    assert_eq!(status, 200, "{found}");

    let stats = s.sim.stats();
    for (route, class) in [
        ("POST /contacts/", "Location"),
        ("GET /contacts/{contactId}", "Location"),
        ("GET /calendars/", "Location"),
        ("GET /locations/search", "Company"),
    ] {
        assert_eq!(stats.count_class(route, class), 1, "{route}: {stats:?}");
        assert_eq!(stats.count(route), 1, "{route}");
    }
    assert!(
        stats.location_tokens_minted >= 1,
        "the Location token is minted from the agency install"
    );

    // Metrics by endpoint name.
    let metrics = c
        .get(url(&s, "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"endpoint="contacts.create-contact",status="201"} 1"#),
        "{metrics}"
    );
}

/// A proxied POST with `Idempotency-Key` runs once: a repeat gets the first answer without a second create at
/// HighLevel; the same key with another body is refused.
async fn a_repeated_post_with_an_idempotency_key_is_made_once(backend: Backend) {
    let s = proxy_stack(backend, highlevel_sim::SimConfig::default(), &[]).await;
    install(&s, "Location", &["Loc1"]).await;
    let t = service_token();
    let u = url(&s, "/api/locations/Loc1/highlevel/contacts/");
    let body = json!({"locationId": "Loc1", "firstName": "Once"});
    let mut ids = Vec::new();
    for replay in ["", "true"] {
        let res = client()
            .post(&u)
            .bearer_auth(&t)
            .header("Idempotency-Key", "k-1")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        assert_eq!(
            res.headers()
                .get("idempotent-replayed")
                .map(|v| v.to_str().unwrap()),
            Some(replay).filter(|r| !r.is_empty())
        );
        let v: Value = res.json().await.unwrap();
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids[0], ids[1]);
    assert_eq!(s.sim.stats().count("POST /contacts/"), 1);
    let (status, out) = send(
        client()
            .post(&u)
            .bearer_auth(&t)
            .header("Idempotency-Key", "k-1")
            .json(&json!({"locationId": "Loc1", "firstName": "Other"})),
    )
    .await;
    assert_eq!(
        (status, out["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{out}"
    );
    assert_eq!(s.sim.stats().count("POST /contacts/"), 1);
}

/// A raw HTTP/1.1 request, so the path reaches api-backend exactly as written (an HTTP client library would
/// resolve `..` and `%2e%2e` before sending).
fn raw_get(s: &Stack, path: &str, token: &str) -> (u16, Value) {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", s.api.port)).unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(json!(body)))
}

/// Each bad input is a problem with a stable code, and nothing reaches HighLevel.
async fn bad_input_is_refused_before_anything_is_sent(backend: Backend) {
    let s = proxy_stack(backend, highlevel_sim::SimConfig::default(), &[]).await;
    install(&s, "Company", &["Loc1", "Loc2"]).await;
    let user = session(&s, Some("Loc1")).await;
    let c = client();
    assert_eq!(sent_beyond_oauth(&s), Vec::<String>::new());

    // Another location, in the query, the body (however deep) or the path.
    for (status, body) in [
        get(
            &s,
            "/api/locations/Loc1/highlevel/calendars/?locationId=Loc2",
            &user,
        )
        .await,
        post(
            &s,
            "/api/locations/Loc1/highlevel/contacts/",
            Some(&user),
            json!({"locationId": "Loc2", "firstName": "Eve"}),
        )
        .await,
        post(
            &s,
            "/api/locations/Loc1/highlevel/contacts/",
            Some(&user),
            json!({"firstName": "Eve", "customFields": [{"locationId": "Loc2"}]}),
        )
        .await,
        get(&s, "/api/locations/Loc2/highlevel/calendars/", &user).await,
        // As HighLevel's query parser reads a key: `locationId[]` is `locationId`.
        get(
            &s,
            "/api/locations/Loc1/highlevel/calendars/?locationId[]=Loc2",
            &user,
        )
        .await,
        // The snake-case form, lists, `altId` with `altType=location`, and an id that is not a string.
        post(
            &s,
            "/api/locations/Loc1/highlevel/opportunities/search",
            Some(&user),
            json!({"location_id": "Loc2"}),
        )
        .await,
        post(
            &s,
            "/api/locations/Loc1/highlevel/contacts/",
            Some(&user),
            json!({"firstName": "Eve", "locationIds": ["Loc1", "Loc2"]}),
        )
        .await,
        post(
            &s,
            "/api/locations/Loc1/highlevel/contacts/",
            Some(&user),
            json!({"firstName": "Eve", "item": {"altType": "location", "altId": "Loc2"}}),
        )
        .await,
        post(
            &s,
            "/api/locations/Loc1/highlevel/contacts/",
            Some(&user),
            json!({"firstName": "Eve", "locationId": ["Loc2"]}),
        )
        .await,
        post(
            &s,
            "/api/locations/Loc1/highlevel/contacts/",
            Some(&user),
            json!({"firstName": "Eve", "locationId": 42}),
        )
        .await,
    ] {
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("location_not_allowed")),
            "{body}"
        );
    }

    // `..` and encoded slashes or dots, as sent on the wire.
    for path in [
        "/api/locations/Loc1/highlevel/../../oauth/token",
        "/api/locations/Loc1/highlevel/contacts/%2e%2e/%2e%2e/oauth/token",
        "/api/locations/Loc1/highlevel/contacts%2F..%2F..%2Foauth%2Ftoken",
    ] {
        let (status, body) = raw_get(&s, path, &user);
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_path")),
            "{path}: {body}"
        );
    }
    let (status, body) = raw_get(&s, "/api/locations/Loc1/highlevel/contacts/%2e%2e/x", &user);
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_path")),
        "{body}"
    );

    // A path outside the table, with the closest known ones; HighLevel's OAuth is never passed on.
    let (status, body) = get(&s, "/api/locations/Loc1/highlevel/contcts/abc", &user).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_endpoint")),
        "{body}"
    );
    assert!(
        body["closest"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "/contacts/{contactId}"),
        "{body}"
    );
    let (status, body) = post(
        &s,
        "/api/locations/Loc1/highlevel/oauth/token",
        Some(&user),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_endpoint")),
        "{body}"
    );

    // A method the operation does not have.
    let (status, body) = send(
        c.patch(url(&s, "/api/locations/Loc1/highlevel/contacts/abc"))
            .bearer_auth(&user)
            .json(&json!({})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method_not_allowed")),
        "{body}"
    );
    assert!(body["allowed"].as_array().unwrap().contains(&json!("GET")));

    // A body over the limit.
    let big = json!({"firstName": "x".repeat(api_backend::api::proxy::BODY_LIMIT + 1)});
    let (status, body) = post(
        &s,
        "/api/locations/Loc1/highlevel/contacts/",
        Some(&user),
        big,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("payload_too_large")),
        "{body}"
    );

    // Calls the table says HighLevel would refuse: an Agency-only operation with a Location token; a Company
    // token on POST /products/ (listed in the file, refused live: the first incident); a scope not granted.
    let (status, body) = put(
        &s,
        "/api/locations/Loc1/highlevel/locations/Loc1",
        &user,
        json!({"name": "x"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("would_be_refused")),
        "{body}"
    );
    assert_eq!(
        body["diagnosis"]["cause"],
        "location_token_on_company_endpoint"
    );
    let (status, body) = post(
        &s,
        "/api/companies/comp1/highlevel/products/",
        Some(&service_token()),
        json!({"name": "x", "locationId": "Loc1", "productType": "DIGITAL"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("would_be_refused")),
        "{body}"
    );
    assert_eq!(
        body["diagnosis"]["cause"],
        "company_token_on_location_endpoint"
    );
    let (status, body) = get(
        &s,
        "/api/locations/Loc1/highlevel/opportunities/search?location_id=Loc1",
        &user,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("would_be_refused")),
        "{body}"
    );
    assert_eq!(body["diagnosis"]["cause"], "missing_scope");

    // A location user never reaches the company routes.
    let (status, body) = get(
        &s,
        "/api/companies/comp1/highlevel/locations/search?companyId=comp1",
        &user,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("location_not_allowed")),
        "{body}"
    );
    // A company route naming another company.
    let (status, body) = get(
        &s,
        "/api/companies/comp1/highlevel/locations/search?companyId=comp2",
        &service_token(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("location_not_allowed")),
        "{body}"
    );

    assert_eq!(sent_beyond_oauth(&s), Vec::<String>::new());
}

/// 300 concurrent proxied `POST /contacts/` to one location: all made, no 429 from HighLevel. The time is
/// reported against the floor the rate limit sets (no timed assertion).
async fn many_concurrent_creates_stay_under_the_rate_limit(backend: Backend) {
    let s = proxy_stack(
        backend,
        sim_config(100, 1000),
        &[
            ("RATE_LIMIT_BURST", "100"),
            ("RATE_LIMIT_INTERVAL_MS", "1000"),
        ],
    )
    .await;
    install(&s, "Company", &["Loc1"]).await;
    let t = service_token();
    let c = client();
    let u = url(&s, "/api/locations/Loc1/highlevel/contacts/");
    let started = Instant::now();
    let calls: Vec<_> = (0..300)
        .map(|i| {
            c.post(&u)
                .bearer_auth(&t)
                .json(&json!({"locationId": "Loc1", "firstName": format!("C{i}")}))
                .send()
        })
        .collect();
    let mut created = 0;
    for res in futures::future::join_all(calls).await {
        let res = res.unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        created += 1;
    }
    let took = started.elapsed();
    assert_eq!(created, 300);
    let stats = s.sim.stats();
    assert_eq!(stats.rate_limited, 0, "no 429 from HighLevel");
    assert_eq!(stats.count_class("POST /contacts/", "Location"), 300);
    // 100 per second: the third hundred cannot start before 2 s.
    let floor = Duration::from_secs(2);
    eprintln!(
        "proxy: 300 concurrent POST /contacts/ took {took:?}, {:.3} x the floor of {floor:?}",
        took.as_secs_f64() / floor.as_secs_f64()
    );
}

/// A location user who is not an admin works in the location (contacts, calendars) but cannot administer it or
/// the app through the proxy: users and their roles, the app's install and wallet. 403 `admin_required`, and
/// nothing reaches HighLevel; an admin of the location gets through.
async fn administering_the_location_needs_an_admin(backend: Backend) {
    let s = proxy_stack(backend, highlevel_sim::SimConfig::default(), &[]).await;
    install(&s, "Company", &["Loc1"]).await;
    let plain = {
        let user = json!({"userId": "u-plain", "companyId": "comp1", "role": "user", "type": "location", "activeLocation": "Loc1"});
        let (status, body) = post(
            &s,
            "/api/sessions",
            None,
            json!({"sso": sso_payload(&user, SSO_KEY)}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_owned()
    };
    for (status, body) in [
        post(
            &s,
            "/api/locations/Loc1/highlevel/users/",
            Some(&plain),
            json!({"locationIds": ["Loc1"], "firstName": "Mallory", "role": "admin"}),
        )
        .await,
        delete(
            &s,
            "/api/locations/Loc1/highlevel/marketplace/app/dev-app-id/installations",
            &plain,
        )
        .await,
    ] {
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("admin_required")),
            "{body}"
        );
    }
    assert_eq!(sent_beyond_oauth(&s), Vec::<String>::new());
    // Working in the location stays open to them.
    let (status, body) = get(
        &s,
        "/api/locations/Loc1/highlevel/calendars/?locationId=Loc1",
        &plain,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // An admin of the location may add a user.
    let admin = session(&s, Some("Loc1")).await;
    let (status, body) = post(
        &s,
        "/api/locations/Loc1/highlevel/users/",
        Some(&admin),
        json!({"locationIds": ["Loc1"], "firstName": "Alice", "role": "user", "companyId": "comp1"}),
    )
    .await;
    assert_ne!(body["code"], "admin_required", "{status} {body}");
}

/// The simulator answers the next matching call with a JSON body of `bytes` bytes (with or without a declared
/// length), in place of its own success, or with `status` when given.
async fn large_answer(
    s: &Stack,
    method: &str,
    path: &str,
    bytes: u64,
    declared: bool,
    status: Option<u16>,
) {
    let added = sim_post(
        s,
        "/_sim/faults",
        json!({"path_prefix": path, "method": method, "answer_bytes": bytes,
            "undeclared_length": !declared, "status": status, "after_handler": true}),
    )
    .await;
    assert_eq!(added["answer_bytes"], bytes, "{added}");
}

/// HighLevel's answers pass through the proxy streamed, up to PROXY_ANSWER_LIMIT (here 1 MiB): one within it
/// arrives whole with HighLevel's status, Content-Type, rate-limit headers and length; one declared longer is
/// refused with 502 `highlevel_answer_too_large` before any of it is read; one that only grows past it while
/// streaming (no Content-Length) is cut off. A refusal with a huge body is still diagnosed. A keyed POST, whose
/// answer is kept for a repeat, is refused the same way past the limit, and a repeat does not create again.
async fn answers_stream_through_up_to_the_limit(backend: Backend) {
    const MIB: u64 = 1024 * 1024;
    let s = proxy_stack(
        backend,
        highlevel_sim::SimConfig::default(),
        &[("PROXY_ANSWER_LIMIT", "1MiB")],
    )
    .await;
    install(&s, "Company", &["Loc1"]).await;
    let user = session(&s, Some("Loc1")).await;
    let c = client();
    let calendars = url(
        &s,
        "/api/locations/Loc1/highlevel/calendars/?locationId=Loc1",
    );

    for declared in [true, false] {
        large_answer(&s, "GET", "/calendars/", 900_000, declared, None).await;
        let res = c.get(&calendars).bearer_auth(&user).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers().get("content-length").is_some(),
            declared,
            "HighLevel's declared length passes through, and no other: {:?}",
            res.headers()
        );
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        assert!(res.headers().contains_key("x-ratelimit-remaining"));
        let body = res.bytes().await.unwrap();
        assert_eq!(body.len(), 900_000);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["padding"].as_str().unwrap().len(), 900_000 - 14);
    }

    // Declared past the limit: a problem, nothing of the body passed on.
    large_answer(&s, "GET", "/calendars/", 3 * MIB, true, None).await;
    let (status, body) = get(
        &s,
        "/api/locations/Loc1/highlevel/calendars/?locationId=Loc1",
        &user,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("highlevel_answer_too_large")),
        "{body}"
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("PROXY_ANSWER_LIMIT"),
        "{body}"
    );

    // Undeclared and growing past the limit: the stream is cut, the caller never gets a complete body.
    large_answer(&s, "GET", "/calendars/", 3 * MIB, false, None).await;
    let res = c.get(&calendars).bearer_auth(&user).send().await.unwrap();
    assert_eq!(res.status(), 200, "the head went out before the body grew");
    match res.bytes().await {
        Err(_) => {}
        Ok(b) => panic!(
            "a body of {} bytes arrived complete past the 1 MiB limit",
            b.len()
        ),
    }

    // A refusal with a huge body: read up to a bound, still HighLevel's status and a diagnosis.
    large_answer(&s, "GET", "/calendars/", 5 * MIB, true, Some(422)).await;
    let (status, body) = get(
        &s,
        "/api/locations/Loc1/highlevel/calendars/?locationId=Loc1",
        &user,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("highlevel_refused")),
        "{}",
        body.to_string().chars().take(400).collect::<String>()
    );
    assert!(body["diagnosis"]["cause"].is_string());

    // A keyed POST: its answer is read whole to be kept, so past the limit it is refused, and the refusal is
    // what a repeat gets (HighLevel did create the contact: it is not created twice).
    for (key, declared) in [("big-declared", true), ("big-undeclared", false)] {
        large_answer(&s, "POST", "/contacts/", 2 * MIB, declared, None).await;
        let before = s.sim.stats().count("POST /contacts/");
        for attempt in 0..2 {
            let (status, body) = send(
                c.post(url(&s, "/api/locations/Loc1/highlevel/contacts/"))
                    .bearer_auth(&user)
                    .header("Idempotency-Key", key)
                    .json(&json!({"locationId": "Loc1", "firstName": "Big"})),
            )
            .await;
            assert_eq!(
                (status, body["code"].as_str()),
                (502, Some("highlevel_answer_too_large")),
                "{key} attempt {attempt}: {body}"
            );
        }
        assert_eq!(s.sim.stats().count("POST /contacts/"), before + 1, "{key}");
    }
    // Within the limit, a keyed POST's answer passes whole.
    large_answer(&s, "POST", "/contacts/", 500_000, true, None).await;
    let res = c
        .post(url(&s, "/api/locations/Loc1/highlevel/contacts/"))
        .bearer_auth(&user)
        .header("Idempotency-Key", "fits")
        .json(&json!({"locationId": "Loc1", "firstName": "Fits"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.bytes().await.unwrap().len(), 500_000);
}

/// On a company route, an operation whose class HighLevel's OpenAPI file does not name (its security says only
/// `bearer`) is refused with `would_be_refused` as any Location-only one, and the diagnosis says that the class
/// is assumed and why: the ad manager's `GET /ad-publishing/facebook/ad-accounts` is in no row of the scope table
/// (taken as Location), `POST /contacts/` is Sub-Account by the scope table. An operation whose file names its
/// class (`Location-Access` only, e.g. `GET /agent-studio/agent`) is refused without that remark. Nothing is sent.
async fn a_refusal_on_an_assumed_class_says_it_was_assumed(backend: Backend) {
    let s = proxy_stack(backend, highlevel_sim::SimConfig::default(), &[]).await;
    install(&s, "Company", &["Loc1"]).await;
    let admin = service_token();
    let (status, body) = get(
        &s,
        "/api/companies/comp1/highlevel/ad-publishing/facebook/ad-accounts",
        &admin,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("would_be_refused")),
        "{body}"
    );
    let d = &body["diagnosis"];
    assert_eq!(d["cause"], "company_token_on_location_endpoint", "{body}");
    let detail = d["detail"].as_str().unwrap();
    assert!(
        detail.contains("assumed") && detail.contains("bearer") && detail.contains("scope table"),
        "{detail}"
    );
    assert!(
        d["fix"].as_str().unwrap().contains("Company token here"),
        "{d}"
    );

    let (status, body) = post(
        &s,
        "/api/companies/comp1/highlevel/contacts/",
        Some(&admin),
        json!({"firstName": "Ada"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("would_be_refused")),
        "{body}"
    );
    let detail = body["diagnosis"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("assumed") && detail.contains("access type HighLevel's scope table gives"),
        "{detail}"
    );

    // Named by the file: the refusal makes no such remark.
    let (status, body) = get(
        &s,
        "/api/companies/comp1/highlevel/agent-studio/agent",
        &admin,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("would_be_refused")),
        "{body}"
    );
    assert!(
        !body["diagnosis"]["detail"]
            .as_str()
            .unwrap()
            .contains("assumed"),
        "{body}"
    );
    assert_eq!(sent_beyond_oauth(&s), Vec::<String>::new());
}

/// The call's timeout (HIGHLEVEL_TIMEOUT_MS, here 1 s) bounds a proxied call up to the answer's head, not the
/// whole transfer: a large answer whose reader takes longer than the timeout to read it still arrives whole
/// (declared or not). HighLevel stalling mid-answer for longer than HIGHLEVEL_IDLE_TIMEOUT_MS (here 500 ms)
/// cuts it off: the caller sees an incomplete body, well before the stall would have ended.
async fn a_slow_reader_gets_a_large_answer_whole(backend: Backend) {
    const MIB: u64 = 1024 * 1024;
    // Larger than every buffer between the simulator and the reader together, so the proxy is still reading
    // HighLevel's answer when the timeout has passed.
    const SIZE: u64 = 48 * MIB;
    let s = proxy_stack(
        backend,
        highlevel_sim::SimConfig::default(),
        &[
            ("PROXY_ANSWER_LIMIT", "64MiB"),
            ("HIGHLEVEL_TIMEOUT_MS", "1000"),
            ("HIGHLEVEL_IDLE_TIMEOUT_MS", "500"),
        ],
    )
    .await;
    install(&s, "Company", &["Loc1"]).await;
    let user = session(&s, Some("Loc1")).await;
    let c = client();
    let calendars = url(
        &s,
        "/api/locations/Loc1/highlevel/calendars/?locationId=Loc1",
    );

    for declared in [true, false] {
        large_answer(&s, "GET", "/calendars/", SIZE, declared, None).await;
        let started = Instant::now();
        let mut res = c.get(&calendars).bearer_auth(&user).send().await.unwrap();
        assert_eq!(res.status(), 200);
        // A reader that takes its time: nothing read for twice the timeout, then the rest.
        tokio::time::sleep(Duration::from_millis(2000)).await;
        let (mut len, mut last) = (0u64, Vec::new());
        loop {
            match res.chunk().await {
                Ok(Some(chunk)) => {
                    len += chunk.len() as u64;
                    last = chunk.to_vec();
                }
                Ok(None) => break,
                Err(e) => panic!(
                    "declared {declared}: the answer was cut off after {len} bytes, {:?} in: {e}",
                    started.elapsed()
                ),
            }
        }
        assert_eq!(len, SIZE, "declared {declared}");
        assert!(
            last.ends_with(b"\"}"),
            "declared {declared}: the answer's end"
        );
        assert!(started.elapsed() > Duration::from_millis(2000));
    }

    // HighLevel stalls halfway for 5 s: cut off after the idle timeout, not waited for.
    let added = sim_post(
        &s,
        "/_sim/faults",
        json!({"path_prefix": "/calendars/", "method": "GET", "answer_bytes": 2 * MIB,
            "answer_pause_ms": 5000, "after_handler": true}),
    )
    .await;
    assert_eq!(added["answer_pause_ms"], 5000, "{added}");
    let started = Instant::now();
    let res = c.get(&calendars).bearer_auth(&user).send().await.unwrap();
    assert_eq!(res.status(), 200, "the head went out before the stall");
    match res.bytes().await {
        Err(_) => {}
        Ok(b) => panic!("a stalled answer of {} bytes arrived complete", b.len()),
    }
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(4000),
        "cut off after the idle timeout, not after the stall: {waited:?}"
    );

    // A refusal stalling mid-body is read whole for its diagnosis: bounded by the call's timeout (the GET is
    // then sent again, and answered).
    let added = sim_post(
        &s,
        "/_sim/faults",
        json!({"path_prefix": "/calendars/", "method": "GET", "answer_bytes": 40 * 1024,
            "status": 422, "answer_pause_ms": 5000, "after_handler": true}),
    )
    .await;
    assert_eq!(added["status"], 422, "{added}");
    let started = Instant::now();
    let (status, body) = get(
        &s,
        "/api/locations/Loc1/highlevel/calendars/?locationId=Loc1",
        &user,
    )
    .await;
    let waited = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(
        waited < Duration::from_millis(4000),
        "the stalled refusal was not waited out: {waited:?}"
    );
}

both_backends!(
    administering_the_location_needs_an_admin,
    answers_stream_through_up_to_the_limit,
    a_slow_reader_gets_a_large_answer_whole,
    a_refusal_on_an_assumed_class_says_it_was_assumed,
    a_repeated_post_with_an_idempotency_key_is_made_once,
    proxied_calls_reach_highlevel_with_the_right_token,
    bad_input_is_refused_before_anything_is_sent,
    many_concurrent_creates_stay_under_the_rate_limit
);
