//! The example receiver as a real child process: started on a free
//! 127.0.0.1 port, driven over HTTP, stopped with SIGTERM or killed with
//! SIGKILL. Every wait is bounded; the child is killed on drop.
//!
//! Included with `#[path = "support/receiver_process.rs"] mod receiver_process;`.
//! The first use builds the receiver (`cargo build --all-features --example
//! receiver`), a no-op when `scripts/test.sh` already built it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long the receiver may take to print its address.
const STARTUP: Duration = Duration::from_secs(30);

/// The receiver binary, built once per test binary.
pub fn binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args([
                    "build",
                    "--quiet",
                    "--all-features",
                    "--example",
                    "receiver",
                ])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building the receiver failed");
            // target/<profile>/deps/<this test> → target/<profile>/examples/receiver
            let exe = std::env::current_exe().expect("the test binary's path");
            let profile_dir = exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("target dir");
            profile_dir.join("examples").join("receiver")
        })
        .clone()
}

/// A running receiver process.
pub struct ReceiverProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`, whatever address it listens on.
    pub base_url: String,
    /// Everything it printed on stdout so far.
    pub output: Arc<Mutex<Vec<String>>>,
}

impl ReceiverProcess {
    /// Starts the receiver with `args` (plus `--addr 127.0.0.1:0`) and
    /// `env`, and waits until it listens.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_on("127.0.0.1:0", args, env)
    }

    /// [`start`](Self::start) listening on `addr` (such as `0.0.0.0:0`, a
    /// non-loopback bind); `base_url` still points at 127.0.0.1, which an
    /// unspecified address also listens on.
    pub fn start_on(addr: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(binary());
        command
            .args(["--addr", addr])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the receiver starts");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::clone(&output);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("listening on ") {
                    let url = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .replace("//0.0.0.0:", "//127.0.0.1:");
                    let _ = tx.send(url);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = Arc::clone(&output);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(format!("stderr: {line}"));
            }
        });
        let base_url = match rx.recv_timeout(STARTUP) {
            Ok(url) => url.replace("://0.0.0.0:", "://127.0.0.1:"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the receiver did not start listening: {:?}",
                    output.lock().unwrap()
                );
            }
        };
        Self {
            child,
            base_url,
            output,
        }
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash or `kill -9` would, and reaps it.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (a graceful stop).
    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Sends SIGINT, as Ctrl-C in a terminal does (a graceful stop).
    pub fn sigint(&self) {
        self.signal("INT");
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Its resident memory now, in bytes; see [`rss_bytes`].
    pub fn rss(&self) -> Option<u64> {
        rss_bytes(self.pid())
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What it printed so far, one line each (stderr lines prefixed
    /// `stderr: `).
    pub fn printed(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    /// Waits up to `limit` for a printed line that `wanted` accepts, and
    /// returns it: stderr is read on its own thread, so a line printed
    /// before `listening on` may be collected after it.
    pub fn wait_printed(&self, limit: Duration, wanted: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(line) = self.printed().into_iter().find(|line| wanted(line)) {
                return Some(line);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ReceiverProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The resident memory of process `pid` (`VmRSS` in `/proc/<pid>/status`),
/// in bytes; `None` once it has exited, or where there is no `/proc`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Runs the receiver with `args` to its end (for arguments it refuses):
/// its exit status and stderr.
pub fn run_to_end(args: &[&str], limit: Duration) -> (ExitStatus, String) {
    run_to_end_with(args, &[], limit)
}

/// [`run_to_end`] with extra environment variables.
pub fn run_to_end_with(
    args: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
) -> (ExitStatus, String) {
    run_to_end_at("127.0.0.1:0", args, env, limit)
}

/// [`run_to_end_with`] listening on `addr`.
pub fn run_to_end_at(
    addr: &str,
    args: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
) -> (ExitStatus, String) {
    let mut child = Command::new(binary())
        .args(["--addr", addr])
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the receiver starts");
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let mut stderr = String::new();
            use std::io::Read as _;
            child
                .stderr
                .take()
                .expect("piped")
                .read_to_string(&mut stderr)
                .expect("stderr");
            return (status, stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the receiver did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
