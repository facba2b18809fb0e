//! A password vault on two devices: each keeps its credentials in a
//! replicated keyspace and the two sync with a Merkle-range session (here over
//! an in-memory channel; between devices, over the paired TLS transport of
//! `serve` / `sync`). Concurrent edits of one entry resolve the same way on
//! both sides, and a deletion reaches the other device.
//!
//! Run with `cargo run -p synapsed-storage --example vault`.

mod common;

use synapsed_storage::{mem_pair, Credential, Db, Keyspace, KeyspaceOptions, Options, SessionOptions, SyncStats};

fn sync(from: &Db, to: &Db) -> Result<SyncStats, Box<dyn std::error::Error>> {
    let (mut a, mut b) = mem_pair();
    let stats = std::thread::scope(|s| {
        let answer = s.spawn(|| to.replica().map(|r| r.respond(&mut b, &SessionOptions::default())));
        let stats = from.replica().map(|r| r.initiate(&mut a, &SessionOptions::default()));
        drop(a);
        let answered = answer.join();
        (stats, answered)
    });
    let (stats, answered) = stats;
    answered.map_err(|_| "the responder panicked")???;
    Ok(stats??)
}

fn contents(db: &Db, vault: &Keyspace) -> Result<Vec<(Vec<u8>, Vec<u8>)>, synapsed_storage::Error> {
    db.range_in(vault, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded, false, None)?.collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (dir_phone, dir_laptop) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let cred = Credential::passphrase("vault example passphrase");
    let phone = Db::create(dir_phone.path(), &cred, Options::default())?;
    let laptop = Db::create(dir_laptop.path(), &cred, Options::default())?;
    let mut vaults = Vec::new();
    for db in [&phone, &laptop] {
        let vault = db.create_keyspace("vault", KeyspaceOptions::default())?;
        db.replica()?.replicate(&vault)?;
        vaults.push(vault);
    }
    let (on_phone, on_laptop) = (&vaults[0], &vaults[1]);

    phone.replica()?.put(on_phone, b"mail.example", b"ana / correct-horse")?;
    phone.replica()?.put(on_phone, b"bank.example", b"ana / 7-battery-staple")?;
    laptop.replica()?.put(on_laptop, b"forum.example", b"ana_l / tr0ub4dor")?;
    let first = sync(&phone, &laptop)?;

    // Both devices change the mail password before they next meet.
    phone.replica()?.put(on_phone, b"mail.example", b"ana / from-the-phone")?;
    // A moment later (the clocks are hybrid logical clocks in milliseconds:
    // edits within the same millisecond are ordered by replica id instead).
    std::thread::sleep(std::time::Duration::from_millis(5));
    laptop.replica()?.put(on_laptop, b"mail.example", b"ana / from-the-laptop")?;
    laptop.replica()?.delete(on_laptop, b"forum.example")?;
    let second = sync(&laptop, &phone)?;
    let idle = sync(&phone, &laptop)?;

    let (a, b) = (contents(&phone, on_phone)?, contents(&laptop, on_laptop)?);
    let listed_conflicts = phone.replica()?.conflicts()?.len() + laptop.replica()?.conflicts()?.len();
    println!("second sync: sent {}, received {}, conflicts counted by the initiator {}", second.entries_sent, second.entries_received, second.conflicts);
    let mail = a.iter().find(|(k, _)| k == b"mail.example").map(|(_, v)| v.clone());
    let checks = [
        ("the first session moved three entries", first.entries_sent + first.entries_received == 3),
        ("the concurrent edit was resolved as a conflict and listed", listed_conflicts >= 1),
        ("both devices hold the same vault", a == b),
        ("the later edit won on both", mail.as_deref() == Some(&b"ana / from-the-laptop"[..])),
        ("the deletion reached the phone", !a.iter().any(|(k, _)| k == b"forum.example")),
        ("an idle sync moves nothing", idle.entries_sent == 0 && idle.entries_received == 0),
    ];
    println!("first sync: sent {}, received {}, {} bytes", first.entries_sent, first.entries_received, first.bytes_sent + first.bytes_received);
    println!("idle sync: {} bytes in {} round trip(s) after the hello", idle.bytes_sent + idle.bytes_received, idle.rounds);
    phone.close()?;
    laptop.close()?;
    common::report("vault", &checks)
}
