//! Metrics (feature `metrics`) as an operator reads them: the example
//! receiver as a real child process gets real signed deliveries, then its
//! `GET /metrics` (Prometheus text format) must show each outcome, the
//! histograms and, queued, the attempts and the job gauges. In process: a
//! handler that panics or whose client goes away, read from a Prometheus
//! recorder installed in this test binary; and `QueueAdmin::counts_by_scheme`
//! on memory, a real SQLite file and a real Redis.

#[path = "harness/mod.rs"]
mod harness;
#[path = "support/receiver_process.rs"]
mod receiver_process;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use harness::TempDir;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt as _;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use receiver_process::ReceiverProcess;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tower_http::catch_panic::CatchPanicLayer;
use tower_webhook::metrics::{
    BODY_BYTES, BODY_BYTES_BUCKETS, HANDLER_DURATION_BUCKETS, HANDLER_DURATION_SECONDS,
};
use tower_webhook::numero::{Numero, NumeroEvent};
use tower_webhook::queue::{Delivery, JobOutcome, JobQueue, QueueAdmin, QueueCounts, TakeRequest};
use tower_webhook::store::SqliteStore;
use tower_webhook::{EventId, IdempotencyKey, MemoryQueue, VerifiedEvent, WebhookLayer};

/// Every wait on the receiver ends by itself.
const WAIT: Duration = Duration::from_secs(20);

fn env() -> [(&'static str, &'static str); 1] {
    [("NUMERO_WEBHOOK_SECRET", harness::NUMERO_SECRET)]
}

/// Posts `body` to the receiver's Numero route, signed with the receiver's
/// secret, or with `signature` when one is given ("" sends none).
async fn post_numero(
    receiver: &ReceiverProcess,
    body: &str,
    signature: Option<&str>,
) -> harness::Reply {
    let signed = tower_webhook::numero::sign(harness::NUMERO_SECRET.as_bytes(), body.as_bytes());
    let signature = signature.unwrap_or(&signed);
    let headers: &[(&str, &str)] = if signature.is_empty() {
        &[]
    } else {
        &[("x-webhook-signature", signature)]
    };
    harness::post(&receiver.url("/webhooks/numero"), headers, body.to_owned()).await
}

/// Posts `body` with its amount changed under the signature of the
/// original: a forgery. Answers the forged body.
async fn post_forged(receiver: &ReceiverProcess, body: &str) -> String {
    let forged = body.replace("1000.0", "9000.0");
    let signed = tower_webhook::numero::sign(harness::NUMERO_SECRET.as_bytes(), body.as_bytes());
    let reply = post_numero(receiver, &forged, Some(&signed)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error(), "signature_mismatch");
    forged
}

/// `GET /metrics`, as text.
async fn scrape(receiver: &ReceiverProcess) -> String {
    let get = harness::client().get(receiver.url("/metrics").parse().unwrap());
    let response = tokio::time::timeout(harness::PATIENCE, get)
        .await
        .expect("no answer in time")
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// Scrapes until every line of `lines` is in the text, for at most
/// [`WAIT`]; the last text.
async fn scrape_until(receiver: &ReceiverProcess, lines: &[String]) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = scrape(receiver).await;
        let missing: Vec<&String> = lines.iter().filter(|l| !has_line(&text, l)).collect();
        if missing.is_empty() {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "/metrics never showed {missing:#?}\n{text}\nreceiver printed {:?}",
            receiver.printed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

fn assert_lines(text: &str, lines: &[String]) {
    for line in lines {
        assert!(has_line(text, line), "no line {line:?} in\n{text}");
    }
}

fn delivered(scheme: &str, outcome: &str, n: u64) -> String {
    format!(r#"webhook_deliveries_total{{scheme="{scheme}",outcome="{outcome}"}} {n}"#)
}

fn attempts(result: &str, n: u64) -> String {
    format!(r#"webhook_job_attempts_total{{scheme="numero",result="{result}"}} {n}"#)
}

fn jobs(state: &str, n: u64) -> String {
    format!(r#"webhook_queue_jobs{{scheme="numero",state="{state}"}} {n}"#)
}

/// The exact `webhook_body_bytes` lines for bodies of these sizes.
fn body_histogram(scheme: &str, sizes: &[usize]) -> Vec<String> {
    let mut lines: Vec<String> = BODY_BYTES_BUCKETS
        .iter()
        .map(|&bound| {
            let within = sizes.iter().filter(|&&size| size as f64 <= bound).count();
            format!(r#"webhook_body_bytes_bucket{{scheme="{scheme}",le="{bound}"}} {within}"#)
        })
        .collect();
    let (n, sum) = (sizes.len(), sizes.iter().sum::<usize>());
    lines.push(format!(
        r#"webhook_body_bytes_bucket{{scheme="{scheme}",le="+Inf"}} {n}"#
    ));
    lines.push(format!(
        r#"webhook_body_bytes_sum{{scheme="{scheme}"}} {sum}"#
    ));
    lines.push(format!(
        r#"webhook_body_bytes_count{{scheme="{scheme}"}} {n}"#
    ));
    lines
}

/// `webhook_handler_duration_seconds` as a Prometheus histogram of `n`
/// samples: a `_bucket` line per configured bound, `+Inf`, `_sum`, `_count`.
fn assert_duration_histogram(text: &str, scheme: &str, n: u64) {
    for bound in HANDLER_DURATION_BUCKETS {
        let prefix = format!(
            r#"webhook_handler_duration_seconds_bucket{{scheme="{scheme}",le="{bound}"}} "#
        );
        assert!(
            text.lines().any(|l| l.starts_with(&prefix)),
            "no {prefix:?} in\n{text}"
        );
    }
    assert_lines(
        text,
        &[
            format!(
                r#"webhook_handler_duration_seconds_bucket{{scheme="{scheme}",le="+Inf"}} {n}"#
            ),
            format!(r#"webhook_handler_duration_seconds_count{{scheme="{scheme}"}} {n}"#),
        ],
    );
    let sum = format!(r#"webhook_handler_duration_seconds_sum{{scheme="{scheme}"}} "#);
    let sum = text
        .lines()
        .find_map(|l| l.strip_prefix(&sum))
        .unwrap_or_else(|| panic!("no {sum:?} in\n{text}"));
    assert!(sum.parse::<f64>().unwrap() >= 0.0, "{sum}");
    assert!(
        !text.contains("webhook_handler_duration_seconds{"),
        "a summary, not a histogram:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_deliveries_are_counted_by_outcome() {
    let receiver = ReceiverProcess::start(&["--store", "memory"], &env());
    let body = harness::numero_body("evt_metrics_1");
    let first = post_numero(&receiver, &body, None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let again = post_numero(&receiver, &body, None).await;
    assert_eq!(again.text(), r#"{"status":"duplicate"}"#);
    let forged = post_forged(&receiver, &body).await;
    let unsigned = post_numero(&receiver, &body, Some("")).await;
    assert_eq!(unsigned.error(), "missing_signature");

    let text = scrape(&receiver).await;
    assert_lines(
        &text,
        &[
            delivered("numero", "processed", 1),
            delivered("numero", "duplicate", 1),
            delivered("numero", "signature_mismatch", 1),
            delivered("numero", "missing_signature", 1),
            // Every outcome exists from the first delivery on, at 0.
            delivered("numero", "handler_failed", 0),
            delivered("numero", "cancelled", 0),
            delivered("numero", "in_flight", 0),
            delivered("numero", "body_timeout", 0),
            delivered("numero", "accepted", 0),
        ],
    );
    assert_duration_histogram(&text, "numero", 1);
    // The missing signature is answered from the headers: its body is
    // never read, so three bodies, the forged one among them.
    assert_lines(
        &text,
        &body_histogram("numero", &[body.len(), body.len(), forged.len()]),
    );
    assert!(!text.contains("webhook_job_attempts_total{"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_handler_failures_are_counted() {
    let receiver =
        ReceiverProcess::start(&["--store", "memory", "--handler-fail-first", "1"], &env());
    let body = harness::numero_body("evt_metrics_fail");
    let failed = post_numero(&receiver, &body, None).await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    let retried = post_numero(&receiver, &body, None).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.text());

    let text = scrape(&receiver).await;
    assert_lines(
        &text,
        &[
            delivered("numero", "handler_failed", 1),
            delivered("numero", "processed", 1),
            delivered("numero", "duplicate", 0),
        ],
    );
    assert_duration_histogram(&text, "numero", 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_attempts_and_job_gauges_are_counted() {
    let receiver = ReceiverProcess::start(
        &[
            "--store",
            "memory",
            "--queued",
            "--handler-fail-first",
            "1",
            "--retry-base-ms",
            "20",
        ],
        &env(),
    );
    let body = harness::numero_body("evt_metrics_queued");
    let accepted = post_numero(&receiver, &body, None).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.text());
    let again = post_numero(&receiver, &body, None).await;
    assert_eq!(again.text(), r#"{"status":"duplicate"}"#);
    let forged = post_forged(&receiver, &body).await;

    // The first attempt fails, the retry (about 20 ms later) succeeds, and
    // the gauges catch up within about a second.
    let text = scrape_until(
        &receiver,
        &[
            attempts("failed", 1),
            attempts("succeeded", 1),
            jobs("pending", 0),
            jobs("running", 0),
            jobs("dead", 0),
        ],
    )
    .await;
    assert_lines(
        &text,
        &[
            delivered("numero", "accepted", 1),
            delivered("numero", "duplicate", 1),
            delivered("numero", "signature_mismatch", 1),
            // Queued, the layer runs no handler: attempts count instead.
            delivered("numero", "processed", 0),
        ],
    );
    for result in ["dead_lettered", "timed_out", "lost_lease", "aborted"] {
        assert!(!text.contains(&format!(r#"result="{result}""#)), "{text}");
    }
    assert_duration_histogram(&text, "numero", 2);
    assert_lines(
        &text,
        &body_histogram("numero", &[body.len(), body.len(), forged.len()]),
    );
}

/// This test binary's own Prometheus recorder, with the receiver's buckets.
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(HANDLER_DURATION_SECONDS.into()),
                HANDLER_DURATION_BUCKETS,
            )
            .unwrap()
            .set_buckets_for_metric(Matcher::Full(BODY_BYTES.into()), BODY_BYTES_BUCKETS)
            .unwrap()
            .install_recorder()
            .unwrap()
    })
}

/// Renders until `line` shows, for at most [`harness::PATIENCE`].
async fn rendered_until(line: &str) -> String {
    let deadline = Instant::now() + harness::PATIENCE;
    loop {
        let text = recorder().render();
        if has_line(&text, line) {
            return text;
        }
        assert!(Instant::now() < deadline, "never {line:?} in\n{text}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn panics(VerifiedEvent(_): VerifiedEvent<NumeroEvent>) -> StatusCode {
    panic!("the handler panicked on purpose")
}

fn raw_numero_request(path: &str, body: &str) -> String {
    let signature = harness::numero_signature(body.as_bytes());
    format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nx-webhook-signature: {signature}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_and_abandoned_handlers_are_counted() {
    recorder(); // before the layers see their first delivery
    let r = harness::start().await;

    // A panic turned into a 500 by a catch-panic layer inside ours.
    r.seen.set(harness::Mode::Panic);
    let body = harness::numero_body("evt_panic_caught");
    let sig = harness::numero_signature(body.as_bytes());
    let reply = harness::post(
        &r.url("/numero/caught"),
        &[("x-webhook-signature", &sig)],
        body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    rendered_until(&delivered("numero", "handler_failed", 1)).await;

    // A catch-panic layer outside ours: it catches the panic as it unwinds
    // through our layer, and drops the request only afterwards.
    let layer = WebhookLayer::new(Numero, harness::NUMERO_SECRET).unwrap();
    let app = Router::new()
        .route("/outside", post(panics).route_layer(layer))
        .layer(CatchPanicLayer::new());
    let outside = harness::serve(app).await;
    let body = harness::numero_body("evt_panic_outside");
    let sig = harness::numero_signature(body.as_bytes());
    let url = format!("http://{outside}/outside");
    let reply = harness::post(&url, &[("x-webhook-signature", &sig)], body).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    rendered_until(&delivered("numero", "handler_failed", 2)).await;

    // A panic unwinding through the layer: the connection dies with it.
    let body = harness::numero_body("evt_panic_raw");
    let (status, _) = harness::raw(r.addr, raw_numero_request("/numero", &body).as_bytes()).await;
    assert_eq!(status, 0, "no response: the connection task panicked");
    rendered_until(&delivered("numero", "handler_failed", 3)).await;

    // A client that goes away while the handler runs.
    let started = Arc::new(Notify::new());
    r.seen.set(harness::Mode::Hold {
        started: started.clone(),
        release: Arc::new(Notify::new()),
    });
    let body = harness::numero_body("evt_gone");
    let mut stream = TcpStream::connect(r.addr).await.unwrap();
    let request = raw_numero_request("/numero", &body);
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::timeout(harness::PATIENCE, started.notified())
        .await
        .expect("the handler started");
    drop(stream);
    let text = rendered_until(&delivered("numero", "cancelled", 1)).await;
    assert_lines(
        &text,
        &[
            delivered("numero", "handler_failed", 3),
            delivered("numero", "processed", 0),
        ],
    );
    assert_duration_histogram(&text, "numero", 4);
    assert_eq!(r.seen.runs(), 3);
}

// --- QueueAdmin::counts_by_scheme on every backend ----------------------------

fn key(scheme: &'static str, id: &str) -> IdempotencyKey {
    IdempotencyKey::new(scheme, &EventId::new(id).unwrap())
}

fn delivery(scheme: &str, id: &str) -> Delivery {
    Delivery {
        scheme: scheme.to_owned(),
        event_id: id.to_owned(),
        method: Method::POST,
        uri: "/webhooks".parse().unwrap(),
        headers: HeaderMap::new(),
        body: Bytes::from_static(b"{}"),
        order_key: None,
    }
}

fn counts(pending: u64, running: u64, dead: u64) -> QueueCounts {
    QueueCounts {
        pending,
        running,
        dead,
    }
}

/// Two `numero` jobs (one taken: running), one `github` job made a dead
/// letter, one `stripe` job pending: each scheme's counts, sorted by name,
/// adding up to `counts`.
async fn counts_by_scheme_follow_the_jobs<Q: QueueAdmin>(queue: Q) {
    assert_eq!(queue.counts_by_scheme().await.unwrap(), Vec::new());
    for (scheme, id) in [
        ("numero", "n1"),
        ("numero", "n2"),
        ("github", "g1"),
        ("stripe", "s1"),
    ] {
        queue
            .accept(&key(scheme, id), delivery(scheme, id))
            .await
            .unwrap();
    }
    let take = |scheme: &str| {
        TakeRequest::new(
            Arc::from(vec![Box::from(scheme)]),
            1,
            Duration::from_secs(3600),
        )
    };
    let running = queue.take(take("numero")).await.unwrap();
    assert_eq!(running.jobs.len(), 1);
    let mut github = queue.take(take("github")).await.unwrap();
    let dead = JobOutcome::Dead {
        error: "handler answered 500".into(),
        retain: Duration::from_secs(3600),
    };
    let lease = github.jobs.pop().unwrap().lease;
    assert!(queue.finish(lease, dead).await.unwrap());

    let by_scheme = queue.counts_by_scheme().await.unwrap();
    let listed: Vec<(&str, QueueCounts)> = by_scheme
        .iter()
        .map(|(scheme, counts)| (scheme.as_str(), *counts))
        .filter(|(_, counts)| *counts != QueueCounts::default())
        .collect();
    assert_eq!(
        listed,
        [
            ("github", counts(0, 0, 1)),
            ("numero", counts(1, 1, 0)),
            ("stripe", counts(1, 0, 0)),
        ]
    );
    let total = queue.counts().await.unwrap();
    assert_eq!(total, counts(2, 1, 1));

    // The running job done: numero has one pending job left.
    let lease = running.jobs.into_iter().next().unwrap().lease;
    let done = JobOutcome::Done {
        ttl: Duration::from_secs(3600),
    };
    assert!(queue.finish(lease, done).await.unwrap());
    let by_scheme = queue.counts_by_scheme().await.unwrap();
    let numero = by_scheme.iter().find(|(scheme, _)| scheme == "numero");
    assert_eq!(numero.map(|(_, c)| *c), Some(counts(1, 0, 0)));
    assert!(
        by_scheme.windows(2).all(|w| w[0].0 < w[1].0),
        "sorted by scheme: {by_scheme:?}"
    );
}

#[tokio::test]
async fn counts_by_scheme_in_memory() {
    counts_by_scheme_follow_the_jobs(MemoryQueue::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_by_scheme_in_a_sqlite_file() {
    let dir = TempDir::with_label("metrics-counts");
    let path = dir.join("webhooks.db");
    let store = SqliteStore::open(&path).unwrap();
    counts_by_scheme_follow_the_jobs(store).await;
    // The counts are the file's: a second store on it reads the same.
    let reopened = SqliteStore::open(&path).unwrap();
    let numero = reopened.counts_by_scheme().await.unwrap();
    assert!(
        numero.contains(&("numero".to_owned(), counts(1, 0, 0))),
        "{numero:?}"
    );
}

#[cfg(feature = "redis")]
#[path = "support/redis_server.rs"]
mod redis_server;

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_by_scheme_on_redis() {
    let server = redis_server::RedisServer::start();
    let store = tower_webhook::RedisStore::connect(&server.url())
        .await
        .unwrap();
    counts_by_scheme_follow_the_jobs(store.clone()).await;
    // Redis remembers every scheme it accepted: stripe, its one job done,
    // is still listed, at zeros.
    let request = TakeRequest::new(
        Arc::from(vec![Box::from("stripe")]),
        1,
        Duration::from_secs(3600),
    );
    let stripe = queue_job(store.take(request).await.unwrap().jobs);
    let done = JobOutcome::Done {
        ttl: Duration::from_secs(3600),
    };
    assert!(store.finish(stripe, done).await.unwrap());
    assert_eq!(
        store.counts_by_scheme().await.unwrap(),
        [
            ("github".to_owned(), counts(0, 0, 1)),
            ("numero".to_owned(), counts(1, 0, 0)),
            ("stripe".to_owned(), counts(0, 0, 0)),
        ]
    );

    // One scheme under a prefix: its dead letters are counted in one step.
    let single = tower_webhook::RedisStore::builder()
        .prefix("single:")
        .connect(&server.url())
        .await
        .unwrap();
    single
        .accept(&key("numero", "x1"), delivery("numero", "x1"))
        .await
        .unwrap();
    let request = TakeRequest::new(
        Arc::from(vec![Box::from("numero")]),
        1,
        Duration::from_secs(3600),
    );
    let lease = queue_job(single.take(request).await.unwrap().jobs);
    let dead = JobOutcome::Dead {
        error: "handler answered 500".into(),
        retain: Duration::from_secs(3600),
    };
    assert!(single.finish(lease, dead).await.unwrap());
    assert_eq!(
        single.counts_by_scheme().await.unwrap(),
        [("numero".to_owned(), counts(0, 0, 1))]
    );
}

/// The lease of the one job taken.
#[cfg(feature = "redis")]
fn queue_job<L>(jobs: Vec<tower_webhook::queue::Job<L>>) -> L {
    let [job] = <[_; 1]>::try_from(jobs).unwrap_or_else(|_| panic!("one job taken"));
    job.lease
}
