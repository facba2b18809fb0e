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

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::PASSPHRASE;
use common::cli::{BIN, FAST_KDF};

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

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip").args(args).output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)))
    }
}

/// Two namespaces joined by a veth pair, removed when dropped.
struct Net {
    ns_a: String,
    ns_b: String,
    veth_a: String,
    veth_b: String,
    addr_b: String,
    children: Vec<Child>,
}

impl Net {
    fn new() -> Result<Net, String> {
        let tag = std::process::id() % 100_000;
        let subnet = 16 + std::process::id() % 200;
        let net = Net {
            ns_a: format!("scn{tag}a"),
            ns_b: format!("scn{tag}b"),
            veth_a: format!("vc{tag}a"),
            veth_b: format!("vc{tag}b"),
            addr_b: format!("10.214.{subnet}.2"),
            children: Vec::new(),
        };
        let (a_cidr, b_cidr) = (format!("10.214.{subnet}.1/24"), format!("{}/24", net.addr_b));
        ip(&["netns", "add", &net.ns_a])?;
        ip(&["netns", "add", &net.ns_b])?;
        ip(&["link", "add", &net.veth_a, "netns", &net.ns_a, "type", "veth", "peer", "name", &net.veth_b, "netns", &net.ns_b])?;
        for (ns, dev, cidr) in [(&net.ns_a, &net.veth_a, &a_cidr), (&net.ns_b, &net.veth_b, &b_cidr)] {
            ip(&["-n", ns, "addr", "add", cidr, "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    /// Bytes the veth end in b's namespace has received.
    fn rx_bytes_b(&self) -> u64 {
        let out = ip(&["-n", &self.ns_b, "-s", "link", "show", &self.veth_b]).unwrap_or_default();
        // "RX: bytes packets ..." then the numbers on the next line.
        let mut lines = out.lines();
        while let Some(l) = lines.next() {
            if l.trim_start().starts_with("RX:") {
                return lines.next().and_then(|n| n.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or(0);
            }
        }
        0
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = ip(&["netns", "del", &self.ns_a]);
        let _ = ip(&["netns", "del", &self.ns_b]);
    }
}

/// Gathers a child's pipe as it comes.
fn gather(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut buf) {
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    log
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

    let mut net = Net::new().unwrap();
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
