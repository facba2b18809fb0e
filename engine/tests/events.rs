//! The event listener and the `tracing` events: a recording listener sees the
//! events of a flush and a compaction, with the right files, and no key or
//! value bytes reach any event or any `tracing` field.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::{Arc, Mutex};

use synapsed_storage::{
    BackgroundError, CompactionBegin, CompactionEnd, Credential, Db, EventListener, FileDeleted, FlushBegin, FlushEnd, Options,
    TableFileCreated,
};

/// Every event received, as its `Debug` text, in order.
#[derive(Debug, Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
}

impl Recorder {
    fn push(&self, name: &str, event: &dyn std::fmt::Debug) {
        self.events.lock().unwrap().push(format!("{name} {event:?}"));
    }
    fn all(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
    fn named(&self, name: &str) -> Vec<String> {
        self.all().into_iter().filter(|e| e.starts_with(&format!("{name} "))).collect()
    }
}

impl EventListener for Recorder {
    fn on_flush_begin(&self, e: &FlushBegin) {
        self.push("flush_begin", e);
    }
    fn on_flush_end(&self, e: &FlushEnd) {
        assert!(!e.output_files.is_empty(), "a flush of a non-empty memtable writes a table");
        self.push("flush_end", e);
    }
    fn on_compaction_begin(&self, e: &CompactionBegin) {
        assert!(!e.input_files.is_empty() && e.input_bytes > 0, "{e:?}");
        self.push("compaction_begin", e);
    }
    fn on_compaction_end(&self, e: &CompactionEnd) {
        assert!(e.output_bytes > 0 && !e.output_files.is_empty(), "{e:?}");
        self.push("compaction_end", e);
    }
    fn on_background_error(&self, e: &BackgroundError) {
        self.push("background_error", e);
    }
    fn on_table_file_created(&self, e: &TableFileCreated) {
        assert!(e.file.ends_with(".sst") && e.bytes > 0, "{e:?}");
        self.push("table_file_created", e);
    }
    fn on_file_deleted(&self, e: &FileDeleted) {
        self.push("file_deleted", e);
    }
}

/// Every field value of every `tracing` span and event, as text.
mod capture {
    use std::fmt::Write as _;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    #[derive(Default)]
    pub struct Capture {
        pub text: Arc<Mutex<Vec<String>>>,
        next_id: AtomicU64,
    }

    struct Fields(String);
    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            let mut f = Fields(span.metadata().name().to_string());
            span.record(&mut f);
            self.text.lock().unwrap().push(f.0);
            Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
        }
        fn record(&self, _: &Id, values: &Record<'_>) {
            let mut f = Fields(String::new());
            values.record(&mut f);
            self.text.lock().unwrap().push(f.0);
        }
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut f = Fields(String::new());
            event.record(&mut f);
            self.text.lock().unwrap().push(f.0);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}

const KEY_MARK: &str = "KEYMARKkeymark";
const VALUE_MARK: &str = "VALUEMARKvaluemark";
const PASS_MARK: &str = "PASSMARKpassmark";

fn options(listener: Arc<Recorder>) -> Options {
    let mut options = Options::tiny_for_tests();
    options.background_compaction = false;
    options.secure_delete_passes = 1;
    options.event_listener = Some(listener);
    options
}

#[test]
fn a_recording_listener_sees_a_flush_and_a_compaction_and_no_key_or_value_bytes() {
    let capture = capture::Capture::default();
    let traced = Arc::clone(&capture.text);
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    tracing::subscriber::with_default(capture, || {
        let db = Db::create(dir.path(), &Credential::passphrase(PASS_MARK), options(Arc::clone(&recorder))).unwrap();
        for round in 0..2 {
            for i in 0..40 {
                db.put(format!("{KEY_MARK}-{round}-{i:04}").as_bytes(), format!("{VALUE_MARK}-{i}").as_bytes()).unwrap();
            }
            db.flush().unwrap();
        }
        db.compact_range(None, None).unwrap();
        db.close().unwrap();
        let db = Db::open(dir.path(), &Credential::passphrase(PASS_MARK), options(Arc::clone(&recorder))).unwrap();
        assert!(db.get(format!("{KEY_MARK}-1-0007").as_bytes()).unwrap().is_some());
        db.close().unwrap();
    });

    let flush_begins = recorder.named("flush_begin");
    let flush_ends = recorder.named("flush_end");
    assert!(flush_begins.len() >= 2, "{:#?}", recorder.all());
    assert_eq!(flush_begins.len(), flush_ends.len(), "{:#?}", recorder.all());
    let compaction_ends = recorder.named("compaction_end");
    assert!(!recorder.named("compaction_begin").is_empty() && !compaction_ends.is_empty(), "{:#?}", recorder.all());
    assert!(recorder.named("table_file_created").len() >= 3, "two flushes and a compaction: {:#?}", recorder.all());
    // The compaction's inputs are removed once it finishes, overwritten first.
    let deleted = recorder.named("file_deleted");
    assert!(deleted.iter().any(|d| d.contains(".sst") && d.contains("overwritten: true")), "{:#?}", recorder.all());
    assert!(recorder.named("background_error").is_empty(), "{:#?}", recorder.all());
    // A flush's end follows its begin; a compaction's end follows the flushes.
    let all = recorder.all();
    let position = |name: &str| all.iter().position(|e| e.starts_with(name)).unwrap();
    assert!(position("flush_begin") < position("flush_end"));
    assert!(position("compaction_begin") < position("compaction_end"));

    let traced = traced.lock().unwrap().clone();
    assert!(traced.iter().any(|t| t.starts_with("flush")), "{traced:#?}");
    assert!(traced.iter().any(|t| t.starts_with("compaction")), "{traced:#?}");
    assert!(traced.iter().any(|t| t.starts_with("open")), "{traced:#?}");
    for text in all.iter().chain(&traced) {
        for mark in [KEY_MARK, VALUE_MARK, PASS_MARK] {
            assert!(!text.contains(mark), "{mark:?} in an event: {text}");
        }
    }
}

#[test]
fn without_a_listener_the_store_works_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::tiny_for_tests();
    options.background_compaction = false;
    let db = Db::create(dir.path(), &Credential::passphrase("events"), options).unwrap();
    db.put(b"k", b"v").unwrap();
    db.flush().unwrap();
    db.compact_range(None, None).unwrap();
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

/// Counts write stalls begun and ended.
#[derive(Debug, Default)]
struct Stalls {
    begun: std::sync::atomic::AtomicUsize,
    ended: std::sync::atomic::AtomicUsize,
}

impl EventListener for Stalls {
    fn on_write_stall_begin(&self, _: &synapsed_storage::WriteStallBegin) {
        self.begun.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn on_write_stall_end(&self, e: &synapsed_storage::WriteStallEnd) {
        assert!(e.duration > std::time::Duration::ZERO);
        self.ended.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn every_write_stall_that_begins_ends() {
    let dir = tempfile::tempdir().unwrap();
    let stalls = Arc::new(Stalls::default());
    let options = Options::tiny_for_tests()
        .with_background_compaction(true)
        .with_max_immutable_memtables(1)
        .with_event_listener(Some(Arc::clone(&stalls) as Arc<dyn EventListener>));
    let db = Db::create(dir.path(), &Credential::passphrase(PASS_MARK), options).unwrap();
    let value = vec![3u8; 512];
    for i in 0..4000 {
        db.put(format!("{i:08}").as_bytes(), &value).unwrap();
    }
    db.close().unwrap();
    let begun = stalls.begun.load(std::sync::atomic::Ordering::SeqCst);
    assert!(begun > 0, "4000 writes of 512 bytes into 4 KiB memtables with one frozen memtable allowed never stalled");
    assert_eq!(begun, stalls.ended.load(std::sync::atomic::Ordering::SeqCst));
}
