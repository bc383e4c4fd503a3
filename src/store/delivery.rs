//! [`Delivery`]: a verified request as the intake records it, and the one
//! text form of its head that every backend stores.

use std::fmt;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::Full;

use super::{IdempotencyKey, StoreError};

/// A queued delivery's order key, handed from the layer's checks to
/// [`Delivery::verified`] in the request's extensions.
#[derive(Clone)]
pub(crate) struct OrderKey(pub(crate) String);

/// A verified delivery: what a worker needs to rebuild the request and run
/// the handler on it.
#[derive(Clone)]
pub struct Delivery {
    /// The scheme's name: which layer's handler runs the job.
    pub scheme: String,
    /// The event id, as text.
    pub event_id: String,
    /// The request method.
    pub method: Method,
    /// The request URI, as received (path and query).
    pub uri: Uri,
    /// Every request header, as received.
    pub headers: HeaderMap,
    /// The raw body, exactly the bytes that were verified.
    pub body: Bytes,
    /// The ordering key the intake computed for the event (see
    /// [`JobQueue::take`](super::queue::JobQueue::take)): jobs of one scheme
    /// with the same key run one at a time, in acceptance order. `None`:
    /// unordered. Backends store it beside the head and the body.
    pub order_key: Option<String>,
}

impl fmt::Debug for Delivery {
    // Headers and body are left out: they may carry personal data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("scheme", &self.scheme)
            .field("event_id", &self.event_id)
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("body_len", &self.body.len())
            .field("order_key", &self.order_key)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// The record of a verified request, as the intake stores it under
    /// `key`: the request head as it arrived and the raw body.
    /// Its order key, if the layer found one, is in the extensions.
    pub(crate) fn verified(key: &IdempotencyKey, mut parts: Parts, body: Bytes) -> Self {
        Self {
            order_key: parts.extensions.remove::<OrderKey>().map(|key| key.0),
            scheme: key.scheme().to_owned(),
            event_id: key.id().as_str().to_owned(),
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
        }
    }

    /// The request line and headers as one byte string:
    /// `METHOD URI\n` then `name:value\n` per header, in order. A header
    /// value cannot hold `\r` or `\n` and a name cannot hold `:`, so the
    /// form is unambiguous; it stays readable in a database browser.
    pub fn encode_head(&self) -> Vec<u8> {
        let uri = self.uri.to_string();
        let size = self.method.as_str().len()
            + uri.len()
            + 2
            + self
                .headers
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len() + 2)
                .sum::<usize>();
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(uri.as_bytes());
        out.push(b'\n');
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_str().as_bytes());
            out.push(b':');
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// Rebuilds a delivery from what a backend stored, with no order key
    /// (a backend that stored one sets [`Delivery::order_key`] after).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when `head` is not what [`Delivery::encode_head`]
    /// wrote.
    pub fn decode(
        scheme: String,
        event_id: String,
        head: &[u8],
        body: Bytes,
    ) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::corrupt(format!("a stored delivery has {what}"));
        let mut lines = head.split(|&b| b == b'\n');
        let request_line = lines.next().ok_or_else(|| corrupt("no request line"))?;
        let space = request_line
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| corrupt("a malformed request line"))?;
        let method =
            Method::from_bytes(&request_line[..space]).map_err(|_| corrupt("an invalid method"))?;
        let uri =
            Uri::try_from(&request_line[space + 1..]).map_err(|_| corrupt("an invalid URI"))?;
        let mut headers = HeaderMap::new();
        for line in lines.filter(|line| !line.is_empty()) {
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or_else(|| corrupt("a malformed header line"))?;
            let name = HeaderName::from_bytes(&line[..colon])
                .map_err(|_| corrupt("an invalid header name"))?;
            let value = HeaderValue::from_bytes(&line[colon + 1..])
                .map_err(|_| corrupt("an invalid header value"))?;
            headers.append(name, value);
        }
        Ok(Self {
            scheme,
            event_id,
            method,
            uri,
            headers,
            body,
            order_key: None,
        })
    }

    /// The request the handler sees: method, URI, headers and body as they
    /// arrived (extensions are added by the worker).
    pub fn into_request(self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body));
        *request.method_mut() = self.method;
        *request.uri_mut() = self.uri;
        *request.headers_mut() = self.headers;
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_round_trips_repeated_and_opaque_headers() {
        let mut headers = HeaderMap::new();
        headers.append("x-webhook-signature", HeaderValue::from_static("a+b/c=="));
        headers.append("x-multi", HeaderValue::from_static("one"));
        headers.append("x-multi", HeaderValue::from_static("two: with colon"));
        headers.append("x-opaque", HeaderValue::from_bytes(b"\xfe\xff").unwrap());
        let delivery = Delivery {
            scheme: "numero".into(),
            event_id: "evt_1".into(),
            method: Method::POST,
            uri: "/webhooks/numero?x=1".parse().unwrap(),
            headers,
            body: Bytes::from_static(b"{}"),
            order_key: None,
        };
        let head = delivery.encode_head();
        let back = Delivery::decode(
            "numero".into(),
            "evt_1".into(),
            &head,
            delivery.body.clone(),
        )
        .unwrap();
        assert_eq!(back.method, Method::POST);
        assert_eq!(back.uri, delivery.uri);
        assert_eq!(back.headers, delivery.headers);
        assert!(Delivery::decode(String::new(), String::new(), b"POST", Bytes::new()).is_err());
    }
}
