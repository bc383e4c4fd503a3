//! The layer's hand-written peer: what a user writes for the same job
//! without the layer, as an axum handler taking `HeaderMap` + `Bytes`.
//!
//! It does what the layer does for a new Numero delivery, the way the
//! obvious code does it: decode the base64 `X-Webhook-Signature`, verify the
//! HMAC over the raw body (a cached keyed state, `verify_slice`: length
//! checked, constant-time compare), `serde_json::from_slice` into an owned
//! event struct with the same fields as the layer's `NumeroEvent` (both
//! casings, as Numero sends them; serde's derive refuses a field given
//! twice), and a `Mutex<HashSet<String>>` of the ids seen. The handler's
//! work is the same as the layer's handler's: it takes the typed event and
//! answers 200.
//!
//! What it does not do, and the layer does: the body cap and deadline, the
//! in-flight state (a second copy arriving while the first runs is treated
//! as done), releasing the id when the handler fails, bounded memory with
//! eviction by age (the set is simply cleared at [`MAX_SEEN`]), the replay
//! window, the unsigned-header checks, escaped-id handling beyond serde's.

#![allow(dead_code)] // each bench binary uses a different subset

use std::collections::HashSet;
use std::hint::black_box;
use std::sync::{LazyLock, Mutex, OnceLock, PoisonError};

use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::common::NUMERO_SECRET;

/// Ids kept before the set is cleared, so a long run's memory stays bounded
/// (the layer's memory store holds 100 000 keys by default).
pub const MAX_SEEN: usize = 100_000;

static KEY: OnceLock<Hmac<Sha256>> = OnceLock::new();

/// Signs with `secret` rather than `common::NUMERO_SECRET`; before the
/// first request only.
pub fn use_secret(secret: &str) {
    let key = Hmac::new_from_slice(secret.as_bytes()).expect("any key length");
    assert!(KEY.set(key).is_ok(), "use_secret before the first request");
}

fn key() -> &'static Hmac<Sha256> {
    KEY.get_or_init(|| Hmac::new_from_slice(NUMERO_SECRET.as_bytes()).expect("any key length"))
}

static SEEN: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// A Numero event as a user types it: owned strings, both casings.
#[derive(Debug, Deserialize)]
pub struct Event {
    /// `id` / `Id`.
    #[serde(alias = "Id")]
    pub id: String,
    /// `event` / `Event`.
    #[serde(alias = "Event")]
    pub event: Option<String>,
    /// `created_at` / `CreatedAt`.
    #[serde(alias = "CreatedAt")]
    pub created_at: Option<String>,
    /// `data` / `Data`.
    #[serde(alias = "Data")]
    pub data: Option<Transaction>,
}

/// The transaction `data`, the same fields as the layer's `Transaction`.
#[derive(Debug, Default, Deserialize)]
#[allow(dead_code)] // read through `Debug` and `black_box` only
pub struct Transaction {
    #[serde(alias = "Amount")]
    amount: Option<f64>,
    #[serde(alias = "TrxAmount")]
    trx_amount: Option<f64>,
    #[serde(alias = "TrxFee")]
    trx_fee: Option<f64>,
    #[serde(alias = "SettledAmount")]
    settled_amount: Option<f64>,
    #[serde(alias = "TransactionId")]
    transaction_id: Option<String>,
    #[serde(alias = "Currency")]
    currency: Option<String>,
    #[serde(alias = "Status")]
    status: Option<String>,
    #[serde(alias = "CustomerId")]
    customer_id: Option<String>,
    #[serde(alias = "Description")]
    description: Option<String>,
    #[serde(alias = "Merchant")]
    merchant: Option<String>,
    #[serde(alias = "BusinessCode")]
    business_code: Option<String>,
    #[serde(alias = "Reference")]
    reference: Option<String>,
    #[serde(alias = "SessionId")]
    session_id: Option<String>,
    #[serde(alias = "VendorReference")]
    vendor_reference: Option<String>,
    #[serde(alias = "Type")]
    r#type: Option<String>,
    #[serde(alias = "Channel")]
    channel: Option<String>,
    #[serde(alias = "PostingType")]
    posting_type: Option<String>,
    #[serde(alias = "Service")]
    service: Option<String>,
    #[serde(alias = "RequestState")]
    request_state: Option<String>,
    #[serde(alias = "RequestStateDetails")]
    request_state_details: Option<String>,
    #[serde(alias = "BeneficiaryName")]
    beneficiary_name: Option<String>,
    #[serde(alias = "BeneficiaryNumber")]
    beneficiary_number: Option<String>,
    #[serde(alias = "BeneficiaryBank")]
    beneficiary_bank: Option<String>,
    #[serde(alias = "DateCreated")]
    date_created: Option<String>,
    #[serde(alias = "DateModified")]
    date_modified: Option<String>,
}

/// The hand-written route: 401 on a missing or wrong signature, 400 on a
/// body that is not the event, 200 on a duplicate (without handling it),
/// else the event is handled and 200.
pub async fn handler(headers: HeaderMap, body: Bytes) -> StatusCode {
    if let Err(status) = verify(&headers, &body) {
        return status;
    }
    let event: Event = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(_) => return StatusCode::BAD_REQUEST,
    };
    {
        let mut seen = SEEN.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= MAX_SEEN {
            seen.clear();
        }
        if !seen.insert(event.id.clone()) {
            return StatusCode::OK; // a duplicate
        }
    }
    handle(event).await
}

/// The handler's own work, as behind the layer: take the event, answer 200.
async fn handle(event: Event) -> StatusCode {
    black_box(event);
    StatusCode::OK
}

/// The signature check: the base64 tag decoded into 32 bytes, the HMAC of
/// the raw body compared in constant time (`verify_slice` checks the
/// length first). 401 when it fails.
pub fn verify(headers: &HeaderMap, body: &[u8]) -> Result<(), StatusCode> {
    let value = headers
        .get("x-webhook-signature")
        .ok_or(StatusCode::UNAUTHORIZED)?;
    let mut tag = [0u8; 32];
    match base64::engine::general_purpose::STANDARD.decode_slice(value.as_bytes(), &mut tag) {
        Ok(32) => {}
        _ => return Err(StatusCode::UNAUTHORIZED),
    }
    let mut mac = key().clone();
    mac.update(body);
    mac.verify_slice(&tag).map_err(|_| StatusCode::UNAUTHORIZED)
}
