//! `memshard server -Z -o ssl_chain_cert=…,ssl_key=…,…`: memcached's TLS
//! flags and their meanings, turned into a [`ServerTls`].

use anyhow::{Context, anyhow, bail};
use memshard_tls::{ClientAuth, MinVersion, ServerTls, ServerTlsFiles};
use std::path::PathBuf;
use std::sync::Arc;

/// The `-o` options memcached takes for TLS, as given.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SslOptions {
    chain_cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca_cert: Option<PathBuf>,
    verify_mode: u8,
    min_version: MinVersion,
}

impl SslOptions {
    /// Reads every `-o` value (each a comma-separated list of `name=value`).
    /// Only the `ssl_*` options are known; any other is refused by name, as
    /// memcached refuses an option it does not know.
    pub(crate) fn parse(values: &[String]) -> anyhow::Result<SslOptions> {
        let mut o = SslOptions::default();
        for item in values.iter().flat_map(|v| v.split(',')).filter(|i| !i.is_empty()) {
            let (name, value) = item.split_once('=').unwrap_or((item, ""));
            let need = |what: &str| -> anyhow::Result<PathBuf> {
                if value.is_empty() {
                    bail!("-o {name} needs {what}");
                }
                Ok(PathBuf::from(value))
            };
            match name {
                "ssl_chain_cert" => o.chain_cert = Some(need("a file")?),
                "ssl_key" => o.key = Some(need("a file")?),
                "ssl_ca_cert" => o.ca_cert = Some(need("a file")?),
                "ssl_verify_mode" => {
                    o.verify_mode = match value {
                        "0" | "1" | "2" | "3" => value.parse().unwrap_or(0),
                        _ => bail!(
                            "-o ssl_verify_mode={value}: valid values are 0(None), 1(Request), 2(Require) or 3(Once)"
                        ),
                    }
                }
                // rustls has no TLS 1.0 or 1.1: 0 and 1 start at 1.2, which
                // is memcached's default anyway.
                "ssl_min_version" => {
                    o.min_version = match value {
                        "0" | "1" | "2" => MinVersion::Tls12,
                        "3" => MinVersion::Tls13,
                        _ => bail!(
                            "-o ssl_min_version={value}: valid values are 0(tlsv1.0), 1(tlsv1.1), 2(tlsv1.2), or 3(tlsv1.3)"
                        ),
                    };
                    if value == "0" || value == "1" {
                        tracing::warn!(
                            "-o ssl_min_version={value}: TLS 1.0 and 1.1 are not offered; the minimum is TLS 1.2"
                        );
                    }
                }
                "ssl_keyformat" if value == "PEM" || value == "0" || value == "1" => {}
                "ssl_keyformat" => bail!("-o ssl_keyformat={value}: only PEM keys are read"),
                // OpenSSL cipher strings do not apply to rustls, whose
                // suites are all AEAD with forward secrecy.
                "ssl_ciphers" => tracing::warn!("-o ssl_ciphers is ignored: rustls offers only its modern suites"),
                "ssl_session_cache" | "ssl_kernel_tls" => tracing::warn!("-o {name} is ignored"),
                "ssl_wbuf_size" => tracing::debug!("-o ssl_wbuf_size is ignored: rustls sizes its own buffers"),
                _ => bail!("-o {name}: not an option memshard server knows (it takes memcached's ssl_* options)"),
            }
        }
        Ok(o)
    }

    /// The verify mode as given (for `stats settings`).
    pub(crate) fn verify_mode(&self) -> u8 {
        self.verify_mode
    }

    /// With `-Z`: the listening TLS, loaded. Without: `None`, and any ssl
    /// option is an error (it would silently serve plaintext).
    pub(crate) fn load(&self, enabled: bool) -> anyhow::Result<Option<Arc<ServerTls>>> {
        if !enabled {
            if *self != SslOptions::default() {
                bail!("-o ssl_* options need -Z (--enable-ssl)");
            }
            return Ok(None);
        }
        let cert = self.chain_cert.clone().ok_or_else(|| anyhow!("-Z needs -o ssl_chain_cert=FILE"))?;
        let client_auth = match self.verify_mode {
            0 => ClientAuth::None,
            1 => ClientAuth::Optional,
            // 3 (Once) differs from 2 only in renegotiation, which TLS 1.3
            // and rustls do not do.
            _ => ClientAuth::Required,
        };
        if client_auth != ClientAuth::None && self.ca_cert.is_none() {
            bail!("-o ssl_verify_mode={} needs -o ssl_ca_cert=FILE", self.verify_mode);
        }
        let files = ServerTlsFiles {
            cert,
            key: self.key.clone(),
            client_ca: self.ca_cert.clone(),
            client_auth,
            min_version: self.min_version,
        };
        let tls = ServerTls::new(files, "server").context("cannot load the TLS certificates")?;
        Ok(Some(Arc::new(tls)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &[&str]) -> anyhow::Result<SslOptions> {
        SslOptions::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn memcached_s_options_are_read_with_their_meanings() {
        let o =
            parse(&["ssl_chain_cert=/c.pem,ssl_key=/k.pem", "ssl_ca_cert=/ca.pem,ssl_verify_mode=2,ssl_min_version=3"])
                .expect("valid");
        assert_eq!(o.chain_cert, Some(PathBuf::from("/c.pem")));
        assert_eq!(o.key, Some(PathBuf::from("/k.pem")));
        assert_eq!(o.ca_cert, Some(PathBuf::from("/ca.pem")));
        assert_eq!(o.verify_mode, 2);
        assert_eq!(o.min_version, MinVersion::Tls13);
        assert_eq!(parse(&["ssl_min_version=0"]).expect("valid").min_version, MinVersion::Tls12);
    }

    #[test]
    fn bad_options_say_what_is_wrong() {
        for (bad, says) in [
            ("ssl_verify_mode=4", "valid values"),
            ("ssl_min_version=tls1.3", "valid values"),
            ("ssl_chain_cert=", "needs a file"),
            ("ssl_keyformat=DER", "only PEM"),
            ("modern", "not an option"),
        ] {
            let e = parse(&[bad]).expect_err(bad).to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let e = parse(&["ssl_chain_cert=/c.pem"]).expect("valid").load(false).expect_err("no -Z");
        assert!(e.to_string().contains("need -Z"), "{e}");
        let e = parse(&[]).expect("valid").load(true).expect_err("no chain");
        assert!(e.to_string().contains("ssl_chain_cert"), "{e}");
        let e = parse(&["ssl_chain_cert=/c.pem,ssl_verify_mode=2"]).expect("valid").load(true).expect_err("no CA");
        assert!(e.to_string().contains("ssl_ca_cert"), "{e}");
        let e = parse(&["ssl_chain_cert=/nonexistent/c.pem"]).expect("valid").load(true).expect_err("no file");
        assert!(format!("{e:#}").contains("/nonexistent/c.pem"), "{e:#}");
    }
}
