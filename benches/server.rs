//! The servers `scripts/load.sh` compares with the example receiver: one
//! axum route, bare, behind the webhook layer, or hand-written.
//!
//! ```text
//! cargo bench -p tower-webhook-benches --bench server -- [--addr 127.0.0.1:3001] [--layer | --handwritten]
//! ```
//!
//! Without a flag, `POST /webhooks/numero` reads the body (its handler
//! takes `Bytes`) and answers 200 with an empty body, doing nothing else:
//! what axum and hyper cost on their own. With `--layer`, the same route
//! sits behind `WebhookLayer` (Numero, memory store, secret from
//! `NUMERO_WEBHOOK_SECRET`) and its handler takes the `VerifiedEvent` and
//! answers the same 200 (`--no-body-timeout`: without the body deadline):
//! the layer's cost alone, without the example
//! receiver's own work. With `--handwritten`, the route is the layer's
//! hand-written peer (`handwritten.rs`, signed with
//! `NUMERO_WEBHOOK_SECRET` too).
//!
//! A bench target rather than an example of the crate, so it is built with
//! the crate's default features (as a user's route would be), not with the
//! features its tests and examples turn on (`metrics`, `sqlite`).
//!
//! Run without `--addr` (as a plain `cargo bench` does) it prints its
//! usage and exits successfully.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http::StatusCode;
use tower_webhook::numero::{Numero, NumeroEvent};
use tower_webhook::{VerifiedEvent, WebhookLayer};

mod common;
mod handwritten;

const USAGE: &str = "usage: server --addr HOST:PORT [--layer [--no-body-timeout] | --handwritten]";

fn main() {
    let mut addr: Option<SocketAddr> = None;
    let mut route = "bare";
    let mut body_timeout = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => {} // passed by `cargo bench`
            "--addr" => addr = Some(args.next().and_then(|a| a.parse().ok()).expect(USAGE)),
            "--layer" => route = "layer",
            "--handwritten" => route = "handwritten",
            "--no-body-timeout" => body_timeout = false,
            other => panic!("unknown argument {other:?}; {USAGE}"),
        }
    }
    let Some(addr) = addr else {
        println!("{USAGE}");
        return;
    };
    let app = match route {
        "layer" => {
            let secret = std::env::var("NUMERO_WEBHOOK_SECRET")
                .expect("--layer needs NUMERO_WEBHOOK_SECRET");
            let mut builder = WebhookLayer::builder(Numero).secret(secret);
            if !body_timeout {
                builder = builder.body_timeout(None);
            }
            let layer = builder.build().expect("a usable secret");
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
        }
        "handwritten" => {
            if let Ok(secret) = std::env::var("NUMERO_WEBHOOK_SECRET") {
                handwritten::use_secret(&secret);
            }
            Router::new().route("/webhooks/numero", post(handwritten::handler))
        }
        _ => Router::new().route(
            "/webhooks/numero",
            post(|body: Bytes| async move {
                drop(body);
                StatusCode::OK
            }),
        ),
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .expect("the address is free");
            println!("listening on http://{addr}/webhooks/numero ({route})");
            axum::serve(listener, app).await.expect("the server runs");
        });
}
