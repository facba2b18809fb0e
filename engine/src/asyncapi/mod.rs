//! The async API for tokio applications: the [`Storage`] trait over a
//! [`crate::Db`], without blocking the runtime.
//!
//! The engine is blocking code (a get may read and decrypt a block, a durable
//! put waits for an fsync), so no call of [`AsyncDb`] runs as plain async code
//! on a worker: on a multi-threaded runtime it runs through
//! `tokio::task::block_in_place` (the worker's other tasks move to another
//! thread meanwhile), elsewhere on tokio's blocking pool (`spawn_blocking`,
//! with keys and values copied into the job); [`Dispatch`] chooses. What each
//! costs per call next to the blocking API is measured by the
//! `async_overhead` criterion bench (README, "Benchmarks").
//!
//! ```
//! use synapsed_storage::{AsyncDb, Credential, Db, Options, Storage};
//!
//! # let tmp = std::env::temp_dir().join(format!("synapsed-async-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&tmp);
//! let runtime = tokio::runtime::Runtime::new().unwrap();
//! runtime.block_on(async {
//!     let db = Db::create(&tmp, &Credential::passphrase("pw"), Options::tiny_for_tests())?;
//!     let store = AsyncDb::new(db);
//!     store.put(b"user:1", b"alice").await?;
//!     assert_eq!(store.get(b"user:1").await?, Some(b"alice".to_vec()));
//!     assert_eq!(store.list(b"user:").await?, vec![b"user:1".to_vec()]);
//!     store.close().await
//! })?;
//! # std::fs::remove_dir_all(&tmp).ok();
//! # Ok::<(), synapsed_storage::Error>(())
//! ```

mod blobs;
mod docs;
mod replica;

use std::future::Future;
use std::sync::Arc;

pub use blobs::{AsyncBlobReader, AsyncBlobWriter, BlobStore, STREAM_CHUNK_BYTES, STREAM_QUEUE_CHUNKS};
pub use docs::DocumentStore;
pub use replica::{SyncRole, SyncableStorage};

use crate::error::{Error, Result};
use crate::{Db, WriteBatch};

/// A key-value store for async code: the storage trait of the original
/// specification, with the engine's [`Error`].
pub trait Storage: Send + Sync {
    /// The value of `key`, `None` if absent.
    fn get(&self, key: &[u8]) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;
    /// Stores `value` under `key` (durable per the store's sync policy when the future completes).
    fn put(&self, key: &[u8], value: &[u8]) -> impl Future<Output = Result<()>> + Send;
    /// Deletes `key` (no error if it is absent).
    fn delete(&self, key: &[u8]) -> impl Future<Output = Result<()>> + Send;
    /// Whether `key` is present.
    fn exists(&self, key: &[u8]) -> impl Future<Output = Result<bool>> + Send {
        let found = self.get(key);
        async move { Ok(found.await?.is_some()) }
    }
    /// Makes every acknowledged write durable and flushes the memtable to a table.
    fn flush(&self) -> impl Future<Output = Result<()>> + Send;
    /// Every key starting with `prefix`, in key order.
    fn list(&self, prefix: &[u8]) -> impl Future<Output = Result<Vec<Vec<u8>>>> + Send;
}

/// A [`Db`] for tokio code: each call runs on the blocking pool. Cheap to
/// clone (the store is shared); must be used inside a tokio runtime.
#[derive(Clone)]
pub struct AsyncDb {
    db: Arc<Db>,
    dispatch: Dispatch,
}

/// Where an [`AsyncDb`] call runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dispatch {
    /// On a multi-threaded runtime, on the calling worker thread through
    /// `tokio::task::block_in_place` (tokio hands the worker's other tasks to
    /// another thread meanwhile); on a current-thread runtime, where that is
    /// not allowed, on the blocking pool. The default: a few microseconds per
    /// call instead of tens (README, "Benchmarks").
    #[default]
    Auto,
    /// Always on tokio's blocking pool (`spawn_blocking`).
    SpawnBlocking,
}

impl std::fmt::Debug for AsyncDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncDb").finish_non_exhaustive()
    }
}

/// How long [`AsyncDb::close`] waits for the last stream tasks to let go of
/// the store before it reports the store as still shared.
pub const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
const CLOSE_POLL: std::time::Duration = std::time::Duration::from_millis(5);

impl AsyncDb {
    /// Wraps an open store.
    pub fn new(db: Db) -> Self {
        AsyncDb { db: Arc::new(db), dispatch: Dispatch::Auto }
    }

    /// This handle with calls dispatched as `dispatch` says.
    #[must_use]
    pub fn with_dispatch(mut self, dispatch: Dispatch) -> Self {
        self.dispatch = dispatch;
        self
    }

    /// The blocking store, for what the async API does not cover (keyspaces,
    /// cursors, snapshots): call it from `spawn_blocking` in async code.
    pub fn blocking(&self) -> &Arc<Db> {
        &self.db
    }

    /// Runs `job` on the blocking pool with the store.
    async fn run<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        let multi_thread =
            tokio::runtime::Handle::try_current().is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread && self.dispatch == Dispatch::Auto {
            return tokio::task::block_in_place(|| job(&self.db));
        }
        self.run_long(job).await
    }

    /// Runs `job` on the blocking pool with the store whatever the dispatch:
    /// for calls that may take long (an index build, a sync session), which
    /// should not hold a worker even through `block_in_place`.
    async fn run_long<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        joined(tokio::task::spawn_blocking(move || job(&db)).await)
    }

    /// Applies `batch` atomically; returns the seqno of its last operation.
    pub async fn write(&self, batch: WriteBatch) -> Result<u64> {
        self.run(move |db| db.write(batch)).await
    }

    /// Closes the store once no other clone of this handle is left (syncs the
    /// WAL, stops background work, releases the lock). A blob stream's task
    /// that is still letting go (a writer dropped or a stream finished just
    /// before) is waited for, up to [`CLOSE_WAIT`]; with clones the
    /// application still holds, it is [`Error::InvalidArgument`] after that
    /// wait and the store stays open.
    pub async fn close(self) -> Result<()> {
        let mut db = self.db;
        let started = std::time::Instant::now();
        loop {
            match Arc::try_unwrap(db) {
                Ok(db) => return tokio::task::spawn_blocking(move || db.close()).await.unwrap_or(Err(Error::Closed)),
                Err(shared) if started.elapsed() < CLOSE_WAIT => {
                    db = shared;
                    // A pause on the blocking pool: needs no timer on the runtime.
                    let _ = tokio::task::spawn_blocking(|| std::thread::sleep(CLOSE_POLL)).await;
                }
                Err(_) => return Err(Error::InvalidArgument("the store is still shared by other AsyncDb handles".into())),
            }
        }
    }
}

/// The result of a job on the blocking pool.
fn joined<T>(result: std::result::Result<Result<T>, tokio::task::JoinError>) -> Result<T> {
    match result {
        Ok(result) => result,
        // A panic of the job is the caller's panic, as in a blocking call.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The runtime is shutting down and dropped the job.
        Err(_) => Err(Error::Closed),
    }
}

impl Storage for AsyncDb {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let key = key.to_vec();
        self.run(move |db| db.get(&key)).await
    }

    async fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let (key, value) = (key.to_vec(), value.to_vec());
        self.run(move |db| db.put(&key, &value)).await
    }

    async fn delete(&self, key: &[u8]) -> Result<()> {
        let key = key.to_vec();
        self.run(move |db| db.delete(&key)).await
    }

    async fn flush(&self) -> Result<()> {
        self.run(|db| db.flush()).await
    }

    async fn list(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        let prefix = prefix.to_vec();
        self.run(move |db| db.scan_prefix(&prefix)?.map(|item| item.map(|(key, _)| key)).collect()).await
    }
}
