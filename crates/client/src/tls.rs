//! `wss://`: the rustls client configuration a [`SyncConfig`] asks for —
//! the operating system's root certificates (unless turned off) plus any
//! root the app adds (a company CA, a test CA) — verified the usual way
//! (certificate chain, validity, host name). Built once per
//! [`Client::connect`](crate::Client::connect), so a root that does not
//! parse is an error there, not a failure per attempt.

use crate::{Error, Result, SyncConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::sync::Arc;

/// The rustls configuration for `config`'s `wss://` URL; `None` for
/// `ws://`.
pub(crate) fn client_config(config: &SyncConfig) -> Result<Option<Arc<ClientConfig>>> {
    if !config.urls().any(|u| u.starts_with("wss://")) {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    if config.system_roots {
        // Unreadable system certificates are skipped (and logged): the
        // ones that load still verify, and added roots may be enough.
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "a system root certificate could not be loaded");
        }
        let (_added, ignored) = roots.add_parsable_certificates(found.certs);
        if ignored > 0 {
            tracing::debug!(ignored, "system root certificates rustls cannot use");
        }
    }
    for pem in &config.root_certificates {
        let mut any = false;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| Error::Tls(format!("root certificate PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| Error::Tls(format!("root certificate: {e}")))?;
            any = true;
        }
        if !any {
            return Err(Error::Tls(
                "a root certificate PEM holds no CERTIFICATE block".into(),
            ));
        }
    }
    if roots.is_empty() {
        return Err(Error::Tls(
            "no root certificates: the system has none and none were added".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(Arc::new(tls)))
}
