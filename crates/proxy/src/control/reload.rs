//! Where a new configuration comes from: the `-c` file, read again on
//! request (SIGHUP) or when its content changes.
//!
//! The file is polled: every `watch_interval` its bytes are read through
//! the path and hashed (sha256). Reading through the path follows symlinks
//! at each read, so the kubelet's way of updating a mounted ConfigMap — the
//! file is a symlink to `..data/FILE`, and `..data` a symlink swapped
//! atomically to a new folder — is seen like any other change, where an
//! inotify watch on the file alone would miss it. A change noticed this way
//! is taken only once two reads `SETTLE` apart agree, so a file caught
//! half-written by a slow `cp` is never applied: it is either invalid (and
//! so refused), or read again until it stops changing. A requested reload
//! (SIGHUP) reads the file once, at once: whoever asked has written it.
//!
//! The bytes are checked exactly as `memshard proxy -t` checks them
//! (`Config::from_bytes`). A file that fails is reported (`FILE:LINE:
//! reason`) and counted, and the running configuration stays; the same bad
//! content is not reported again until it changes or a reload is asked.
//! A good one is handed to the proxy to apply.

use memshard_config::Config;
use memshard_net::Shutdown;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, mpsc};

/// How long two reads must agree before a changed file is taken.
const SETTLE: Duration = Duration::from_millis(200);

/// Most reads while waiting for a changing file to settle.
const SETTLE_TRIES: usize = 25;

/// A checked configuration and the hash of the bytes it came from.
pub(crate) struct Checked {
    pub(crate) config: Config,
    pub(crate) sha256: String,
    /// The file's text (the admin port's `/config`).
    pub(crate) text: Arc<str>,
}

/// What the stats show of the configuration in force and the reloads.
#[derive(Debug, Default, Clone)]
pub(crate) struct ConfigInfo {
    /// 1 for the configuration the proxy started with, +1 per applied reload.
    pub(crate) generation: u64,
    /// sha256 (hex) of the file the configuration in force came from
    /// (empty when it was not read from a file).
    pub(crate) sha256: String,
    /// When it was applied (seconds since the epoch).
    pub(crate) loaded_at: u64,
    /// Reloads applied, and refused (bad file, or a listener that could not
    /// be bound).
    pub(crate) reloads: u64,
    pub(crate) reloads_failed: u64,
    /// The last reload's outcome: `ok`, or why it was refused.
    pub(crate) last_reload: String,
    /// The file it came from, and its text (`None`: not from a file).
    pub(crate) file: Option<String>,
    pub(crate) text: Option<Arc<str>>,
}

/// The configuration info, shared by the reload loop and the stats port.
pub(crate) type SharedInfo = Arc<Mutex<ConfigInfo>>;

impl ConfigInfo {
    /// The info of the configuration the proxy starts with.
    pub(crate) fn started(sha256: String, file: Option<String>, text: Option<Arc<str>>) -> SharedInfo {
        Arc::new(Mutex::new(ConfigInfo {
            generation: 1,
            sha256,
            loaded_at: now(),
            file,
            text,
            ..ConfigInfo::default()
        }))
    }

    /// A copy of the info now.
    pub(crate) fn read(info: &SharedInfo) -> ConfigInfo {
        info.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Records a reload's outcome.
    pub(crate) fn record(info: &SharedInfo, outcome: Result<(&str, &Arc<str>), &str>) {
        let mut i = info.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match outcome {
            Ok((sha256, text)) => {
                i.generation += 1;
                i.sha256 = sha256.to_string();
                i.text = Some(text.clone());
                i.loaded_at = now();
                i.reloads += 1;
                i.last_reload = "ok".to_string();
            }
            Err(why) => {
                i.reloads_failed += 1;
                i.last_reload = why.to_string();
            }
        }
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The hex sha256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Watches `file` until `shutdown`: on each `requested` notification (a
/// SIGHUP), and every `every` when its content changed, reads and checks it;
/// a good configuration goes to `apply`, a bad one is recorded in `info`.
/// `seen` is the hash of the content in force at the start.
pub(crate) async fn watch(
    file: PathBuf,
    every: Option<Duration>,
    requested: Arc<Notify>,
    mut seen: String,
    info: SharedInfo,
    apply: mpsc::Sender<Checked>,
    mut shutdown: Shutdown,
) {
    let poll = every.unwrap_or(Duration::from_secs(3600));
    loop {
        let asked = tokio::select! {
            _ = shutdown.wait() => return,
            () = requested.notified() => true,
            () = tokio::time::sleep(poll), if every.is_some() => false,
        };
        let first = std::fs::read(&file);
        if first.as_ref().is_ok_and(|b| !asked && sha256(b) == seen) {
            continue;
        }
        // Asked: the file is taken as it is (whoever asked has written it);
        // noticed: only once it stops changing.
        let bytes = match asked {
            true => first,
            false => match settled(&file, first, &mut shutdown).await {
                Some(b) => b,
                None => return,
            },
        };
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                let why = format!("{}: cannot read: {e}", file.display());
                if asked || seen != "unreadable" {
                    tracing::warn!(file = %file.display(), error = %e, "reload: cannot read the configuration; keeping the running one");
                    ConfigInfo::record(&info, Err(&why));
                }
                seen = "unreadable".to_string();
                continue;
            }
        };
        let hash = sha256(&bytes);
        if hash == seen && !asked {
            continue;
        }
        seen = hash.clone();
        match Config::from_bytes(&bytes, &file) {
            Ok(config) => {
                tracing::info!(file = %file.display(), sha256 = %hash, signal = asked, "reload: configuration checked");
                let text: Arc<str> = String::from_utf8_lossy(&bytes).into();
                if apply.send(Checked { config, sha256: hash, text }).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::error!("reload refused, keeping the running configuration: {e}");
                ConfigInfo::record(&info, Err(&e.to_string()));
            }
        }
    }
}

/// The file's bytes once two reads `SETTLE` apart agree, `first` being the
/// first read; an error when it never settles in `SETTLE_TRIES` reads;
/// `None` on shutdown.
async fn settled(
    file: &PathBuf,
    first: std::io::Result<Vec<u8>>,
    shutdown: &mut Shutdown,
) -> Option<std::io::Result<Vec<u8>>> {
    let mut last = match first {
        Ok(b) => b,
        Err(e) => return Some(Err(e)),
    };
    for _ in 0..SETTLE_TRIES {
        tokio::select! {
            _ = shutdown.wait() => return None,
            () = tokio::time::sleep(SETTLE) => {}
        }
        let again = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        if again == last {
            return Some(Ok(again));
        }
        last = again;
    }
    Some(Err(std::io::Error::other(format!(
        "still changing after {} reads {} ms apart; not applied",
        SETTLE_TRIES,
        SETTLE.as_millis()
    ))))
}
