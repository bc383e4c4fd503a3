//! GitHub, Standard Webhooks, Stripe and a custom scheme: their cases, and
//! what only they promise (GitHub's unsigned delivery header, Standard's
//! signed id).

use std::time::{Duration, UNIX_EPOCH};

use http::StatusCode;
use http::header::HeaderName;
use tower_webhook::custom::{Custom, Encoding};
use tower_webhook::github::GitHub;
use tower_webhook::standard::Standard;
use tower_webhook::stripe::Stripe;

use crate::harness::*;

pub struct GitHubCase;

impl Provider for GitHubCase {
    type S = GitHub;
    fn scheme(&self) -> GitHub {
        GitHub
    }
    fn secrets(&self) -> [String; 2] {
        [
            "gh-old-webhook-secret".into(),
            "gh-new-webhook-secret".into(),
        ]
    }
    fn body(&self, n: u32) -> Vec<u8> {
        format!(r#"{{"action":"opened","number":{n},"repository":{{"full_name":"o/r"}}}}"#)
            .into_bytes()
    }
    fn sign_at(&self, secret: &str, n: u32, body: &[u8], _: u64) -> Vec<(HeaderName, String)> {
        vec![
            (
                HeaderName::from_static("x-hub-signature-256"),
                tower_webhook::github::sign(secret.as_bytes(), body),
            ),
            // Unsigned: the key must not depend on it.
            (
                HeaderName::from_static("x-github-delivery"),
                format!("guid-{n}-{}", rand_suffix()),
            ),
            (
                HeaderName::from_static("x-github-event"),
                "pull_request".into(),
            ),
        ]
    }
    fn event_id(&self, _: u32, body: &[u8]) -> String {
        // Computed independently of the crate.
        hex(ring::digest::digest(&ring::digest::SHA256, body).as_ref())
    }
    fn seen_id(event: &tower_webhook::github::GitHubEvent) -> String {
        event.digest.to_string()
    }
}

pub struct StandardCase;

impl Provider for StandardCase {
    type S = Standard;
    fn scheme(&self) -> Standard {
        Standard::new().clock(|| UNIX_EPOCH + Duration::from_secs(NOW))
    }
    fn secrets(&self) -> [String; 2] {
        [
            tower_webhook::standard::encode_secret(&[1; 24]),
            tower_webhook::standard::encode_secret(&[2; 32]),
        ]
    }
    fn body(&self, n: u32) -> Vec<u8> {
        format!(r#"{{"type":"invoice.paid","data":{{"n":{n}}}}}"#).into_bytes()
    }
    fn sign_at(
        &self,
        secret: &str,
        n: u32,
        body: &[u8],
        timestamp: u64,
    ) -> Vec<(HeaderName, String)> {
        let key = tower_webhook::standard::decode_secret(secret).unwrap();
        let id = format!("msg_{n}");
        let signature = tower_webhook::standard::sign(&key, &id, timestamp, body);
        // Alternate the two header families.
        let family = if n.is_multiple_of(2) {
            "webhook"
        } else {
            "svix"
        };
        let name = |part: &str| HeaderName::try_from(format!("{family}-{part}")).unwrap();
        vec![
            (name("id"), id),
            (name("timestamp"), timestamp.to_string()),
            (
                name("signature"),
                format!("v1a,{} {signature}", "A".repeat(86) + "=="),
            ),
        ]
    }
    fn event_id(&self, n: u32, _: &[u8]) -> String {
        format!("msg_{n}")
    }
    fn seen_id(event: &tower_webhook::standard::StandardEvent) -> String {
        event.id.to_string()
    }
    fn tolerance(&self) -> Option<u64> {
        Some(tower_webhook::standard::DEFAULT_TOLERANCE.as_secs())
    }
}

pub struct StripeCase;

impl Provider for StripeCase {
    type S = Stripe;
    fn scheme(&self) -> Stripe {
        Stripe::new().clock(|| UNIX_EPOCH + Duration::from_secs(NOW))
    }
    fn secrets(&self) -> [String; 2] {
        ["whsec_stripe_old".into(), "whsec_stripe_new".into()]
    }
    fn body(&self, n: u32) -> Vec<u8> {
        format!(r#"{{"id":"evt_{n}","object":"event","type":"charge.succeeded","created":{NOW},"livemode":false}}"#)
            .into_bytes()
    }
    fn sign_at(
        &self,
        secret: &str,
        _: u32,
        body: &[u8],
        timestamp: u64,
    ) -> Vec<(HeaderName, String)> {
        vec![(
            HeaderName::from_static("stripe-signature"),
            format!(
                "{},v0={}",
                tower_webhook::stripe::sign(secret.as_bytes(), timestamp, body),
                "0".repeat(64)
            ),
        )]
    }
    fn event_id(&self, n: u32, _: &[u8]) -> String {
        format!("evt_{n}")
    }
    fn seen_id(event: &tower_webhook::stripe::StripeEvent) -> String {
        event.id.to_string()
    }
    fn tolerance(&self) -> Option<u64> {
        Some(tower_webhook::stripe::DEFAULT_TOLERANCE.as_secs())
    }
}

pub struct CustomCase;

impl CustomCase {
    fn acme() -> Custom {
        Custom::builder("acme", HeaderName::from_static("x-acme-signature"))
            .prefix("v1=")
            .encoding(Encoding::Base64)
            .id_field("event_id")
            .event_type_field("kind")
            .build()
            .unwrap()
    }
}

impl Provider for CustomCase {
    type S = Custom;
    fn scheme(&self) -> Custom {
        Self::acme()
    }
    fn secrets(&self) -> [String; 2] {
        [
            "acme-old-webhook-secret".into(),
            "acme-new-webhook-secret".into(),
        ]
    }
    fn body(&self, n: u32) -> Vec<u8> {
        format!(r#"{{"event_id":"e{n}","kind":"order.paid"}}"#).into_bytes()
    }
    fn sign_at(&self, secret: &str, _: u32, body: &[u8], _: u64) -> Vec<(HeaderName, String)> {
        vec![(
            HeaderName::from_static("x-acme-signature"),
            tower_webhook::custom::sign(&Self::acme(), secret.as_bytes(), body),
        )]
    }
    fn event_id(&self, n: u32, _: &[u8]) -> String {
        format!("e{n}")
    }
    fn seen_id(event: &tower_webhook::custom::CustomEvent) -> String {
        event.id.to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_timestamp_tolerance() {
    bounded(tolerance(StandardCase)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_timestamp_tolerance() {
    bounded(tolerance(StripeCase)).await;
}

/// GitHub's key is the body digest: a replay under a fresh, unsigned
/// `X-GitHub-Delivery` is still a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_delivery_header_is_never_the_key() {
    bounded(async {
        let secret = "gh-delivery-test-secret".to_owned();
        let server = Server::start(&GitHubCase, std::slice::from_ref(&secret)).await;
        let body = GitHubCase.body(7);
        let mut headers = GitHubCase.sign_at(&secret, 7, &body, NOW);
        let (status, _) = post_to(&server.url, &headers, body.clone()).await;
        assert!(status.is_success());
        headers[1].1 = "a-brand-new-guid".into();
        let (status, text) = post_to(&server.url, &headers, body).await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, DUPLICATE));
        assert_eq!(server.runs().len(), 1);
    })
    .await;
}

/// Standard's id is signed: moving a signature to another `webhook-id` is a
/// forgery, not a new event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_id_is_signed() {
    bounded(async {
        let [_, new] = StandardCase.secrets();
        let server = Server::start(&StandardCase, std::slice::from_ref(&new)).await;
        let body = StandardCase.body(8);
        let mut headers = StandardCase.sign_at(&new, 8, &body, NOW);
        headers[0].1 = "msg_replayed".into();
        let (status, _) = post_to(&server.url, &headers, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(server.runs().is_empty());
    })
    .await;
}
