//! End to end with the providers' own libraries: `tests/py/deliver.py`
//! signs deliveries with `slack_sdk`, `twilio`, `standardwebhooks` and
//! PyNaCl (Discord; Standard Webhooks `v1a`) and posts them to a real
//! server on 127.0.0.1; every one must be answered 2xx and run its handler
//! once (handshakes: answered, handler not run).
//!
//! `scripts/test.sh` installs the packages. Without `python3` or any of
//! them this test fails, on purpose: a skipped check would read as passed.
#![cfg(feature = "ed25519")]

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use tower_webhook::discord::{Discord, DiscordEvent};
use tower_webhook::slack::{Slack, SlackEvent};
use tower_webhook::standard::{Standard, StandardEvent};
use tower_webhook::twilio::{Twilio, TwilioEvent};
use tower_webhook::{Scheme, VerifiedEvent, WebhookLayer, sign};

// The secrets tests/py/deliver.py signs with.
const SLACK_SECRET: &str = "slack-e2e-signing-secret";
const TWILIO_TOKEN: &str = "twilio-e2e-auth-token";
const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const STANDARD_SEED: [u8; 32] = [7; 32];
const DISCORD_SEED: [u8; 32] = [9; 32];

type Runs = Arc<Mutex<Vec<String>>>;

/// A route for `scheme` whose handler records `<name>:<what>`.
fn route<Sc, F>(runs: &Runs, path: &str, layer: WebhookLayer<Sc>, what: F) -> Router
where
    Sc: Scheme,
    F: Fn(&Sc::Event) -> String + Clone + Send + Sync + 'static,
{
    let runs = Arc::clone(runs);
    let name = path.trim_start_matches('/').to_owned();
    let handler = move |VerifiedEvent(event): VerifiedEvent<Sc::Event>| {
        let line = format!("{name}:{}", what(&event));
        let runs = Arc::clone(&runs);
        async move {
            runs.lock().unwrap().push(line);
            "ok"
        }
    };
    Router::new().route(path, post(handler).route_layer(layer))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_libraries_sign_what_the_layer_verifies() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let runs: Runs = Arc::default();
    let standard = WebhookLayer::builder(Standard::new())
        .secret(STANDARD_SECRET)
        .secret(tower_webhook::standard::encode_public_key(&STANDARD_SEED))
        .build()
        .unwrap();
    let app = Router::new()
        .merge(route(
            &runs,
            "/slack",
            WebhookLayer::new(Slack::new(), SLACK_SECRET).unwrap(),
            |e: &SlackEvent| e.id.to_string(),
        ))
        .merge(route(
            &runs,
            "/twilio",
            WebhookLayer::new(Twilio::new(format!("{base}/twilio")), TWILIO_TOKEN).unwrap(),
            |e: &TwilioEvent| e.sid.as_deref().unwrap_or("json").to_owned(),
        ))
        .merge(route(&runs, "/standard", standard, |e: &StandardEvent| {
            e.id.to_string()
        }))
        .merge(route(
            &runs,
            "/discord",
            WebhookLayer::new(Discord::new(), sign::ed25519_public_key_hex(&DISCORD_SEED)).unwrap(),
            |e: &DiscordEvent| e.id.to_string(),
        ));
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/deliver.py");
    let url = base.clone();
    let run =
        tokio::task::spawn_blocking(move || Command::new("python3").arg(script).arg(url).output());
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the script finished in time")
        .unwrap()
        .expect("python3 runs (scripts/test.sh installs it and the packages)");
    server.abort();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tests/py/deliver.py failed ({}):\n{stdout}\n{stderr}\n\
         (install the libraries with: python3 -m pip install slack_sdk twilio standardwebhooks pynacl)",
        output.status
    );
    let mut seen = runs.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            "discord:int_e2e",
            "slack:Ev0E2E",
            "standard:msg_e2e_v1",
            "standard:msg_e2e_v1a",
            "twilio:SM0e2e",
            "twilio:json",
        ],
        "{stdout}"
    );
}
