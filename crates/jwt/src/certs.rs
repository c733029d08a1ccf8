//! Generating the certs tokens are signed with.

use chrono::{DateTime, Datelike, Utc};
use iam_domain::Secret;
use iam_domain::model::Cert;
use iam_domain::values::{CryptoAlgorithm, DisplayName, ObjectName};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use thiserror::Error;

#[derive(Debug, Error)]
#[error("cannot generate cert: {0}")]
pub struct CertError(String);

/// A self-signed X.509 certificate valid for 20 years, with a fresh key: RSA-2048 for RS256,
/// P-256 for ES256. Both PEM.
pub fn generate_cert(
    name: &ObjectName,
    alg: CryptoAlgorithm,
    now: DateTime<Utc>,
) -> Result<Cert, CertError> {
    let err = |e: rcgen::Error| CertError(e.to_string());
    let (key, bits) = match alg {
        CryptoAlgorithm::Rs256 => (
            KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).map_err(err)?,
            2048,
        ),
        CryptoAlgorithm::Es256 => (
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?,
            256,
        ),
    };
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name.as_str());
    dn.push(DnType::OrganizationName, "Hanzo IAM");
    params.distinguished_name = dn;
    params.not_before = rcgen::date_time_ymd(now.year(), now.month() as u8, now.day() as u8);
    params.not_after =
        rcgen::date_time_ymd(now.year() + 20, now.month() as u8, now.day().min(28) as u8);
    let cert = params.self_signed(&key).map_err(err)?;
    Ok(Cert {
        name: name.clone(),
        display_name: DisplayName::of_name(name),
        cert_type: "x509".into(),
        crypto_algorithm: alg,
        bit_size: bits,
        certificate: cert.pem(),
        private_key: Secret::new(key.serialize_pem()),
        created_time: now,
        extra: Default::default(),
    })
}

/// The DER bytes inside the first PEM block of `pem`.
pub fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ObjectName {
        ObjectName::parse("name", s).unwrap()
    }

    #[test]
    fn rsa_and_ec_certs() {
        let c = generate_cert(&name("cert-built-in"), CryptoAlgorithm::Rs256, Utc::now()).unwrap();
        assert!(c.certificate.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(c.private_key.expose().contains("PRIVATE KEY"));
        assert_eq!(c.bit_size, 2048);
        assert!(pem_to_der(&c.certificate).unwrap().len() > 500);
        let e = generate_cert(&name("ec"), CryptoAlgorithm::Es256, Utc::now()).unwrap();
        assert_eq!(e.crypto_algorithm, CryptoAlgorithm::Es256);
    }
}
