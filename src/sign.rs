//! Header values for senders and tests: the exact signature header each
//! scheme expects for a body.
//!
//! ```
//! let header = tower_webhook::sign::numberotp(b"secret", br#"{"id":"act_1"}"#);
//! assert!(header.starts_with("sha256="));
//! ```

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use crate::secret::{Algorithm, Tag};

/// The HMAC-SHA256 tag of `content` under `key`.
pub fn tag(key: &[u8], content: &[u8]) -> Tag {
    hmac(Algorithm::HmacSha256, key, content)
}

/// The HMAC tag of `content` under `key`, for an HMAC `algorithm`.
///
/// # Panics
///
/// When `algorithm` is not an HMAC ([`Algorithm::is_hmac`]).
pub fn hmac(algorithm: Algorithm, key: &[u8], content: &[u8]) -> Tag {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], content: &[u8]) -> Vec<u8> {
        let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(content);
        mac.finalize().into_bytes().to_vec()
    }
    let bytes = match algorithm {
        Algorithm::HmacSha256 => run::<Hmac<Sha256>>(key, content),
        Algorithm::HmacSha512 => run::<Hmac<Sha512>>(key, content),
        Algorithm::HmacSha1 => run::<Hmac<Sha1>>(key, content),
        other => panic!("{other} is not an HMAC"),
    };
    Tag::from_slice(algorithm, &bytes).expect("an HMAC's output is its tag length")
}

/// `x-numberotp-signature` for `body`: `sha256=<lower-case hex>`.
pub fn numberotp(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", tag(secret, body).to_hex())
}

/// `X-Webhook-Signature` for `body`, in standard padded base64.
pub fn numero(secret: &[u8], body: &[u8]) -> String {
    tag(secret, body).to_base64()
}

/// `X-Webhook-Signature` for `body`, in lower-case hex (Numero's other
/// accepted form).
pub fn numero_hex(secret: &[u8], body: &[u8]) -> String {
    tag(secret, body).to_hex()
}

/// `X-Hub-Signature-256` for `body` (GitHub): `sha256=<lower-case hex>`.
pub fn github(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", tag(secret, body).to_hex())
}

/// A `webhook-signature` entry (Standard Webhooks, Svix) for message `id`
/// sent at `timestamp` (Unix seconds): `v1,<base64>` over
/// `{id}.{timestamp}.{body}`. `key` is the decoded secret: see
/// [`standard::decode_secret`](crate::standard::decode_secret) and
/// [`standard_secret`].
pub fn standard(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let content = [format!("{id}.{timestamp}.").as_bytes(), body].concat();
    format!("v1,{}", tag(key, &content).to_base64())
}

/// A Standard Webhooks secret as providers show it: `whsec_` + base64 of
/// `key` (which should be 24 to 64 random bytes).
pub fn standard_secret(key: &[u8]) -> String {
    use base64::Engine as _;
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// `Stripe-Signature` for `body` sent at `timestamp` (Unix seconds):
/// `t=<timestamp>,v1=<hex>` over `{timestamp}.{body}`.
pub fn stripe(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let content = [format!("{timestamp}.").as_bytes(), body].concat();
    format!("t={timestamp},v1={}", tag(secret, &content).to_hex())
}

/// The signature header value a [`Custom`](crate::custom::Custom) scheme
/// expects for `body`: its prefix, then the tag in its encoding.
pub fn custom(scheme: &crate::custom::Custom, secret: &[u8], body: &[u8]) -> String {
    let tag = hmac(scheme.algorithm(), secret, body);
    let encoded = match scheme.encoding() {
        crate::custom::Encoding::Hex => tag.to_hex(),
        crate::custom::Encoding::Base64 => tag.to_base64(),
    };
    format!("{}{encoded}", scheme.prefix())
}

/// `X-Shopify-Hmac-Sha256` for `body`: standard padded base64.
pub fn shopify(secret: &[u8], body: &[u8]) -> String {
    tag(secret, body).to_base64()
}

/// `X-WC-Webhook-Signature` (WooCommerce) for `body`: standard padded
/// base64.
pub fn woocommerce(secret: &[u8], body: &[u8]) -> String {
    tag(secret, body).to_base64()
}

/// `X-Signature` (Lemon Squeezy) for `body`: lower-case hex.
pub fn lemonsqueezy(secret: &[u8], body: &[u8]) -> String {
    tag(secret, body).to_hex()
}

/// `Linear-Signature` for `body`: lower-case hex.
pub fn linear(secret: &[u8], body: &[u8]) -> String {
    tag(secret, body).to_hex()
}

/// `flutterwave-signature` (v4) for `body`: standard padded base64.
pub fn flutterwave(secret_hash: &[u8], body: &[u8]) -> String {
    tag(secret_hash, body).to_base64()
}

/// `x-paystack-signature` for `body`: lower-case hex of the HMAC-SHA512.
pub fn paystack(secret_key: &[u8], body: &[u8]) -> String {
    hmac(Algorithm::HmacSha512, secret_key, body).to_hex()
}

/// The `v0=<hex>` signature of Slack and Zoom over `v0:{timestamp}:{body}`.
fn v0(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let content = [format!("v0:{timestamp}:").as_bytes(), body].concat();
    format!("v0={}", tag(secret, &content).to_hex())
}

/// `X-Slack-Signature` for `body` sent at `timestamp` (Unix seconds, also
/// sent as `X-Slack-Request-Timestamp`).
pub fn slack(signing_secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    v0(signing_secret, timestamp, body)
}

/// `x-zm-signature` for `body` sent at `timestamp` (Unix seconds, also sent
/// as `x-zm-request-timestamp`).
pub fn zoom(secret_token: &[u8], timestamp: u64, body: &[u8]) -> String {
    v0(secret_token, timestamp, body)
}

/// Zoom's `encryptedToken` for a URL validation's `plainToken`: lower-case
/// hex of its HMAC-SHA256.
pub fn zoom_encrypted_token(secret_token: &[u8], plain_token: &str) -> String {
    tag(secret_token, plain_token.as_bytes()).to_hex()
}

/// `Paddle-Signature` for `body` sent at `timestamp` (Unix seconds):
/// `ts=<timestamp>;h1=<hex>` over `{timestamp}:{body}`.
pub fn paddle(secret_key: &[u8], timestamp: u64, body: &[u8]) -> String {
    let content = [format!("{timestamp}:").as_bytes(), body].concat();
    format!("ts={timestamp};h1={}", tag(secret_key, &content).to_hex())
}

/// `x-square-hmacsha256-signature` for `body` sent to `notification_url`:
/// standard padded base64 over the URL followed by the body.
pub fn square(signature_key: &[u8], notification_url: &str, body: &[u8]) -> String {
    let content = [notification_url.as_bytes(), body].concat();
    tag(signature_key, &content).to_base64()
}

/// `Twitch-Eventsub-Message-Signature` for message `id` sent at `timestamp`
/// (RFC 3339, as in `Twitch-Eventsub-Message-Timestamp`): `sha256=<hex>`
/// over id, timestamp and body.
pub fn twitch(secret: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let content = [id.as_bytes(), timestamp.as_bytes(), body].concat();
    format!("sha256={}", tag(secret, &content).to_hex())
}

/// `X-Twilio-Signature` for a form request to `url` (query included) with
/// `params`: base64 of the HMAC-SHA1 of the URL followed by each name and
/// value, sorted (pairs given twice counted once).
pub fn twilio(auth_token: &[u8], url: &str, params: &[(&str, &str)]) -> String {
    let mut pairs = params.to_vec();
    pairs.sort_unstable();
    pairs.dedup();
    let mut content = url.as_bytes().to_vec();
    for (name, value) in pairs {
        content.extend_from_slice(name.as_bytes());
        content.extend_from_slice(value.as_bytes());
    }
    hmac(Algorithm::HmacSha1, auth_token, &content).to_base64()
}

/// A Twilio request with a JSON `body` to `url` (without `bodySHA256`):
/// the URL with `bodySHA256=<hex SHA-256 of body>` added to its query, and
/// its `X-Twilio-Signature`.
pub fn twilio_json(auth_token: &[u8], url: &str, body: &[u8]) -> (String, String) {
    use sha2::Digest as _;
    let separator = if url.contains('?') { '&' } else { '?' };
    let url = format!(
        "{url}{separator}bodySHA256={}",
        hex::encode(Sha256::digest(body))
    );
    let signature = twilio(auth_token, &url, &[]);
    (url, signature)
}

/// The Ed25519 signature (lower-case hex) of Discord's `timestamp ‖ body`
/// under the signing key `seed` (feature `ed25519`); its public key is
/// [`ed25519_public_key_hex`].
#[cfg(feature = "ed25519")]
pub fn discord(seed: &[u8; 32], timestamp: u64, body: &[u8]) -> String {
    let content = [timestamp.to_string().as_bytes(), body].concat();
    hex::encode(ed25519(seed, &content))
}

/// The Ed25519 public key (lower-case hex, as Discord shows it) of the
/// signing key `seed` (feature `ed25519`).
#[cfg(feature = "ed25519")]
pub fn ed25519_public_key_hex(seed: &[u8; 32]) -> String {
    hex::encode(
        ed25519_dalek::SigningKey::from_bytes(seed)
            .verifying_key()
            .as_bytes(),
    )
}

/// A `webhook-signature` `v1a` entry (Standard Webhooks, Ed25519) for
/// message `id` sent at `timestamp` under the signing key `seed` (feature
/// `ed25519`): `v1a,<base64>` over `{id}.{timestamp}.{body}`.
#[cfg(feature = "ed25519")]
pub fn standard_v1a(seed: &[u8; 32], id: &str, timestamp: u64, body: &[u8]) -> String {
    use base64::Engine as _;
    let content = [format!("{id}.{timestamp}.").as_bytes(), body].concat();
    let signature = ed25519(seed, &content);
    format!(
        "v1a,{}",
        base64::engine::general_purpose::STANDARD.encode(signature)
    )
}

/// The Standard Webhooks public key of the signing key `seed`, as providers
/// show it: `whpk_` + base64 (feature `ed25519`).
#[cfg(feature = "ed25519")]
pub fn standard_public_key(seed: &[u8; 32]) -> String {
    use base64::Engine as _;
    let public = ed25519_dalek::SigningKey::from_bytes(seed).verifying_key();
    format!(
        "whpk_{}",
        base64::engine::general_purpose::STANDARD.encode(public.as_bytes())
    )
}

#[cfg(feature = "ed25519")]
fn ed25519(seed: &[u8; 32], content: &[u8]) -> [u8; 64] {
    use ed25519_dalek::Signer as _;
    ed25519_dalek::SigningKey::from_bytes(seed)
        .sign(content)
        .to_bytes()
}

/// `time` in RFC 3339, UTC, whole seconds (`2025-07-10T05:10:55Z`): the form
/// Numero signs as `created_at`. A sample payload must carry a recent one,
/// or the layer's replay window refuses it
/// ([`WebhookLayerBuilder::replay_window`](crate::WebhookLayerBuilder::replay_window)).
pub fn rfc3339(time: std::time::SystemTime) -> String {
    crate::scheme::timestamp::rfc3339::format(time)
}
