//! Who may use the admin routes, and how much of a body they may send.
//!
//! The admin routes (`GET /events`, `/queue`, `/dead-letters`,
//! `POST /dead-letters/replay`) show and replay what the webhooks carried.
//! On a loopback address only this machine reaches them, and they are
//! open; on any other address they need `ADMIN_TOKEN`, sent as
//! `Authorization: Bearer <token>`, and the receiver does not start without
//! it. Every route that is not a webhook route (which has its layer's
//! bounds) reads its body within the sender deadline and up to
//! [`MAX_BODY_BYTES`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tower_webhook::LayerAnswer;

/// The variable holding the admin token.
pub const TOKEN_VAR: &str = "ADMIN_TOKEN";

/// The largest body an admin route reads: a replay request is a key.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Who may use the admin routes.
#[derive(Clone)]
pub enum Access {
    /// Anyone who can connect: the receiver listens on a loopback address.
    Open,
    /// Only a request carrying the token; kept as its SHA-256, so that the
    /// comparison takes the same time whatever the length of a guess.
    Token(Arc<[u8; 32]>),
}

impl Access {
    /// The access for a receiver listening on `addr`, with `token` (the
    /// value of [`TOKEN_VAR`], if set): the token's whenever there is one,
    /// open on a loopback address without one.
    ///
    /// # Errors
    ///
    /// On any other address without a token (an empty one counts as none).
    pub fn new(addr: SocketAddr, token: Option<String>) -> Result<Self, String> {
        match token.filter(|token| !token.is_empty()) {
            Some(token) => Ok(Self::Token(Arc::new(Sha256::digest(token).into()))),
            None if addr.ip().to_canonical().is_loopback() => Ok(Self::Open),
            None => Err(format!(
                "--addr {addr} is not a loopback address, so the admin routes \
                 (/events, /queue, /dead-letters) need a token: set {TOKEN_VAR}"
            )),
        }
    }

    /// [`Access::new`] with the token from the environment.
    ///
    /// # Errors
    ///
    /// As [`Access::new`], and when the variable is not UTF-8.
    pub fn from_env(addr: SocketAddr) -> Result<Self, String> {
        let token = match std::env::var(TOKEN_VAR) {
            Ok(token) => Some(token),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(format!("{TOKEN_VAR} is not UTF-8"));
            }
        };
        Self::new(addr, token)
    }

    /// One line for the start-up log; never the token.
    pub fn describe(&self) -> String {
        match self {
            Self::Open => "admin routes (/events, /queue, /dead-letters): open, \
                           on a loopback address; set ADMIN_TOKEN to require a token"
                .to_owned(),
            Self::Token(_) => format!(
                "admin routes (/events, /queue, /dead-letters): require \
                 `Authorization: Bearer ${TOKEN_VAR}`"
            ),
        }
    }

    /// Whether `request` may go on.
    fn admits(&self, request: &Request) -> bool {
        let Self::Token(expected) = self else {
            return true;
        };
        // The scheme's name is case-insensitive (RFC 9110 §11.1).
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.as_bytes().split_at_checked(b"Bearer ".len()))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(b"Bearer "))
            .map_or(&[][..], |(_, token)| token);
        let presented: [u8; 32] = Sha256::digest(presented).into();
        bool::from(presented.ct_eq(&**expected))
    }
}

/// Middleware: answers `401 {"error":"unauthorized"}` to a request
/// [`Access`] does not admit, before its body is read.
pub async fn require(State(access): State<Access>, request: Request, next: Next) -> Response {
    if access.admits(&request) {
        return next.run(request).await;
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"error":"unauthorized"}"#,
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Middleware: reads the whole body within `deadline` and up to
/// [`MAX_BODY_BYTES`], then hands it on; answers as the webhook layer does
/// when it cannot (`413 body_too_large`, `408 body_timeout` with the
/// connection closed, `400 body_unreadable`). A total deadline, so that a
/// body trickled a byte at a time cannot hold a connection.
pub async fn bound_body(
    State(deadline): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return rejection(LayerAnswer::BodyTooLarge);
    }
    let (parts, body) = request.into_parts();
    let collected = tokio::time::timeout(deadline, Limited::new(body, MAX_BODY_BYTES).collect());
    match collected.await {
        Ok(Ok(collected)) => {
            let body = Body::from(collected.to_bytes());
            next.run(Request::from_parts(parts, body)).await
        }
        Ok(Err(error)) if error.is::<LengthLimitError>() => rejection(LayerAnswer::BodyTooLarge),
        Ok(Err(_)) => rejection(LayerAnswer::BodyUnreadable),
        Err(_) => rejection(LayerAnswer::BodyTimeout),
    }
}

fn rejection(rejection: LayerAnswer) -> Response {
    rejection.into_response().map(Body::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(authorization: Option<&str>) -> Request {
        let mut request = Request::new(Body::empty());
        if let Some(value) = authorization {
            let value = HeaderValue::from_str(value).unwrap();
            request.headers_mut().insert(header::AUTHORIZATION, value);
        }
        request
    }

    #[test]
    fn loopback_is_open_without_a_token_and_other_addresses_need_one() {
        for addr in ["127.0.0.1:3000", "[::1]:3000", "[::ffff:127.0.0.1]:3000"] {
            let access = Access::new(addr.parse().unwrap(), None).unwrap();
            assert!(access.admits(&request(None)), "{addr}");
        }
        for addr in ["0.0.0.0:3000", "[::]:3000", "192.0.2.1:3000"] {
            let error = Access::new(addr.parse().unwrap(), None).err().unwrap();
            assert!(error.contains(TOKEN_VAR), "{addr}: {error}");
            let empty = Access::new(addr.parse().unwrap(), Some(String::new()));
            assert!(empty.is_err(), "{addr}");
        }
    }

    #[test]
    fn a_token_admits_its_bearer_only_and_is_never_described() {
        let token = "s3cret token";
        for addr in ["127.0.0.1:3000", "0.0.0.0:3000"] {
            let access = Access::new(addr.parse().unwrap(), Some(token.into())).unwrap();
            assert!(access.admits(&request(Some("Bearer s3cret token"))));
            assert!(access.admits(&request(Some("bearer s3cret token"))));
            for refused in [
                None,
                Some("Bearer s3cret"),
                Some("Bearer s3cret tokens"),
                Some("Bearer  s3cret token"),
                Some("Basic s3cret token"),
                Some("s3cret token"),
            ] {
                assert!(!access.admits(&request(refused)), "{refused:?}");
            }
            assert!(!access.describe().contains(token));
        }
    }
}
