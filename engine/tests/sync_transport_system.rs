//! Sync between real processes: `serve` and `sync` of the CLI over loopback
//! TCP, with paired and unpaired stores, rights and selective sync.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;


use common::cli::{cli, device_store as store, Server};

#[test]
fn serve_and_sync_processes_authenticate_each_other_over_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    let (id_a, id_b, id_c) = (store(&a), store(&b), store(&c));
    assert_eq!(cli(&a, &["pair", "add", &id_b, "--name", "b"]).0, 0);
    assert_eq!(cli(&b, &["pair", "add", &id_a, "--name", "a"]).0, 0);
    // c trusts b, but b never paired c.
    assert_eq!(cli(&c, &["pair", "add", &id_b]).0, 0);

    assert_eq!(cli(&a, &["put", "note:1", "written on a"]).0, 0);
    assert_eq!(cli(&b, &["put", "note:2", "written on b"]).0, 0);
    let server = Server::start(&b);
    let (code, out, err) = cli(&a, &["sync", &server.addr]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("sent 1, received 1, ") && out.trim_end().ends_with(" bytes"), "{out}");
    // Both stores hold both notes (b is read beside its serving writer).
    for dir in [&a, &b] {
        assert_eq!(cli(dir, &["get", "note:1"]).1, "written on a\n");
        assert_eq!(cli(dir, &["get", "note:2"]).1, "written on b\n");
    }
    // Nothing changed: nothing moves.
    let (code, out, err) = cli(&a, &["sync", &server.addr, "--json"]);
    assert_eq!(code, 0, "{err}");
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((stats["sent"].as_u64(), stats["received"].as_u64()), (Some(0), Some(0)), "{out}");
    assert_eq!(stats["peer"], id_b.as_str());
    let (code, out, err) = cli(&c, &["sync", &server.addr]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.starts_with("error: cannot open a session with"), "{err}");
    // a still gets through after the refusal.
    assert_eq!(cli(&a, &["sync", &server.addr]).0, 0);
    let log = server.stop();
    assert_eq!(log.matches(&format!("session with {id_a}: sent ")).count(), 3, "{log}");
    assert!(log.contains(&format!("refused a connection: protocol violation: refused: unknown device {id_c}")), "{log}");

    // b removes a: a is refused from then on (serve reads pairings as it starts).
    assert_eq!(cli(&b, &["pair", "rm", &id_a]).0, 0);
    let server = Server::start(&b);
    let (code, _, err) = cli(&a, &["sync", &server.addr]);
    assert_eq!(code, 1, "{err}");
    let log = server.stop();
    assert!(log.contains(&format!("unknown device {id_a}")), "{log}");

    // Nobody listening: a clear network error.
    let (code, _, err) = cli(&a, &["sync", "127.0.0.1:1"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot open a session with 127.0.0.1:1"), "{err}");
}

/// A device paired with write rights on `public:` only gets nothing else
/// applied; `--prefix` limits a session to the keys under it; a delete syncs.
#[test]
fn rights_prefixes_and_deletes_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let (hub, phone) = (tmp.path().join("hub"), tmp.path().join("phone"));
    let (id_hub, id_phone) = (store(&hub), store(&phone));
    assert_eq!(cli(&hub, &["pair", "add", &id_phone, "--read", "", "--write", "public:"]).0, 0);
    assert_eq!(cli(&phone, &["pair", "add", &id_hub]).0, 0);
    assert_eq!(cli(&phone, &["put", "public:x", "shared"]).0, 0);
    assert_eq!(cli(&phone, &["put", "private:y", "not for the hub"]).0, 0);
    let server = Server::start(&hub);
    let (code, out, err) = cli(&phone, &["sync", &server.addr]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("sent 2, received 0, ") && out.trim_end().ends_with(" bytes"), "{out}");
    assert!(err.contains("1 entry(ies) refused by the peer"), "{err}");
    assert_eq!(cli(&hub, &["get", "public:x"]).1, "shared\n");
    assert_eq!(cli(&hub, &["get", "private:y"]).0, 1, "a write outside the rights was applied");

    // Selective: only keys under "a:" move.
    assert_eq!(cli(&phone, &["put", "a:1", "one"]).0, 0);
    assert_eq!(cli(&phone, &["put", "public:z", "later"]).0, 0);
    let (code, out, err) = cli(&phone, &["sync", &server.addr, "--prefix", "public:z"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("sent 1, received 0, "), "{out}");
    assert_eq!(cli(&hub, &["get", "public:z"]).1, "later\n");
    assert_eq!(cli(&hub, &["get", "a:1"]).0, 1);

    // A delete on the phone removes the key on the hub.
    assert_eq!(cli(&phone, &["delete", "public:x"]).0, 0);
    let (code, out, err) = cli(&phone, &["sync", &server.addr, "--prefix", "public:"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("sent 1, "), "{out}");
    assert_eq!(cli(&hub, &["get", "public:x"]).0, 1, "the delete did not sync");
    let log = server.stop();
    assert!(log.contains(&format!("session with {id_phone}: sent 0, received 2")), "{log}");
    let _ = id_hub;
}
