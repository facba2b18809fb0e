//! The async API (`AsyncDb`, the `Storage` trait) under a multi-threaded tokio
//! runtime: concurrent tasks, each checked against its own model after every
//! operation, then the whole store against all models after a reopen.

mod common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use synapsed_storage::{AsyncDb, Db, Dispatch, Storage, WriteBatch};

#[derive(Debug, Clone)]
enum Op {
    Put(u8, Vec<u8>),
    Delete(u8),
    Get(u8),
    Exists(u8),
    List,
    Batch(Vec<(u8, Option<Vec<u8>>)>),
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    let value = proptest::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        4 => (0u8..24, value.clone()).prop_map(|(k, v)| Op::Put(k, v)),
        2 => (0u8..24).prop_map(Op::Delete),
        3 => (0u8..24).prop_map(Op::Get),
        1 => (0u8..24).prop_map(Op::Exists),
        1 => Just(Op::List),
        1 => proptest::collection::vec((0u8..24, proptest::option::of(value)), 1..6).prop_map(Op::Batch),
        1 => Just(Op::Flush),
    ]
}

fn key(task: usize, k: u8) -> Vec<u8> {
    format!("task{task}/key{k:02}").into_bytes()
}

/// Runs `ops` as task `task` against `store`, checking each answer against the
/// task's model (tasks own disjoint keys, so each model is exact whatever the
/// interleaving); returns the model.
async fn run_task(store: AsyncDb, task: usize, ops: Vec<Op>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut model = BTreeMap::new();
    for op in ops {
        match op {
            Op::Put(k, v) => {
                store.put(&key(task, k), &v).await.unwrap();
                model.insert(key(task, k), v);
            }
            Op::Delete(k) => {
                store.delete(&key(task, k)).await.unwrap();
                model.remove(&key(task, k));
            }
            Op::Get(k) => assert_eq!(store.get(&key(task, k)).await.unwrap(), model.get(&key(task, k)).cloned()),
            Op::Exists(k) => assert_eq!(store.exists(&key(task, k)).await.unwrap(), model.contains_key(&key(task, k))),
            Op::List => {
                let listed = store.list(format!("task{task}/").as_bytes()).await.unwrap();
                assert_eq!(listed, model.keys().cloned().collect::<Vec<_>>());
            }
            Op::Batch(ops) => {
                let mut batch = WriteBatch::new();
                for (k, v) in ops {
                    match v {
                        Some(v) => {
                            batch.put(key(task, k), &v);
                            model.insert(key(task, k), v);
                        }
                        None => {
                            batch.delete(key(task, k));
                            model.remove(&key(task, k));
                        }
                    }
                }
                store.write(batch).await.unwrap();
            }
            Op::Flush => store.flush().await.unwrap(),
        }
    }
    model
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn concurrent_tasks_agree_with_their_models(
        tasks in proptest::collection::vec(proptest::collection::vec(op(), 1..60), 2..5),
        spawn_blocking in any::<bool>(),
    ) {
        let dispatch = if spawn_blocking { Dispatch::SpawnBlocking } else { Dispatch::Auto };
        let tmp = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
        let expected = runtime.block_on(async {
            let store = AsyncDb::new(Db::create(tmp.path(), &common::cred(), common::options()).unwrap()).with_dispatch(dispatch);
            let handles: Vec<_> = tasks.into_iter().enumerate().map(|(i, ops)| tokio::spawn(run_task(store.clone(), i, ops))).collect();
            let mut expected = BTreeMap::new();
            for handle in handles {
                expected.extend(handle.await.unwrap());
            }
            store.close().await.unwrap();
            expected
        });
        let db = Db::open(tmp.path(), &common::cred(), common::options()).unwrap();
        let contents: BTreeMap<_, _> = db.scan_prefix(b"").unwrap().map(Result::unwrap).collect();
        prop_assert_eq!(contents, expected);
        db.close().unwrap();
    }
}

#[test]
fn close_refuses_while_another_handle_is_alive() {
    let tmp = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    runtime.block_on(async {
        let store = AsyncDb::new(Db::create(tmp.path(), &common::cred(), common::options()).unwrap());
        let other = store.clone();
        let refused = store.close().await;
        assert!(matches!(refused, Err(synapsed_storage::Error::InvalidArgument(_))), "{refused:?}");
        other.put(b"k", b"v").await.unwrap();
        assert_eq!(other.get(b"k").await.unwrap(), Some(b"v".to_vec()));
        other.close().await.unwrap();
    });
}

/// A current-thread runtime (where `block_in_place` is not allowed) works too.
#[test]
fn a_current_thread_runtime_uses_the_blocking_pool() {
    let tmp = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let store = AsyncDb::new(Db::create(tmp.path(), &common::cred(), common::options()).unwrap());
        let writers: Vec<_> = (0..4u8)
            .map(|t| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..20u8 {
                        store.put(&[t, i], &[i]).await.unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        assert_eq!(store.list(b"").await.unwrap().len(), 80);
        assert!(store.exists(&[3, 19]).await.unwrap());
        store.close().await.unwrap();
    });
}
