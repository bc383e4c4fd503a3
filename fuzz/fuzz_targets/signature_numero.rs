//! `Numero::signature` over arbitrary values of `X-Webhook-Signature`
//! (the input split at `\n`, one header per piece), checked against an
//! independent oracle: accepted exactly when given once as 64 hex digits or
//! canonical padded standard base64 of 32 bytes, decoded to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_webhook::Scheme;
use tower_webhook::numero::{Numero, SIGNATURE_HEADER};
use tower_webhook_fuzz::{check_signature, headers_with, numero_tag, split_values};

fuzz_target!(|data: &[u8]| {
    let headers = headers_with(&SIGNATURE_HEADER, &split_values(data));
    check_signature(numero_tag(&headers), Numero.signature(&headers));
});
