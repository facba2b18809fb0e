//! Backup to a real S3 server that checks SigV4 signatures: `rclone serve s3`,
//! installed and started by `scripts/s3-server.sh` (never skipped: a missing
//! server is installed, a failed install fails the test).

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{cred, options, PASSPHRASE};
use synapsed_storage::backup::{self, Target};
use synapsed_storage::{Db, Error};

const ACCESS_KEY: &str = "synapsedtestkey";
const SECRET_KEY: &str = "synapsed-test-secret-0123456789";
const BUCKET: &str = "backups";

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/s3-server.sh")
}

/// A running `rclone serve s3`, killed on drop.
struct S3Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl S3Server {
    fn start(dir: &Path, port: Option<u16>) -> S3Server {
        let port = port.unwrap_or_else(|| TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
        std::fs::create_dir_all(dir.join(BUCKET)).unwrap();
        let child = Command::new("bash")
            .arg(script())
            .args(["start", &port.to_string(), dir.to_str().unwrap(), ACCESS_KEY, SECRET_KEY])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("scripts/s3-server.sh");
        let server = S3Server { child, port, dir: dir.to_path_buf() };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(120), "the S3 server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn env(&self, secret: &str) -> impl Fn(&str) -> Option<String> {
        let endpoint = format!("http://127.0.0.1:{}", self.port);
        let secret = secret.to_string();
        move |k: &str| match k {
            "AWS_ENDPOINT_URL" => Some(endpoint.clone()),
            "AWS_ACCESS_KEY_ID" => Some(ACCESS_KEY.to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some(secret.clone()),
            "AWS_REGION" => Some("us-east-1".to_string()),
            _ => None,
        }
    }

    fn target(&self, secret: &str) -> Target {
        Target::from_url(&format!("s3://{BUCKET}/store1"), &self.env(secret)).unwrap()
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn install_server() {
    let status = Command::new("bash").arg(script()).arg("install").stdout(Stdio::null()).status().unwrap();
    assert!(status.success(), "scripts/s3-server.sh install failed");
}

fn contents(db: &Db) -> Model {
    db.scan_prefix(b"").unwrap().map(Result::unwrap).collect()
}

fn restored(dir: &Path) -> Model {
    let db = Db::open(dir, &cred(), options()).unwrap();
    let m = contents(&db);
    db.close().unwrap();
    m
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Objects the server finished writing (named by their hash; not an upload
/// still under way).
fn complete_objects(dir: &Path) -> usize {
    files_under(dir)
        .iter()
        .filter(|f| f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.len() == 64 && n.chars().all(|c| c.is_ascii_hexdigit())))
        .count()
}

fn no_progress(_: u64, _: u64) {}

#[test]
fn s3_backup_restore_point_in_time_wrong_secret_and_no_plaintext_on_the_server() {
    install_server();
    let tmp = tempfile::tempdir().unwrap();
    let server = S3Server::start(&tmp.path().join("s3"), None);
    let t = server.target(SECRET_KEY);
    let src = tmp.path().join("db");
    let db = Db::create(&src, &cred(), options()).unwrap();
    for i in 0..600u32 {
        db.put(format!("MARKER-KEY-{i:05}").as_bytes(), format!("MARKER-VALUE-{i}").as_bytes()).unwrap();
    }
    db.flush().unwrap();
    db.put(b"MARKER-in-the-wal", b"MARKER-wal-value").unwrap();
    let first_model = contents(&db);
    let first = backup::backup(&db, &src, &t, &cred(), &no_progress).unwrap();
    assert_eq!((first.id, first.existing_files), (1, 0));
    let second = backup::backup(&db, &src, &t, &cred(), &no_progress).unwrap();
    assert_eq!((second.id, second.uploaded_files, second.uploaded_bytes), (2, 0, 0), "{second:?}");
    for i in 0..200u32 {
        db.delete(format!("MARKER-KEY-{:05}", i * 3).as_bytes()).unwrap();
    }
    db.put(b"MARKER-later", b"MARKER-later-value").unwrap();
    db.flush().unwrap();
    let third_model = contents(&db);
    let third = backup::backup(&db, &src, &t, &cred(), &no_progress).unwrap();
    assert!(third.existing_files > 0 && third.uploaded_files > 0, "{third:?}");
    db.close().unwrap();

    assert_eq!(backup::list(&t, &cred()).unwrap().iter().map(|b| b.id).collect::<Vec<_>>(), vec![1, 2, 3]);
    let newest = tmp.path().join("newest");
    assert_eq!(backup::restore(&t, None, &newest, &cred(), options(), &no_progress).unwrap().id, 3);
    assert_eq!(restored(&newest), third_model);
    let at1 = tmp.path().join("at1");
    backup::restore(&t, Some(1), &at1, &cred(), options(), &no_progress).unwrap();
    assert_eq!(restored(&at1), first_model);

    // A wrong secret key: the server refuses the signature, and the error says so.
    let wrong = server.target("not-the-secret");
    let err = backup::list(&wrong, &cred()).unwrap_err();
    assert!(matches!(err, Error::Backup(synapsed_storage::backup::BackupError::Unauthorized(_))), "{err}");
    assert!(err.to_string().contains("refused the credentials"), "{err}");
    let db = Db::open(&src, &cred(), options()).unwrap();
    assert!(backup::backup(&db, &src, &wrong, &cred(), &no_progress).is_err());
    db.close().unwrap();

    // The server's data directory holds ciphertext only.
    let files = files_under(&server.dir);
    assert!(files.len() > 3, "{files:?}");
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        for marker in [&b"MARKER"[..], b".sst", b"MANIFEST-"] {
            assert!(!bytes.windows(marker.len()).any(|w| w == marker), "{} holds {}", f.display(), String::from_utf8_lossy(marker));
        }
        let name = f.to_string_lossy();
        assert!(!name.contains(".sst") && !name.contains(".wal") && !name.contains("MANIFEST"), "{name}");
    }
    server.stop();
}

#[test]
fn a_backup_cut_by_a_killed_server_resumes_after_a_restart() {
    install_server();
    let tmp = tempfile::tempdir().unwrap();
    let s3dir = tmp.path().join("s3");
    let server = S3Server::start(&s3dir, None);
    let port = server.port;
    let src = tmp.path().join("db");
    // About 12 MiB of incompressible values in tables of about 512 KiB.
    let big = options()
        .with_memtable_size_bytes(512 << 10)
        .with_target_file_size_bytes(512 << 10)
        .with_level_base_bytes(64 << 20)
        .with_block_size_bytes(4096);
    let db = Db::create(&src, &cred(), big).unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut batch = synapsed_storage::WriteBatch::new();
    for i in 0..3000u32 {
        let value: Vec<u8> = (0..4096)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        batch.put(format!("key{i:06}").as_bytes(), &value);
        if i % 100 == 99 {
            db.write(std::mem::take(&mut batch)).unwrap();
        }
    }
    db.flush().unwrap();
    let model = contents(&db);
    let data_dir = s3dir.join(BUCKET).join("store1").join("data");
    let killer = std::thread::spawn(move || {
        let start = Instant::now();
        // Four uploads run at once and a fifth starts only when one of them
        // is done: once six objects exist, at least two are whole.
        while complete_objects(&data_dir) < 6 {
            assert!(start.elapsed() < Duration::from_secs(60), "no upload reached the server");
            std::thread::sleep(Duration::from_millis(2));
        }
        server.stop();
    });
    let t = Target::from_url(&format!("s3://{BUCKET}/store1"), &{
        let endpoint = format!("http://127.0.0.1:{port}");
        move |k: &str| match k {
            "AWS_ENDPOINT_URL" => Some(endpoint.clone()),
            "AWS_ACCESS_KEY_ID" => Some(ACCESS_KEY.to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some(SECRET_KEY.to_string()),
            _ => None,
        }
    })
    .unwrap();
    let cut = backup::backup(&db, &src, &t, &cred(), &no_progress);
    killer.join().unwrap();
    assert!(cut.is_err(), "the backup finished before the server was killed: {cut:?}");
    assert!(complete_objects(&s3dir.join(BUCKET).join("store1").join("data")) >= 6);

    let server = S3Server::start(&s3dir, Some(port));
    let resumed = backup::backup(&db, &src, &t, &cred(), &no_progress).unwrap();
    assert_eq!(resumed.id, 1, "the cut run wrote no manifest");
    assert!(resumed.existing_files >= 2, "{resumed:?}");
    assert!(resumed.uploaded_files < resumed.files, "{resumed:?}");
    db.close().unwrap();
    let out = tmp.path().join("out");
    backup::restore(&t, None, &out, &cred(), options(), &no_progress).unwrap();
    assert_eq!(restored(&out), model);
    server.stop();
}

#[test]
fn the_cli_backs_up_lists_and_restores_through_s3() {
    install_server();
    let tmp = tempfile::tempdir().unwrap();
    let server = S3Server::start(&tmp.path().join("s3"), None);
    let src = tmp.path().join("db");
    let bin = env!("CARGO_BIN_EXE_synapsed-storage");
    let run = |args: &[&str]| {
        let mut c = Command::new(bin);
        c.args(["--insecure-kdf-for-tests", "--argon2-memory-kib", "64", "--argon2-iterations", "1"]);
        c.args(args).env("SYNAPSED_PASSPHRASE", PASSPHRASE);
        c.env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", server.port));
        c.env("AWS_ACCESS_KEY_ID", ACCESS_KEY).env("AWS_SECRET_ACCESS_KEY", SECRET_KEY).env("AWS_REGION", "us-east-1");
        let out = c.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let db = src.to_str().unwrap();
    let url = format!("s3://{BUCKET}/cli");
    assert_eq!(run(&["--db", db, "init", "--recovery-out", tmp.path().join("rk").to_str().unwrap()]).0, Some(0));
    for i in 0..20 {
        assert_eq!(run(&["--db", db, "put", &format!("k{i}"), &format!("v{i}")]).0, Some(0));
    }
    let (code, out, err) = run(&["--db", db, "backup", &url]);
    assert_eq!(code, Some(0), "{err}");
    let last = out.lines().last().unwrap();
    assert!(last.starts_with("backup 1: ") && last.ends_with(" files already there"), "{out}");
    assert!(last.contains(" files (") && last.contains(" bytes) uploaded, 0 files already there"), "{last}");
    let (code, out, _) = run(&["--db", db, "backup", &url]);
    assert_eq!(code, Some(0));
    assert!(out.lines().last().unwrap().starts_with("backup 2: "), "{out}");
    let (code, out, _) = run(&["backup", "ls", &url]);
    assert_eq!(code, Some(0));
    let ids: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(ids, vec!["1", "2"]);
    let to = tmp.path().join("restored");
    let (code, _, err) = run(&["restore", &url, "--to", to.to_str().unwrap(), "--at", "1"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, _) = run(&["--db", to.to_str().unwrap(), "get", "k7"]);
    assert_eq!((code, out.trim()), (Some(0), "v7"));
    // A wrong secret key fails clearly, without a panic.
    let mut c = Command::new(bin);
    c.args(["backup", "ls", &url]).env("SYNAPSED_PASSPHRASE", PASSPHRASE);
    c.env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", server.port));
    c.env("AWS_ACCESS_KEY_ID", ACCESS_KEY).env("AWS_SECRET_ACCESS_KEY", "wrong").env("AWS_REGION", "us-east-1");
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(err.contains("error: ") && err.contains("refused the credentials") && !err.contains("panicked"), "{err}");
    server.stop();
}
