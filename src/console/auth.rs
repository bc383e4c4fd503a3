//! Who may use the console: the token as a bearer header or the login's
//! cookie, compared as SHA-256 digests in constant time; and the check
//! that keeps a cookie-carrying write from being forged cross-site.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::page;

/// The cookie the login sets: the token's SHA-256, hex.
const COOKIE: &str = "tower_webhook_console";

/// The header a cookie-carrying write must have.
pub(super) const WRITE_HEADER: &str = "x-console-request";

/// The configured token, kept as its SHA-256.
#[derive(Clone)]
pub(super) struct Token(Arc<[u8; 32]>);

impl Token {
    /// `None` for an empty token.
    pub(super) fn new(token: &[u8]) -> Option<Self> {
        (!token.is_empty()).then(|| Self(Arc::new(Sha256::digest(token).into())))
    }

    fn matches(&self, presented: &[u8]) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented).into();
        bool::from(presented.ct_eq(&*self.0))
    }

    fn matches_digest(&self, digest_hex: &[u8]) -> bool {
        let mut digest = [0u8; 32];
        if hex::decode_to_slice(digest_hex, &mut digest).is_err() {
            return false;
        }
        bool::from(digest.ct_eq(&*self.0))
    }

    fn cookie_value(&self) -> String {
        hex::encode(*self.0)
    }
}

/// How a request proved it holds the token, if it did.
#[derive(PartialEq, Eq)]
enum Proof {
    Bearer,
    Cookie,
}

fn proof(token: &Token, headers: &HeaderMap) -> Option<Proof> {
    // The scheme's name is case-insensitive (RFC 9110 §11.1).
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.as_bytes().split_at_checked(b"Bearer ".len()))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(b"Bearer "))
        .map(|(_, presented)| presented);
    if let Some(presented) = bearer {
        return token.matches(presented).then_some(Proof::Bearer);
    }
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            pair.strip_prefix(COOKIE.as_bytes())?.strip_prefix(b"=")
        });
    cookie.and_then(|value| token.matches_digest(value).then_some(Proof::Cookie))
}

/// A cookie-carrying write must come from the page itself: with the
/// custom header (a cross-site form or link cannot send one) and not
/// marked cross-site by the browser.
fn same_origin_write(headers: &HeaderMap) -> bool {
    let marked = headers
        .get(WRITE_HEADER)
        .is_some_and(|value| value.as_bytes() == b"1");
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|value| !matches!(value.as_bytes(), b"same-origin" | b"none"));
    marked && !cross_site
}

/// Middleware: `401` without the token (the page's own route answers
/// with the page, whose login form asks for it), `403` for a write that
/// carries the cookie but not the proof that the page sent it. The login
/// route checks the token it is sent.
pub(super) async fn require(State(token): State<Token>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let write = request.method() != Method::GET && request.method() != Method::HEAD;
    if path == "/login" && request.method() == Method::POST {
        if !same_origin_write(request.headers()) {
            return forbidden();
        }
        return next.run(request).await;
    }
    match proof(&token, request.headers()) {
        Some(Proof::Cookie) if write && !same_origin_write(request.headers()) => forbidden(),
        Some(_) => next.run(request).await,
        None if !write && (path == "/" || path.is_empty()) => page::login_page(),
        None => unauthorized(),
    }
}

pub(super) fn unauthorized() -> Response {
    let mut response = super::api::error(StatusCode::UNAUTHORIZED, "unauthorized");
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn forbidden() -> Response {
    super::api::error(StatusCode::FORBIDDEN, "cross_site_write")
}

/// The body of `POST /login`.
#[derive(serde::Deserialize)]
pub(super) struct Login {
    token: String,
}

/// `POST /login` `{"token":"…"}`: `204` with the cookie when the token is
/// right, `401` otherwise. The cookie's path is where the console is
/// mounted, so it goes to no other route of the application.
pub(super) async fn login(
    State(token): State<Token>,
    OriginalUri(uri): OriginalUri,
    body: axum::body::Bytes,
) -> Response {
    let Ok(Login { token: presented }) = serde_json::from_slice::<Login>(&body) else {
        return super::api::error(StatusCode::BAD_REQUEST, "invalid_json");
    };
    if !token.matches(presented.as_bytes()) {
        return unauthorized();
    }
    let cookie = format!(
        "{COOKIE}={}; Path={}; HttpOnly; SameSite=Strict",
        token.cookie_value(),
        mount_path(uri.path())
    );
    with_cookie(cookie)
}

/// `POST /logout`: clears the cookie.
pub(super) async fn logout(OriginalUri(uri): OriginalUri) -> Response {
    let cookie = format!(
        "{COOKIE}=; Path={}; HttpOnly; SameSite=Strict; Max-Age=0",
        mount_path(uri.path())
    );
    with_cookie(cookie)
}

/// `/console/login` → `/console`; `/login` → `/`.
fn mount_path(path: &str) -> &str {
    let parent = path.rsplit_once('/').map_or("", |(parent, _)| parent);
    if parent.is_empty() { "/" } else { parent }
}

fn with_cookie(cookie: String) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_token_admits_as_bearer_or_as_its_cookie_and_nothing_else() {
        let token = Token::new(b"s3cret token").unwrap();
        let cookie = format!("a=b; {COOKIE}={}", token.cookie_value());
        assert!(
            proof(
                &token,
                &headers(&[("authorization", "Bearer s3cret token")])
            )
            .is_some()
        );
        assert!(
            proof(
                &token,
                &headers(&[("authorization", "bearer s3cret token")])
            )
            .is_some()
        );
        assert!(proof(&token, &headers(&[("cookie", &cookie)])) == Some(Proof::Cookie));
        for refused in [
            headers(&[]),
            headers(&[("authorization", "Bearer s3cret")]),
            headers(&[("authorization", "Basic s3cret token")]),
            headers(&[("cookie", &format!("{COOKIE}=s3cret token"))]),
            headers(&[("cookie", &format!("{COOKIE}={}", "00".repeat(32)))]),
        ] {
            assert!(proof(&token, &refused).is_none(), "{refused:?}");
        }
        assert!(Token::new(b"").is_none());
    }

    #[test]
    fn a_write_needs_the_header_and_no_cross_site_mark() {
        assert!(same_origin_write(&headers(&[(WRITE_HEADER, "1")])));
        assert!(same_origin_write(&headers(&[
            (WRITE_HEADER, "1"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(!same_origin_write(&headers(&[])));
        assert!(!same_origin_write(&headers(&[
            (WRITE_HEADER, "1"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert_eq!(mount_path("/console/login"), "/console");
        assert_eq!(mount_path("/login"), "/");
    }
}
