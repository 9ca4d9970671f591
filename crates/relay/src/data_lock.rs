//! Single-node safety: one relay per SQLite `--data` directory.
//!
//! Two relays on one directory would each keep their own in-memory copy of
//! every document, store both streams of updates, and never show either
//! stream to the other's clients. The relay therefore takes an exclusive
//! OS lock (`flock(2)`) on `weft.lock` in the directory for its whole
//! lifetime; a second relay on the same directory refuses to start with
//! [`RelayError::DataDirLocked`]. The kernel drops the lock when the
//! process ends, however it ends (`SIGKILL` included), so a stale lock
//! never blocks a restart; the file itself stays and is harmless.
//! Several relays sharing documents is cluster mode (`docs/scale-out.md`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;

use crate::error::RelayError;

/// Name of the lock file inside `--data`.
pub(crate) const LOCK_FILE: &str = "weft.lock";

/// The held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub(crate) struct DataLock {
    _file: File,
    path: PathBuf,
}

impl DataLock {
    /// Takes the lock of `dir` (which must exist) without waiting.
    pub(crate) fn acquire(dir: &Path) -> Result<DataLock, RelayError> {
        let path = dir.join(LOCK_FILE);
        let io_error = |source| RelayError::DataDir {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        if !FileExt::try_lock_exclusive(&file).map_err(io_error)? {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            return Err(RelayError::DataDirLocked {
                path: dir.to_path_buf(),
                holder: holder.trim().chars().take(200).collect(),
            });
        }
        // Who holds it, for the next one's error message (informative only:
        // the lock is the flock, not this content).
        let _ = file.set_len(0);
        let _ = writeln!(file, "pid {}", std::process::id());
        let _ = file.sync_data();
        Ok(DataLock { _file: file, path })
    }

    /// The lock file.
    #[allow(dead_code)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_a_directory_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataLock::acquire(dir.path()).unwrap();
        let err = DataLock::acquire(dir.path()).unwrap_err();
        assert!(
            matches!(&err, RelayError::DataDirLocked { holder, .. } if holder.starts_with("pid ")),
            "{err}"
        );
        drop(first);
        let again = DataLock::acquire(dir.path()).unwrap();
        assert!(again.path().ends_with(LOCK_FILE));
    }
}
