//! The operator console in a real headless `chromium`, against the real
//! receiver as a child process on a real SQLite file:
//!
//! * without the token every console route answers 401;
//! * a handler failing every attempt makes a dead letter, which the page
//!   lists (after logging in through its form);
//! * a dead letter whose body carries `<script>` shown in full runs none
//!   of it (the script would set the title and a global);
//! * restarted on the same file with the handler succeeding, the row's
//!   replay button makes the event a processed one, and the row goes.
//!
//! Set `CONSOLE_SCREENSHOT=docs/console.png` to write the page's
//! screenshot there. Every wait is bounded.

#[path = "support/browser.rs"]
mod browser;
#[path = "harness/mod.rs"]
mod harness;
#[path = "support/receiver_process.rs"]
mod receiver_process;

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use http::{Method, StatusCode};
use receiver_process::ReceiverProcess;

const TOKEN: &str = "console-token-0123456789abcdef";

/// The console's routes, each of which must answer 401 without the token.
const ROUTES: [(Method, &str, &str); 11] = [
    (Method::GET, "/console", ""),
    (Method::GET, "/console/api/counts", ""),
    (Method::GET, "/console/api/jobs?state=pending", ""),
    (Method::GET, "/console/api/dead-letters", ""),
    (Method::GET, "/console/api/dead-letter?key=numero:evt_x", ""),
    (Method::GET, "/console/api/runs", ""),
    (
        Method::POST,
        "/console/api/replay",
        r#"{"key":"numero:evt_x"}"#,
    ),
    (
        Method::POST,
        "/console/api/replay-scheme",
        r#"{"scheme":"numero"}"#,
    ),
    (
        Method::POST,
        "/console/api/discard",
        r#"{"key":"numero:evt_x"}"#,
    ),
    (Method::POST, "/console/logout", ""),
    (Method::GET, "/console/no-such-route", ""),
];

async fn send(method: Method, url: &str, headers: &[(&str, &str)], body: &str) -> harness::Reply {
    harness::send(method, url, headers, body.to_owned()).await
}

fn start_receiver(db: &str, fail_first: &str) -> ReceiverProcess {
    ReceiverProcess::start(
        &[
            "--store",
            &format!("sqlite:{db}"),
            "--queued",
            "--max-attempts",
            "1",
            "--handler-fail-first",
            fail_first,
            "--quiet",
        ],
        &[
            ("ADMIN_TOKEN", TOKEN),
            ("NUMERO_WEBHOOK_SECRET", harness::NUMERO_SECRET),
        ],
    )
}

/// A Numero event `id` carrying `note` in its signed body.
async fn deliver(receiver: &ReceiverProcess, id: &str, note: &str) {
    let body = serde_json::json!({
        "id": id,
        "event": "TRANSFER_NOTIFICATION",
        "note": note,
        "data": { "TrxAmount": 1000.0, "Reference": "T4898" },
    })
    .to_string();
    let sig = harness::numero_signature(body.as_bytes());
    let reply = harness::post(
        &receiver.url("/webhooks/numero"),
        &[("x-webhook-signature", &sig)],
        body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
}

/// Polls `check` every 50 ms until it holds, or fails after `limit`.
async fn eventually<F: Future<Output = bool>>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn dead_keys(receiver: &ReceiverProcess) -> Vec<String> {
    let bearer = format!("Bearer {TOKEN}");
    let reply = send(
        Method::GET,
        &receiver.url("/dead-letters"),
        &[("authorization", &bearer)],
        "",
    )
    .await;
    let letters: Vec<serde_json::Value> = serde_json::from_slice(&reply.body).unwrap();
    letters
        .iter()
        .map(|l| l["key"].as_str().unwrap().to_owned())
        .collect()
}

/// The rows of the page's dead-letter table, by `data-key`, read in one
/// script (the page rebuilds its rows as it refreshes).
async fn rows(browser: &Client) -> Vec<String> {
    let keys = browser
        .execute(
            "return Array.from(document.querySelectorAll('#dead-letters tbody tr[data-key]'))
                 .map((row) => row.dataset.key).sort();",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(keys).unwrap()
}

/// Clicks what `css` finds, finding it again when a refresh replaced it
/// between the find and the click.
async fn click(browser: &Client, css: &str) {
    let deadline = Instant::now() + harness::PATIENCE;
    loop {
        let found = browser.find(Locator::Css(css)).await;
        match found {
            Ok(element) => match element.click().await {
                Ok(()) => return,
                Err(e) => assert!(Instant::now() < deadline, "{css}: {e}"),
            },
            Err(e) => assert!(Instant::now() < deadline, "{css}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_lists_a_dead_letter_runs_no_body_script_and_replays_it() {
    let dir = harness::TempDir::with_label("console");
    let db = dir.join("console.db").display().to_string();
    let receiver = start_receiver(&db, "1000");
    assert!(
        receiver
            .wait_printed(Duration::from_secs(5), |l| l
                .starts_with("console: /console"))
            .is_some(),
        "says at start where the console is: {:?}",
        receiver.printed()
    );

    for (method, path, body) in ROUTES {
        for headers in [
            vec![],
            vec![("authorization", "Bearer wrong-token")],
            vec![
                ("cookie", "tower_webhook_console=00"),
                ("x-console-request", "1"),
            ],
        ] {
            let reply = send(method.clone(), &receiver.url(path), &headers, body).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {headers:?}"
            );
            assert!(!reply.text().contains(TOKEN));
        }
    }

    deliver(&receiver, "evt_browser", "an ordinary note").await;
    let script = "<script>document.title='pwned';window.__pwned=1</script>\
                  <img src=x onerror=\"window.__pwned=2\">";
    deliver(&receiver, "evt_script", script).await;
    let both = ["numero:evt_browser", "numero:evt_script"];
    eventually("two dead letters", harness::PATIENCE, || async {
        let mut keys = dead_keys(&receiver).await;
        keys.sort();
        keys == both
    })
    .await;
    // The same file, the handler now succeeding.
    receiver.kill9();
    let receiver = start_receiver(&db, "0");

    let driver = browser::Driver::start();
    let profile = harness::TempDir::with_label("chromium-profile");
    let browser = driver.browser(&profile.0).await;
    browser.goto(&receiver.url("/console")).await.unwrap();
    let token = browser
        .wait()
        .at_most(harness::PATIENCE)
        .for_element(Locator::Css("#token"))
        .await
        .unwrap();
    token.send_keys(TOKEN).await.unwrap();
    browser
        .find(Locator::Css("#login-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let row = r#"#dead-letters tr[data-key="numero:evt_browser"]"#;
    browser
        .wait()
        .at_most(harness::PATIENCE)
        .for_element(Locator::Css(row))
        .await
        .expect("the page lists the dead letter");
    assert_eq!(rows(&browser).await, both);
    let counts = browser.find(Locator::Css("#count-dead")).await.unwrap();
    assert_eq!(counts.text().await.unwrap(), "2");
    if let Ok(path) = std::env::var("CONSOLE_SCREENSHOT") {
        let shot = browser.screenshot().await.unwrap();
        std::fs::write(path, shot).unwrap();
    }

    // The body in full, as text: its script runs nothing.
    click(
        &browser,
        r#"tr[data-key="numero:evt_script"] button[data-action="view"]"#,
    )
    .await;
    eventually("the body shown", harness::PATIENCE, || async {
        let text = browser
            .find(Locator::Css("#detail-body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.contains("<script>document.title='pwned'")
    })
    .await;
    let globals = browser
        .execute("return [document.title, typeof window.__pwned];", vec![])
        .await
        .unwrap();
    assert_eq!(
        globals,
        serde_json::json!(["tower-webhook console", "undefined"])
    );

    // Replayed from its row's button: processed, and the row goes.
    click(&browser, &format!(r#"{row} button[data-action="replay"]"#)).await;
    eventually("the row gone", harness::PATIENCE, || async {
        rows(&browser).await == ["numero:evt_script"]
    })
    .await;
    let bearer = format!("Bearer {TOKEN}");
    eventually("the event processed", harness::PATIENCE, || async {
        let reply = send(
            Method::GET,
            &receiver.url("/events"),
            &[("authorization", &bearer)],
            "",
        )
        .await;
        let runs: Vec<serde_json::Value> = serde_json::from_slice(&reply.body).unwrap();
        runs.iter()
            .any(|run| run["id"] == "evt_browser" && run["status"] == 200)
    })
    .await;
    assert_eq!(dead_keys(&receiver).await, ["numero:evt_script"]);
    let globals = browser
        .execute("return [document.title, typeof window.__pwned];", vec![])
        .await
        .unwrap();
    assert_eq!(
        globals,
        serde_json::json!(["tower-webhook console", "undefined"])
    );
    browser.close().await.unwrap();
}
