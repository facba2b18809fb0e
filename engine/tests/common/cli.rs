//! Running the `synapsed-storage` binary from a test: the path cargo built it
//! at, the cheap key derivation the tests' stores use, and a runner that
//! fails the test on any panic message in the child's stderr.

use std::path::Path;
use std::process::Command;

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
