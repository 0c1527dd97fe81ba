//! Media: multipart pass-through, the URL mode, list and delete; limits checked before HighLevel sees anything.

use crate::common::*;
use reqwest::multipart::{Form, Part};
use serde_json::json;
use service_common::both_backends;
use service_common::testing::Backend;

fn file(name: &str, mime: &str, len: usize) -> Part {
    Part::bytes(vec![7u8; len])
        .file_name(name.to_owned())
        .mime_str(mime)
        .unwrap()
}

async fn upload(s: &Stack, t: &str, form: Form) -> (u16, serde_json::Value) {
    send(
        client()
            .post(format!("{}/api/locations/Loc1/media", s.api.base_url))
            .bearer_auth(t)
            .multipart(form),
    )
    .await
}

async fn multipart_and_url_uploads(backend: Backend) {
    let s = stack(backend).await;
    let inst = install(&s, "Company", &["Loc1"]).await;
    let t = session(&s, Some("Loc1")).await;
    let form = Form::new()
        .part("file", file("a.png", "image/png", 1000))
        .part("file", file("b.mp4", "video/mp4", 2000));
    let (status, body) = upload(&s, &t, form).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["files"].as_array().unwrap().len(), 2);
    let held = sim_media(&s, &inst, "Loc1").await;
    assert_eq!(held.len(), 2);
    assert!(held
        .iter()
        .any(|f| f["size"] == 2000 && f["contentType"] == "video/mp4"));
    let (status, body) = post(
        &s,
        "/api/locations/Loc1/media",
        Some(&t),
        json!({"url": "https://cdn.example.test/c.jpg", "name": "c"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["files"][0]["id"].as_str().unwrap().to_owned();
    let (status, list) = get(&s, "/api/locations/Loc1/media", &t).await;
    assert_eq!((status, list["files"].as_array().unwrap().len()), (200, 3));
    assert_eq!(
        delete(&s, &format!("/api/locations/Loc1/media/{id}"), &t)
            .await
            .0,
        204
    );
    assert_eq!(sim_media(&s, &inst, "Loc1").await.len(), 2);
}

async fn upload_limits_are_checked_first(backend: Backend) {
    let s = stack(backend).await;
    install(&s, "Location", &["Loc1"]).await;
    let t = service_token();
    let eleven = (0..11).fold(Form::new(), |f, i| {
        f.part("file", file(&format!("{i}.png"), "image/png", 10))
    });
    let (status, body) = upload(&s, &t, eleven).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed")),
        "{body}"
    );
    let (status, body) = upload(
        &s,
        &t,
        Form::new().part("file", file("x.pdf", "application/pdf", 10)),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (415, Some("unsupported_media_type")),
        "{body}"
    );
    let (status, body) = upload(
        &s,
        &t,
        Form::new().part("file", file("big.png", "image/png", 25 * 1024 * 1024 + 1)),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("payload_too_large")),
        "{body}"
    );
    let (status, body) = upload(
        &s,
        &t,
        Form::new().part("document", file("a.png", "image/png", 10)),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed")),
        "{body}"
    );
    let (status, body) = post(
        &s,
        "/api/locations/Loc1/media",
        Some(&t),
        json!({"url": "javascript:alert(1)"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed")),
        "{body}"
    );
    assert_eq!(
        sim_count(&s, "POST /medias"),
        0,
        "nothing reached HighLevel"
    );
}

/// A multipart upload refused for an expired token is rebuilt and replayed once after the refresh.
async fn an_upload_is_replayed_after_a_refresh(backend: Backend) {
    let s = stack(backend).await;
    let inst = install(&s, "Location", &["Loc1"]).await;
    let t = service_token();
    assert_eq!(get(&s, "/api/locations/Loc1/media", &t).await.0, 200);
    sim_post(&s, "/_sim/tokens/expire", json!({})).await;
    let (status, body) = upload(
        &s,
        &t,
        Form::new().part("file", file("after.png", "image/png", 4096)),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        sim_count(&s, "POST /medias/upload-file"),
        2,
        "refused once, replayed once"
    );
    let held = sim_media(&s, &inst, "Loc1").await;
    assert_eq!(
        (held.len(), held[0]["size"].as_u64()),
        (1, Some(4096)),
        "the replay carried the whole file"
    );
    assert_eq!(s.sim.stats().refresh_grants, 1);
}

both_backends!(
    an_upload_is_replayed_after_a_refresh,
    multipart_and_url_uploads,
    upload_limits_are_checked_first
);
