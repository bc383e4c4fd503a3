//! A throwaway `redis-server` for tests and benchmarks: a free 127.0.0.1
//! port, no persistence unless asked, its own temporary directory, killed
//! and cleaned up on drop.
//!
//! Included with `#[path = "support/redis_server.rs"] mod redis_server;`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

// Each server file carries its own copy, so either can be included alone.
#[allow(clippy::duplicate_mod)]
#[path = "server_process.rs"]
mod server_process;

use server_process::{NotReady, fresh_dir, on_a_free_port, retry_for, wait_until_ready};

/// How long a server may take to answer its first PING.
const STARTUP: Duration = Duration::from_secs(10);

/// A running `redis-server`.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server, or panics saying why: `scripts/test.sh` installs
    /// `redis-server`, so a test that cannot start one fails.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments (later ones
    /// override the defaults), or panics.
    pub fn start_with(extra: &[&str]) -> Self {
        Self::try_start_with(extra).unwrap_or_else(|e| {
            panic!("{e} (scripts/test.sh installs redis-server: apt-get install redis-server)")
        })
    }

    /// Starts a server that keeps its data across [`RedisServer::restart`]
    /// (append-only file, fsync on every write).
    pub fn start_persistent() -> Self {
        Self::start_with(&["--appendonly", "yes", "--appendfsync", "always"])
    }

    /// Starts a server, or says why it could not.
    pub fn try_start() -> Result<Self, String> {
        Self::try_start_with(&[])
    }

    fn try_start_with(extra: &[&str]) -> Result<Self, String> {
        // One server and directory across the ports tried: dropping a
        // failed try would remove the directory the next one needs.
        let mut server = Self {
            child: None,
            port: 0,
            dir: fresh_dir("redis")?,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        on_a_free_port(|port| {
            server.port = port;
            server.spawn().inspect_err(|_| server.stop())
        })?;
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server and waits for it to exit; the port and directory
    /// stay reserved for [`RedisServer::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory.
    pub fn restart(&mut self) {
        self.stop();
        let started = retry_for(STARTUP, Duration::from_millis(50), || {
            self.spawn().inspect_err(|_| self.stop())
        });
        if let Err(e) = started {
            panic!("redis-server did not restart: {e}");
        }
    }

    /// Runs one command over a fresh connection and returns the raw reply,
    /// e.g. `command(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"])`.
    pub fn command(&self, args: &[&str]) -> Result<String, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut reply = vec![0; 4096];
        let n = stream.read(&mut reply).map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&reply[..n]).into_owned())
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::File::create(self.dir.join("redis.log")).map_err(|e| e.to_string())?;
        let mut command = Command::new("redis-server");
        command
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args([
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
                "--logfile",
                "",
            ])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        let answered = wait_until_ready(&mut child, STARTUP, Duration::from_millis(20), || {
            self.command(&["PING"])
                .is_ok_and(|r| r.starts_with("+PONG"))
        });
        self.child = Some(child); // stopped by the caller when not ready
        match answered {
            Ok(()) => Ok(()),
            Err(NotReady::Exited(status)) => Err(format!(
                "redis-server exited ({status}): {}",
                read_log(&self.dir)
            )),
            Err(NotReady::TimedOut) => Err(format!(
                "redis-server did not answer PING within {STARTUP:?}: {}",
                read_log(&self.dir)
            )),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default()
}
