//! `blobs`: the blob store against `cp` (the device's ceiling) and restic
//! (chunked, deduplicated, encrypted backups) on the same data: put and get
//! throughput in MB/s, bytes stored (dedup ratio) and peak RSS of each run.
//! Data sets: N GiB of random bytes, N GiB where half the 8 MiB blocks repeat
//! earlier ones, and many 100 KB files. Every tool runs as a child process
//! under `/usr/bin/time` (peak RSS); synapsed-storage's child reports the time
//! of the operation itself (the Argon2 unlock of the store is left out; restic's
//! key derivation is inside its figure, a fraction of a second per run).
//!
//! ```text
//! cargo run --release -p synapsed-benches --features harness --bin blobs -- DIR [GIB] [SMALL_FILES]
//! ```
//! DIR must be on the device to measure (not tmpfs); it needs about 6 x GIB free.

// Slices of buffers this program sized itself.
#![allow(clippy::indexing_slicing)]

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use synapsed_benches::data::splitmix64;
use synapsed_storage::{Credential, Db, Options};

const PASSPHRASE: &str = "blob bench passphrase";
/// Size of the blocks the duplicate data set repeats.
const BLOCK_BYTES: usize = 8 << 20;
/// Size of each small file.
const SMALL_FILE_BYTES: usize = 100_000;

fn fill(buf: &mut [u8], seed: u64) {
    let mut state = seed;
    for chunk in buf.chunks_mut(8) {
        state = splitmix64(state);
        let bytes = state.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// Writes `gib` GiB of random bytes; with `dup`, every other 2 MiB block is
/// a copy of an earlier block.
fn make_big(path: &Path, gib: u64, dup: bool) -> Result<()> {
    let mut f = File::create(path)?;
    let blocks = (gib << 30) / BLOCK_BYTES as u64;
    let mut buf = vec![0u8; BLOCK_BYTES];
    let mut fresh = 0u64;
    for i in 0..blocks {
        let seed = if dup && i % 2 == 1 && fresh > 0 { splitmix64(i) % fresh } else {
            fresh += 1;
            fresh - 1
        };
        fill(&mut buf, seed.wrapping_mul(0x9e37_79b9).wrapping_add(1));
        f.write_all(&buf)?;
    }
    f.sync_all()?;
    Ok(())
}

fn make_small(dir: &Path, n: u64) -> Result<()> {
    fs::create_dir_all(dir)?;
    let mut buf = vec![0u8; SMALL_FILE_BYTES];
    for i in 0..n {
        fill(&mut buf, 1_000_000 + i);
        fs::write(dir.join(format!("f{i:06}")), &buf)?;
    }
    Ok(())
}

/// Every regular file under `dir`, sorted.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if dir.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(files_under(&p)?);
        } else {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

fn bytes_under(dir: &Path) -> Result<u64> {
    files_under(dir)?.iter().map(|p| Ok(fs::metadata(p)?.len())).sum()
}

/// Runs `cmd` under `/usr/bin/time`; returns (seconds, peak RSS bytes, stdout).
fn timed(cmd: &mut Command) -> Result<(f64, u64, String)> {
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let envs: Vec<_> = cmd.get_envs().map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned()))).collect();
    let mut t = Command::new("/usr/bin/time");
    t.arg("-f").arg("TIME %e %M").arg(program).args(args);
    for (k, v) in envs {
        if let Some(v) = v {
            t.env(k, v);
        }
    }
    let out = t.output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{:?} failed: {stderr}", t);
    }
    let line = stderr.lines().rev().find(|l| l.starts_with("TIME ")).context("no time line")?;
    let mut f = line.split_whitespace().skip(1);
    let secs: f64 = f.next().context("time")?.parse()?;
    let kib: u64 = f.next().context("rss")?.parse()?;
    Ok((secs, kib << 10, String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn options() -> Options {
    Options::default()
}

/// Child: `put STORE SRC` or `get STORE OUT`; prints "SECS <seconds>".
fn child(op: &str, store: &Path, path: &Path) -> Result<()> {
    let cred = Credential::passphrase(PASSPHRASE);
    match op {
        "put" => {
            let db = if store.exists() { Db::open(store, &cred, options())? } else { Db::create(store, &cred, options())? };
            let started = Instant::now();
            let blobs = db.blobs()?;
            let base = if path.is_file() { path.parent().context("parent")? } else { path };
            // One writer for every file (`next_blob`): one blob each, sharing
            // blob files, syncs and commits, as restic's one snapshot does.
            let files = files_under(path)?;
            let key = |f: &Path| -> Result<String> { Ok(f.strip_prefix(base)?.to_string_lossy().into_owned()) };
            let first = files.first().context("no input files")?;
            let mut writer = blobs.writer(key(first)?.as_bytes())?;
            for (i, f) in files.iter().enumerate() {
                if i > 0 {
                    writer.next_blob(key(f)?.as_bytes())?;
                }
                std::io::copy(&mut File::open(f)?, &mut writer)?;
            }
            writer.finish()?;
            drop(blobs);
            db.close()?;
            println!("SECS {}", started.elapsed().as_secs_f64());
        }
        "get" => {
            let db = Db::open(store, &cred, options().with_read_only(true))?;
            let started = Instant::now();
            let blobs = db.blobs()?;
            fs::create_dir_all(path)?;
            let mut buf = vec![0u8; 1 << 20];
            for (key, _) in blobs.list()? {
                let target = path.join(String::from_utf8_lossy(&key).replace('/', "_"));
                let mut out = File::create(&target)?;
                let mut r = blobs.reader(&key)?.context("listed blob is gone")?;
                loop {
                    let n = r.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    out.write_all(&buf[..n])?;
                }
            }
            // One sync of the file system at the end, as `cp` + `sync -f` does.
            let synced = Command::new("sync").arg("-f").arg(path).status()?;
            if !synced.success() {
                bail!("sync -f failed");
            }
            println!("SECS {}", started.elapsed().as_secs_f64());
        }
        other => bail!("unknown child op {other}"),
    }
    Ok(())
}

struct Row {
    data: String,
    tool: &'static str,
    put_mb_s: f64,
    get_mb_s: f64,
    stored: u64,
    input: u64,
    put_rss: u64,
    get_rss: u64,
}

fn mb_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs.max(1e-9)
}

fn bench_one(work: &Path, name: &str, src: &Path) -> Result<Vec<Row>> {
    let input = bytes_under(src)?;
    let me = std::env::current_exe()?;
    let mut rows = Vec::new();
    let drop_caches = || {
        let _ = Command::new("sync").status();
    };

    // cp: copy in, copy back out, each synced.
    let cp_dst = work.join(format!("cp-{name}"));
    let cp_back = work.join(format!("cp-back-{name}"));
    drop_caches();
    let (put_s, put_rss, _) = timed(Command::new("sh").arg("-c").arg(format!(
        "cp -r --reflink=never '{}' '{}' && sync -f '{}'",
        src.display(),
        cp_dst.display(),
        work.display()
    )))?;
    drop_caches();
    let (get_s, get_rss, _) = timed(Command::new("sh").arg("-c").arg(format!(
        "cp -r --reflink=never '{}' '{}' && sync -f '{}'",
        cp_dst.display(),
        cp_back.display(),
        work.display()
    )))?;
    rows.push(Row { data: name.into(), tool: "cp", put_mb_s: mb_s(input, put_s), get_mb_s: mb_s(input, get_s), stored: bytes_under(&cp_dst)?, input, put_rss, get_rss });
    let _ = fs::remove_dir_all(&cp_back);
    let _ = fs::remove_file(&cp_back);
    let _ = fs::remove_dir_all(&cp_dst);
    let _ = fs::remove_file(&cp_dst);

    // synapsed-storage.
    let store = work.join(format!("store-{name}"));
    let out = work.join(format!("out-{name}"));
    drop_caches();
    let (_, put_rss, stdout) = timed(Command::new(&me).arg("--child").arg("put").arg(&store).arg(src))?;
    let put_s: f64 = stdout.lines().find_map(|l| l.strip_prefix("SECS ")).context("no SECS")?.trim().parse()?;
    drop_caches();
    let (_, get_rss, stdout) = timed(Command::new(&me).arg("--child").arg("get").arg(&store).arg(&out))?;
    let get_s: f64 = stdout.lines().find_map(|l| l.strip_prefix("SECS ")).context("no SECS")?.trim().parse()?;
    if bytes_under(&out)? != input {
        bail!("synapsed-storage read back {} bytes of {input}", bytes_under(&out)?);
    }
    let stored = files_under(&store)?.iter().filter(|p| p.extension().is_some_and(|e| e == "blob")).map(|p| fs::metadata(p).map(|m| m.len())).sum::<std::io::Result<u64>>()?;
    rows.push(Row { data: name.into(), tool: "synapsed-storage", put_mb_s: mb_s(input, put_s), get_mb_s: mb_s(input, get_s), stored, input, put_rss, get_rss });
    fs::remove_dir_all(&store)?;
    fs::remove_dir_all(&out)?;

    // restic.
    let repo = work.join(format!("restic-{name}"));
    let restored = work.join(format!("restic-out-{name}"));
    let restic = |args: &[&str]| {
        let mut c = Command::new("restic");
        c.env("RESTIC_PASSWORD", PASSPHRASE).env("RESTIC_CACHE_DIR", work.join("restic-cache")).arg("-r").arg(&repo).arg("--quiet").args(args);
        c
    };
    let status = restic(&["init"]).output()?;
    if !status.status.success() {
        bail!("restic init: {}", String::from_utf8_lossy(&status.stderr));
    }
    drop_caches();
    let src_str = src.to_string_lossy().into_owned();
    let (put_s, put_rss, _) = timed(&mut restic(&["backup", &src_str]))?;
    let _ = Command::new("sync").status();
    drop_caches();
    let restored_str = restored.to_string_lossy().into_owned();
    let (get_s, get_rss, _) = timed(&mut restic(&["restore", "latest", "--target", &restored_str]))?;
    let stored = bytes_under(&repo.join("data"))?;
    rows.push(Row { data: name.into(), tool: "restic", put_mb_s: mb_s(input, put_s), get_mb_s: mb_s(input, get_s), stored, input, put_rss, get_rss });
    fs::remove_dir_all(&repo)?;
    fs::remove_dir_all(&restored)?;
    Ok(rows)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let (op, store, path) = match (args.get(2), args.get(3), args.get(4)) {
            (Some(o), Some(s), Some(p)) => (o, s, p),
            _ => bail!("usage: --child put|get STORE PATH"),
        };
        return child(op, Path::new(store), Path::new(path));
    }
    let Some(dir) = args.get(1) else { bail!("usage: blobs DIR [GIB] [SMALL_FILES]") };
    let gib: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let small: u64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let work = PathBuf::from(dir);
    fs::create_dir_all(&work)?;
    let data = work.join("data");
    fs::create_dir_all(&data)?;
    let random = data.join("random.bin");
    let dup = data.join("dup.bin");
    let smalls = data.join("small");
    eprintln!("generating data in {}", data.display());
    make_big(&random, gib, false)?;
    make_big(&dup, gib, true)?;
    make_small(&smalls, small)?;
    let mut rows = Vec::new();
    for (name, src) in [(format!("{gib} GiB random"), &random), (format!("{gib} GiB, 50% duplicate blocks"), &dup), (format!("{small} x 100 KB files"), &smalls)] {
        eprintln!("{name}");
        rows.extend(bench_one(&work, &name.replace(' ', "_").replace(['%', ','], ""), src)?);
    }
    println!("| data | tool | put MB/s | get MB/s | stored / input | put peak RSS | get peak RSS |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.3} | {} MiB | {} MiB |",
            r.data.replace('_', " "),
            r.tool,
            r.put_mb_s,
            r.get_mb_s,
            r.stored as f64 / r.input as f64,
            r.put_rss >> 20,
            r.get_rss >> 20
        );
    }
    fs::remove_dir_all(&data)?;
    Ok(())
}
