//! `devstack` end to end: the walkthrough it prints runs as printed, and it stops within 5 s of SIGTERM
//! (what container hosts and process managers send).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
