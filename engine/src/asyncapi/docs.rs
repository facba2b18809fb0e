//! The seed's `DocumentStore` trait for tokio code, over [`crate::Db::docs`].

use std::future::Future;

use serde_json::Value;

use super::AsyncDb;
use crate::docs::{IndexInfo, IndexSpec, Query, QueryResult};
use crate::error::Result;

/// JSON documents in collections, with secondary indexes and queries, for
/// async code: the document-store trait of the original specification, with
/// the engine's [`crate::Error`]. The blocking counterpart is
/// [`crate::docs::Documents`] (`Db::docs`), whose rustdoc says what each call
/// checks and refuses; these calls do the same.
///
/// The methods are named `*_document` where the key-value [`super::Storage`]
/// trait, which [`AsyncDb`] implements too, has a `get`, `put` or `delete`, so
/// both traits can be in scope without ambiguous calls.
///
/// ```
/// use serde_json::json;
/// use synapsed_storage::docs::{IndexSpec, Query};
/// use synapsed_storage::{AsyncDb, Credential, Db, DocumentStore, Options};
///
/// # let tmp = std::env::temp_dir().join(format!("synapsed-async-docs-doc-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&tmp);
/// let runtime = tokio::runtime::Runtime::new().unwrap();
/// runtime.block_on(async {
///     let store = AsyncDb::new(Db::create(&tmp, &Credential::passphrase("pw"), Options::tiny_for_tests())?);
///     store.create_index("users", &IndexSpec::ordered("age")).await?;
///     store.put_document("users", &json!({"_id": "u1", "name": "Ada", "age": 36})).await?;
///     store.put_document("users", &json!({"_id": "u2", "name": "Alan", "age": 41})).await?;
///     let found = store.query("users", &Query::new(json!({"age": {"$gte": 40}}))).await?;
///     assert_eq!(found.documents[0]["name"], "Alan");
///     assert_eq!(found.explain.index.as_deref(), Some("age"));
///     store.close().await
/// })?;
/// # std::fs::remove_dir_all(&tmp).ok();
/// # Ok::<(), synapsed_storage::Error>(())
/// ```
pub trait DocumentStore: Send + Sync {
    /// Stores (replaces) `doc`, an object with a string `_id`, and its index
    /// entries in one atomic batch.
    fn put_document(&self, collection: &str, doc: &Value) -> impl Future<Output = Result<()>> + Send;
    /// The document with `_id` `id` in `collection`, or `None`.
    fn get_document(&self, collection: &str, id: &str) -> impl Future<Output = Result<Option<Value>>> + Send;
    /// Deletes a document and its index entries atomically; whether it existed.
    fn delete_document(&self, collection: &str, id: &str) -> impl Future<Output = Result<bool>> + Send;
    /// Runs `query` over `collection` at one snapshot.
    fn query(&self, collection: &str, query: &Query) -> impl Future<Output = Result<QueryResult>> + Send;
    /// Creates an index and builds it over the existing documents before the
    /// future completes (see [`crate::docs::Documents::create_index`]).
    fn create_index(&self, collection: &str, spec: &IndexSpec) -> impl Future<Output = Result<()>> + Send;
    /// The indexes of `collection`.
    fn indexes(&self, collection: &str) -> impl Future<Output = Result<Vec<IndexInfo>>> + Send;
    /// Names of the collections, sorted.
    fn collections(&self) -> impl Future<Output = Result<Vec<String>>> + Send;
}

impl DocumentStore for AsyncDb {
    async fn put_document(&self, collection: &str, doc: &Value) -> Result<()> {
        let (collection, doc) = (collection.to_owned(), doc.clone());
        self.run(move |db| db.docs().put(&collection, &doc)).await
    }

    async fn get_document(&self, collection: &str, id: &str) -> Result<Option<Value>> {
        let (collection, id) = (collection.to_owned(), id.to_owned());
        self.run(move |db| db.docs().get(&collection, &id)).await
    }

    async fn delete_document(&self, collection: &str, id: &str) -> Result<bool> {
        let (collection, id) = (collection.to_owned(), id.to_owned());
        self.run(move |db| db.docs().delete(&collection, &id)).await
    }

    async fn query(&self, collection: &str, query: &Query) -> Result<QueryResult> {
        let (collection, query) = (collection.to_owned(), query.clone());
        self.run(move |db| db.docs().query(&collection, &query)).await
    }

    async fn create_index(&self, collection: &str, spec: &IndexSpec) -> Result<()> {
        let (collection, spec) = (collection.to_owned(), spec.clone());
        // An index build reads every document of the collection: the blocking
        // pool, not a worker, whatever the dispatch.
        self.run_long(move |db| db.docs().create_index(&collection, &spec)).await
    }

    async fn indexes(&self, collection: &str) -> Result<Vec<IndexInfo>> {
        let collection = collection.to_owned();
        self.run(move |db| db.docs().indexes(&collection)).await
    }

    async fn collections(&self) -> Result<Vec<String>> {
        self.run(|db| db.docs().collections()).await
    }
}
