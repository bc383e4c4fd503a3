//! One [`tower`](https://docs.rs/tower) layer that turns an untrusted webhook
//! delivery into a verified, deduplicated, typed event, for axum and hyper.
//!
//! ```text
//! request ─► early checks ─► bounded body ─► HMAC verify ─► typed event ─► claim key ─► inner service ─► complete / release
//!            (headers only)  (raw Bytes)     (raw bytes,     (from the      (store)       (raw body +      (2xx: done,
//!             413 / 401       413/400/408     constant time)  signed bytes)                event in         else released)
//!                                             401             400                          extensions)
//! ```
//!
//! * The signature is checked over the bytes that arrived, never over
//!   re-serialised JSON, against every configured secret (rotation), with a
//!   constant-time compare after a length check: 32 bytes for HMAC-SHA256,
//!   64 for SHA-512, 20 for SHA-1, an Ed25519 signature for public keys.
//!   Each secret's keyed state is computed once, when the layer is built.
//! * The body is read under a hard cap and a total deadline; a body that
//!   arrives as one frame reaches the handler as the same `Bytes`, uncopied.
//! * Each event's idempotency key is claimed atomically before the handler
//!   runs, so retries and duplicate deliveries run it once.
//! * The handler gets the original headers, the raw body, and in the request
//!   extensions one [`Verified`] entry: the typed event and its [`EventId`].
//!   The event's text fields are [`Text`] views into the verified body, so
//!   typing it copies nothing (unless a JSON string holds escapes).
//!
//! Schemes: [`numberotp`], [`numero`], [`github`], [`standard`] (Standard
//! Webhooks, Svix; `v1` HMAC and `v1a` Ed25519), [`stripe`], [`shopify`],
//! [`slack`], [`paddle`], [`linear`], [`zoom`], [`twitch`], [`woocommerce`],
//! [`lemonsqueezy`], [`flutterwave`], [`paystack`] (HMAC-SHA512),
//! [`twilio`] (HMAC-SHA1), [`square`], `discord` (Ed25519, feature
//! `ed25519`), and [`custom`] for any other HMAC provider. Each secret and
//! tag carries its [`Algorithm`]; providers' endpoint checks (Slack, Zoom,
//! Twitch, Discord) are answered by the layer ([`Scheme::handshake`]). One
//! fixed secret set, or [per-tenant secrets](tenant) replaced at runtime.
//! Stores: [`MemoryStore`] (the default), with feature `sqlite` a durable
//! `SqliteStore` on one machine, with feature `redis` a `RedisStore`
//! shared by several replicas, and with feature `postgres` a
//! `PostgresStore` shared by several replicas whose handlers may write
//! their effects in the delivery's own transaction (exactly-once effects);
//! each is also a job queue for queued mode.
//!
//! # Status codes
//!
//! | outcome | status | inner service runs | store afterwards |
//! |---|---|---|---|
//! | verified, new, inner answers 2xx | inner's | yes | done (TTL, default 72 h) |
//! | verified, new, inner answers non-2xx / errors / panics / is dropped | inner's | yes | released |
//! | verified, already done | 200 `{"status":"duplicate"}` | no | unchanged |
//! | verified endpoint check (Slack, Zoom, Twitch, Discord handshakes) | 200 with the reply the provider expects | no | untouched |
//! | verified, in flight elsewhere | 409 + `Retry-After` | no | unchanged |
//! | missing / repeated / malformed / wrong signature | 401 | no | untouched |
//! | [per-tenant secrets](tenant): no tenant, or one not in the map (from the headers, body unread) | 404 `{"error":"unknown_tenant"}` | no | untouched |
//! | body over the cap (declared or streamed) | 413 | no | untouched |
//! | body not all in within the body deadline (default 10 s from its first read; [`WebhookLayerBuilder::body_timeout`]) | 408 + `Connection: close` | no | untouched |
//! | verified, but not JSON / not UTF-8 / no or ambiguous id / unsigned id disagrees | 400 | no | untouched |
//! | store unreachable | 503 + `Retry-After` | no | untouched |
//! | queued: verified, new | 202 `{"status":"accepted"}`, once durable | later, by the [`Worker`], with retries | pending → done, or dead letter |
//! | queued: verified, already accepted / running / done / dead | 200 `{"status":"duplicate"}` | no | unchanged |
//!
//! A sender's fault never gets a 5xx (a 5xx makes senders retry for a day),
//! and a 2xx is never sent while the event may still be lost. Rejections
//! carry `{"error":"<reason_code>"}` ([`LayerAnswer::code`]); replace them with
//! [`WebhookLayerBuilder::answer_response`].
//!
//! # Example (axum)
//!
//! ```
//! use axum::{Router, routing::post, body::Body};
//! use http::{Request, StatusCode};
//! use tower::ServiceExt as _;
//! use tower_webhook::numero::{Numero, NumeroEvent};
//! use tower_webhook::{VerifiedEvent, WebhookLayer};
//!
//! async fn on_numero(VerifiedEvent(event): VerifiedEvent<NumeroEvent>) -> StatusCode {
//!     println!("processing {}", event.id); // runs once per event
//!     StatusCode::OK
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = "whsec_abcdefghijklmnopqrstuvwxyz123456789";
//! let app = Router::new().route(
//!     "/webhooks/numero",
//!     // `route_layer`, not `layer`: a GET is then 405 rather than 401.
//!     post(on_numero).route_layer(WebhookLayer::new(Numero, secret)?),
//! );
//!
//! // A sender: sign the raw body, post it twice.
//! let body = r#"{"id":"evt_1","event":"PAYOUT_NOTIFICATION","data":{"amount":5000.00}}"#;
//! let signature = tower_webhook::numero::sign(secret.as_bytes(), body.as_bytes());
//! let deliver = || {
//!     Request::post("/webhooks/numero")
//!         .header("x-webhook-signature", &signature)
//!         .body(Body::from(body))
//!         .unwrap()
//! };
//! let first = app.clone().oneshot(deliver()).await?;
//! assert_eq!(first.status(), StatusCode::OK);
//! let again = app.clone().oneshot(deliver()).await?;
//! let again = axum::body::to_bytes(again.into_body(), 1024).await?;
//! assert_eq!(&again[..], br#"{"status":"duplicate"}"#);
//!
//! // A forged delivery never reaches the handler.
//! let forged = Request::post("/webhooks/numero")
//!     .header("x-webhook-signature", &signature)
//!     .body(Body::from(body.replace("5000", "9000")))?;
//! assert_eq!(app.oneshot(forged).await?.status(), StatusCode::UNAUTHORIZED);
//! # Ok(())
//! # }
//! ```
//!
//! A handler that also needs the event's id (to make its own effect
//! idempotent: a unique constraint, an upsert) takes [`Verified`] instead of
//! [`VerifiedEvent`]:
//!
//! ```
//! use http::StatusCode;
//! use tower_webhook::Verified;
//! use tower_webhook::numero::NumeroEvent;
//!
//! async fn on_numero(Verified { event, id, .. }: Verified<NumeroEvent>) -> StatusCode {
//!     println!("{id}: {:?}", event.event_type); // `id`: the EventId the key is made of
//!     StatusCode::OK
//! }
//! ```
//!
//! With hyper alone, wrap a `service_fn` in the layer and read the entry
//! with `request.extensions().get::<Verified<NumeroEvent>>()`; see
//! `examples/hyper.rs`.
//!
//! # Queued mode
//!
//! For handlers slower than the sender's timeout, one builder call,
//! [`WebhookLayerBuilder::queued`], makes the layer answer
//! `202 {"status":"accepted"}` as soon as the delivery is recorded durably,
//! and a [`Worker`], handed the handler with [`Worker::handle`], run it
//! afterwards, with retries, backoff, dead letters and replay. See [`queue`].
//!
//! # Features
//!
//! * `axum` (default): the [`VerifiedEvent`] and [`Verified`] extractors.
//! * `tracing`: a `tracing` event for every rejection, carrying its reason
//!   code, and for every failed store call.
//! * `ed25519`: Ed25519 verification (`ed25519-dalek`): the `discord`
//!   scheme and Standard Webhooks `v1a` public keys.
//! * `metrics`: counters, histograms and gauges through the `metrics`
//!   facade, for any exporter: deliveries by scheme and outcome (every
//!   reason code, `processed`, `handler_failed`, `accepted`, …), handler
//!   durations, body sizes, and in queued mode jobs by state and attempts
//!   by result. See [`metrics`].
//! * `postgres`: `PostgresStore` (in [`store`]), claims and the job queue in
//!   Postgres (sqlx), and `DeliveryTransaction`: a handler's writes commit
//!   with the event's done mark.
//! * `redis`: `RedisStore` (in [`store`]), one idempotency store shared by several
//!   replicas.
//! * `sqlite`: `SqliteStore` (in [`store`]), a durable store and job queue on
//!   one machine (SQLite, bundled: no system library needed).
//!
//! The layer runs on tokio (the queue's worker and its timers).

mod answer;
mod body;
mod config;
mod future;
mod layer;
pub mod metrics;
mod secret;
mod service;

#[cfg(feature = "axum")]
mod extract;

#[cfg(feature = "console")]
pub mod console;
pub mod queue;
pub mod scheme;
pub mod sign;
pub mod store;
pub mod tenant;
mod text;
mod trace;
mod verified;

pub use answer::LayerAnswer;
pub use body::ResponseBody;
pub use config::{
    DEFAULT_BODY_TIMEOUT, DEFAULT_DONE_TTL, DEFAULT_LEASE, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_RETRY_AFTER,
};
pub use future::ResponseFuture;
pub use layer::{WebhookLayer, WebhookLayerBuilder};
pub use queue::{Attempt, JobQueue, MemoryQueue, QueueAdmin, Worker};
pub use scheme::builtins::*;
pub use scheme::{Builtin, BuiltinVisitor, EventId, Parsed, Scheme, custom, for_each_builtin};
pub use secret::{
    Algorithm, InvalidTag, Key, MAX_TAG_LEN, MIN_HMAC_SECRET_LEN, MacMismatch, MatchedKey,
    SecretError, SecretSet, Signature, TAG_LEN, Tag,
};
pub use service::Webhook;
pub use store::{
    Claim, IdempotencyKey, IdempotencyStore, JobKey, JobKeyError, MemoryStore, StoreError,
    StoreErrorKind,
};
pub use tenant::{Tenant, TenantError, TenantFrom, TenantSecrets};
pub use text::Text;
pub use verified::Verified;

#[cfg(feature = "redis")]
pub use store::RedisStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
#[cfg(feature = "postgres")]
pub use store::{DeliveryTransaction, PostgresStore};

#[cfg(feature = "axum")]
pub use extract::{MissingVerifiedEvent, VerifiedEvent};
