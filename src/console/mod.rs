//! An operator console (feature `console`): an axum [`Router`] with a JSON
//! API and a small HTML page over a [`Worker`]'s queue, to see what is
//! pending, running and dead, why each dead letter failed, and to replay
//! or discard it. The application mounts it where it likes:
//!
//! ```no_run
//! use axum::Router;
//! use tower_webhook::console::Console;
//! use tower_webhook::queue::{MemoryQueue, Worker};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let worker = Worker::builder(MemoryQueue::new()).start();
//! let token = std::env::var("ADMIN_TOKEN")?;
//! let console = Console::new(worker.clone(), &token)?;
//! let app: Router = Router::new().nest("/console", console.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Routes (relative to where it is mounted)
//!
//! | route | answers |
//! |---|---|
//! | `GET /` | the page (plain HTML, CSS and JavaScript served by the router: no build step, no CDN, works offline) |
//! | `POST /login` `{"token":"…"}` | `204` and an `HttpOnly; SameSite=Strict` cookie for the page |
//! | `POST /logout` | `204`, the cookie cleared |
//! | `GET /api/counts` | `{"pending","running","dead","schemes":[{"scheme","pending","running","dead"}]}` |
//! | `GET /api/jobs?state=pending\|running\|dead&limit=N` | [`JobSummary`]s, in the order they leave their state |
//! | `GET /api/dead-letters?limit=N` | the dead letters' [`JobSummary`]s, oldest failure first |
//! | `GET /api/dead-letter?key=K` | one dead letter in full: its summary, method, URI, headers as recorded, body as text when it is UTF-8 (else base64) |
//! | `POST /api/replay` `{"key"}` | `202` when queued again, `404` when there is no such dead letter |
//! | `POST /api/replay-scheme` `{"scheme","max"}` | `{"replayed":N}`, at most [`MAX_REPLAYED_PER_CALL`] a call |
//! | `POST /api/discard` `{"key"}` | `200` when removed, `404` when there is none |
//! | `GET /api/runs` | `{"runs":[…]}`: the application's record of handler runs ([`Console::recent_runs`]), or `null` without one |
//!
//! `limit` defaults to 100 and is capped at 1000.
//!
//! # Security
//!
//! * **Every route answers `401`** without the token: `Authorization:
//!   Bearer <token>`, or the cookie the login sets (`GET /` then answers
//!   `401` with the page, whose login form asks for the token). Both are
//!   compared in constant time, as SHA-256 digests, so neither the length
//!   nor the content of a guess shows in the timing. The cookie holds the
//!   token's digest, never the token.
//! * **Writes are POSTs only.** A request carrying the cookie must also
//!   carry the header `X-Console-Request: 1` (which no plain link or
//!   cross-site form can send, and which a cross-origin script can send
//!   only after a CORS preflight the router never grants), and is refused
//!   when the browser says it is cross-site (`Sec-Fetch-Site`): `403`.
//!   The cookie is `SameSite=Strict` besides.
//! * **Nothing secret is shown**: the token is never echoed, and recorded
//!   headers that carry credentials (`Authorization`, `Cookie`, names
//!   holding `token`, `secret`, `password`, `api-key`) are shown as
//!   `[redacted]`. A signature header is shown: it proves one body, and
//!   the operator may need it to see why a delivery was accepted.
//! * **Bodies are data, never markup**: the page renders everything with
//!   `textContent`, and its `Content-Security-Policy` allows its own
//!   script and style only (by hash), so a body carrying `<script>` runs
//!   nothing even if it reached the markup. The page may not be framed.
//!
//! # Why over a [`Worker`]
//!
//! The console is built on the worker rather than the bare queue so that
//! a replay wakes the worker, and the replayed job runs at once instead of
//! at the worker's next idle poll. Reads go to the worker's queue
//! ([`Worker::queue`]).

mod api;
mod auth;
mod page;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use crate::queue::{QueueInspect, Worker};

pub use crate::store::admin::MAX_REPLAYED_PER_CALL;
#[doc(no_inline)]
pub use crate::store::admin::{DeadLetterDetail, JobState, JobSummary};

/// The largest request body a console route reads: a key or a token.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// What the application knows of its recent handler runs, as JSON (an
/// array, newest last), for the page's "recent handler runs" table.
pub type RecentRuns = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// The console over one [`Worker`]; [`Console::router`] makes its routes.
pub struct Console<Q: QueueInspect> {
    worker: Worker<Q>,
    token: auth::Token,
    runs: Option<RecentRuns>,
}

impl<Q: QueueInspect> std::fmt::Debug for Console<Q> {
    // The token is left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("recent_runs", &self.runs.is_some())
            .finish_non_exhaustive()
    }
}

/// The console was given no token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmptyToken;

impl std::fmt::Display for EmptyToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the console's token is empty")
    }
}

impl std::error::Error for EmptyToken {}

impl<Q: QueueInspect> Console<Q> {
    /// A console over `worker`'s queue that admits requests carrying
    /// `token`.
    ///
    /// # Errors
    ///
    /// [`EmptyToken`] when `token` is empty.
    pub fn new(worker: Worker<Q>, token: impl AsRef<[u8]>) -> Result<Self, EmptyToken> {
        Ok(Self {
            worker,
            token: auth::Token::new(token.as_ref()).ok_or(EmptyToken)?,
            runs: None,
        })
    }

    /// Shows `runs` (the application's record of handler runs) on the page
    /// and at `GET /api/runs`. Without it the page shows the jobs pending
    /// and running instead, and says so.
    #[must_use]
    pub fn recent_runs(
        mut self,
        runs: impl Fn() -> serde_json::Value + Send + Sync + 'static,
    ) -> Self {
        self.runs = Some(Arc::new(runs));
        self
    }

    /// The console's routes, to mount with [`Router::nest`] (or serve on
    /// their own).
    pub fn router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        let token = self.token.clone();
        let state = Arc::new(api::Shared {
            worker: self.worker,
            runs: self.runs,
        });
        let api = Router::new()
            .route("/api/counts", get(api::counts::<Q>))
            .route("/api/jobs", get(api::jobs::<Q>))
            .route("/api/dead-letters", get(api::dead_letters::<Q>))
            .route("/api/dead-letter", get(api::dead_letter::<Q>))
            .route("/api/replay", post(api::replay::<Q>))
            .route("/api/replay-scheme", post(api::replay_scheme::<Q>))
            .route("/api/discard", post(api::discard::<Q>))
            .route("/api/runs", get(api::runs::<Q>))
            .route("/logout", post(auth::logout))
            .route("/", get(page::page))
            .with_state(state);
        Router::new()
            .merge(api)
            .route("/login", post(auth::login).with_state(token.clone()))
            .fallback(api::not_found)
            .layer(from_fn_with_state(token, auth::require))
            .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
    }
}
