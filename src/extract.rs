//! The axum extractors for the verified event (feature `axum`):
//! [`VerifiedEvent`] for the event alone, [`Verified`] for the event and its
//! id.

use std::any::type_name;
use std::fmt;

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::Verified;

/// Takes the verified, typed event that [`WebhookLayer`](crate::WebhookLayer)
/// put in the request extensions.
///
/// ```
/// use tower_webhook::VerifiedEvent;
/// use tower_webhook::numero::NumeroEvent;
///
/// async fn on_numero(VerifiedEvent(event): VerifiedEvent<NumeroEvent>) -> &'static str {
///     println!("{} {:?}", event.id, event.event_type);
///     "ok"
/// }
/// ```
///
/// It moves the event out of the extensions, so extract it once per handler
/// (and not together with [`Verified`], which takes the same entry). For the
/// event's id too, take [`Verified`] instead.
#[derive(Debug, Clone)]
pub struct VerifiedEvent<E>(pub E);

impl<E> std::ops::Deref for VerifiedEvent<E> {
    type Target = E;
    fn deref(&self) -> &E {
        &self.0
    }
}

/// The route has no [`WebhookLayer`](crate::WebhookLayer) for this event
/// type (or the event was already extracted): a server bug, so 500.
#[derive(Debug, Clone, Copy)]
pub struct MissingVerifiedEvent {
    event_type: &'static str,
}

impl fmt::Display for MissingVerifiedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no verified `{}` in the request: add a WebhookLayer for its scheme to this route \
             (or extract it only once)",
            self.event_type
        )
    }
}

impl std::error::Error for MissingVerifiedEvent {}

impl IntoResponse for MissingVerifiedEvent {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

impl<E, S> FromRequestParts<S> for VerifiedEvent<E>
where
    E: Clone + Send + Sync + 'static,
    S: Send + Sync,
{
    type Rejection = MissingVerifiedEvent;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verified = Verified::<E>::from_request_parts(parts, state).await?;
        Ok(VerifiedEvent(verified.event))
    }
}

/// Takes the [`Verified`] entry (event and id) out of the extensions, once.
impl<E, S> FromRequestParts<S> for Verified<E>
where
    E: Clone + Send + Sync + 'static,
    S: Send + Sync,
{
    type Rejection = MissingVerifiedEvent;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .remove::<Verified<E>>()
            .ok_or(MissingVerifiedEvent {
                event_type: type_name::<E>(),
            })
    }
}
