//! Pairing records: the devices a store trusts, with the key prefixes each may
//! read and write.
//!
//! Rights are two lists of key prefixes. A key is readable (writable) by the
//! device if it starts with one of the read (write) prefixes; an empty list
//! allows nothing, and the empty prefix allows everything. [`Pairing::full`]
//! (what `pair add` makes when given neither `--read` nor `--write`) allows
//! everything both ways.
//!
//! Stored form (a value of the store, so encrypted like every value):
//! `u8 version (1) | u16 name length | name (UTF-8) | u16 read count |
//! (u32 length | prefix)* | u16 write count | (u32 length | prefix)*`,
//! integers big-endian, nothing after. Any other byte string is refused with
//! [`PairingError`].

use crate::identity::DeviceId;

/// Format version of a stored pairing record.
pub const PAIRING_RECORD_VERSION: u8 = 1;
/// Longest device name accepted (bytes of UTF-8).
pub const MAX_PAIRING_NAME_BYTES: usize = 255;
/// Most prefixes a pairing lists in each direction.
pub const MAX_PAIRING_PREFIXES: usize = 1024;

/// A pairing record that could not be made or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PairingError {
    /// A stored record that does not decode.
    #[error("damaged pairing record: {0}")]
    Malformed(String),
    /// A stored record of a format this build does not read.
    #[error("pairing record of format {0}; this build reads format {PAIRING_RECORD_VERSION}")]
    UnsupportedVersion(u8),
    /// A name or prefix list beyond its limit.
    #[error("invalid pairing: {0}")]
    Invalid(String),
}

/// One trusted device and its rights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pairing {
    /// The device's id (pinned: only its key is accepted for it).
    pub device: DeviceId,
    /// A name for people (may be empty).
    pub name: String,
    /// Key prefixes the device may read; empty: nothing; `[""]`: everything.
    pub read: Vec<Vec<u8>>,
    /// Key prefixes the device may write; empty: nothing; `[""]`: everything.
    pub write: Vec<Vec<u8>>,
}

impl Pairing {
    /// A pairing that may read and write everything.
    pub fn full(device: DeviceId, name: impl Into<String>) -> Pairing {
        Pairing { device, name: name.into(), read: vec![Vec::new()], write: vec![Vec::new()] }
    }

    /// Whether the device may read `key`.
    pub fn may_read(&self, key: &[u8]) -> bool {
        self.read.iter().any(|p| key.starts_with(p))
    }

    /// Whether the device may write `key`.
    pub fn may_write(&self, key: &[u8]) -> bool {
        self.write.iter().any(|p| key.starts_with(p))
    }

    /// Checks the limits (name length, prefix counts and lengths).
    pub fn validate(&self) -> Result<(), PairingError> {
        if self.name.len() > MAX_PAIRING_NAME_BYTES {
            return Err(PairingError::Invalid(format!("a name of {} bytes (at most {MAX_PAIRING_NAME_BYTES})", self.name.len())));
        }
        for (what, list) in [("read", &self.read), ("write", &self.write)] {
            if list.len() > MAX_PAIRING_PREFIXES {
                return Err(PairingError::Invalid(format!("{} {what} prefixes (at most {MAX_PAIRING_PREFIXES})", list.len())));
            }
            if let Some(p) = list.iter().find(|p| u32::try_from(p.len()).is_err()) {
                return Err(PairingError::Invalid(format!("a {what} prefix of {} bytes", p.len())));
            }
        }
        Ok(())
    }

    /// The stored form of the record (the device id is the key it is stored under).
    pub fn encode(&self) -> Result<Vec<u8>, PairingError> {
        self.validate()?;
        let mut out = vec![PAIRING_RECORD_VERSION];
        // validate() bounds every length below the casts' ranges.
        out.extend_from_slice(&(self.name.len() as u16).to_be_bytes());
        out.extend_from_slice(self.name.as_bytes());
        for list in [&self.read, &self.write] {
            out.extend_from_slice(&(list.len() as u16).to_be_bytes());
            for p in list {
                out.extend_from_slice(&(p.len() as u32).to_be_bytes());
                out.extend_from_slice(p);
            }
        }
        Ok(out)
    }

    /// The record of `device` from its stored form.
    pub fn decode(device: DeviceId, bytes: &[u8]) -> Result<Pairing, PairingError> {
        let mut r = Reader(bytes);
        let version = r.take(1)?.first().copied().unwrap_or(0);
        if version != PAIRING_RECORD_VERSION {
            return Err(PairingError::UnsupportedVersion(version));
        }
        let name_len = usize::from(r.u16()?);
        let name = String::from_utf8(r.take(name_len)?.to_vec())
            .map_err(|_| PairingError::Malformed("the name is not UTF-8".into()))?;
        let mut lists = [Vec::new(), Vec::new()];
        for list in &mut lists {
            let count = usize::from(r.u16()?);
            if count > MAX_PAIRING_PREFIXES {
                return Err(PairingError::Malformed(format!("{count} prefixes")));
            }
            for _ in 0..count {
                let len = r.u32()? as usize;
                list.push(r.take(len)?.to_vec());
            }
        }
        if !r.0.is_empty() {
            return Err(PairingError::Malformed(format!("{} bytes after the record", r.0.len())));
        }
        let [read, write] = lists;
        let pairing = Pairing { device, name, read, write };
        pairing.validate().map_err(|e| PairingError::Malformed(e.to_string()))?;
        Ok(pairing)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PairingError> {
        if self.0.len() < n {
            return Err(PairingError::Malformed("the record ends early".into()));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u16(&mut self) -> Result<u16, PairingError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b.first().copied().unwrap_or(0), b.get(1).copied().unwrap_or(0)]))
    }
    fn u32(&mut self) -> Result<u32, PairingError> {
        let b = self.take(4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn id() -> DeviceId {
        DeviceId::from_bytes([7; 32])
    }

    #[test]
    fn records_round_trip_and_rights_follow_prefixes() {
        let p = Pairing { device: id(), name: "phone".into(), read: vec![b"notes/".to_vec()], write: vec![] };
        let bytes = p.encode().unwrap();
        assert_eq!(Pairing::decode(id(), &bytes).unwrap(), p);
        assert!(p.may_read(b"notes/a") && !p.may_read(b"mail/a"));
        assert!(!p.may_write(b"notes/a"));
        let full = Pairing::full(id(), "");
        assert!(full.may_read(b"x") && full.may_write(b""));
        assert_eq!(Pairing::decode(id(), &full.encode().unwrap()).unwrap(), full);
    }

    #[test]
    fn damaged_records_are_refused() {
        let bytes = Pairing::full(id(), "laptop").encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(Pairing::decode(id(), &bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Pairing::decode(id(), &longer).is_err());
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert!(matches!(Pairing::decode(id(), &v2), Err(PairingError::UnsupportedVersion(2))));
        let long_name = Pairing::full(id(), "x".repeat(300));
        assert!(long_name.encode().is_err());
    }
}
