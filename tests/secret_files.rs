//! Secrets as providers issue them, through the real receiver process:
//! `<VAR>_FILE` holds one secret per line exactly as written, so GitHub's
//! documented sample secret (`It's a Secret to Everybody`) can be configured
//! and its documented test vector verifies on `/webhooks/github`.

#[path = "harness/mod.rs"]
mod harness;
#[path = "support/receiver_process.rs"]
mod receiver_process;

use std::time::Duration;

use http::StatusCode;
use receiver_process::{ReceiverProcess, TempDir, run_to_end_with};

const GITHUB_SECRET: &str = "It's a Secret to Everybody";
/// GitHub's "Validating webhook deliveries" page: this body under the secret
/// above gives this header.
const GITHUB_BODY: &str = "Hello, World!";
const GITHUB_HEADER: &str =
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn githubs_spaced_secret_from_a_file_verifies_its_documented_vector() {
    let dir = TempDir::new("secret-file");
    let file = dir.join("github-secret");
    // One secret per line, as a container secret file would hold it.
    std::fs::write(&file, format!("{GITHUB_SECRET}\n\n")).unwrap();
    let file = file.display().to_string();
    let receiver = ReceiverProcess::start(
        &["--store", "memory"],
        &[("GITHUB_WEBHOOK_SECRET_FILE", file.as_str())],
    );
    let url = receiver.url("/webhooks/github");

    // The documented vector passes the signature check; its body is no
    // JSON event, so it is 400 `invalid_json`, not 401.
    let vector = harness::post(&url, &[("x-hub-signature-256", GITHUB_HEADER)], GITHUB_BODY).await;
    assert_eq!(vector.status, StatusCode::BAD_REQUEST, "{}", vector.text());
    assert_eq!(vector.error(), "invalid_json");

    // A real event signed with the spaced secret is processed.
    let body = r#"{"action":"opened","number":1}"#;
    let signature = tower_webhook::sign::github(GITHUB_SECRET.as_bytes(), body.as_bytes());
    let event = harness::post(&url, &[("x-hub-signature-256", &signature)], body).await;
    assert_eq!(event.status, StatusCode::OK, "{}", event.text());

    // The same signature without the spaces' secret is 401.
    let wrong = tower_webhook::sign::github(b"ItsaSecrettoEverybody", body.as_bytes());
    let refused = harness::post(&url, &[("x-hub-signature-256", &wrong)], body).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}

#[test]
fn a_secret_with_a_stray_space_or_both_variables_is_a_one_line_error() {
    let dir = TempDir::new("secret-file-bad");
    let file = dir.join("stray");
    std::fs::write(&file, "trailing-space \n").unwrap();
    let file = file.display().to_string();
    for env in [
        vec![("GITHUB_WEBHOOK_SECRET_FILE", file.as_str())],
        vec![
            ("GITHUB_WEBHOOK_SECRET_FILE", file.as_str()),
            ("GITHUB_WEBHOOK_SECRET", "plain"),
        ],
    ] {
        let (status, stderr) =
            run_to_end_with(&["--store", "memory"], &env, Duration::from_secs(20));
        assert!(!status.success(), "{env:?}");
        assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
        assert!(stderr.starts_with("error: "), "{stderr:?}");
    }
}
