//! TLS listeners: the rustls server configuration built from mosquitto's
//! per-listener options, the handshake (bounded by the caller), and
//! [`TlsTransport`], TLS over any [`Transport`] with the same readiness-based I/O.
//!
//! rustls is driven directly (not through tokio-rustls) because the connection
//! code reads what is there without waiting and writes a whole batch at once; the
//! records rustls has not yet sent are reported by [`Transport::wants_write`].

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, SupportedCipherSuite};

use super::{NonBlocking, Transport, readable, writable};
use crate::broker::config::{ListenerProtocol, Located, TlsOptions, TlsVersion};

/// Builds a listener's rustls configuration. An error names the option's
/// `file:line`, as a config error does.
pub fn server_config(
    options: &TlsOptions,
    protocol: ListenerProtocol,
) -> Result<Arc<ServerConfig>, String> {
    let (Some(certfile), Some(keyfile)) = (&options.certfile, &options.keyfile) else {
        return Err("TLS needs certfile and keyfile".into());
    };
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = cipher_suites(options, &provider)?;
    let versions: &[&rustls::SupportedProtocolVersion] = match options.tls_version {
        Some(TlsVersion::V1_3) => &[&rustls::version::TLS13],
        Some(TlsVersion::V1_2) | None => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let provider = Arc::new(provider);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&certfile.value)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .ok()
        .filter(|certs: &Vec<_>| !certs.is_empty())
        .ok_or_else(|| {
            located(
                certfile,
                format!(
                    "Unable to load server certificate \"{}\". Check certfile.",
                    certfile.value.display()
                ),
            )
        })?;
    let unreadable_key = |reason: &str| {
        located(
            keyfile,
            format!(
                "Unable to load server key file \"{}\". Check keyfile. {reason}",
                keyfile.value.display()
            ),
        )
    };
    let key = PrivateKeyDer::from_pem_file(&keyfile.value)
        .map_err(|e| unreadable_key(&format!("({e})")))?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| unreadable_key(&format!("({e})")))?;
    let certified = rustls::sign::CertifiedKey::new(certs, signing_key);
    certified
        .keys_match()
        .map_err(|_| unreadable_key("(key values mismatch: the key is not the certificate's)"))?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| located(certfile, e.to_string()))?;
    let builder = if options.require_certificate {
        let roots = trusted_roots(options)?;
        let crls = revocation_lists(options)?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .with_crls(crls)
            // As mosquitto (X509_V_FLAG_CRL_CHECK): the client's own certificate.
            .only_check_end_entity_revocation()
            .build()
            .map_err(|e| located(certfile, format!("Client certificate checks: {e}")))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        // As mosquitto: without require_certificate no certificate is asked for,
        // but cafile, capath and crlfile must still be readable.
        trusted_roots(options)?;
        revocation_lists(options)?;
        builder.with_no_client_auth()
    };
    let mut config = builder.with_cert_resolver(Arc::new(SingleCert(Arc::new(certified))));
    // ALPN: `mqtt` for MQTT listeners; WebSocket clients (browsers) offer `http/1.1`.
    config.alpn_protocols = vec![match protocol {
        ListenerProtocol::Mqtt => b"mqtt".to_vec(),
        ListenerProtocol::WebSockets => b"http/1.1".to_vec(),
    }];
    Ok(Arc::new(config))
}

/// The server's one certificate, for every client.
#[derive(Debug)]
struct SingleCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for SingleCert {
    fn resolve(
        &self,
        _client_hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

fn located<T>(option: &Located<T>, reason: String) -> String {
    format!("{reason} ({})", option.at)
}

/// The certificates client certificates are checked against: `cafile`, and every
/// PEM file in `capath`.
fn trusted_roots(options: &TlsOptions) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    if let Some(cafile) = &options.cafile {
        let bad = || {
            located(
                cafile,
                format!(
                    "Unable to load CA certificates. Check cafile \"{}\".",
                    cafile.value.display()
                ),
            )
        };
        let certs = pem_certificates(&cafile.value).map_err(|_| bad())?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(bad());
        }
    }
    if let Some(capath) = &options.capath {
        let bad = |why: String| {
            located(
                capath,
                format!(
                    "Unable to load CA certificates. Check capath \"{}\": {why}.",
                    capath.value.display()
                ),
            )
        };
        let entries = std::fs::read_dir(&capath.value).map_err(|e| bad(e.to_string()))?;
        let mut added = 0;
        for entry in entries.flatten() {
            if let Ok(certs) = pem_certificates(&entry.path()) {
                added += roots.add_parsable_certificates(certs).0;
            }
        }
        if added == 0 {
            return Err(bad("no certificate in it".into()));
        }
    }
    Ok(roots)
}

fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ()> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|_| ())?
        .collect::<Result<_, _>>()
        .map_err(|_| ())?;
    if certs.is_empty() { Err(()) } else { Ok(certs) }
}

fn revocation_lists(
    options: &TlsOptions,
) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let Some(crlfile) = &options.crlfile else {
        return Ok(Vec::new());
    };
    CertificateRevocationListDer::pem_file_iter(&crlfile.value)
        .and_then(|crls| crls.collect::<Result<Vec<_>, _>>())
        .ok()
        .filter(|crls| !crls.is_empty())
        .ok_or_else(|| {
            located(
                crlfile,
                format!(
                    "Unable to load certificate revocation file \"{}\". Check crlfile.",
                    crlfile.value.display()
                ),
            )
        })
}

/// OpenSSL's names for the TLS 1.2 suites rustls implements.
const TLS12_NAMES: &[(&str, &str)] = &[
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
];

/// The suites `ciphers` and `ciphers_tls1.3` allow, in the order given; each
/// version keeps rustls's defaults when its option is unset. A name rustls does
/// not implement, or an OpenSSL keyword, stops startup: never a silent change.
fn cipher_suites(
    options: &TlsOptions,
    provider: &CryptoProvider,
) -> Result<Vec<SupportedCipherSuite>, String> {
    let suite_named = |iana: &str| {
        provider
            .cipher_suites
            .iter()
            .find(|suite| suite.suite().as_str() == Some(iana))
            .copied()
    };
    let pick = |list: &Located<String>, tls13: bool| -> Result<Vec<SupportedCipherSuite>, String> {
        let mut chosen = Vec::new();
        for name in list.value.split([':', ',', ' ']).filter(|n| !n.is_empty()) {
            let iana = if tls13 {
                Some(name)
            } else {
                TLS12_NAMES
                    .iter()
                    .find(|(openssl, _)| *openssl == name)
                    .map(|(_, iana)| *iana)
            };
            let suite = iana
                .and_then(suite_named)
                .filter(|s| s.tls13().is_some() == tls13);
            match suite {
                Some(suite) => chosen.push(suite),
                None => {
                    let known: Vec<&str> = if tls13 {
                        provider
                            .cipher_suites
                            .iter()
                            .filter(|s| s.tls13().is_some())
                            .filter_map(|s| s.suite().as_str())
                            .collect()
                    } else {
                        TLS12_NAMES.iter().map(|(openssl, _)| *openssl).collect()
                    };
                    return Err(located(
                        list,
                        format!(
                            "Unsupported cipher \"{name}\": rustls takes a list of these names: {}.",
                            known.join(":")
                        ),
                    ));
                }
            }
        }
        Ok(chosen)
    };
    let defaults = |tls13: bool| {
        provider
            .cipher_suites
            .iter()
            .filter(move |s| s.tls13().is_some() == tls13)
            .copied()
            .collect::<Vec<_>>()
    };
    let mut suites = match &options.ciphers_tls13 {
        Some(list) => pick(list, true)?,
        None => defaults(true),
    };
    suites.extend(match &options.ciphers {
        Some(list) => pick(list, false)?,
        None => defaults(false),
    });
    Ok(suites)
}

/// Who the client certificate names, for `use_identity_as_username` and
/// `use_subject_as_username`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateIdentity {
    /// The subject's Common Name, when it has one.
    pub common_name: Option<String>,
    /// The subject in RFC 2253 form, most specific first, as OpenSSL prints it.
    pub subject: String,
}

impl CertificateIdentity {
    /// Reads the subject of a DER certificate.
    pub fn from_der(der: &[u8]) -> Option<CertificateIdentity> {
        let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = certificate.subject();
        let common_name = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string);
        let mut rdns: Vec<String> = subject
            .iter_rdn()
            .map(|rdn| {
                rdn.iter()
                    .map(|attribute| {
                        let oid = attribute.attr_type().to_id_string();
                        let value = match attribute.as_str() {
                            Ok(text) if short_name(&oid).is_some() => rfc2253_escape(text),
                            _ => format!("#{}", hex(attribute.attr_value().data)),
                        };
                        format!("{}={value}", short_name(&oid).unwrap_or(&oid))
                    })
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect();
        rdns.reverse();
        Some(CertificateIdentity {
            common_name,
            subject: rdns.join(","),
        })
    }
}

/// OpenSSL's short names for the usual subject attributes.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.42" => "GN",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        _ => return None,
    })
}

/// RFC 2253 §2.4: `,+"\<>;` escaped, and `#` or a space at the start and a space
/// at the end.
fn rfc2253_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let last = text.chars().count().saturating_sub(1);
    for (i, c) in text.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// TLS over `inner`: records are read and written with the inner transport's
/// non-blocking calls; rustls's state sits behind a mutex that only this
/// connection's task takes.
pub struct TlsTransport<T> {
    inner: T,
    session: Mutex<ServerConnection>,
}

impl<T: Transport> TlsTransport<T> {
    /// Runs the server handshake over `inner`; the caller bounds how long it may take.
    pub async fn accept(inner: T, config: Arc<ServerConfig>) -> io::Result<TlsTransport<T>> {
        let session = ServerConnection::new(config).map_err(io::Error::other)?;
        let tls = TlsTransport {
            inner,
            session: Mutex::new(session),
        };
        loop {
            tls.flush_buffered()?;
            let (handshaking, sending) = {
                let session = tls.lock();
                (session.is_handshaking(), session.wants_write())
            };
            if !handshaking && !sending {
                return Ok(tls);
            }
            if sending {
                writable(&tls.inner).await?;
                continue;
            }
            readable(&tls.inner).await?;
            let mut session = tls.lock();
            match session.read_tls(&mut NonBlocking(&tls.inner)) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {
                    if let Err(error) = session.process_new_packets() {
                        // Send the alert saying why, if the socket takes it.
                        let _ = session.write_tls(&mut NonBlocking(&tls.inner));
                        return Err(io::Error::new(io::ErrorKind::InvalidData, error));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The client certificate's subject, when the client sent one.
    pub fn peer_identity(&self) -> Option<CertificateIdentity> {
        let session = self.lock();
        let first = session.peer_certificates()?.first()?;
        CertificateIdentity::from_der(first)
    }

    fn lock(&self) -> MutexGuard<'_, ServerConnection> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Transport> Transport for TlsTransport<T> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Decrypted bytes not yet taken are ready whatever the socket says.
        let buffered = self
            .lock()
            .process_new_packets()
            .map(|state| state.plaintext_bytes_to_read() > 0 || state.peer_has_closed());
        match buffered {
            Ok(true) => Poll::Ready(Ok(())),
            Ok(false) => self.inner.poll_read_ready(cx),
            Err(error) => Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, error))),
        }
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_write_ready(cx)
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut session = self.lock();
        loop {
            match session.reader().read(buf) {
                Ok(read) => return Ok(read),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed without close_notify: the end of the stream.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            // Nothing decrypted: read records until some bytes are, or the socket
            // has nothing more (which clears its readiness).
            match session.read_tls(&mut NonBlocking(&self.inner))? {
                0 => return Ok(0),
                _ => {
                    if let Err(error) = session.process_new_packets() {
                        let _ = session.write_tls(&mut NonBlocking(&self.inner));
                        return Err(io::Error::new(io::ErrorKind::InvalidData, error));
                    }
                }
            }
        }
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut session = self.lock();
        // Records from earlier writes go first; while they wait, take no more.
        while session.wants_write() {
            session.write_tls(&mut NonBlocking(&self.inner))?;
        }
        let taken = session.writer().write(buf)?;
        // Taken; what the socket does not take now goes when it is writable.
        send_records(&mut session, &self.inner)?;
        if taken == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(taken)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        let mut session = self.lock();
        session.send_close_notify();
        send_records(&mut session, &self.inner)?;
        self.inner.shutdown_write()
    }

    fn wants_write(&self) -> bool {
        self.lock().wants_write()
    }

    fn closes_in_band(&self) -> bool {
        true
    }

    fn flush_buffered(&self) -> io::Result<()> {
        send_records(&mut self.lock(), &self.inner)
    }
}

/// Writes the records rustls holds until none is left or the socket is full.
fn send_records<T: Transport>(session: &mut ServerConnection, inner: &T) -> io::Result<()> {
    while session.wants_write() {
        match session.write_tls(&mut NonBlocking(inner)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
