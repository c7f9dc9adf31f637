//! A throw-away certificate authority: `memshard up --tls` makes one for its
//! local tier, and the tests make theirs. Keys are ECDSA P-256; nothing
//! here is meant for production certificates (use your own CA or
//! cert-manager there).

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

pub use rcgen::Error;

/// A CA: its certificate and key.
pub struct Pki {
    cert: Certificate,
    key: KeyPair,
}

/// A certificate the CA issued, with its key, as PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

/// Where [`Issued::write`] put the files.
#[derive(Debug, Clone)]
pub struct Written {
    /// The certificate file.
    pub cert: PathBuf,
    /// The key file (mode 0600).
    pub key: PathBuf,
}

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// A server's (also usable as a client's: the proxy is both).
    Server,
    /// A client's only.
    Client,
}

impl Pki {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Result<Pki, Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = dn(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let cert = params.self_signed(&key)?;
        Ok(Pki { cert, key })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.cert.pem()
    }

    /// Writes the CA certificate to `path`.
    pub fn write_ca(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.ca_pem())
    }

    /// A certificate for `names` (DNS names or IP addresses), valid from
    /// 1975 to 4096 (rcgen's defaults: a throw-away tier never expires).
    pub fn issue(&self, names: &[&str], usage: Usage) -> Result<Issued, Error> {
        self.issue_with(names, usage, |_| {})
    }

    /// A certificate that expired in 2000, for testing refusals.
    pub fn issue_expired(&self, names: &[&str], usage: Usage) -> Result<Issued, Error> {
        self.issue_with(names, usage, |p| {
            p.not_before = rcgen::date_time_ymd(1999, 1, 1);
            p.not_after = rcgen::date_time_ymd(2000, 1, 1);
        })
    }

    fn issue_with(
        &self,
        names: &[&str],
        usage: Usage,
        edit: impl FnOnce(&mut CertificateParams),
    ) -> Result<Issued, Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name = dn(names.first().copied().unwrap_or("memshard"));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = match usage {
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
        // A fresh serial per certificate, so a rotated one is told apart.
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial()));
        edit(&mut params);
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}

impl Issued {
    /// Writes `DIR/STEM.crt` and `DIR/STEM.key` (the key readable by its
    /// owner only), each by a rename so a watcher never reads half a file.
    pub fn write(&self, dir: &Path, stem: &str) -> std::io::Result<Written> {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        replace(&key, self.key_pem.as_bytes(), 0o600)?;
        replace(&cert, self.cert_pem.as_bytes(), 0o644)?;
        Ok(Written { cert, key })
    }
}

/// Writes `path` whole by a rename.
fn replace(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&tmp, path)
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "memshard");
    dn
}

/// 16 bytes unlikely to repeat: the clock and a counter, positive (the top bit clear).
fn serial() -> [u8; 16] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mut s = [0u8; 16];
    s[..8].copy_from_slice(&nanos.to_be_bytes());
    s[8..].copy_from_slice(&(COUNTER.fetch_add(1, Ordering::Relaxed) ^ u64::from(std::process::id())).to_be_bytes());
    s[0] &= 0x7f;
    s[0] |= 0x01;
    s
}
