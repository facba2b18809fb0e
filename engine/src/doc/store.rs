//! The write side of the document store: collections, index definitions, index
//! entries, and the checker that walks documents and entries together.
//!
//! Every write (one document, an import batch, a slice of an index build) is
//! staged in an overlay and committed as one `WriteBatch` across the bodies,
//! entries and meta keyspaces, under the store's document write mutex, so a
//! document and its entries commit together or not at all and the unique
//! checks read a state no other document write can change underneath them.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use hkdf::hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::json::{self as docjson, encode_scalar, encoded_len, index_values};
use super::text;
use super::{IndexInfo, IndexKind, IndexSpec};
use crate::batch::WriteBatch;
use crate::db::{Db, Snapshot};
use crate::error::{Error, Result};
use crate::keyspace::{Keyspace, KeyspaceOptions};
use crate::Compression;

/// Longest collection name, in bytes.
pub const MAX_COLLECTION_NAME_BYTES: usize = 200;
/// Most documents one [`super::Documents::import`] call takes.
pub const MAX_IMPORT_DOCUMENTS: usize = 100_000;
/// Index entries an index build writes per batch.
pub(crate) const BUILD_BATCH_DOCUMENTS: usize = 1000;

/// The meta keyspace: index definitions and text statistics of every collection.
pub(crate) const META_KEYSPACE: &str = "_doc";
const BODIES_PREFIX: &str = "_docb:";
const ENTRIES_PREFIX: &str = "_doci:";
/// Meta key tags.
const META_DEFS: u8 = b'x';
const META_STATS: u8 = b's';
/// Version byte of a stored body and of a definitions record.
const BODY_VERSION: u8 = 1;
const DEFS_VERSION: u8 = 1;
/// Length of a keyed-hash token in an entry key.
pub(crate) const TOKEN_LEN: usize = 16;
/// Length of the index id that starts every entry key.
pub(crate) const INDEX_ID_LEN: usize = 4;

/// The report of [`super::Documents::check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// Documents walked.
    pub documents: u64,
    /// Index entries walked.
    pub entries: u64,
    /// Each disagreement found, in words (empty when all agree).
    pub problems: Vec<String>,
}

/// The keyspaces of one collection.
pub(crate) struct Collection {
    pub(crate) name: String,
    pub(crate) bodies: Keyspace,
    pub(crate) entries: Keyspace,
    pub(crate) meta: Keyspace,
}

/// One index definition as stored, plus its derived search key.
pub(crate) struct IndexDef {
    pub(crate) id: u32,
    pub(crate) field: String,
    pub(crate) kind: IndexKind,
    pub(crate) unique: bool,
    pub(crate) ready: bool,
    pub(crate) key: Zeroizing<[u8; 32]>,
}

impl IndexDef {
    pub(crate) fn prefix(&self) -> [u8; INDEX_ID_LEN] {
        self.id.to_be_bytes()
    }

    /// The token of a scalar value: its ordered encoding, or its keyed hash.
    pub(crate) fn value_token(&self, v: &Value) -> Option<Vec<u8>> {
        let mut enc = Vec::new();
        if !encode_scalar(v, &mut enc) {
            return None;
        }
        Some(match self.kind {
            IndexKind::Ordered => enc,
            IndexKind::Hashed | IndexKind::Text => self.hash(&enc),
        })
    }

    /// The token of a text term.
    pub(crate) fn term_token(&self, term: &str) -> Vec<u8> {
        self.hash(term.as_bytes())
    }

    fn hash(&self, bytes: &[u8]) -> Vec<u8> {
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.key[..]) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(bytes);
        let tag = mac.finalize().into_bytes();
        tag.get(..TOKEN_LEN).map(<[u8]>::to_vec).unwrap_or_default()
    }

    /// Length of the token at the start of `rest` (an entry key without its index id).
    pub(crate) fn token_len(&self, rest: &[u8]) -> Option<usize> {
        match self.kind {
            IndexKind::Ordered => encoded_len(rest),
            IndexKind::Hashed | IndexKind::Text => (rest.len() >= TOKEN_LEN).then_some(TOKEN_LEN),
        }
    }

    /// The entry key of a token for document `id`.
    pub(crate) fn entry_key(&self, token: &[u8], id: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(INDEX_ID_LEN + token.len() + id.len());
        key.extend_from_slice(&self.prefix());
        key.extend_from_slice(token);
        if !self.unique {
            key.extend_from_slice(id.as_bytes());
        }
        key
    }

    /// The `_id` an entry points at.
    pub(crate) fn entry_id<'a>(&self, key: &'a [u8], value: &'a [u8]) -> Option<&'a [u8]> {
        if self.unique {
            return Some(value);
        }
        let rest = key.get(INDEX_ID_LEN..)?;
        let len = self.token_len(rest)?;
        rest.get(len..)
    }

    /// The entries `doc` calls for: key and value.
    pub(crate) fn entries(&self, doc: &Value, id: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        match self.kind {
            IndexKind::Text => {
                let (tf, len) = text::term_frequencies(doc, &self.field);
                tf.into_iter()
                    .map(|(term, n)| {
                        let mut value = n.to_le_bytes().to_vec();
                        value.extend_from_slice(&len.to_le_bytes());
                        (self.entry_key(&self.term_token(&term), id), value)
                    })
                    .collect()
            }
            _ => index_values(doc, &self.field)
                .into_iter()
                .filter_map(|v| self.value_token(v))
                .map(|t| (self.entry_key(&t, id), if self.unique { id.as_bytes().to_vec() } else { Vec::new() }))
                .collect(),
        }
    }

    pub(crate) fn info(&self) -> IndexInfo {
        IndexInfo { field: self.field.clone(), kind: self.kind, unique: self.unique, ready: self.ready }
    }
}

/// The index definitions of a collection.
pub(crate) struct Defs {
    pub(crate) next_id: u32,
    pub(crate) list: Vec<IndexDef>,
}

impl Defs {
    /// Text indexes that are built.
    pub(crate) fn text_fields(&self) -> Vec<String> {
        self.list.iter().filter(|d| d.kind == IndexKind::Text).map(|d| d.field.clone()).collect()
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let list: Vec<Value> = self
            .list
            .iter()
            .map(|d| json!({"id": d.id, "field": d.field, "kind": d.kind.name(), "unique": d.unique, "ready": d.ready}))
            .collect();
        let mut out = vec![DEFS_VERSION];
        out.extend_from_slice(json!({"next": self.next_id, "indexes": list}).to_string().as_bytes());
        out
    }
}

pub(crate) fn corrupt(what: &str) -> Error {
    Error::Corruption { file: META_KEYSPACE.into(), offset: 0, reason: format!("document store: {what}") }
}

/// The search key of one collection's field: HKDF of the store's integrity
/// root with a purpose naming the collection and field (length-prefixed, so no
/// two pairs share a purpose).
pub(crate) fn search_key(db: &Db, collection: &str, field: &str) -> Zeroizing<[u8; 32]> {
    let cache_key = (collection.to_owned(), field.to_owned());
    if let Some(key) = db.doc_shared().search_keys.lock().get(&cache_key) {
        return key.clone();
    }
    let key = derive_search_key(db, collection, field);
    db.doc_shared().search_keys.lock().insert(cache_key, key.clone());
    key
}

fn derive_search_key(db: &Db, collection: &str, field: &str) -> Zeroizing<[u8; 32]> {
    let mut purpose = Zeroizing::new(b"doc-search ".to_vec());
    purpose.extend_from_slice(&(collection.len() as u32).to_le_bytes());
    purpose.extend_from_slice(collection.as_bytes());
    purpose.extend_from_slice(field.as_bytes());
    db.search_key(&purpose)
}

pub(crate) fn check_collection_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_COLLECTION_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "collection name must be 1..={MAX_COLLECTION_NAME_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

fn keyspace(db: &Db, name: &str, create: bool, options: KeyspaceOptions) -> Result<Option<Keyspace>> {
    if let Some(ks) = db.keyspace(name)? {
        return Ok(Some(ks));
    }
    if !create {
        return Ok(None);
    }
    match db.create_internal_keyspace(name, options) {
        Ok(ks) => Ok(Some(ks)),
        Err(Error::KeyspaceExists(_)) => db.keyspace(name),
        Err(e) => Err(e),
    }
}

/// Table settings of a new collection's bodies and entries keyspaces: blocks
/// stored uncompressed (still encrypted). Queries read bodies by point reads
/// spread over the whole keyspace, so most of them miss the block cache, and
/// decompressing a zstd block costs several times its decryption; documents
/// and entries are what a query reads, so they are kept ready to read.
/// Collections made before keep the settings they were made with (the
/// manifest records them per keyspace).
fn collection_keyspace_options() -> KeyspaceOptions {
    KeyspaceOptions::default().with_compression(Compression::None)
}

/// Data block size of a new collection's bodies keyspace: a point read that
/// misses the block cache reads, authenticates and decrypts one block, so
/// bodies are kept in small blocks (a few documents each).
const BODY_BLOCK_BYTES: usize = 1024;

/// The collection's keyspaces; `None` if it has none and `create` is false.
pub(crate) fn collection(db: &Db, name: &str, create: bool) -> Result<Option<Collection>> {
    check_collection_name(name)?;
    let Some(meta) = keyspace(db, META_KEYSPACE, create, KeyspaceOptions::default())? else { return Ok(None) };
    let Some(bodies) = keyspace(db, &format!("{BODIES_PREFIX}{name}"), create, collection_keyspace_options().with_block_size_bytes(BODY_BLOCK_BYTES))? else { return Ok(None) };
    let Some(entries) = keyspace(db, &format!("{ENTRIES_PREFIX}{name}"), create, collection_keyspace_options())? else {
        return Ok(None);
    };
    Ok(Some(Collection { name: name.to_owned(), bodies, entries, meta }))
}

pub(crate) fn defs_key(collection: &str) -> Vec<u8> {
    let mut key = vec![META_DEFS];
    key.extend_from_slice(collection.as_bytes());
    key
}

pub(crate) fn stats_key(collection: &str, id: u32) -> Vec<u8> {
    let mut key = vec![META_STATS];
    key.extend_from_slice(&id.to_be_bytes());
    key.extend_from_slice(collection.as_bytes());
    key
}

/// Reads the definitions of a collection (at `snapshot`, or now).
pub(crate) fn load_defs(db: &Db, coll: &Collection, snapshot: Option<&Snapshot>) -> Result<Defs> {
    let key = defs_key(&coll.name);
    let raw = match snapshot {
        Some(s) => db.get_at_in(&coll.meta, &key, s)?,
        None => db.get_in(&coll.meta, &key)?,
    };
    let Some(raw) = raw else { return Ok(Defs { next_id: 0, list: Vec::new() }) };
    decode_defs(db, coll, &raw)
}

/// [`load_defs`] for readers: the definitions at `snapshot`, decoded once per
/// stored version and shared (the bytes read are compared with those the
/// cached copy was decoded from, so a cached copy is never stale).
pub(crate) fn load_defs_shared(db: &Db, coll: &Collection, snapshot: &Snapshot) -> Result<Arc<Defs>> {
    let Some(raw) = db.get_at_in(&coll.meta, &defs_key(&coll.name), snapshot)? else {
        return Ok(Arc::new(Defs { next_id: 0, list: Vec::new() }));
    };
    if let Some((bytes, defs)) = db.doc_shared().defs_cache.lock().get(&coll.name) {
        if *bytes == raw {
            return Ok(Arc::clone(defs));
        }
    }
    let defs = Arc::new(decode_defs(db, coll, &raw)?);
    db.doc_shared().defs_cache.lock().insert(coll.name.clone(), (raw, Arc::clone(&defs)));
    Ok(defs)
}

fn decode_defs(db: &Db, coll: &Collection, raw: &[u8]) -> Result<Defs> {
    let (Some(&DEFS_VERSION), Some(body)) = (raw.first(), raw.get(1..)) else {
        return Err(corrupt("index definitions of an unknown version"));
    };
    let value: Value = serde_json::from_slice(body).map_err(|_| corrupt("index definitions are not JSON"))?;
    let next_id = value.get("next").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()).ok_or_else(|| corrupt("no next index id"))?;
    let mut list = Vec::new();
    for d in value.get("indexes").and_then(Value::as_array).ok_or_else(|| corrupt("no index list"))? {
        let field = d.get("field").and_then(Value::as_str).ok_or_else(|| corrupt("index without a field"))?.to_owned();
        let kind = match d.get("kind").and_then(Value::as_str) {
            Some("ordered") => IndexKind::Ordered,
            Some("hashed") => IndexKind::Hashed,
            Some("text") => IndexKind::Text,
            _ => return Err(corrupt("index of an unknown kind")),
        };
        let id = d.get("id").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()).ok_or_else(|| corrupt("index without an id"))?;
        let unique = d.get("unique").and_then(Value::as_bool).unwrap_or(false);
        let ready = d.get("ready").and_then(Value::as_bool).unwrap_or(false);
        let key = search_key(db, &coll.name, &field);
        list.push(IndexDef { id, field, kind, unique, ready, key });
    }
    Ok(Defs { next_id, list })
}

/// Text statistics of one text index: documents with words, and their words.
pub(crate) fn load_stats(db: &Db, coll: &Collection, id: u32, snapshot: Option<&Snapshot>) -> Result<(u64, u64)> {
    let key = stats_key(&coll.name, id);
    let raw = match snapshot {
        Some(s) => db.get_at_in(&coll.meta, &key, s)?,
        None => db.get_in(&coll.meta, &key)?,
    };
    Ok(decode_stats(raw.as_deref()))
}

fn decode_stats(raw: Option<&[u8]>) -> (u64, u64) {
    let field = |r: &[u8], at: usize| r.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes).unwrap_or(0);
    raw.map_or((0, 0), |r| (field(r, 0), field(r, 8)))
}

fn encode_stats(docs: u64, words: u64) -> Vec<u8> {
    let mut out = docs.to_le_bytes().to_vec();
    out.extend_from_slice(&words.to_le_bytes());
    out
}

/// The JSON text of a stored body of a known version (as `serde_json`
/// writes it), unparsed.
pub(crate) fn body_text(raw: &[u8]) -> Option<&[u8]> {
    match raw.first() {
        Some(&BODY_VERSION) => raw.get(1..),
        _ => None,
    }
}

/// Decodes a stored body.
pub(crate) fn decode_body(raw: &[u8]) -> Result<Value> {
    match (raw.first(), raw.get(1..)) {
        (Some(&BODY_VERSION), Some(body)) => serde_json::from_slice(body).map_err(|_| corrupt("a document body is not JSON")),
        _ => Err(corrupt("a document body of an unknown version")),
    }
}

fn encode_body(doc: &Value) -> Result<Vec<u8>> {
    let mut out = vec![BODY_VERSION];
    serde_json::to_writer(&mut out, doc).map_err(|e| Error::InvalidArgument(format!("cannot encode document: {e}")))?;
    if out.len() > docjson::MAX_DOCUMENT_BYTES {
        return Err(Error::InvalidArgument(format!("document of {} bytes exceeds {}", out.len(), docjson::MAX_DOCUMENT_BYTES)));
    }
    Ok(out)
}

/// Which keyspace a staged write goes to.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Space {
    Bodies,
    Entries,
    Meta,
}

/// Writes staged over the store's current state, committed as one batch.
pub(crate) struct Overlay<'a> {
    db: &'a Db,
    coll: &'a Collection,
    staged: BTreeMap<(Space, Vec<u8>), Option<Vec<u8>>>,
}

impl<'a> Overlay<'a> {
    pub(crate) fn new(db: &'a Db, coll: &'a Collection) -> Self {
        Overlay { db, coll, staged: BTreeMap::new() }
    }

    fn ks(&self, space: Space) -> &Keyspace {
        match space {
            Space::Bodies => &self.coll.bodies,
            Space::Entries => &self.coll.entries,
            Space::Meta => &self.coll.meta,
        }
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.staged.get(&(space, key.to_vec())) {
            Some(v) => Ok(v.clone()),
            None => self.db.get_in(self.ks(space), key),
        }
    }

    pub(crate) fn put(&mut self, space: Space, key: Vec<u8>, value: Vec<u8>) {
        self.staged.insert((space, key), Some(value));
    }

    pub(crate) fn delete(&mut self, space: Space, key: Vec<u8>) {
        self.staged.insert((space, key), None);
    }

    pub(crate) fn commit(self) -> Result<()> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::new();
        for ((space, key), value) in &self.staged {
            let ks = self.ks(*space);
            match value {
                Some(v) => batch.put_in(ks, key, v),
                None => batch.delete_in(ks, key),
            };
        }
        self.db.write(batch).map(|_| ())
    }

    /// Replaces the entries `old` called for under `def` with those `new` calls
    /// for, checking unique claims; adjusts text statistics.
    pub(crate) fn reindex(&mut self, def: &IndexDef, id: &str, old: Option<&Value>, new: Option<&Value>) -> Result<()> {
        let old_entries: BTreeMap<Vec<u8>, Vec<u8>> = old.map(|d| def.entries(d, id)).unwrap_or_default().into_iter().collect();
        let new_entries: BTreeMap<Vec<u8>, Vec<u8>> = new.map(|d| def.entries(d, id)).unwrap_or_default().into_iter().collect();
        for key in old_entries.keys().filter(|k| !new_entries.contains_key(*k)) {
            self.delete(Space::Entries, key.clone());
        }
        for (key, value) in &new_entries {
            if old_entries.get(key) == Some(value) {
                continue;
            }
            if def.unique {
                if let Some(owner) = self.get(Space::Entries, key)? {
                    if owner != id.as_bytes() {
                        return Err(Error::UniqueViolation {
                            collection: self.coll.name.clone(),
                            field: def.field.clone(),
                            id: id.to_owned(),
                            existing: String::from_utf8_lossy(&owner).into_owned(),
                        });
                    }
                }
            }
            self.put(Space::Entries, key.clone(), value.clone());
        }
        if def.kind == IndexKind::Text {
            let words = |d: Option<&Value>| d.map_or(0, |d| text::document_words(d, &def.field).len() as u64);
            let (ow, nw) = (words(old), words(new));
            if ow != nw || (ow > 0) != (nw > 0) {
                let key = stats_key(&self.coll.name, def.id);
                let (docs, total) = decode_stats(self.get(Space::Meta, &key)?.as_deref());
                let docs = (docs + u64::from(nw > 0)).saturating_sub(u64::from(ow > 0));
                let total = (total + nw).saturating_sub(ow);
                self.put(Space::Meta, key, encode_stats(docs, total));
            }
        }
        Ok(())
    }

    /// Stages `doc` (or the deletion of `id` when `None`) and its entries.
    fn write_document(&mut self, defs: &Defs, id: &str, doc: Option<&Value>) -> Result<bool> {
        let old = match self.get(Space::Bodies, id.as_bytes())? {
            Some(raw) => Some(decode_body(&raw)?),
            None => None,
        };
        for def in &defs.list {
            if !def.ready && !super::build::covers(self.db, &self.coll.name, def.id, id) {
                // A build in progress has not reached this document: it will
                // index the document as it then is.
                continue;
            }
            self.reindex(def, id, old.as_ref(), doc)?;
        }
        match doc {
            Some(doc) => self.put(Space::Bodies, id.as_bytes().to_vec(), encode_body(doc)?),
            None => self.delete(Space::Bodies, id.as_bytes().to_vec()),
        }
        Ok(old.is_some())
    }
}

fn doc_id(doc: &Value) -> Result<&str> {
    docjson::check_document(doc)?;
    doc.get("_id").and_then(Value::as_str).ok_or_else(|| Error::InvalidArgument("document \"_id\" must be a string".into()))
}

/// Stores `docs` in one batch.
pub(crate) fn import(db: &Db, name: &str, docs: &[Value]) -> Result<usize> {
    if docs.len() > MAX_IMPORT_DOCUMENTS {
        return Err(Error::InvalidArgument(format!("an import batch takes at most {MAX_IMPORT_DOCUMENTS} documents")));
    }
    check_collection_name(name)?;
    for doc in docs {
        doc_id(doc)?;
    }
    let _write = db.doc_shared().write.lock();
    let Some(coll) = collection(db, name, true)? else { return Err(Error::Internal("collection was not created".into())) };
    let defs = load_defs(db, &coll, None)?;
    let mut overlay = Overlay::new(db, &coll);
    for doc in docs {
        overlay.write_document(&defs, doc_id(doc)?, Some(doc))?;
    }
    overlay.commit()?;
    Ok(docs.len())
}

/// Reads one document.
pub(crate) fn get(db: &Db, name: &str, id: &str) -> Result<Option<Value>> {
    docjson::check_id(id)?;
    let Some(coll) = collection(db, name, false)? else { return Ok(None) };
    match db.get_in(&coll.bodies, id.as_bytes())? {
        Some(raw) => decode_body(&raw).map(Some),
        None => Ok(None),
    }
}

/// Deletes one document.
pub(crate) fn delete(db: &Db, name: &str, id: &str) -> Result<bool> {
    docjson::check_id(id)?;
    let _write = db.doc_shared().write.lock();
    let Some(coll) = collection(db, name, false)? else { return Ok(false) };
    let defs = load_defs(db, &coll, None)?;
    let mut overlay = Overlay::new(db, &coll);
    let existed = overlay.write_document(&defs, id, None)?;
    overlay.commit()?;
    Ok(existed)
}

/// Lists the indexes of a collection.
pub(crate) fn indexes(db: &Db, name: &str) -> Result<Vec<IndexInfo>> {
    let Some(coll) = collection(db, name, false)? else { return Ok(Vec::new()) };
    Ok(load_defs(db, &coll, None)?.list.iter().map(IndexDef::info).collect())
}

/// Lists collections.
pub(crate) fn collections(db: &Db) -> Result<Vec<String>> {
    let mut out: Vec<String> =
        db.keyspaces().iter().filter_map(|k| k.name().strip_prefix(BODIES_PREFIX).map(str::to_owned)).collect();
    out.sort();
    Ok(out)
}

/// Creates (or finishes building) an index, building it here, slice by slice
/// (see [`super::build`]).
pub(crate) fn create_index(db: &Db, name: &str, spec: &IndexSpec) -> Result<()> {
    super::build::start(db, name, spec)?.run()
}

pub(crate) fn index_range(def: &IndexDef) -> (Vec<u8>, Vec<u8>) {
    (def.prefix().to_vec(), (def.id + 1).to_be_bytes().to_vec())
}

pub(crate) fn clear_index(db: &Db, coll: &Collection, def: &IndexDef) -> Result<()> {
    let (start, end) = index_range(def);
    db.delete_range_in(&coll.entries, &start, &end)
}

/// Walks documents and entries of a collection (see [`super::Documents::check`]).
pub(crate) fn check(db: &Db, name: &str) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    let Some(coll) = collection(db, name, false)? else { return Ok(report) };
    let snapshot = db.snapshot();
    let defs = load_defs(db, &coll, Some(&snapshot))?;
    let mut expected: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut stats: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for item in db.range_in(&coll.bodies, Bound::Unbounded, Bound::Unbounded, false, Some(&snapshot))? {
        let (key, raw) = item?;
        report.documents += 1;
        let doc = decode_body(&raw)?;
        let id = String::from_utf8_lossy(&key).into_owned();
        if doc.get("_id").and_then(Value::as_str) != Some(id.as_str()) {
            report.problems.push(format!("document under key {id:?} has another _id"));
        }
        for def in defs.list.iter().filter(|d| d.ready) {
            for (k, v) in def.entries(&doc, &id) {
                if let Some(prev) = expected.insert(k, v) {
                    if def.unique && prev != id.as_bytes() {
                        report.problems.push(format!("unique index {} shared by {id:?} and another document", def.field));
                    }
                }
            }
            if def.kind == IndexKind::Text {
                let n = text::document_words(&doc, &def.field).len() as u64;
                let s = stats.entry(def.id).or_default();
                s.0 += u64::from(n > 0);
                s.1 += n;
            }
        }
    }
    let ready: BTreeSet<[u8; INDEX_ID_LEN]> = defs.list.iter().filter(|d| d.ready).map(IndexDef::prefix).collect();
    let known: BTreeSet<[u8; INDEX_ID_LEN]> = defs.list.iter().map(IndexDef::prefix).collect();
    for item in db.range_in(&coll.entries, Bound::Unbounded, Bound::Unbounded, false, Some(&snapshot))? {
        let (key, value) = item?;
        report.entries += 1;
        let prefix: Option<[u8; INDEX_ID_LEN]> = key.get(..INDEX_ID_LEN).and_then(|p| p.try_into().ok());
        match prefix {
            Some(p) if ready.contains(&p) => match expected.remove(&key) {
                Some(v) if v == value => {}
                Some(_) => report.problems.push(format!("index entry {} has a stale value", hex(&key))),
                None => report.problems.push(format!("index entry {} points at no document that calls for it", hex(&key))),
            },
            Some(p) if known.contains(&p) => {}
            _ => report.problems.push(format!("index entry {} belongs to no index", hex(&key))),
        }
    }
    for key in expected.keys() {
        report.problems.push(format!("index entry {} is missing", hex(key)));
    }
    for def in defs.list.iter().filter(|d| d.ready && d.kind == IndexKind::Text) {
        let want = stats.get(&def.id).copied().unwrap_or_default();
        let have = load_stats(db, &coll, def.id, Some(&snapshot))?;
        if want != have {
            report.problems.push(format!("text statistics of {} are {have:?}, documents say {want:?}", def.field));
        }
    }
    Ok(report)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::docs::Query;
    use crate::{Credential, Options};

    /// A build cut short (definition stored not ready, some entries written, a
    /// stray one among them) is ignored by queries and the checker, and the next
    /// `create_index` of the field clears and finishes it.
    #[test]
    fn an_interrupted_build_is_ignored_then_finished() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::create(dir.path(), &Credential::passphrase("p"), Options::tiny_for_tests()).unwrap();
        let docs = db.docs();
        for i in 0..20 {
            docs.put("c", &json!({"_id": format!("d{i}"), "v": i % 4})).unwrap();
        }
        let coll = collection(&db, "c", false).unwrap().unwrap();
        let mut defs = load_defs(&db, &coll, None).unwrap();
        let key = search_key(&db, "c", "v");
        defs.list.push(IndexDef { id: 0, field: "v".into(), kind: IndexKind::Ordered, unique: false, ready: false, key });
        defs.next_id = 1;
        let mut overlay = Overlay::new(&db, &coll);
        overlay.put(Space::Meta, defs_key("c"), defs.encode());
        let stray = defs.list[0].entry_key(&defs.list[0].value_token(&json!(99)).unwrap(), "gone");
        overlay.put(Space::Entries, stray.clone(), Vec::new());
        overlay.commit().unwrap();

        let q = Query::new(json!({"v": 1}));
        assert_eq!(docs.query("c", &q).unwrap().explain.index, None, "a build not finished is not used");
        assert!(docs.check("c").unwrap().problems.is_empty());
        assert!(!docs.indexes("c").unwrap()[0].ready);
        // A write meanwhile maintains it.
        docs.put("c", &json!({"_id": "d1", "v": 1, "w": true})).unwrap();

        docs.create_index("c", &IndexSpec::ordered("v")).unwrap();
        assert!(docs.indexes("c").unwrap()[0].ready);
        let r = docs.query("c", &q).unwrap();
        assert_eq!((r.explain.index.as_deref(), r.explain.returned, r.explain.examined), (Some("v"), 5, 5));
        assert_eq!(db.get_in(&coll.entries, &stray).unwrap(), None, "the stray entry is cleared");
        let report = docs.check("c").unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.entries, 20);
    }

    /// Search tokens stay valid across data-key rotation and master-key rekey:
    /// hashed and text indexes answer the same before and after, also reopened.
    #[test]
    fn tokens_survive_rotation_and_rekey() {
        let dir = tempfile::tempdir().unwrap();
        let cred = Credential::passphrase("p");
        let db = Db::create(dir.path(), &cred, Options::tiny_for_tests()).unwrap();
        let docs = db.docs();
        docs.create_index("c", &IndexSpec::hashed("h")).unwrap();
        docs.create_index("c", &IndexSpec::text("t")).unwrap();
        for i in 0..30 {
            docs.put("c", &json!({"_id": format!("d{i}"), "h": i % 3, "t": format!("alpha w{}", i % 5)})).unwrap();
        }
        let ask = |db: &Db| {
            let a = db.docs().query("c", &Query::new(json!({"h": 2}))).unwrap();
            let b = db.docs().query("c", &Query::new(json!({"$text": "W4 alpha"}))).unwrap();
            assert_eq!(a.explain.index.as_deref(), Some("h"));
            assert_eq!(b.explain.index.as_deref(), Some("t"));
            (a.documents.len(), b.documents.len())
        };
        assert_eq!(ask(&db), (10, 6));
        db.rotate_keys().unwrap();
        assert_eq!(ask(&db), (10, 6));
        db.rekey(&cred, None).unwrap();
        assert_eq!(ask(&db), (10, 6));
        db.close().unwrap();
        let db = Db::open(dir.path(), &cred, Options::tiny_for_tests()).unwrap();
        assert_eq!(ask(&db), (10, 6));
        assert!(db.docs().check("c").unwrap().problems.is_empty());
    }
}
