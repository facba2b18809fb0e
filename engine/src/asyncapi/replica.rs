//! The seed's `SyncableStorage` trait for tokio code, over [`crate::Db::replica`].

use std::future::Future;
use std::sync::Arc;

use sync::{FrameChannel, ReplicaId, SessionError, SessionOptions, SyncStats, Version};

use super::AsyncDb;
use crate::error::{Error, Result};
use crate::replica::{ConflictRecord, ConflictResolver};

/// Which side of a sync session this store plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncRole {
    /// Opens the session and asks for the scopes of its [`SessionOptions`]
    /// ([`crate::Replica::initiate`]).
    Initiator,
    /// Answers a peer's session ([`crate::Replica::respond`]).
    Responder,
}

/// A store whose replicated keyspaces sync with peers, for async code: the
/// syncable-storage trait of the original specification, over the blocking
/// [`crate::Replica`] (`Db::replica`). Keyspaces are named; each must exist
/// (made with `Db::create_keyspace`) before it is replicated.
pub trait SyncableStorage: Send + Sync {
    /// This store's replica id (the first call gives the store one).
    fn replica_id(&self) -> impl Future<Output = Result<ReplicaId>> + Send;
    /// Marks keyspace `name` as replicated (durably; once is enough).
    fn replicate(&self, keyspace: &str) -> impl Future<Output = Result<()>> + Send;
    /// Writes `value` under `key` in replicated `keyspace` with a new version.
    fn put_replicated(&self, keyspace: &str, key: &[u8], value: &[u8]) -> impl Future<Output = Result<Version>> + Send;
    /// Deletes `key` in replicated `keyspace`: a versioned tombstone.
    fn delete_replicated(&self, keyspace: &str, key: &[u8]) -> impl Future<Output = Result<Version>> + Send;
    /// Runs one sync session with a peer over `channel`, as `role`, on the
    /// blocking pool (a session waits on the peer: it never holds a worker).
    /// The channel is dropped when the session ends. A failure of this
    /// store during the session is [`SessionError::Store`] holding an
    /// [`Error`].
    fn sync_with<C: FrameChannel + 'static>(
        &self,
        channel: C,
        role: SyncRole,
        options: SessionOptions,
    ) -> impl Future<Output = std::result::Result<SyncStats, SessionError>> + Send;
    /// Installs the hook that resolves conflicts of keyspace `keyspace`
    /// (concurrent writes of one key), for this open store: see
    /// [`ConflictResolver`] for what it must guarantee. Without one, the
    /// greater version wins.
    fn resolve_conflict(&self, keyspace: &str, resolver: Arc<dyn ConflictResolver>) -> impl Future<Output = Result<()>> + Send;
    /// Every conflict this store resolved, oldest first.
    fn conflicts(&self) -> impl Future<Output = Result<Vec<ConflictRecord>>> + Send;
}

/// Keyspace `name`, which must exist.
fn named(db: &crate::Db, name: &str) -> Result<crate::Keyspace> {
    db.keyspace(name)?.ok_or_else(|| Error::NoSuchKeyspace(name.to_owned()))
}

impl SyncableStorage for AsyncDb {
    async fn replica_id(&self) -> Result<ReplicaId> {
        self.run(|db| Ok(db.replica()?.id())).await
    }

    async fn replicate(&self, keyspace: &str) -> Result<()> {
        let keyspace = keyspace.to_owned();
        // Stamps every key the keyspace holds: may be long.
        self.run_long(move |db| db.replica()?.replicate(&named(db, &keyspace)?)).await
    }

    async fn put_replicated(&self, keyspace: &str, key: &[u8], value: &[u8]) -> Result<Version> {
        let (keyspace, key, value) = (keyspace.to_owned(), key.to_vec(), value.to_vec());
        self.run(move |db| db.replica()?.put(&named(db, &keyspace)?, &key, &value)).await
    }

    async fn delete_replicated(&self, keyspace: &str, key: &[u8]) -> Result<Version> {
        let (keyspace, key) = (keyspace.to_owned(), key.to_vec());
        self.run(move |db| db.replica()?.delete(&named(db, &keyspace)?, &key)).await
    }

    async fn sync_with<C: FrameChannel + 'static>(
        &self,
        mut channel: C,
        role: SyncRole,
        options: SessionOptions,
    ) -> std::result::Result<SyncStats, SessionError> {
        let db = Arc::clone(&self.db);
        let session = tokio::task::spawn_blocking(move || {
            let replica = db.replica().map_err(|e| SessionError::Store(Box::new(e)))?;
            let stats = match role {
                SyncRole::Initiator => replica.initiate(&mut channel, &options),
                SyncRole::Responder => replica.respond(&mut channel, &options),
            };
            // The peer sees the channel close as soon as the session is over.
            drop(channel);
            stats
        });
        match session.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(SessionError::Store(Box::new(Error::Closed))),
        }
    }

    async fn resolve_conflict(&self, keyspace: &str, resolver: Arc<dyn ConflictResolver>) -> Result<()> {
        let keyspace = keyspace.to_owned();
        self.run(move |db| {
            db.replica()?.set_resolver(&keyspace, resolver);
            Ok(())
        })
        .await
    }

    async fn conflicts(&self) -> Result<Vec<ConflictRecord>> {
        self.run(|db| db.replica()?.conflicts()).await
    }
}
