//! Whether the files a store opened are still the ones its path names.
//!
//! SQLite keeps writing through the descriptors it opened: once the
//! database file (or its `-wal` or `-shm`) is deleted or replaced under a
//! running store, commits still succeed, into a file that no restart will
//! ever open again. The writer compares the path's current identity with
//! the one recorded at open after each commit, before it answers, and
//! fails closed from then on.

use std::path::{Path, PathBuf};

/// What identifies one file: its device and inode on Unix. Elsewhere only
/// whether the path still exists is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    #[cfg(unix)]
    device: u64,
    #[cfg(unix)]
    inode: u64,
}

impl FileId {
    fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            Some(Self {
                device: metadata.dev(),
                inode: metadata.ino(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = metadata;
            Some(Self {})
        }
    }
}

/// The database file, its `-wal` and its `-shm` as they were when the
/// store opened them.
#[derive(Debug)]
pub(super) struct OpenedFiles {
    files: Vec<(PathBuf, FileId)>,
}

impl OpenedFiles {
    /// Records the files at `database` and beside it. Call once the
    /// connections are open and the WAL is in use, so that all three exist;
    /// one that does not is not watched.
    pub(super) fn record(database: &Path) -> Self {
        let files = ["", "-wal", "-shm"]
            .into_iter()
            .filter_map(|suffix| {
                let mut path = database.as_os_str().to_owned();
                path.push(suffix);
                let path = PathBuf::from(path);
                FileId::of(&path).map(|id| (path, id))
            })
            .collect();
        Self { files }
    }

    /// The first recorded file whose path is gone or now names another
    /// file; `None` while every path still names the file opened. One
    /// `stat` per file.
    pub(super) fn first_changed(&self) -> Option<&Path> {
        self.files
            .iter()
            .find(|(path, id)| FileId::of(path) != Some(*id))
            .map(|(path, _)| path.as_path())
    }
}
