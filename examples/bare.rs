//! The baseline for `scripts/load.sh`: one axum route that does nothing,
//! optionally behind the webhook layer.
//!
//! ```text
//! cargo run --release --example bare -- [--addr 127.0.0.1:3001] [--layer]
//! ```
//!
//! Without `--layer`, `POST /webhooks/numero` answers 200 with an empty body
//! and does no work at all: what axum and hyper cost on their own. With
//! `--layer`, the same route sits behind `WebhookLayer` (Numero, memory
//! store, secret from `NUMERO_WEBHOOK_SECRET`) and its handler takes the
//! `VerifiedEvent` and does nothing with it: the layer's cost alone, without
//! the example receiver's logging.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::post;
use http::StatusCode;
use tower_webhook::numero::{Numero, NumeroEvent};
use tower_webhook::{VerifiedEvent, WebhookLayer};

#[tokio::main]
async fn main() {
    let mut addr: SocketAddr = "127.0.0.1:3001".parse().expect("a valid address");
    let mut layered = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                addr = args
                    .next()
                    .and_then(|a| a.parse().ok())
                    .expect("--addr HOST:PORT")
            }
            "--layer" => layered = true,
            other => panic!("unknown argument {other:?}"),
        }
    }
    let app = if layered {
        let secret =
            std::env::var("NUMERO_WEBHOOK_SECRET").expect("--layer needs NUMERO_WEBHOOK_SECRET");
        let layer = WebhookLayer::new(Numero, secret).expect("a usable secret");
        Router::new().route(
            "/webhooks/numero",
            post(
                |VerifiedEvent(event): VerifiedEvent<NumeroEvent>| async move {
                    drop(event);
                    StatusCode::OK
                },
            )
            .layer(layer),
        )
    } else {
        Router::new().route("/webhooks/numero", post(|| async { StatusCode::OK }))
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("the address is free");
    println!(
        "listening on http://{addr}/webhooks/numero ({})",
        if layered { "behind the layer" } else { "bare" }
    );
    axum::serve(listener, app).await.expect("the server runs");
}
