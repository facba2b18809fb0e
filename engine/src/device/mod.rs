//! This store as a device of sync: its identity key pair and the devices it is
//! paired with, kept in the store itself (so encrypted like every value).
//!
//! Internal keyspaces (see docs/design.md "Device identity and pairing"):
//! - `_peer_identity`: key `ed25519` → the PKCS#8 DER private key, made on
//!   first use ([`Devices::identity`]);
//! - `_peer_pairs`: key = the peer's 32-byte device id → its pairing record
//!   ([`sync::Pairing::encode`]).

use sync::identity::DEVICE_ID_BYTES;
pub use sync::transport::{Listener, TlsChannel, Transport, TransportOptions, TrustedPeers, TRANSPORT_VERSION};
pub use sync::{DeviceId, DeviceIdentity, FrameChannel, Pairing};
use zeroize::Zeroizing;

use crate::{Db, Error, Keyspace, KeyspaceOptions, Result};

/// Keyspace of the identity key pair.
pub const IDENTITY_KEYSPACE: &str = "_peer_identity";
/// Keyspace of the pairing records.
pub const PAIRS_KEYSPACE: &str = "_peer_pairs";
/// Key of the Ed25519 private key in [`IDENTITY_KEYSPACE`].
const IDENTITY_KEY: &[u8] = b"ed25519";

/// Held while an identity is made, so that threads of a process making one at
/// once agree on a single key.
static IDENTITY_MADE: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// The device side of a store: its identity and pairings. Made by [`Db::devices`].
#[derive(Debug, Clone, Copy)]
pub struct Devices<'db> {
    db: &'db Db,
}

impl Db {
    /// This store as a sync device: its identity key pair and pairings.
    pub fn devices(&self) -> Devices<'_> {
        Devices { db: self }
    }
}

impl<'db> Devices<'db> {
    fn keyspace(&self, name: &str, create: bool) -> Result<Option<Keyspace>> {
        if let Some(ks) = self.db.keyspace(name)? {
            return Ok(Some(ks));
        }
        if !create {
            return Ok(None);
        }
        match self.db.create_internal_keyspace(name, KeyspaceOptions::default()) {
            Ok(ks) => Ok(Some(ks)),
            // Another thread made it meanwhile.
            Err(Error::KeyspaceExists(_)) => self.db.keyspace(name),
            Err(e) => Err(e),
        }
    }

    /// This store's identity, made and stored (durably) on first use. A
    /// read-only handle of a store that has none yet gets `Error::ReadOnly`.
    pub fn identity(&self) -> Result<DeviceIdentity> {
        if let Some(found) = self.stored_identity()? {
            return Ok(found);
        }
        // One writer process per store; within it, one thread makes the
        // identity while the others wait and then read it.
        let _making = IDENTITY_MADE.lock();
        if let Some(found) = self.stored_identity()? {
            return Ok(found);
        }
        let ks = self.keyspace(IDENTITY_KEYSPACE, true)?.ok_or_else(|| Error::Internal("identity keyspace vanished".into()))?;
        let made = DeviceIdentity::generate().map_err(|e| Error::Internal(e.to_string()))?;
        self.db.put_in(&ks, IDENTITY_KEY, made.pkcs8_der())?;
        Ok(made)
    }

    /// The stored identity, `None` if none was made yet (never makes one).
    pub fn stored_identity(&self) -> Result<Option<DeviceIdentity>> {
        let Some(ks) = self.keyspace(IDENTITY_KEYSPACE, false)? else { return Ok(None) };
        match self.db.get_in(&ks, IDENTITY_KEY)? {
            Some(der) => decode_identity(&Zeroizing::new(der)).map(Some),
            None => Ok(None),
        }
    }

    /// This store's device id (making its identity on first use).
    pub fn device_id(&self) -> Result<DeviceId> {
        Ok(self.identity()?.device_id())
    }

    /// Trusts `pairing.device` with the pairing's rights (replacing an earlier
    /// pairing of the same device). Pairing a store with itself is refused.
    pub fn pair(&self, pairing: &Pairing) -> Result<()> {
        if self.stored_identity()?.is_some_and(|me| me.device_id() == pairing.device) {
            return Err(Error::InvalidArgument("a store cannot be paired with its own device id".into()));
        }
        let record = pairing.encode().map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let ks = self.keyspace(PAIRS_KEYSPACE, true)?.ok_or_else(|| Error::Internal("pairs keyspace vanished".into()))?;
        self.db.put_in(&ks, pairing.device.as_bytes(), &record)
    }

    /// Forgets `device`; `false` if it was not paired.
    pub fn unpair(&self, device: &DeviceId) -> Result<bool> {
        let Some(ks) = self.keyspace(PAIRS_KEYSPACE, false)? else { return Ok(false) };
        if self.db.get_in(&ks, device.as_bytes())?.is_none() {
            return Ok(false);
        }
        self.db.delete_in(&ks, device.as_bytes())?;
        Ok(true)
    }

    /// The pairing of `device`, if it is paired.
    pub fn pairing(&self, device: &DeviceId) -> Result<Option<Pairing>> {
        let Some(ks) = self.keyspace(PAIRS_KEYSPACE, false)? else { return Ok(None) };
        match self.db.get_in(&ks, device.as_bytes())? {
            Some(record) => decode_pairing(device.as_bytes(), &record).map(Some),
            None => Ok(None),
        }
    }

    /// The paired devices, as the set a transport pins (a snapshot: pairings
    /// made later are added to it with [`TrustedPeers::insert`]).
    pub fn trusted_peers(&self) -> Result<TrustedPeers> {
        Ok(TrustedPeers::new(self.pairings()?.into_iter().map(|p| p.device)))
    }

    /// A device transport of this store's identity (made on first use) that
    /// accepts the paired devices.
    pub fn transport(&self, options: TransportOptions) -> Result<Transport> {
        let identity = self.identity()?;
        Transport::new(&identity, self.trusted_peers()?, options).map_err(|e| Error::Internal(e.to_string()))
    }

    /// Every pairing, in device-id byte order.
    pub fn pairings(&self) -> Result<Vec<Pairing>> {
        let Some(ks) = self.keyspace(PAIRS_KEYSPACE, false)? else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for item in self.db.scan_prefix_in(&ks, b"")? {
            let (key, record) = item?;
            out.push(decode_pairing(&key, &record)?);
        }
        Ok(out)
    }
}

fn decode_identity(der: &[u8]) -> Result<DeviceIdentity> {
    DeviceIdentity::from_pkcs8(der).map_err(|e| Error::Corruption {
        file: IDENTITY_KEYSPACE.into(),
        offset: 0,
        reason: format!("the stored device key does not decode: {e}"),
    })
}

fn decode_pairing(key: &[u8], record: &[u8]) -> Result<Pairing> {
    let damaged = |reason: String| Error::Corruption { file: PAIRS_KEYSPACE.into(), offset: 0, reason };
    if key.len() != DEVICE_ID_BYTES {
        return Err(damaged(format!("a pairing under a key of {} bytes", key.len())));
    }
    let device = DeviceId::from_slice(key).map_err(|e| damaged(e.to_string()))?;
    Pairing::decode(device, record).map_err(|e| damaged(format!("pairing of {device}: {e}")))
}
