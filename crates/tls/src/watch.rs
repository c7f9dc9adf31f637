//! Reloading certificates when their files change.
//!
//! Kubernetes updates a mounted Secret by writing a new folder and swapping
//! a symlink to it, so the files' contents change without the files
//! themselves being written; polling the contents sees every kind of
//! update (a Secret, `cp`, cert-manager's CSI driver) the same way. The
//! files are a few kilobytes, read every [`POLL_INTERVAL`].

use crate::{Fingerprint, TlsError};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the files are read.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Something built from files that can be rebuilt.
pub trait Reload: Send + Sync {
    /// The files it is built from.
    fn paths(&self) -> Vec<PathBuf>;
    /// The fingerprint of the contents in use.
    fn loaded(&self) -> Fingerprint;
    /// Rebuilds from the files; on failure the old stays in use.
    fn reload(&self) -> Result<(), TlsError>;
    /// The contents whose reload failed last (not tried again until they change).
    fn failed(&self) -> &Mutex<Option<Fingerprint>>;
}

/// Reloads `item` if its files' contents changed since they were loaded,
/// and not to contents that already failed to load: `Some(outcome)` when
/// it tried.
pub fn reload_if_changed(item: &dyn Reload) -> Option<Result<(), TlsError>> {
    let now = Fingerprint::of(&item.paths());
    if now == item.loaded() {
        return None;
    }
    let mut failed = item.failed().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if *failed == Some(now) {
        return None;
    }
    let outcome = item.reload();
    *failed = outcome.as_ref().err().map(|_| now);
    Some(outcome)
}

/// Reloads whichever of `items` changed, every `every`, until `stop`
/// completes. A change that fails to load (a key written before its
/// certificate, a broken file) is logged once and tried again when the
/// files change again.
pub async fn run(items: Vec<Arc<dyn Reload>>, every: Duration, stop: impl Future<Output = ()>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => {}
        }
        for item in &items {
            reload_if_changed(&**item);
        }
    }
}

/// Reloads every item now (SIGHUP): `Err` with the first failure.
pub fn reload_all(items: &[Arc<dyn Reload>]) -> Result<(), TlsError> {
    let mut first = None;
    for item in items {
        if let Err(e) = item.reload() {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}
