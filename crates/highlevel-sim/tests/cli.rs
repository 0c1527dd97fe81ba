//! The simulator binary explains itself.

#[test]
fn help_names_every_option_and_its_variable() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_highlevel-sim"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--port",
        "PORT",
        "--client-id",
        "HIGHLEVEL_CLIENT_ID",
        "--client-secret",
        "--app-id",
        "--access-token-ttl",
        "--rate-burst",
        "--rate-window-ms",
        "--rate-daily",
    ] {
        assert!(text.contains(word), "--help lacks {word}");
    }
    assert!(
        !text.contains("dev-client-secret"),
        "the secret's default is not printed"
    );
}
