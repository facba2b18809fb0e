//! The store's side of merge operators: which operator a keyspace uses, and
//! the record in the manifest of the operator a keyspace's operands were
//! written for, so that an open with a different operator is refused instead
//! of folding operands it does not understand.

use compaction::Version;
use index::ValueKind;

use crate::batch::WriteBatch;
use crate::db::inner::Inner;
use crate::error::{Error, Result};
use crate::keyspace::DEFAULT_KEYSPACE;
use crate::merge::KeyspaceMerge;
use crate::options::Options;

impl Inner {
    /// The merge operator of the default keyspace.
    pub(crate) fn merge_operator(&self) -> KeyspaceMerge {
        self.options.merge_operators.for_keyspace(DEFAULT_KEYSPACE)
    }

    /// The merge operator of `keyspace`, looked up by its name.
    pub(crate) fn merge_operator_in(&self, keyspace: &crate::Keyspace) -> KeyspaceMerge {
        if keyspace.id() == compaction::DEFAULT_KEYSPACE_ID {
            return self.merge_operator();
        }
        self.options.merge_operators.for_keyspace(keyspace.name())
    }

    /// The merge operator of keyspace `id` among those `batch` writes to
    /// (named as the batch's handles name it).
    pub(crate) fn merge_operator_of(&self, batch: &WriteBatch, id: u32) -> KeyspaceMerge {
        if id == compaction::DEFAULT_KEYSPACE_ID {
            return self.merge_operator();
        }
        self.options.merge_operators.for_keyspace(&batch.keyspace_name(id))
    }

    /// Before the first merge into a keyspace is written, records its
    /// operator's name for the keyspace's id in the manifest (one edit, once
    /// per keyspace): for every keyspace `batch` merges into. A keyspace no
    /// longer live gets no record (the write is then refused as a write to a
    /// dropped keyspace).
    pub(crate) fn record_merge_operators(&self, batch: &WriteBatch) -> Result<()> {
        let mut recorded: Vec<u32> = Vec::new();
        for op in batch.ops.iter().filter(|op| op.kind == ValueKind::Merge && !op.range_delete) {
            if recorded.contains(&op.keyspace) {
                continue;
            }
            recorded.push(op.keyspace);
            let merge = self.merge_operator_of(batch, op.keyspace);
            let operator = merge.operator().ok_or_else(|| Error::Internal("merge written without an operator".into()))?;
            let version = self.versions.current();
            if !version.has_keyspace(op.keyspace) || version.merge_operator_name(op.keyspace) == Some(operator.name()) {
                continue;
            }
            drop(version);
            self.versions.record_merge_operator(op.keyspace, operator.name())?;
        }
        Ok(())
    }
}

/// Refuses options whose merge operator for a keyspace has another name than
/// the one the keyspace's operands were written for. A keyspace with no
/// operator in `options` is let through: its reads of operands fail with
/// [`Error::NoMergeOperator`] and compaction keeps the operands as they are.
pub(crate) fn check_recorded_operators(version: &Version, options: &Options) -> Result<()> {
    for (id, recorded) in version.merge_operator_names() {
        let keyspace = if id == compaction::DEFAULT_KEYSPACE_ID {
            DEFAULT_KEYSPACE.to_string()
        } else {
            match version.keyspaces().find(|k| k.id == id) {
                Some(k) => k.name.clone(),
                None => continue,
            }
        };
        if let Some(given) = options.merge_operators.get(&keyspace) {
            if given.name() != recorded {
                return Err(Error::InvalidArgument(format!(
                    "keyspace {keyspace:?} holds merge operands written for merge operator {recorded:?}; \
                     the options give {:?}",
                    given.name()
                )));
            }
        }
    }
    Ok(())
}
