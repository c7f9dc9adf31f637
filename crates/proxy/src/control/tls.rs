//! A pool's TLS, towards its clients (`tls_cert_file`, `tls_key_file`,
//! `tls_client_ca_file`) and towards its servers (`server_tls: true` and
//! the `server_tls_*` keys).
//!
//! It is part of the pool's server set, so a reload that changes a key
//! takes effect like any other: the files are loaded while the new set is
//! prepared (a file that does not load refuses the reload, and the set in
//! force stays), and new connections use the set in force. A set whose
//! TLS keys did not change keeps the loaded configurations of the one
//! before, with their counters. The files themselves are read again when
//! their contents change and on SIGHUP (`tls_watch`): established
//! connections go on with what they negotiated, new ones get the new
//! certificates.

use crate::control::publish::PoolError;
use memshard_config::{PoolConfig, TlsListen, TlsToServers};
use memshard_tls::watch::Reload;
use memshard_tls::{ClientAuth, ClientTls, ClientTlsFiles, MinVersion, ServerTls, ServerTlsFiles};
use std::sync::Arc;

/// A pool's TLS, both ways.
#[derive(Default)]
pub(crate) struct PoolTls {
    /// Towards clients: `None` is plaintext.
    pub(crate) listen: Option<Arc<ServerTls>>,
    /// Towards servers: `None` is plaintext.
    pub(crate) servers: Option<Arc<ClientTls>>,
    /// `server_tls_name`, if set.
    name: Option<String>,
}

impl PoolTls {
    /// Loads what `cfg` asks for, keeping what `previous` already loaded
    /// from the same files.
    pub(crate) fn build(pool: &str, cfg: &PoolConfig, previous: Option<&PoolTls>) -> Result<PoolTls, PoolError> {
        let err = |e: memshard_tls::TlsError| PoolError::Tls { pool: pool.to_string(), reason: e.to_string() };
        let listen = match &cfg.extensions.tls {
            None => None,
            Some(t) => {
                let files = listen_files(t);
                match previous.and_then(|p| p.listen.as_ref()).filter(|old| *old.files() == files) {
                    Some(old) => Some(old.clone()),
                    None => Some(Arc::new(ServerTls::new(files, format!("proxy pool {pool}")).map_err(err)?)),
                }
            }
        };
        let servers = match &cfg.extensions.server_tls {
            None => None,
            Some(t) => {
                let files = server_files(t);
                match previous.and_then(|p| p.servers.as_ref()).filter(|old| *old.files() == files) {
                    Some(old) => Some(old.clone()),
                    None => {
                        Some(Arc::new(ClientTls::new(files, format!("proxy pool {pool} to servers")).map_err(err)?))
                    }
                }
            }
        };
        let name = cfg.extensions.server_tls.as_ref().and_then(|t| t.name.clone());
        Ok(PoolTls { listen, servers, name })
    }

    /// The name a server's certificate is checked against: `server_tls_name`,
    /// or its `host` as written in `servers:` (never the address it resolved
    /// to). Servers on unix sockets are local and spoken to in plaintext.
    pub(crate) fn name_for(&self, host: &str) -> String {
        self.name.clone().unwrap_or_else(|| host.to_string())
    }

    /// What a file watch or a SIGHUP reloads.
    pub(crate) fn items(&self) -> Vec<Arc<dyn Reload>> {
        let mut items: Vec<Arc<dyn Reload>> = Vec::new();
        if let Some(l) = &self.listen {
            items.push(l.clone());
        }
        if let Some(s) = &self.servers {
            items.push(s.clone());
        }
        items
    }
}

fn listen_files(t: &TlsListen) -> ServerTlsFiles {
    ServerTlsFiles {
        cert: t.cert_file.clone(),
        key: t.key_file.clone(),
        client_ca: t.client_ca_file.clone(),
        client_auth: if t.client_ca_file.is_some() { ClientAuth::Required } else { ClientAuth::None },
        min_version: MinVersion::Tls12,
    }
}

fn server_files(t: &TlsToServers) -> ClientTlsFiles {
    ClientTlsFiles {
        ca: t.ca_file.clone(),
        cert: t.cert_file.clone(),
        key: t.key_file.clone(),
        min_version: MinVersion::Tls12,
    }
}
