//! The store side of a sync session over a [`Replica`]: fingerprints read
//! from the stored levels (or, for a scope limited to a key prefix, from
//! per-session bucket sums made by one scan of the keyspace's versions and
//! kept up to date as entries are applied), node listings from the version
//! index, entries read and applied under the replication lock.

use std::collections::HashMap;
use std::ops::Bound;

use sync::fingerprint::{bucket_of, node_buckets, Fingerprint, FANOUT, LEAF_LEVEL, LEAVES};
use sync::hlc::wall_clock_ms;
use sync::session::{Applied, StoreError, SyncStore};
use sync::{ClockSkew, Entry, Hlc, ReplicaId, Scope, Version};

use super::layout::{self, Meta, STORED_LEVELS};
use super::{split_version_key, Change, Replica};
use crate::error::Error;
use crate::keyspace::Keyspace;

pub(crate) struct SessionStore<'r, 'db> {
    replica: &'r Replica<'db>,
    /// Leaf fingerprints of the prefix-limited scopes, by scope.
    filtered: HashMap<Scope, Vec<Fingerprint>>,
    /// The peer of the session (entries applied are recorded as from it).
    peer: ReplicaId,
}

fn boxed(e: Error) -> StoreError {
    Box::new(e)
}

impl<'r, 'db> SessionStore<'r, 'db> {
    pub(crate) fn new(replica: &'r Replica<'db>) -> Self {
        SessionStore { replica, filtered: HashMap::new(), peer: ReplicaId::default() }
    }

    fn keyspace(&self, scope: &Scope) -> Result<Option<Keyspace>, StoreError> {
        self.replica.replicated_by_name(scope.keyspace.as_deref().unwrap_or_default()).map_err(boxed)
    }

    /// Version records of `ks` in buckets `lo..hi` whose key is in `scope`.
    fn records(&self, ks: &Keyspace, scope: &Scope, lo: u32, hi: u32) -> Result<Vec<(Vec<u8>, Meta)>, StoreError> {
        let db = self.replica.db();
        let start = layout::bucket_start(ks.id(), lo);
        let end = layout::bucket_start(ks.id(), hi);
        let mut out = Vec::new();
        let mut iter = db
            .range_in(self.replica.versions_keyspace(), Bound::Included(&start), Bound::Excluded(&end), false, None)
            .map_err(boxed)?;
        while let Some(item) = iter.next_ref() {
            let (k, v) = item.map_err(boxed)?;
            let (_, key) = split_version_key(k).map_err(boxed)?;
            if key.starts_with(&scope.prefix) {
                let meta = Meta::decode(v).ok_or_else(|| boxed(Error::Internal("a sync version record that does not decode".into())))?;
                out.push((key, meta));
            }
        }
        Ok(out)
    }

    fn filtered_leaves(&mut self, ks: &Keyspace, scope: &Scope) -> Result<&Vec<Fingerprint>, StoreError> {
        if !self.filtered.contains_key(scope) {
            let mut leaves = vec![Fingerprint::default(); LEAVES as usize];
            for (key, meta) in self.records(ks, scope, 0, LEAVES)? {
                if let Some(l) = leaves.get_mut(bucket_of(&key) as usize) {
                    *l = l.combine(Fingerprint::of_hash(meta.hash));
                }
            }
            self.filtered.insert(scope.clone(), leaves);
        }
        self.filtered.get(scope).ok_or_else(|| boxed(Error::Internal("filtered fingerprints".into())))
    }

    fn update_filtered(&mut self, changes: &[Change], names: &HashMap<u32, String>) {
        for c in changes {
            let Some(name) = names.get(&c.keyspace) else { continue };
            for (scope, leaves) in &mut self.filtered {
                if scope.contains(name, &c.key) {
                    if let Some(l) = leaves.get_mut(bucket_of(&c.key) as usize) {
                        if let Some(h) = c.removed {
                            *l = l.remove(Fingerprint::of_hash(h));
                        }
                        if let Some(h) = c.added {
                            *l = l.combine(Fingerprint::of_hash(h));
                        }
                    }
                }
            }
        }
    }
}

impl SyncStore for SessionStore<'_, '_> {
    fn replica_id(&self) -> ReplicaId {
        self.replica.id()
    }

    fn begin_session(&mut self, peer: ReplicaId) {
        self.peer = peer;
    }

    fn now(&mut self) -> Result<Hlc, StoreError> {
        Ok(self.replica.clock().lock().tick(wall_clock_ms()))
    }

    fn observe(&mut self, hlc: Hlc) -> Result<(), ClockSkew> {
        self.replica.clock().lock().observe(hlc, wall_clock_ms())
    }

    fn replicated_keyspaces(&mut self) -> Result<Vec<String>, StoreError> {
        Ok(self.replica.replicated().map_err(boxed)?.iter().map(|k| k.name().to_owned()).collect())
    }

    fn node_fingerprints(&mut self, scope: &Scope, level: u8, first: u32, count: u32) -> Result<Vec<Fingerprint>, StoreError> {
        let mut out = vec![Fingerprint::default(); count as usize];
        let Some(ks) = self.keyspace(scope)? else { return Ok(out) };
        if level > LEAF_LEVEL {
            return Ok(out);
        }
        if !scope.prefix.is_empty() {
            let leaves = self.filtered_leaves(&ks, scope)?;
            for (slot, node) in out.iter_mut().zip(first..) {
                let (lo, hi) = node_buckets(level, node);
                for l in leaves.get(lo as usize..hi.min(LEAVES) as usize).unwrap_or_default() {
                    *slot = slot.combine(*l);
                }
            }
            return Ok(out);
        }
        // The stored level at or below `level`; each of its nodes adds into
        // the node of `level` above it.
        let stored = STORED_LEVELS.into_iter().find(|s| *s >= level).unwrap_or(LEAF_LEVEL);
        let width = FANOUT.pow(u32::from(stored - level));
        let lo = layout::fingerprint_key(ks.id(), stored, first.saturating_mul(width));
        let hi = layout::fingerprint_key(ks.id(), stored, first.saturating_add(count).saturating_mul(width));
        let db = self.replica.db();
        let mut iter = db
            .range_in(self.replica.fingerprints_keyspace(), Bound::Included(&lo), Bound::Excluded(&hi), false, None)
            .map_err(boxed)?;
        while let Some(item) = iter.next_ref() {
            let (k, v) = item.map_err(boxed)?;
            let node = k.get(5..9).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
            let f = layout::decode_fingerprint(v);
            let (Some(node), Some(f)) = (node, f) else {
                return Err(boxed(Error::Internal("a sync fingerprint record that does not decode".into())));
            };
            if let Some(slot) = out.get_mut((node / width).saturating_sub(first) as usize) {
                *slot = slot.combine(f);
            }
        }
        Ok(out)
    }

    fn node_entries(&mut self, scope: &Scope, level: u8, index: u32) -> Result<Vec<(Vec<u8>, Version)>, StoreError> {
        let Some(ks) = self.keyspace(scope)? else { return Ok(Vec::new()) };
        let (lo, hi) = node_buckets(level, index);
        Ok(self.records(&ks, scope, lo, hi)?.into_iter().map(|(k, m)| (k, m.version)).collect())
    }

    fn read_entry(&mut self, scope: &Scope, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        let Some(ks) = self.keyspace(scope)? else { return Ok(None) };
        self.replica.read_entry(&ks, key).map_err(boxed)
    }

    fn has_resolver(&mut self, scope: &Scope) -> bool {
        self.replica.has_resolver(scope.keyspace.as_deref().unwrap_or_default())
    }

    fn apply(&mut self, entries: &[(&Scope, &Entry)]) -> Result<Vec<Applied>, StoreError> {
        let (applied, changes) = self.replica.apply_received(entries, self.peer).map_err(boxed)?;
        if !self.filtered.is_empty() {
            let names = self.replica.replicated().map_err(boxed)?.into_iter().map(|k| (k.id(), k.name().to_owned())).collect();
            self.update_filtered(&changes, &names);
        }
        Ok(applied)
    }
}
