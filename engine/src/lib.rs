//! synapsed-storage: an embedded, log-structured storage engine in which every
//! byte on disk is encrypted.
//!
//! ```no_run
//! use synapsed_storage::{Credential, Db, Options, WriteBatch};
//!
//! let dir = std::path::Path::new("/tmp/example-store");
//! let cred = Credential::passphrase("correct horse battery staple");
//! let db = Db::create(dir, &cred, Options::default())?;
//! db.put(b"user:1", b"alice")?;
//! let mut batch = WriteBatch::new();
//! batch.put(b"user:2", b"bob");
//! batch.delete(b"user:1");
//! db.write(batch)?;
//! assert_eq!(db.get(b"user:2")?, Some(b"bob".to_vec()));
//! for item in db.scan_prefix(b"user:")? {
//!     let (key, value) = item?;
//!     println!("{:?} = {:?}", key, value);
//! }
//! db.close()?;
//! # Ok::<(), synapsed_storage::Error>(())
//! ```

#![deny(missing_docs)]

/// The integration guide (`docs/guide.md`): its code blocks run as doc tests.
#[cfg(all(doctest, feature = "async"))]
#[doc = include_str!("../../docs/guide.md")]
pub struct IntegrationGuide;

#[cfg(feature = "async")]
pub mod asyncapi;
pub mod backup;
/// IPFS: CIDs as `ipfs add --cid-version=1` computes them, CAR v1 files
/// written and read with every block's hash checked.
pub use sync::ipfs;
mod batch;
mod blob;
mod db;
pub mod device;
mod doc;
mod error;
mod events;
mod format;
#[doc(hidden)]
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod freshness;
mod hooks;
mod keyspace;
mod merge;
mod metrics;
mod options;
mod ts;
mod replica;

#[cfg(feature = "async")]
pub use asyncapi::{AsyncBlobReader, AsyncBlobWriter, AsyncDb, Dispatch, DocumentStore, Storage, SyncRole, SyncableStorage};
/// The async blob-store trait (`asyncapi::BlobStore`), named apart from the
/// blocking [`BlobStore`].
#[cfg(feature = "async")]
pub use asyncapi::BlobStore as AsyncBlobStore;
pub use batch::WriteBatch;
pub use blob::{BlobGcReport, BlobReader, BlobStats, BlobStore, BlobWriter, IPFS_EXPORT_SEGMENT_BYTES};
pub use db::{Change, ChangeFeed, ChangeKind, Cursor, Db, DbIterator, IterOptions, Snapshot, Stats, Transaction, VerifyReport};
pub use db::{EpochFiles, RekeyReport, RotationProgress, RotationReport, SecureDeleteReport};
pub use error::{Error, Result};
/// The document store's types; the store itself is [`Db::docs`].
pub mod docs {
    pub use crate::doc::*;
}
pub use events::{
    BackgroundError, CompactionBegin, CompactionEnd, EventListener, FileDeleted, FlushBegin, FlushEnd, StallCause, TableFileCreated,
    WriteStallBegin, WriteStallEnd,
};
pub use db::{CheckpointFile, CheckpointReport};
pub use db::{BlockCounts, LostFile, RepairReport, LOST_DIR};
pub use freshness::FreshnessCounter;
pub use hooks::{
    CollectedEntry, CompactionFilter, FilterDecision, FilterEntry, HookError, TableContext, TablePropertiesCollector,
    TablePropertiesCollectorFactory, TableReason, UserProperties, ValueKind, MAX_PROPERTY_NAME_BYTES, MAX_USER_PROPERTIES_BYTES,
};
pub use db::TableProperties;
pub use keyspace::{Keyspace, KeyspaceOptions, DEFAULT_KEYSPACE, INTERNAL_KEYSPACE_PREFIX};
pub use metrics::{describe_metrics, MetricsHandle};
pub use merge::{MergeError, MergeOperator, MergeOperators, SortedSetUnion, U64AddOperator};
pub use options::{ChangeFeedRetention, Options, SyncPolicy};
pub use ts::{
    encoded_block_bytes, Aggregate, DownsampleReport, Point, SeriesInfo, TimeSeries, ValueCodec, BLOCK_POINTS, DEFAULT_OUT_OF_ORDER_WINDOW_MS, MAX_LABELS, MAX_NAME_BYTES,
};
pub use replica::{ConflictRecord, ConflictResolver, Replica, Winner, DOC_KEYSPACE_PREFIX};
/// The replication crate's types a sync session is set up with.
pub use sync::{CrdtState, Entry, FrameChannel, Hlc, ReplicaId, Rights, Scope, SessionError, SessionOptions, SyncStats, Version};
/// An in-memory pair of connected frame channels (tests, and two stores in one process).
pub use sync::mem::{mem_pair, MemChannel};

pub use crypto::vfs::{SimVfs, StdVfs, Vfs};
/// The file-system layer every store file goes through: implement [`Vfs`] to
/// run a store on another file system, or to inject faults in tests.
pub use crypto::vfs;
pub use crypto::{Argon2Params, Credential};
pub use crypto::{HybridKeypair, HybridPublicKey, HybridSecretKey, RecoveryKey, RecoveryShare, SlotInfo, SlotKind};
pub use index::Compression;

