//! A webhook receiver: NumberOTP, Numero, GitHub, Standard Webhooks and
//! Stripe deliveries verified, deduplicated and typed by `tower-webhook`, on
//! a real axum server.
//!
//! ```text
//! cargo run --release --example receiver -- [--addr 127.0.0.1:3000] [--max-body-bytes 1048576]
//! ```
//!
//! With `--redis URL` (or `REDIS_URL`) and the `redis` feature, every route
//! deduplicates through Redis instead of memory, so several receivers can
//! share the work:
//!
//! ```text
//! cargo run --release --features redis --example receiver -- --redis redis://127.0.0.1:6379/
//! ```
//!
//! Routes:
//!
//! * `POST /webhooks/numberotp`: header `x-numberotp-signature: sha256=<hex>`;
//! * `POST /webhooks/numero`: header `X-Webhook-Signature: <base64 or hex>`;
//! * `POST /webhooks/github`: header `X-Hub-Signature-256: sha256=<hex>`;
//! * `POST /webhooks/standard`: Standard Webhooks / Svix headers
//!   `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`;
//! * `POST /webhooks/stripe`: header `Stripe-Signature: t=<unix>,v1=<hex>`;
//! * `GET /events`: a JSON array with one object per time a handler ran
//!   (`seq`, `scheme`, `id`, and a few fields of the event), so you can see
//!   that each event was processed exactly once.
//!
//! Secrets come from `NUMBEROTP_WEBHOOK_SECRET`, `NUMERO_WEBHOOK_SECRET`,
//! `GITHUB_WEBHOOK_SECRET`, `STANDARD_WEBHOOK_SECRET` (`whsec_` + base64)
//! and `STRIPE_WEBHOOK_SECRET`.
//! During a rotation put the old and the new secret in the variable,
//! separated by a space: either one verifies. When a variable is unset the
//! receiver makes up a demo secret and prints it, with a command for the
//! `send` example that uses it:
//!
//! ```text
//! NUMERO_WEBHOOK_SECRET=whsec_abcdefghijklmnopqrstuvwxyz123456789 cargo run --release --example receiver
//! NUMERO_WEBHOOK_SECRET=whsec_abcdefghijklmnopqrstuvwxyz123456789 cargo run --example send -- numero duplicate
//! ```
//!
//! With curl, sign the exact bytes you send (here with openssl):
//!
//! ```text
//! secret=whsec_abcdefghijklmnopqrstuvwxyz123456789
//! body='{"id":"evt_1","event":"PAYOUT_NOTIFICATION","data":{"amount":5000.00,"currency":"NGN"}}'
//! sig=$(printf %s "$body" | openssl dgst -sha256 -hmac "$secret" -binary | base64)
//! curl -i http://127.0.0.1:3000/webhooks/numero -H "X-Webhook-Signature: $sig" -d "$body"
//! # → 200 {"status":"processed",...}; the same command again → 200 {"status":"duplicate"}
//! curl -i http://127.0.0.1:3000/webhooks/numero -H "X-Webhook-Signature: $sig" -d "${body/5000/9000}"
//! # → 401 {"error":"signature_mismatch"}
//!
//! # NumberOTP: hex after `sha256=`, with the secret the receiver uses or printed.
//! # Its key is activation id + status + otp: a new otp is a new event.
//! body='{"id":"act_1","otp":"482910","status":"received"}'
//! sig=$(printf %s "$body" | openssl dgst -sha256 -hmac "$NUMBEROTP_WEBHOOK_SECRET" -hex | cut -d' ' -f2)
//! curl -i http://127.0.0.1:3000/webhooks/numberotp -H "x-numberotp-signature: sha256=$sig" -d "$body"
//!
//! curl -s http://127.0.0.1:3000/events
//! ```
//!
//! A new scheme is one more [`mount_webhook`] call in [`run`] and one
//! [`Shown`] impl for its event type.

use std::collections::BTreeMap;
use std::env::VarError;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;
use tower_webhook::github::{GitHub, GitHubEvent};
use tower_webhook::numberotp::{NumberOtp, NumberOtpEvent};
use tower_webhook::numero::{Numero, NumeroData, NumeroEvent};
use tower_webhook::standard::{Standard, StandardEvent};
use tower_webhook::stripe::{Stripe, StripeEvent};
use tower_webhook::{DEFAULT_MAX_BODY_BYTES, Scheme, VerifiedEvent, WebhookLayer};

/// `--help` text.
const USAGE: &str = "\
Receives NumberOTP, Numero, GitHub, Standard Webhooks and Stripe webhooks through tower-webhook.

Usage: cargo run --release --example receiver -- [OPTIONS]

Options:
  --addr HOST:PORT         address to listen on [default: 127.0.0.1:3000]
  --max-body-bytes BYTES   largest body accepted; larger gets 413 [default: 1048576]
  --redis URL              deduplicate through Redis (redis://host:port/), shared by
                           every replica; needs --features redis [default: $REDIS_URL]
  -h, --help               print this help

Environment:
  NUMBEROTP_WEBHOOK_SECRET, NUMERO_WEBHOOK_SECRET, GITHUB_WEBHOOK_SECRET,
  STANDARD_WEBHOOK_SECRET (whsec_ + base64), STRIPE_WEBHOOK_SECRET
      the scheme's secret(s), separated by whitespace during a rotation;
      when unset, a demo secret is generated and printed.

Routes: POST /webhooks/{numberotp,numero,github,standard,stripe}, GET /events
";

/// The address used when `--addr` is not given.
const DEFAULT_ADDR: &str = "127.0.0.1:3000";

#[tokio::main]
async fn main() -> ExitCode {
    let options = match Options::parse() {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n(run with --help for usage)");
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The command line.
struct Options {
    /// Where to listen.
    addr: SocketAddr,
    /// The body cap given to every webhook layer.
    max_body_bytes: usize,
    /// `--redis` or `REDIS_URL`: the Redis to deduplicate through.
    redis: Option<String>,
}

impl Options {
    /// Reads the flags; `Ok(None)` when `--help` was asked for.
    fn parse() -> Result<Option<Self>, String> {
        let mut options = Self {
            addr: DEFAULT_ADDR.parse().expect("the default address parses"),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            redis: std::env::var("REDIS_URL")
                .ok()
                .filter(|url| !url.trim().is_empty()),
        };
        let mut args = std::env::args_os().skip(1).map(|arg| {
            arg.into_string()
                .map_err(|arg| format!("argument {arg:?} is not UTF-8"))
        });
        while let Some(arg) = args.next() {
            let arg = arg?;
            // Both `--flag value` and `--flag=value`.
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
                _ => (arg.as_str(), None),
            };
            let mut value = || match inline.clone() {
                Some(value) => Ok(value),
                None => args
                    .next()
                    .unwrap_or_else(|| Err(format!("{flag} needs a value"))),
            };
            match flag {
                "-h" | "--help" => return Ok(None),
                "--addr" => {
                    let text = value()?;
                    options.addr = text.parse().map_err(|_| {
                        format!(
                            "--addr {text:?} is not an IP address and port, such as {DEFAULT_ADDR}"
                        )
                    })?;
                }
                "--max-body-bytes" => {
                    let text = value()?;
                    options.max_body_bytes = match text.parse() {
                        Ok(0) | Err(_) => {
                            return Err(format!(
                                "--max-body-bytes {text:?} is not a positive number of bytes"
                            ));
                        }
                        Ok(max) => max,
                    };
                }
                "--redis" => options.redis = Some(value()?),
                _ => return Err(format!("unknown argument {arg:?}")),
            }
        }
        Ok(Some(options))
    }
}

/// Binds, mounts every route and serves until Ctrl-C.
async fn run(options: Options) -> Result<(), String> {
    // Bind first, so the hints printed for demo secrets carry the real port.
    let listener = TcpListener::bind(options.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.addr))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let setup = Setup {
        base_url: format!("http://{addr}"),
        custom_addr: addr.to_string() != DEFAULT_ADDR,
        max_body_bytes: options.max_body_bytes,
        #[cfg(feature = "redis")]
        redis: redis_store(options.redis.as_deref()).await?,
    };
    #[cfg(not(feature = "redis"))]
    if let Some(url) = &options.redis {
        return Err(format!(
            "Redis ({url}) needs the redis feature: \
             cargo run --release --features redis --example receiver -- --redis {url}"
        ));
    }

    let app = Router::new().route("/events", get(list_events));
    let app = mount_webhook(app, NumberOtp, &setup)?;
    let app = mount_webhook(app, Numero, &setup)?;
    let app = mount_webhook(app, GitHub, &setup)?;
    let app = mount_webhook(app, Standard::new(), &setup)?;
    let app = mount_webhook(app, Stripe::new(), &setup)?;
    let app = app.with_state(EventLog::default());

    println!(
        "listening on {}; GET /events lists the processed events; Ctrl-C stops",
        setup.base_url
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            // If the handler cannot be installed, serve until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await
        .map_err(|e| format!("server failed: {e}"))
}

/// What every webhook route is built from.
struct Setup {
    /// `http://<bound address>`, for the hints printed with demo secrets.
    base_url: String,
    /// Whether the hints must pass `--url` to the send example.
    custom_addr: bool,
    /// The body cap given to every webhook layer.
    max_body_bytes: usize,
    /// The shared Redis store, when `--redis` was given.
    #[cfg(feature = "redis")]
    redis: Option<tower_webhook::RedisStore>,
}

/// Connects to the Redis at `url`, if any, and says whether it may evict.
#[cfg(feature = "redis")]
async fn redis_store(url: Option<&str>) -> Result<Option<tower_webhook::RedisStore>, String> {
    use tower_webhook::store::redis::EvictionPolicy;
    let Some(url) = url else { return Ok(None) };
    let store = tower_webhook::RedisStore::connect(url)
        .await
        .map_err(|e| format!("--redis {url}: {e}"))?;
    match store.check_eviction_policy().await {
        Ok(EvictionPolicy::NoEviction) => println!("store: redis at {url} (noeviction)"),
        Ok(EvictionPolicy::MayEvict(policy)) => println!(
            "store: redis at {url}; WARNING: maxmemory-policy is {policy}, so an evicted key \
             lets a duplicate run again: set it to noeviction"
        ),
        Ok(EvictionPolicy::Unknown) | Err(_) => println!(
            "store: redis at {url}; could not read maxmemory-policy: make sure it is noeviction"
        ),
    }
    Ok(Some(store))
}

/// Mounts `POST /webhooks/<scheme name>` behind its own [`WebhookLayer`],
/// keyed with the secrets of `<SCHEME NAME>_WEBHOOK_SECRET`.
fn mount_webhook<Sc>(
    app: Router<EventLog>,
    scheme: Sc,
    setup: &Setup,
) -> Result<Router<EventLog>, String>
where
    Sc: Scheme,
    Sc::Event: Shown,
{
    let name = scheme.name();
    let path = format!("/webhooks/{name}");
    let var = format!("{}_WEBHOOK_SECRET", name.to_ascii_uppercase());
    let secrets = secrets_from_env(&var, name, &path, setup)?;
    let count = secrets.len();
    let builder = WebhookLayer::builder(scheme)
        .secrets(secrets)
        .max_body_bytes(setup.max_body_bytes);
    let handler = move |State(log): State<EventLog>,
                        VerifiedEvent(event): VerifiedEvent<Sc::Event>| async move {
        let seq = log.record(name, &event);
        Json(json!({ "status": "processed", "seq": seq, "id": event.id() }))
    };
    #[cfg(feature = "redis")]
    if let Some(store) = &setup.redis {
        let layer = builder
            .store(store.clone())
            .build()
            .map_err(|e| format!("{var}: {e}"))?;
        println!(
            "POST {path}: {name}, {count} secret(s), body cap {} bytes, redis store",
            setup.max_body_bytes
        );
        return Ok(app.route(&path, post(handler).route_layer(layer)));
    }
    let layer = builder.build().map_err(|e| format!("{var}: {e}"))?;
    println!(
        "POST {path}: {name}, {count} secret(s), body cap {} bytes",
        setup.max_body_bytes
    );
    Ok(app.route(&path, post(handler).route_layer(layer)))
}

/// The secrets in `var`, split on whitespace; or, when `var` is unset, a
/// fresh demo secret, printed with a `send` command that uses it.
fn secrets_from_env(
    var: &str,
    scheme: &str,
    path: &str,
    setup: &Setup,
) -> Result<Vec<String>, String> {
    match std::env::var(var) {
        Ok(value) if value.trim().is_empty() => Err(format!(
            "{var} is set but empty: give the {scheme} secret, or unset it for a demo secret"
        )),
        Ok(value) => Ok(value.split_whitespace().map(str::to_owned).collect()),
        Err(VarError::NotUnicode(_)) => Err(format!("{var} is not valid UTF-8")),
        Err(VarError::NotPresent) => {
            let secret = match scheme {
                // Standard Webhooks secrets are `whsec_` + base64 of the key.
                "standard" => tower_webhook::sign::standard_secret(demo_secret().as_bytes()),
                _ => demo_secret(),
            };
            let url = if setup.custom_addr {
                format!(" --url {}{path}", setup.base_url)
            } else {
                String::new()
            };
            println!("{var} is not set; demo secret for this run: {secret}");
            // The send example speaks NumberOTP and Numero only.
            if matches!(scheme, "numberotp" | "numero") {
                println!(
                    "  try: {var}={secret} cargo run --example send -- {scheme} duplicate{url}"
                );
            }
            Ok(vec![secret])
        }
    }
}

/// A random secret for a demo run (not for production: use the provider's).
fn demo_secret() -> String {
    // Each RandomState carries fresh keys seeded from the OS, so hashing
    // anything with two of them gives 128 unguessable-enough bits, std only.
    let word = || RandomState::new().hash_one(SystemTime::now());
    format!("demo_{:016x}{:016x}", word(), word())
}

/// One entry of `GET /events`: a handler run.
#[derive(Clone, Serialize)]
struct Record {
    /// 1 for the first handler run, and so on.
    seq: usize,
    /// The scheme's name (`numberotp`, `numero`, `github`, `standard`, `stripe`).
    scheme: &'static str,
    /// The event's id as the provider sent it.
    id: String,
    /// The fields [`Shown::fields`] picked.
    #[serde(flatten)]
    fields: BTreeMap<&'static str, String>,
}

/// Every handler run, in order, shared by every route.
#[derive(Clone, Default)]
struct EventLog(Arc<Mutex<Vec<Record>>>);

impl EventLog {
    /// Appends `event`, prints its log line, and returns its sequence number.
    fn record(&self, scheme: &'static str, event: &impl Shown) -> usize {
        let fields = event.fields();
        let mut line = format!("{scheme} {}", event.id());
        for (field, value) in &fields {
            line.push_str(&format!(" {field}={value}"));
        }
        // A handler that panicked while holding the lock left a complete
        // Vec behind: keep serving rather than failing every later request.
        let mut events = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = events.len() + 1;
        events.push(Record {
            seq,
            scheme,
            id: event.id().to_owned(),
            fields: fields.into_iter().collect(),
        });
        println!("#{seq} verified {line}");
        seq
    }
}

/// `GET /events`: every event a handler processed, in order.
async fn list_events(State(log): State<EventLog>) -> Json<Vec<Record>> {
    Json(log.0.lock().unwrap_or_else(PoisonError::into_inner).clone())
}

/// What the receiver shows of a scheme's events, in its log line and in
/// `GET /events`.
trait Shown: Clone + Send + Sync + 'static {
    /// The event's id as the provider sent it.
    fn id(&self) -> &str;
    /// A few fields worth seeing; absent ones are left out.
    fn fields(&self) -> Vec<(&'static str, String)>;
}

/// Keeps the fields that are present.
fn present<const N: usize>(
    fields: [(&'static str, Option<&str>); N],
) -> Vec<(&'static str, String)> {
    fields
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?.to_owned())))
        .collect()
}

impl Shown for NumberOtpEvent {
    fn id(&self) -> &str {
        &self.id
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        present([
            ("status", self.status.as_deref()),
            ("otp", self.otp.as_deref()),
            ("service", self.service.as_deref()),
            ("phone_number", self.phone_number.as_deref()),
        ])
    }
}

impl Shown for NumeroEvent {
    fn id(&self) -> &str {
        &self.id
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        let transaction = match &self.data {
            NumeroData::Funding(t) | NumeroData::Transfer(t) | NumeroData::Payout(t) => Some(t),
            _ => None,
        };
        let amount = transaction
            .and_then(|t| t.amount.as_ref().or(t.trx_amount.as_ref()))
            .map(|amount| amount.as_str());
        let status = transaction.and_then(|t| t.status.as_deref());
        present([
            ("event_type", self.event_type.as_deref()),
            ("created_at", self.created_at.as_deref()),
            ("amount", amount),
            ("currency", transaction.and_then(|t| t.currency.as_deref())),
            ("status", status),
        ])
    }
}

impl Shown for GitHubEvent {
    /// The body digest, which is the key: `X-GitHub-Delivery` is unsigned.
    fn id(&self) -> &str {
        &self.digest
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        present([
            ("event_type", self.event_type.as_deref()),
            ("delivery", self.delivery.as_deref()),
            ("action", self.action.as_deref()),
        ])
    }
}

impl Shown for StandardEvent {
    fn id(&self) -> &str {
        &self.id
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        let timestamp = self.timestamp.to_string();
        present([
            ("event_type", self.event_type.as_deref()),
            ("timestamp", Some(&timestamp)),
        ])
    }
}

impl Shown for StripeEvent {
    fn id(&self) -> &str {
        &self.id
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        let created = self.created.map(|created| created.to_string());
        present([
            ("event_type", self.event_type.as_deref()),
            ("created", created.as_deref()),
        ])
    }
}
