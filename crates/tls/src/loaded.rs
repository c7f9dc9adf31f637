//! What both sides share: a rustls configuration built from files, swapped
//! whole when the files are loaded again, with the fingerprint of the
//! contents it came from and the counters of its reloads.

use crate::watch::Reload;
use crate::{Fingerprint, TlsError, TlsStats};
use arc_swap::ArcSwap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Files a configuration is built from.
pub(crate) trait Files: Send + Sync {
    /// The rustls configuration they make.
    type Config: Send + Sync;
    /// Every file read.
    fn paths(&self) -> Vec<PathBuf>;
    /// Reads them and builds the configuration.
    fn build(&self) -> Result<Self::Config, TlsError>;
    /// Which files, for a log line (`from cert.pem`, `CA ca.crt`).
    fn describe(&self) -> String;
}

/// A configuration in use and the files it came from.
#[derive(Debug)]
pub(crate) struct Loaded<F: Files> {
    pub(crate) files: F,
    config: ArcSwap<F::Config>,
    /// The contents the configuration in use was built from.
    loaded: ArcSwap<Fingerprint>,
    /// The contents whose reload failed last.
    failed: Mutex<Option<Fingerprint>>,
    pub(crate) stats: Arc<TlsStats>,
    /// Who this is, for log lines (`server`, `proxy pool alpha`).
    pub(crate) role: String,
}

impl<F: Files> Loaded<F> {
    /// Loads the files; an error says which file and why.
    pub(crate) fn new(files: F, role: String) -> Result<Loaded<F>, TlsError> {
        let fingerprint = Fingerprint::of(&files.paths());
        let config = files.build()?;
        let stats = Arc::new(TlsStats::default());
        stats.stamp();
        Ok(Loaded {
            files,
            config: ArcSwap::from_pointee(config),
            loaded: ArcSwap::from_pointee(fingerprint),
            failed: Mutex::new(None),
            stats,
            role,
        })
    }

    /// The configuration in use: what a new connection takes.
    pub(crate) fn current(&self) -> Arc<F::Config> {
        self.config.load_full()
    }

    /// Rebuilds the configuration from the files. On success new
    /// connections use it (established ones keep theirs); on failure the
    /// one in use stays and the error says why.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let fingerprint = Fingerprint::of(&self.files.paths());
        match self.files.build() {
            Ok(cfg) => {
                self.config.store(Arc::new(cfg));
                self.loaded.store(Arc::new(fingerprint));
                self.stats.stamp();
                TlsStats::bump(&self.stats.reloads);
                tracing::info!(role = %self.role, "TLS certificates reloaded ({})", self.files.describe());
                Ok(())
            }
            Err(e) => {
                TlsStats::bump(&self.stats.reload_errors);
                tracing::error!(role = %self.role, "TLS certificates not reloaded, the old ones stay in use: {e}");
                Err(e)
            }
        }
    }

    /// Whether the files' contents differ from what is in use.
    pub(crate) fn changed(&self) -> bool {
        Fingerprint::of(&self.files.paths()) != **self.loaded.load()
    }
}

impl<F: Files> Reload for Loaded<F> {
    fn paths(&self) -> Vec<PathBuf> {
        self.files.paths()
    }
    fn loaded(&self) -> Fingerprint {
        **self.loaded.load()
    }
    fn reload(&self) -> Result<(), TlsError> {
        Loaded::reload(self)
    }
    fn failed(&self) -> &Mutex<Option<Fingerprint>> {
        &self.failed
    }
}
