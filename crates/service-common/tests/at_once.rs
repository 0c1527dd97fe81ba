//! A service's answer at once (`service_common::http::AnswerAtOnce`), in a binary of its own: no `tracing`
//! subscriber is installed here, so no `debug` line can be written and the answer at once is asked (the unit
//! tests' captured logs are at `debug`, which turns it off for their whole binary).

use actix_web::{test, web, App, HttpResponse};
use service_common::http::RequestContext;

/// The answer at once is sent instead of the routes', with the caller's request id or a new one; what it
/// leaves is served by the routes.
#[actix_web::test]
async fn an_answer_at_once_replaces_the_routes_and_keeps_the_request_id() {
    assert!(!tracing::level_enabled!(tracing::Level::DEBUG));
    let app = test::init_service(
        App::new()
            .wrap(RequestContext {
                at_once: Some(|req| {
                    (req.path() == "/fast").then(|| HttpResponse::Ok().body("at once"))
                }),
            })
            .default_service(web::to(|| async { HttpResponse::Ok().body("routes") })),
    )
    .await;
    let call = |path: &str, id: Option<&str>| {
        let mut req = test::TestRequest::get().uri(path);
        if let Some(id) = id {
            req = req.insert_header(("x-request-id", id));
        }
        let app = &app;
        async move {
            let res = test::call_service(app, req.to_request()).await;
            let id = res
                .headers()
                .get("x-request-id")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            (test::read_body(res).await, id)
        }
    };
    assert_eq!(
        call("/fast", Some("trace-1")).await,
        ("at once".into(), "trace-1".into())
    );
    let (body, id) = call("/fast", None).await;
    assert_eq!((body, id.len()), ("at once".into(), 32));
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    assert_eq!(
        call("/slow", Some("trace-2")).await,
        ("routes".into(), "trace-2".into())
    );
}
