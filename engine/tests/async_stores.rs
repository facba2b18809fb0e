//! The async document, blob and sync traits (`DocumentStore`, `BlobStore`,
//! `SyncableStorage` on `AsyncDb`) under a multi-threaded tokio runtime:
//! concurrent tasks, each checked against its own model after every
//! operation, then the store against the models after a reopen; blob
//! writers and readers running at once, with seeks, abandoned writers and
//! overwrites under open readers; two stores syncing from async tasks; and a
//! long blob write that must not stall the runtime's other tasks.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::io::SeekFrom;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{json, Value};
use synapsed_storage::docs::{IndexSpec, Query};
use synapsed_storage::{
    mem_pair, AsyncBlobStore, AsyncDb, ConflictResolver, Db, DocumentStore, Entry, Error, KeyspaceOptions, SessionOptions, SyncRole,
    SyncableStorage, Winner,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap()
}

// ---- documents ----

#[derive(Debug, Clone)]
enum DocOp {
    Put(u8, i64),
    Delete(u8),
    Get(u8),
    All,
    AtLeast(i64),
    Index,
}

fn doc_op() -> impl Strategy<Value = DocOp> {
    prop_oneof![
        5 => (0u8..16, 0i64..8).prop_map(|(id, n)| DocOp::Put(id, n)),
        2 => (0u8..16).prop_map(DocOp::Delete),
        3 => (0u8..16).prop_map(DocOp::Get),
        1 => Just(DocOp::All),
        2 => (0i64..8).prop_map(DocOp::AtLeast),
        1 => Just(DocOp::Index),
    ]
}

fn doc_id(id: u8) -> String {
    format!("d{id:02}")
}

/// Runs `ops` on collection `c{task}`, checking every answer against the
/// task's model (`_id` -> `n`); returns the model.
async fn doc_task(store: AsyncDb, task: usize, ops: Vec<DocOp>) -> BTreeMap<String, i64> {
    let coll = format!("c{task}");
    let mut model: BTreeMap<String, i64> = BTreeMap::new();
    for op in ops {
        match op {
            DocOp::Put(id, n) => {
                store.put_document(&coll, &json!({"_id": doc_id(id), "n": n})).await.unwrap();
                model.insert(doc_id(id), n);
            }
            DocOp::Delete(id) => {
                let existed = store.delete_document(&coll, &doc_id(id)).await.unwrap();
                assert_eq!(existed, model.remove(&doc_id(id)).is_some());
            }
            DocOp::Get(id) => {
                let got = store.get_document(&coll, &doc_id(id)).await.unwrap();
                assert_eq!(got.map(|d| d["n"].as_i64().unwrap()), model.get(&doc_id(id)).copied());
            }
            DocOp::All => {
                let result = store.query(&coll, &Query::new(json!({}))).await.unwrap();
                let ids: Vec<String> = result.documents.iter().map(|d| d["_id"].as_str().unwrap().to_owned()).collect();
                assert_eq!(ids, model.keys().cloned().collect::<Vec<_>>());
            }
            DocOp::AtLeast(n) => {
                let result = store.query(&coll, &Query::new(json!({"n": {"$gte": n}}))).await.unwrap();
                let got: Vec<(String, i64)> =
                    result.documents.iter().map(|d| (d["_id"].as_str().unwrap().to_owned(), d["n"].as_i64().unwrap())).collect();
                let want: Vec<(String, i64)> = model.iter().filter(|(_, &v)| v >= n).map(|(k, &v)| (k.clone(), v)).collect();
                assert_eq!(got, want);
                let indexed = store.indexes(&coll).await.unwrap().iter().any(|i| i.field == "n" && i.ready);
                assert_eq!(result.explain.index.is_some(), indexed, "{:?}", result.explain);
            }
            DocOp::Index => {
                store.create_index(&coll, &IndexSpec::ordered("n")).await.unwrap();
                assert!(store.indexes(&coll).await.unwrap().iter().any(|i| i.field == "n" && i.ready));
            }
        }
    }
    model
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn concurrent_document_tasks_agree_with_their_models(tasks in proptest::collection::vec(proptest::collection::vec(doc_op(), 1..40), 2..5)) {
        let tmp = tempfile::tempdir().unwrap();
        let models = runtime().block_on(async {
            let store = AsyncDb::new(Db::create(tmp.path(), &common::cred(), common::options()).unwrap());
            let handles: Vec<_> = tasks.into_iter().enumerate().map(|(i, ops)| tokio::spawn(doc_task(store.clone(), i, ops))).collect();
            let mut models = Vec::new();
            for handle in handles {
                models.push(handle.await.unwrap());
            }
            store.close().await.unwrap();
            models
        });
        let db = Db::open(tmp.path(), &common::cred(), common::options()).unwrap();
        for (task, model) in models.iter().enumerate() {
            let docs = db.docs().query(&format!("c{task}"), &Query::new(json!({}))).unwrap().documents;
            let got: BTreeMap<String, i64> = docs.iter().map(|d| (d["_id"].as_str().unwrap().to_owned(), d["n"].as_i64().unwrap())).collect();
            prop_assert_eq!(&got, model);
            if db.docs().collections().unwrap().contains(&format!("c{task}")) {
                let report = db.docs().check(&format!("c{task}")).unwrap();
                prop_assert!(report.problems.is_empty(), "{:?}", report.problems);
            }
        }
        db.close().unwrap();
    }
}

// ---- blobs ----

#[derive(Debug, Clone)]
enum BlobOp {
    /// Writes blob `key` of `len` seeded bytes in pieces of `piece` bytes.
    Write { key: u8, len: usize, seed: u64, piece: usize },
    /// The same, but the writer is dropped before `finish`.
    Abandon { key: u8, len: usize, seed: u64 },
    /// Reads `(offset, length)` ranges of blob `key` after seeking to each.
    Read { key: u8, ranges: Vec<(u32, u16)> },
    /// Opens a reader, overwrites the blob, then reads it whole: the old bytes.
    ReadAcrossOverwrite { key: u8, len: usize, seed: u64 },
    Delete(u8),
}

fn blob_op() -> impl Strategy<Value = BlobOp> {
    let len = prop_oneof![1 => Just(0usize), 3 => 1usize..4096, 3 => 200_000usize..700_000];
    prop_oneof![
        4 => (0u8..3, len.clone(), any::<u64>(), prop_oneof![Just(1usize), 100usize..5000, 60_000usize..400_000])
            .prop_map(|(key, len, seed, piece)| BlobOp::Write { key, len, seed, piece }),
        1 => (0u8..3, len.clone(), any::<u64>()).prop_map(|(key, len, seed)| BlobOp::Abandon { key, len, seed }),
        4 => (0u8..3, proptest::collection::vec((0u32..800_000, any::<u16>()), 1..5)).prop_map(|(key, ranges)| BlobOp::Read { key, ranges }),
        1 => (0u8..3, len, any::<u64>()).prop_map(|(key, len, seed)| BlobOp::ReadAcrossOverwrite { key, len, seed }),
        1 => (0u8..3).prop_map(BlobOp::Delete),
    ]
}

fn blob_key(task: usize, key: u8) -> Vec<u8> {
    format!("t{task}/b{key}").into_bytes()
}

/// Writes `data` through `stream_write` in pieces of `piece` bytes (the last
/// one shorter), flushing now and then.
async fn write_pieces(store: &AsyncDb, key: &[u8], data: &[u8], piece: usize) -> synapsed_storage::AsyncBlobWriter {
    let mut writer = store.stream_write(key).await.unwrap();
    for (i, part) in data.chunks(piece.max(1)).enumerate() {
        writer.write_all(part).await.unwrap();
        if i % 7 == 3 {
            writer.flush().await.unwrap();
        }
    }
    assert_eq!(writer.bytes_written(), data.len() as u64);
    writer
}

async fn read_whole(store: &AsyncDb, key: &[u8]) -> Option<Vec<u8>> {
    let mut reader = store.stream_read(key).await.unwrap()?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await.unwrap();
    assert_eq!(out.len() as u64, reader.len());
    reader.close().await;
    Some(out)
}

async fn blob_task(store: AsyncDb, task: usize, ops: Vec<BlobOp>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for op in ops {
        match op {
            BlobOp::Write { key, len, seed, piece } => {
                let data = common::random(len, seed);
                let writer = write_pieces(&store, &blob_key(task, key), &data, piece).await;
                assert_eq!(writer.finish().await.unwrap(), len as u64);
                model.insert(blob_key(task, key), data);
            }
            BlobOp::Abandon { key, len, seed } => {
                let data = common::random(len, seed);
                drop(write_pieces(&store, &blob_key(task, key), &data, 50_000).await);
            }
            BlobOp::Read { key, ranges } => {
                let want = model.get(&blob_key(task, key));
                let Some(mut reader) = store.stream_read(&blob_key(task, key)).await.unwrap() else {
                    assert!(want.is_none());
                    continue;
                };
                let want = want.unwrap();
                assert_eq!(reader.len(), want.len() as u64);
                for (offset, length) in ranges {
                    let offset = u64::from(offset) % (want.len() as u64 + 1);
                    // Alternate absolute, relative and from-the-end seeks.
                    let at = match offset % 3 {
                        0 => reader.seek(SeekFrom::Start(offset)).await.unwrap(),
                        1 => reader.seek(SeekFrom::Current(offset as i64 - reader.position() as i64)).await.unwrap(),
                        _ => reader.seek(SeekFrom::End(offset as i64 - want.len() as i64)).await.unwrap(),
                    };
                    assert_eq!(at, offset);
                    let length = usize::from(length) * 8;
                    let mut got = Vec::new();
                    (&mut reader).take(length as u64).read_to_end(&mut got).await.unwrap();
                    let start = offset as usize;
                    assert_eq!(got, want[start..(start + length).min(want.len())], "blob {key} at {offset} for {length}");
                }
                reader.close().await;
            }
            BlobOp::ReadAcrossOverwrite { key, len, seed } => {
                let reader = store.stream_read(&blob_key(task, key)).await.unwrap();
                let data = common::random(len, seed);
                write_pieces(&store, &blob_key(task, key), &data, 100_000).await.finish().await.unwrap();
                let old = model.insert(blob_key(task, key), data);
                match reader {
                    Some(mut reader) => {
                        let mut got = Vec::new();
                        reader.read_to_end(&mut got).await.unwrap();
                        assert_eq!(Some(got), old);
                        reader.close().await;
                    }
                    None => assert!(old.is_none()),
                }
            }
            BlobOp::Delete(key) => {
                let existed = store.delete_blob(&blob_key(task, key)).await.unwrap();
                assert_eq!(existed, model.remove(&blob_key(task, key)).is_some());
            }
        }
        assert_eq!(
            store.blob_len(&blob_key(task, 0)).await.unwrap(),
            model.get(&blob_key(task, 0)).map(|v| v.len() as u64)
        );
    }
    model
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn concurrent_blob_writers_and_readers_agree_with_their_models(
        tasks in proptest::collection::vec(proptest::collection::vec(blob_op(), 1..10), 2..4),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let expected = runtime().block_on(async {
            let store = AsyncDb::new(Db::create(tmp.path(), &common::cred(), common::options()).unwrap());
            let handles: Vec<_> = tasks.into_iter().enumerate().map(|(i, ops)| tokio::spawn(blob_task(store.clone(), i, ops))).collect();
            let mut expected = BTreeMap::new();
            for handle in handles {
                // A stream that loses a piece or a seek waits forever: fail instead.
                expected.extend(tokio::time::timeout(Duration::from_secs(120), handle).await.expect("a blob task hung").unwrap());
            }
            let listed: BTreeMap<Vec<u8>, u64> = store.list_blobs().await.unwrap().into_iter().collect();
            assert_eq!(listed, expected.iter().map(|(k, v)| (k.clone(), v.len() as u64)).collect());
            for (key, data) in &expected {
                assert_eq!(read_whole(&store, key).await.as_ref(), Some(data));
            }
            store.close().await.unwrap();
            expected
        });
        let db = Db::open(tmp.path(), &common::cred(), common::options()).unwrap();
        let listed: BTreeMap<Vec<u8>, u64> = db.blobs().unwrap().list().unwrap().into_iter().collect();
        prop_assert_eq!(listed, expected.iter().map(|(k, v)| (k.clone(), v.len() as u64)).collect::<BTreeMap<_, _>>());
        for (key, data) in &expected {
            let got = common::read_blob(&db, key);
            prop_assert_eq!(got.as_ref(), Some(data));
        }
        db.blobs().unwrap().gc().unwrap();
        prop_assert!(db.blobs().unwrap().verify().unwrap().is_empty());
        db.close().unwrap();
    }
}

#[test]
fn an_abandoned_stream_writer_leaves_nothing_and_bad_keys_fail_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let store = AsyncDb::new(Db::create(tmp.path(), &common::cred(), common::options()).unwrap());
        let data = common::random(900_000, 1);
        let writer = write_pieces(&store, b"kept", &data, 65_536).await;
        writer.finish().await.unwrap();
        // An overwrite abandoned halfway leaves the old blob.
        let writer = write_pieces(&store, b"kept", &common::random(700_000, 2), 65_536).await;
        drop(writer);
        drop(write_pieces(&store, b"never", &common::random(500_000, 3), 65_536).await);
        assert_eq!(read_whole(&store, b"kept").await, Some(data));
        assert_eq!(store.blob_len(b"never").await.unwrap(), None);
        assert!(store.stream_read(b"never").await.unwrap().is_none());
        let long_key = vec![b'k'; 1 << 20];
        assert!(matches!(store.stream_write(&long_key).await, Err(Error::InvalidArgument(_))));
        // Seeking before the start is refused; past the end reads nothing.
        let mut reader = store.stream_read(b"kept").await.unwrap().unwrap();
        assert!(reader.seek(SeekFrom::End(-1_000_000)).await.is_err());
        assert_eq!(reader.seek(SeekFrom::Start(2_000_000)).await.unwrap(), 2_000_000);
        let mut rest = Vec::new();
        assert_eq!(reader.read_to_end(&mut rest).await.unwrap(), 0);
        reader.close().await;
        let listed = store.list_blobs().await.unwrap();
        assert_eq!(listed, vec![(b"kept".to_vec(), 900_000)]);
        store.close().await.unwrap();
    });
    let db = Db::open(tmp.path(), &common::cred(), common::options()).unwrap();
    // GC takes back what the abandoned writers wrote: only the kept blob's bytes stay.
    db.blobs().unwrap().gc().unwrap();
    let stats = db.blobs().unwrap().stats().unwrap();
    assert_eq!(stats.blobs, 1);
    assert!(stats.stored_bytes <= 900_000 + 4096, "{stats:?}");
    assert!(db.blobs().unwrap().verify().unwrap().is_empty());
    db.close().unwrap();
}

/// A resumable upload through the async trait: dropped halfway, resumed
/// where its committed chunks end, finished with the rest of the source.
#[test]
fn an_async_resumable_upload_continues_where_it_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let store = AsyncDb::new(Db::create(tmp.path(), &common::cred(), common::options()).unwrap());
        assert!(store.stream_resume(b"up").await.unwrap().is_none());
        let data = common::random(20 << 20, 4);
        let mut writer = store.stream_write_resumable(b"up").await.unwrap();
        writer.write_all(&data[..14 << 20]).await.unwrap();
        writer.flush().await.unwrap();
        drop(writer);
        assert!(store.stream_read(b"up").await.unwrap().is_none());
        // The dropped writer's task lets go of the upload soon after.
        let mut writer = loop {
            match store.stream_resume(b"up").await {
                Err(Error::InvalidArgument(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
                other => break other.unwrap().unwrap(),
            }
        };
        let at = writer.bytes_written() as usize;
        assert!((4 << 20..=14 << 20).contains(&at), "resumed at {at}");
        writer.write_all(&data[at..]).await.unwrap();
        assert_eq!(writer.bytes_written(), data.len() as u64);
        assert_eq!(writer.finish().await.unwrap(), data.len() as u64);
        assert_eq!(read_whole(&store, b"up").await, Some(data));
        assert!(store.stream_resume(b"up").await.unwrap().is_none());
        store.close().await.unwrap();
    });
}

/// The largest gap between ticks of a 1 ms interval task while `work` runs
/// on a one-worker runtime, and how long `work` took.
fn stall_probe<F, Fut>(store: AsyncDb, work: F) -> (Duration, Duration)
where
    F: FnOnce(AsyncDb) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_time().build().unwrap();
    runtime.block_on(async move {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ticker = {
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let mut largest = Duration::ZERO;
                let mut last = Instant::now();
                while !done.load(std::sync::atomic::Ordering::Acquire) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    largest = largest.max(last.elapsed());
                    last = Instant::now();
                }
                largest
            })
        };
        // Let the ticker start first.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let started = Instant::now();
        tokio::spawn(work(store.clone())).await.unwrap();
        let took = started.elapsed();
        done.store(true, std::sync::atomic::Ordering::Release);
        let largest = ticker.await.unwrap();
        store.close().await.unwrap();
        (largest, took)
    })
}

const LONG_BLOB: usize = 96 << 20;

/// A 96 MiB blob streamed in through `stream_write` on a one-worker runtime:
/// a ticking task keeps ticking (its largest gap is a small part of the
/// write's time), and the blob reads back.
#[test]
fn a_long_blob_write_does_not_stall_other_tasks() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &common::cred(), common::options().with_sync(synapsed_storage::SyncPolicy::Never)).unwrap();
    let (largest, took) = stall_probe(AsyncDb::new(db), |store| async move {
        let mut writer = store.stream_write(b"long").await.unwrap();
        // Distinct bytes throughout, so that no chunk is deduplicated.
        let mut piece = Vec::new();
        for i in 0..LONG_BLOB >> 20 {
            piece = common::random(1 << 20, i as u64);
            writer.write_all(&piece).await.unwrap();
        }
        assert_eq!(writer.finish().await.unwrap(), LONG_BLOB as u64);
        let mut reader = store.stream_read(b"long").await.unwrap().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        reader.seek(SeekFrom::Start(LONG_BLOB as u64 - (1 << 20))).await.unwrap();
        reader.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, piece);
        reader.close().await;
    });
    eprintln!("async stream write of {} MiB: {took:?}, largest tick gap {largest:?}", LONG_BLOB >> 20);
    assert!(largest * 5 < took, "a tick waited {largest:?} during a write of {took:?}");
}

/// The probe above can fail: the same write done by the blocking writer on
/// the runtime's only worker stops the ticker for the whole write.
#[test]
fn the_stall_probe_sees_a_blocking_write_on_the_worker() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &common::cred(), common::options().with_sync(synapsed_storage::SyncPolicy::Never)).unwrap();
    let (largest, took) = stall_probe(AsyncDb::new(db), |store| async move {
        let blobs = store.blocking().blobs().unwrap();
        let mut writer = blobs.writer(b"long").unwrap();
        for i in 0..LONG_BLOB >> 20 {
            std::io::Write::write_all(&mut writer, &common::random(1 << 20, i as u64)).unwrap();
        }
        writer.finish().unwrap();
    });
    eprintln!("blocking write on the worker: {took:?}, largest tick gap {largest:?}");
    assert!(largest * 2 > took, "a blocking write should have stopped the ticker: gap {largest:?} of {took:?}");
}

// ---- sync ----

/// A replicated write: its version and value (`None` for a delete).
type Written = (synapsed_storage::Version, Option<Vec<u8>>);

/// Keeps the older of two concurrent writes.
struct KeepOlder;

impl ConflictResolver for KeepOlder {
    fn resolve(&self, _keyspace: &str, _key: &[u8], _older: &Entry, _newer: &Entry) -> Winner {
        Winner::Older
    }
}

async fn open_replicated(path: &std::path::Path) -> AsyncDb {
    let db = Db::create(path, &common::cred(), common::options()).unwrap();
    for name in ["notes", "older"] {
        db.create_keyspace(name, KeyspaceOptions::default()).unwrap();
    }
    let store = AsyncDb::new(db);
    for name in ["notes", "older"] {
        store.replicate(name).await.unwrap();
    }
    store.resolve_conflict("older", Arc::new(KeepOlder)).await.unwrap();
    store
}

/// Writes from concurrent tasks on two stores (some keys on one side only,
/// some on both: conflicts), then a session between them run as two async
/// tasks over an in-memory channel: both end equal to the model (the greater
/// version wins in `notes`, the smaller in `older`, whose resolver the trait
/// installed), and both list the conflicts they resolved.
#[test]
fn two_stores_sync_from_async_tasks() {
    let (tmp_a, tmp_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    runtime().block_on(async {
        let (a, b) = (open_replicated(tmp_a.path()).await, open_replicated(tmp_b.path()).await);
        assert_ne!(a.replica_id().await.unwrap(), b.replica_id().await.unwrap());
        // (keyspace, key) -> [(version, value or None for a delete)]
        let mut writes: Vec<_> = Vec::new();
        let mut tasks = Vec::new();
        for (side, store) in [("a", a.clone()), ("b", b.clone())] {
            for t in 0..2 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let mut done = Vec::new();
                    for i in 0..25u32 {
                        let keyspace = if i % 3 == 0 { "older" } else { "notes" };
                        // Keys k0..k4 are written on both sides; the others on one.
                        let key = if i % 5 == 0 { format!("k{}", i / 5) } else { format!("{side}{t}-{i}") };
                        if i % 7 == 6 {
                            let v = store.delete_replicated(keyspace, key.as_bytes()).await.unwrap();
                            done.push((keyspace, key, v, None));
                        } else {
                            let value = format!("{side}{t}:{i}").into_bytes();
                            let v = store.put_replicated(keyspace, key.as_bytes(), &value).await.unwrap();
                            done.push((keyspace, key, v, Some(value)));
                        }
                    }
                    done
                }));
            }
        }
        for t in tasks {
            writes.extend(t.await.unwrap());
        }
        // The model: per key, the greatest version in `notes`; in `older`, each
        // side first keeps its own latest write, then the sync keeps the older
        // of the two sides' survivors.
        let mut latest: BTreeMap<(&str, String, synapsed_storage::ReplicaId), Written> = BTreeMap::new();
        for (ks, key, v, value) in &writes {
            let slot = latest.entry((*ks, key.clone(), v.replica)).or_insert((*v, value.clone()));
            if *v > slot.0 {
                *slot = (*v, value.clone());
            }
        }
        let mut model: BTreeMap<(&str, String), Written> = BTreeMap::new();
        for ((ks, key, _), (v, value)) in latest {
            let keep_older = ks == "older";
            match model.get(&(ks, key.clone())) {
                Some((w, _)) if (keep_older && *w < v) || (!keep_older && *w > v) => {}
                _ => {
                    model.insert((ks, key), (v, value));
                }
            }
        }
        let (to_b, to_a) = mem_pair();
        let (sa, sb) = tokio::join!(
            a.sync_with(to_b, SyncRole::Initiator, SessionOptions::default()),
            b.sync_with(to_a, SyncRole::Responder, SessionOptions::default()),
        );
        let (sa, sb) = (sa.unwrap(), sb.unwrap());
        assert!(sa.full && sb.full);
        for store in [&a, &b] {
            let db = Arc::clone(store.blocking());
            let contents = tokio::task::spawn_blocking(move || common::keyspace_contents(&db)).await.unwrap();
            for ks in ["notes", "older"] {
                let got = &contents.iter().find(|(name, _)| name == ks).unwrap().1;
                let want: BTreeMap<Vec<u8>, Vec<u8>> = model
                    .iter()
                    .filter(|((k, _), _)| *k == ks)
                    .filter_map(|((_, key), (_, value))| value.clone().map(|v| (key.clone().into_bytes(), v)))
                    .collect();
                assert_eq!(got, &want, "keyspace {ks}");
            }
        }
        // Five shared keys, each written on both sides: each side resolved
        // the conflicts that reached it.
        let conflicts = a.conflicts().await.unwrap().len() + b.conflicts().await.unwrap().len();
        assert!(conflicts >= 5, "{conflicts} conflicts recorded");
        assert!(a.conflicts().await.unwrap().iter().all(|c| c.kept != c.lost));
        // A second session has nothing left to send.
        let (to_b, to_a) = mem_pair();
        let (sa, _) = tokio::join!(
            a.sync_with(to_b, SyncRole::Initiator, SessionOptions::default()),
            b.sync_with(to_a, SyncRole::Responder, SessionOptions::default()),
        );
        assert_eq!(sa.unwrap().entries_sent, 0);
        a.close().await.unwrap();
        b.close().await.unwrap();
    });
}

#[test]
fn sync_trait_errors_are_typed() {
    let tmp = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let store = AsyncDb::new(Db::create(tmp.path(), &common::cred(), common::options()).unwrap());
        assert!(matches!(store.replicate("absent").await, Err(Error::NoSuchKeyspace(_))));
        assert!(matches!(store.put_replicated("absent", b"k", b"v").await, Err(Error::NoSuchKeyspace(_))));
        store.blocking().create_keyspace("plain", KeyspaceOptions::default()).unwrap();
        assert!(matches!(store.put_replicated("plain", b"k", b"v").await, Err(Error::InvalidArgument(_))));
        // A peer that hangs up at once: a session error, not a hang.
        let (to_peer, peer) = mem_pair();
        drop(peer);
        assert!(store.sync_with(to_peer, SyncRole::Initiator, SessionOptions::default()).await.is_err());
        // Documents with bad input are refused with the engine's error.
        assert!(matches!(store.put_document("c", &Value::from(3)).await, Err(Error::InvalidArgument(_))));
        store.close().await.unwrap();
    });
}

#[test]
fn close_waits_for_a_dropped_stream_writer_to_let_go() {
    for round in 0..5u64 {
        let tmp = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let store = AsyncDb::new(Db::create(tmp.path(), &common::cred(), common::options()).unwrap());
            let mut writer = store.stream_write(b"dropped").await.unwrap();
            writer.write_all(&common::random(6 << 20, round)).await.unwrap();
            drop(writer);
            // The writer's task still holds the store while it winds down.
            store.close().await.unwrap();
        });
        let db = Db::open(tmp.path(), &common::cred(), common::options()).unwrap();
        assert_eq!(db.blobs().unwrap().len(b"dropped").unwrap(), None, "a dropped writer commits nothing");
    }
}
