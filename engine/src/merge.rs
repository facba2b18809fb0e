//! Merge operators: associative read-modify-write without the read. A
//! `WriteBatch::merge` (or `Db::merge`) writes an operand; reads fold every
//! operand they can see over the newest value or tombstone below them with
//! the keyspace's operator, and compaction folds what no reader can tell apart
//! (`compaction/src/merge.rs`). See `docs/design.md`, "Merge operators".
//!
//! Operators are registered per keyspace by name
//! ([`crate::Options::with_merge_operator`]); every lookup goes through
//! [`MergeOperators::for_keyspace`], the one place that maps a keyspace to its
//! operator.

mod operators;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub use compaction::{MergeError, MergeOperator};
pub use operators::{SortedSetUnion, U64AddOperator};

use crate::error::{Error, Result};

/// The merge operators of a store, by keyspace name (`"default"` is the
/// default keyspace). Built with [`crate::Options::with_merge_operator`].
#[derive(Clone, Default)]
pub struct MergeOperators {
    by_keyspace: BTreeMap<String, Arc<dyn MergeOperator>>,
}

impl MergeOperators {
    /// No operator for any keyspace.
    pub fn new() -> Self {
        Self::default()
    }

    /// The operator registered for `keyspace`, if any.
    pub fn get(&self, keyspace: &str) -> Option<&Arc<dyn MergeOperator>> {
        self.by_keyspace.get(keyspace)
    }

    /// Every (keyspace name, operator), in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<dyn MergeOperator>)> + '_ {
        self.by_keyspace.iter().map(|(k, op)| (k.as_str(), op))
    }

    /// Registers `operator` for `keyspace`, replacing an earlier one.
    pub(crate) fn insert(&mut self, keyspace: String, operator: Arc<dyn MergeOperator>) {
        self.by_keyspace.insert(keyspace, operator);
    }

    /// What reads, writes and compactions of `keyspace` use.
    pub(crate) fn for_keyspace(&self, keyspace: &str) -> KeyspaceMerge {
        KeyspaceMerge { keyspace: Arc::from(keyspace), operator: self.get(keyspace).cloned() }
    }
}

impl fmt::Debug for MergeOperators {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.by_keyspace.iter().map(|(k, op)| (k, op.name()))).finish()
    }
}

/// One keyspace's merge operator (or its absence), with the keyspace's name
/// for errors.
#[derive(Clone)]
pub(crate) struct KeyspaceMerge {
    keyspace: Arc<str>,
    operator: Option<Arc<dyn MergeOperator>>,
}

impl KeyspaceMerge {
    /// The operator, if the keyspace has one.
    pub(crate) fn operator(&self) -> Option<&Arc<dyn MergeOperator>> {
        self.operator.as_ref()
    }

    /// Refuses a merge write into a keyspace without an operator.
    pub(crate) fn check_writable(&self) -> Result<()> {
        match self.operator {
            Some(_) => Ok(()),
            None => Err(Error::InvalidArgument(format!(
                "merge into keyspace {:?}, which has no merge operator (Options::with_merge_operator)",
                &*self.keyspace
            ))),
        }
    }

    /// Folds `operands` (oldest first) over `base` (`None`: no value or a
    /// tombstone). No operator is [`Error::NoMergeOperator`]; a failure of the
    /// operator is [`Error::MergeFailed`].
    pub(crate) fn fold(&self, key: &[u8], base: Option<&[u8]>, operands: &[&[u8]]) -> Result<Vec<u8>> {
        let operator = self.operator.as_ref().ok_or_else(|| Error::NoMergeOperator { keyspace: self.keyspace.to_string() })?;
        operator.full_merge(key, base, operands).map_err(|e| Error::MergeFailed {
            keyspace: self.keyspace.to_string(),
            operator: operator.name().to_string(),
            reason: e.message().to_string(),
        })
    }
}
