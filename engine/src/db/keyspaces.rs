//! Creating, dropping and listing keyspaces: each create or drop is one
//! manifest edit (`compaction/FORMAT.md`, tags 8 to 10), applied under the
//! version set's keyspace mutex so name checks and id assignment never race.

use crate::db::inner::Inner;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::keyspace::{Keyspace, KeyspaceOptions, DEFAULT_KEYSPACE, INTERNAL_KEYSPACE_PREFIX};

/// Who asks: the public API may not touch internal keyspaces.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Caller {
    User,
    Engine,
}

fn check_name(name: &str, caller: Caller) -> Result<()> {
    compaction::check_keyspace_name(name).map_err(Error::InvalidArgument)?;
    if caller == Caller::User && name.starts_with(INTERNAL_KEYSPACE_PREFIX) {
        return Err(Error::InvalidArgument(format!(
            "keyspace names starting with {INTERNAL_KEYSPACE_PREFIX:?} are reserved for the engine's own stores"
        )));
    }
    Ok(())
}

impl Inner {
    fn create_keyspace(&self, name: &str, options: &KeyspaceOptions, caller: Caller) -> Result<Keyspace> {
        check_name(name, caller)?;
        if name == DEFAULT_KEYSPACE || self.versions.current().keyspace_by_name(name).is_some() {
            return Err(Error::KeyspaceExists(name.to_owned()));
        }
        let options = options.encode()?;
        self.check_writable()?;
        self.restart_full_manifest()?;
        match self.versions.create_keyspace(name, options) {
            Ok(meta) => {
                // Its tables are built with its options from now on.
                self.ctx.set_keyspace_options(&meta);
                Ok(Keyspace::new(meta.id, &meta.name))
            }
            // Lost a race with another create of the same name.
            Err(compaction::Error::InvalidArgument(_)) if self.versions.current().keyspace_by_name(name).is_some() => {
                Err(Error::KeyspaceExists(name.to_owned()))
            }
            Err(e) => Err(self.manifest_edit_failed("creating a keyspace", e.into())),
        }
    }

    fn drop_keyspace(&self, name: &str, caller: Caller) -> Result<()> {
        check_name(name, caller)?;
        if name == DEFAULT_KEYSPACE {
            return Err(Error::InvalidArgument("the default keyspace cannot be dropped".into()));
        }
        let Some(meta) = self.versions.current().keyspace_by_name(name).cloned() else {
            return Err(Error::NoSuchKeyspace(name.to_owned()));
        };
        self.check_writable()?;
        // The writer mutex orders the drop with writes: a batch into the
        // keyspace is either appended before it or refused after it. `work`
        // keeps flushes and compactions out while the keyspace's levels go:
        // none is then writing a table for a keyspace that no longer exists.
        let _writer = self.pipeline.writer.lock();
        let _work = self.sched.work.lock();
        self.restart_full_manifest()?;
        match self.versions.drop_keyspace(meta.id) {
            Ok(true) => {
                // The keyspace's tables left the version with it: remove them
                // now (overwritten first when secure delete is on).
                self.delete_obsolete();
                Ok(())
            }
            // Another drop of it won the race.
            Ok(false) => Err(Error::NoSuchKeyspace(name.to_owned())),
            Err(e) => Err(self.manifest_edit_failed("dropping a keyspace", e.into())),
        }
    }

    /// A failed keyspace edit: a full disk fails only this call (the manifest is
    /// restarted by the next edit); anything else stops writes, as a failed
    /// flush edit does, since whether the edit is durable is unknown.
    fn manifest_edit_failed(&self, what: &str, e: Error) -> Error {
        if !e.is_storage_full() {
            self.record_failure(what, &e);
        }
        e
    }

    fn keyspace(&self, name: &str) -> Option<Keyspace> {
        if name == DEFAULT_KEYSPACE {
            return Some(Keyspace::new(compaction::DEFAULT_KEYSPACE_ID, DEFAULT_KEYSPACE));
        }
        self.versions.current().keyspace_by_name(name).map(|m| Keyspace::new(m.id, &m.name))
    }

    fn keyspaces(&self) -> Vec<Keyspace> {
        let version = self.versions.current();
        let mut out = vec![Keyspace::new(compaction::DEFAULT_KEYSPACE_ID, DEFAULT_KEYSPACE)];
        out.extend(version.keyspaces().map(|m| Keyspace::new(m.id, &m.name)));
        out
    }
}

impl Db {
    /// Creates keyspace `name` (1..=255 bytes of UTF-8) with `options`, durably
    /// (one manifest edit, synced before this returns). Names starting with `_`
    /// are reserved for the engine's own stores and refused with
    /// [`Error::InvalidArgument`]; a name in use (including
    /// [`crate::DEFAULT_KEYSPACE`]) is [`Error::KeyspaceExists`]. The new
    /// keyspace gets an id never used before in this store.
    pub fn create_keyspace(&self, name: &str, options: KeyspaceOptions) -> Result<Keyspace> {
        self.inner.create_keyspace(name, &options, Caller::User)
    }

    /// Like [`Db::create_keyspace`], but also accepts internal names (starting
    /// with `_`): for the engine's own stores, which keep their indexes and
    /// metadata in internal keyspaces. Not for applications.
    #[doc(hidden)]
    pub fn create_internal_keyspace(&self, name: &str, options: KeyspaceOptions) -> Result<Keyspace> {
        self.inner.create_keyspace(name, &options, Caller::Engine)
    }

    /// Drops keyspace `name` durably (one manifest edit); its id is never
    /// reused, and a keyspace created later under the same name is a new, empty
    /// one. [`Error::NoSuchKeyspace`] if no keyspace has that name; the default
    /// keyspace and internal keyspaces (names starting with `_`) are refused
    /// with [`Error::InvalidArgument`].
    pub fn drop_keyspace(&self, name: &str) -> Result<()> {
        self.inner.drop_keyspace(name, Caller::User)
    }

    /// Like [`Db::drop_keyspace`], but also drops internal keyspaces: for the
    /// engine's own stores. Not for applications.
    #[doc(hidden)]
    pub fn drop_internal_keyspace(&self, name: &str) -> Result<()> {
        self.inner.drop_keyspace(name, Caller::Engine)
    }

    /// The live keyspace named `name` (internal ones included), or `None`.
    /// [`crate::DEFAULT_KEYSPACE`] names the default keyspace, id 0.
    pub fn keyspace(&self, name: &str) -> Result<Option<Keyspace>> {
        Ok(self.inner.keyspace(name))
    }

    /// Every live keyspace: the default one first, then the others (internal
    /// ones included) in the order they were created.
    pub fn keyspaces(&self) -> Vec<Keyspace> {
        self.inner.keyspaces()
    }
}
