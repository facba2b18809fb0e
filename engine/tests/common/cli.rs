//! Running the `synapsed-storage` binary from a test: the path cargo built it
//! at, the cheap key derivation the tests' stores use, and a runner that
//! fails the test on any panic message in the child's stderr.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::PASSPHRASE;

/// The command-line tool built for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_synapsed-storage");

/// Flags that make the store's key derivation cheap (test stores only).
pub const FAST_KDF: [&str; 5] = ["--insecure-kdf-for-tests", "--argon2-memory-kib", "64", "--argon2-iterations", "1"];

/// The tool on the store at `dir`, unlocked by [`PASSPHRASE`] from the
/// environment, with [`FAST_KDF`].
pub fn command(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("SYNAPSED_PASSPHRASE", PASSPHRASE).arg("--db").arg(dir).args(FAST_KDF);
    c
}

/// Runs the tool with `args` on the store at `dir`: exit code (-1 for a
/// signal), stdout and stderr; a panic in the child fails the test.
pub fn cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = command(dir).args(args).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// Makes a store at `dir` and returns its device id (what `pair add` takes).
pub fn device_store(dir: &Path) -> String {
    assert_eq!(cli(dir, &["init"]).0, 0);
    cli(dir, &["device", "id"]).1.trim().to_string()
}

/// Gathers a child's pipe into a shared string as it comes (a thread reads it
/// to its end).
pub fn gather(pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    gather_joined(pipe).0
}

fn gather_joined(mut pipe: impl Read + Send + 'static) -> (Arc<Mutex<String>>, JoinHandle<()>) {
    let log = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&log);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut buf) {
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (log, reader)
}

/// A `serve` process on a free loopback port, killed when dropped; its
/// stderr (one line per session) is gathered as it comes.
pub struct Server {
    child: Child,
    /// The address it listens on, from its `listening on ADDR as device ID` line.
    pub addr: String,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts `serve --listen 127.0.0.1:0` on the store at `dir`.
    pub fn start(dir: &Path) -> Server {
        let mut child = command(dir).args(["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.strip_prefix("listening on ").and_then(|r| r.split(' ').next()).unwrap_or_else(|| panic!("{line:?}")).to_string();
        let (log, reader) = gather_joined(child.stderr.take().unwrap());
        Server { child, addr, log, reader: Some(reader) }
    }

    /// Stops it and returns everything it wrote on stderr; a panic in it
    /// fails the test.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let log = self.log.lock().unwrap().clone();
        assert!(!log.contains("panicked"), "{log}");
        log
    }

    /// Waits (up to 20 s) until it has logged `sessions` sessions (the log
    /// line comes after the session's tombstone collection), then stops it
    /// and returns its log.
    pub fn stop_after(self, sessions: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.log.lock().unwrap().matches("session with ").count() < sessions && Instant::now() <= deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.stop()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
