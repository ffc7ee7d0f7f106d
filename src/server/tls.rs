//! `wss://`: a TLS acceptor from PEM certificate and key files (rustls, ring provider).

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::CertificateDer, pki_types::PrivateKeyDer};

use super::ServerError;

/// Builds an acceptor from a PEM certificate chain and a PEM private key.
///
/// # Errors
///
/// [`ServerError::Tls`] naming the file that cannot be read or used.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, ServerError> {
    let fail = |what: String| ServerError::Tls(what);
    let cert_pem = std::fs::read(cert)
        .map_err(|e| fail(format!("cannot read certificate {}: {e}", cert.display())))?;
    let key_pem = std::fs::read(key)
        .map_err(|e| fail(format!("cannot read private key {}: {e}", key.display())))?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| fail(format!("{}: not a PEM certificate: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(fail(format!(
            "{}: no certificate in the file",
            cert.display()
        )));
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| fail(format!("{}: not a PEM private key: {e}", key.display())))?
        .ok_or_else(|| fail(format!("{}: no private key in the file", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| fail(format!("the certificate and key do not work together: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
