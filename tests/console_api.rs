//! The console's JSON API over real HTTP, on every backend with the admin
//! contract (memory, a real SQLite file, a real Redis): counts, dead
//! letters listed and read in full, replay, replay of a scheme, discard,
//! and who may call it (401 without the token, 403 for a cookie-carrying
//! write without the page's header).

#[path = "harness/mod.rs"]
mod harness;
#[path = "support/redis_server.rs"]
mod redis_server;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use tower_webhook::console::Console;
use tower_webhook::queue::{QueueCounts, QueueInspect, Worker};

use harness::queued::{self, quick_retries};

const TOKEN: &str = "console-api-token-0123456789";
const BEARER: &str = "Bearer console-api-token-0123456789";

async fn send(method: Method, url: &str, headers: &[(&str, &str)], body: &str) -> harness::Reply {
    harness::send(method, url, headers, body.to_owned()).await
}

fn json_of(reply: &harness::Reply) -> Value {
    serde_json::from_slice(&reply.body).unwrap_or_else(|_| panic!("not JSON: {}", reply.text()))
}

fn dead(dead: u64) -> QueueCounts {
    QueueCounts {
        pending: 0,
        running: 0,
        dead,
    }
}

/// The whole API on one backend.
async fn the_api_on<Q: QueueInspect>(queue: Q) {
    let receiver = queued::start(Worker::builder(queue).retry(quick_retries(1))).await;
    receiver.seen.script.lock().unwrap().fail_first = 100;
    let console = Console::new(receiver.worker.clone(), TOKEN).unwrap();
    let addr = harness::serve(axum::Router::new().nest("/console", console.router())).await;
    let url = |path: &str| format!("http://{addr}/console{path}");
    let get = |path: &str| {
        let url = url(path);
        async move { send(Method::GET, &url, &[("authorization", BEARER)], "").await }
    };
    let post = |path: &str, body: Value| {
        let url = url(path);
        async move {
            let body = body.to_string();
            let headers = [
                ("authorization", BEARER),
                ("content-type", "application/json"),
            ];
            send(Method::POST, &url, &headers, &body).await
        }
    };

    let bodies: Vec<String> = ["evt_a", "evt_b", "evt_c"]
        .iter()
        .map(|id| harness::numero_body(id))
        .collect();
    for body in &bodies[..2] {
        assert_eq!(receiver.deliver(body).await.status, StatusCode::ACCEPTED);
    }
    receiver.wait_counts(dead(2)).await;

    let counts = json_of(&get("/api/counts").await);
    assert_eq!(counts["dead"], 2, "{counts}");
    assert_eq!(
        counts["schemes"],
        json!([{"scheme":"numero","pending":0,"running":0,"dead":2}])
    );
    let letters = json_of(&get("/api/dead-letters").await);
    let keys: Vec<&str> = letters
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 2, "{letters}");
    for letter in letters.as_array().unwrap() {
        assert_eq!(letter["attempts"], 1);
        assert_eq!(letter["state"], "dead");
        assert_eq!(
            letter["last_error"],
            "handler answered 500 Internal Server Error"
        );
        assert!(
            letter["last_attempt_at_ms"].as_u64().unwrap()
                >= letter["accepted_at_ms"].as_u64().unwrap()
        );
    }
    assert_eq!(
        json_of(&get("/api/jobs?state=dead&limit=1").await)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(json_of(&get("/api/jobs?state=pending").await), json!([]));

    let full = get("/console/../api/dead-letter?key=numero:evt_a").await;
    assert_eq!(full.status, StatusCode::NOT_FOUND, "no path tricks");
    let full = json_of(&get("/api/dead-letter?key=numero:evt_a").await);
    assert_eq!(full["body"], bodies[0].as_str());
    assert_eq!(
        (full["method"].as_str(), full["uri"].as_str()),
        (Some("POST"), Some("/numero"))
    );
    let signature = harness::numero_signature(bodies[0].as_bytes());
    assert!(
        full["headers"]
            .as_array()
            .unwrap()
            .contains(&json!(["x-webhook-signature", signature])),
        "{full}"
    );
    assert_eq!(
        get("/api/dead-letter?key=numero:none").await.status,
        StatusCode::NOT_FOUND
    );

    // Who may call it.
    for (method, path) in [
        (Method::GET, "/api/counts"),
        (Method::POST, "/api/replay"),
        (Method::GET, ""),
    ] {
        let reply = send(method.clone(), &url(path), &[], r#"{"key":"numero:evt_a"}"#).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    let login = |token: &str| {
        let body = json!({ "token": token }).to_string();
        let url = url("/login");
        async move { send(Method::POST, &url, &[("x-console-request", "1")], &body).await }
    };
    assert_eq!(login("wrong").await.status, StatusCode::UNAUTHORIZED);
    let logged_in = login(TOKEN).await;
    assert_eq!(logged_in.status, StatusCode::NO_CONTENT);
    let set_cookie = logged_in.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("Path=/console;"), "{set_cookie}");
    assert!(
        !set_cookie.contains(TOKEN),
        "the cookie holds a digest, not the token"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    assert_eq!(
        send(Method::GET, &url("/api/counts"), &[("cookie", &cookie)], "")
            .await
            .status,
        StatusCode::OK
    );
    let replay_a = r#"{"key":"numero:evt_a"}"#;
    let forged = send(
        Method::POST,
        &url("/api/replay"),
        &[("cookie", &cookie)],
        replay_a,
    )
    .await;
    assert_eq!(
        forged.status,
        StatusCode::FORBIDDEN,
        "a cookie alone writes nothing"
    );
    let cross_site = [
        ("cookie", cookie.as_str()),
        ("x-console-request", "1"),
        ("sec-fetch-site", "cross-site"),
    ];
    let forged = send(Method::POST, &url("/api/replay"), &cross_site, replay_a).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let get_write = send(
        Method::GET,
        &url("/api/replay?key=numero:evt_a"),
        &[("authorization", BEARER)],
        "",
    )
    .await;
    assert_eq!(
        get_write.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "no write through a link"
    );
    receiver.wait_counts(dead(2)).await;

    // Replay, discard, replay of a scheme.
    receiver.seen.script.lock().unwrap().fail_first = 0;
    let page_write = [
        ("cookie", cookie.as_str()),
        ("x-console-request", "1"),
        ("content-type", "application/json"),
    ];
    let replayed = send(Method::POST, &url("/api/replay"), &page_write, replay_a).await;
    assert_eq!(replayed.status, StatusCode::ACCEPTED, "{}", replayed.text());
    receiver
        .wait_until("evt_a processed", |seen| seen.successes() == 1)
        .await;
    assert_eq!(
        post("/api/replay", json!({"key":"numero:evt_a"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        post("/api/discard", json!({"key":"numero:evt_b"}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        post("/api/discard", json!({"key":"numero:evt_b"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    receiver.wait_counts(dead(0)).await;
    assert_eq!(json_of(&get("/api/dead-letters").await), json!([]));

    receiver.seen.script.lock().unwrap().fail_first = 100;
    assert_eq!(
        receiver.deliver(&bodies[2]).await.status,
        StatusCode::ACCEPTED
    );
    receiver.wait_counts(dead(1)).await;
    receiver.seen.script.lock().unwrap().fail_first = 0;
    let bulk = post("/api/replay-scheme", json!({"scheme":"numero","max":10})).await;
    assert_eq!(json_of(&bulk), json!({"replayed": 1}));
    receiver
        .wait_until("evt_c processed", |seen| seen.successes() == 2)
        .await;
    receiver.wait_counts(dead(0)).await;
    assert_eq!(json_of(&get("/api/runs").await), json!({"runs": null}));
    assert_eq!(
        post("/api/replay", json!({"nokey":1})).await.status,
        StatusCode::BAD_REQUEST
    );

    // Text that is not a key names no dead letter: the same 404 as a key
    // with none under it.
    for not_a_key in ["nothing", "numero:", ":evt_a", "numero/bad tenant:evt_a"] {
        let no_dead_letter = json!({"error": "no_dead_letter"});
        let query = format!("/api/dead-letter?key={}", not_a_key.replace(' ', "%20"));
        let answers = [
            get(&query).await,
            post("/api/replay", json!({ "key": not_a_key })).await,
            post("/api/discard", json!({ "key": not_a_key })).await,
        ];
        for answer in answers {
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{not_a_key:?}");
            assert_eq!(json_of(&answer), no_dead_letter, "{not_a_key:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_on_memory() {
    the_api_on(tower_webhook::queue::MemoryQueue::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_on_sqlite() {
    let dir = harness::TempDir::with_label("console-api");
    the_api_on(tower_webhook::SqliteStore::open(dir.join("console.db")).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_on_redis() {
    let server = redis_server::RedisServer::start();
    the_api_on(
        tower_webhook::RedisStore::connect(&server.url())
            .await
            .unwrap(),
    )
    .await;
}
