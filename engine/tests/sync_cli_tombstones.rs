//! Tombstone collection from the command line, with real processes over
//! loopback: `sync` and `serve` record which replica each paired device
//! syncs as, and collect a tombstone once every paired device has seen it;
//! a paired device that never synced keeps every tombstone; nothing deleted
//! comes back.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cli::{cli, command, device_store as store};


/// A `serve` process, killed when dropped; its stderr is gathered as it comes.
struct Server {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = command(dir).args(["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.strip_prefix("listening on ").and_then(|r| r.split(' ').next()).unwrap_or_else(|| panic!("{line:?}")).to_string();
        let log = Arc::new(Mutex::new(String::new()));
        let (sink, mut err) = (Arc::clone(&log), child.stderr.take().unwrap());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Server { child, addr, log }
    }

    /// Waits (up to 20 s) until the server has logged `sessions` sessions
    /// (the log line comes after the session's tombstone collection), then
    /// stops it and returns its log.
    fn stop_after(self, sessions: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log.lock().unwrap().clone();
            if log.matches("session with ").count() >= sessions || Instant::now() > deadline {
                assert!(!log.contains("panicked"), "{log}");
                return log;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `sync ADDR --json` from `dir`: (sent, received, collected).
fn sync(dir: &Path, addr: &str) -> (u64, u64, u64) {
    let (code, out, err) = cli(dir, &["sync", addr, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    (v["sent"].as_u64().unwrap(), v["received"].as_u64().unwrap(), v["collected"].as_u64().unwrap())
}

#[test]
fn a_tombstone_is_collected_once_every_paired_device_has_seen_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    let (id_a, id_b, id_c) = (store(&a), store(&b), store(&c));
    // a syncs with b and c; b and c know only a.
    for id in [&id_b, &id_c] {
        assert_eq!(cli(&a, &["pair", "add", id]).0, 0);
    }
    assert_eq!(cli(&b, &["pair", "add", &id_a]).0, 0);
    assert_eq!(cli(&c, &["pair", "add", &id_a]).0, 0);

    assert_eq!(cli(&a, &["put", "gone", "soon deleted"]).0, 0);
    assert_eq!(cli(&a, &["put", "kept", "stays"]).0, 0);
    let server_b = Server::start(&b);
    assert_eq!(sync(&a, &server_b.addr), (2, 0, 0));
    assert_eq!(cli(&a, &["delete", "gone"]).0, 0);
    // b has seen the tombstone, but c has never synced: a keeps it. b, whose
    // only paired device is a (which sent it), collects it at once.
    assert_eq!(sync(&a, &server_b.addr), (1, 0, 0));
    let log_b = server_b.stop_after(2);
    assert!(log_b.contains("; 1 tombstone(s) collected"), "{log_b}");

    // Once c has synced too, every paired device has seen it: a collects it,
    // and so does c (it came from a, c's only paired device).
    let server_c = Server::start(&c);
    assert_eq!(sync(&a, &server_c.addr), (2, 0, 1));
    let log_c = server_c.stop_after(1);
    assert!(log_c.contains("; 1 tombstone(s) collected"), "{log_c}");
    // Nobody holds it any more: the stores agree, nothing moves.
    for dir in [&b, &c] {
        let server = Server::start(dir);
        assert_eq!(sync(&a, &server.addr), (0, 0, 0));
    }

    // Nothing deleted comes back.
    for dir in [&a, &b, &c] {
        let (code, out, _) = cli(dir, &["get", "gone"]);
        assert_ne!(code, 0, "{out}");
        assert_eq!(cli(dir, &["get", "kept"]).1, "stays\n");
    }
}
