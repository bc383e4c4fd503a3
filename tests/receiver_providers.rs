//! The example receiver's provider routes, as a real child process: each
//! configured with its provider's setting names, each delivery listed by
//! `GET /events` with its scheme and id, handshakes answered without a run.
//! Off loopback only configured providers are mounted and no secret is
//! printed; on loopback unset ones get a demo secret, said to be one.
#![cfg(feature = "ed25519")]

#[path = "harness/mod.rs"]
mod harness;
#[path = "support/receiver_process.rs"]
mod receiver_process;

use std::time::{SystemTime, UNIX_EPOCH};

use http::StatusCode;
use receiver_process::ReceiverProcess;
use serde_json::Value;
use tower_webhook::sign;

const SEED: [u8; 32] = [5; 32];

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn events(receiver: &ReceiverProcess) -> Vec<(String, String)> {
    let response = harness::client()
        .get(receiver.url("/events").parse().unwrap())
        .await
        .unwrap();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let events: Value = serde_json::from_slice(&body).unwrap();
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|run| {
            (
                run["scheme"].as_str().unwrap().to_owned(),
                run["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_routes_take_their_providers_settings() {
    let discord_key = sign::ed25519_public_key_hex(&SEED);
    let standard_key = tower_webhook::standard::encode_public_key(&SEED);
    let receiver = ReceiverProcess::start(
        &["--store", "memory"],
        &[
            ("PAYSTACK_SECRET_KEY", "sk_test_receiver"),
            ("SLACK_SIGNING_SECRET", "slack-receiver-secret"),
            ("TWILIO_AUTH_TOKEN", "twilio-receiver-token"),
            (
                "TWILIO_WEBHOOK_URL",
                "https://hooks.example.com/webhooks/twilio",
            ),
            ("SQUARE_WEBHOOK_SIGNATURE_KEY", "square-receiver-key"),
            (
                "SQUARE_NOTIFICATION_URL",
                "https://hooks.example.com/webhooks/square",
            ),
            ("DISCORD_PUBLIC_KEY", &discord_key),
            ("STANDARD_WEBHOOK_PUBLIC_KEY", &standard_key),
        ],
    );
    let ts = now();

    let body = r#"{"event":"charge.success","data":{"id":1,"reference":"r1"}}"#;
    let signature = tower_webhook::paystack::sign(b"sk_test_receiver", body.as_bytes());
    let reply = harness::post(
        &receiver.url("/webhooks/paystack"),
        &[("x-paystack-signature", &signature)],
        body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

    let params = [("MessageSid", "SM1"), ("MessageStatus", "sent")];
    let signature = tower_webhook::twilio::sign(
        b"twilio-receiver-token",
        "https://hooks.example.com/webhooks/twilio",
        &params,
    );
    let reply = harness::post(
        &receiver.url("/webhooks/twilio"),
        &[("x-twilio-signature", &signature)],
        "MessageSid=SM1&MessageStatus=sent",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

    let body = r#"{"merchant_id":"M","type":"payment.created","event_id":"sq-1","data":{}}"#;
    let signature = tower_webhook::square::sign(
        b"square-receiver-key",
        "https://hooks.example.com/webhooks/square",
        body.as_bytes(),
    );
    let reply = harness::post(
        &receiver.url("/webhooks/square"),
        &[("x-square-hmacsha256-signature", &signature)],
        body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

    let body = r#"{"id":"int-1","type":2,"application_id":"a"}"#;
    let signature = tower_webhook::discord::sign(&SEED, ts, body.as_bytes());
    let stamp = ts.to_string();
    let reply = harness::post(
        &receiver.url("/webhooks/discord"),
        &[
            ("x-signature-ed25519", &signature),
            ("x-signature-timestamp", &stamp),
        ],
        body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

    // Standard Webhooks with only a public key configured: v1a.
    let body = r#"{"type":"invoice.paid"}"#;
    let signature = tower_webhook::standard::sign_v1a(&SEED, "msg_v1a", ts, body.as_bytes());
    let reply = harness::post(
        &receiver.url("/webhooks/standard"),
        &[
            ("webhook-id", "msg_v1a"),
            ("webhook-timestamp", &stamp),
            ("webhook-signature", &signature),
        ],
        body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

    // Slack's url_verification: answered by the layer, no handler run.
    let body = r#"{"type":"url_verification","challenge":"c-1"}"#;
    let signature = tower_webhook::slack::sign(b"slack-receiver-secret", ts, body.as_bytes());
    let reply = harness::post(
        &receiver.url("/webhooks/slack"),
        &[
            ("x-slack-signature", &signature),
            ("x-slack-request-timestamp", &stamp),
        ],
        body,
    )
    .await;
    assert_eq!(
        (reply.status, reply.text()),
        (StatusCode::OK, r#"{"challenge":"c-1"}"#)
    );

    let mut seen = events(&receiver).await;
    seen.sort();
    let paystack_digest =
        hex_sha256(br#"{"event":"charge.success","data":{"id":1,"reference":"r1"}}"#);
    let twilio_digest = hex_sha256(b"MessageSid=SM1&MessageStatus=sent");
    let expected = [
        ("discord", "int-1".to_owned()),
        ("paystack", paystack_digest),
        ("square", "sq-1".to_owned()),
        ("standard", "msg_v1a".to_owned()),
        ("twilio", twilio_digest),
    ];
    let expected: Vec<(String, String)> = expected
        .into_iter()
        .map(|(s, id)| (s.to_owned(), id))
        .collect();
    assert_eq!(seen, expected);
}

fn hex_sha256(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A Numero delivery signed with `secret`: its status.
async fn numero_delivery(receiver: &ReceiverProcess, id: &str, secret: &str) -> StatusCode {
    let body = harness::numero_body(id);
    let signature = tower_webhook::numero::sign(secret.as_bytes(), body.as_bytes());
    let reply = harness::post(
        &receiver.url("/webhooks/numero"),
        &[("x-webhook-signature", &signature)],
        body,
    )
    .await;
    reply.status
}

/// Whether `line` shows a secret the receiver made up: a `demo_…` secret,
/// Standard's `whsec_…` form of one, or Discord's demo signing key.
fn shows_a_made_up_secret(line: &str) -> bool {
    line.contains("demo_") || line.contains("whsec_") || line.contains("signing key")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_loopback_only_configured_providers_are_mounted_and_no_secret_is_printed() {
    let secret = harness::NUMERO_SECRET;
    let receiver = ReceiverProcess::start_on(
        "0.0.0.0:0",
        &["--store", "memory"],
        &[
            ("NUMERO_WEBHOOK_SECRET", secret),
            ("ADMIN_TOKEN", "some-token"),
        ],
    );
    assert_eq!(
        numero_delivery(&receiver, "evt_off_loopback", secret).await,
        StatusCode::OK
    );

    // An unconfigured provider has no route, so no secret to guess.
    // Every built-in scheme has a route, named as the scheme.
    let names = tower_webhook::custom::RESERVED_NAMES;
    for name in names.iter().filter(|name| **name != "numero") {
        let reply = harness::post(&receiver.url(&format!("/webhooks/{name}")), &[], "{}").await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "/webhooks/{name}: {}",
            reply.text()
        );
    }

    let printed = receiver.printed();
    assert!(
        printed.iter().any(|line| line.contains("/webhooks/numero")),
        "{printed:?}"
    );
    for line in &printed {
        assert!(
            !line.contains(secret),
            "the configured secret was printed: {line}"
        );
        assert!(
            !shows_a_made_up_secret(line),
            "a secret was printed: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_loopback_demo_secrets_say_so_and_a_configured_secret_is_never_printed() {
    let secret = harness::NUMERO_SECRET;
    let receiver =
        ReceiverProcess::start(&["--store", "memory"], &[("NUMERO_WEBHOOK_SECRET", secret)]);
    assert_eq!(
        numero_delivery(&receiver, "evt_loopback", secret).await,
        StatusCode::OK
    );

    let printed = receiver.printed();
    for line in &printed {
        assert!(
            !line.contains(secret),
            "the configured secret was printed: {line}"
        );
        // One word: nothing to warn about.
        assert!(!line.contains("NUMERO_WEBHOOK_SECRET_FILE"), "{line}");
    }
    // The unset ones are demos, and the log says they are loopback-only.
    let demo = printed
        .iter()
        .find(|line| line.starts_with("GITHUB_WEBHOOK_SECRET ") && line.contains("demo_"))
        .unwrap_or_else(|| panic!("no demo secret for GitHub: {printed:?}"));
    assert!(demo.contains("loopback-only demo"), "{demo}");
    let demo_secret = demo
        .split_whitespace()
        .find(|word| word.starts_with("demo_"))
        .unwrap();
    let body = r#"{"action":"opened","number":3}"#;
    let signature = tower_webhook::github::sign(demo_secret.as_bytes(), body.as_bytes());
    let reply = harness::post(
        &receiver.url("/webhooks/github"),
        &[("x-hub-signature-256", &signature)],
        body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}
