//! The application's hooks that a flush or compaction job runs for one
//! keyspace: its compaction filter, its table-properties collector and its
//! merge operator. The
//! engine looks them up by keyspace and passes them to each job as a
//! parameter; the jobs themselves know nothing of keyspaces.

use std::sync::Arc;

use index::TablePropertiesCollectorFactory;

use crate::filter::{CompactionFilter, FilterReport};
use crate::merge::MergeOperator;

/// The hooks of the keyspace a job writes tables for. The default has none.
#[derive(Clone, Default)]
pub struct TableHooks {
    /// Sees entries during compaction (not during flush or ingest).
    pub filter: Option<Arc<dyn CompactionFilter>>,
    /// Makes one collector per table written (flush, compaction, ingest).
    pub properties: Option<Arc<dyn TablePropertiesCollectorFactory>>,
    /// Folds the keyspace's merge operands during compaction (see
    /// `compaction/src/merge.rs`; not during flush or ingest, which write
    /// every version as it is). None: operands are kept as they are.
    pub merge_operator: Option<Arc<dyn MergeOperator>>,
}

impl std::fmt::Debug for TableHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableHooks")
            .field("filter", &self.filter.is_some())
            .field("properties", &self.properties.is_some())
            .field("merge_operator", &self.merge_operator.as_ref().map(|m| m.name().to_owned()))
            .finish()
    }
}

/// What a compaction returns: the edit that swaps inputs for outputs, and what
/// its filter did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CompactionOutput {
    /// The edit to log.
    pub edit: crate::VersionEdit,
    /// The filter's counts (all zero without a filter).
    pub filter: FilterReport,
}
