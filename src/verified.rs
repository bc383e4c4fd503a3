//! [`Verified`]: what the layer hands on to the inner service, in one
//! request-extensions entry.

use crate::EventId;

/// The verified, typed event and its id: the one entry the layer puts in the
/// request extensions before it calls the inner service (inline, or from the
/// queue's worker).
///
/// With axum, take it with the [`Verified`] extractor when the handler needs
/// the id (to make its own effect idempotent: a unique constraint, an
/// upsert), or with [`VerifiedEvent`](crate::VerifiedEvent) for the event
/// alone:
///
/// ```
/// # #[cfg(feature = "axum")] {
/// use tower_webhook::Verified;
/// use tower_webhook::numero::NumeroEvent;
///
/// async fn on_numero(Verified { event, id, .. }: Verified<NumeroEvent>) -> &'static str {
///     println!("{id}: {:?}", event.event_type);
///     "ok"
/// }
/// # }
/// ```
///
/// Without axum, read it from the extensions:
/// `request.extensions().get::<Verified<NumeroEvent>>()`.
///
/// The id and the event's string fields are [`Text`](crate::Text) views
/// into the body: keeping one after the handler returns keeps the whole
/// body in memory. Copy what you keep (`id.as_str().to_owned()`,
/// `EventId::new(id.as_str())`); see [`Text`](crate::Text).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified<E> {
    /// The typed event.
    pub event: E,
    /// What identifies the event across redeliveries: the id its
    /// idempotency key was made of.
    pub id: EventId,
}

impl<E> Verified<E> {
    /// The entry for `event`, identified by `id`.
    pub fn new(event: E, id: EventId) -> Self {
        Self { event, id }
    }
}

impl<E: Clone + Send + Sync + 'static> Verified<E> {
    /// Puts this entry into `extensions`: what the layer hands on, inline
    /// and from the queue's worker alike.
    pub(crate) fn insert_into(self, extensions: &mut http::Extensions) {
        extensions.insert(self);
    }
}

impl<E> From<crate::Parsed<E>> for Verified<E> {
    fn from(parsed: crate::Parsed<E>) -> Self {
        Self::new(parsed.event, parsed.id)
    }
}
