//! Reading certificates, keys and CA bundles from PEM files, with errors
//! that name the file, and a fingerprint of the files' contents for
//! noticing that they changed.

use crate::TlsError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Reads a whole file.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source })
}

/// Every certificate in a PEM file (a chain: leaf first); at least one.
pub(crate) fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let pem_err = |reason: String| TlsError::Pem { path: path.to_path_buf(), reason };
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(pem_err("no CERTIFICATE in the file".into()));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub(crate) fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| TlsError::Pem { path: path.to_path_buf(), reason: format!("no usable private key: {e}") })
}

/// A store of the CA certificates in a PEM file; at least one must be usable.
pub(crate) fn roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut store = rustls::RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs(path)?);
    if added == 0 {
        return Err(TlsError::Pem { path: path.to_path_buf(), reason: "no usable CA certificate in the file".into() });
    }
    Ok(store)
}

/// A digest of some files' contents (a missing file counts as its own
/// value): equal digests mean nothing to reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The digest of `paths` as they are now.
    pub fn of(paths: &[PathBuf]) -> Fingerprint {
        let mut h = Sha256::new();
        for p in paths {
            h.update(p.as_os_str().as_encoded_bytes());
            match std::fs::read(p) {
                Ok(bytes) => {
                    h.update([1]);
                    h.update((bytes.len() as u64).to_le_bytes());
                    h.update(&bytes);
                }
                Err(_) => h.update([0]),
            }
        }
        Fingerprint(h.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_and_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        let e = certs(&missing).expect_err("missing file");
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, b"hello\n").expect("write");
        let e = certs(&garbage).expect_err("no certificate");
        assert!(e.to_string().contains("garbage.pem") && e.to_string().contains("no CERTIFICATE"), "{e}");
        let e = key(&garbage).expect_err("no key");
        assert!(e.to_string().contains("no usable private key"), "{e}");
    }

    #[test]
    fn the_fingerprint_follows_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("a.pem");
        let paths = [f.clone()];
        let none = Fingerprint::of(&paths);
        std::fs::write(&f, b"one").expect("write");
        let one = Fingerprint::of(&paths);
        assert_ne!(none, one);
        assert_eq!(one, Fingerprint::of(&paths));
        std::fs::write(&f, b"two").expect("write");
        assert_ne!(one, Fingerprint::of(&paths));
    }
}
