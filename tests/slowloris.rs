//! The example receiver through a slowloris: the receiver runs as
//! a real child process on 127.0.0.1 (`--store memory`, a 2 s sender
//! deadline) and every client here talks to it over raw sockets.
//!
//! * 300 connections trickle a body declared 1 000 000 bytes long and 300
//!   trickle their headers a byte a second, each reconnecting once cut off,
//!   while 50 signed Numero deliveries from another client are each answered
//!   2xx within a second and processed once (`GET /events`); every attacking
//!   connection is closed (or answered 408) within the deadline plus 2 s,
//!   and the receiver's resident memory stays under 200 MB throughout;
//! * a body that is slow but in time is processed, one past the deadline
//!   gets 408 and its retry 200;
//! * a connection that sends nothing, one idle after its answer, and a peer
//!   that reads none of its answers are closed;
//! * a connection past `--max-connections` waits for a free place, and a cap
//!   above the open-file limit is lowered;
//! * SIGTERM while a handler runs: the answer goes out and the process
//!   exits 0; Ctrl-C (SIGINT) past the grace period cuts the request off
//!   and exits 0 too.
//!
//! Every wait is bounded. Run with `--nocapture` to see the figures the
//! README's Security section quotes.

#[path = "support/receiver_process.rs"]
mod receiver_process;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use receiver_process::{ReceiverProcess, rss_bytes};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::time::{sleep, timeout};

const SECRET: &str = "whsec_slowloris0123456789abcdefghij";
/// `--body-timeout-ms`: the sender deadline, short so the file runs fast.
const DEADLINE_MS: u64 = 2000;
const DEADLINE: Duration = Duration::from_millis(DEADLINE_MS);
/// How late past the deadline an attacking connection may still be open.
const MARGIN: Duration = Duration::from_secs(2);
/// Every other wait ends by itself within this.
const LIMIT: Duration = Duration::from_secs(20);
const BODY_TRICKLERS: usize = 300;
const HEAD_TRICKLERS: usize = 300;
const HONEST: usize = 50;
/// How soon each honest delivery is answered under attack.
const HONEST_BOUND: Duration = Duration::from_secs(1);
/// The receiver's resident memory, at most.
const RSS_BOUND: u64 = 200 * 1024 * 1024;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The receiver on the memory store with the short deadline, plus `extra`.
fn receiver(extra: &[&str]) -> ReceiverProcess {
    let deadline = DEADLINE_MS.to_string();
    let mut args = vec![
        "--store",
        "memory",
        "--quiet",
        "--body-timeout-ms",
        &deadline,
    ];
    args.extend_from_slice(extra);
    ReceiverProcess::start(&args, &[("NUMERO_WEBHOOK_SECRET", SECRET)])
}

fn addr_of(receiver: &ReceiverProcess) -> SocketAddr {
    let host = receiver.base_url.strip_prefix("http://").expect("http");
    host.parse().expect("a socket address")
}

/// A Numero event `id`, as the provider would send it.
fn body(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","event":"TRANSFER_NOTIFICATION","data":{{"TrxAmount":1000.0,"Reference":"T4898"}}}}"#
    )
}

/// The head of a Numero delivery whose signature covers `signed` and which
/// declares a body of `length` bytes.
fn head(signed: &[u8], length: usize) -> Vec<u8> {
    let signature = tower_webhook::numero::sign(SECRET.as_bytes(), signed);
    format!(
        "POST /webhooks/numero HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         x-webhook-signature: {signature}\r\ncontent-length: {length}\r\n\r\n"
    )
    .into_bytes()
}

/// A signed delivery of event `id`, head and body, as a prompt sender
/// writes it.
fn delivery(id: &str) -> Vec<u8> {
    let body = body(id);
    let mut request = head(body.as_bytes(), body.len());
    request.extend_from_slice(body.as_bytes());
    request
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let stream = timeout(LIMIT, TcpStream::connect(addr))
        .await
        .expect("connected in time")
        .expect("connected");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// An answer as read off the wire.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: String,
}

/// Reads one answer (head and `Content-Length` body); `None` when the
/// connection ends before a whole one.
async fn read_reply(stream: &mut (impl AsyncRead + Unpin)) -> Option<Reply> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let reading = async {
        loop {
            if let Some(reply) = parse_reply(&buf) {
                return Some(reply);
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    timeout(LIMIT, reading)
        .await
        .expect("an answer or a close in time")
}

/// The first whole answer in `buf`, if there is one.
fn parse_reply(buf: &[u8]) -> Option<Reply> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().expect("a length"));
    let body = buf.get(end + 4..end + 4 + length)?;
    Some(Reply {
        status: head.get(9..12)?.parse().ok()?,
        body: String::from_utf8_lossy(body).into_owned(),
    })
}

/// Delivers event `id` promptly on a fresh connection: the answer, and how
/// long it took from connecting.
async fn deliver(addr: SocketAddr, id: &str) -> (Reply, Duration) {
    let started = Instant::now();
    let mut stream = connect(addr).await;
    stream.write_all(&delivery(id)).await.expect("sent");
    let reply = read_reply(&mut stream).await.expect("an answer");
    (reply, started.elapsed())
}

/// Delivers event `id` with its body in `pieces` pieces `pace` apart: the
/// answer, if one came before the connection ended.
async fn deliver_slowly(
    addr: SocketAddr,
    id: &str,
    pieces: usize,
    pace: Duration,
) -> Option<Reply> {
    let (mut reader, mut writer) = connect(addr).await.into_split();
    let body = body(id);
    let head = head(body.as_bytes(), body.len());
    let writing = tokio::spawn(async move {
        writer.write_all(&head).await?;
        for piece in body.as_bytes().chunks(body.len().div_ceil(pieces)) {
            sleep(pace).await;
            writer.write_all(piece).await?;
        }
        Ok::<_, std::io::Error>(writer)
    });
    let reply = read_reply(&mut reader).await;
    // A sender cut off finds its writes refused; that is the point.
    writing.abort();
    reply
}

/// `GET /events`: the status of each run of event `id`.
async fn runs_of(addr: SocketAddr, id: &str) -> Vec<u64> {
    let mut stream = connect(addr).await;
    let request = "GET /events HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n";
    stream.write_all(request.as_bytes()).await.expect("sent");
    let reply = read_reply(&mut stream).await.expect("an answer");
    assert_eq!(reply.status, 200, "{reply:?}");
    let runs: Vec<serde_json::Value> = serde_json::from_str(&reply.body).expect("JSON");
    runs.iter()
        .filter(|run| run["id"] == id)
        .map(|run| run["status"].as_u64().expect("a status"))
        .collect()
}

/// What a slowloris connection does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attack {
    /// Sends its head at once, declaring 1 000 000 bytes, then a byte of
    /// body every 300 ms.
    Body,
    /// Sends its head a byte a second.
    Head,
    /// Sends the head of `POST /dead-letters/replay` at once, declaring a
    /// 1000-byte body, then a byte of body a second.
    ReplayBody,
}

/// How one attacking connection ended.
#[derive(Debug)]
struct Cut {
    attack: Attack,
    /// How long it was open; `None` when still open at deadline + margin.
    open_for: Option<Duration>,
    /// The status of the answer it got before the close, if any.
    answer: Option<u16>,
}

/// Writes as `attack` says; once a write fails (the server closed the
/// connection) it waits for the reader to see the close.
async fn trickle(mut writer: tokio::net::tcp::OwnedWriteHalf, attack: Attack) -> Infallible {
    let writing: std::io::Result<()> = async {
        match attack {
            Attack::Body => {
                writer.write_all(&head(b"another body", 1_000_000)).await?;
                loop {
                    writer.write_all(b"x").await?;
                    sleep(Duration::from_millis(300)).await;
                }
            }
            Attack::Head => {
                for byte in head(b"another body", 100) {
                    writer.write_all(&[byte]).await?;
                    sleep(Duration::from_secs(1)).await;
                }
                Ok(())
            }
            Attack::ReplayBody => {
                let head = "POST /dead-letters/replay HTTP/1.1\r\nhost: 127.0.0.1\r\n\
                            content-type: application/json\r\ncontent-length: 1000\r\n\r\n";
                writer.write_all(head.as_bytes()).await?;
                loop {
                    writer.write_all(b" ").await?;
                    sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
    .await;
    drop(writing);
    std::future::pending().await
}

/// Everything the server sends until it closes the connection.
async fn read_until_closed(mut reader: OwnedReadHalf) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The attack's connections: opened so far, and open now.
#[derive(Default)]
struct Tally {
    opened: AtomicUsize,
    open: AtomicUsize,
}

impl Tally {
    /// Waits until `n` connections have been opened.
    async fn wait_opened(&self, n: usize) {
        timeout(LIMIT, async {
            while self.opened.load(Ordering::SeqCst) < n {
                sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("every attacking connection connected");
    }
}

/// One attacking connection, from connect to the server's close, or to
/// `patience` after connecting when the server leaves it open that long.
async fn attack_once(addr: SocketAddr, attack: Attack, tally: &Tally, patience: Duration) -> Cut {
    let (reader, writer) = connect(addr).await.into_split();
    tally.opened.fetch_add(1, Ordering::SeqCst);
    tally.open.fetch_add(1, Ordering::SeqCst);
    let started = Instant::now();
    let closed = tokio::select! {
        // A close seen late (this runtime busy) still counts as seen.
        biased;
        got = read_until_closed(reader) => Some(got),
        never = trickle(writer, attack) => match never {},
        () = sleep(patience) => None,
    };
    tally.open.fetch_sub(1, Ordering::SeqCst);
    Cut {
        attack,
        open_for: closed.as_ref().map(|_| started.elapsed()),
        answer: closed
            .and_then(|got| parse_reply(&got))
            .map(|reply| reply.status),
    }
}

/// Attacks until `stop`, reconnecting each time the server cuts it off.
async fn attacker(
    addr: SocketAddr,
    attack: Attack,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Vec<Cut> {
    let mut cuts = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        cuts.push(attack_once(addr, attack, &tally, DEADLINE + MARGIN).await);
    }
    cuts
}

/// Samples the receiver's resident memory every 50 ms until `stop`: the
/// largest sample and how many were taken.
fn sample_rss(pid: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(u64, usize)> {
    std::thread::spawn(move || {
        let (mut peak, mut samples) = (0, 0);
        while !stop.load(Ordering::SeqCst) {
            let rss = rss_bytes(pid).expect("the receiver is running");
            peak = peak.max(rss);
            samples += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        (peak, samples)
    })
}

/// The soft limit on this process's open files (`/proc/self/limits`).
fn open_file_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a line for open files");
    line["Max open files".len()..]
        .split_whitespace()
        .next()
        .and_then(|soft| soft.parse().ok())
        .unwrap_or(u64::MAX)
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

#[test]
fn honest_senders_are_served_through_a_slowloris() {
    let attackers = BODY_TRICKLERS + HEAD_TRICKLERS;
    let needed = (attackers + 64) as u64;
    let limit = open_file_limit();
    assert!(
        limit >= needed,
        "this test holds {attackers} sockets at once; the open-file limit is {limit}: \
         raise it with `ulimit -n {needed}`"
    );
    let receiver = receiver(&[]);
    let addr = addr_of(&receiver);
    let rss_at_start = receiver.rss().expect("/proc/<pid>/status");
    let sampling = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss(receiver.pid(), Arc::clone(&sampling));

    let (cuts, answered, attacking) = runtime().block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let attacks = (0..attackers).map(|i| {
            let attack = if i % 2 == 0 {
                Attack::Body
            } else {
                Attack::Head
            };
            tokio::spawn(attacker(
                addr,
                attack,
                Arc::clone(&stop),
                Arc::clone(&tally),
            ))
        });
        let attacks: Vec<_> = attacks.collect();
        tally.wait_opened(attackers).await;
        sleep(Duration::from_millis(500)).await;

        // The honest sender, one delivery at a time, while the attack runs
        // through about three rounds of cut-offs and reconnections.
        let (mut answered, mut attacking) = (Vec::new(), Vec::new());
        for i in 0..HONEST {
            let id = format!("evt_honest_{i}");
            attacking.push(tally.open.load(Ordering::SeqCst));
            let (reply, took) = deliver(addr, &id).await;
            assert_eq!(reply.status, 200, "{id}: {reply:?}");
            assert!(took < HONEST_BOUND, "{id} was answered after {took:?}");
            answered.push(took);
            sleep(Duration::from_millis(100)).await;
        }
        for i in 0..HONEST {
            let id = format!("evt_honest_{i}");
            assert_eq!(runs_of(addr, &id).await, [200], "{id} ran once");
        }

        stop.store(true, Ordering::SeqCst);
        let mut cuts = Vec::new();
        for attack in attacks {
            let done = timeout(DEADLINE + MARGIN + LIMIT, attack).await;
            cuts.extend(done.expect("the attacker stopped").expect("no panic"));
        }
        (cuts, answered, attacking)
    });
    sampling.store(true, Ordering::SeqCst);
    let (rss_peak, samples) = sampler.join().expect("the sampler");

    let still_open: Vec<_> = cuts.iter().filter(|cut| cut.open_for.is_none()).collect();
    assert!(
        still_open.is_empty(),
        "{} of {} attacking connections were open after {:?}: {:?}",
        still_open.len(),
        cuts.len(),
        DEADLINE + MARGIN,
        &still_open[..still_open.len().min(5)]
    );
    let wrong: Vec<_> = cuts
        .iter()
        .filter(|cut| cut.answer.is_some_and(|status| status != 408))
        .collect();
    assert!(
        wrong.is_empty(),
        "attackers answered other than 408: {wrong:?}"
    );
    assert!(
        rss_peak < RSS_BOUND,
        "the receiver's resident memory reached {} MB",
        rss_peak >> 20
    );

    // The attack was on while the honest sender sent: most of the time
    // nearly all its connections were open (each reconnects at once).
    let mut attacking = attacking;
    attacking.sort_unstable();
    let typical = attacking[HONEST / 2];
    assert!(
        typical >= attackers * 9 / 10,
        "only {typical} attacking connections open (median) during the honest deliveries"
    );
    let mut answered = answered;
    answered.sort();
    println!(
        "honest deliveries under attack: {HONEST}, each sent while {} to {} (median {typical}) \
         attacking connections were open; answered in median {:?}, p90 {:?}, worst {:?}",
        attacking[0],
        attacking[HONEST - 1],
        percentile(&answered, 50),
        percentile(&answered, 90),
        answered[HONEST - 1]
    );
    for attack in [Attack::Body, Attack::Head] {
        let mut open_for: Vec<_> = cuts
            .iter()
            .filter(|cut| cut.attack == attack)
            .filter_map(|cut| cut.open_for)
            .collect();
        open_for.sort();
        let with_408 = cuts
            .iter()
            .filter(|cut| cut.attack == attack && cut.answer == Some(408))
            .count();
        println!(
            "{attack:?} attackers: {} connections cut off after {:?} to {:?} (median {:?}); \
             {with_408} of them read a 408 first",
            open_for.len(),
            open_for[0],
            open_for[open_for.len() - 1],
            percentile(&open_for, 50),
        );
    }
    println!(
        "receiver RSS: {} MB at start, peak {} MB over {samples} samples",
        rss_at_start >> 20,
        rss_peak >> 20
    );
}

#[test]
fn trickled_admin_bodies_are_cut_off_and_a_delivery_is_served_past_them() {
    const SLOTS: usize = 4;
    let receiver = receiver(&["--max-connections", "4"]);
    let addr = addr_of(&receiver);
    runtime().block_on(async {
        let tally = Arc::new(Tally::default());
        // Each trickles for as long as it is let: up to LIMIT.
        let tricklers: Vec<_> = (0..SLOTS)
            .map(|_| {
                let tally = Arc::clone(&tally);
                tokio::spawn(
                    async move { attack_once(addr, Attack::ReplayBody, &tally, LIMIT).await },
                )
            })
            .collect();
        tally.wait_opened(SLOTS).await;
        // Long enough for the receiver to accept all four.
        sleep(Duration::from_millis(300)).await;

        let delivered = timeout(DEADLINE + MARGIN, deliver(addr, "evt_past_tricklers")).await;
        let (reply, took) =
            delivered.expect("the delivery was answered while the tricklers trickled");
        assert_eq!(reply.status, 200, "{reply:?}");
        println!("a delivery behind {SLOTS} trickled replay bodies was answered after {took:?}");

        for trickler in tricklers {
            let cut = timeout(LIMIT, trickler)
                .await
                .expect("in time")
                .expect("no panic");
            let open_for = cut.open_for.expect("the trickling connection was closed");
            assert!(
                open_for < DEADLINE + MARGIN,
                "open for {open_for:?}: {cut:?}"
            );
            assert_eq!(cut.answer, Some(408), "{cut:?}");
        }
        assert_eq!(runs_of(addr, "evt_past_tricklers").await, [200]);
    });
}

#[test]
fn a_slow_body_in_time_is_processed_one_past_the_deadline_is_408_and_its_retry_200() {
    let receiver = receiver(&[]);
    let addr = addr_of(&receiver);
    runtime().block_on(async {
        // Five pieces 200 ms apart: about a second, inside the 2 s deadline.
        let reply = deliver_slowly(addr, "evt_slow", 5, Duration::from_millis(200)).await;
        let reply = reply.expect("an answer");
        assert_eq!(reply.status, 200, "{reply:?}");

        // A hundred pieces 50 ms apart: about 5 s, past the deadline.
        let reply = deliver_slowly(addr, "evt_late", 100, Duration::from_millis(50)).await;
        let reply = reply.expect("an answer");
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (408, r#"{"error":"body_timeout"}"#)
        );
        assert!(runs_of(addr, "evt_late").await.is_empty(), "not run");

        let (reply, _) = deliver(addr, "evt_late").await;
        assert_eq!(reply.status, 200, "the retry: {reply:?}");
        assert_eq!(runs_of(addr, "evt_slow").await, [200]);
        assert_eq!(runs_of(addr, "evt_late").await, [200]);
    });
}

#[test]
fn a_peer_that_reads_none_of_its_answers_is_cut_off() {
    let receiver = receiver(&[]);
    let addr = addr_of(&receiver);
    runtime().block_on(async {
        // A small receive window, and answers never read: once the
        // buffers are full the server cannot write, stops reading, and
        // this side's writes wait, until the server gives up.
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let stream = timeout(LIMIT, socket.connect(addr))
            .await
            .expect("connected in time")
            .expect("connected");
        let (_unread, mut writer) = stream.into_split();
        let requests = "GET /queue HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".repeat(100);
        let started = Instant::now();
        let written = timeout(LIMIT, async {
            loop {
                if let Err(error) = writer.write_all(requests.as_bytes()).await {
                    return error;
                }
            }
        })
        .await;
        let error = written.expect("the server cut the connection off");
        println!(
            "a peer reading nothing was cut off after {:?} ({error})",
            started.elapsed()
        );
    });
}

/// Starts a delivery of `id` on its own connection; the task answers with
/// what the client got (`None`: the connection ended without an answer).
fn deliver_in_background(
    addr: SocketAddr,
    id: &'static str,
) -> tokio::task::JoinHandle<Option<Reply>> {
    tokio::spawn(async move {
        let mut stream = connect(addr).await;
        stream.write_all(&delivery(id)).await.ok()?;
        read_reply(&mut stream).await
    })
}

/// What a delivery started by [`deliver_in_background`] got.
async fn outcome(delivery: tokio::task::JoinHandle<Option<Reply>>) -> Option<Reply> {
    let joined = timeout(LIMIT, delivery).await.expect("in time");
    joined.expect("no panic")
}

/// Waits until the receiver has printed a line containing `said`.
fn wait_for_line(receiver: &ReceiverProcess, said: &str) {
    let deadline = Instant::now() + LIMIT;
    while !receiver.printed().iter().any(|line| line.contains(said)) {
        assert!(
            Instant::now() < deadline,
            "{said:?} not in {:?}",
            receiver.printed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts the receiver exits with status 0, having printed `said`.
fn assert_exits_0_saying(receiver: &mut ReceiverProcess, said: &str) {
    let status = receiver.wait_exit(LIMIT).expect("the receiver exited");
    assert!(status.success(), "{status:?}: {:?}", receiver.printed());
    wait_for_line(receiver, said);
}

#[test]
fn sigterm_while_a_handler_runs_lets_it_answer_then_exits_0() {
    let mut receiver = receiver(&["--handler-delay-ms", "1500"]);
    let addr = addr_of(&receiver);
    runtime().block_on(async {
        let in_flight = deliver_in_background(addr, "evt_term");
        sleep(Duration::from_millis(300)).await;
        receiver.sigterm();
        // The listener closes: a new sender is refused.
        timeout(LIMIT, async {
            while TcpStream::connect(addr).await.is_ok() {
                sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("new connections refused after SIGTERM");
        let reply = outcome(in_flight).await.expect("answered");
        assert_eq!(reply.status, 200, "{reply:?}");
        assert!(reply.body.contains(r#""status":"processed""#), "{reply:?}");
    });
    assert_exits_0_saying(&mut receiver, "SIGTERM: stopping");
}

#[test]
fn ctrl_c_past_the_grace_period_cuts_the_request_off_and_exits_0() {
    let mut receiver = receiver(&["--handler-delay-ms", "30000", "--shutdown-grace-ms", "500"]);
    let addr = addr_of(&receiver);
    let mut signalled = Instant::now();
    let reply = runtime().block_on(async {
        let in_flight = deliver_in_background(addr, "evt_cut");
        sleep(Duration::from_millis(300)).await;
        signalled = Instant::now();
        receiver.sigint();
        outcome(in_flight).await
    });
    assert!(reply.is_none(), "an answer to a request cut off: {reply:?}");
    assert_exits_0_saying(&mut receiver, "1 connection(s) still busy");
    let took = signalled.elapsed();
    assert!(
        took < Duration::from_millis(500) + MARGIN,
        "exited {took:?} after Ctrl-C"
    );
}

#[test]
fn a_connection_past_the_cap_waits_for_a_free_one() {
    let receiver = receiver(&["--max-connections", "2"]);
    let addr = addr_of(&receiver);
    runtime().block_on(async {
        // Two connections that send nothing hold both places.
        let first = connect(addr).await;
        let _second = connect(addr).await;
        // The kernel completes the third connection, the receiver does not
        // serve it while both places are taken.
        let waiting = deliver_in_background(addr, "evt_third");
        sleep(Duration::from_millis(500)).await;
        assert!(!waiting.is_finished(), "served past the cap");
        drop(first);
        let reply = outcome(waiting)
            .await
            .expect("answered once a place is free");
        assert_eq!(reply.status, 200, "{reply:?}");
    });
}

#[test]
fn a_cap_above_the_open_file_limit_is_lowered() {
    let limit = open_file_limit();
    let asked = limit.saturating_mul(2).to_string();
    let receiver = receiver(&["--max-connections", &asked]);
    let said = format!("--max-connections {asked} lowered to {}", limit - 64);
    wait_for_line(&receiver, &said);
}

#[test]
fn silent_and_idle_keep_alive_connections_are_closed_after_the_deadline() {
    let receiver = receiver(&[]);
    let addr = addr_of(&receiver);
    runtime().block_on(async {
        let silent = async {
            let started = Instant::now();
            let mut stream = connect(addr).await;
            assert!(read_reply(&mut stream).await.is_none(), "no answer");
            started.elapsed()
        };
        let idle = async {
            let mut stream = connect(addr).await;
            stream.write_all(&delivery("evt_idle")).await.expect("sent");
            let reply = read_reply(&mut stream).await.expect("an answer");
            assert_eq!(reply.status, 200, "{reply:?}");
            let answered = Instant::now();
            assert!(read_reply(&mut stream).await.is_none(), "no second answer");
            answered.elapsed()
        };
        let (silent, idle) = tokio::join!(silent, idle);
        assert!(silent < DEADLINE + MARGIN, "silent for {silent:?}");
        assert!(idle < DEADLINE + MARGIN, "idle for {idle:?}");
    });
}
