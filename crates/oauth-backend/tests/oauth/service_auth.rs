use crate::common::*;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;
use service_common::both_backends;

fn sign(claims: serde_json::Value, secret: &str) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn token_access_refuses_bad_service_jwts_and_audits_reads(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let now = chrono::Utc::now().timestamp();
    let url = format!("{}/api/token-access/{id}", env.app.base_url);

    let res = client().get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "service_auth_required");
    assert!(body["fix"].is_string());

    let cases = [
        ("malformed", "not-a-jwt".to_owned()),
        (
            "expired",
            sign(
                json!({"iss": "jobs", "aud": "oauth-backend", "exp": now - 600}),
                SERVICE_SECRET,
            ),
        ),
        (
            "wrong signature",
            sign(
                json!({"iss": "jobs", "aud": "oauth-backend", "exp": now + 60}),
                "another-secret-another-secret-another",
            ),
        ),
        (
            "wrong audience",
            sign(
                json!({"iss": "jobs", "aud": "api-backend", "exp": now + 60}),
                SERVICE_SECRET,
            ),
        ),
        (
            "too long-lived",
            sign(
                json!({"iss": "jobs", "aud": "oauth-backend", "exp": now + 86_400}),
                SERVICE_SECRET,
            ),
        ),
        (
            "no issuer",
            sign(
                json!({"aud": "oauth-backend", "exp": now + 60}),
                SERVICE_SECRET,
            ),
        ),
    ];
    for (what, token) in cases {
        let (status, body) = token_access(&env.app, &id, None, &token).await;
        assert_eq!(
            (status, body["code"].as_str().unwrap()),
            (401, "service_auth_invalid"),
            "{what}"
        );
        assert!(
            !body.to_string().contains(&token),
            "{what}: the token is echoed"
        );
    }

    let limited = service_token(
        &env.app,
        "reporting",
        Some(vec!["inst_someone_else".into()]),
    );
    let (status, body) = token_access(&env.app, &id, None, &limited).await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (403, "caller_not_allowed")
    );
    let allowed = service_token(&env.app, "reporting", Some(vec![id.clone()]));
    assert_eq!(token_access(&env.app, &id, None, &allowed).await.0, 200);
    let jobs = service_token(&env.app, "jobs", None);
    assert_eq!(
        token_access(&env.app, &id, Some("Loc1"), &jobs).await.0,
        200
    );
    let (status, _) = token_access(&env.app, "inst_missing", None, &jobs).await;
    assert_eq!(status, 404);

    let audit = audit_entries(&env.app, &id, 3).await;
    let seen: Vec<(&str, &str)> = audit
        .iter()
        .map(|a| (a.caller.as_str(), a.outcome.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("reporting", "caller_not_allowed"),
            ("reporting", "served"),
            ("jobs", "served")
        ]
    );
    assert_eq!(audit[2].location_id.as_deref(), Some("Loc1"));
    let at = token_access(&env.app, &id, None, &jobs).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !format!("{audit:?}").contains(&at),
        "the audit log never holds a token"
    );
}

async fn installations_api_needs_a_service_jwt_and_never_shows_tokens(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let res = client()
        .get(format!("{}/api/installations", env.app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let token = service_token(&env.app, "ops", None);
    let (_, body) = installations_api(&env.app, &format!("/{id}"), &token).await;
    assert_eq!(body["state"], "active");
    assert!(body["expires_at"].is_string());
    for t in env.sim.issued_tokens() {
        assert!(!body.to_string().contains(&t));
    }
    assert_eq!(
        installations_api(&env.app, "/bad%20id", &token).await.0,
        400
    );
}

/// The read is routed two ways (well-formed ids by the route's static prefix, everything else by the regular
/// route): whichever way a path goes, it answers as the contract says, with a problem body for every refusal.
async fn token_access_paths_answer_alike_whichever_route_takes_them(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let token = service_token(&env.app, "jobs", None);
    let base = format!("{}/api/token-access", env.app.base_url);
    let call = |method: reqwest::Method, path: String| {
        let req = client()
            .request(method, format!("{base}{path}"))
            .bearer_auth(&token);
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let problem = res
                .headers()
                .get("content-type")
                .is_some_and(|c| c == "application/problem+json");
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            (status, problem, body)
        }
    };
    use reqwest::Method;
    let (status, _, body) = call(Method::GET, format!("/{id}")).await;
    assert_eq!(status, 200, "{}", body["code"]);
    assert_eq!(body["installation_id"], id.as_str());
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    let (status, _, body) = call(Method::GET, format!("/{id}?location_id=Loc1")).await;
    assert_eq!((status, body["location_id"].as_str()), (200, Some("Loc1")));
    for (method, path, want, code) in [
        (
            Method::GET,
            "/inst_none".to_owned(),
            404,
            "installation_not_found",
        ),
        (Method::GET, "/not.an.id".to_owned(), 400, "invalid_request"),
        (
            Method::GET,
            format!("/{}", "a".repeat(65)),
            400,
            "invalid_request",
        ),
        (
            Method::GET,
            format!("/{id}?location_id=bad.loc"),
            400,
            "invalid_request",
        ),
        // The routes carry their method: another method finds no route.
        (Method::POST, format!("/{id}"), 404, "not_found"),
        (Method::DELETE, format!("/{id}"), 404, "not_found"),
        (Method::GET, format!("/{id}/refresh"), 404, "not_found"),
        (Method::GET, format!("/{id}/other"), 404, "not_found"),
        (Method::GET, String::new(), 404, "not_found"),
    ] {
        let (status, problem, body) = call(method.clone(), path.clone()).await;
        assert_eq!(
            (status, problem, body["code"].as_str()),
            (want, true, Some(code)),
            "{method} {path}"
        );
    }
}

/// A caller's later reads are answered the way its first was (a cached read with a JWT already verified is
/// answered ahead of the handler): the same answer and headers, the same walls (a caller limited to one
/// installation is refused another, whose token is cached), and one audited read per read.
async fn repeated_reads_are_answered_walled_and_audited_as_the_first(backend: Backend) {
    let env = env(backend).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let other = install(&env.app, "Location", &["Loc2"]).await;
    let jobs = service_token(&env.app, "jobs", None);
    let limited = service_token(&env.app, "reporting", Some(vec![id.clone()]));
    const ROUNDS: i64 = 6;
    let mut first: [Option<serde_json::Value>; 2] = [None, None];
    for _ in 0..ROUNDS {
        for (i, location) in [None, Some("Loc1")].into_iter().enumerate() {
            let mut url = format!("{}/api/token-access/{id}", env.app.base_url);
            if let Some(l) = location {
                url.push_str(&format!("?location_id={l}"));
            }
            let res = client().get(url).bearer_auth(&jobs).send().await.unwrap();
            assert_eq!(res.status(), 200);
            let headers = res.headers().clone();
            assert_eq!(headers["content-type"], "application/json");
            assert_eq!(headers["cache-control"], "no-store");
            assert!(headers["x-request-id"].len() >= 16);
            let body: serde_json::Value = res.json().await.unwrap();
            if location.is_some() {
                assert_eq!(body["location_id"].as_str(), location);
            }
            assert_eq!(first[i].get_or_insert_with(|| body.clone()), &body);
        }
        assert_eq!(token_access(&env.app, &id, None, &limited).await.0, 200);
        let (status, body) = token_access(&env.app, &other, None, &limited).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("caller_not_allowed"))
        );
        assert_eq!(token_access(&env.app, &other, None, &jobs).await.0, 200);
    }
    env.app.state.audit.flush().await;
    let reads = |installation: &str| {
        let owned = installation.to_owned();
        let db = env.app.state.tokens.db.clone();
        async move {
            let rows = db
                .run(move |c| oauth_backend::store::audit::for_installation(c, &owned))
                .await
                .unwrap();
            let mut reads =
                std::collections::BTreeMap::<(String, Option<String>, String), i64>::new();
            for r in rows {
                *reads
                    .entry((r.caller, r.location_id, r.outcome.as_str().to_owned()))
                    .or_default() += r.count;
            }
            reads
        }
    };
    let key = |caller: &str, location: Option<&str>, outcome: &str| {
        (
            caller.to_owned(),
            location.map(str::to_owned),
            outcome.to_owned(),
        )
    };
    assert_eq!(
        reads(&id).await,
        [
            (key("jobs", None, "served"), ROUNDS),
            (key("jobs", Some("Loc1"), "served"), ROUNDS),
            (key("reporting", None, "served"), ROUNDS),
        ]
        .into()
    );
    assert_eq!(
        reads(&other).await,
        [
            (key("jobs", None, "served"), ROUNDS),
            (key("reporting", None, "caller_not_allowed"), ROUNDS),
        ]
        .into()
    );
}

/// The answer at once (ahead of the routes), asked directly on this thread: it answers exactly the cached reads
/// the routes would serve, with their answer, and leaves everything else to them (a JWT this thread never
/// verified, a forged one, a caller not allowed, an unusual or malformed query, another method or path, a token
/// not in the cache).
async fn the_answer_at_once_answers_only_cached_reads_the_routes_would_serve(backend: Backend) {
    use actix_web::http::{header::HeaderValue, Method};
    let env = env(backend).await;
    let id = install(&env.app, "Location", &["Loc1"]).await;
    let other = install(&env.app, "Location", &["Loc2"]).await;
    let never_read = install(&env.app, "Location", &["Loc3"]).await;
    let jobs = service_token(&env.app, "jobs", None);
    let limited = service_token(&env.app, "reporting", Some(vec![other.clone()]));
    // The routes read these tokens into the cache.
    let (status, served) = token_access(&env.app, &id, None, &jobs).await;
    assert_eq!(status, 200);
    let (status, served_in_loc1) = token_access(&env.app, &id, Some("Loc1"), &jobs).await;
    assert_eq!(status, 200);
    assert_eq!(token_access(&env.app, &other, None, &limited).await.0, 200);

    let state = env.app.state.clone();
    let ask = |method: Method, uri: &str, token: &str| {
        let req = actix_web::test::TestRequest::default()
            .method(method)
            .uri(uri)
            .insert_header(("authorization", format!("Bearer {token}")))
            .app_data(state.clone())
            .to_http_request();
        oauth_backend::api::token_access::answer_at_once(&req)
    };
    let answer = |res: Option<actix_web::HttpResponse>| async move {
        let res = res.expect("answered at once");
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers().get("content-type").unwrap(),
            "application/json"
        );
        assert_eq!(res.headers().get("cache-control").unwrap(), "no-store");
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()
    };
    let path = format!("/api/token-access/{id}");
    assert!(
        ask(Method::GET, &path, &jobs).is_none(),
        "a JWT this thread never verified"
    );
    for token in [&jobs, &limited] {
        let header = HeaderValue::try_from(format!("Bearer {token}")).unwrap();
        state.auth.verify_header(Some(&header)).unwrap();
    }
    assert_eq!(answer(ask(Method::GET, &path, &jobs)).await, served);
    assert_eq!(
        answer(ask(Method::GET, &format!("{path}?location_id=Loc1"), &jobs)).await,
        served_in_loc1
    );
    let other_path = format!("/api/token-access/{other}");
    assert_eq!(
        answer(ask(Method::GET, &other_path, &limited)).await["installation_id"],
        other.as_str()
    );
    for (method, uri, token, why) in [
        (
            Method::GET,
            path.clone(),
            format!("{jobs}x"),
            "a forged JWT",
        ),
        (
            Method::GET,
            path.clone(),
            limited.clone(),
            "a caller not allowed",
        ),
        (Method::HEAD, path.clone(), jobs.clone(), "HEAD"),
        (
            Method::GET,
            format!("{path}?location_id=Loc1&location_id=Loc1"),
            jobs.clone(),
            "a repeated location",
        ),
        (
            Method::GET,
            format!("{path}?location_id="),
            jobs.clone(),
            "an empty location",
        ),
        (
            Method::GET,
            format!("{path}?location_id=bad.loc"),
            jobs.clone(),
            "a malformed location",
        ),
        (
            Method::GET,
            format!("{path}?other=1"),
            jobs.clone(),
            "another parameter",
        ),
        (
            Method::GET,
            format!("{path}/refresh"),
            jobs.clone(),
            "a longer path",
        ),
        (
            Method::GET,
            "/api/token-access/a.b".to_owned(),
            jobs.clone(),
            "a malformed id",
        ),
        (
            Method::GET,
            format!("/api/token-access/{never_read}"),
            jobs.clone(),
            "a token not cached",
        ),
    ] {
        assert!(ask(method, &uri, &token).is_none(), "{why}");
    }
}

both_backends!(
    token_access_refuses_bad_service_jwts_and_audits_reads,
    installations_api_needs_a_service_jwt_and_never_shows_tokens,
    token_access_paths_answer_alike_whichever_route_takes_them,
    repeated_reads_are_answered_walled_and_audited_as_the_first,
    the_answer_at_once_answers_only_cached_reads_the_routes_would_serve
);
