//! The header parsers of the providers beyond NumberOTP, Numero and GitHub
//! (which have targets of their own), one target: the
//! first byte picks the scheme, the rest is split at `\n` into header
//! values, dealt round-robin to that scheme's headers (Twilio's last piece
//! is also the request's query). Invariants: no panic; a refusal is a 401;
//! an accepted signature holds only tags of the algorithms the scheme
//! verifies, each exactly its algorithm's length.
#![no_main]

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use libfuzzer_sys::fuzz_target;
use tower_webhook::{Algorithm, LayerAnswer, Scheme, Signature};
use tower_webhook::{
    discord, flutterwave, lemonsqueezy, linear, paddle, paystack, shopify, slack, square, standard,
    twilio, twitch, woocommerce, zoom,
};
use tower_webhook_fuzz::split_values;

/// Never stale: the fuzzer explores the formats, not the clock.
const ANY_TIME: Duration = Duration::from_secs(u64::MAX);

fn headers(names: &[&'static str], values: &[&[u8]]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (i, value) in values.iter().enumerate() {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.append(HeaderName::from_static(names[i % names.len()]), value);
        }
    }
    map
}

fn check(result: Result<Signature, LayerAnswer>, algorithms: &[Algorithm]) {
    match result {
        Ok(signature) => {
            for tag in signature.tags() {
                assert!(algorithms.contains(&tag.algorithm()), "{tag:?}");
                assert_eq!(tag.as_bytes().len(), tag.algorithm().tag_len());
            }
        }
        Err(rejection) => assert_eq!(
            rejection.status(),
            StatusCode::UNAUTHORIZED,
            "{rejection:?}"
        ),
    }
}

fn run<S: Scheme>(scheme: S, names: &[&'static str], values: &[&[u8]]) {
    let algorithms = [scheme.algorithm()];
    check(scheme.signature(&headers(names, values)), &algorithms);
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let values = split_values(rest);
    let hmac = Algorithm::HmacSha256;
    match pick % 15 {
        0 => run(shopify::Shopify, &["x-shopify-hmac-sha256"], &values),
        1 => run(
            slack::Slack::new().tolerance(ANY_TIME),
            &["x-slack-signature", "x-slack-request-timestamp"],
            &values,
        ),
        2 => run(
            paddle::Paddle::new().tolerance(ANY_TIME),
            &["paddle-signature"],
            &values,
        ),
        3 => run(linear::Linear::new(), &["linear-signature"], &values),
        4 => run(
            zoom::Zoom::new().tolerance(ANY_TIME),
            &["x-zm-signature", "x-zm-request-timestamp"],
            &values,
        ),
        5 => run(
            twitch::Twitch::new().tolerance(ANY_TIME),
            &[
                "twitch-eventsub-message-signature",
                "twitch-eventsub-message-id",
                "twitch-eventsub-message-timestamp",
            ],
            &values,
        ),
        6 => run(
            woocommerce::WooCommerce,
            &["x-wc-webhook-signature"],
            &values,
        ),
        7 => run(lemonsqueezy::LemonSqueezy, &["x-signature"], &values),
        8 => run(
            flutterwave::Flutterwave::new(),
            &["flutterwave-signature"],
            &values,
        ),
        9 => run(
            flutterwave::Flutterwave::verif_hash(),
            &["verif-hash"],
            &values,
        ),
        10 => run(paystack::Paystack, &["x-paystack-signature"], &values),
        11 => {
            let scheme = twilio::Twilio::new("https://example.com/twilio");
            let (query, values) = values
                .split_last()
                .map_or((&b""[..], &values[..]), |(q, v)| (*q, v));
            let uri = std::str::from_utf8(query)
                .ok()
                .and_then(|q| format!("/twilio?{q}").parse::<Uri>().ok())
                .unwrap_or_else(|| Uri::from_static("/twilio"));
            let names = ["x-twilio-signature", "x-twilio-webhooks-signature-settings"];
            check(
                scheme.request_signature(&uri, &headers(&names, values)),
                &[Algorithm::HmacSha1],
            );
        }
        12 => run(
            square::Square::new("https://example.com/square"),
            &["x-square-hmacsha256-signature"],
            &values,
        ),
        13 => run(
            discord::Discord::new().tolerance(ANY_TIME),
            &["x-signature-ed25519", "x-signature-timestamp"],
            &values,
        ),
        _ => {
            let names = ["webhook-signature", "webhook-id", "webhook-timestamp"];
            let scheme = standard::Standard::new().tolerance(ANY_TIME);
            check(
                scheme.signature(&headers(&names, &values)),
                &[hmac, Algorithm::Ed25519],
            );
        }
    }
});
