//! The page: one HTML document with its style and script inline, from
//! `page.html`, `console.css` and `console.js` (`include_str!`), served
//! with a `Content-Security-Policy` that allows exactly that style and
//! that script (by their SHA-256), and nothing from anywhere else.

use std::sync::LazyLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

const HTML: &str = include_str!("page.html");
const STYLE: &str = include_str!("console.css");
const SCRIPT: &str = include_str!("console.js");

struct Page {
    html: String,
    policy: HeaderValue,
}

fn hash(source: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(source))
}

static PAGE: LazyLock<Page> = LazyLock::new(|| {
    let html = HTML
        .replace("/*STYLE*/", STYLE)
        .replace("/*SCRIPT*/", SCRIPT);
    let policy = format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; \
         connect-src 'self'; img-src 'self'; form-action 'none'; base-uri 'none'; \
         frame-ancestors 'none'",
        hash(SCRIPT),
        hash(STYLE)
    );
    Page {
        html,
        policy: HeaderValue::from_str(&policy).expect("a header value"),
    }
});

fn serve(status: StatusCode) -> Response {
    let page = &*PAGE;
    let mut response = (status, page.html.clone()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CONTENT_SECURITY_POLICY, page.policy.clone());
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /` with the token.
pub(super) async fn page() -> Response {
    serve(StatusCode::OK)
}

/// `GET /` without it: `401`, and the page, which shows its login form.
pub(super) fn login_page() -> Response {
    let mut response = serve(StatusCode::UNAUTHORIZED);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}
