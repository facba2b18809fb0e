//! The document store: JSON objects in named collections, secondary indexes
//! kept in the same atomic batch as the documents, queries with a planner, and
//! full-text search. Reached through [`crate::Db::docs`].
//!
//! Layout (docs/design.md, "The document store"): each collection has an
//! internal keyspace of bodies (`_docb:NAME`, key = `_id`) and one of index
//! entries (`_doci:NAME`); index definitions and text statistics live in the
//! internal keyspace `_doc`. Every byte of them is encrypted like any other.

mod build;
mod filter;
mod json;
mod prefilter;
mod query;
mod store;
mod text;

use parking_lot::Mutex;
use serde_json::Value;

use crate::db::Db;
use crate::error::Result;

pub use build::IndexBuild;
pub use filter::{MAX_FILTER_DEPTH, MAX_FILTER_TERMS};
pub use json::{compare, lookup, MAX_DOCUMENT_BYTES, MAX_DOCUMENT_DEPTH, MAX_FIELD_PATH_BYTES, MAX_ID_BYTES};
pub use store::{CheckReport, MAX_COLLECTION_NAME_BYTES, MAX_IMPORT_DOCUMENTS};
pub use text::MAX_TERM_BYTES;

/// Decoded index definitions by collection, with the bytes they were decoded from.
type DefsCache = std::collections::HashMap<String, (Vec<u8>, std::sync::Arc<store::Defs>)>;

/// Cached search keys, by (collection, field).
type SearchKeys = std::collections::HashMap<(String, String), zeroize::Zeroizing<[u8; 32]>>;

/// What the document store shares across calls of one open store: the mutex
/// that orders document writes and index builds (reads take no lock; they
/// read at a snapshot).
#[derive(Default)]
pub(crate) struct DocShared {
    pub(crate) write: Mutex<()>,
    /// Search keys by (collection, field): each is an HKDF of the integrity
    /// root, which never changes while the store is open.
    pub(crate) search_keys: Mutex<SearchKeys>,
    /// The last decoded index definitions of each collection, with the stored
    /// bytes they were decoded from: a query that reads the same bytes at its
    /// snapshot reuses them instead of parsing and re-deriving keys.
    /// Cursors of the index builds under way (see `build.rs`).
    pub(crate) builds: Mutex<build::BuildCursors>,
    pub(crate) defs_cache: Mutex<DefsCache>,
}

/// How an index keys its entries (docs/security.md says what each leaks to
/// someone who can read decrypted index pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexKind {
    /// Order-preserving encoding of the values: equality, `$in`, ranges and
    /// sorting. Leaks the order and equality of values.
    Ordered,
    /// Keyed hashes (HMAC-SHA256 under a key for this collection and field) of
    /// the values: equality and `$in` only. Leaks equality and frequency.
    Hashed,
    /// Full text: keyed hashes of the folded words of a string field, with term
    /// frequencies for ranking; `$text` queries.
    Text,
}

impl IndexKind {
    /// The kind's name as the CLI and the stored definitions spell it.
    pub fn name(self) -> &'static str {
        match self {
            IndexKind::Ordered => "ordered",
            IndexKind::Hashed => "hashed",
            IndexKind::Text => "text",
        }
    }
}

/// An index to create: field path, kind, and whether values are unique.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexSpec {
    /// Dotted field path (`"address.zip"`).
    pub field: String,
    /// How entries are keyed.
    pub kind: IndexKind,
    /// Whether two documents may not share a value (each element of an array
    /// counts as a value). Not for text indexes.
    pub unique: bool,
}

impl IndexSpec {
    /// An ordered (range-capable) index on `field`.
    pub fn ordered(field: impl Into<String>) -> Self {
        IndexSpec { field: field.into(), kind: IndexKind::Ordered, unique: false }
    }

    /// A hashed (equality-only, blind) index on `field`.
    pub fn hashed(field: impl Into<String>) -> Self {
        IndexSpec { field: field.into(), kind: IndexKind::Hashed, unique: false }
    }

    /// A full-text index on `field`.
    pub fn text(field: impl Into<String>) -> Self {
        IndexSpec { field: field.into(), kind: IndexKind::Text, unique: false }
    }

    /// Sets [`IndexSpec::unique`].
    pub fn with_unique(mut self, unique: bool) -> Self {
        self.unique = unique;
        self
    }
}

/// An index of a collection, as [`Documents::indexes`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexInfo {
    /// Field path.
    pub field: String,
    /// Kind.
    pub kind: IndexKind,
    /// Whether values are unique.
    pub unique: bool,
    /// Whether it is built (an index whose build was interrupted is finished by
    /// the next [`Documents::create_index`] of it; until then queries ignore it).
    pub ready: bool,
}

/// A query: a filter, an optional sort, a limit and a resume cursor.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Query {
    /// The filter (`{}` matches every document).
    pub filter: Value,
    /// Sort field and whether descending; `None` orders by `_id`.
    pub sort: Option<(String, bool)>,
    /// Order by BM25 relevance of the `$text` words (best first) instead.
    pub rank: bool,
    /// Most documents returned.
    pub limit: Option<usize>,
    /// Resume after the last document of an earlier page
    /// ([`QueryResult::next_cursor`]).
    pub cursor: Option<String>,
}

impl Query {
    /// A query with `filter`, in `_id` order, no limit.
    pub fn new(filter: Value) -> Self {
        Query { filter, sort: None, rank: false, limit: None, cursor: None }
    }

    /// Sorts on `field`, descending if `descending`.
    pub fn with_sort(mut self, field: impl Into<String>, descending: bool) -> Self {
        self.sort = Some((field.into(), descending));
        self
    }

    /// Orders by BM25 relevance of the filter's `$text` words.
    pub fn with_rank(mut self, rank: bool) -> Self {
        self.rank = rank;
        self
    }

    /// Returns at most `limit` documents.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Resumes after `cursor`.
    pub fn with_cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }
}

/// What the planner did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Explain {
    /// The field of the index used (several joined by `,` for an `$or` of
    /// indexed branches), or `None` for a scan of every document.
    pub index: Option<String>,
    /// Documents read and tested against the filter.
    pub examined: u64,
    /// Documents returned.
    pub returned: u64,
}

/// The answer to a query.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QueryResult {
    /// The matching documents, in order.
    pub documents: Vec<Value>,
    /// BM25 scores of the documents when the query asked for ranking.
    pub scores: Option<Vec<f64>>,
    /// Set when the limit was reached: pass it to [`Query::with_cursor`] for the
    /// next page.
    pub next_cursor: Option<String>,
    /// What the planner did.
    pub explain: Explain,
}

/// The document store of one open store; see [`crate::Db::docs`].
pub struct Documents<'db> {
    db: &'db Db,
}

impl Db {
    /// The document store: JSON collections with secondary indexes, queries and
    /// full-text search, kept in this store's internal keyspaces.
    ///
    /// ```
    /// use serde_json::json;
    /// use synapsed_storage::docs::{IndexSpec, Query};
    /// use synapsed_storage::{Credential, Db, Options};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::create(dir.path(), &Credential::passphrase("pw"), Options::default())?;
    /// let docs = db.docs();
    /// docs.create_index("users", &IndexSpec::ordered("age"))?;
    /// docs.put("users", &json!({"_id": "ada", "age": 36}))?;
    /// docs.put("users", &json!({"_id": "alan", "age": 41}))?;
    ///
    /// let found = docs.query("users", &Query::new(json!({"age": {"$gt": 40}})))?;
    /// assert_eq!(found.documents, vec![json!({"_id": "alan", "age": 41})]);
    /// # db.close()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn docs(&self) -> Documents<'_> {
        Documents { db: self }
    }
}

impl<'db> Documents<'db> {
    /// Stores (replaces) `doc`, an object with a string `_id`, and its index
    /// entries in one atomic batch. Bad input ([`crate::Error::InvalidArgument`])
    /// or a unique-index clash ([`crate::Error::UniqueViolation`]) writes nothing.
    pub fn put(&self, collection: &str, doc: &Value) -> Result<()> {
        store::import(self.db, collection, std::slice::from_ref(doc)).map(|_| ())
    }

    /// Parses `json` as one document and stores it (see [`Documents::put`]).
    pub fn put_json(&self, collection: &str, json: &[u8]) -> Result<()> {
        let doc = json::parse_document(json)?;
        self.put(collection, &doc)
    }

    /// Stores up to [`MAX_IMPORT_DOCUMENTS`] documents in one atomic batch (a
    /// later document with the same `_id` replaces an earlier one); returns how
    /// many were stored. Any bad document fails the whole call, nothing written.
    pub fn import(&self, collection: &str, docs: &[Value]) -> Result<usize> {
        store::import(self.db, collection, docs)
    }

    /// The document with `_id` `id`, or `None`.
    pub fn get(&self, collection: &str, id: &str) -> Result<Option<Value>> {
        store::get(self.db, collection, id)
    }

    /// Deletes the document and its index entries atomically; whether it existed.
    pub fn delete(&self, collection: &str, id: &str) -> Result<bool> {
        store::delete(self.db, collection, id)
    }

    /// Creates an index and builds it over the existing documents before
    /// returning. Creating an index that exists with the same kind and
    /// uniqueness does nothing (or finishes an interrupted build); with another
    /// kind it is [`crate::Error::InvalidArgument`]. A unique index that
    /// existing documents violate is refused ([`crate::Error::UniqueViolation`])
    /// and left absent.
    pub fn create_index(&self, collection: &str, spec: &IndexSpec) -> Result<()> {
        store::create_index(self.db, collection, spec)
    }

    /// Starts building an index without building it: stores its definition
    /// (not ready, so queries do not use it yet) and returns the build, which
    /// the caller steps ([`IndexBuild::step`], one slice of documents per
    /// step) or runs ([`IndexBuild::run`]), typically on a thread of its own
    /// while other threads keep reading and writing the collection:
    ///
    /// ```no_run
    /// # use synapsed_storage::{Credential, Db, Options, docs::IndexSpec};
    /// # let db = Db::open(std::path::Path::new("/tmp/s"), &Credential::passphrase("pw"), Options::default())?;
    /// let build = db.docs().start_index_build("users", &IndexSpec::ordered("age"))?;
    /// std::thread::scope(|s| {
    ///     let builder = s.spawn(move || build.run());
    ///     // ... reads and writes go on meanwhile ...
    ///     builder.join().expect("index build thread")
    /// })?;
    /// # Ok::<(), synapsed_storage::Error>(())
    /// ```
    ///
    /// Document writes between steps are indexed correctly (the part of the
    /// collection already built is maintained by the writes, the rest by the
    /// build). The index is used once the last step has run. A build dropped
    /// unfinished, or cut short by a crash, leaves the index not ready; the
    /// next `create_index` or `start_index_build` of it starts over. Errors
    /// as [`Documents::create_index`].
    pub fn start_index_build(&self, collection: &str, spec: &IndexSpec) -> Result<IndexBuild<'db>> {
        build::start(self.db, collection, spec)
    }

    /// The indexes of a collection.
    pub fn indexes(&self, collection: &str) -> Result<Vec<IndexInfo>> {
        store::indexes(self.db, collection)
    }

    /// Runs a query at one snapshot.
    pub fn query(&self, collection: &str, query: &Query) -> Result<QueryResult> {
        let _timer = crate::metrics::timed(crate::metrics::StoreOp::DocQuery);
        query::run(self.db, collection, query)
    }

    /// Names of the collections, sorted.
    pub fn collections(&self) -> Result<Vec<String>> {
        store::collections(self.db)
    }

    /// Walks every document and every index entry of a collection and checks
    /// that they agree: each built index holds exactly the entries its
    /// documents call for, and text statistics match.
    pub fn check(&self, collection: &str) -> Result<CheckReport> {
        store::check(self.db, collection)
    }
}
