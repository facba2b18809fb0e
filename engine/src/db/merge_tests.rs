//! Regression tests of merge folding that need the engine's internals.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crypto::vfs::SimVfs;
use crypto::Credential;
use index::ValueKind;

use crate::{Db, IterOptions, Options, U64AddOperator, DEFAULT_KEYSPACE};

/// A read view can hold one version twice: a memtable and the level-0 table it
/// was just flushed to (`Inner::read_view` reads the memtables before the
/// version). A put read twice is harmless; an operand folded twice counts
/// twice. Found by the model test (`tiny-no-cache`, seed 1): a reverse scan at
/// a snapshot showed an operand appended twice.
#[test]
fn an_operand_held_by_a_memtable_and_a_table_is_folded_once() {
    let options = Options::tiny_for_tests().with_vfs(SimVfs::new()).with_merge_operator(DEFAULT_KEYSPACE, Arc::new(U64AddOperator));
    let db = Db::create(Path::new("/m/store"), &Credential::passphrase("merge"), options).unwrap();
    db.put(b"k", &U64AddOperator::encode(10)).unwrap();
    db.merge(b"k", &U64AddOperator::encode(1)).unwrap();
    let seqno = db.inner.pipeline.visible.load(Ordering::Acquire);
    db.flush().unwrap();
    // The operand again, as the memtable it was flushed from would still hold it.
    db.inner.pipeline.mems.read().active.insert(b"k", seqno, ValueKind::Merge, &U64AddOperator::encode(1));
    let eleven = U64AddOperator::encode(11).to_vec();
    assert_eq!(db.get(b"k").unwrap(), Some(eleven.clone()));
    for reverse in [false, true] {
        let pairs: Vec<_> = db.range(Bound::Unbounded, Bound::Unbounded, reverse, None).unwrap().map(Result::unwrap).collect();
        assert_eq!(pairs, vec![(b"k".to_vec(), eleven.clone())], "reverse {reverse}");
    }
    let mut c = db.cursor(IterOptions::new()).unwrap();
    c.seek_for_prev(b"z").unwrap();
    assert_eq!(c.value(), Some(&eleven[..]));
}
