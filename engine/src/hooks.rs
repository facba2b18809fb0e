//! The application's per-keyspace hooks as `Options` holds them: compaction
//! filters and table-properties collectors, registered by keyspace name
//! ([`crate::DEFAULT_KEYSPACE`] for the default keyspace). Flush, compaction and
//! ingest jobs get the hooks of the keyspace they write as a parameter
//! (`compaction::TableHooks`), looked up here and only here.
//!
//! Both hooks are re-exported from the lower crates: [`CompactionFilter`]
//! (with [`FilterDecision`], [`FilterEntry`]) from the compaction crate and
//! [`TablePropertiesCollector`] / [`TablePropertiesCollectorFactory`] (with
//! [`CollectedEntry`], [`TableContext`], [`UserProperties`]) from the index
//! crate, which calls them.

use std::collections::BTreeMap;
use std::sync::Arc;

pub use compaction::{CompactionFilter, FilterDecision, FilterEntry};
pub use index::{
    CollectedEntry, HookError, TableContext, TablePropertiesCollector, TablePropertiesCollectorFactory, TableReason,
    UserProperties, ValueKind, MAX_PROPERTY_NAME_BYTES, MAX_USER_PROPERTIES_BYTES,
};

use compaction::TableHooks;

/// Hooks by keyspace name.
#[derive(Clone, Default)]
pub(crate) struct HookRegistry {
    filters: BTreeMap<String, Arc<dyn CompactionFilter>>,
    collectors: BTreeMap<String, Arc<dyn TablePropertiesCollectorFactory>>,
}

impl std::fmt::Debug for HookRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookRegistry")
            .field("compaction_filters", &self.filters.keys().collect::<Vec<_>>())
            .field("table_properties_collectors", &self.collectors.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl HookRegistry {
    pub(crate) fn set_filter(&mut self, keyspace: &str, filter: Arc<dyn CompactionFilter>) {
        self.filters.insert(keyspace.to_owned(), filter);
    }

    pub(crate) fn set_collector(&mut self, keyspace: &str, factory: Arc<dyn TablePropertiesCollectorFactory>) {
        self.collectors.insert(keyspace.to_owned(), factory);
    }

    /// The hooks of the keyspace named `keyspace` (none when nothing is registered).
    pub(crate) fn for_keyspace(&self, keyspace: &str) -> TableHooks {
        TableHooks {
            filter: self.filters.get(keyspace).cloned(),
            properties: self.collectors.get(keyspace).cloned(),
            ..TableHooks::default()
        }
    }

    /// Every name hooks are registered under, to validate.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.filters.keys().chain(self.collectors.keys()).map(String::as_str)
    }
}
