//! nutcracker's `-d` and `-p`: run in the background, and say where in a pid
//! file. Daemonizing forks, so it must happen before any thread exists —
//! before the runtime is built.

use anyhow::{Context, anyhow};
use std::path::{Path, PathBuf};

/// Detaches from the terminal as nutcracker's `-d` does (daemon(3): fork,
/// new session, working directory `/`, standard streams to /dev/null). The
/// parent exits 0 at once; the child goes on. Call before any thread starts.
pub(crate) fn daemonize() -> anyhow::Result<()> {
    nix::unistd::daemon(false, false).map_err(|e| anyhow!("cannot daemonize: {e}"))
}

/// A pid file holding this process's id, removed when dropped (a clean
/// exit), as nutcracker removes its own.
#[derive(Debug)]
pub(crate) struct PidFile {
    path: PathBuf,
    pid: u32,
}

impl PidFile {
    /// Writes this process's id to `path` (made absolute first: a daemon
    /// changes its working directory to `/`).
    pub(crate) fn create(path: &Path) -> anyhow::Result<PidFile> {
        let path = std::path::absolute(path).with_context(|| format!("pid file {}", path.display()))?;
        let pid = std::process::id();
        std::fs::write(&path, format!("{pid}\n"))
            .with_context(|| format!("cannot write pid file {}", path.display()))?;
        Ok(PidFile { path, pid })
    }

    /// The absolute path, for use after the working directory changed.
    pub(crate) fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
        std::path::absolute(path).with_context(|| format!("pid file {}", path.display()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Only our own: another process may have written the file since.
        let ours = std::fs::read_to_string(&self.path).is_ok_and(|s| s.trim() == self.pid.to_string());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
