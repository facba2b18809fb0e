//! Index builds, in slices: an [`IndexBuild`] indexes the existing documents
//! of a collection [`BUILD_BATCH_DOCUMENTS`] at a time, each slice one batch
//! under the document write mutex, so document writes go on between slices
//! and the caller chooses where the work runs (here, or on a thread of its
//! own: [`super::Documents::create_index_in_background`]).
//!
//! Correctness rests on a build cursor kept in memory per (collection, index):
//! the last `_id` a slice has indexed. Document writes maintain an index that
//! is not ready only for `_id`s at or before the cursor (the part already
//! built); later documents are left to the build, which indexes each document
//! as it is when its slice runs. Text statistics follow the same split, so
//! they count every document exactly once. Queries ignore the index until the
//! last slice stores it as ready, in the same batch as its last entries.
//!
//! A crash (or a build dropped unfinished) leaves the definition stored not
//! ready and no cursor: queries keep ignoring the index, writes maintain it
//! fully (harmless), and the next build of it clears its entries and
//! statistics and starts over from the first document.

use std::collections::HashMap;
use std::ops::Bound;

use super::store::{self, Collection, Defs, IndexDef, Overlay, Space, BUILD_BATCH_DOCUMENTS};
use super::{json as docjson, IndexKind, IndexSpec};
use crate::db::Db;
use crate::error::{Error, Result};

/// Build cursors by collection, then index id: `None` until the first slice
/// commits, then the last `_id` indexed. Read and changed under the document
/// write mutex only.
pub(crate) type BuildCursors = HashMap<String, HashMap<u32, Option<Vec<u8>>>>;

/// Whether a document write of `id` must maintain not-ready index `index` of
/// `collection`: yes unless a build is running that has not reached `id`.
/// Called with the document write mutex held.
pub(crate) fn covers(db: &Db, collection: &str, index: u32, id: &str) -> bool {
    let cursors = db.doc_shared().builds.lock();
    match cursors.get(collection).and_then(|m| m.get(&index)) {
        None => true,
        Some(None) => false,
        Some(Some(last)) => id.as_bytes() <= last.as_slice(),
    }
}

fn set_cursor(db: &Db, collection: &str, index: u32, cursor: Option<Option<Vec<u8>>>) {
    let mut cursors = db.doc_shared().builds.lock();
    match cursor {
        Some(c) => {
            cursors.entry(collection.to_owned()).or_default().insert(index, c);
        }
        None => {
            if let Some(m) = cursors.get_mut(collection) {
                m.remove(&index);
                if m.is_empty() {
                    cursors.remove(collection);
                }
            }
        }
    }
}

fn cursor(db: &Db, collection: &str, index: u32) -> Option<Vec<u8>> {
    db.doc_shared().builds.lock().get(collection).and_then(|m| m.get(&index)).cloned().flatten()
}

/// An index build under way: each [`IndexBuild::step`] indexes the next slice
/// of documents; the index is used by queries once the last step has run.
/// Dropping it unfinished leaves the index not ready (the next
/// [`super::Documents::create_index`] of it starts over).
#[must_use = "an index build does nothing until it is stepped or run"]
pub struct IndexBuild<'db> {
    db: &'db Db,
    collection: String,
    index: u32,
    documents: u64,
    done: bool,
}

impl std::fmt::Debug for IndexBuild<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexBuild")
            .field("collection", &self.collection)
            .field("index", &self.index)
            .field("documents", &self.documents)
            .field("done", &self.done)
            .finish()
    }
}

/// Stores the definition of `spec` (not ready), clears whatever an earlier
/// interrupted build of it left, and returns the build. An index that is
/// already built gives a build that is already done.
pub(crate) fn start<'db>(db: &'db Db, name: &str, spec: &IndexSpec) -> Result<IndexBuild<'db>> {
    docjson::check_path(&spec.field)?;
    if spec.unique && spec.kind == IndexKind::Text {
        return Err(Error::InvalidArgument("a text index cannot be unique".into()));
    }
    if spec.field == "_id" {
        return Err(Error::InvalidArgument("\"_id\" is the primary key: it needs no index".into()));
    }
    let _write = db.doc_shared().write.lock();
    let Some(coll) = store::collection(db, name, true)? else { return Err(Error::Internal("collection was not created".into())) };
    let mut defs = store::load_defs(db, &coll, None)?;
    let mut build = IndexBuild { db, collection: name.to_owned(), index: 0, documents: 0, done: false };
    build.index = match defs.list.iter().find(|d| d.field == spec.field) {
        Some(d) if d.kind != spec.kind || d.unique != spec.unique => {
            return Err(Error::InvalidArgument(format!(
                "{name}.{} already has a{} {} index",
                spec.field,
                if d.unique { " unique" } else { "n" },
                d.kind.name()
            )))
        }
        Some(d) if d.ready => {
            build.index = d.id;
            build.done = true;
            return Ok(build);
        }
        Some(d) => d.id,
        None => {
            let id = defs.next_id;
            defs.next_id = id.checked_add(1).ok_or_else(|| Error::InvalidArgument("no index ids left".into()))?;
            let key = store::search_key(db, name, &spec.field);
            defs.list.push(IndexDef { id, field: spec.field.clone(), kind: spec.kind, unique: spec.unique, ready: false, key });
            id
        }
    };
    // The definition goes first, marked not ready, with the cursor before the
    // first document: from here writes maintain the built part only.
    let mut staged = Overlay::new(db, &coll);
    staged.put(Space::Meta, store::defs_key(name), defs.encode());
    staged.delete(Space::Meta, store::stats_key(name, build.index));
    staged.commit()?;
    if let Some(def) = defs.list.iter().find(|d| d.id == build.index) {
        store::clear_index(db, &coll, def)?;
    }
    set_cursor(db, name, build.index, Some(None));
    Ok(build)
}

impl IndexBuild<'_> {
    /// Indexes the next slice of documents; `true` once the index is built
    /// and ready (further steps do nothing). A unique index that the
    /// documents violate is removed again and the step fails with
    /// [`crate::Error::UniqueViolation`].
    pub fn step(&mut self) -> Result<bool> {
        if self.done {
            return Ok(true);
        }
        let db = self.db;
        let _write = db.doc_shared().write.lock();
        let Some(coll) = store::collection(db, &self.collection, false)? else {
            return Err(Error::Internal("the collection of an index build vanished".into()));
        };
        let mut defs = store::load_defs(db, &coll, None)?;
        let Some(pos) = defs.list.iter().position(|d| d.id == self.index) else {
            return Err(Error::InvalidArgument(format!("the index being built on {:?} was removed", self.collection)));
        };
        if defs.list.get(pos).is_some_and(|d| d.ready) {
            set_cursor(db, &self.collection, self.index, None);
            self.done = true;
            return Ok(true);
        }
        match self.slice(&coll, &mut defs, pos) {
            Ok(done) => {
                self.done = done;
                Ok(done)
            }
            Err(e) => {
                self.fail(&coll, defs, pos)?;
                Err(e)
            }
        }
    }

    /// Runs the remaining steps.
    pub fn run(mut self) -> Result<()> {
        while !self.step()? {}
        Ok(())
    }

    /// Documents indexed so far by this build.
    pub fn documents(&self) -> u64 {
        self.documents
    }

    /// Whether the index is built.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// One slice, committed with the definition marked ready when it is the last.
    fn slice(&mut self, coll: &Collection, defs: &mut Defs, pos: usize) -> Result<bool> {
        let db = self.db;
        let Some(def) = defs.list.get(pos) else { return Err(Error::Internal("index definition vanished".into())) };
        let after = cursor(db, &self.collection, self.index);
        let start = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let mut it = db.range_in(&coll.bodies, start, Bound::Unbounded, false, None)?;
        let mut overlay = Overlay::new(db, coll);
        let mut last = None;
        let mut n = 0;
        while n < BUILD_BATCH_DOCUMENTS {
            let Some(item) = it.next_ref() else { break };
            let (key, raw) = item?;
            let doc = store::decode_body(raw)?;
            let id = std::str::from_utf8(key).map_err(|_| store::corrupt("a document key is not UTF-8"))?;
            overlay.reindex(def, id, None, Some(&doc))?;
            last = Some(key.to_vec());
            n += 1;
        }
        drop(it);
        let done = n < BUILD_BATCH_DOCUMENTS;
        if done {
            if let Some(d) = defs.list.get_mut(pos) {
                d.ready = true;
            }
            overlay.put(Space::Meta, store::defs_key(&self.collection), defs.encode());
        }
        overlay.commit()?;
        self.documents += n as u64;
        if done {
            set_cursor(db, &self.collection, self.index, None);
        } else if let Some(last) = last {
            set_cursor(db, &self.collection, self.index, Some(Some(last)));
        }
        Ok(done)
    }

    /// Removes the index after a failed slice (nothing of the slice was written).
    fn fail(&mut self, coll: &Collection, mut defs: Defs, pos: usize) -> Result<()> {
        self.done = true;
        set_cursor(self.db, &self.collection, self.index, None);
        let def = defs.list.remove(pos);
        store::clear_index(self.db, coll, &def)?;
        let mut finish = Overlay::new(self.db, coll);
        finish.put(Space::Meta, store::defs_key(&self.collection), defs.encode());
        finish.delete(Space::Meta, store::stats_key(&self.collection, self.index));
        finish.commit()
    }
}
