//! Replies to a provider's endpoint check ([`Scheme::handshake`](super::Scheme::handshake)),
//! answered by the layer itself: Slack's and Zoom's JSON, Twitch's plain
//! challenge, Discord's `PONG`.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response};
use http_body_util::Full;

/// A `200` reply with `body` as `content_type`.
pub(crate) fn reply(content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A `200` JSON reply.
pub(crate) fn json_reply(value: &serde_json::Value) -> Response<Full<Bytes>> {
    reply("application/json", value.to_string())
}
