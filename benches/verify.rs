//! Tag verification per scheme, against same-run baselines.
//!
//! `cargo bench -p tower-webhook-benches --bench verify`
//!
//! For each size: the layer's two schemes (header parse + `SecretSet::verify`,
//! which clones a precomputed keyed HMAC), `SecretSet::verify` alone, ring's
//! `hmac::verify` with a cached key, and a naive RustCrypto verify that keys a
//! new MAC on every call.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use sha2::Sha256;
use tower_webhook::numberotp::{self, NumberOtp};
use tower_webhook::numero::{self, Numero};
use tower_webhook::{Scheme, SecretSet};

mod common;
use common::{NUMBEROTP_SECRET, NUMERO_SECRET, Variant, interleaved, time_n};

const SIZES: &[(&str, usize)] = &[
    ("64B", 64),
    ("300B", 300),
    ("1KiB", 1024),
    ("16KiB", 16 * 1024),
    ("1MiB", 1024 * 1024),
];

fn verify(c: &mut Criterion) {
    let numero_set = SecretSet::from_keys([NUMERO_SECRET]).unwrap();
    let numberotp_set = SecretSet::from_keys([NUMBEROTP_SECRET]).unwrap();
    let ring_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, NUMERO_SECRET.as_bytes());

    let mut group = c.benchmark_group("verify");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for &(name, size) in SIZES {
        // Arbitrary bytes: verification never looks inside.
        let body: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));

        let mut numero_headers = HeaderMap::new();
        numero_headers.insert(
            numero::SIGNATURE_HEADER,
            HeaderValue::from_str(&tower_webhook::numero::sign(
                NUMERO_SECRET.as_bytes(),
                &body,
            ))
            .unwrap(),
        );
        let mut numberotp_headers = HeaderMap::new();
        numberotp_headers.insert(
            numberotp::SIGNATURE_HEADER,
            HeaderValue::from_str(&tower_webhook::numberotp::sign(
                NUMBEROTP_SECRET.as_bytes(),
                &body,
            ))
            .unwrap(),
        );
        let numero_sig = Numero.signature(&numero_headers).unwrap();
        let tag: [u8; 32] = numero_sig
            .tags()
            .next()
            .unwrap()
            .as_bytes()
            .try_into()
            .unwrap();

        group.bench_with_input(BenchmarkId::new("numero", name), &body, |b, body| {
            b.iter(|| {
                let sig = Numero.signature(black_box(&numero_headers)).unwrap();
                numero_set.verify(&sig, black_box(body)).unwrap();
            })
        });
        group.bench_with_input(BenchmarkId::new("numberotp", name), &body, |b, body| {
            b.iter(|| {
                let sig = NumberOtp.signature(black_box(&numberotp_headers)).unwrap();
                numberotp_set.verify(&sig, black_box(body)).unwrap();
            })
        });
        group.bench_with_input(BenchmarkId::new("secret_set", name), &body, |b, body| {
            b.iter(|| {
                numero_set
                    .verify(black_box(&numero_sig), black_box(body))
                    .unwrap()
            })
        });
        group.bench_with_input(
            BenchmarkId::new("ring_cached_key", name),
            &body,
            |b, body| {
                b.iter(|| ring::hmac::verify(&ring_key, black_box(body), black_box(&tag)).unwrap())
            },
        );
        group.bench_with_input(
            BenchmarkId::new("naive_rustcrypto", name),
            &body,
            |b, body| {
                b.iter(|| {
                    let mut mac = Hmac::<Sha256>::new_from_slice(NUMERO_SECRET.as_bytes()).unwrap();
                    mac.update(black_box(body));
                    mac.verify_slice(black_box(&tag)).unwrap();
                })
            },
        );
    }
    group.finish();
}

/// The targets' ratios, measured interleaved (see `common::interleaved`).
fn paired() {
    let set = SecretSet::from_keys([NUMERO_SECRET]).unwrap();
    let ring_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, NUMERO_SECRET.as_bytes());
    println!("\ninterleaved medians (ns per verify), numero scheme vs ring's cached key");
    println!(
        "| size | numero (header + verify) | secret_set.verify | ring | numero / ring | secret_set / ring | secret_set throughput / ring's |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &(name, size, rounds, batch) in &[("300B", 300, 300, 2000), ("1MiB", 1 << 20, 60, 4)] {
        let body: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let header = tower_webhook::numero::sign(NUMERO_SECRET.as_bytes(), &body);
        let mut headers = HeaderMap::new();
        headers.insert(
            numero::SIGNATURE_HEADER,
            HeaderValue::from_str(&header).unwrap(),
        );
        let sig = Numero.signature(&headers).unwrap();
        let tag: [u8; 32] = sig.tags().next().unwrap().as_bytes().try_into().unwrap();
        let mut variants: Vec<Variant<'_>> = vec![
            (
                "numero",
                Box::new(|n| {
                    time_n(n, || {
                        let sig = Numero.signature(black_box(&headers)).unwrap();
                        set.verify(&sig, black_box(&body)).unwrap();
                    })
                }),
            ),
            (
                "secret_set",
                Box::new(|n| time_n(n, || set.verify(black_box(&sig), black_box(&body)).unwrap())),
            ),
            (
                "ring",
                Box::new(|n| {
                    time_n(n, || {
                        ring::hmac::verify(&ring_key, black_box(&body), black_box(&tag)).unwrap()
                    })
                }),
            ),
        ];
        let m = interleaved(&mut variants, rounds, batch);
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.3} | {:.3} | {:.3} |",
            m[0],
            m[1],
            m[2],
            m[0] / m[2],
            m[1] / m[2],
            m[2] / m[1]
        );
    }
}

criterion_group!(benches, verify);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if std::env::args().any(|a| a == "--bench") {
        paired();
    }
}
