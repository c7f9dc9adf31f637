//! `memshard up --tls`: a CA made for the run and the certificates of every
//! hop — the shards' (server), the proxy's (server towards the app, client
//! towards the shards) and the app's (client) — written to a folder, and
//! loaded as the roles use them.

use anyhow::Context;
use memshard_tls::pki::{Pki, Usage};
use memshard_tls::{ClientAuth, ClientTls, ClientTlsFiles, MinVersion, ServerTls, ServerTlsFiles};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The run's certificates, loaded.
pub(crate) struct LocalPki {
    dir: PathBuf,
    /// Removes a temporary folder when `up` ends.
    _temp: Option<tempfile::TempDir>,
    /// What every shard serves (it requires the proxy's certificate).
    pub(crate) shard: Arc<ServerTls>,
    /// What the app connects to the proxy with.
    pub(crate) app: Arc<ClientTls>,
    /// The name the app checks the proxy's certificate against.
    pub(crate) name: String,
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

impl LocalPki {
    /// Makes the CA and certificates in `dir` (a temporary folder if
    /// `None`), naming every host a client may dial: `localhost`,
    /// 127.0.0.1, the `listen` interface, and each shard's Kubernetes name.
    pub(crate) fn make(dir: Option<&Path>, listen: &str, shards: u16) -> anyhow::Result<LocalPki> {
        let (dir, temp) = match dir {
            Some(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("cannot create --tls-dir {}", d.display()))?;
                (d.to_path_buf(), None)
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("memshard-up-tls-")
                    .tempdir()
                    .context("cannot make a TLS folder")?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let unspecified = listen.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_unspecified());
        let name = if unspecified { "127.0.0.1".to_string() } else { listen.to_string() };
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
        if !names.contains(&name) {
            names.push(name.clone());
        }
        let ca = Pki::new("memshard up CA").context("cannot make the CA")?;
        ca.write_ca(&dir.join("ca.crt")).context("cannot write ca.crt")?;
        let mut shard_names = names.clone();
        shard_names.extend((0..shards).map(|i| format!("sharded-memcache-{i}.memcache")));
        let write = |names: &[&str], usage, stem: &str| -> anyhow::Result<()> {
            ca.issue(names, usage)
                .context("cannot make a certificate")?
                .write(&dir, stem)
                .with_context(|| format!("cannot write {stem}.crt"))?;
            Ok(())
        };
        write(&refs(&shard_names), Usage::Server, "shard")?;
        write(&refs(&names), Usage::Server, "proxy")?;
        write(&["memshard-app"], Usage::Client, "app")?;
        let shard = ServerTls::new(
            ServerTlsFiles {
                cert: dir.join("shard.crt"),
                key: Some(dir.join("shard.key")),
                client_ca: Some(dir.join("ca.crt")),
                client_auth: ClientAuth::Required,
                min_version: MinVersion::Tls12,
            },
            "server",
        )?;
        let app = ClientTls::new(
            ClientTlsFiles {
                ca: dir.join("ca.crt"),
                cert: Some(dir.join("app.crt")),
                key: Some(dir.join("app.key")),
                min_version: MinVersion::Tls12,
            },
            "app",
        )?;
        Ok(LocalPki { dir, _temp: temp, shard: Arc::new(shard), app: Arc::new(app), name })
    }

    /// The folder holding the files.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}
