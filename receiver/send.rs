//! Signs a sample NumberOTP or Numero webhook and posts it to the receiver
//! example, so you see each outcome of the layer.
//!
//! ```text
//! cargo run --release --example receiver            # prints a demo secret and this command:
//! NUMERO_WEBHOOK_SECRET=<secret> cargo run --release --example send -- numero duplicate
//! ```
//!
//! * `valid`: one delivery with a fresh id → 200, the handler runs.
//! * `duplicate`: the same delivery twice → the second answer is
//!   `200 {"status":"duplicate"}`; the handler ran once.
//! * `tampered`: a body signed, then altered in flight → 401.
//!
//! The bodies are the providers' documented sample payloads, pretty-printed
//! as in their documents: the layer hashes the bytes that arrive, whitespace
//! and all. The exit status is 0 when the receiver answered as expected.

use std::env::VarError;
use std::hash::{BuildHasher, RandomState};
use std::process::ExitCode;
use std::time::SystemTime;

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The layer's answer to an event it has already processed.
const DUPLICATE: &str = r#"{"status":"duplicate"}"#;

/// A provider whose sample this example can send.
#[derive(Clone, Copy, ValueEnum)]
enum Provider {
    /// `x-numberotp-signature: sha256=<hex>`.
    NumberOtp,
    /// `X-Webhook-Signature: <base64>`.
    Numero,
}

/// What to demonstrate.
#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Mode {
    /// Post once, with a fresh id → 200 (202 when the receiver is queued).
    Valid,
    /// Post the same event twice → then 200 {"status":"duplicate"}.
    Duplicate,
    /// Sign one body, send a modified one → 401.
    Tampered,
}

/// Signs a sample webhook and posts it to the receiver example. The secret
/// comes from NUMBEROTP_WEBHOOK_SECRET or NUMERO_WEBHOOK_SECRET, as for the
/// receiver (one secret, the variable's whole value).
#[derive(Parser)]
#[command(name = "send")]
struct Cli {
    /// Which provider's sample to send.
    provider: Provider,
    /// What to demonstrate.
    mode: Mode,
    /// Where to post [default: http://127.0.0.1:3000/webhooks/<scheme>].
    #[arg(long)]
    url: Option<String>,
    /// The event id (NumberOTP: the activation id) instead of a fresh one.
    #[arg(long)]
    id: Option<String>,
}

/// The command line, checked.
struct Args {
    /// Which provider's sample to send.
    provider: Provider,
    /// What to demonstrate.
    mode: Mode,
    /// Where to post.
    url: Uri,
    /// The event id to put in the sample.
    id: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::from_cli(Cli::parse()) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("error: {message}\n(run with --help for usage)");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

impl Args {
    /// Checks the URL and the id.
    fn from_cli(cli: Cli) -> Result<Self, String> {
        let Cli {
            provider,
            mode,
            url,
            id,
        } = cli;
        let url =
            url.unwrap_or_else(|| format!("http://127.0.0.1:3000/webhooks/{}", provider.name()));
        let url = match url.parse::<Uri>() {
            Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some() => uri,
            _ => return Err(format!("--url {url:?} is not an http:// URL")),
        };
        let id = id.unwrap_or_else(|| provider.fresh_id());
        if id.is_empty() {
            return Err("--id must not be empty".into());
        }
        Ok(Self {
            provider,
            mode,
            url,
            id,
        })
    }
}

impl Provider {
    /// The scheme name, as in the receiver's routes.
    fn name(self) -> &'static str {
        match self {
            Self::NumberOtp => "numberotp",
            Self::Numero => "numero",
        }
    }

    /// The variable the receiver reads this provider's secrets from.
    fn secret_var(self) -> &'static str {
        match self {
            Self::NumberOtp => "NUMBEROTP_WEBHOOK_SECRET",
            Self::Numero => "NUMERO_WEBHOOK_SECRET",
        }
    }

    /// A new id in the provider's style, so `valid` is never a duplicate.
    fn fresh_id(self) -> String {
        let random = RandomState::new().hash_one(SystemTime::now());
        match self {
            Self::NumberOtp => format!("act_{random:016x}"),
            Self::Numero => format!("evt_{random:016x}"),
        }
    }

    /// The provider's documented sample payload with `id`, and the text a
    /// `tampered` delivery changes in it.
    fn sample(self, id: &str) -> (String, &'static str, &'static str) {
        let id = serde_json::to_string(id).expect("a string serialises");
        match self {
            Self::NumberOtp => (
                format!(
                    r#"{{
  "id": {id},
  "phone_number": "14155552671",
  "service": "wa",
  "country": "67",
  "otp": "482910",
  "full_sms": "Your WhatsApp code is 482910.",
  "status": "received"
}}"#
                ),
                r#""otp": "482910""#,
                r#""otp": "000000""#,
            ),
            // Numero's own sample also carries a (truncated) "signature"
            // field; the real signature travels in the header, so it is left
            // out here. Its `created_at` is now: the receiver refuses a
            // signed time older than its replay window (72 h).
            Self::Numero => (
                format!(
                    r#"{{
  "id": {id},
  "event": "PAYOUT_NOTIFICATION",
  "created_at": "{now}",
  "data": {{
    "transaction_id": "txn_987654321",
    "amount": 5000.00,
    "currency": "NGN",
    "status": "completed",
    "customer_id": "cus_12345",
    "description": "Payment for invoice #12345"
  }}
}}"#,
                    now = tower_webhook::sign::rfc3339(SystemTime::now())
                ),
                r#""amount": 5000.00"#,
                r#""amount": 9000.00"#,
            ),
        }
    }

    /// The request the provider would send: its signature header over
    /// `signed`, carrying `body`.
    fn request(
        self,
        url: &Uri,
        id: &str,
        secret: &str,
        signed: &str,
        body: &str,
    ) -> Request<Full<Bytes>> {
        let request = Request::post(url).header(header::CONTENT_TYPE, "application/json");
        let request = match self {
            Self::NumberOtp => request.header(
                "x-numberotp-signature",
                tower_webhook::numberotp::sign(secret.as_bytes(), signed.as_bytes()),
            ),
            // Numero also names the event in unsigned headers; the layer
            // checks them against the signed body.
            Self::Numero => request
                .header(
                    "x-webhook-signature",
                    tower_webhook::numero::sign(secret.as_bytes(), signed.as_bytes()),
                )
                .header("x-webhook-id", id)
                .header("x-webhook-event", "PAYOUT_NOTIFICATION"),
        };
        request
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("the URL was checked and every header is visible ASCII")
    }
}

/// Sends what `args` asks for; `Ok(true)` when the receiver answered as
/// expected.
async fn run(args: Args) -> Result<bool, String> {
    let Args {
        provider,
        mode,
        url,
        id,
    } = args;
    let secret = secret(provider.secret_var())?;
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let (signed, original, forged) = provider.sample(&id);
    let deliver = |body: &str| {
        let request = provider.request(&url, &id, &secret, &signed, body);
        post(&client, request)
    };

    println!("POST {url} ({} {id})", provider.name());
    let ok = match mode {
        Mode::Valid => {
            let (status, body) = deliver(&signed).await?;
            if body == DUPLICATE {
                println!("note: this id was processed before, so the handler did not run again");
            }
            verdict(status.is_success(), "the event was accepted")
        }
        Mode::Duplicate => {
            println!("first delivery:");
            deliver(&signed).await?;
            println!("same delivery again:");
            let (_, body) = deliver(&signed).await?;
            verdict(
                body == DUPLICATE,
                "the redelivery was recognised; the handler ran once",
            )
        }
        Mode::Tampered => {
            let tampered = signed.replacen(original, forged, 1);
            println!("signed {original}, sending {forged} with the same signature:");
            let (status, _) = deliver(&tampered).await?;
            verdict(
                status == StatusCode::UNAUTHORIZED,
                "the altered body was refused",
            )
        }
    };
    Ok(ok)
}

/// Posts `request` and prints the answer's status and body.
async fn post(
    client: &Client<HttpConnector, Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, String), String> {
    let url = request.uri().clone();
    let response = client.request(request).await.map_err(|e| {
        // hyper says only "client error (Connect)"; the cause, such as
        // "Connection refused", is further down its source chain.
        let mut message = format!("cannot post to {url}: {e}");
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            message.push_str(&format!(": {c}"));
            cause = c.source();
        }
        message + " (is the receiver running?)"
    })?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("cannot read the answer: {e}"))?
        .to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    println!("  → {status} {body}");
    Ok((status, body))
}

/// Prints whether the answer was the expected one, and returns it.
fn verdict(expected: bool, meaning: &str) -> bool {
    if expected {
        println!("as expected: {meaning}");
    } else {
        println!("UNEXPECTED: wanted {meaning}");
    }
    expected
}

/// The signing secret from `var`: its whole value, spaces included, as the
/// receiver reads it.
fn secret(var: &str) -> Result<String, String> {
    match std::env::var(var) {
        Ok(value) if value.is_empty() => None,
        Ok(value) => Some(value),
        Err(VarError::NotUnicode(_)) => return Err(format!("{var} is not valid UTF-8")),
        Err(VarError::NotPresent) => None,
    }
    .ok_or_else(|| {
        format!(
            "{var} is not set: copy the secret the receiver printed at start-up, \
             e.g. `{var}=demo_… cargo run --release --example send -- …`"
        )
    })
}
