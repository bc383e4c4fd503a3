//! NumberOTP and Numero: their cases, signed independently of the crate
//! (`ring`'s HMAC, `base64`'s encoder).

use std::sync::OnceLock;

use base64::Engine as _;
use http::header::HeaderName;
use tower_webhook::EventId;
use tower_webhook::numberotp::{NumberOtp, NumberOtpEvent};
use tower_webhook::numero::{Numero, NumeroEvent};

use crate::harness::*;

fn hmac_sha256(secret: &str, body: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::sign(&key, body).as_ref().to_vec()
}

pub struct NumberOtpCase;

impl Provider for NumberOtpCase {
    type S = NumberOtp;
    fn scheme(&self) -> NumberOtp {
        NumberOtp
    }
    fn secrets(&self) -> [String; 2] {
        [
            "notp_whk_old_0123456789".into(),
            "notp_whk_new_9876543210".into(),
        ]
    }
    fn body(&self, n: u32) -> Vec<u8> {
        format!(
            r#"{{"id":"act_{n}","phone_number":"14155552671","service":"wa","country":"67","otp":"{n:06}","full_sms":"Your code is {n:06}.","status":"received"}}"#
        )
        .into_bytes()
    }
    fn sign_at(&self, secret: &str, _: u32, body: &[u8], _: u64) -> Vec<(HeaderName, String)> {
        vec![(
            HeaderName::from_static("x-numberotp-signature"),
            format!("sha256={}", hex(&hmac_sha256(secret, body))),
        )]
    }
    fn event_id(&self, n: u32, _: &[u8]) -> String {
        let otp = format!("{n:06}");
        key_id(
            &format!("act_{n}"),
            "received",
            &otp,
            &format!("Your code is {otp}."),
        )
    }
    fn seen_id(event: &NumberOtpEvent) -> String {
        key_id(
            &event.id,
            event.status.as_deref().unwrap(),
            event.otp.as_deref().unwrap(),
            event.full_sms.as_deref().unwrap(),
        )
    }
}

/// NumberOTP's key id as its scheme documents it: activation, status, code
/// and the SHA-256 of the SMS text, each length-prefixed.
fn key_id(activation: &str, status: &str, otp: &str, text: &str) -> String {
    let text_digest = hex(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref());
    EventId::from_parts([
        Some(activation),
        Some(status),
        Some(otp),
        Some(&text_digest),
    ])
    .unwrap()
    .as_str()
    .to_owned()
}

pub struct NumeroCase;

/// A recent `created_at`, fixed once per process so that event `n`'s body
/// is the same each time it is built.
fn created_at() -> &'static str {
    static AT: OnceLock<String> = OnceLock::new();
    AT.get_or_init(|| tower_webhook::sign::rfc3339(std::time::SystemTime::now()))
}

impl Provider for NumeroCase {
    type S = Numero;
    fn scheme(&self) -> Numero {
        Numero
    }
    fn secrets(&self) -> [String; 2] {
        [
            "whsec_old_abcdefghijklmnop".into(),
            "whsec_new_qrstuvwxyz012345".into(),
        ]
    }
    fn body(&self, n: u32) -> Vec<u8> {
        format!(
            r#"{{"id":"evt_{n}","event":"TRANSFER_NOTIFICATION","created_at":"{}","data":{{"TrxAmount":1000.0,"Reference":"T{n}"}}}}"#,
            created_at()
        )
        .into_bytes()
    }
    fn sign_at(&self, secret: &str, _: u32, body: &[u8], _: u64) -> Vec<(HeaderName, String)> {
        vec![(
            HeaderName::from_static("x-webhook-signature"),
            base64::engine::general_purpose::STANDARD.encode(hmac_sha256(secret, body)),
        )]
    }
    fn event_id(&self, n: u32, _: &[u8]) -> String {
        format!("evt_{n}")
    }
    fn seen_id(event: &NumeroEvent) -> String {
        event.id.to_string()
    }
}
