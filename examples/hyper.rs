//! `tower-webhook` in front of a plain hyper 1 service: no axum, no router.
//!
//! ```text
//! cargo run --example hyper -- [--addr 127.0.0.1:3001]
//! NUMERO_WEBHOOK_SECRET=<printed secret> cargo run --example send -- numero duplicate --url http://127.0.0.1:3001/
//! ```
//!
//! Every request to this server is taken as a Numero delivery: the layer
//! verifies, bounds and deduplicates it, and the service reads the typed
//! event and its id with `request.extensions().get::<Verified<NumeroEvent>>()`.
//! The secret comes from `NUMERO_WEBHOOK_SECRET`: its whole value, spaces
//! included. When it is unset and the address is a loopback one, a demo
//! secret is generated and printed; on any other address it must be set.

use std::convert::Infallible;
use std::env::VarError;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body::Body as _;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_webhook::numero::{Numero, NumeroEvent};
use tower_webhook::{Verified, WebhookLayer};

/// `--help` text.
const USAGE: &str = "\
A plain hyper server whose every request is a Numero webhook delivery.

Usage: cargo run --example hyper -- [--addr HOST:PORT]

Options:
  --addr HOST:PORT   address to listen on [default: 127.0.0.1:3001]
  -h, --help         print this help

Environment:
  NUMERO_WEBHOOK_SECRET   the secret, its whole value; unset on loopback, a demo secret
";

/// The variable the secrets come from, as for the receiver example.
const SECRET_VAR: &str = "NUMERO_WEBHOOK_SECRET";

#[tokio::main]
async fn main() -> ExitCode {
    let addr = match parse_addr() {
        Ok(Some(addr)) => addr,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n(run with --help for usage)");
            return ExitCode::from(2);
        }
    };
    match serve(addr).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Reads `--addr`; `Ok(None)` when `--help` was asked for.
fn parse_addr() -> Result<Option<SocketAddr>, String> {
    let mut args = std::env::args().skip(1);
    let mut text = "127.0.0.1:3001".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--addr" => text = args.next().ok_or("--addr needs a value")?,
            _ => match arg.strip_prefix("--addr=") {
                Some(value) => text = value.to_owned(),
                None => return Err(format!("unknown argument {arg:?}")),
            },
        }
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("--addr {text:?} is not an IP address and port"))
}

/// The service behind the layer: it only ever sees verified, first-time
/// deliveries.
async fn handle(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(Verified { event, .. }) = request.extensions().get::<Verified<NumeroEvent>>() else {
        // Only reachable if the layer were removed: a server bug, so 500.
        return Ok(json(
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":"no verified event"}"#.into(),
        ));
    };
    println!(
        "verified numero {} {} ({} raw bytes)",
        event.id,
        event.event_type.as_deref().unwrap_or("-"),
        request.body().size_hint().exact().unwrap_or(0),
    );
    let body = serde_json::json!({ "status": "processed", "id": event.id }).to_string();
    Ok(json(StatusCode::OK, body))
}

/// A JSON response.
fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Builds the layered service and serves it on `addr` until Ctrl-C.
async fn serve(addr: SocketAddr) -> Result<(), String> {
    // Bind first, so the hint printed with a demo secret has the real port.
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let layer = WebhookLayer::builder(Numero)
        .secrets(secrets(addr)?)
        .build()
        .map_err(|e| format!("{SECRET_VAR}: {e}"))?;
    let service = ServiceBuilder::new().layer(layer).service_fn(handle);

    println!("listening on http://{addr}/ (every request is a Numero delivery; Ctrl-C stops)");
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Such as too many open files: wait rather than spin.
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let connection = auto::Builder::new(TokioExecutor::new());
            if let Err(e) = connection
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("connection error: {e}");
            }
        });
    }
}

/// The secret in [`SECRET_VAR`], whole (splitting it on spaces would make
/// each word a secret anyone can guess); when it is unset on a loopback
/// `addr`, a demo secret, printed with a `send` command that posts to it.
fn secrets(addr: SocketAddr) -> Result<Vec<String>, String> {
    match std::env::var(SECRET_VAR) {
        Ok(value) => Ok(vec![value]),
        Err(VarError::NotUnicode(_)) => Err(format!("{SECRET_VAR} is not valid UTF-8")),
        Err(VarError::NotPresent) if !addr.ip().is_loopback() => Err(format!(
            "{SECRET_VAR} is not set: off a loopback address a printed demo secret would \
             let any reader of the log sign deliveries"
        )),
        Err(VarError::NotPresent) => {
            // Two fresh OS-seeded RandomStates: 128 random bits, std only.
            let word = || RandomState::new().hash_one(SystemTime::now());
            let secret = format!("demo_{:016x}{:016x}", word(), word());
            println!(
                "{SECRET_VAR} is not set; demo secret for this run (a loopback-only demo): \
                 {secret}\n  \
                 try: {SECRET_VAR}={secret} cargo run --example send -- numero duplicate --url http://{addr}/"
            );
            Ok(vec![secret])
        }
    }
}
