//! Running a compaction with its keyspace's hooks (compaction filter, table
//! properties collector) and installing its output without letting a snapshot
//! see a filtered entry change.
//!
//! The compaction offers its filter only entries above every snapshot it
//! listed when it started (`compaction/src/filter.rs`). A snapshot taken while
//! it runs has a seqno at least that of every input, so it could read an entry
//! the filter removed or rewrote. The output is therefore installed under the
//! snapshot registry's lock, and only if no live snapshot is at or above the
//! smallest changed seqno; otherwise the output is discarded and the compaction
//! runs again with the new snapshot list. After [`MAX_FILTERED_ATTEMPTS`] such
//! rounds it runs once more without the filter, which is always safe.

use std::collections::HashSet;
use std::sync::Arc;

use compaction::{Compaction, FileMeta, TableHooks, Version, DEFAULT_KEYSPACE_ID};

use crate::db::background::overlaps;
use crate::db::inner::Inner;
use crate::error::Result;
use crate::events::BackgroundError;
use crate::keyspace::DEFAULT_KEYSPACE;

/// Rounds a filtered compaction is retried when snapshots taken meanwhile
/// could see its changes, before it runs without the filter.
const MAX_FILTERED_ATTEMPTS: usize = 3;

impl Inner {
    /// The hooks of keyspace `id`: the one place where a keyspace is mapped
    /// to the hooks `Options` registered under its name. The keyspace's merge operator comes along, for its compactions to fold
    /// its operands with.
    pub(crate) fn table_hooks(&self, id: u32) -> TableHooks {
        let with_operator = |name: &str| TableHooks {
            merge_operator: self.options.merge_operators.get(name).cloned(),
            ..self.options.hooks.for_keyspace(name)
        };
        if id == DEFAULT_KEYSPACE_ID {
            return with_operator(DEFAULT_KEYSPACE);
        }
        let version = self.versions.current();
        let hooks = match version.keyspaces().find(|k| k.id == id) {
            Some(meta) => with_operator(&meta.name),
            None => TableHooks::default(),
        };
        hooks
    }

    /// Runs compaction `c` with its keyspace's hooks and installs the output;
    /// returns the tables added. Caller holds `work`.
    pub(crate) fn compact_and_install(&self, c: &Compaction) -> Result<Vec<(usize, FileMeta)>> {
        let mut hooks = self.table_hooks(c.keyspace);
        let mut attempt = 0;
        loop {
            let snapshots = self.snapshots.list();
            let version = self.versions.current();
            // Output tables come back synced, directory entries included.
            let out = compaction::run_compaction_with(&self.ctx, c, &snapshots, &hooks, &version, &|| self.versions.new_file_number())?;
            drop(version);
            self.report_filter_errors(&out.filter);
            let added = out.edit.added.clone();
            let Some(changed_from) = out.filter.min_changed_seqno else {
                self.versions.log_and_apply(out.edit)?;
                return Ok(added);
            };
            let edit = out.edit;
            if let Some(applied) = self.snapshots.install_unless_any_at_or_above(changed_from, || self.versions.log_and_apply(edit)) {
                applied?;
                return Ok(added);
            }
            // A snapshot taken meanwhile could read a changed entry: the
            // output is in no version, so remove it and start again.
            tracing::debug!(changed_from, attempt, "filtered compaction output discarded for a snapshot taken meanwhile");
            for (_, meta) in &added {
                let _ = self.vfs.remove_file(&index::TableCache::table_path(&self.dir, meta.number));
            }
            attempt += 1;
            if attempt >= MAX_FILTERED_ATTEMPTS {
                hooks.filter = None;
            }
        }
    }

    /// The tables of `level` a `compact_range` should rewrite after its steps
    /// when the keyspace has a compaction filter: the range's data ends in
    /// that level, and tables already there that no step replaces would
    /// otherwise never be shown to the filter (RocksDB's
    /// `BottommostLevelCompaction::kIfHaveCompactionFilter`). Empty without a
    /// filter. The steps may replace some of them; `refilter_level` skips those.
    pub(crate) fn tables_to_refilter(&self, version: &Version, level: usize) -> HashSet<u64> {
        if self.table_hooks(version.keyspace_id()).filter.is_none() {
            return HashSet::new();
        }
        version.level_files(level).iter().map(|f| f.number).collect()
    }

    /// Rewrites, within `level` itself, every table of `candidates` still there
    /// that overlaps [`start`, `end`], so the compaction filter sees its
    /// entries. Runs of adjacent candidates are rewritten by one compaction
    /// each (a table between them that a step wrote stays as it is, so the
    /// outputs keep the level disjoint). The level is keyspace `keyspace`'s
    /// (nothing to do if it was dropped meanwhile). Caller holds `work`.
    pub(crate) fn refilter_level(
        &self,
        keyspace: u32,
        level: usize,
        candidates: &HashSet<u64>,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
    ) -> Result<()> {
        if candidates.is_empty() || level == 0 {
            return Ok(());
        }
        let Some(version) = self.versions.current().keyspace_levels(keyspace) else { return Ok(()) };
        let mut runs: Vec<Vec<Arc<FileMeta>>> = vec![Vec::new()];
        for f in version.level_files(level) {
            if candidates.contains(&f.number) && overlaps(f, start, end) {
                if let Some(run) = runs.last_mut() {
                    run.push(Arc::clone(f));
                }
            } else if runs.last().is_some_and(|run| !run.is_empty()) {
                runs.push(Vec::new());
            }
        }
        let levels = version.num_levels();
        let compactions: Vec<Compaction> = runs
            .into_iter()
            .filter_map(|run| {
                let lo = run.first()?.smallest.user_key.clone();
                let hi = run.last()?.largest.user_key.clone();
                let bottommost = (level + 1..levels).all(|l| version.overlapping_files(l, Some(&lo), Some(&hi)).is_empty());
                // Inputs of `level - 1`: none; the run is rewritten into its own level.
                Some(Compaction {
                    level: level - 1,
                    inputs: Vec::new(),
                    next_inputs: run,
                    bottommost,
                    max_subcompactions: 1,
                    keyspace,
                })
            })
            .collect();
        drop(version);
        for c in compactions {
            self.run_compaction(&self.waited_for(c))?;
        }
        Ok(())
    }

    /// Tells the listener and `tracing` that the compaction filter failed on
    /// some entries (they were kept unchanged; writes go on).
    fn report_filter_errors(&self, report: &compaction::FilterReport) {
        if report.errors == 0 {
            return;
        }
        let first = report.first_error.as_deref().unwrap_or_default();
        tracing::warn!(errors = report.errors, first_error = first, "compaction filter failed; entries kept unchanged");
        if let Some(l) = self.listener() {
            l.on_background_error(&BackgroundError {
                operation: "compaction filter".into(),
                message: format!("{} entries kept unchanged; first error: {first}", report.errors),
                writes_stopped: false,
            });
        }
    }
}
