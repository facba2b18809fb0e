//! Metrics and traces never carry keys, values or key material: marker
//! strings go into keys, values, document collections, fields and values,
//! blob keys and bytes, series names, keyspace names and the passphrase; every
//! path runs (KV put/get/scan/batch, document put/index/query, blob put/get,
//! time-series append/query, a sync session between two stores, key
//! rotation, secure delete, backup); then the Prometheus scrape and the whole
//! trace output (every span and event, at TRACE level, of every thread) are
//! searched for each marker, in plain, hex and byte-list form, and for the
//! recovery key. The same run checks that the metrics of every path were
//! recorded and that the spans of open, flush, compaction, rotation, secure
//! delete and the sync session were entered with their fields.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::fmt::Write as _;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::json;
use synapsed_storage::backup::{self, Target};
use synapsed_storage::docs::{IndexSpec, Query};
use synapsed_storage::{mem_pair, Credential, Db, KeyspaceOptions, SessionOptions, WriteBatch};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A subscriber that writes every span (with its fields, and what is
/// recorded into it later) and every event, at every level, into one buffer.
#[derive(Clone, Default)]
struct Capture {
    out: Arc<Mutex<String>>,
    next_id: Arc<AtomicU64>,
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={}", field.name(), value);
    }
    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut out = self.out.lock().unwrap();
        let _ = write!(out, "span #{id} {} {}:", span.metadata().level(), span.metadata().name());
        span.record(&mut Fields(&mut out));
        out.push('\n');
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut out = self.out.lock().unwrap();
        let _ = write!(out, "record #{}:", span.into_u64());
        values.record(&mut Fields(&mut out));
        out.push('\n');
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut out = self.out.lock().unwrap();
        let _ = write!(out, "event {} {}:", event.metadata().level(), event.metadata().target());
        event.record(&mut Fields(&mut out));
        out.push('\n');
    }
    fn enter(&self, span: &Id) {
        let _ = writeln!(self.out.lock().unwrap(), "enter #{}", span.into_u64());
    }
    fn exit(&self, _: &Id) {}
}

/// The forms a secret may take in text: itself, lower and upper hex, and the
/// `Debug` form of its bytes.
fn forms(secret: &[u8]) -> Vec<String> {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let list = format!("{secret:?}");
    let mut out = vec![hex.clone(), hex.to_uppercase(), list[..list.len() - 1].to_string()];
    if let Ok(text) = std::str::from_utf8(secret) {
        out.push(text.to_string());
    }
    out
}

/// The first form of a secret found in `text`, if any.
fn leak(text: &str, secrets: &[Vec<u8>]) -> Option<String> {
    secrets.iter().flat_map(|s| forms(s)).find(|form| text.contains(form.as_str()))
}

/// The value of the sample `series` (exact text, labels included).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

#[test]
fn no_marker_and_no_key_material_in_metrics_or_traces_through_every_path() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.clone()).unwrap();
    let prometheus = PrometheusBuilder::new().install_recorder().unwrap();
    synapsed_storage::describe_metrics();

    let m = |role: &str| format!("OBSCANARY{role}{:08x}", rand::random::<u32>());
    let (key, value, ks_name, coll, field, doc_value, blob_key, blob_marker, series, passphrase) =
        (m("key"), m("value"), m("ks"), m("coll"), m("field"), m("docval"), m("blobkey"), m("blobbytes"), m("series"), m("pass"));
    let mut secrets: Vec<Vec<u8>> =
        [&key, &value, &ks_name, &coll, &field, &doc_value, &blob_key, &blob_marker, &series, &passphrase].iter().map(|s| s.as_bytes().to_vec()).collect();

    let tmp = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let cred = Credential::passphrase(&passphrase);
    let options = || common::options().with_metrics(true);
    let (a, recovery) = Db::create_with_recovery(&dir_a, &cred, options()).unwrap();
    secrets.push(recovery.as_bytes().to_vec());
    secrets.push(recovery.to_text().as_bytes().to_vec());

    // Key-value: puts, a batch, gets, a scan, in the default and a named keyspace.
    let ks = a.create_keyspace(&ks_name, KeyspaceOptions::default()).unwrap();
    for i in 0..100 {
        a.put(format!("{key}-{i}").as_bytes(), format!("{value}-{i}").as_bytes()).unwrap();
    }
    let mut batch = WriteBatch::new();
    for i in 0..20 {
        batch.put_in(&ks, format!("{key}-b{i}"), format!("{value}-b{i}"));
    }
    a.write(batch).unwrap();
    assert!(a.get(format!("{key}-7").as_bytes()).unwrap().is_some());
    assert_eq!(a.scan_prefix(key.as_bytes()).unwrap().count(), 100);
    a.flush().unwrap();
    a.compact_range(None, None).unwrap();

    // Documents: an index, puts, a query.
    let docs = a.docs();
    docs.create_index(&coll, &IndexSpec::ordered(field.clone())).unwrap();
    docs.create_index(&coll, &IndexSpec::text("body")).unwrap();
    for i in 0..30 {
        docs.put(&coll, &json!({"_id": format!("{key}-doc{i}"), field.clone(): format!("{doc_value}{i}"), "body": format!("text {doc_value} {i}")})).unwrap();
    }
    let found = docs.query(&coll, &Query::new(json!({field.clone(): format!("{doc_value}3")}))).unwrap();
    assert_eq!(found.documents.len(), 1);

    // Blobs: a put and a whole read.
    let blob: Vec<u8> = blob_marker.as_bytes().iter().copied().cycle().take(300_000).collect();
    let blobs = a.blobs().unwrap();
    assert_eq!(blobs.put(blob_key.as_bytes(), &mut blob.as_slice()).unwrap(), blob.len() as u64);
    let mut read = Vec::new();
    blobs.reader(blob_key.as_bytes()).unwrap().unwrap().read_to_end(&mut read).unwrap();
    assert_eq!(read, blob);

    // Time series: appends and a query.
    let ts = a.time_series();
    for i in 0..500 {
        ts.append(&series, 1_000 * i, i as f64).unwrap();
    }
    assert_eq!(ts.query(&series, 0, 1_000_000).unwrap().len(), 500);

    // Sync: a replicated keyspace on both sides, one session.
    let b = Db::create(&dir_b, &cred, options()).unwrap();
    for db in [&a, &b] {
        let notes = match db.keyspace("notes").unwrap() {
            Some(ks) => ks,
            None => db.create_keyspace("notes", KeyspaceOptions::default()).unwrap(),
        };
        db.replica().unwrap().replicate(&notes).unwrap();
    }
    let notes_a = a.keyspace("notes").unwrap().unwrap();
    for i in 0..40 {
        a.replica().unwrap().put(&notes_a, format!("{key}-n{i}").as_bytes(), format!("{value}-n{i}").as_bytes()).unwrap();
    }
    let (mut ca, mut cb) = mem_pair();
    let (sent, received) = std::thread::scope(|s| {
        let responder = s.spawn(|| b.replica().unwrap().respond(&mut cb, &SessionOptions::default()));
        let initiated = a.replica().unwrap().initiate(&mut ca, &SessionOptions::default()).unwrap();
        drop(ca);
        (initiated, responder.join().unwrap().unwrap())
    });
    assert_eq!(sent.entries_sent, 40);
    assert_eq!(received.entries_received, 40);

    // Key rotation, secure delete, backup.
    a.rotate_keys().unwrap();
    a.secure_delete(format!("{key}-3").as_bytes()).unwrap();
    let remote = tmp.path().join("remote");
    let target = Target::from_url(&format!("file://{}", remote.display()), &|_| None).unwrap();
    backup::backup(&a, &dir_a, &target, &cred, &|_, _| {}).unwrap();

    assert!(a.metrics_handle().publish());
    let scrape = prometheus.render();
    b.close().unwrap();
    a.close().unwrap();
    Db::open(&dir_a, &cred, options()).unwrap().close().unwrap();
    let trace = capture.out.lock().unwrap().clone();

    // The metrics of every path were recorded.
    for op in ["doc_query", "blob_read", "blob_write", "ts_query"] {
        assert!(sample(&scrape, &format!("synapsed_store_ops_total{{op=\"{op}\"}}")) >= 1.0, "{op}");
    }
    assert_eq!(sample(&scrape, "synapsed_blob_written_bytes_total"), blob.len() as f64);
    assert_eq!(sample(&scrape, "synapsed_blob_read_bytes_total"), blob.len() as f64);
    assert_eq!(sample(&scrape, r#"synapsed_sync_sessions_total{role="initiator",outcome="ok"}"#), 1.0);
    assert_eq!(sample(&scrape, r#"synapsed_sync_sessions_total{role="responder",outcome="ok"}"#), 1.0);
    assert_eq!(sample(&scrape, "synapsed_sync_entries_sent_total"), 40.0);
    assert_eq!(sample(&scrape, "synapsed_sync_entries_received_total"), 40.0);
    assert!(sample(&scrape, "synapsed_sync_bytes_sent_total") > 0.0);
    // One rotation of its own, one inside the secure delete.
    assert_eq!(sample(&scrape, "synapsed_key_rotations_total"), 2.0);
    assert_eq!(sample(&scrape, "synapsed_secure_deletes_total"), 1.0);
    assert_eq!(sample(&scrape, "synapsed_secure_delete_keys_total"), 1.0);
    assert_eq!(sample(&scrape, "synapsed_secure_deletes_running"), 0.0);
    assert!(sample(&scrape, r#"synapsed_file_written_bytes_total{kind="wal"}"#) > 0.0);
    assert!(sample(&scrape, r#"synapsed_file_written_bytes_total{kind="table"}"#) > 0.0);
    assert!(sample(&scrape, r#"synapsed_file_written_bytes_total{kind="blob"}"#) > 0.0);
    assert!(sample(&scrape, r#"synapsed_file_read_bytes_total{kind="table"}"#) > 0.0);
    assert!(sample(&scrape, "synapsed_open_files") >= 1.0);
    assert!(scrape.contains("synapsed_level_bytes{level="), "{scrape}");

    // The spans were entered, the session's with its peer and counts.
    for span in ["open", "flush", "compaction", "key_rotation", "secure_delete", "sync_session"] {
        assert!(trace.contains(&format!(" {span}:")), "no {span} span in the trace");
    }
    assert!(trace.contains(&format!("peer={:016x}", sent.peer.0)), "{trace}");
    assert!(trace.contains("entries_sent=40"));

    // Nothing secret in either.
    assert_eq!(leak(&scrape, &secrets), None, "a secret in the scrape:\n{scrape}");
    assert_eq!(leak(&trace, &secrets), None, "a secret in the trace output");

    // The search finds a secret where there is one: a marker in an event's
    // field, emitted on another thread, reaches the capture and is found.
    std::thread::spawn(move || tracing::trace!(planted = %blob_key, "planted")).join().unwrap();
    let planted = capture.out.lock().unwrap().clone();
    assert!(leak(&planted, &secrets).is_some(), "the search misses a marker in the trace");
    assert!(leak(&format!("{scrape}x{{k=\"{}\"}} 1", forms(value.as_bytes())[0]), &secrets).is_some());
}
