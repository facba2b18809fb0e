//! Replicated keys that merge instead of last-writer-wins (docs/design.md,
//! "Sync: merged counters, sets and document fields").
//!
//! A replicated keyspace whose merge operator is [`U64AddOperator`] holds
//! PN-counters, one whose operator is [`SortedSetUnion`] holds add-wins
//! observed-remove sets, and the keyspace `doc:NAME` made by
//! [`Replica::replicate_documents`] holds documents merged field by field.
//! The keyspace itself keeps the plain value (the counter's 8 bytes, the
//! encoded set, the merged document's JSON), so reads see what they always
//! saw; the merge state ([`sync::CrdtState`]) sits in the internal keyspace
//! `_sync_crdt` under `keyspace id u32 BE | key`, written in the same batch as
//! the value, its version record and the fingerprints. The state is what a
//! session sends as the entry's value and what the fingerprint hashes.
//!
//! Receiving a state joins it with the local one. The version a key ends
//! with is then a function of what both sides hold: the received entry's if
//! the join equals the received state, the local one's if it equals the local
//! state (the greater of the two when both are equal), else a new version
//! made here. So once two replicas hold equal states they hold equal
//! versions, and their fingerprints agree.

use std::collections::HashMap;

use serde_json::Value;
use sync::crdt::{CrdtKind, CrdtState, FieldMap};
use sync::fingerprint::{bucket_of, entry_hash};
use sync::hlc::{wall_clock_ms, Clock};
use sync::session::Applied;
use sync::{Entry, Hlc, Version};

use super::layout::{self, Meta};
use super::{internal_keyspace, Pending, Replica};
use crate::error::{Error, Result};
use crate::keyspace::{Keyspace, KeyspaceOptions};
use crate::merge::{SortedSetUnion, U64AddOperator};

/// Merge states: `keyspace id u32 BE | user key` -> [`CrdtState`] bytes.
pub(crate) const CRDT: &str = "_sync_crdt";
/// `_sync_meta` key prefix of a keyspace of documents merged by field: +
/// keyspace name -> keyspace id u32 LE.
pub(crate) const META_FIELDS: &[u8] = b"fields/";
/// `_sync_meta` key prefix of a merged document not yet copied into the
/// document store: + keyspace id u32 BE + document id -> empty.
pub(crate) const META_DOC_PENDING: &[u8] = b"docpending/";
/// Prefix of the replicated keyspace of a document collection.
pub const DOC_KEYSPACE_PREFIX: &str = "doc:";

/// The merge states and documents a pending batch changes.
#[derive(Default)]
pub(crate) struct PendingMerges {
    states: HashMap<(u32, Vec<u8>), CrdtState>,
    /// (collection, document id, merged document) to copy into the document
    /// store once the batch is written.
    pub(crate) docs: Vec<(String, String, Value)>,
}

fn state_key(ks: u32, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + key.len());
    out.extend_from_slice(&ks.to_be_bytes());
    out.extend_from_slice(key);
    out
}

fn named(prefix: &[u8], name: &str) -> Vec<u8> {
    let mut out = prefix.to_vec();
    out.extend_from_slice(name.as_bytes());
    out
}

/// The plain value a state reads as, or why the state cannot be one.
fn plain_value(state: &CrdtState, key: &[u8]) -> Result<Vec<u8>> {
    match state {
        CrdtState::Counter(c) => Ok(U64AddOperator::encode(c.value()).to_vec()),
        CrdtState::Set(s) => Ok(SortedSetUnion::encode(s.elements())),
        CrdtState::Fields(f) => serde_json::to_vec(&document(f, key)?).map_err(|e| Error::Internal(format!("a merged document: {e}"))),
    }
}

/// The document a field map reads as: its present fields and `_id` = the key.
fn document(fields: &FieldMap, key: &[u8]) -> Result<Value> {
    let id = std::str::from_utf8(key).map_err(|_| Error::InvalidArgument("a document id that is not UTF-8".into()))?;
    let mut doc = serde_json::Map::new();
    for (name, value) in fields.present() {
        let name = std::str::from_utf8(name).map_err(|_| Error::InvalidArgument("a document field name that is not UTF-8".into()))?;
        let value: Value =
            serde_json::from_slice(value).map_err(|e| Error::InvalidArgument(format!("document field {name:?} is not JSON: {e}")))?;
        doc.insert(name.to_owned(), value);
    }
    doc.insert("_id".to_owned(), Value::String(id.to_owned()));
    Ok(Value::Object(doc))
}

/// The signed change that takes a counter from `from` to `to` (modulo 2^64).
fn counter_delta(from: u64, to: u64) -> u64 {
    to.wrapping_sub(from)
}

impl Replica<'_> {
    /// The merge rule of replicated `keyspace`, if it merges.
    pub(crate) fn crdt_kind(&self, keyspace: &Keyspace) -> Result<Option<CrdtKind>> {
        if let Some(op) = self.db.options().merge_operators.get(keyspace.name()) {
            match op.name() {
                U64AddOperator::NAME => return Ok(Some(CrdtKind::Counter)),
                SortedSetUnion::NAME => return Ok(Some(CrdtKind::Set)),
                _ => {}
            }
        }
        let marked = self.db.get_in(&self.state.meta, &named(META_FIELDS, keyspace.name()))?;
        Ok(marked.filter(|v| v.as_slice() == keyspace.id().to_le_bytes()).map(|_| CrdtKind::Fields))
    }

    /// The merge state of `key`, as the pending batch leaves it.
    fn crdt_state_of(&self, p: &Pending, kind: CrdtKind, ks: u32, key: &[u8]) -> Result<Option<CrdtState>> {
        if let Some(s) = p.merges.states.get(&(ks, key.to_vec())) {
            return Ok(Some(s.clone()));
        }
        let Some(space) = self.db.keyspace(CRDT)? else { return Ok(None) };
        match self.db.get_in(&space, &state_key(ks, key))? {
            Some(b) => CrdtState::decode(kind, &b).map(Some).map_err(|e| Error::Internal(format!("a stored {e}"))),
            None => Ok(None),
        }
    }

    /// The bytes a session sends for `key` of merging `keyspace`: its state.
    pub(crate) fn crdt_wire_value(&self, keyspace: &Keyspace, kind: CrdtKind, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let p = self.pending();
        Ok(self.crdt_state_of(&p, kind, keyspace.id(), key)?.map(|s| s.encode()))
    }

    /// The merge state of `key` in replicated `keyspace` (a counter, set or
    /// document keyspace), or `None` if the key has none.
    pub fn merge_state(&self, keyspace: &Keyspace, key: &[u8]) -> Result<Option<CrdtState>> {
        let Some(kind) = self.crdt_kind(keyspace)? else { return Ok(None) };
        let _guard = self.state.clock.lock();
        self.crdt_state_of(&self.pending(), kind, keyspace.id(), key)
    }

    /// Adds the write of a merge state to the pending batch: the plain
    /// value, the state, the version record and the fingerprints.
    #[allow(clippy::too_many_arguments)]
    fn set_crdt_entry(
        &self,
        p: &mut Pending,
        keyspace: &Keyspace,
        key: &[u8],
        version: Version,
        prev: Version,
        state: CrdtState,
        arrived: Hlc,
    ) -> Result<()> {
        let ks = keyspace.id();
        let plain = plain_value(&state, key)?;
        let bytes = state.encode();
        let space = internal_keyspace(self.db, CRDT)?;
        let old = self.meta_of(p, ks, key)?;
        let hash = entry_hash(key, version, Some(&bytes));
        let meta = Meta { version, prev, tombstone: false, hash, arrived, from: p.from };
        self.update_fingerprints(p, ks, key, old.map(|m| m.hash), Some(hash))?;
        p.batch.put_in(keyspace, key, &plain);
        p.batch.put_in(&space, state_key(ks, key), &bytes);
        p.batch.put_in(&self.state.versions, layout::version_key(ks, bucket_of(key), key), meta.encode());
        if let (CrdtState::Fields(f), Some(collection)) = (&state, keyspace.name().strip_prefix(DOC_KEYSPACE_PREFIX)) {
            let id = String::from_utf8_lossy(key).into_owned();
            let mut mark = META_DOC_PENDING.to_vec();
            mark.extend_from_slice(&state_key(ks, key));
            p.batch.put_in(&self.state.meta, mark, []);
            p.merges.docs.push((collection.to_owned(), id, document(f, key)?));
        }
        p.metas.insert((ks, key.to_vec()), (Some(meta), Some(plain)));
        p.merges.states.insert((ks, key.to_vec()), state);
        Ok(())
    }

    /// Changes the merge state of `key` by a local operation: `op` gets the
    /// current state (empty for a new key) and the operation's version.
    pub(super) fn crdt_local(
        &self,
        p: &mut Pending,
        clock: &mut Clock,
        keyspace: &Keyspace,
        kind: CrdtKind,
        key: &[u8],
        op: &mut dyn FnMut(&mut CrdtState, Version) -> Result<()>,
    ) -> Result<Version> {
        if key.is_empty() {
            return Err(Error::InvalidArgument("an empty key".into()));
        }
        let prev = self.meta_of(p, keyspace.id(), key)?.map(|m| m.version).unwrap_or_default();
        let mut state = self.crdt_state_of(p, kind, keyspace.id(), key)?.unwrap_or_else(|| CrdtState::empty(kind));
        let version = Version { hlc: clock.tick(wall_clock_ms()), replica: self.state.id };
        op(&mut state, version)?;
        self.set_crdt_entry(p, keyspace, key, version, prev, state, version.hlc)?;
        Ok(version)
    }

    /// A put (`Some`) or delete (`None`) of a plain value in a merging
    /// keyspace, as a merge operation: a counter adds the difference to the
    /// new value (a delete brings it to 0); a set removes the elements it
    /// holds that the new value lacks and adds the others (a delete removes
    /// every element it holds); a document sets the fields that changed and
    /// deletes the fields it lacks (a delete deletes every field).
    pub(super) fn crdt_assign(
        &self,
        p: &mut Pending,
        clock: &mut Clock,
        keyspace: &Keyspace,
        kind: CrdtKind,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<Version> {
        let id = self.state.id;
        let mut op = |state: &mut CrdtState, version: Version| -> Result<()> {
            match state {
                CrdtState::Counter(c) => {
                    let target = value.map(U64AddOperator::decode).transpose().map_err(|e| Error::InvalidArgument(e.to_string()))?;
                    c.add(id, counter_delta(c.value(), target.unwrap_or(0))).map_err(|e| Error::InvalidArgument(e.to_string()))
                }
                CrdtState::Set(s) => {
                    let target = match value {
                        Some(v) => SortedSetUnion::decode(v).map_err(|e| Error::InvalidArgument(e.to_string()))?,
                        None => Vec::new(),
                    };
                    for e in s.elements() {
                        if target.binary_search(&e).is_err() {
                            s.remove(&e, version);
                        }
                    }
                    for e in &target {
                        if !s.contains(e) {
                            s.add(e, version);
                        }
                    }
                    Ok(())
                }
                CrdtState::Fields(f) => {
                    let doc: serde_json::Map<String, Value> = match value {
                        Some(v) => match serde_json::from_slice(v) {
                            Ok(Value::Object(m)) => m,
                            _ => return Err(Error::InvalidArgument("a replicated document is a JSON object".into())),
                        },
                        None => serde_json::Map::new(),
                    };
                    set_fields(f, &doc, version)
                }
            }
        };
        self.crdt_local(p, clock, keyspace, kind, key, &mut op)
    }

    /// Joins a received merge state with the local one (see the module
    /// documentation for the version the key ends with).
    pub(super) fn apply_crdt(
        &self,
        p: &mut Pending,
        clock: &mut Clock,
        wall: u64,
        keyspace: &Keyspace,
        kind: CrdtKind,
        e: &Entry,
    ) -> Result<Applied> {
        let Some(bytes) = e.value.as_deref() else { return Ok(Applied::Refused) };
        let Ok(remote) = CrdtState::decode(kind, bytes) else { return Ok(Applied::Refused) };
        if plain_value(&remote, &e.key).is_err() {
            return Ok(Applied::Refused);
        }
        let ks = keyspace.id();
        let local_meta = self.meta_of(p, ks, &e.key)?;
        if local_meta.is_some_and(|m| m.version == e.version) {
            return Ok(Applied::Kept);
        }
        let local = self.crdt_state_of(p, kind, ks, &e.key)?;
        let (Some(meta), Some(local)) = (local_meta, local) else {
            let arrived = clock.tick(wall);
            self.set_crdt_entry(p, keyspace, &e.key, e.version, e.prev, remote, arrived)?;
            return Ok(Applied::Taken);
        };
        let joined = local.join(&remote).map_err(|err| Error::Internal(err.to_string()))?;
        let (same_local, same_remote) = (joined == local, joined == remote);
        if same_remote && (!same_local || e.version > meta.version) {
            let arrived = clock.tick(wall);
            self.set_crdt_entry(p, keyspace, &e.key, e.version, e.prev, remote, arrived)?;
            return Ok(Applied::Taken);
        }
        if same_local {
            return Ok(Applied::Kept);
        }
        let version = Version { hlc: clock.tick(wall), replica: self.state.id };
        self.set_crdt_entry(p, keyspace, &e.key, version, meta.version, joined, version.hlc)?;
        Ok(Applied::Taken)
    }

    /// Copies the documents a written batch merged into the document store,
    /// then drops their pending marks. Called with the replication lock
    /// held, so that the copies of two writes (or sessions) land in the
    /// order of the writes and the document store never ends on an older one.
    pub(crate) fn mirror_documents(&self, docs: Vec<(String, String, Value)>) -> Result<()> {
        for (collection, id, doc) in docs {
            self.mirror_document(&collection, &id, &doc)?;
        }
        Ok(())
    }

    fn mirror_document(&self, collection: &str, id: &str, doc: &Value) -> Result<()> {
        let only_id = doc.as_object().is_some_and(|m| m.len() == 1);
        if only_id {
            self.db.docs().delete(collection, id)?;
        } else {
            self.db.docs().put(collection, doc)?;
        }
        if let Some(ks) = self.db.keyspace(&format!("{DOC_KEYSPACE_PREFIX}{collection}"))? {
            let mut mark = META_DOC_PENDING.to_vec();
            mark.extend_from_slice(&state_key(ks.id(), id.as_bytes()));
            self.db.delete_in(&self.state.meta, &mark)?;
        }
        Ok(())
    }

    /// Replicates the document collection `collection`: its documents are
    /// kept, merged field by field, in the replicated keyspace
    /// `doc:COLLECTION` (made here), and every merged document is copied into
    /// the document store ([`crate::Db::docs`]), which stays the place to read
    /// and query them. Write them with [`Replica::put_document`] and
    /// [`Replica::delete_document`]. Documents already in the collection are
    /// taken in as written now. Call it at each open: it also finishes the
    /// copies into the document store that a crash interrupted.
    pub fn replicate_documents(&self, collection: &str) -> Result<Keyspace> {
        let name = format!("{DOC_KEYSPACE_PREFIX}{collection}");
        let keyspace = match self.db.keyspace(&name)? {
            Some(k) => k,
            None => self.db.create_keyspace(&name, KeyspaceOptions::default())?,
        };
        let mark = named(META_FIELDS, &name);
        let fresh = self.db.get_in(&self.state.meta, &mark)?.as_deref() != Some(&keyspace.id().to_le_bytes()[..]);
        if fresh {
            self.db.put_in(&self.state.meta, &mark, &keyspace.id().to_le_bytes())?;
            self.replicate(&keyspace)?;
            if self.db.docs().collections()?.iter().any(|c| c == collection) {
                let existing = self.db.docs().query(collection, &crate::docs::Query::new(serde_json::json!({})))?;
                for doc in existing.documents {
                    if self.db.get_in(&keyspace, doc_key(&doc)?.as_bytes())?.is_none() {
                        self.put_document(collection, &doc)?;
                    }
                }
            }
        } else {
            self.replicate(&keyspace)?;
        }
        // Copies a crash cut short.
        let mut prefix = META_DOC_PENDING.to_vec();
        prefix.extend_from_slice(&keyspace.id().to_be_bytes());
        let pending: Vec<Vec<u8>> = self.db.scan_prefix_in(&self.state.meta, &prefix)?.map(|r| r.map(|(k, _)| k)).collect::<Result<_>>()?;
        for k in pending {
            let id = k.get(prefix.len()..).unwrap_or_default();
            let _guard = self.state.clock.lock();
            let p = self.pending();
            if let Some(CrdtState::Fields(f)) = self.crdt_state_of(&p, CrdtKind::Fields, keyspace.id(), id)? {
                self.mirror_document(collection, &String::from_utf8_lossy(id), &document(&f, id)?)?;
            }
        }
        Ok(keyspace)
    }

    fn document_keyspace(&self, collection: &str) -> Result<Keyspace> {
        let name = format!("{DOC_KEYSPACE_PREFIX}{collection}");
        match self.db.keyspace(&name)? {
            Some(k) if self.crdt_kind(&k)? == Some(CrdtKind::Fields) => Ok(k),
            _ => Err(Error::InvalidArgument(format!("collection {collection:?} is not replicated (Replica::replicate_documents)"))),
        }
    }

    /// Stores `doc` (an object with a string `_id`) in replicated collection
    /// `collection`: the top-level fields that differ from the merged
    /// document get this write's version, the fields it lacks are deleted,
    /// and the merged document is copied into the document store. Concurrent
    /// writes of different fields on other devices both survive a sync; of
    /// one field, the later write wins.
    pub fn put_document(&self, collection: &str, doc: &Value) -> Result<Version> {
        let keyspace = self.document_keyspace(collection)?;
        let id = doc_key(doc)?;
        let bytes = serde_json::to_vec(doc).map_err(|e| Error::InvalidArgument(format!("a document: {e}")))?;
        self.merge_write(&keyspace, CrdtKind::Fields, id.as_bytes(), Some(&bytes))
    }

    /// Deletes document `id` of replicated collection `collection` (every
    /// field it has is deleted with this write's version; a field a peer
    /// sets concurrently survives the sync and brings the document back with
    /// that field alone).
    pub fn delete_document(&self, collection: &str, id: &str) -> Result<Version> {
        let keyspace = self.document_keyspace(collection)?;
        self.merge_write(&keyspace, CrdtKind::Fields, id.as_bytes(), None)
    }

    pub(crate) fn merge_write(&self, keyspace: &Keyspace, kind: CrdtKind, key: &[u8], value: Option<&[u8]>) -> Result<Version> {
        let mut clock = self.state.clock.lock();
        let mut p = self.pending();
        let version = self.crdt_assign(&mut p, &mut clock, keyspace, kind, key, value)?;
        let docs = std::mem::take(&mut p.merges.docs);
        self.commit(p, &clock)?;
        self.mirror_documents(docs)?;
        Ok(version)
    }

    /// Merges `operand` into `key` of replicated `keyspace`, whose merge
    /// operator makes it a replicated counter or set: a counter operand
    /// ([`U64AddOperator::encode`], a wrapping signed change) adds to this
    /// replica's share of the PN-counter; a set operand
    /// ([`SortedSetUnion::encode`]) adds its elements. Concurrent merges on
    /// other devices all count after a sync. Any other keyspace is refused.
    pub fn merge(&self, keyspace: &Keyspace, key: &[u8], operand: &[u8]) -> Result<Version> {
        self.check_replicated(keyspace)?;
        let kind = match self.crdt_kind(keyspace)? {
            Some(k @ (CrdtKind::Counter | CrdtKind::Set)) => k,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "keyspace {:?} has no replicated merge operator (U64AddOperator or SortedSetUnion)",
                    keyspace.name()
                )))
            }
        };
        let id = self.state.id;
        let mut op = |state: &mut CrdtState, version: Version| -> Result<()> {
            match state {
                CrdtState::Counter(c) => {
                    let delta = U64AddOperator::decode(operand).map_err(|e| Error::InvalidArgument(e.to_string()))?;
                    c.add(id, delta).map_err(|e| Error::InvalidArgument(e.to_string()))
                }
                CrdtState::Set(s) => {
                    for e in SortedSetUnion::decode(operand).map_err(|e| Error::InvalidArgument(e.to_string()))? {
                        s.add(&e, version);
                    }
                    Ok(())
                }
                CrdtState::Fields(_) => Err(Error::Internal("a merge into a document keyspace".into())),
            }
        };
        let mut clock = self.state.clock.lock();
        let mut p = self.pending();
        let version = self.crdt_local(&mut p, &mut clock, keyspace, kind, key, &mut op)?;
        self.commit(p, &clock)?;
        Ok(version)
    }

    /// Removes `elements` from the replicated set under `key` of `keyspace`
    /// (a [`SortedSetUnion`] keyspace): the elements as this replica holds
    /// them now; an add made concurrently on another device survives.
    pub fn remove_from_set(&self, keyspace: &Keyspace, key: &[u8], elements: &[&[u8]]) -> Result<Version> {
        self.check_replicated(keyspace)?;
        if self.crdt_kind(keyspace)? != Some(CrdtKind::Set) {
            return Err(Error::InvalidArgument(format!("keyspace {:?} does not hold replicated sets (SortedSetUnion)", keyspace.name())));
        }
        let mut op = |state: &mut CrdtState, version: Version| -> Result<()> {
            if let CrdtState::Set(s) = state {
                for e in elements {
                    s.remove(e, version);
                }
            }
            Ok(())
        };
        let mut clock = self.state.clock.lock();
        let mut p = self.pending();
        let version = self.crdt_local(&mut p, &mut clock, keyspace, CrdtKind::Set, key, &mut op)?;
        self.commit(p, &clock)?;
        Ok(version)
    }

    /// Whether keyspace `name` merges (its sessions exchange both entries
    /// of a key whose versions differ).
    pub(crate) fn merges_by_name(&self, name: &str) -> bool {
        match self.replicated_keyspace(name) {
            Ok(Some(k)) => matches!(self.crdt_kind(&k), Ok(Some(_))),
            _ => false,
        }
    }
}

/// Sets the fields of `doc` (all but `_id`) that differ from `f` and deletes
/// those `f` has that `doc` lacks, by the write `version`.
fn set_fields(f: &mut FieldMap, doc: &serde_json::Map<String, Value>, version: Version) -> Result<()> {
    for (name, value) in doc {
        if name == "_id" {
            continue;
        }
        let bytes = serde_json::to_vec(value).map_err(|e| Error::InvalidArgument(format!("document field {name:?}: {e}")))?;
        if f.get(name.as_bytes()) != Some(bytes.as_slice()) {
            f.set(name.as_bytes(), Some(bytes), version);
        }
    }
    let gone: Vec<Vec<u8>> =
        f.present().map(|(k, _)| k.to_vec()).filter(|k| !doc.contains_key(String::from_utf8_lossy(k).as_ref())).collect();
    for k in gone {
        f.set(&k, None, version);
    }
    Ok(())
}

fn doc_key(doc: &Value) -> Result<String> {
    doc.get("_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Error::InvalidArgument("document \"_id\" must be a non-empty string".into()))
}
