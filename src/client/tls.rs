//! TLS for clients: a rustls configuration built from mosquitto's options
//! (`--cafile`, `--capath`, `--cert`/`--key`, `--insecure`, `--tls-use-os-certs`).
//!
//! `--insecure` keeps mosquitto's meaning: the certificate chain is still verified,
//! only the host name check is skipped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// What the user asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    pub cafile: Option<PathBuf>,
    pub capath: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub insecure: bool,
    pub use_os_certs: bool,
    pub alpn: Option<String>,
    /// `--tls-version`: `tlsv1.3` allows only TLS 1.3, `tlsv1.2` TLS 1.2 and up.
    pub version: Option<String>,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} holds no certificate")]
    NoCertificate { path: String },
    #[error("--cert and --key go together")]
    CertWithoutKey,
    #[error("no trusted certificates: give --cafile, --capath or --tls-use-os-certs")]
    NoRoots,
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("unsupported TLS version {0}: rustls speaks tlsv1.2 and tlsv1.3")]
    Version(String),
}

impl TlsOptions {
    /// Whether any option turns TLS on.
    pub fn enabled(&self) -> bool {
        self.cafile.is_some() || self.capath.is_some() || self.use_os_certs
    }

    /// The rustls configuration, or `None` when TLS is off.
    pub fn client_config(&self) -> Result<Option<Arc<ClientConfig>>, TlsError> {
        if !self.enabled() {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        if let Some(file) = &self.cafile {
            for cert in read_certs(file)? {
                roots.add(cert)?;
            }
        }
        if let Some(dir) = &self.capath {
            let entries = std::fs::read_dir(dir).map_err(|e| read_error(dir, &e))?;
            for entry in entries.flatten() {
                // Directories of CA files hold other things too (hash links, CRLs).
                for cert in read_certs(&entry.path()).unwrap_or_default() {
                    let _ = roots.add(cert);
                }
            }
        }
        if self.use_os_certs {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
        if roots.is_empty() {
            return Err(TlsError::NoRoots);
        }
        let roots = Arc::new(roots);
        let versions: &[&rustls::SupportedProtocolVersion] = match self.version.as_deref() {
            None | Some("tlsv1.2") => rustls::DEFAULT_VERSIONS,
            Some("tlsv1.3") => &[&rustls::version::TLS13],
            Some(other) => return Err(TlsError::Version(other.to_string())),
        };
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)?;
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
                .build()
                .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))?;
        let builder = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyName(verifier)))
        } else {
            builder.with_webpki_verifier(verifier)
        };
        let mut config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert)?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Read {
                    path: key.display().to_string(),
                    reason: e.to_string(),
                })?;
                builder.with_client_auth_cert(chain, key)?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(TlsError::CertWithoutKey),
        };
        if let Some(alpn) = &self.alpn {
            config.alpn_protocols = vec![alpn.as_bytes().to_vec()];
        }
        Ok(Some(Arc::new(config)))
    }
}

fn read_error(path: &Path, error: &dyn std::fmt::Display) -> TlsError {
    TlsError::Read {
        path: path.display().to_string(),
        reason: error.to_string(),
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| read_error(path, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| read_error(path, &e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

/// Verifies the chain as usual but accepts any host name (`--insecure`).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
