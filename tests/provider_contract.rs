//! The end-to-end contract (valid, duplicate, tampered, missing, rotation,
//! concurrency; the tolerance window where a timestamp is signed) for every
//! built-in provider and a custom scheme, and the handshakes the layer
//! answers itself: through a real axum server on 127.0.0.1 and a real HTTP
//! client. `every_builtin_provider_has_a_case` holds the list of cases to
//! the crate's provider list, so a new provider cannot go untested.

#[macro_use]
#[path = "provider_contract/harness.rs"]
mod harness;
#[path = "provider_contract/coverage.rs"]
mod coverage;
#[path = "provider_contract/github_standard_stripe_custom.rs"]
mod github_standard_stripe_custom;
#[path = "provider_contract/numberotp_numero.rs"]
mod numberotp_numero;

use std::time::{Duration, UNIX_EPOCH};

use http::StatusCode;
use http::header::HeaderName;
#[cfg(feature = "ed25519")]
use tower_webhook::discord;
use tower_webhook::sign;
use tower_webhook::{
    flutterwave, lemonsqueezy, linear, paddle, paystack, shopify, slack, square, twilio, twitch,
    woocommerce, zoom,
};

use github_standard_stripe_custom::{CustomCase, GitHubCase, StandardCase, StripeCase};
use harness::*;
use numberotp_numero::{NumberOtpCase, NumeroCase};

contracts! {
    numberotp_contract => NumberOtpCase,
    numero_contract => NumeroCase,
    github_contract => GitHubCase,
    standard_contract => StandardCase,
    stripe_contract => StripeCase,
    shopify_contract => ShopifyCase,
    slack_contract => SlackCase,
    paddle_contract => PaddleCase,
    linear_contract => LinearCase,
    zoom_contract => ZoomCase,
    twitch_contract => TwitchCase,
    woocommerce_contract => WooCommerceCase,
    lemonsqueezy_contract => LemonSqueezyCase,
    flutterwave_contract => FlutterwaveCase,
    paystack_contract => PaystackCase,
    twilio_contract => TwilioCase,
    square_contract => SquareCase,
    #[cfg(feature = "ed25519")]
    discord_contract => DiscordCase,
    custom_contract => CustomCase,
}

fn at_now<T>(
    with_clock: impl FnOnce(Box<dyn Fn() -> std::time::SystemTime + Send + Sync>) -> T,
) -> T {
    with_clock(Box::new(|| UNIX_EPOCH + Duration::from_secs(NOW)))
}

fn header(name: &'static str, value: String) -> (HeaderName, String) {
    (HeaderName::from_static(name), value)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// A provider that signs the body alone, keyed on the body digest.
macro_rules! digest_case {
    ($case:ident, $scheme:expr, $event:ty, $header:literal, $sign:path, $body:literal) => {
        struct $case;

        impl Provider for $case {
            type S = <$event as EventOf>::S;
            fn scheme(&self) -> Self::S {
                $scheme
            }
            fn secrets(&self) -> [String; 2] {
                [
                    concat!($header, "-old-secret").into(),
                    concat!($header, "-new-secret").into(),
                ]
            }
            fn body(&self, n: u32) -> Vec<u8> {
                format!($body, n = n).into_bytes()
            }
            fn sign_at(
                &self,
                secret: &str,
                _: u32,
                body: &[u8],
                _: u64,
            ) -> Vec<(HeaderName, String)> {
                vec![header($header, $sign(secret.as_bytes(), body))]
            }
            fn event_id(&self, _: u32, body: &[u8]) -> String {
                sha256_hex(body)
            }
            fn seen_id(event: &$event) -> String {
                event.digest.to_string()
            }
        }
    };
}

/// Ties an event type to its scheme, for `digest_case!`.
trait EventOf {
    type S: tower_webhook::Scheme;
}

macro_rules! event_of {
    ($($event:ty => $scheme:ty),* $(,)?) => {
        $(impl EventOf for $event { type S = $scheme; })*
    };
}

event_of! {
    shopify::ShopifyEvent => shopify::Shopify,
    woocommerce::WooCommerceEvent => woocommerce::WooCommerce,
    lemonsqueezy::LemonSqueezyEvent => lemonsqueezy::LemonSqueezy,
    paystack::PaystackEvent => paystack::Paystack,
    flutterwave::FlutterwaveEvent => flutterwave::Flutterwave,
}

digest_case!(
    ShopifyCase,
    shopify::Shopify,
    shopify::ShopifyEvent,
    "x-shopify-hmac-sha256",
    tower_webhook::shopify::sign,
    r#"{{"id":{n},"email":"a@example.com"}}"#
);
digest_case!(
    WooCommerceCase,
    woocommerce::WooCommerce,
    woocommerce::WooCommerceEvent,
    "x-wc-webhook-signature",
    tower_webhook::woocommerce::sign,
    r#"{{"id":{n},"status":"processing"}}"#
);
digest_case!(
    LemonSqueezyCase,
    lemonsqueezy::LemonSqueezy,
    lemonsqueezy::LemonSqueezyEvent,
    "x-signature",
    tower_webhook::lemonsqueezy::sign,
    r#"{{"meta":{{"event_name":"order_created"}},"data":{{"type":"orders","id":"{n}"}}}}"#
);
digest_case!(
    PaystackCase,
    paystack::Paystack,
    paystack::PaystackEvent,
    "x-paystack-signature",
    tower_webhook::paystack::sign,
    r#"{{"event":"charge.success","data":{{"id":{n},"reference":"ref{n}"}}}}"#
);
digest_case!(
    FlutterwaveCase,
    flutterwave::Flutterwave::new(),
    flutterwave::FlutterwaveEvent,
    "flutterwave-signature",
    tower_webhook::flutterwave::sign,
    r#"{{"type":"charge.completed","data":{{"id":{n},"tx_ref":"t{n}"}}}}"#
);

struct SlackCase;

impl Provider for SlackCase {
    type S = slack::Slack;
    fn scheme(&self) -> slack::Slack {
        at_now(|now| slack::Slack::new().clock(now))
    }
    fn secrets(&self) -> [String; 2] {
        [
            "8f742231b10e8888abcd99yyyzzz85a5".into(),
            "slack-new-signing-secret".into(),
        ]
    }
    fn body(&self, n: u32) -> Vec<u8> {
        format!(r#"{{"type":"event_callback","event_id":"Ev{n}","team_id":"T1","event_time":{NOW},"event":{{"type":"app_mention"}}}}"#).into_bytes()
    }
    fn sign_at(&self, secret: &str, _: u32, body: &[u8], ts: u64) -> Vec<(HeaderName, String)> {
        vec![
            header(
                "x-slack-signature",
                tower_webhook::slack::sign(secret.as_bytes(), ts, body),
            ),
            header("x-slack-request-timestamp", ts.to_string()),
        ]
    }
    fn event_id(&self, n: u32, _: &[u8]) -> String {
        format!("Ev{n}")
    }
    fn seen_id(event: &slack::SlackEvent) -> String {
        event.id.to_string()
    }
    fn tolerance(&self) -> Option<u64> {
        Some(slack::DEFAULT_TOLERANCE.as_secs())
    }
}

struct ZoomCase;

impl Provider for ZoomCase {
    type S = zoom::Zoom;
    fn scheme(&self) -> zoom::Zoom {
        at_now(|now| zoom::Zoom::new().clock(now))
    }
    fn secrets(&self) -> [String; 2] {
        [
            "zoom-old-secret-token".into(),
            "zoom-new-secret-token".into(),
        ]
    }
    fn body(&self, n: u32) -> Vec<u8> {
        format!(r#"{{"event":"meeting.started","event_ts":{n},"payload":{{}}}}"#).into_bytes()
    }
    fn sign_at(&self, secret: &str, _: u32, body: &[u8], ts: u64) -> Vec<(HeaderName, String)> {
        vec![
            header(
                "x-zm-signature",
                tower_webhook::zoom::sign(secret.as_bytes(), ts, body),
            ),
            header("x-zm-request-timestamp", ts.to_string()),
        ]
    }
    fn event_id(&self, _: u32, body: &[u8]) -> String {
        sha256_hex(body)
    }
    fn seen_id(event: &zoom::ZoomEvent) -> String {
        event.digest.to_string()
    }
    fn tolerance(&self) -> Option<u64> {
        Some(zoom::DEFAULT_TOLERANCE.as_secs())
    }
}

struct PaddleCase;

impl Provider for PaddleCase {
    type S = paddle::Paddle;
    fn scheme(&self) -> paddle::Paddle {
        at_now(|now| paddle::Paddle::new().clock(now))
    }
    fn secrets(&self) -> [String; 2] {
        [
            "pdl_ntfset_old_secret".into(),
            "pdl_ntfset_new_secret".into(),
        ]
    }
    fn body(&self, n: u32) -> Vec<u8> {
        format!(r#"{{"event_id":"evt_{n}","event_type":"transaction.completed","occurred_at":"2023-11-14T22:13:20Z","notification_id":"ntf_{n}","data":{{}}}}"#).into_bytes()
    }
    fn sign_at(&self, secret: &str, _: u32, body: &[u8], ts: u64) -> Vec<(HeaderName, String)> {
        vec![header(
            "paddle-signature",
            tower_webhook::paddle::sign(secret.as_bytes(), ts, body),
        )]
    }
    fn event_id(&self, n: u32, _: &[u8]) -> String {
        format!("evt_{n}")
    }
    fn seen_id(event: &paddle::PaddleEvent) -> String {
        event.event_id.to_string()
    }
    fn tolerance(&self) -> Option<u64> {
        Some(paddle::DEFAULT_TOLERANCE.as_secs())
    }
}

struct LinearCase;

impl Provider for LinearCase {
    type S = linear::Linear;
    fn scheme(&self) -> linear::Linear {
        at_now(|now| linear::Linear::new().clock(now))
    }
    fn secrets(&self) -> [String; 2] {
        [
            "lin_wh_old_0123456789abcdef".into(),
            "lin_wh_new_0123456789abcdef".into(),
        ]
    }
    fn body(&self, n: u32) -> Vec<u8> {
        linear_body(n, NOW * 1000)
    }
    fn sign_at(&self, secret: &str, _: u32, body: &[u8], _: u64) -> Vec<(HeaderName, String)> {
        vec![header(
            "linear-signature",
            tower_webhook::linear::sign(secret.as_bytes(), body),
        )]
    }
    fn event_id(&self, _: u32, body: &[u8]) -> String {
        sha256_hex(body)
    }
    fn seen_id(event: &linear::LinearEvent) -> String {
        event.digest.to_string()
    }
}

fn linear_body(n: u32, millis: u64) -> Vec<u8> {
    format!(r#"{{"action":"create","type":"Issue","data":{{"id":"issue-{n}"}},"webhookTimestamp":{millis}}}"#).into_bytes()
}

struct TwitchCase;

/// `secs` as RFC 3339 UTC with nanoseconds, as Twitch sends it.
fn rfc3339(secs: u64) -> String {
    let whole =
        tower_webhook::sign::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
    whole.replace('Z', ".123456789Z")
}

impl Provider for TwitchCase {
    type S = twitch::Twitch;
    fn scheme(&self) -> twitch::Twitch {
        at_now(|now| twitch::Twitch::new().clock(now))
    }
    fn secrets(&self) -> [String; 2] {
        ["twitch-old-secret".into(), "twitch-new-secret".into()]
    }
    fn body(&self, n: u32) -> Vec<u8> {
        format!(r#"{{"subscription":{{"type":"channel.follow","id":"sub{n}"}},"event":{{"user_id":"{n}"}}}}"#).into_bytes()
    }
    fn sign_at(&self, secret: &str, n: u32, body: &[u8], ts: u64) -> Vec<(HeaderName, String)> {
        let id = format!("msg-{n}");
        let time = rfc3339(ts);
        vec![
            header(
                "twitch-eventsub-message-signature",
                tower_webhook::twitch::sign(secret.as_bytes(), &id, &time, body),
            ),
            header("twitch-eventsub-message-id", id),
            header("twitch-eventsub-message-timestamp", time),
        ]
    }
    fn event_id(&self, n: u32, _: &[u8]) -> String {
        format!("msg-{n}")
    }
    fn seen_id(event: &twitch::TwitchEvent) -> String {
        event.message_id.to_string()
    }
    fn tolerance(&self) -> Option<u64> {
        Some(twitch::DEFAULT_TOLERANCE.as_secs())
    }
}

const SQUARE_URL: &str = "https://example.com/webhooks/square";

struct SquareCase;

impl Provider for SquareCase {
    type S = square::Square;
    fn scheme(&self) -> square::Square {
        square::Square::new(SQUARE_URL)
    }
    fn secrets(&self) -> [String; 2] {
        ["sq-old-signature-key".into(), "sq-new-signature-key".into()]
    }
    fn body(&self, n: u32) -> Vec<u8> {
        format!(r#"{{"merchant_id":"M1","type":"payment.updated","event_id":"ev-{n}","created_at":"2023-11-14T22:13:20Z","data":{{}}}}"#).into_bytes()
    }
    fn sign_at(&self, secret: &str, _: u32, body: &[u8], _: u64) -> Vec<(HeaderName, String)> {
        vec![header(
            "x-square-hmacsha256-signature",
            tower_webhook::square::sign(secret.as_bytes(), SQUARE_URL, body),
        )]
    }
    fn event_id(&self, n: u32, _: &[u8]) -> String {
        format!("ev-{n}")
    }
    fn seen_id(event: &square::SquareEvent) -> String {
        event.event_id.to_string()
    }
}

const TWILIO_URL: &str = "https://example.com/webhooks/twilio";

struct TwilioCase;

impl TwilioCase {
    fn params(n: u32) -> Vec<(&'static str, String)> {
        vec![
            ("MessageSid", format!("SM{n}")),
            ("MessageStatus", "delivered".into()),
            ("AccountSid", "AC1".into()),
            ("Body", format!("hello {n} & goodbye")),
        ]
    }
}

impl Provider for TwilioCase {
    type S = twilio::Twilio;
    fn scheme(&self) -> twilio::Twilio {
        twilio::Twilio::new(TWILIO_URL)
    }
    fn secrets(&self) -> [String; 2] {
        ["twilio-old-token".into(), "twilio-new-token".into()]
    }
    fn body(&self, n: u32) -> Vec<u8> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (name, value) in Self::params(n) {
            form.append_pair(name, &value);
        }
        form.finish().into_bytes()
    }
    fn sign_at(&self, secret: &str, n: u32, _: &[u8], _: u64) -> Vec<(HeaderName, String)> {
        let params = Self::params(n);
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        vec![header(
            "x-twilio-signature",
            tower_webhook::twilio::sign(secret.as_bytes(), TWILIO_URL, &pairs),
        )]
    }
    /// The message sid, then the SHA-256 of what Twilio signed: the URL,
    /// then each parameter's name and value, sorted.
    fn event_id(&self, n: u32, _: &[u8]) -> String {
        let sid = format!("SM{n}");
        let mut params = Self::params(n);
        params.sort();
        let mut signed = TWILIO_URL.to_owned();
        for (name, value) in params {
            signed.push_str(name);
            signed.push_str(&value);
        }
        format!(
            "10:MessageSid{}:{sid}64:{}",
            sid.len(),
            sha256_hex(signed.as_bytes())
        )
    }
    fn seen_id(event: &twilio::TwilioEvent) -> String {
        let sid = event.sid.as_deref().unwrap_or_default();
        format!("10:MessageSid{}:{sid}64:{}", sid.len(), event.signed_digest)
    }
}

#[cfg(feature = "ed25519")]
struct DiscordCase;

#[cfg(feature = "ed25519")]
const DISCORD_SEEDS: [[u8; 32]; 2] = [[1; 32], [2; 32]];

#[cfg(feature = "ed25519")]
impl Provider for DiscordCase {
    type S = discord::Discord;
    fn scheme(&self) -> discord::Discord {
        at_now(|now| discord::Discord::new().clock(now))
    }
    fn secrets(&self) -> [String; 2] {
        DISCORD_SEEDS.map(|seed| sign::ed25519_public_key_hex(&seed))
    }
    fn body(&self, n: u32) -> Vec<u8> {
        format!(r#"{{"id":"interaction-{n}","type":2,"application_id":"app1","data":{{"name":"ping"}}}}"#).into_bytes()
    }
    fn sign_at(&self, public: &str, _: u32, body: &[u8], ts: u64) -> Vec<(HeaderName, String)> {
        let seed = DISCORD_SEEDS
            .iter()
            .find(|seed| sign::ed25519_public_key_hex(seed) == public)
            .expect("a test key");
        vec![
            header(
                "x-signature-ed25519",
                tower_webhook::discord::sign(seed, ts, body),
            ),
            header("x-signature-timestamp", ts.to_string()),
        ]
    }
    fn event_id(&self, n: u32, _: &[u8]) -> String {
        format!("interaction-{n}")
    }
    fn seen_id(event: &discord::DiscordEvent) -> String {
        event.id.to_string()
    }
    fn tolerance(&self) -> Option<u64> {
        Some(discord::DEFAULT_TOLERANCE.as_secs())
    }
}

macro_rules! tolerance_test {
    ($($name:ident => $case:expr),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                bounded(tolerance($case)).await;
            }
        )*
    };
}

tolerance_test! {
    slack_timestamp_tolerance => SlackCase,
    zoom_timestamp_tolerance => ZoomCase,
    paddle_timestamp_tolerance => PaddleCase,
    twitch_timestamp_tolerance => TwitchCase,
}

#[cfg(feature = "ed25519")]
tolerance_test! {
    discord_timestamp_tolerance => DiscordCase,
}

/// Linear's timestamp is in the signed body: a stale one verifies, then is
/// refused 401 `stale_timestamp`, and nothing is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linear_stale_body_timestamp() {
    bounded(async {
        let [_, new] = LinearCase.secrets();
        let server = Server::start(&LinearCase, std::slice::from_ref(&new)).await;
        for (n, millis, fresh) in [
            (20, (NOW - 60) * 1000, true),
            (21, (NOW + 60) * 1000, true),
            (22, (NOW - 61) * 1000, false),
            (23, (NOW + 62) * 1000, false),
        ] {
            let body = linear_body(n, millis);
            let headers = LinearCase.sign_at(&new, n, &body, NOW);
            let id = sha256_hex(&body);
            let (status, text) = post_to(&server.url, &headers, body).await;
            if fresh {
                assert!(status.is_success(), "{status} {text}");
                assert_eq!(server.status(&LinearCase, &id), Some(true));
            } else {
                assert_eq!(
                    (status, text.as_str()),
                    (StatusCode::UNAUTHORIZED, r#"{"error":"stale_timestamp"}"#)
                );
                assert_eq!(server.status(&LinearCase, &id), None);
            }
        }
        assert_eq!(server.runs().len(), 2);
    })
    .await;
}

/// Posts a handshake `body` signed by `provider` and returns what the
/// server answered; the handler must not have run, nor the store recorded
/// anything (checked by the caller through `server`).
async fn handshake<P: Provider>(
    provider: &P,
    server: &Server,
    headers: Vec<(HeaderName, String)>,
    body: &str,
) -> (StatusCode, String) {
    let _ = provider;
    post_to(&server.url, &headers, body.as_bytes().to_vec()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_are_answered_by_the_layer_without_the_handler() {
    bounded(async {
        // Slack url_verification.
        let [_, secret] = SlackCase.secrets();
        let server = Server::start(&SlackCase, std::slice::from_ref(&secret)).await;
        let body = r#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
        let headers = SlackCase.sign_at(&secret, 0, body.as_bytes(), NOW);
        let (status, text) = handshake(&SlackCase, &server, headers.clone(), body).await;
        assert_eq!(status, StatusCode::OK);
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["challenge"], "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
        // Forged: 401, never answered.
        let (status, _) = handshake(&SlackCase, &server, headers, &body.replace("3eZ", "4eZ")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(server.runs().is_empty());
        assert_eq!(server.store.len(), 0);

        // Zoom endpoint.url_validation.
        let [_, secret] = ZoomCase.secrets();
        let server = Server::start(&ZoomCase, &[secret.clone(), "zoom-other-secret-token".into()]).await;
        let body = r#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
        let headers = ZoomCase.sign_at(&secret, 0, body.as_bytes(), NOW);
        let (status, text) = handshake(&ZoomCase, &server, headers, body).await;
        assert_eq!(status, StatusCode::OK);
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
        // Independently: ring's HMAC-SHA256 of the plain token under the
        // secret that signed the request.
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let expected = hex(ring::hmac::sign(&key, b"qgg8vlvZRS6UYooatFL8Aw").as_ref());
        assert_eq!(answer["encryptedToken"], expected.as_str());
        assert!(server.runs().is_empty());
        assert_eq!(server.store.len(), 0);

        // Twitch webhook_callback_verification.
        let [_, secret] = TwitchCase.secrets();
        let server = Server::start(&TwitchCase, std::slice::from_ref(&secret)).await;
        let body = r#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"id":"f1c2a387","type":"channel.follow","version":"1"}}"#;
        let mut headers = TwitchCase.sign_at(&secret, 90, body.as_bytes(), NOW);
        headers.push(header("twitch-eventsub-message-type", "webhook_callback_verification".into()));
        let (status, text) = handshake(&TwitchCase, &server, headers, body).await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, "pogchamp-kappa-360noscope-vohiyo"));
        assert!(server.runs().is_empty());
        assert_eq!(server.store.len(), 0);

        // Discord PING.
        #[cfg(feature = "ed25519")]
        discord_ping().await;
    })
    .await;
}

#[cfg(feature = "ed25519")]
async fn discord_ping() {
    {
        let secrets = DiscordCase.secrets();
        let server = Server::start(&DiscordCase, &secrets).await;
        let body = r#"{"id":"ping-1","type":1,"application_id":"app1"}"#;
        let headers = DiscordCase.sign_at(&secrets[1], 0, body.as_bytes(), NOW);
        let (status, text) = handshake(&DiscordCase, &server, headers.clone(), body).await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, r#"{"type":1}"#));
        let (status, _) = handshake(
            &DiscordCase,
            &server,
            headers,
            &body.replace("ping-1", "ping-2"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(server.runs().is_empty());
        assert_eq!(server.store.len(), 0);
    }
}

/// Every in-call callback of one call carries `CallStatus=in-progress`:
/// two Gather callbacks are two events when their signed parameters differ
/// (other digits pressed), or when the same digits come to another action
/// URL (the query is signed); an exact redelivery is still a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_in_call_callbacks_are_one_event_each() {
    bounded(async {
        let [_, token] = TwilioCase.secrets();
        let server = Server::start(&TwilioCase, std::slice::from_ref(&token)).await;
        let gather = |query: &str, digits: &str| {
            let params = [
                ("CallSid", "CA1234"),
                ("AccountSid", "AC1"),
                ("CallStatus", "in-progress"),
                ("Digits", digits),
                ("FinishedOnKey", "#"),
            ];
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.extend_pairs(params);
            let signed_url = format!("{TWILIO_URL}?{query}");
            let signature = tower_webhook::twilio::sign(token.as_bytes(), &signed_url, &params);
            let url = format!("{}?{query}", server.url);
            let headers = vec![header("x-twilio-signature", signature)];
            (url, headers, form.finish().into_bytes())
        };
        let callbacks = [
            gather("step=menu", "1"),
            gather("step=menu", "2"),
            gather("step=confirm", "1"),
        ];
        for (ran, (url, headers, body)) in callbacks.iter().enumerate() {
            let (status, text) = post_to(url, headers, body.clone()).await;
            assert_eq!((status, text.as_str()), (StatusCode::OK, "ok"), "{url}");
            assert_eq!(server.runs().len(), ran + 1, "{url}");
        }
        for (url, headers, body) in &callbacks {
            let (status, text) = post_to(url, headers, body.clone()).await;
            assert_eq!(
                (status, text.as_str()),
                (StatusCode::OK, DUPLICATE),
                "{url}"
            );
        }
        assert_eq!(server.runs().len(), callbacks.len());
    })
    .await;
}

/// Twilio's JSON variant: the URL carries `bodySHA256`, which must match
/// the body; keyed on the digest of the signed URL, which binds the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_json_body_with_body_sha256() {
    bounded(async {
        let [_, token] = TwilioCase.secrets();
        let base = "http://127.0.0.1/hook";
        let layer =
            tower_webhook::WebhookLayer::new(twilio::Twilio::new(base), token.clone()).unwrap();
        let runs = std::sync::Arc::new(std::sync::Mutex::new(0));
        let seen = runs.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let seen = seen.clone();
                async move {
                    *seen.lock().unwrap() += 1;
                    "ok"
                }
            })
            .layer(layer),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let body = br#"{"ProfileSid":"1","Status":"ok"}"#;
        let (signed_url, signature) =
            tower_webhook::twilio::sign_json(token.as_bytes(), base, body);
        let query = signed_url.split_once('?').unwrap().1;
        let url = format!("http://{addr}/hook?{query}");
        let headers = vec![header("x-twilio-signature", signature)];
        let (status, _) = post_to(&url, &headers, body.to_vec()).await;
        assert!(status.is_success(), "{status}");
        let (status, text) = post_to(&url, &headers, body.to_vec()).await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, DUPLICATE));
        let (status, _) = post_to(
            &url,
            &headers,
            br#"{"ProfileSid":"2","Status":"ok"}"#.to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(*runs.lock().unwrap(), 1);
        task.abort();
    })
    .await;
}
