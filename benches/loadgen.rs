//! A small HTTP/1.1 load generator for `scripts/load.sh`: keep-alive hyper
//! client connections in a closed loop, each request a freshly signed
//! webhook with a unique id.
//!
//! ```text
//! cargo bench -p tower-webhook-benches --bench loadgen -- --url http://127.0.0.1:3000/webhooks/numero \
//!     --scheme numero --secret whsec_... [--duration 10] [--warmup 2] \
//!     [--connections 32] [--size 300] [--server-pid PID]
//! ```
//!
//! It runs on one thread (a current-thread tokio runtime), so pinning it to
//! one core with `taskset` pins all of it. Signing costs the generator about
//! a quarter of a microsecond per request, with the keyed HMAC state cached.
//! It prints one `RESULT` line: requests/s, p50 and p99 latency, non-2xx
//! answers, and the share of its core the generator used (near 100% means the
//! generator, not the server, set the pace). With `--server-pid`, it also
//! reads that process's CPU time (user + system, `/proc/PID/stat`) at the
//! start and end of the measured window and prints the server's CPU
//! microseconds per completed request (`server_cpu_us`) and the share of a
//! core it used (`server_cpu`).
//!
//! Run without `--url` (as a plain `cargo bench` does) it prints its usage
//! and exits successfully.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{Request, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::net::TcpStream;

mod common;
use common::{numberotp_body, numero_body};

const USAGE: &str = "usage: loadgen --url http://127.0.0.1:PORT/PATH --scheme numero|numberotp \
--secret SECRET [--duration SECS] [--warmup SECS] [--connections N] [--size BYTES] \
[--server-pid PID]";

struct Options {
    url: Uri,
    scheme: String,
    secret: String,
    duration: Duration,
    warmup: Duration,
    connections: usize,
    size: usize,
    server_pid: Option<u32>,
}

fn parse() -> Result<Option<Options>, String> {
    let mut url = None;
    let mut scheme = "numero".to_owned();
    let mut secret = None;
    let mut duration = 10.0;
    let mut warmup = 2.0;
    let mut connections = 32;
    let mut size = 300;
    let mut server_pid = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--bench" => {} // passed by `cargo bench`
            "--url" => url = Some(value()?.parse::<Uri>().map_err(|e| e.to_string())?),
            "--scheme" => scheme = value()?,
            "--secret" => secret = Some(value()?),
            "--duration" => duration = value()?.parse().map_err(|_| "bad --duration")?,
            "--warmup" => warmup = value()?.parse().map_err(|_| "bad --warmup")?,
            "--connections" => connections = value()?.parse().map_err(|_| "bad --connections")?,
            "--size" => size = value()?.parse().map_err(|_| "bad --size")?,
            "--server-pid" => server_pid = Some(value()?.parse().map_err(|_| "bad --server-pid")?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let Some(url) = url else { return Ok(None) };
    if !matches!(scheme.as_str(), "numero" | "numberotp") {
        return Err(format!("unknown scheme {scheme:?}"));
    }
    Ok(Some(Options {
        url,
        scheme,
        secret: secret.ok_or("--secret is required")?,
        duration: Duration::from_secs_f64(duration),
        warmup: Duration::from_secs_f64(warmup),
        connections,
        size,
        server_pid,
    }))
}

/// Builds signed requests with unique ids.
struct Signer {
    numero: bool,
    key: Hmac<Sha256>,
    nonce: u64,
    size: usize,
    uri: Uri,
    host: String,
}

impl Signer {
    fn request(&self, seq: u64) -> Request<Full<Bytes>> {
        // Unique across runs against one server too: the nonce is the start
        // time in microseconds, the sequence fills the low bits.
        let id = self.nonce.wrapping_mul(1 << 24).wrapping_add(seq) % 1_000_000_000_000;
        let body = if self.numero {
            numero_body(id, self.size)
        } else {
            numberotp_body(id, self.size)
        };
        let mut mac = self.key.clone();
        mac.update(&body);
        let tag = tower_webhook::Tag::from_bytes(mac.finalize().into_bytes().into());
        let (name, value) = if self.numero {
            ("x-webhook-signature", tag.to_base64())
        } else {
            ("x-numberotp-signature", format!("sha256={}", tag.to_hex()))
        };
        Request::post(self.uri.clone())
            .header("host", &self.host)
            .header("content-type", "application/json")
            .header(name, value)
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request")
    }
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    non_2xx: u64,
    errors: u64,
}

/// A process's user + system CPU time, all its threads, from
/// `/proc/<pid>/stat` (Linux; `self` for this one). Clock ticks of 10 ms.
fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(14) + ticks(15)) * 10)
}

async fn connection(
    signer: Arc<Signer>,
    seq: Arc<AtomicU64>,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Tally {
    let mut tally = Tally::default();
    let authority = signer
        .uri
        .authority()
        .expect("the URL has a host:port")
        .as_str()
        .to_owned();
    let stream = match TcpStream::connect(&authority).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("connect {authority}: {e}");
            tally.errors += 1;
            return tally;
        }
    };
    stream.set_nodelay(true).ok();
    let (mut send, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("handshake: {e}");
            tally.errors += 1;
            return tally;
        }
    };
    tokio::spawn(conn);
    while !stop.load(Ordering::Relaxed) {
        let request = signer.request(seq.fetch_add(1, Ordering::Relaxed));
        let started = Instant::now();
        let outcome = async {
            send.ready().await?;
            let response = send.send_request(request).await?;
            let status = response.status();
            response.into_body().collect().await?;
            Ok::<_, hyper::Error>(status)
        }
        .await;
        let elapsed = started.elapsed();
        if !measuring.load(Ordering::Relaxed) {
            if outcome.is_err() {
                break;
            }
            continue;
        }
        match outcome {
            Ok(status) => {
                if !status.is_success() {
                    tally.non_2xx += 1;
                }
                tally
                    .latencies_us
                    .push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
            }
            Err(e) => {
                eprintln!("request: {e}");
                tally.errors += 1;
                break;
            }
        }
    }
    tally
}

fn main() {
    let options = match parse() {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let host = options
        .url
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let signer = Arc::new(Signer {
        numero: options.scheme == "numero",
        key: Hmac::new_from_slice(options.secret.as_bytes()).expect("any key length"),
        nonce: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64),
        size: options.size,
        uri: options.url.clone(),
        host,
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let seq = Arc::new(AtomicU64::new(0));
        let measuring = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..options.connections)
            .map(|_| {
                tokio::spawn(connection(
                    Arc::clone(&signer),
                    Arc::clone(&seq),
                    Arc::clone(&measuring),
                    Arc::clone(&stop),
                ))
            })
            .collect();
        tokio::time::sleep(options.warmup).await;
        measuring.store(true, Ordering::Relaxed);
        let server = options.server_pid.map(|pid| pid.to_string());
        let server_cpu = || server.as_deref().map(cpu_time);
        let (wall_start, cpu_start, server_start) =
            (Instant::now(), cpu_time("self"), server_cpu());
        tokio::time::sleep(options.duration).await;
        measuring.store(false, Ordering::Relaxed);
        let (wall, cpu) = (wall_start.elapsed(), cpu_time("self") - cpu_start);
        let server_used = server_cpu()
            .zip(server_start)
            .map(|(end, start)| end.saturating_sub(start));
        stop.store(true, Ordering::Relaxed);
        let mut all = Tally::default();
        for task in tasks {
            let t = task.await.expect("a connection task");
            all.latencies_us.extend(t.latencies_us);
            all.non_2xx += t.non_2xx;
            all.errors += t.errors;
        }
        all.latencies_us.sort_unstable();
        let n = all.latencies_us.len();
        let pct = |p: f64| {
            if n == 0 {
                0
            } else {
                all.latencies_us[((n as f64 * p) as usize).min(n - 1)]
            }
        };
        let server = server_used.map_or(String::new(), |used| {
            format!(
                " server_cpu_us={:.2} server_cpu={:.0}%",
                used.as_secs_f64() * 1e6 / n.max(1) as f64,
                100.0 * used.as_secs_f64() / wall.as_secs_f64(),
            )
        });
        println!(
            "RESULT requests={n} rps={:.0} p50_us={} p99_us={} non2xx={} errors={} gen_cpu={:.0}%{server}",
            n as f64 / wall.as_secs_f64(),
            pct(0.50),
            pct(0.99),
            all.non_2xx,
            all.errors,
            100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        );
    });
}
