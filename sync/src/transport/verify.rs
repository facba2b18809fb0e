//! Certificate verifiers that pin device keys: a peer is accepted if the key
//! its certificate carries is the key of a paired device, and its handshake
//! signature verifies with that key. No CA, names, dates or extensions are
//! looked at: the key is the identity.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme};

use crate::identity::DeviceId;

/// The devices a transport accepts as peers: a shared, updatable set of device
/// ids (a clone shares the set, so a listener sees pairings made after it started).
#[derive(Clone, Default)]
pub struct TrustedPeers(Arc<RwLock<HashSet<DeviceId>>>);

impl TrustedPeers {
    /// A set holding `ids`.
    pub fn new(ids: impl IntoIterator<Item = DeviceId>) -> TrustedPeers {
        TrustedPeers(Arc::new(RwLock::new(ids.into_iter().collect())))
    }
    /// Trusts `id` from the next handshake on.
    pub fn insert(&self, id: DeviceId) {
        self.0.write().insert(id);
    }
    /// Stops trusting `id` from the next handshake on.
    pub fn remove(&self, id: &DeviceId) {
        self.0.write().remove(id);
    }
    /// Whether `id` is trusted.
    pub fn contains(&self, id: &DeviceId) -> bool {
        self.0.read().contains(id)
    }
}

impl fmt::Debug for TrustedPeers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.read().iter()).finish()
    }
}

/// A peer whose certificate carries the key of no paired device.
#[derive(Debug)]
pub(crate) struct UnknownDevice(pub(crate) String);

impl fmt::Display for UnknownDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown device {}: not paired with this store", self.0)
    }
}

impl std::error::Error for UnknownDevice {}

/// Checks one end-entity certificate against the pinned set: no chain, a
/// parseable certificate, the key of a trusted device.
fn check_pinned(trusted: &TrustedPeers, end_entity: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) -> Result<DeviceId, rustls::Error> {
    if !intermediates.is_empty() {
        return Err(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(UnknownDevice(
            "presenting a certificate chain".into(),
        ))))));
    }
    let id = DeviceId::of_certificate(end_entity).map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    if !trusted.contains(&id) {
        return Err(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(UnknownDevice(id.to_string()))))));
    }
    Ok(id)
}

/// The connecting side's check of the accepting device.
#[derive(Debug)]
pub(crate) struct PinnedServerVerifier {
    pub(crate) trusted: TrustedPeers,
    pub(crate) algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        check_pinned(&self.trusted, end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is never used between devices".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The accepting side's check of the connecting device (client certificates
/// are mandatory).
#[derive(Debug)]
pub(crate) struct PinnedClientVerifier {
    pub(crate) trusted: TrustedPeers,
    pub(crate) algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PinnedClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        check_pinned(&self.trusted, end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is never used between devices".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
