//! TLS for the API (`serve --tls-cert FILE --tls-key FILE [--tls-client-ca FILE]`): a rustls
//! server configuration with the ring provider, TLS 1.2 and 1.3, ALPN `http/1.1`. PEM files
//! as a Kubernetes TLS Secret mounts them (`tls.crt`, `tls.key`). With a client CA, clients
//! may present a certificate, which must then verify against it; the server refuses every
//! route but `/healthz` to a client without one (a kubelet's readiness probe has none).
//!
//! Invariant: a misconfiguration is an error at start, never a server that silently falls
//! back to plain HTTP.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use super::http::Tls;

/// Builds the TLS settings from the flags; `None` when neither certificate nor key is given.
///
/// # Errors
/// A message naming the flag and file: a missing half of the pair, an unreadable or empty
/// PEM file, a key that does not match the certificate, a CA file without certificates.
pub fn config(
    cert: Option<&str>,
    key: Option<&str>,
    client_ca: Option<&str>,
) -> Result<Option<Tls>, String> {
    let (cert, key) = match (cert, key, client_ca) {
        (None, None, None) => return Ok(None),
        (Some(c), Some(k), _) => (c, k),
        (_, _, Some(_)) if cert.is_none() || key.is_none() => {
            return Err("--tls-client-ca needs --tls-cert and --tls-key".into())
        }
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--tls-cert {cert}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("--tls-cert {cert}: no certificate in the file"));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("--tls-key {key}: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .map_err(|e| format!("--tls-client-ca {ca}: {e}"))?
            {
                let c = c.map_err(|e| format!("--tls-client-ca {ca}: {e}"))?;
                roots
                    .add(c)
                    .map_err(|e| format!("--tls-client-ca {ca}: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("--tls-client-ca {ca}: no certificate in the file"));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("--tls-client-ca {ca}: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, private)
        .map_err(|e| format!("--tls-cert {cert} / --tls-key {key}: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Tls {
        config: Arc::new(config),
        require_client_cert: client_ca.is_some(),
    }))
}
