//! The store's side of merge operators: which operator a keyspace uses, and
//! the record in the manifest of the operator a keyspace's operands were
//! written for, so that an open with a different operator is refused instead
//! of folding operands it does not understand.

use compaction::Version;

use crate::db::inner::Inner;
use crate::error::{Error, Result};
use crate::keyspace::DEFAULT_KEYSPACE;
use crate::merge::KeyspaceMerge;
use crate::options::Options;

impl Inner {
    /// The merge operator of the default keyspace (reads and writes of the
    /// other keyspaces look theirs up by name the same way).
    pub(crate) fn merge_operator(&self) -> KeyspaceMerge {
        self.options.merge_operators.for_keyspace(DEFAULT_KEYSPACE)
    }

    /// Before the first merge into the default keyspace is written, records
    /// its operator's name in the manifest (one edit, once per store).
    pub(crate) fn record_merge_operator(&self) -> Result<()> {
        let merge = self.merge_operator();
        let operator = merge.operator().ok_or_else(|| Error::Internal("merge written without an operator".into()))?;
        let id = compaction::DEFAULT_KEYSPACE_ID;
        if self.versions.current().merge_operator_name(id) == Some(operator.name()) {
            return Ok(());
        }
        Ok(self.versions.record_merge_operator(id, operator.name())?)
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
