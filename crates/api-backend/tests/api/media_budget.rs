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

/// Peak resident memory of a process (Linux), in bytes.
#[cfg(target_os = "linux")]
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// Uploads are spooled to disk, not held in memory: api-backend as its own process takes four concurrent
/// uploads of 2 × 20 MB (160 MB in all, within the default budget) and its peak resident memory grows by far
/// less than that. (A correctness bound on memory, not a timing: before spooling it grew by at least 160 MB.)
#[cfg(target_os = "linux")]
async fn uploads_are_not_held_in_memory(backend: Backend) {
    let s = stack(backend).await;
    let installation = install(&s, "Location", &["Loc1"]).await;
    let api = replica(&s, &[("HIGHLEVEL_TIMEOUT_MS", "60000")]).await;
    // Warm up (connections, token cache) before the baseline is taken.
    let (status, _, body) = upload(&api.base_url, two_small("warm")).await;
    assert_eq!(status, 201, "{body}");
    let before = peak_rss(api.pid());
    let big = |prefix: String| {
        let part = |n: u8| {
            Part::bytes(vec![n; 20 * MIB])
                .file_name(format!("{prefix}-{n}.mp4"))
                .mime_str("video/mp4")
                .unwrap()
        };
        Form::new().part("file", part(1)).part("file", part(2))
    };
    let uploads: Vec<_> = (0..4)
        .map(|i| {
            let (base, form) = (api.base_url.clone(), big(format!("big{i}")));
            tokio::spawn(async move { upload(&base, form).await })
        })
        .collect();
    for u in uploads {
        let (status, _, body) = u.await.unwrap();
        assert_eq!(status, 201, "{body}");
    }
    let grew = peak_rss(api.pid()).saturating_sub(before);
    println!(
        "{backend:?}: peak RSS grew by {} MiB for 160 MB of uploads",
        grew / MIB as u64
    );
    assert!(
        grew < 80 * MIB as u64,
        "peak RSS grew by {} MiB for 160 MB of uploads",
        grew / MIB as u64
    );
    assert_eq!(sim_media(&s, &installation, "Loc1").await.len(), 10);
}

fn two_small(prefix: &str) -> Form {
    let part = |n: u8| {
        Part::bytes(vec![n; 1024])
            .file_name(format!("{prefix}-{n}.png"))
            .mime_str("image/png")
            .unwrap()
    };
    Form::new().part("file", part(1)).part("file", part(2))
}

#[cfg(target_os = "linux")]
both_backends!(uploads_are_not_held_in_memory);
