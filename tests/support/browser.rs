//! A real headless Debian `chromium`, driven over WebDriver by
//! `chromedriver` (Debian's `chromium-driver`) through `fantoccini`: a
//! free 127.0.0.1 port, a fresh profile directory, nothing reached over
//! the network but 127.0.0.1. The driver (and with it the browser) is
//! killed on drop.
//!
//! Included with `#[path = "support/browser.rs"] mod browser;`.
//! `scripts/test.sh` installs `chromium` and `chromium-driver`.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

/// How long the driver may take to listen.
const STARTUP: Duration = Duration::from_secs(20);

/// The flags chromium needs here: headless, no sandbox (root in a
/// container), and nothing that phones home.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1200,900",
];

/// A running `chromedriver`.
pub struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Starts `chromedriver` on a free port, or panics saying why.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver does not start ({e}); scripts/test.sh installs chromium-driver"
                )
            });
        let deadline = Instant::now() + STARTUP;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }

    /// A new browser session with a fresh profile in `profile`.
    pub async fn browser(&self, profile: &Path) -> Client {
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "args": args, "binary": chromium() }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a chromium session")
    }
}

/// Debian's binary, wherever `PATH` has it.
fn chromium() -> &'static str {
    if Path::new("/usr/bin/chromium").exists() {
        "/usr/bin/chromium"
    } else {
        "chromium"
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
