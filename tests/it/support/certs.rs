//! A throwaway CA, a server certificate for `localhost` and a client certificate
//! with a full subject, written as PEM files, for TLS tests.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SerialNumber, date_time_ymd,
};

/// The client certificate's subject as OpenSSL prints it (RFC 2253, most
/// specific first): what `use_subject_as_username` makes the username.
pub const CLIENT_SUBJECT: &str =
    "CN=test client,OU=Production,O=Server,L=Nottingham,ST=Nottinghamshire,C=GB";

pub struct Certs {
    /// Keeps the files until the certificates are dropped.
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A directory holding the CA certificate, for `capath`.
    pub capath: PathBuf,
    /// A CRL from the CA that revokes the client certificate.
    pub crl_revoking_client: PathBuf,
}

impl Certs {
    pub fn generate() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // OpenSSL (mosquitto's clients) wants a CA that names itself and may sign.
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mqttkit test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let server_key = KeyPair::generate().expect("server key");
        let server = CertificateParams::new(vec!["localhost".to_string()])
            .expect("server params")
            .signed_by(&server_key, &issuer)
            .expect("server certificate");
        let client_key = KeyPair::generate().expect("client key");
        let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        // In this order, without rcgen's default common name in front.
        client_params.distinguished_name = DistinguishedName::new();
        for (kind, value) in [
            (DnType::CountryName, "GB"),
            (DnType::StateOrProvinceName, "Nottinghamshire"),
            (DnType::LocalityName, "Nottingham"),
            (DnType::OrganizationName, "Server"),
            (DnType::OrganizationalUnitName, "Production"),
            (DnType::CommonName, "test client"),
        ] {
            client_params.distinguished_name.push(kind, value);
        }
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_serial = SerialNumber::from(vec![0x10, 0x01]);
        client_params.serial_number = Some(client_serial.clone());
        let client = client_params
            .signed_by(&client_key, &issuer)
            .expect("client certificate");
        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write PEM");
            // mosquitto may read them after dropping root to its own user.
            let _ = std::fs::set_permissions(
                &path,
                std::os::unix::fs::PermissionsExt::from_mode(0o644),
            );
            path
        };
        let _ = std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        );
        let crl = CertificateRevocationListParams {
            this_update: date_time_ymd(2026, 1, 1),
            next_update: date_time_ymd(2099, 1, 1),
            crl_number: SerialNumber::from(vec![1]),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: client_serial,
                revocation_time: date_time_ymd(2026, 1, 1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)
        .expect("CRL");
        let capath = dir.path().join("capath");
        std::fs::create_dir(&capath).expect("capath");
        let _ =
            std::fs::set_permissions(&capath, std::os::unix::fs::PermissionsExt::from_mode(0o755));
        Certs {
            ca: write("ca.pem", ca.pem()),
            server_cert: write("server.pem", server.pem()),
            server_key: write("server.key", server_key.serialize_pem()),
            client_cert: write("client.pem", client.pem()),
            client_key: write("client.key", client_key.serialize_pem()),
            crl_revoking_client: write("crl.pem", crl.pem().expect("CRL PEM")),
            capath: {
                write("capath/ca.pem", ca.pem());
                capath
            },
            _dir: dir,
        }
    }
}

impl Certs {
    /// mosquitto.conf lines for a TLS listener with this server certificate.
    pub fn mosquitto_listener_config(&self) -> String {
        format!(
            "cafile {}\ncertfile {}\nkeyfile {}",
            self.ca.display(),
            self.server_cert.display(),
            self.server_key.display()
        )
    }
}
