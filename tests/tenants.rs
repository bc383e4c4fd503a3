//! Per-tenant secrets through real HTTP on 127.0.0.1: each tenant verifies
//! with its own secrets only, equal event ids of two tenants are two events,
//! a secret replaced while the server runs takes effect at once, and an
//! unknown tenant is answered from the headers alone. Every wait is bounded.

mod harness;

use std::sync::{Arc, Mutex};

use axum::routing::{MethodRouter, post};
use axum::{Extension, Router};
use http::{HeaderName, StatusCode};
use tower_webhook::numero::{Numero, NumeroEvent};
use tower_webhook::queue::{MemoryQueue, Worker};
use tower_webhook::{Tenant, TenantError, TenantFrom, TenantSecrets, VerifiedEvent, WebhookLayer};

use harness::{Reply, numero_body, post as post_to, raw, serve};

const ACME: &str = "whsec_acme_0123456789abcdef";
const GLOBEX: &str = "whsec_globex_0123456789abcdef";
const ACME_ROTATED: &str = "whsec_acme_rotated_0123456789";

/// What the handlers saw: (tenant, event id), in order.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

struct Server {
    addr: std::net::SocketAddr,
    seen: Seen,
    tenants: TenantSecrets,
}

impl Server {
    fn runs(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Posts `body` for `tenant`, signed with `secret`, on the header route
    /// (`by_path == false`) or the path route.
    async fn deliver(&self, by_path: bool, tenant: &str, secret: &str, body: &str) -> Reply {
        let signature = tower_webhook::numero::sign(secret.as_bytes(), body.as_bytes());
        let mut headers = vec![("x-webhook-signature", signature.as_str())];
        let url = if by_path {
            format!("http://{}/webhooks/{tenant}/numero", self.addr)
        } else {
            headers.push(("x-tenant", tenant));
            format!("http://{}/numero", self.addr)
        };
        post_to(&url, &headers, body.to_owned()).await
    }
}

/// A receiver with two routes on one tenant map: the tenant in the
/// `x-tenant` header (`/numero`), and in path segment 1
/// (`/webhooks/{tenant}/numero`).
async fn start() -> Server {
    let tenants = TenantSecrets::new(Numero);
    tenants
        .replace([("acme", [ACME]), ("globex", [GLOBEX])])
        .unwrap();
    let seen = Seen::default();
    let handler = |seen: Seen| {
        move |Extension(tenant): Extension<Tenant>,
              VerifiedEvent(event): VerifiedEvent<NumeroEvent>| {
            let seen = seen.clone();
            async move {
                let id = event.id.as_str().to_owned();
                seen.lock().unwrap().push((tenant.as_str().to_owned(), id));
                StatusCode::OK
            }
        }
    };
    let by_header = WebhookLayer::builder(Numero)
        .tenants(
            TenantFrom::header(HeaderName::from_static("x-tenant")),
            tenants.clone(),
        )
        .build()
        .unwrap();
    let by_path = WebhookLayer::builder(Numero)
        .tenants(TenantFrom::path_segment(1), tenants.clone())
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/numero",
            post(handler(seen.clone())).route_layer(by_header),
        )
        .route(
            "/webhooks/{tenant}/numero",
            post(handler(seen.clone())).route_layer(by_path),
        );
    let addr = serve(app).await;
    Server {
        addr,
        seen,
        tenants,
    }
}

#[tokio::test]
async fn each_tenant_verifies_with_its_own_secret_and_keys_its_own_events() {
    let server = start().await;
    for by_path in [false, true] {
        // Each route has its own store, so the same ids serve both rounds.
        let before = server.runs();
        let body = numero_body("evt_same");

        let reply = server.deliver(by_path, "acme", GLOBEX, &body).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{by_path}");
        assert_eq!(reply.error(), "signature_mismatch");
        let reply = server.deliver(by_path, "globex", ACME, &body).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{by_path}");
        assert_eq!(server.runs(), before);

        let reply = server.deliver(by_path, "acme", ACME, &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{by_path}: {}", reply.text());
        // The same event id from another tenant is another event.
        let reply = server.deliver(by_path, "globex", GLOBEX, &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{by_path}: {}", reply.text());
        assert_eq!(server.runs(), before + 2);

        // A redelivery per tenant is a duplicate.
        for (tenant, secret) in [("acme", ACME), ("globex", GLOBEX)] {
            let reply = server.deliver(by_path, tenant, secret, &body).await;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(reply.text(), r#"{"status":"duplicate"}"#);
        }
        assert_eq!(server.runs(), before + 2);
        let seen = server.seen.lock().unwrap()[before..].to_vec();
        let want = |t: &str| (t.to_owned(), "evt_same".to_owned());
        assert_eq!(seen, [want("acme"), want("globex")]);
    }
}

#[tokio::test]
async fn a_secret_replaced_while_serving_takes_effect_at_once() {
    let server = start().await;
    let (first, second, third) = (
        numero_body("evt_1"),
        numero_body("evt_2"),
        numero_body("evt_3"),
    );
    let reply = server.deliver(true, "acme", ACME, &first).await;
    assert_eq!(reply.status, StatusCode::OK);

    // Rotate acme's secret, the server still running, the layer as built.
    server.tenants.insert("acme", [ACME_ROTATED]).unwrap();
    let reply = server.deliver(true, "acme", ACME, &second).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error(), "signature_mismatch");
    let reply = server.deliver(false, "acme", ACME_ROTATED, &second).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

    // A replacement with a bad secret is refused; the map in use stays.
    let refused = server.tenants.replace([
        ("acme", [ACME]),
        ("globex", ["whsec_globex_with_newline\n"]),
    ]);
    assert!(
        matches!(refused, Err(TenantError::Secret { ref tenant, .. }) if tenant == "globex"),
        "{refused:?}"
    );
    let reply = server.deliver(true, "acme", ACME, &third).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = server.deliver(true, "acme", ACME_ROTATED, &third).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = server.deliver(true, "globex", GLOBEX, &third).await;
    assert_eq!(reply.status, StatusCode::OK);

    // A whole replacement: globex left out is an unknown tenant now.
    server.tenants.replace([("acme", [ACME])]).unwrap();
    let reply = server
        .deliver(true, "acme", ACME, &numero_body("evt_4"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = server
        .deliver(false, "globex", GLOBEX, &numero_body("evt_4"))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error(), "unknown_tenant");
    assert_eq!(server.runs(), 5);
}

#[tokio::test]
async fn an_unknown_tenant_is_answered_before_the_body_is_read() {
    let server = start().await;
    let signature = tower_webhook::numero::sign(ACME.as_bytes(), b"{}");
    // Headers only, declaring a body that never comes: the answer must
    // come back anyway.
    for (path, tenant_header) in [
        ("/webhooks/nobody/numero", ""),
        ("/numero", "x-tenant: nobody\r\n"),
        ("/numero", ""),
        ("/numero", "x-tenant: acme\r\nx-tenant: globex\r\n"),
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{tenant_header}\
             x-webhook-signature: {signature}\r\ncontent-type: application/json\r\n\
             content-length: 1000000\r\n\r\n"
        );
        let (status, text) = raw(server.addr, head.as_bytes()).await;
        assert_eq!(status, 404, "{path} {tenant_header:?}: {text}");
        assert!(text.ends_with(r#"{"error":"unknown_tenant"}"#), "{text}");
    }
    // A tenant id the map could never hold (a `:`, too long) is unknown too.
    let long = "a".repeat(65);
    for tenant in ["ac:me", long.as_str()] {
        let reply = server
            .deliver(false, tenant, ACME, &numero_body("evt_x"))
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(server.runs(), 0);
}

#[test]
fn a_layer_refuses_fixed_secrets_with_tenants_and_another_scheme_s_map() {
    use tower_webhook::SecretError;
    let tenants = TenantSecrets::new(Numero);
    let both = WebhookLayer::builder(Numero)
        .secret(ACME)
        .tenants(TenantFrom::host(), tenants)
        .build();
    assert!(matches!(both, Err(SecretError::SecretsAndTenants)));
    let other = TenantSecrets::new(tower_webhook::numberotp::NumberOtp);
    let mismatched = WebhookLayer::builder(Numero)
        .tenants(TenantFrom::host(), other)
        .build();
    assert!(matches!(
        mismatched,
        Err(SecretError::TenantScheme {
            found: "numberotp",
            ..
        })
    ));
}

/// A queued layer on the path route (`/webhooks/{tenant}/numero`) for
/// acme and globex, whose jobs `worker` runs with `route`.
async fn serve_queued(worker: &Worker<MemoryQueue>, route: MethodRouter, seen: Seen) -> Server {
    let tenants = TenantSecrets::new(Numero);
    tenants
        .replace([("acme", [ACME]), ("globex", [GLOBEX])])
        .unwrap();
    let layer = WebhookLayer::builder(Numero)
        .tenants(TenantFrom::path_segment(1), tenants.clone())
        .queued(worker)
        .build()
        .unwrap();
    worker.handle(layer.job_handler(route.clone()));
    let app = Router::new().route("/webhooks/{tenant}/numero", route.route_layer(layer));
    Server {
        addr: serve(app).await,
        seen,
        tenants,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_deliveries_keep_their_tenant() {
    let worker = Worker::builder(MemoryQueue::new()).start();
    let seen = Seen::default();
    let record = seen.clone();
    let handler = move |tenant: Option<Extension<Tenant>>,
                        VerifiedEvent(event): VerifiedEvent<NumeroEvent>| {
        let record = record.clone();
        async move {
            let tenant = tenant.map_or(String::new(), |t| t.0.as_str().to_owned());
            let id = event.id.as_str().to_owned();
            record.lock().unwrap().push((tenant, id));
            StatusCode::OK
        }
    };
    let server = serve_queued(&worker, post(handler), seen).await;
    let body = numero_body("evt_q");
    for (tenant, secret) in [("acme", ACME), ("globex", GLOBEX)] {
        let reply = server.deliver(true, tenant, secret, &body).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    }
    let deadline = tokio::time::Instant::now() + harness::PATIENCE;
    while server.runs() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "jobs never ran");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut seen = server.seen.lock().unwrap().clone();
    seen.sort();
    let want = |t: &str| (t.to_owned(), "evt_q".to_owned());
    assert_eq!(seen, [want("acme"), want("globex")]);
    let reply = server.deliver(true, "acme", ACME, &body).await;
    assert_eq!(reply.text(), r#"{"status":"duplicate"}"#);
    worker.shutdown(std::time::Duration::from_secs(1)).await;
}

/// With `max_running_per_tenant(1)` and four workers, each tenant's jobs
/// run one at a time while the two tenants' jobs run beside each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cap_runs_one_job_of_a_tenant_at_a_time() {
    use std::collections::HashMap;
    let worker = Worker::builder(MemoryQueue::new())
        .concurrency(4)
        .max_running_per_tenant(1)
        .start();
    // Per tenant: (running now, most running at once); and overall.
    type Running = Arc<Mutex<(HashMap<String, (usize, usize)>, usize, usize)>>;
    let running = Running::default();
    let seen = Seen::default();
    let (record, track) = (seen.clone(), running.clone());
    let handler = move |Extension(tenant): Extension<Tenant>,
                        VerifiedEvent(event): VerifiedEvent<NumeroEvent>| {
        let (record, track) = (record.clone(), track.clone());
        async move {
            let tenant = tenant.as_str().to_owned();
            {
                let mut guard = track.lock().unwrap();
                let (per_tenant, now, most) = &mut *guard;
                let (mine, my_most) = per_tenant.entry(tenant.clone()).or_default();
                *mine += 1;
                *my_most = (*my_most).max(*mine);
                *now += 1;
                *most = (*most).max(*now);
            }
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            {
                let mut guard = track.lock().unwrap();
                let (per_tenant, now, _) = &mut *guard;
                per_tenant.get_mut(&tenant).unwrap().0 -= 1;
                *now -= 1;
            }
            record
                .lock()
                .unwrap()
                .push((tenant, event.id.as_str().to_owned()));
            StatusCode::OK
        }
    };
    let server = serve_queued(&worker, post(handler), seen).await;
    for n in 0..3 {
        for (tenant, secret) in [("acme", ACME), ("globex", GLOBEX)] {
            let body = numero_body(&format!("evt_{tenant}_{n}"));
            let reply = server.deliver(true, tenant, secret, &body).await;
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
        }
    }
    let deadline = tokio::time::Instant::now() + harness::PATIENCE;
    while server.runs() < 6 {
        assert!(tokio::time::Instant::now() < deadline, "jobs never ran");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (per_tenant, _, most) = running.lock().unwrap().clone();
    assert_eq!(per_tenant["acme"].1, 1, "acme's jobs one at a time");
    assert_eq!(per_tenant["globex"].1, 1, "globex's jobs one at a time");
    assert_eq!(most, 2, "the two tenants side by side");
    worker.shutdown(std::time::Duration::from_secs(1)).await;
}
