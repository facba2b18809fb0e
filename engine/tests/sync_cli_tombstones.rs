//! Tombstone collection from the command line, with real processes over
//! loopback: `sync` and `serve` record which replica each paired device
//! syncs as, and collect a tombstone once every paired device has seen it;
//! a paired device that never synced keeps every tombstone; nothing deleted
//! comes back.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;

use common::cli::{cli, device_store as store, Server};

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
