//! [`Signature`]: what a sender's headers claim, and what exactly was signed.

use std::fmt;
use std::sync::Arc;

use super::Tag;

/// Turns the body into the bytes the sender signed, for the few providers
/// that do not sign `prefix ‖ body` (Twilio's sorted form parameters).
type ContentFn = dyn Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync;

/// What a sender's headers claim: one or more candidate tags, and what was
/// signed.
///
/// The signed bytes are `prefix ‖ body` (the prefix is empty for schemes that
/// sign the body alone; `"{id}.{timestamp}."` for Standard Webhooks, the
/// notification URL for Square) — verified without copying the body — or,
/// when the scheme set a content function with [`Signature::with_content`],
/// `prefix ‖ content(body)`.
///
/// A [`Scheme`](crate::Scheme) builds it from the request head alone; the
/// layer verifies it once the body has arrived.
#[derive(Clone)]
pub struct Signature {
    prefix: Vec<u8>,
    content: Option<Arc<ContentFn>>,
    first: Tag,
    more: Vec<Tag>,
}

impl Signature {
    /// One tag over the body alone.
    pub fn over_body(tag: Tag) -> Self {
        Self {
            prefix: Vec::new(),
            content: None,
            first: tag,
            more: Vec::new(),
        }
    }

    /// One tag per item of `tags`, the first one first.
    ///
    /// `None` when `tags` is empty.
    pub fn any_of(tags: impl IntoIterator<Item = Tag>) -> Option<Self> {
        let mut tags = tags.into_iter();
        let first = Self::over_body(tags.next()?);
        Some(tags.fold(first, Self::or_tag))
    }

    /// Adds another candidate tag; any one that verifies passes.
    #[must_use]
    pub fn or_tag(mut self, tag: Tag) -> Self {
        self.more.push(tag);
        self
    }

    /// Sets the bytes the sender signed before the body.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<Vec<u8>>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Signs `prefix ‖ content(body)` instead of `prefix ‖ body`; `content`
    /// answers `None` when the body cannot be what the sender signed (the
    /// delivery is then a 401 `signature_mismatch`).
    ///
    /// It runs once per delivery, after the body has arrived and before any
    /// key is tried; the result is one allocation, so schemes that sign the
    /// body as it is should not use it.
    #[must_use]
    pub fn with_content<F>(mut self, content: F) -> Self
    where
        F: Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync + 'static,
    {
        self.content = Some(Arc::new(content));
        self
    }

    /// The signed bytes that precede the body (or its content).
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// What follows the prefix in the signed bytes: the body itself
    /// (borrowed), or what the content function makes of it; `None` when
    /// the content function refuses the body.
    pub fn content<'b>(&self, body: &'b [u8]) -> Option<std::borrow::Cow<'b, [u8]>> {
        match &self.content {
            None => Some(std::borrow::Cow::Borrowed(body)),
            Some(content) => content(body).map(std::borrow::Cow::Owned),
        }
    }

    /// Every candidate tag, first one first.
    pub fn tags(&self) -> impl Iterator<Item = &Tag> {
        std::iter::once(&self.first).chain(&self.more)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signature")
            .field("prefix", &String::from_utf8_lossy(&self.prefix))
            .field("content_fn", &self.content.is_some())
            .field("tags", &self.tags().collect::<Vec<_>>())
            .finish()
    }
}
