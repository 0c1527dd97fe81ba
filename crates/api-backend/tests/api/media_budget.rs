//! Media uploads share one bounded budget (MEDIA_BUFFER_BUDGET): past it an upload is answered 503 with
//! `Retry-After` and nothing of it reaches HighLevel; within it uploads work; the spooled files are removed.

use crate::common::*;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use service_common::both_backends;
use service_common::testing::{Backend, TempDir};
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;

fn two_files(prefix: &str) -> Form {
    let part = |n: usize| {
        Part::bytes(vec![n as u8; MIB])
            .file_name(format!("{prefix}-{n}.png"))
            .mime_str("image/png")
            .unwrap()
    };
    Form::new().part("file", part(1)).part("file", part(2))
}

async fn upload(base: &str, form: Form) -> (u16, Option<String>, Value) {
    let res = client()
        .post(format!("{base}/api/locations/Loc1/media"))
        .bearer_auth(service_token())
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, res.json().await.unwrap_or(Value::Null))
}

/// With a 3 MiB budget, one upload of 2 MiB under way leaves no room for a second: that one gets 503 +
/// Retry-After at once and none of its files is sent to HighLevel. Once the first has finished, the same
/// upload works; one larger than the whole budget is 413; no spooled file is left behind.
async fn uploads_past_the_budget_wait_their_turn(backend: Backend) {
    let spool = TempDir::new("media-spool");
    let spool_dir = spool.0.display().to_string();
    let s = stack_with(
        backend,
        highlevel_sim::SimConfig::default(),
        &[
            ("MEDIA_BUFFER_BUDGET", "3MiB"),
            ("MEDIA_SPOOL_DIR", &spool_dir),
        ],
    )
    .await;
    let installation = install(&s, "Location", &["Loc1"]).await;
    // HighLevel takes its time with the first upload's first file.
    sim_post(
        &s,
        "/_sim/faults",
        serde_json::json!({"path_prefix": "/medias/upload-file", "latency_ms": 2000, "times": 1}),
    )
    .await;
    let first = {
        let base = s.api.base_url.clone();
        tokio::spawn(async move { upload(&base, two_files("first")).await })
    };
    let started = Instant::now();
    while s.sim.stats().faults_injected < 1 {
        assert!(started.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, retry_after, body) = upload(&s.api.base_url, two_files("second")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "upload_capacity", "{body}");
    assert!(
        retry_after.is_some_and(|v| v.parse::<u64>().unwrap() >= 1),
        "{body}"
    );
    let (status, _, body) = first.await.unwrap();
    assert_eq!(status, 201, "{body}");
    let names = |files: &[Value]| -> Vec<String> {
        files
            .iter()
            .map(|f| f["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let held = names(&sim_media(&s, &installation, "Loc1").await);
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(held.iter().all(|n| n.starts_with("first")), "{held:?}");
    assert_eq!(
        sim_count(&s, "POST /medias"),
        2,
        "the refused upload reached HighLevel"
    );
    // Room again: the same upload now works.
    let (status, _, body) = upload(&s.api.base_url, two_files("third")).await;
    assert_eq!(status, 201, "{body}");
    // Larger than the whole budget: it could never fit, so it is not worth retrying.
    let big = Form::new().part(
        "file",
        Part::bytes(vec![0u8; 4 * MIB])
            .file_name("big.png")
            .mime_str("image/png")
            .unwrap(),
    );
    let (status, retry_after, body) = upload(&s.api.base_url, big).await;
    assert_eq!((status, retry_after), (413, None), "{body}");
    assert_eq!(sim_count(&s, "POST /medias"), 4);
    assert_eq!(
        std::fs::read_dir(&spool.0).unwrap().count(),
        0,
        "spooled uploads are removed once sent"
    );
}

both_backends!(uploads_past_the_budget_wait_their_turn);
