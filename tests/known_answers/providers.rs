//! Known answers for the providers beyond NumberOTP, Numero and GitHub, and
//! their algorithms (SHA-1, SHA-512, Ed25519).
//!
//! Where the provider publishes a vector, it is used as published (the
//! source is named on each); otherwise the documented recipe is computed
//! independently with `ring` and checked through the scheme's header parser
//! and the layer's verifier.

use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use tower_webhook::{
    Algorithm, Key, Scheme, SecretSet, Signature, Tag, flutterwave, lemonsqueezy, linear, paddle,
    paystack, shopify, slack, square, twilio, twitch, woocommerce, zoom,
};

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn set(algorithm: Algorithm, key: &[u8]) -> SecretSet {
    SecretSet::from_decoded([Key::new(algorithm, key.to_vec())]).unwrap()
}

#[cfg(feature = "ed25519")]
fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn ring_hmac(algorithm: ring::hmac::Algorithm, key: &[u8], content: &[u8]) -> Vec<u8> {
    ring::hmac::sign(&ring::hmac::Key::new(algorithm, key), content)
        .as_ref()
        .to_vec()
}

const NOW: u64 = 1_700_000_000;

/// How a scheme reads headers, the headers a provider sends, its algorithm.
type Case = (
    Box<dyn Fn(&HeaderMap) -> Signature>,
    Vec<(&'static str, String)>,
    Algorithm,
);

fn clock() -> impl Fn() -> std::time::SystemTime + Send + Sync + 'static {
    || std::time::UNIX_EPOCH + std::time::Duration::from_secs(NOW)
}

#[test]
fn rfc_vectors_for_the_other_hmacs() {
    // RFC 2202 §3 test case 1 (HMAC-SHA1), RFC 4231 §4.2 test case 1
    // (HMAC-SHA512).
    let key = [0x0b; 20];
    let cases = [
        (
            Algorithm::HmacSha1,
            "b617318655057264e28bc0b6fb378c8ef146be00",
        ),
        (
            Algorithm::HmacSha512,
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde\
             daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
        ),
    ];
    for (algorithm, expected) in cases {
        let tag = Tag::decode_hex(algorithm, expected.as_bytes()).unwrap();
        let set = set(algorithm, &key);
        assert_eq!(set.verify(&Signature::over_body(tag), b"Hi There"), Ok(()));
        assert!(set.verify(&Signature::over_body(tag), b"Hi there").is_err());
        assert_eq!(tower_webhook::sign::hmac(algorithm, &key, b"Hi There"), tag);
    }
}

#[cfg(feature = "ed25519")]
#[test]
fn rfc8032_ed25519_vectors_verify_strictly() {
    // RFC 8032 §7.1, TEST 1, 2 and 3: (public key, message, signature).
    let cases = [
        (
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ];
    for (public, message, signature) in cases {
        let set = set(Algorithm::Ed25519, &unhex(public));
        let tag = Tag::decode_hex(Algorithm::Ed25519, signature.as_bytes()).unwrap();
        let message = unhex(message);
        assert_eq!(set.verify(&Signature::over_body(tag), &message), Ok(()));
        // Split across prefix and body, it is the same message.
        if let Some((first, rest)) = message.split_first() {
            let split = Signature::over_body(tag).with_prefix(vec![*first]);
            assert_eq!(set.verify(&split, rest), Ok(()));
        }
        assert!(set.verify(&Signature::over_body(tag), b"other").is_err());
    }
    // The identity (a small-order point) and a short key: refused when the
    // layer is built.
    let identity = {
        let mut key = [0u8; 32];
        key[0] = 1;
        key
    };
    for bad in [identity.to_vec(), vec![7; 31]] {
        assert!(SecretSet::from_decoded([Key::new(Algorithm::Ed25519, bad)]).is_err());
    }
}

/// Slack's "Verifying requests from Slack" page: its example signing
/// secret, timestamp, slash-command body and `X-Slack-Signature`.
#[test]
fn slack_documented_example() {
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    assert_eq!(
        tower_webhook::slack::sign(secret.as_bytes(), 1_531_420_618, body.as_bytes()),
        expected
    );
    let scheme = slack::Slack::new()
        .clock(|| std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_531_420_618 + 60));
    let h = headers(&[
        ("x-slack-signature", expected),
        ("x-slack-request-timestamp", "1531420618"),
    ]);
    let set = SecretSet::from_keys([secret]).unwrap();
    assert_eq!(
        set.verify(&scheme.signature(&h).unwrap(), body.as_bytes()),
        Ok(())
    );
    // A form body signs no id: keyed on its digest.
    let parsed = scheme.parse(&h, &bytes::Bytes::from(body)).unwrap();
    assert_eq!(parsed.event.event_type, None);
    assert_eq!(parsed.id.as_str().len(), 64);
}

/// Twilio's "Webhooks security" page: Auth Token `12345`, the request URL
/// with its query, the POST parameters, and the resulting signature.
#[test]
fn twilio_documented_example() {
    let scheme = twilio::Twilio::new("https://mycompany.com/myapp.php");
    let uri: Uri = "/myapp.php?foo=1&bar=2".parse().unwrap();
    let h = headers(&[("x-twilio-signature", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")]);
    let signature = scheme.request_signature(&uri, &h).unwrap();
    let set = set(Algorithm::HmacSha1, b"12345");
    let body = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
    assert_eq!(set.verify(&signature, body.as_bytes()), Ok(()));
    // Parameter order in the body does not matter; their values do.
    let shuffled = "To=%2B18005551212&Digits=1234&CallSid=CA1234567890ABCDE&From=%2B12349013030&Caller=%2B12349013030";
    assert_eq!(set.verify(&signature, shuffled.as_bytes()), Ok(()));
    assert!(
        set.verify(&signature, body.replace("1234&", "1235&").as_bytes())
            .is_err()
    );
    // The query is signed.
    let moved = scheme
        .request_signature(&"/myapp.php?foo=2&bar=2".parse().unwrap(), &h)
        .unwrap();
    assert!(set.verify(&moved, body.as_bytes()).is_err());
    assert_eq!(
        tower_webhook::twilio::sign(
            b"12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            &[
                ("CallSid", "CA1234567890ABCDE"),
                ("Caller", "+12349013030"),
                ("Digits", "1234"),
                ("From", "+12349013030"),
                ("To", "+18005551212"),
            ]
        ),
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    );
    let parsed = scheme.parse(&h, &bytes::Bytes::from(body)).unwrap();
    assert_eq!(parsed.event.sid.as_deref(), Some("CA1234567890ABCDE"));
}

/// Square's "Validate notifications" page: signature key `asdf1234`,
/// notification URL `https://example.com/webhook`, body
/// `{"hello":"world"}` (the same vector as the SDKs' WebhooksHelper tests).
#[test]
fn square_documented_example() {
    let scheme = square::Square::new("https://example.com/webhook");
    let expected = "2kRE5qRU2tR+tBGlDwMEw2avJ7QM4ikPYD/PJ3bd9Og=";
    let h = headers(&[("x-square-hmacsha256-signature", expected)]);
    let set = SecretSet::from_keys(["asdf1234"]).unwrap();
    let signature = scheme.signature(&h).unwrap();
    assert_eq!(set.verify(&signature, br#"{"hello":"world"}"#), Ok(()));
    assert!(set.verify(&signature, br#"{"hello":"world"} "#).is_err());
    let other_url = square::Square::new("https://example.com/webhook/");
    assert!(
        set.verify(&other_url.signature(&h).unwrap(), br#"{"hello":"world"}"#)
            .is_err()
    );
    assert_eq!(
        tower_webhook::square::sign(
            b"asdf1234",
            "https://example.com/webhook",
            br#"{"hello":"world"}"#
        ),
        expected
    );
}

/// The documented recipes, computed with `ring` from the provider's
/// description and checked through each scheme's header parser.
#[test]
fn documented_recipes_computed_independently() {
    use ring::hmac::{HMAC_SHA256, HMAC_SHA512};
    let body: &[u8] =
        br#"{"id":"evt_1","event":"charge.success","type":"x","webhookTimestamp":1700000000000}"#;
    let key = b"provider-secret";
    let sha256 = ring_hmac(HMAC_SHA256, key, body);
    let cases: Vec<Case> = vec![
        // Shopify: base64 HMAC-SHA256 of the body, X-Shopify-Hmac-Sha256.
        (
            Box::new(|h| shopify::Shopify.signature(h).unwrap()),
            vec![("x-shopify-hmac-sha256", b64(&sha256))],
            Algorithm::HmacSha256,
        ),
        // WooCommerce: base64 HMAC-SHA256 of the body.
        (
            Box::new(|h| woocommerce::WooCommerce.signature(h).unwrap()),
            vec![("x-wc-webhook-signature", b64(&sha256))],
            Algorithm::HmacSha256,
        ),
        // Lemon Squeezy: hex HMAC-SHA256 of the body, X-Signature.
        (
            Box::new(|h| lemonsqueezy::LemonSqueezy.signature(h).unwrap()),
            vec![("x-signature", hex(&sha256))],
            Algorithm::HmacSha256,
        ),
        // Linear: hex HMAC-SHA256 of the body, Linear-Signature.
        (
            Box::new(|h| linear::Linear::new().signature(h).unwrap()),
            vec![("linear-signature", hex(&sha256))],
            Algorithm::HmacSha256,
        ),
        // Flutterwave v4: base64 HMAC-SHA256 of the body.
        (
            Box::new(|h| flutterwave::Flutterwave::new().signature(h).unwrap()),
            vec![("flutterwave-signature", b64(&sha256))],
            Algorithm::HmacSha256,
        ),
        // Paystack: hex HMAC-SHA512 of the body.
        (
            Box::new(|h| paystack::Paystack.signature(h).unwrap()),
            vec![(
                "x-paystack-signature",
                hex(&ring_hmac(HMAC_SHA512, key, body)),
            )],
            Algorithm::HmacSha512,
        ),
        // Paddle: ts=…;h1=hex HMAC-SHA256 of "{ts}:{body}".
        (
            Box::new(|h| paddle::Paddle::new().clock(clock()).signature(h).unwrap()),
            vec![(
                "paddle-signature",
                format!(
                    "ts={NOW};h1={}",
                    hex(&ring_hmac(
                        HMAC_SHA256,
                        key,
                        &[format!("{NOW}:").as_bytes(), body].concat()
                    ))
                ),
            )],
            Algorithm::HmacSha256,
        ),
        // Zoom: v0=hex HMAC-SHA256 of "v0:{ts}:{body}".
        (
            Box::new(|h| zoom::Zoom::new().clock(clock()).signature(h).unwrap()),
            vec![
                (
                    "x-zm-signature",
                    format!(
                        "v0={}",
                        hex(&ring_hmac(
                            HMAC_SHA256,
                            key,
                            &[format!("v0:{NOW}:").as_bytes(), body].concat()
                        ))
                    ),
                ),
                ("x-zm-request-timestamp", NOW.to_string()),
            ],
            Algorithm::HmacSha256,
        ),
        // Twitch: sha256=hex HMAC-SHA256 of id ‖ timestamp ‖ body.
        (
            Box::new(|h| twitch::Twitch::new().clock(clock()).signature(h).unwrap()),
            vec![
                (
                    "twitch-eventsub-message-signature",
                    format!(
                        "sha256={}",
                        hex(&ring_hmac(
                            HMAC_SHA256,
                            key,
                            &[
                                &b"e6a9f0d2-1f4b-4a4e-9f61-3f7c1c8d8a11"[..],
                                b"2023-11-14T22:13:20.123Z",
                                body
                            ]
                            .concat()
                        ))
                    ),
                ),
                (
                    "twitch-eventsub-message-id",
                    "e6a9f0d2-1f4b-4a4e-9f61-3f7c1c8d8a11".into(),
                ),
                (
                    "twitch-eventsub-message-timestamp",
                    "2023-11-14T22:13:20.123Z".into(),
                ),
            ],
            Algorithm::HmacSha256,
        ),
    ];
    for (signature_of, header_values, algorithm) in cases {
        let pairs: Vec<(&str, &str)> = header_values
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .collect();
        let h = headers(&pairs);
        let signature = signature_of(&h);
        let set = set(algorithm, key);
        assert_eq!(set.verify(&signature, body), Ok(()), "{pairs:?}");
        assert!(set.verify(&signature, &body[1..]).is_err(), "{pairs:?}");
    }
}

/// The samples the providers document, and the shortest secrets they let
/// users choose, key a layer: Twilio's sample Auth Token `12345`, Square's
/// sample signature key `asdf1234`, a 10-character Twitch secret (Twitch
/// takes 10 to 100) and a 6-character Lemon Squeezy secret (6 to 40). One
/// byte shorter, or a 1-byte secret of a scheme that documents no
/// minimum, is refused.
#[test]
fn documented_sample_secrets_key_a_layer_and_shorter_ones_are_refused() {
    use tower_webhook::{SecretError, WebhookLayer, github::GitHub};
    fn too_short(result: Result<impl Sized, SecretError>) -> Option<(usize, usize)> {
        match result {
            Err(SecretError::TooShort { len, min, .. }) => Some((len, min)),
            _ => None,
        }
    }
    let url = "https://example.com/webhook";
    assert!(WebhookLayer::new(twilio::Twilio::new(url), "12345").is_ok());
    assert!(WebhookLayer::new(square::Square::new(url), "asdf1234").is_ok());
    assert!(WebhookLayer::new(twitch::Twitch::new(), "0123456789").is_ok());
    assert!(WebhookLayer::new(lemonsqueezy::LemonSqueezy, "abc123").is_ok());
    assert_eq!(
        too_short(WebhookLayer::new(twilio::Twilio::new(url), "1234")),
        Some((4, 5))
    );
    assert_eq!(
        too_short(WebhookLayer::new(square::Square::new(url), "asdf123")),
        Some((7, 8))
    );
    assert_eq!(
        too_short(WebhookLayer::new(twitch::Twitch::new(), "012345678")),
        Some((9, 10))
    );
    assert_eq!(
        too_short(WebhookLayer::new(lemonsqueezy::LemonSqueezy, "abc12")),
        Some((5, 6))
    );
    assert_eq!(too_short(WebhookLayer::new(GitHub, "x")), Some((1, 16)));
    assert_eq!(
        too_short(WebhookLayer::new(GitHub, "0123456789abcde")),
        Some((15, 16))
    );
    assert!(WebhookLayer::new(GitHub, "0123456789abcdef").is_ok());
}
