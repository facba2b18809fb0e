//! Replication of keyspaces between devices: the engine side of sync.
//!
//! `Db::replica` hands out a [`Replica`], through which an application marks
//! keyspaces as replicated and writes to them. Each replicated write gets a
//! [`Version`] (hybrid logical clock, replica id); deletes are versioned
//! tombstones. The value itself stays a plain value in its keyspace (reads
//! through `Db::get_in`, ranges and cursors return it unchanged), and the
//! version, with the hash that fingerprints it, goes into an internal version
//! index in the same atomic batch, along with the updated fingerprints of
//! the key's bucket and of its level-2 node. So a sync session never
//! rescans anything to compare stores, and a crash never separates a value
//! from its version. The session itself (`sync::session`) runs over any
//! [`sync::FrameChannel`].

mod crdt;
mod devices;
mod layout;
mod store;

pub use crdt::DOC_KEYSPACE_PREFIX;

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use sync::fingerprint::{bucket_of, entry_hash, node_of, Fingerprint};
use sync::hlc::{wall_clock_ms, Clock, DEFAULT_MAX_DRIFT_MS};
use sync::session::Applied;
use sync::{Entry, FrameChannel, Hlc, ReplicaId, Scope, SessionError, SessionOptions, SyncStats, Version};

use crate::batch::WriteBatch;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::keyspace::{Keyspace, KeyspaceOptions};
use layout::{Meta, CONFLICTS, FINGERPRINTS, META, META_CLOCK, META_KEYSPACE, META_PEER, META_REPLICA, STORED_LEVELS, VERSIONS};

/// Which of two concurrent versions a [`ConflictResolver`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Winner {
    /// The one with the smaller version.
    Older,
    /// The one with the greater version (what last-writer-wins keeps).
    Newer,
}

/// Chooses between two concurrent writes of one key of a keyspace (neither
/// was made knowing the other). Installed per keyspace with
/// [`Replica::set_resolver`]; without one, the greater version wins.
///
/// For every replica to keep the same entry whatever the order in which
/// writes arrive, the choice must depend on the two entries only (it is
/// given them ordered by version, not as local and remote), and must be a
/// total order: if it prefers b to a and c to b, it prefers c to a.
pub trait ConflictResolver: Send + Sync {
    /// The entry to keep of `older` and `newer` (either may be a tombstone).
    fn resolve(&self, keyspace: &str, key: &[u8], older: &Entry, newer: &Entry) -> Winner;
}

/// One conflict resolved by this replica, as [`Replica::conflicts`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictRecord {
    /// This replica's clock when it resolved the conflict.
    pub at: Hlc,
    /// The keyspace.
    pub keyspace: String,
    /// The key.
    pub key: Vec<u8>,
    /// The version kept.
    pub kept: Version,
    /// The version that lost.
    pub lost: Version,
}

impl ConflictRecord {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.push(1u8);
        out.extend_from_slice(&(self.keyspace.len() as u32).to_le_bytes());
        out.extend_from_slice(self.keyspace.as_bytes());
        out.extend_from_slice(&(self.key.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.kept.to_bytes());
        out.extend_from_slice(&self.lost.to_bytes());
        out
    }

    fn decode(at: Hlc, b: &[u8]) -> Option<ConflictRecord> {
        let (&v, rest) = b.split_first()?;
        if v != 1 {
            return None;
        }
        let (ks_len, rest) = rest.split_at_checked(4)?;
        let (ks, rest) = rest.split_at_checked(u32::from_le_bytes(ks_len.try_into().ok()?) as usize)?;
        let (key_len, rest) = rest.split_at_checked(4)?;
        let (key, rest) = rest.split_at_checked(u32::from_le_bytes(key_len.try_into().ok()?) as usize)?;
        if rest.len() != 32 {
            return None;
        }
        Some(ConflictRecord {
            at,
            keyspace: String::from_utf8(ks.to_vec()).ok()?,
            key: key.to_vec(),
            kept: Version::from_bytes(rest.get(..16)?)?,
            lost: Version::from_bytes(rest.get(16..)?)?,
        })
    }
}

/// The shared replication state of one open store.
pub(crate) struct ReplicaState {
    id: ReplicaId,
    versions: Keyspace,
    fingerprints: Keyspace,
    meta: Keyspace,
    conflicts: Keyspace,
    /// Serializes replicated writes (each reads a key's version and its
    /// buckets' fingerprints, then writes them) and owns the clock.
    clock: Mutex<Clock>,
    resolvers: RwLock<BTreeMap<String, Arc<dyn ConflictResolver>>>,
}

fn internal_keyspace(db: &Db, name: &str) -> Result<Keyspace> {
    match db.keyspace(name)? {
        Some(ks) => Ok(ks),
        None => db.create_internal_keyspace(name, KeyspaceOptions::default()),
    }
}

fn read_u64(bytes: &[u8], what: &str) -> Result<u64> {
    let a: [u8; 8] = bytes.try_into().map_err(|_| Error::Internal(format!("sync metadata: {what} is not 8 bytes")))?;
    Ok(u64::from_le_bytes(a))
}

impl ReplicaState {
    fn open(db: &Db) -> Result<ReplicaState> {
        let meta = internal_keyspace(db, META)?;
        let versions = internal_keyspace(db, VERSIONS)?;
        let fingerprints = internal_keyspace(db, FINGERPRINTS)?;
        let conflicts = internal_keyspace(db, CONFLICTS)?;
        let id = match db.get_in(&meta, META_REPLICA)? {
            Some(b) => ReplicaId(read_u64(&b, "the replica id")?),
            None => {
                // 63 random bits, never 0 (0 is the version of "no write").
                let id = (rand::random::<u64>() >> 1).max(1);
                db.put_in(&meta, META_REPLICA, &id.to_le_bytes())?;
                ReplicaId(id)
            }
        };
        let high_water = match db.get_in(&meta, META_CLOCK)? {
            Some(b) => Hlc(read_u64(&b, "the clock")?),
            None => Hlc::default(),
        };
        Ok(ReplicaState {
            id,
            versions,
            fingerprints,
            meta,
            conflicts,
            clock: Mutex::new(Clock::new(high_water, DEFAULT_MAX_DRIFT_MS)),
            resolvers: RwLock::new(BTreeMap::new()),
        })
    }
}

impl Db {
    /// The store's replication handle: replicated keyspaces, versioned writes
    /// and sync sessions. The first call on a store gives it a replica id and
    /// its internal replication keyspaces (names starting `_sync`); a
    /// read-only handle can do that only if a writer did it before.
    ///
    /// Two stores in one process, synced over an in-memory channel (between
    /// devices the channel is the authenticated transport of [`crate::device`]):
    ///
    /// ```
    /// use synapsed_storage::{mem_pair, Credential, Db, KeyspaceOptions, Options, SessionOptions};
    ///
    /// let cred = Credential::passphrase("pw");
    /// let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    /// let (a, b) = (Db::create(dir_a.path(), &cred, Options::default())?, Db::create(dir_b.path(), &cred, Options::default())?);
    /// for db in [&a, &b] {
    ///     let notes = db.create_keyspace("notes", KeyspaceOptions::default())?;
    ///     db.replica()?.replicate(&notes)?;
    /// }
    /// let notes_a = a.keyspace("notes")?.expect("created above");
    /// a.replica()?.put(&notes_a, b"todo", b"write the docs")?;
    ///
    /// let (mut to_b, mut to_a) = mem_pair();
    /// let sent = std::thread::scope(|s| {
    ///     let responder = s.spawn(|| b.replica().map(|r| r.respond(&mut to_a, &SessionOptions::default())));
    ///     let sent = a.replica()?.initiate(&mut to_b, &SessionOptions::default());
    ///     drop(to_b);
    ///     responder.join().expect("responder thread")??;
    ///     Ok::<_, Box<dyn std::error::Error + Send + Sync>>(sent?)
    /// })?;
    /// assert_eq!(sent.entries_sent, 1);
    /// let notes_b = b.keyspace("notes")?.expect("created above");
    /// assert_eq!(b.get_in(&notes_b, b"todo")?, Some(b"write the docs".to_vec()));
    /// # a.close()?;
    /// # b.close()?;
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn replica(&self) -> Result<Replica<'_>> {
        let mut slot = self.replica.lock();
        let state = match &*slot {
            Some(s) => Arc::clone(s),
            None => {
                let s = Arc::new(ReplicaState::open(self)?);
                *slot = Some(Arc::clone(&s));
                s
            }
        };
        Ok(Replica { db: self, state })
    }

    /// The replication handle if this store has one already (a writer called
    /// [`Db::replica`] before), else `None`, creating nothing: for code that
    /// versions its writes only in stores that replicate.
    pub fn existing_replica(&self) -> Result<Option<Replica<'_>>> {
        if self.keyspace(META)?.is_none() {
            return Ok(None);
        }
        self.replica().map(Some)
    }
}

/// A key's version record and value as a pending batch leaves them, by (keyspace id, key).
type PendingEntries = HashMap<(u32, Vec<u8>), (Option<Meta>, Option<Vec<u8>>)>;

/// Writes being gathered into one batch under the replication lock: the
/// versions and fingerprints they change, read once and updated in memory.
struct Pending {
    batch: WriteBatch,
    metas: PendingEntries,
    fingerprints: BTreeMap<(u32, u8, u32), Fingerprint>,
    /// (keyspace id, bucket, hash removed, hash added) of each change.
    changes: Vec<Change>,
    /// Merge states and documents of merging keyspaces.
    merges: crdt::PendingMerges,
    /// The peer the entries being applied came from (default: local writes).
    from: ReplicaId,
}

/// One change to the set of entries a fingerprint covers.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) keyspace: u32,
    pub(crate) key: Vec<u8>,
    pub(crate) removed: Option<u128>,
    pub(crate) added: Option<u128>,
}

/// A store's replication handle (see [`Db::replica`]).
///
/// Two stores syncing over an in-memory channel (a device transport
/// supplies the channel between devices):
///
/// ```
/// use synapsed_storage::{mem_pair, Credential, Db, KeyspaceOptions, Options, SessionOptions};
///
/// let (dir_a, dir_b) = (std::env::temp_dir().join("replica-doc-a"), std::env::temp_dir().join("replica-doc-b"));
/// # let _ = (std::fs::remove_dir_all(&dir_a), std::fs::remove_dir_all(&dir_b));
/// let cred = Credential::passphrase("correct horse battery staple");
/// let opts = || Options::default().with_insecure_kdf_for_tests(true);
/// let (a, b) = (Db::create(&dir_a, &cred, opts())?, Db::create(&dir_b, &cred, opts())?);
/// for db in [&a, &b] {
///     let notes = db.create_keyspace("notes", KeyspaceOptions::default())?;
///     db.replica()?.replicate(&notes)?;
/// }
/// let notes_a = a.keyspace("notes")?.expect("created above");
/// a.replica()?.put(&notes_a, b"groceries", b"milk, eggs")?;
///
/// let (mut to_b, mut to_a) = mem_pair();
/// let stats = std::thread::scope(|s| {
///     let responder = s.spawn(|| b.replica().map(|r| r.respond(&mut to_a, &SessionOptions::default())));
///     let stats = a.replica()?.initiate(&mut to_b, &SessionOptions::default()).expect("session");
///     drop(to_b);
///     responder.join().expect("responder thread")?.expect("session");
///     Ok::<_, synapsed_storage::Error>(stats)
/// })?;
/// assert_eq!(stats.entries_sent, 1);
/// let notes_b = b.keyspace("notes")?.expect("created above");
/// assert_eq!(b.get_in(&notes_b, b"groceries")?, Some(b"milk, eggs".to_vec()));
/// # Ok::<(), synapsed_storage::Error>(())
/// ```
pub struct Replica<'db> {
    db: &'db Db,
    state: Arc<ReplicaState>,
}

impl std::fmt::Debug for Replica<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica").field("id", &self.state.id).finish()
    }
}

impl<'db> Replica<'db> {
    /// This replica's id.
    pub fn id(&self) -> ReplicaId {
        self.state.id
    }

    /// Sets how far ahead of this device's clock a peer's timestamps may be
    /// (default [`sync::hlc::DEFAULT_MAX_DRIFT_MS`], 60 s); further ahead, a
    /// session is refused and an entry is refused.
    pub fn set_max_drift_ms(&self, max_drift_ms: u64) {
        let mut clock = self.state.clock.lock();
        *clock = Clock::new(clock.last(), max_drift_ms);
    }

    /// Marks `keyspace` as replicated (durably; once is enough). Keys it
    /// already holds get a version now, as if written now.
    pub fn replicate(&self, keyspace: &Keyspace) -> Result<()> {
        if keyspace.is_internal() {
            return Err(Error::InvalidArgument(format!("keyspace {:?} is internal and cannot be replicated", keyspace.name())));
        }
        let mut name_key = META_KEYSPACE.to_vec();
        name_key.extend_from_slice(keyspace.name().as_bytes());
        if self.db.get_in(&self.state.meta, &name_key)?.as_deref() == Some(&keyspace.id().to_le_bytes()[..]) {
            return Ok(());
        }
        // Stamp what the keyspace holds, a thousand keys per batch.
        let mut start: Option<Vec<u8>> = None;
        loop {
            let lower = start.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let chunk: Vec<(Vec<u8>, Vec<u8>)> =
                self.db.range_in(keyspace, lower, Bound::Unbounded, false, None)?.take(1000).collect::<Result<_>>()?;
            let Some((last, _)) = chunk.last() else { break };
            start = Some(last.clone());
            let kind = self.crdt_kind(keyspace)?;
            let mut clock = self.state.clock.lock();
            let mut p = self.pending();
            for (key, value) in &chunk {
                if let (Some(kind), None) = (kind, self.meta_of(&mut p, keyspace.id(), key)?) {
                    self.crdt_assign(&mut p, &mut clock, keyspace, kind, key, Some(value))?;
                } else if self.meta_of(&mut p, keyspace.id(), key)?.is_none() {
                    let version = Version { hlc: clock.tick(wall_clock_ms()), replica: self.state.id };
                    self.set_entry(&mut p, keyspace, key, version, Version::default(), Some(value), version.hlc)?;
                }
            }
            self.commit(p, &clock)?;
        }
        self.db.put_in(&self.state.meta, &name_key, &keyspace.id().to_le_bytes())
    }

    /// Names of the replicated keyspaces (those dropped since are left out).
    pub fn replicated(&self) -> Result<Vec<Keyspace>> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix_in(&self.state.meta, META_KEYSPACE)? {
            let (k, v) = item?;
            let name = String::from_utf8_lossy(k.get(META_KEYSPACE.len()..).unwrap_or_default()).into_owned();
            if let Some(ks) = self.db.keyspace(&name)? {
                if v.as_slice() == ks.id().to_le_bytes() {
                    out.push(ks);
                }
            }
        }
        Ok(out)
    }

    fn replicated_keyspace(&self, name: &str) -> Result<Option<Keyspace>> {
        Ok(self.replicated()?.into_iter().find(|k| k.name() == name))
    }

    fn check_replicated(&self, keyspace: &Keyspace) -> Result<()> {
        if self.replicated()?.iter().any(|k| k == keyspace) {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!("keyspace {:?} is not replicated", keyspace.name())))
        }
    }

    /// Installs `resolver` for keyspace `name` (for this open handle).
    pub fn set_resolver(&self, name: &str, resolver: Arc<dyn ConflictResolver>) {
        self.state.resolvers.write().insert(name.to_owned(), resolver);
    }

    pub(crate) fn has_resolver(&self, name: &str) -> bool {
        self.state.resolvers.read().contains_key(name) || self.merges_by_name(name)
    }

    /// Writes `value` under `key` in replicated `keyspace` with a new version,
    /// which it returns.
    pub fn put(&self, keyspace: &Keyspace, key: &[u8], value: &[u8]) -> Result<Version> {
        self.write_local(keyspace, key, Some(value))
    }

    /// Deletes `key` in replicated `keyspace`: a versioned tombstone.
    pub fn delete(&self, keyspace: &Keyspace, key: &[u8]) -> Result<Version> {
        self.write_local(keyspace, key, None)
    }

    /// Applies `ops` (a key and its new value, `None` for a delete) to
    /// replicated `keyspace` atomically, each with a new version: one batch
    /// for the values, their version records and the fingerprints. An empty
    /// key refuses the whole call, nothing written.
    pub fn write_many(&self, keyspace: &Keyspace, ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        self.check_replicated(keyspace)?;
        if ops.iter().any(|(key, _)| key.is_empty()) {
            return Err(Error::InvalidArgument("an empty key".into()));
        }
        if ops.is_empty() {
            return Ok(());
        }
        let kind = self.crdt_kind(keyspace)?;
        let mut clock = self.state.clock.lock();
        let mut p = self.pending();
        for (key, value) in ops {
            if let Some(kind) = kind {
                self.crdt_assign(&mut p, &mut clock, keyspace, kind, key, value.as_deref())?;
                continue;
            }
            let prev = self.meta_of(&mut p, keyspace.id(), key)?.map(|m| m.version).unwrap_or_default();
            let version = Version { hlc: clock.tick(wall_clock_ms()), replica: self.state.id };
            self.set_entry(&mut p, keyspace, key, version, prev, value.as_deref(), version.hlc)?;
        }
        let docs = std::mem::take(&mut p.merges.docs);
        self.commit(p, &clock)?;
        self.mirror_documents(docs)
    }

    /// Whether `keyspace` is replicated here.
    pub fn is_replicated(&self, keyspace: &Keyspace) -> Result<bool> {
        Ok(self.replicated()?.iter().any(|k| k.id() == keyspace.id()))
    }

    fn write_local(&self, keyspace: &Keyspace, key: &[u8], value: Option<&[u8]>) -> Result<Version> {
        self.check_replicated(keyspace)?;
        if key.is_empty() {
            return Err(Error::InvalidArgument("an empty key".into()));
        }
        if let Some(kind) = self.crdt_kind(keyspace)? {
            return self.merge_write(keyspace, kind, key, value);
        }
        let mut clock = self.state.clock.lock();
        let mut p = self.pending();
        let prev = self.meta_of(&mut p, keyspace.id(), key)?.map(|m| m.version).unwrap_or_default();
        let version = Version { hlc: clock.tick(wall_clock_ms()), replica: self.state.id };
        self.set_entry(&mut p, keyspace, key, version, prev, value, version.hlc)?;
        self.commit(p, &clock)?;
        Ok(version)
    }

    /// The version of `key` in `keyspace` and whether it is a tombstone.
    pub fn version_of(&self, keyspace: &Keyspace, key: &[u8]) -> Result<Option<(Version, bool)>> {
        let mut p = self.pending();
        Ok(self.meta_of(&mut p, keyspace.id(), key)?.map(|m| (m.version, m.tombstone)))
    }

    /// Every conflict this replica resolved, oldest first.
    pub fn conflicts(&self) -> Result<Vec<ConflictRecord>> {
        let mut out = Vec::new();
        for item in self.db.range_in(&self.state.conflicts, Bound::Unbounded, Bound::Unbounded, false, None)? {
            let (k, v) = item?;
            let at = Hlc(u64::from_be_bytes(k.as_slice().try_into().map_err(|_| Error::Internal("sync conflict record key".into()))?));
            out.push(ConflictRecord::decode(at, &v).ok_or_else(|| Error::Internal("a sync conflict record that does not decode".into()))?);
        }
        Ok(out)
    }

    /// Runs the initiator's side of a session over `channel`.
    pub fn initiate(&self, channel: &mut dyn FrameChannel, options: &SessionOptions) -> std::result::Result<SyncStats, SessionError> {
        let session = crate::metrics::SyncSession::begin("initiator");
        let start = self.state.clock.lock().tick(wall_clock_ms());
        let stats = sync::initiate(&mut store::SessionStore::new(self), channel, options)?;
        self.after_session(&stats, start).map_err(|e| SessionError::Store(Box::new(e)))?;
        Ok(session.finished(stats))
    }

    /// Runs the responder's side of a session over `channel`.
    pub fn respond(&self, channel: &mut dyn FrameChannel, options: &SessionOptions) -> std::result::Result<SyncStats, SessionError> {
        let session = crate::metrics::SyncSession::begin("responder");
        let start = self.state.clock.lock().tick(wall_clock_ms());
        let stats = sync::respond(&mut store::SessionStore::new(self), channel, options)?;
        self.after_session(&stats, start).map_err(|e| SessionError::Store(Box::new(e)))?;
        Ok(session.finished(stats))
    }

    /// After a complete session over every replicated keyspace in which
    /// nothing was refused either way, the peer holds every entry that
    /// arrived here before the session began: recorded as its watermark.
    fn after_session(&self, stats: &SyncStats, start: Hlc) -> Result<()> {
        if !stats.full || stats.refused_writes > 0 || stats.refused_by_peer > 0 {
            return Ok(());
        }
        let mut key = META_PEER.to_vec();
        key.extend_from_slice(&stats.peer.0.to_be_bytes());
        self.db.put_in(&self.state.meta, &key, &start.0.to_le_bytes())
    }

    /// The clock up to which `peer` is known to hold every entry of this replica.
    pub fn peer_watermark(&self, peer: ReplicaId) -> Result<Option<Hlc>> {
        let mut key = META_PEER.to_vec();
        key.extend_from_slice(&peer.0.to_be_bytes());
        self.db.get_in(&self.state.meta, &key)?.map(|b| read_u64(&b, "a peer watermark").map(Hlc)).transpose()
    }

    /// Removes the versioned tombstones every one of `peers` (the devices
    /// this store syncs with) has seen: for each peer, the tombstone arrived
    /// here before the peer's last complete session with this replica, or
    /// came from that peer, or was written by it. A peer that never
    /// completed a session keeps every tombstone it did not send or write.
    /// No peers: nothing is removed. Returns how many were removed.
    pub fn collect_tombstones(&self, peers: &[ReplicaId]) -> Result<u64> {
        if peers.is_empty() {
            return Ok(0);
        }
        let mut marks = Vec::with_capacity(peers.len());
        for p in peers {
            marks.push((*p, self.peer_watermark(*p)?));
        }
        let clock = self.state.clock.lock();
        let mut p = self.pending();
        let mut removed = 0;
        for item in self.db.range_in(&self.state.versions, Bound::Unbounded, Bound::Unbounded, false, None)? {
            let (k, v) = item?;
            let meta = Meta::decode(&v).ok_or_else(|| Error::Internal("a sync version record that does not decode".into()))?;
            let seen_by_all = marks
                .iter()
                .all(|(peer, mark)| meta.from == *peer || meta.version.replica == *peer || mark.is_some_and(|w| meta.arrived < w));
            if meta.tombstone && seen_by_all {
                let (ks, key) = split_version_key(&k)?;
                self.remove_entry(&mut p, ks, &key, meta)?;
                removed += 1;
            }
        }
        self.commit(p, &clock)?;
        Ok(removed)
    }

    fn pending(&self) -> Pending {
        Pending { batch: WriteBatch::new(), metas: HashMap::new(), fingerprints: BTreeMap::new(), changes: Vec::new(), merges: Default::default(), from: ReplicaId::default() }
    }

    /// The version record of `key`, as the pending batch leaves it.
    fn meta_of(&self, p: &mut Pending, ks: u32, key: &[u8]) -> Result<Option<Meta>> {
        if let Some((m, _)) = p.metas.get(&(ks, key.to_vec())) {
            return Ok(*m);
        }
        let raw = self.db.get_in(&self.state.versions, &layout::version_key(ks, bucket_of(key), key))?;
        raw.map(|b| Meta::decode(&b).ok_or_else(|| Error::Internal("a sync version record that does not decode".into()))).transpose()
    }

    /// The value of `key` as the pending batch leaves it.
    fn value_of(&self, p: &Pending, keyspace: &Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some((_, v)) = p.metas.get(&(keyspace.id(), key.to_vec())) {
            return Ok(v.clone());
        }
        self.db.get_in(keyspace, key)
    }

    fn fingerprint_of(&self, p: &mut Pending, ks: u32, level: u8, node: u32) -> Result<Fingerprint> {
        if let Some(f) = p.fingerprints.get(&(ks, level, node)) {
            return Ok(*f);
        }
        match self.db.get_in(&self.state.fingerprints, &layout::fingerprint_key(ks, level, node))? {
            Some(b) => layout::decode_fingerprint(&b).ok_or_else(|| Error::Internal("a sync fingerprint that does not decode".into())),
            None => Ok(Fingerprint::default()),
        }
    }

    fn update_fingerprints(&self, p: &mut Pending, ks: u32, key: &[u8], removed: Option<u128>, added: Option<u128>) -> Result<()> {
        let bucket = bucket_of(key);
        for level in STORED_LEVELS {
            let node = node_of(level, bucket);
            let mut f = self.fingerprint_of(p, ks, level, node)?;
            if let Some(h) = removed {
                f = f.remove(Fingerprint::of_hash(h));
            }
            if let Some(h) = added {
                f = f.combine(Fingerprint::of_hash(h));
            }
            p.fingerprints.insert((ks, level, node), f);
        }
        p.changes.push(Change { keyspace: ks, key: key.to_vec(), removed, added });
        Ok(())
    }

    /// Adds the write of one entry to the pending batch: its value (or
    /// deletion), its version record and its fingerprints.
    #[allow(clippy::too_many_arguments)]
    fn set_entry(
        &self,
        p: &mut Pending,
        keyspace: &Keyspace,
        key: &[u8],
        version: Version,
        prev: Version,
        value: Option<&[u8]>,
        arrived: Hlc,
    ) -> Result<()> {
        let ks = keyspace.id();
        let old = self.meta_of(p, ks, key)?;
        let hash = entry_hash(key, version, value);
        let meta = Meta { version, prev, tombstone: value.is_none(), hash, arrived, from: p.from };
        self.update_fingerprints(p, ks, key, old.map(|m| m.hash), Some(hash))?;
        match value {
            Some(v) => p.batch.put_in(keyspace, key, v),
            None => p.batch.delete_in(keyspace, key),
        };
        p.batch.put_in(&self.state.versions, layout::version_key(ks, bucket_of(key), key), meta.encode());
        p.metas.insert((ks, key.to_vec()), (Some(meta), value.map(<[u8]>::to_vec)));
        Ok(())
    }

    fn remove_entry(&self, p: &mut Pending, ks: u32, key: &[u8], meta: Meta) -> Result<()> {
        self.update_fingerprints(p, ks, key, Some(meta.hash), None)?;
        p.batch.delete_in(&self.state.versions, layout::version_key(ks, bucket_of(key), key));
        p.metas.insert((ks, key.to_vec()), (None, None));
        Ok(())
    }

    /// Writes the pending batch with the fingerprints it changed and the
    /// clock's high-water mark: one atomic write.
    fn commit(&self, mut p: Pending, clock: &Clock) -> Result<Vec<Change>> {
        if p.batch.is_empty() {
            return Ok(Vec::new());
        }
        for ((ks, level, node), f) in &p.fingerprints {
            p.batch.put_in(&self.state.fingerprints, layout::fingerprint_key(*ks, *level, *node), f.to_bytes());
        }
        p.batch.put_in(&self.state.meta, META_CLOCK, clock.last().0.to_le_bytes());
        self.db.write(p.batch)?;
        Ok(p.changes)
    }

    /// Applies entries received in one frame, each with its version check,
    /// in one atomic write.
    pub(crate) fn apply_received(&self, entries: &[(&Scope, &Entry)], from: ReplicaId) -> Result<(Vec<Applied>, Vec<Change>)> {
        let replicated = self.replicated()?;
        let resolvers = self.state.resolvers.read().clone();
        let mut clock = self.state.clock.lock();
        let wall = wall_clock_ms();
        let mut p = self.pending();
        p.from = from;
        let mut out = Vec::with_capacity(entries.len());
        let mut kinds = HashMap::new();
        for (scope, e) in entries {
            let name = scope.keyspace.as_deref().unwrap_or_default();
            let Some(keyspace) = replicated.iter().find(|k| k.name() == name) else {
                out.push(Applied::Refused);
                continue;
            };
            if e.key.is_empty() || clock.observe(e.version.hlc, wall).is_err() {
                out.push(Applied::Refused);
                continue;
            }
            let kind = match kinds.get(&keyspace.id()) {
                Some(k) => *k,
                None => *kinds.entry(keyspace.id()).or_insert(self.crdt_kind(keyspace)?),
            };
            if let Some(kind) = kind {
                out.push(self.apply_crdt(&mut p, &mut clock, wall, keyspace, kind, e)?);
                continue;
            }
            let local = self.meta_of(&mut p, keyspace.id(), &e.key)?;
            let Some(local) = local else {
                let arrived = clock.tick(wall);
                self.set_entry(&mut p, keyspace, &e.key, e.version, e.prev, e.value.as_deref(), arrived)?;
                out.push(Applied::Taken);
                continue;
            };
            if local.version == e.version {
                out.push(Applied::Kept);
                continue;
            }
            // Concurrent: neither write was made over the other.
            let concurrent = e.prev != local.version && local.prev != e.version;
            let mut take = e.version > local.version;
            if concurrent {
                if let Some(r) = resolvers.get(name) {
                    let local_entry = Entry {
                        key: e.key.clone(),
                        version: local.version,
                        prev: local.prev,
                        value: if local.tombstone { None } else { self.value_of(&p, keyspace, &e.key)? },
                    };
                    let (older, newer) = if local.version < e.version { (&local_entry, *e) } else { (*e, &local_entry) };
                    let winner = r.resolve(name, &e.key, older, newer);
                    take = (winner == Winner::Newer) == (e.version > local.version);
                }
                let (kept, lost) = if take { (e.version, local.version) } else { (local.version, e.version) };
                let at = clock.tick(wall);
                let record = ConflictRecord { at, keyspace: name.to_owned(), key: e.key.clone(), kept, lost };
                p.batch.put_in(&self.state.conflicts, at.0.to_be_bytes(), record.encode());
            }
            if take {
                let arrived = clock.tick(wall);
                self.set_entry(&mut p, keyspace, &e.key, e.version, e.prev, e.value.as_deref(), arrived)?;
            }
            out.push(match (take, concurrent) {
                (true, false) => Applied::Taken,
                (true, true) => Applied::TakenConflict,
                (false, false) => Applied::Kept,
                (false, true) => Applied::KeptConflict,
            });
        }
        let docs = std::mem::take(&mut p.merges.docs);
        let changes = self.commit(p, &clock)?;
        self.mirror_documents(docs)?;
        Ok((out, changes))
    }

    /// Whether the stored fingerprints of every replicated keyspace equal
    /// sums recomputed from its version records (a consistency check for
    /// tests and `verify`-like tools; reads the whole version index).
    #[doc(hidden)]
    pub fn fingerprints_match_versions(&self) -> Result<bool> {
        let _guard = self.state.clock.lock();
        let mut expected: BTreeMap<Vec<u8>, Fingerprint> = BTreeMap::new();
        for item in self.db.range_in(&self.state.versions, Bound::Unbounded, Bound::Unbounded, false, None)? {
            let (k, v) = item?;
            let meta = Meta::decode(&v).ok_or_else(|| Error::Internal("a sync version record that does not decode".into()))?;
            let (ks, key) = split_version_key(&k)?;
            for level in STORED_LEVELS {
                let slot = expected.entry(layout::fingerprint_key(ks, level, node_of(level, bucket_of(&key)))).or_default();
                *slot = slot.combine(Fingerprint::of_hash(meta.hash));
            }
        }
        let mut stored: BTreeMap<Vec<u8>, Fingerprint> = BTreeMap::new();
        for item in self.db.range_in(&self.state.fingerprints, Bound::Unbounded, Bound::Unbounded, false, None)? {
            let (k, v) = item?;
            let f = layout::decode_fingerprint(&v).ok_or_else(|| Error::Internal("a sync fingerprint that does not decode".into()))?;
            if f != Fingerprint::default() {
                stored.insert(k, f);
            }
        }
        Ok(stored == expected)
    }

    pub(crate) fn db(&self) -> &'db Db {
        self.db
    }

    pub(crate) fn versions_keyspace(&self) -> &Keyspace {
        &self.state.versions
    }

    pub(crate) fn fingerprints_keyspace(&self) -> &Keyspace {
        &self.state.fingerprints
    }

    pub(crate) fn replicated_by_name(&self, name: &str) -> Result<Option<Keyspace>> {
        self.replicated_keyspace(name)
    }

    pub(crate) fn clock(&self) -> &Mutex<Clock> {
        &self.state.clock
    }

    /// Reads the entry of `key` (value or tombstone) under the replication
    /// lock, so that its value and version belong together.
    pub(crate) fn read_entry(&self, keyspace: &Keyspace, key: &[u8]) -> Result<Option<Entry>> {
        let _guard = self.state.clock.lock();
        let mut p = self.pending();
        let Some(meta) = self.meta_of(&mut p, keyspace.id(), key)? else { return Ok(None) };
        if let Some(kind) = self.crdt_kind(keyspace)? {
            let Some(state) = self.crdt_wire_value(keyspace, kind, key)? else { return Ok(None) };
            return Ok(Some(Entry { key: key.to_vec(), version: meta.version, prev: meta.prev, value: Some(state) }));
        }
        let value = if meta.tombstone {
            None
        } else {
            match self.db.get_in(keyspace, key)? {
                Some(v) => Some(v),
                // Deleted by a write that bypassed the replica: not sent.
                None => return Ok(None),
            }
        };
        Ok(Some(Entry { key: key.to_vec(), version: meta.version, prev: meta.prev, value }))
    }
}

/// Splits a version index key into keyspace id and user key.
pub(crate) fn split_version_key(k: &[u8]) -> Result<(u32, Vec<u8>)> {
    let ks = k.get(..4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
    match (ks, k.get(6..)) {
        (Some(ks), Some(key)) => Ok((ks, key.to_vec())),
        _ => Err(Error::Internal("a sync version key shorter than its header".into())),
    }
}
