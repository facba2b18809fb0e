//! Which replica each paired device syncs as, so that tombstones can be
//! collected once every paired device has seen them (docs/design.md, "Sync:
//! tombstone collection between paired devices").
//!
//! A session names the peer's replica id ([`SyncStats::peer`]); the transport
//! names its device id. After a session, [`Replica::note_device`] records the
//! pair in `_sync_meta` under `device/` + the 32-byte device id (value: the
//! replica id, u64 LE). [`Replica::collect_tombstones_seen_by`] then turns the
//! paired devices into replica ids and applies the collection rule of
//! [`Replica::collect_tombstones`] to them.

use sync::{DeviceId, ReplicaId, SyncStats};

use super::{read_u64, Replica};
use crate::error::Result;

/// `_sync_meta` key prefix of a device's replica id: + device id (32 bytes) -> replica id u64 LE.
pub(crate) const META_DEVICE: &[u8] = b"device/";

fn device_key(device: &DeviceId) -> Vec<u8> {
    let mut key = META_DEVICE.to_vec();
    key.extend_from_slice(device.as_bytes());
    key
}

impl Replica<'_> {
    /// Records that `device` synced as the replica `stats.peer` names (after
    /// a session with it). A device that comes back as another replica (its
    /// store was made anew) is recorded as the new one: until that replica
    /// completes a session, no tombstone is collected.
    pub fn note_device(&self, device: &DeviceId, stats: &SyncStats) -> Result<()> {
        if stats.peer == ReplicaId::default() || self.device_replica(device)? == Some(stats.peer) {
            return Ok(());
        }
        self.db.put_in(&self.state.meta, &device_key(device), &stats.peer.0.to_le_bytes())
    }

    /// The replica `device` last synced as, if it ever completed a session here.
    pub fn device_replica(&self, device: &DeviceId) -> Result<Option<ReplicaId>> {
        self.db.get_in(&self.state.meta, &device_key(device))?.map(|b| read_u64(&b, "a device's replica id").map(ReplicaId)).transpose()
    }

    /// Removes the tombstones every one of `devices` (the paired devices)
    /// has seen. A device that never synced with this store keeps every
    /// tombstone (its replica is unknown); so does an empty list. Returns how
    /// many were removed.
    pub fn collect_tombstones_seen_by(&self, devices: &[DeviceId]) -> Result<u64> {
        if devices.is_empty() {
            return Ok(0);
        }
        let mut peers = Vec::with_capacity(devices.len());
        for d in devices {
            match self.device_replica(d)? {
                Some(r) => peers.push(r),
                None => return Ok(0),
            }
        }
        self.collect_tombstones(&peers)
    }
}
