//! [`TempDir`]: a fresh directory under the system's temp dir, removed with
//! what it holds when dropped. One file, included by the harness and by the
//! receiver-process support.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `<tmp>/tower-webhook-store-<pid>-<n>`.
    pub fn new() -> Self {
        Self::with_label("store")
    }

    /// Creates `<tmp>/tower-webhook-<label>-<pid>-<n>`.
    pub fn with_label(label: &str) -> Self {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("tower-webhook-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
