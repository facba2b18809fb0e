//! Device identity: the key pair a store signs its TLS handshakes with, and the
//! device id, the text form peers pin at pairing.
//!
//! A device's key pair is Ed25519. Its device id is SHA-256 of the public key's
//! DER `SubjectPublicKeyInfo`, written in RFC 4648 base32 (upper case, no
//! padding): 52 characters. Two certificates of the same key have the same id;
//! a certificate of any other key has another one, so a peer that pins the id
//! pins the key. The certificate itself is self-signed and made afresh for each
//! transport (rcgen); nothing about it but its key is checked.

use std::fmt;
use std::str::FromStr;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

/// Why an identity or a device id could not be made or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A device id that is not 52 base32 characters.
    #[error("not a device id: {0}")]
    BadDeviceId(String),
    /// A stored key that is not an Ed25519 PKCS#8 key.
    #[error("not a device key: {0}")]
    BadKey(String),
    /// The certificate could not be made.
    #[error("cannot make the device certificate: {0}")]
    Certificate(String),
}

/// Length of a device id in bytes (a SHA-256 digest).
pub const DEVICE_ID_BYTES: usize = 32;
/// Length of a device id's text form (base32 of 32 bytes, no padding).
pub const DEVICE_ID_CHARS: usize = 52;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A device's identity as peers see it: SHA-256 of its public key's DER
/// `SubjectPublicKeyInfo`. `Display` and `FromStr` give the 52-character base32
/// text form (`FromStr` accepts lower case too).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId([u8; DEVICE_ID_BYTES]);

impl DeviceId {
    /// The id of the key whose DER `SubjectPublicKeyInfo` is `spki_der`.
    pub fn of_public_key_info(spki_der: &[u8]) -> DeviceId {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki_der);
        let mut id = [0u8; DEVICE_ID_BYTES];
        id.copy_from_slice(digest.as_ref());
        DeviceId(id)
    }

    /// The id of the key a DER certificate carries (its certificate is not
    /// otherwise checked).
    pub fn of_certificate(cert: &CertificateDer<'_>) -> Result<DeviceId, IdentityError> {
        let parsed = rustls::server::ParsedCertificate::try_from(cert)
            .map_err(|e| IdentityError::Certificate(format!("unreadable certificate: {e}")))?;
        Ok(DeviceId::of_public_key_info(parsed.subject_public_key_info().as_ref()))
    }

    /// The id from its 32 raw bytes.
    pub fn from_bytes(bytes: [u8; DEVICE_ID_BYTES]) -> DeviceId {
        DeviceId(bytes)
    }

    /// The id's 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; DEVICE_ID_BYTES] {
        &self.0
    }

    /// The id from raw bytes of any length; `BadDeviceId` unless exactly 32.
    pub fn from_slice(bytes: &[u8]) -> Result<DeviceId, IdentityError> {
        let raw: [u8; DEVICE_ID_BYTES] = bytes
            .try_into()
            .map_err(|_| IdentityError::BadDeviceId(format!("{} bytes instead of {DEVICE_ID_BYTES}", bytes.len())))?;
        Ok(DeviceId(raw))
    }
}

/// The base32 character of the low 5 bits of `v`.
fn base32_char(v: u32) -> char {
    char::from(BASE32.get((v & 31) as usize).copied().unwrap_or(b'A'))
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(DEVICE_ID_CHARS);
        let mut acc: u32 = 0;
        let mut bits = 0u32;
        for &b in &self.0 {
            acc = (acc << 8) | u32::from(b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(base32_char(acc >> bits));
            }
        }
        if bits > 0 {
            out.push(base32_char(acc << (5 - bits)));
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({self})")
    }
}

impl FromStr for DeviceId {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<DeviceId, IdentityError> {
        let bad = |why: &str| IdentityError::BadDeviceId(format!("{s:?}: {why}"));
        if s.len() != DEVICE_ID_CHARS {
            return Err(bad(&format!("{} characters instead of {DEVICE_ID_CHARS}", s.chars().count())));
        }
        let mut out = [0u8; DEVICE_ID_BYTES];
        let mut acc: u32 = 0;
        let mut bits = 0u32;
        let mut n = 0usize;
        for c in s.bytes() {
            let v = match c.to_ascii_uppercase() {
                c @ b'A'..=b'Z' => c - b'A',
                c @ b'2'..=b'7' => c - b'2' + 26,
                _ => return Err(bad("only letters and digits 2-7 appear in a device id")),
            };
            acc = (acc << 5) | u32::from(v);
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                let byte = ((acc >> bits) & 0xff) as u8;
                match out.get_mut(n) {
                    Some(slot) => *slot = byte,
                    None => return Err(bad("too long")),
                }
                n += 1;
            }
        }
        // 52 characters carry 260 bits: the 4 left over must be zero, so that
        // each id has exactly one text form.
        if n != DEVICE_ID_BYTES || acc & ((1 << bits) - 1) != 0 {
            return Err(bad("not the text form of a device id (its last character is off)"));
        }
        Ok(DeviceId(out))
    }
}

/// A device's key pair (Ed25519), from which its certificate and id follow.
/// The private key is held in a buffer zeroed when dropped, and never printed.
pub struct DeviceIdentity {
    pkcs8: Zeroizing<Vec<u8>>,
    spki: Vec<u8>,
    id: DeviceId,
}

impl DeviceIdentity {
    /// A new random identity.
    pub fn generate() -> Result<DeviceIdentity, IdentityError> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .map_err(|e| IdentityError::BadKey(format!("cannot generate a key: {e}")))?;
        DeviceIdentity::from_pkcs8(&Zeroizing::new(pair.serialize_der()))
    }

    /// The identity of a PKCS#8 DER Ed25519 private key (as
    /// [`DeviceIdentity::pkcs8_der`] gives it); `BadKey` for anything else.
    pub fn from_pkcs8(der: &[u8]) -> Result<DeviceIdentity, IdentityError> {
        let pair = key_pair(der)?;
        let spki = pair.public_key_der();
        let id = DeviceId::of_public_key_info(&spki);
        Ok(DeviceIdentity { pkcs8: Zeroizing::new(der.to_vec()), spki, id })
    }

    /// The private key, PKCS#8 DER (secret: store it encrypted).
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key, DER `SubjectPublicKeyInfo`.
    pub fn public_key_info(&self) -> &[u8] {
        &self.spki
    }

    /// This device's id.
    pub fn device_id(&self) -> DeviceId {
        self.id
    }

    /// A fresh self-signed certificate of this key (subject: the device id).
    pub fn certificate(&self) -> Result<CertificateDer<'static>, IdentityError> {
        let pair = key_pair(&self.pkcs8)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, self.id.to_string());
        let cert = params.self_signed(&pair).map_err(|e| IdentityError::Certificate(e.to_string()))?;
        Ok(cert.der().clone())
    }

    /// The private key in the form rustls takes it (secret).
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8.to_vec()))
    }
}

impl Clone for DeviceIdentity {
    fn clone(&self) -> Self {
        DeviceIdentity { pkcs8: self.pkcs8.clone(), spki: self.spki.clone(), id: self.id }
    }
}

impl fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceIdentity").field("id", &self.id).finish_non_exhaustive()
    }
}

fn key_pair(der: &[u8]) -> Result<rcgen::KeyPair, IdentityError> {
    let key = PrivatePkcs8KeyDer::from(der);
    let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&key, &rcgen::PKCS_ED25519)
        .map_err(|e| IdentityError::BadKey(e.to_string()))?;
    Ok(pair)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn text_form_round_trips_and_is_canonical() {
        let id = DeviceIdentity::generate().unwrap().device_id();
        let text = id.to_string();
        assert_eq!(text.len(), DEVICE_ID_CHARS);
        assert_eq!(text.parse::<DeviceId>().unwrap(), id);
        assert_eq!(text.to_lowercase().parse::<DeviceId>().unwrap(), id);
        assert!(text[..51].parse::<DeviceId>().is_err());
        assert!(format!("{text}A").parse::<DeviceId>().is_err());
        assert!(format!("{}1", &text[..51]).parse::<DeviceId>().is_err());
        // The last character carries 1 bit of the id and 4 zero bits.
        let mut other = text.clone().into_bytes();
        let last = other.len() - 1;
        other[last] = if other[last] == b'B' { b'C' } else { b'B' };
        assert!(String::from_utf8(other).unwrap().parse::<DeviceId>().is_err());
        // Known vector: an all-zero id is 52 'A's.
        assert_eq!(DeviceId::from_bytes([0; 32]).to_string(), "A".repeat(52));
        assert_eq!(DeviceId::from_bytes([0xff; 32]).to_string(), format!("{}Q", "7".repeat(51)));
    }

    #[test]
    fn the_id_is_the_keys_and_survives_a_reload() {
        let a = DeviceIdentity::generate().unwrap();
        let b = DeviceIdentity::generate().unwrap();
        assert_ne!(a.device_id(), b.device_id());
        let again = DeviceIdentity::from_pkcs8(a.pkcs8_der()).unwrap();
        assert_eq!(again.device_id(), a.device_id());
        let cert = a.certificate().unwrap();
        assert_eq!(DeviceId::of_certificate(&cert).unwrap(), a.device_id());
        assert!(!format!("{a:?}").contains("pkcs8"));
        assert!(DeviceIdentity::from_pkcs8(b"not a key").is_err());
    }
}
