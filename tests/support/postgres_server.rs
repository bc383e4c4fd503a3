//! A throwaway Postgres server for tests and benchmarks: `initdb` into a
//! fresh temporary directory, a free 127.0.0.1 port, trust authentication
//! for the user `postgres`, stopped and removed on drop. Run as root, the
//! server runs as `nobody` (Postgres refuses root), which then owns the
//! directory.
//!
//! The binaries are found through `PG_BIN`, then Debian's
//! `/usr/lib/postgresql/<newest>/bin`, then `PATH`; `scripts/test.sh`
//! installs Debian's `postgresql` package when none is there.
//!
//! Included with `#[path = "support/postgres_server.rs"] mod postgres_server;`.

#![allow(dead_code)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

// Each server file carries its own copy, so either can be included alone.
#[allow(clippy::duplicate_mod)]
#[path = "server_process.rs"]
mod server_process;

use server_process::{NotReady, fresh_dir, on_a_free_port, retry_for, wait_until_ready};

/// How long a server may take to accept connections.
const STARTUP: Duration = Duration::from_secs(30);

/// How a server writes: tests that kill processes, not machines, need no
/// flush; a benchmark measures the real one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// `fsync = off`: a killed process loses nothing, a power cut may.
    Off,
    /// `fsync = on`, `synchronous_commit = on`: Postgres's defaults.
    Durable,
}

/// A running Postgres server.
pub struct PostgresServer {
    child: Option<Child>,
    port: u16,
    root: PathBuf,
    bin: PathBuf,
    flush: Flush,
    run_as_nobody: bool,
}

impl PostgresServer {
    /// Starts a server with `fsync = off`, or panics saying why.
    pub fn start() -> Self {
        Self::start_with(Flush::Off)
    }

    /// Starts a server writing as `flush` says, or panics saying why.
    pub fn start_with(flush: Flush) -> Self {
        Self::try_start(flush).unwrap_or_else(|e| {
            panic!("{e} (scripts/test.sh installs Postgres: apt-get install postgresql)")
        })
    }

    fn try_start(flush: Flush) -> Result<Self, String> {
        let bin = bin_dir()?;
        let root = fresh_dir("postgres")?;
        let run_as_nobody = is_root();
        let mut server = Self {
            child: None,
            port: 0,
            root,
            bin,
            flush,
            run_as_nobody,
        };
        if run_as_nobody {
            run(Command::new("chown")
                .args(["nobody:nogroup"])
                .arg(&server.root))?;
        }
        let mut initdb = server.command("initdb");
        initdb
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(server.data());
        run(&mut initdb)?;
        on_a_free_port(|port| {
            server.port = port;
            server.spawn().inspect_err(|_| server.stop())
        })?;
        Ok(server)
    }

    /// One server shared by every caller that holds it at the same time
    /// (cases running in parallel take a schema each): started by the first,
    /// stopped when the last drops its handle, so nothing outlives the test
    /// binary.
    pub fn shared() -> Arc<Self> {
        static SHARED: Mutex<Weak<PostgresServer>> = Mutex::new(Weak::new());
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(server) = shared.upgrade() {
            return server;
        }
        let server = Arc::new(Self::start());
        *shared = Arc::downgrade(&server);
        server
    }

    /// A name no other caller in this process got: for a schema or a
    /// database of one's own on a shared server.
    pub fn unique_name(prefix: &str) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        format!("{prefix}_{}", COUNTER.fetch_add(1, Ordering::Relaxed))
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (fast shutdown: open connections are cut) and
    /// waits for it to exit; the port and data stay for
    /// [`PostgresServer::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        let started = retry_for(STARTUP, Duration::from_millis(100), || {
            self.spawn().inspect_err(|_| self.stop())
        });
        if let Err(e) = started {
            panic!("postgres did not restart: {e}");
        }
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn log(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    /// `program` from the server's binaries, as `nobody` when running as
    /// root (`setpriv` execs it, so the child is the program itself).
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.run_as_nobody {
            let mut command = Command::new("setpriv");
            command
                .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
                .arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .map_err(|e| e.to_string())?;
        let fsync = match self.flush {
            Flush::Off => "off",
            Flush::Durable => "on",
        };
        let mut command = self.command("postgres");
        command
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.root.display()))
            .args(["-c", &format!("fsync={fsync}")])
            .args(["-c", "synchronous_commit=on"])
            .args(["-c", "max_connections=200"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start postgres: {e}"))?;
        let answered = wait_until_ready(&mut child, STARTUP, Duration::from_millis(50), || {
            self.accepts_connections()
        });
        self.child = Some(child); // stopped by the caller when not ready
        match answered {
            Ok(()) => Ok(()),
            Err(NotReady::Exited(status)) => {
                Err(format!("postgres exited ({status}): {}", self.read_log()))
            }
            Err(NotReady::TimedOut) => Err(format!(
                "postgres did not accept connections within {STARTUP:?}: {}",
                self.read_log()
            )),
        }
    }

    /// Whether the server answers `pg_isready` (a TCP connect alone
    /// succeeds while it is still starting up).
    fn accepts_connections(&self) -> bool {
        TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success())
    }

    fn read_log(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Where the server's binaries are.
fn bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Ok(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|dir| dir.join("initdb").exists() && dir.join("postgres").exists())
        .ok_or_else(|| "no Postgres binaries (initdb, postgres) found".to_owned())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

fn run(command: &mut Command) -> Result<(), String> {
    let out = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
