//! A dudect-style check that the tag comparison is constant time.
//!
//! Two classes of forged tags are fed to [`SecretSet::verify`], the exact
//! function the layer calls for every request:
//!
//! * Left: the correct tag with its **first** byte changed;
//! * Right: the correct tag with its **last** byte changed.
//!
//! An early-exit comparison rejects the Left class after one byte and the
//! Right class after 32, so its timings split into two distributions; a
//! constant-time one cannot be told apart. dudect runs Welch's t-test on the
//! two timing distributions (cropped at ~100 percentiles) and reports the
//! largest |t|.
//!
//! Threshold: **|t| < 5** passes (dudect's and the paper's criterion); |t| ≥ 5
//! with a stable sign over repeated runs means the comparison leaks. The
//! `naive_early_exit_control` bench runs the same inputs through a
//! deliberately leaky byte loop: it must exceed the threshold, which shows
//! the measurement can see a leak of that size on this machine.
//!
//! ```text
//! CARGO_TARGET_DIR=target/bench-ct cargo bench -p tower-webhook-benches --bench constant_time
//! ```
//!
//! Results are recorded in `docs/constant-time.md`.

use std::hint::black_box;

use dudect_bencher::ctbench::{BenchFn, BenchMetadata, BenchName, BenchOpts, run_benches_console};
use dudect_bencher::rand::RngExt as _;
use dudect_bencher::{BenchRng, Class, CtRunner};
use subtle::ConstantTimeEq as _;
use tower_webhook::{SecretSet, Signature, Tag};

/// Samples per run; dudect needs tens of thousands per class.
const SAMPLES: usize = 200_000;
/// The body signed for every sample: webhook-sized, fixed so that the HMAC
/// itself takes the same time in both classes.
const BODY_LEN: usize = 256;

/// A correct tag with byte `at` changed (by a random non-zero XOR).
fn forged(correct: &Tag, at: usize, rng: &mut BenchRng) -> Tag {
    let mut bytes: [u8; 32] = correct.as_bytes().try_into().unwrap();
    bytes[at] ^= rng.random_range(1..=255u8);
    Tag::from_bytes(bytes)
}

/// Random inputs: the class, and the tag to present.
fn inputs(correct: &Tag, rng: &mut BenchRng) -> Vec<(Class, Tag)> {
    (0..SAMPLES)
        .map(|_| {
            if rng.random::<bool>() {
                (Class::Left, forged(correct, 0, rng))
            } else {
                (Class::Right, forged(correct, 31, rng))
            }
        })
        .collect()
}

fn setup(rng: &mut BenchRng) -> (SecretSet, Vec<u8>, Tag) {
    let secret = "whsec_abcdefghijklmnopqrstuvwxyz123456789";
    let set = SecretSet::from_keys([secret]).expect("a valid secret");
    let mut body = vec![0u8; BODY_LEN];
    rng.fill(&mut body[..]);
    let correct = set.sign(b"", &body);
    (set, body, correct)
}

/// The layer's own verify: HMAC of the body, then a constant-time compare of
/// the 32-byte tags.
fn verify_first_vs_last_byte(runner: &mut CtRunner, rng: &mut BenchRng) {
    let (set, body, correct) = setup(rng);
    for (class, tag) in inputs(&correct, rng) {
        let signature = Signature::over_body(tag);
        runner.run_one(class, || {
            black_box(set.verify(black_box(&signature), black_box(&body))).is_err()
        });
    }
}

/// The comparison alone, exactly as `verify` does it
/// (`subtle::ConstantTimeEq` over the computed and the given 32 bytes),
/// without the HMAC's noise around it.
fn compare_only_first_vs_last_byte(runner: &mut CtRunner, rng: &mut BenchRng) {
    let (set, body, correct) = setup(rng);
    let computed = set.sign(b"", &body);
    for (class, tag) in inputs(&correct, rng) {
        runner.run_one(class, || {
            let equal = black_box(computed.as_bytes()).ct_eq(black_box(tag.as_bytes()));
            black_box(bool::from(equal))
        });
    }
}

/// Positive control: an early-exit loop, which leaks where the tags differ.
/// Its |t| must be far above the threshold, or the run could not have seen a
/// leak at all.
fn naive_early_exit_control(runner: &mut CtRunner, rng: &mut BenchRng) {
    let (set, body, correct) = setup(rng);
    let computed = set.sign(b"", &body);
    for (class, tag) in inputs(&correct, rng) {
        runner.run_one(class, || {
            black_box(naive_eq(
                black_box(computed.as_bytes()),
                black_box(tag.as_bytes()),
            ))
        });
    }
}

#[inline(never)]
fn naive_eq(a: &[u8], b: &[u8]) -> bool {
    for i in 0..32 {
        if black_box(a[i]) != black_box(b[i]) {
            return false;
        }
    }
    true
}

/// `ctbench_main!` parses its arguments with clap and refuses the `--bench`
/// flag `cargo bench` passes, so this main does the same job by hand:
/// `cargo bench -p tower-webhook-benches --bench constant_time [-- FILTER]` runs the benches whose
/// name contains FILTER (all by default), each with a fresh random seed.
///
/// Without `--bench` (as `cargo test --all-targets` runs bench targets) it
/// only says how to run it: a dudect run takes a minute or more.
fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "constant_time: run with `cargo bench -p tower-webhook-benches --bench constant_time`"
        );
        return;
    }
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let bench = |name, benchfn: BenchFn| BenchMetadata {
        name: BenchName(name),
        seed: None,
        benchfn,
    };
    let benches = vec![
        bench("verify_first_vs_last_byte", verify_first_vs_last_byte),
        bench(
            "compare_only_first_vs_last_byte",
            compare_only_first_vs_last_byte,
        ),
        bench("naive_early_exit_control", naive_early_exit_control),
    ];
    let opts = BenchOpts {
        filter,
        ..BenchOpts::default()
    };
    run_benches_console(opts, benches).expect("write the results");
}
