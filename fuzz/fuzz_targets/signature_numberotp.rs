//! `NumberOtp::signature` over arbitrary values of `x-numberotp-signature`
//! (the input split at `\n`, one header per piece), checked against an
//! independent oracle: accepted exactly when given once as `sha256=` + 64 hex
//! digits, and then decoded to the same 32 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_webhook::Scheme;
use tower_webhook::numberotp::{NumberOtp, SIGNATURE_HEADER};
use tower_webhook_fuzz::{check_signature, headers_with, numberotp_tag, split_values};

fuzz_target!(|data: &[u8]| {
    let headers = headers_with(&SIGNATURE_HEADER, &split_values(data));
    check_signature(numberotp_tag(&headers), NumberOtp.signature(&headers));
});
