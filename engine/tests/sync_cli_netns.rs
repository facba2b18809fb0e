//! `serve` and `sync` of the command line across two network namespaces
//! joined by a veth pair (made by the test): the link is cut (`ip link set
//! down`) while a session carries about 100 MB; `sync` fails with a clear
//! error and `serve` logs the failed session, both within the transport's
//! liveness bounds, nothing half-applied; once the link is back, the next
//! `sync` finishes the job and a third one moves nothing.
//!
//! Needs root (it makes namespaces): as root it always runs; otherwise it says
//! so on stderr and passes without checking anything.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::PASSPHRASE;
use common::cli::{gather, BIN, FAST_KDF};
use common::netns::{ip, Net};

const PORT: u16 = 47_411;
/// Values of 256 KiB, 400 of them.
const VALUES: usize = 400;
const VALUE_BYTES: usize = 256 << 10;
/// The CLI's transport notices a dead link within about 15 s (keepalive after
/// 5 s idle, then 3 probes 2 s apart; TCP_USER_TIMEOUT 15 s); allow for a
/// loaded machine.
const CUT_BOUND: Duration = Duration::from_secs(60);

fn command(ns: Option<&str>, dir: &Path) -> Command {
    let mut c = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, BIN]);
            c
        }
        None => Command::new(BIN),
    };
    c.env("SYNAPSED_PASSPHRASE", PASSPHRASE).arg("--db").arg(dir).args(FAST_KDF);
    c
}

fn cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = command(None, dir).args(args).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

fn wait_for(log: &Mutex<String>, bound: Duration, want: &str) -> Option<String> {
    let end = Instant::now() + bound;
    while Instant::now() < end {
        let text = log.lock().unwrap().clone();
        if text.contains(want) {
            return Some(text);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn a_link_cut_mid_session_fails_it_cleanly_and_the_next_sync_converges() {
    // SAFETY: geteuid has no preconditions and touches no memory of ours.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: network namespaces cannot be made; nothing checked");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for dir in [&a, &b] {
        assert_eq!(cli(dir, &["init"]).0, 0);
    }
    let id = |dir: &Path| cli(dir, &["device", "id"]).1.trim().to_string();
    let (id_a, id_b) = (id(&a), id(&b));
    assert_eq!(cli(&a, &["pair", "add", &id_b]).0, 0);
    assert_eq!(cli(&b, &["pair", "add", &id_a]).0, 0);
    // About 100 MB on a, written (with versions) by one batch process.
    let mut batch = command(None, &a).arg("batch").stdin(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    {
        let stdin = batch.stdin.as_mut().unwrap();
        for i in 0..VALUES {
            let value: String = common::random(VALUE_BYTES / 2, i as u64).iter().map(|b| format!("{b:02x}")).collect();
            writeln!(stdin, "put big/{i:04} {value}").unwrap();
            if i % 50 == 49 {
                writeln!(stdin, "commit").unwrap();
            }
        }
    }
    assert!(batch.wait().unwrap().success());

    let mut net = Net::new('c', 214).unwrap();
    let listen = format!("{}:{PORT}", net.addr_b);
    let mut serve = command(Some(&net.ns_b), &b).args(["serve", "--listen", &listen]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let serve_out = gather(serve.stdout.take().unwrap());
    let serve_log = gather(serve.stderr.take().unwrap());
    net.children.push(serve);
    wait_for(&serve_out, Duration::from_secs(30), "listening on").expect("serve did not start");

    // The session, cut once some megabytes have crossed the link.
    let before = net.rx_bytes_b();
    let mut sync = command(Some(&net.ns_a), &a).args(["sync", &listen]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let sync_err = gather(sync.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    while net.rx_bytes_b() < before + (8 << 20) {
        assert!(Instant::now() < deadline, "the transfer did not start: {}", sync_err.lock().unwrap());
        std::thread::sleep(Duration::from_millis(5));
    }
    ip(&["-n", &net.ns_a, "link", "set", &net.veth_a, "down"]).unwrap();
    let cut = Instant::now();
    let status = loop {
        if let Some(s) = sync.try_wait().unwrap() {
            break s;
        }
        assert!(cut.elapsed() < CUT_BOUND, "sync still running {CUT_BOUND:?} after the cut");
        std::thread::sleep(Duration::from_millis(50));
    };
    let sync_took = cut.elapsed();
    std::thread::sleep(Duration::from_millis(100));
    let err = sync_err.lock().unwrap().clone();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("the session with") && err.contains("failed") && !err.contains("panicked"), "{err}");
    let log = wait_for(&serve_log, CUT_BOUND, "failed").expect("serve did not log the failed session");
    assert!(log.contains(&format!("session with {id_a} failed")), "{log}");
    let serve_took = cut.elapsed();
    eprintln!("cut: sync failed after {sync_took:?}, serve after {serve_took:?}: {}", err.trim());
    // The cut came mid-session: b holds only some of the values.
    let (_, partial, _) = cli(&b, &["scan", "big/"]);
    let got = partial.lines().count();
    assert!(got < VALUES, "the cut came too late: b already held all {got} values");

    // The link back: the next sync carries the rest, the one after nothing.
    ip(&["-n", &net.ns_a, "link", "set", &net.veth_a, "up"]).unwrap();
    let out = command(Some(&net.ns_a), &a).args(["sync", &listen]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}{}", text, String::from_utf8_lossy(&out.stderr));
    let sent: usize = text.strip_prefix("sent ").and_then(|r| r.split(',').next()).unwrap().parse().unwrap();
    assert!(sent > 0 && sent <= VALUES - got + 1, "{text} (b held {got})");
    let out = command(Some(&net.ns_a), &a).args(["sync", &listen, "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["sent"].as_u64(), v["received"].as_u64()), (Some(0), Some(0)), "{v}");
    for i in [0, VALUES / 2, VALUES - 1] {
        let key = format!("big/{i:04}");
        assert_eq!(cli(&b, &["get", &key]).1, cli(&a, &["get", &key]).1, "{key}");
    }
    drop(net);
}
