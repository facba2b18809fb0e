//! Writing the output tables of a flush or of one part of a compaction: tables
//! one after another, cut near a target size but never between two versions of
//! one user key, with every file created remembered so that a failure removes
//! them all.
//!
//! A writer's tables belong to the store only once [`commit`] has synced the
//! directory and disarmed it; a writer dropped before that (an error in this part
//! or in another part of the same compaction, or a panic) removes its files.

use std::path::PathBuf;

use index::{Entry, TableBuilder, TableCache, TableContext, TableReason};

use crate::compact::CompactionContext;
use crate::edit::FileMeta;
use crate::error::{Error, Result};
use crate::hooks::TableHooks;

fn table_name(number: u64) -> String {
    crypto::names::table_file(number)
}

/// Writes tables one after another for one flush or one part of a compaction.
pub(crate) struct TableWriter<'a> {
    ctx: &'a CompactionContext,
    open: Option<(u64, u32, TableBuilder)>,
    last_user_key: Vec<u8>,
    finished: Vec<FileMeta>,
    created: Vec<PathBuf>,
    /// The keyspace whose keys the tables hold.
    keyspace: u32,
    /// How its tables are built.
    table: index::TableOptions,
    /// The keyspace's hooks, and why its tables are written (for the collector).
    hooks: &'a TableHooks,
    reason: TableReason,
}

impl<'a> TableWriter<'a> {
    /// A writer of tables of `keyspace` for `reason`, each given a collector of
    /// `hooks`' factory, if any.
    pub(crate) fn new(ctx: &'a CompactionContext, keyspace: u32, hooks: &'a TableHooks, reason: TableReason) -> Self {
        let table = ctx.table_options(keyspace);
        TableWriter {
            ctx,
            open: None,
            last_user_key: Vec::new(),
            finished: Vec::new(),
            created: Vec::new(),
            keyspace,
            table,
            hooks,
            reason,
        }
    }

    fn start(&mut self, number: u64) -> Result<()> {
        let name = table_name(number);
        let path = TableCache::table_path(&self.ctx.dir, number);
        // Read before the builder picks its key: if a rotation slips in between,
        // the recorded epoch is the older one, which keeps that epoch alive longer
        // (safe) rather than letting it be destroyed early.
        let epoch = self.ctx.keys.current_epoch();
        let file = self.ctx.vfs.create(&path).map_err(|e| Error::io(&name, e))?;
        self.created.push(path);
        let mut builder = TableBuilder::new(file, &self.ctx.keys, number, &name, self.table.clone())?;
        if let Some(factory) = &self.hooks.properties {
            builder.set_properties_collector(factory.create(&TableContext::new(number, self.reason)));
        }
        self.open = Some((number, epoch, builder));
        Ok(())
    }

    /// Adds `entry`, first closing the open table if it is full and `entry`
    /// starts a new user key (a key's versions never straddle two tables, which
    /// is what keeps tables of one level disjoint in user keys).
    pub(crate) fn add(&mut self, entry: &Entry, split_at_bytes: Option<u64>, new_file_number: &dyn Fn() -> u64) -> Result<()> {
        let user_key = entry.key.user_key.as_slice();
        let new_key = self.open.is_none() || self.last_user_key != user_key;
        if let (Some(limit), Some((_, _, builder)), true) = (split_at_bytes, self.open.as_ref(), new_key) {
            if builder.estimated_size() >= limit {
                self.finish_open()?;
            }
        }
        if self.open.is_none() {
            self.start(new_file_number())?;
        }
        if let Some((_, _, builder)) = self.open.as_mut() {
            builder.add(&entry.key, &entry.value)?;
        }
        if new_key {
            self.last_user_key.clear();
            self.last_user_key.extend_from_slice(user_key);
        }
        Ok(())
    }

    /// Finishes (and syncs) the open table, if any.
    pub(crate) fn finish_open(&mut self) -> Result<()> {
        if let Some((number, epoch, builder)) = self.open.take() {
            let info = builder.finish()?;
            self.finished.push(FileMeta {
                number,
                size: info.file_size,
                smallest: info.smallest,
                largest: info.largest,
                entries: info.entries,
                min_seqno: info.min_seqno,
                max_seqno: info.max_seqno,
                epoch,
                keyspace: self.keyspace,
            });
        }
        Ok(())
    }
}

/// Finishes every writer's open table, syncs the directory once so every new
/// entry is durable, and hands over the tables in the order of `writers`. On
/// error every table of every writer is removed.
pub(crate) fn commit(ctx: &CompactionContext, mut writers: Vec<TableWriter<'_>>) -> Result<Vec<FileMeta>> {
    for w in &mut writers {
        w.finish_open()?;
    }
    if writers.iter().any(|w| !w.created.is_empty()) {
        ctx.vfs.sync_dir(&ctx.dir).map_err(|e| Error::io(".", e))?;
    }
    let mut tables = Vec::new();
    for w in &mut writers {
        w.created.clear();
        tables.append(&mut w.finished);
    }
    Ok(tables)
}

impl Drop for TableWriter<'_> {
    /// Removes every table created unless `commit` succeeded: nothing refers to them.
    fn drop(&mut self) {
        self.open = None;
        for path in self.created.drain(..) {
            let _ = self.ctx.vfs.remove_file(&path);
        }
    }
}
