//! Secrets as providers issue them, through the real receiver process:
//! `<VAR>` holds one secret, its whole value, spaces included; `<VAR>_FILE`
//! holds one secret per line exactly as written (a rotation). So GitHub's
//! documented sample secret (`It's a Secret to Everybody`) can be configured
//! either way and its documented test vector verifies on `/webhooks/github`.
//! And the layer refuses an HMAC secret too short to be one.

#[path = "harness/mod.rs"]
mod harness;
#[path = "support/receiver_process.rs"]
mod receiver_process;

use std::time::Duration;

use harness::TempDir;
use http::StatusCode;
use receiver_process::{ReceiverProcess, run_to_end_with};
use tower_webhook::{SecretError, TenantError, TenantSecrets, WebhookLayer};

const GITHUB_SECRET: &str = "It's a Secret to Everybody";
/// GitHub's "Validating webhook deliveries" page: this body under the secret
/// above gives this header.
const GITHUB_BODY: &str = "Hello, World!";
const GITHUB_HEADER: &str =
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn githubs_spaced_secret_from_a_file_verifies_its_documented_vector() {
    let dir = TempDir::with_label("secret-file");
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
    let signature = tower_webhook::github::sign(GITHUB_SECRET.as_bytes(), body.as_bytes());
    let event = harness::post(&url, &[("x-hub-signature-256", &signature)], body).await;
    assert_eq!(event.status, StatusCode::OK, "{}", event.text());

    // The same signature without the spaces' secret is 401.
    let wrong = tower_webhook::github::sign(b"ItsaSecrettoEverybody", body.as_bytes());
    let refused = harness::post(&url, &[("x-hub-signature-256", &wrong)], body).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}

#[test]
fn a_secret_with_a_stray_space_or_both_variables_is_a_one_line_error() {
    let dir = TempDir::with_label("secret-file-bad");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spaced_secret_in_the_variable_is_one_secret_with_a_warning() {
    let receiver = ReceiverProcess::start(
        &["--store", "memory"],
        &[("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)],
    );
    let url = receiver.url("/webhooks/github");
    let body = r#"{"action":"opened","number":2}"#;

    // Each word of the secret is no secret of its own: `a` signs nothing.
    for word in GITHUB_SECRET.split_whitespace() {
        let forged = tower_webhook::github::sign(word.as_bytes(), body.as_bytes());
        let reply = harness::post(&url, &[("x-hub-signature-256", &forged)], body).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "key {word:?}: {}",
            reply.text()
        );
    }

    let signed = tower_webhook::github::sign(GITHUB_SECRET.as_bytes(), body.as_bytes());
    let reply = harness::post(&url, &[("x-hub-signature-256", &signed)], body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let outcome: serde_json::Value = serde_json::from_str(reply.text()).unwrap();
    assert_eq!(outcome["status"], "processed", "{}", reply.text());

    // The value looks like a list: taken whole, and the warning on stderr
    // says where a rotation goes.
    let warning = receiver
        .wait_printed(Duration::from_secs(5), |line| {
            line.starts_with("stderr: ") && line.contains("GITHUB_WEBHOOK_SECRET_FILE")
        })
        .unwrap_or_else(|| {
            panic!(
                "no warning naming the _FILE variable: {:?}",
                receiver.printed()
            )
        });
    assert!(warning.contains("GITHUB_WEBHOOK_SECRET "), "{warning}");
    for line in receiver.printed() {
        assert!(
            !line.contains(GITHUB_SECRET),
            "the secret was printed: {line}"
        );
    }
}

#[test]
fn an_hmac_secret_shorter_than_the_minimum_is_refused_naming_the_scheme() {
    use tower_webhook::github::GitHub;
    use tower_webhook::numero::Numero;
    let error = WebhookLayer::new(GitHub, "a").unwrap_err();
    assert!(
        matches!(
            error,
            SecretError::TooShort {
                scheme: "github",
                index: 0,
                len: 1,
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("github"), "{message}");
    assert!(
        message.contains(&tower_webhook::MIN_HMAC_SECRET_LEN.to_string()),
        "{message}"
    );

    // The second secret of a rotation is checked too.
    let error = WebhookLayer::builder(Numero)
        .secrets([harness::NUMERO_SECRET, "to"])
        .build()
        .unwrap_err();
    assert!(
        matches!(
            error,
            SecretError::TooShort {
                scheme: "numero",
                index: 1,
                len: 2,
                ..
            }
        ),
        "{error:?}"
    );

    // So are a tenant's.
    let tenants = TenantSecrets::new(Numero);
    let error = tenants.insert("acme", ["It's"]).unwrap_err();
    assert!(
        matches!(
            &error,
            TenantError::Secret {
                error: SecretError::TooShort {
                    scheme: "numero",
                    ..
                },
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!tenants.contains("acme"));
}

#[test]
fn every_documented_sample_secret_builds_a_layer() {
    use tower_webhook::{github::GitHub, numberotp::NumberOtp, numero::Numero, slack::Slack};
    use tower_webhook::{standard::Standard, stripe::Stripe};
    // GitHub's "Validating webhook deliveries", Numero's webhook guide,
    // Slack's "Verifying requests from Slack", Svix's (Standard Webhooks')
    // verification guide, and the NumberOTP dashboard's secret form.
    assert!(WebhookLayer::new(GitHub, GITHUB_SECRET).is_ok());
    assert!(WebhookLayer::new(Numero, "whsec_abcdefghijklmnopqrstuvwxyz123456789").is_ok());
    assert!(WebhookLayer::new(Slack::new(), "8f742231b10e8888abcd99yyyzzz85a5").is_ok());
    assert!(WebhookLayer::new(Standard::new(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
    assert!(WebhookLayer::new(Stripe::new(), "whsec_test_secret").is_ok());
    assert!(WebhookLayer::new(NumberOtp, harness::NUMBEROTP_SECRET).is_ok());
    // Exactly the minimum is enough.
    let shortest = "x".repeat(tower_webhook::MIN_HMAC_SECRET_LEN);
    assert!(WebhookLayer::new(GitHub, shortest.as_str()).is_ok());
    assert!(WebhookLayer::new(GitHub, &shortest[1..]).is_err());
}
