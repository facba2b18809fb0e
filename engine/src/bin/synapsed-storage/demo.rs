//! The `demo` command: a few thousand chat messages go through every stage of the
//! engine (durable puts, atomic batches, a snapshot, scans, deletes, flush,
//! compaction, reopen, verify), each stage is checked against an in-memory model,
//! and finally every file of the store is searched for a marker string that every
//! message carries. It prints a short narrative and succeeds only if every check
//! held, so it doubles as a smoke test of a build on a new machine.

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context};
use rand::{Rng, RngCore};
use synapsed_storage::{Credential, Db, Options, WriteBatch};
use zeroize::Zeroizing;

use crate::report::{dir_files, human_bytes};
use crate::GlobalArgs;

const CONVERSATIONS: u32 = 10;
const MESSAGES_PER_CONVERSATION: u32 = 500;
/// Messages written with one durable `put` each; the rest go in batches.
const SINGLE_PUTS: u32 = 500;
const BATCH_SIZE: usize = 500;
const EDITED: usize = 100;
const SCANNED_CONVERSATION: u32 = 3;
const DELETED_CONVERSATION: u32 = 7;

const SENDERS: [&str; 4] = ["alice", "bob", "carol", "dave"];
const PHRASES: [&str; 8] = [
    "are we still on for tonight?",
    "the account number is in the usual place",
    "sent you the contract, please sign page 4",
    "my new PIN is the same as the door code",
    "running 10 minutes late",
    "can you forward the lab results?",
    "the wifi password changed again",
    "let's keep this between us",
];

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Removes the temporary directory on every exit path.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn message_key(conversation: u32, index: u32) -> Vec<u8> {
    let ts_ms = 1_700_000_000_000u64 + u64::from(conversation) * 10_000_000 + u64::from(index) * 1_000;
    format!("chat/{conversation:02}/{ts_ms:013}").into_bytes()
}

fn message_value(index: u32, marker: &str, rng: &mut impl Rng, edited: bool) -> Vec<u8> {
    let from = SENDERS.get(index as usize % SENDERS.len()).copied().unwrap_or("alice");
    let phrase = PHRASES.get(rng.gen_range(0..PHRASES.len())).copied().unwrap_or("hi");
    let text = if edited { format!("{phrase} (edited) {marker}") } else { format!("{phrase} {marker}") };
    serde_json::json!({ "from": from, "text": text, "read": rng.gen_bool(0.5) }).to_string().into_bytes()
}

fn prefix_of(conversation: u32) -> Vec<u8> {
    format!("chat/{conversation:02}/").into_bytes()
}

fn scan(db: &Db, prefix: &[u8]) -> anyhow::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    db.scan_prefix(prefix)?.collect::<Result<Vec<_>, _>>().map_err(Into::into)
}

fn model_prefix(model: &Model, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    model.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut groups: Vec<&str> = Vec::new();
    let mut rest = digits.as_str();
    while rest.len() > 3 {
        let (head, tail) = rest.split_at(rest.len() - 3);
        groups.push(tail);
        rest = head;
    }
    groups.push(rest);
    groups.reverse();
    groups.join(",")
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn ms(d: Duration) -> String {
    if d.as_secs() >= 1 {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    }
}

/// Runs the demo; `Ok(false)` when a check failed (already reported on `out`).
pub(crate) fn run(g: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<bool> {
    let (given, options) = crate::demo_setup(g)?;
    let mut rng = rand::thread_rng();
    let generated: Zeroizing<String> = Zeroizing::new(format!("{:032x}", rng.gen::<u128>()));
    let credential = match given {
        Some(c) => c,
        None => Credential::passphrase(generated.as_bytes()),
    };
    let (store, _cleanup) = match &g.db {
        Some(dir) => (dir.clone(), None),
        None => {
            let tmp = std::env::temp_dir().join(format!("synapsed-demo-{}-{:08x}", std::process::id(), rng.next_u32()));
            std::fs::create_dir(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
            (tmp.join("store"), Some(TempDir(tmp)))
        }
    };
    let marker = format!("demo-marker-{:016x}", rng.next_u64());

    writeln!(out, "synapsed-storage demo: an encrypted chat store, checked step by step")?;
    if g.db.is_some() {
        writeln!(out, "store:   {} (kept)", store.display())?;
    } else {
        writeln!(out, "store:   {} (temporary, removed at the end)", store.display())?;
    }
    if g.passphrase_file.is_none() && g.key_file.is_none() && crate::keys::env_passphrase().is_none() {
        writeln!(out, "key:     a random passphrase for this run (set SYNAPSED_PASSPHRASE to choose one)")?;
    }
    writeln!(out, "marker:  every message contains \"{marker}\"; it must never reach the disk in clear")?;
    writeln!(out)?;

    let started = Instant::now();
    let mut demo = Demo { out, store: &store, credential: &credential, options, marker: &marker, passed: 0 };
    let outcome = demo.steps(&mut rng);
    let passed = demo.passed;
    match outcome {
        Ok(()) => {
            writeln!(demo.out, "\nall {passed} steps passed in {}", ms(started.elapsed()))?;
            Ok(true)
        }
        Err(e) => {
            writeln!(demo.out, "FAIL {e:#}\n\n{passed} steps passed before the failure")?;
            Ok(false)
        }
    }
}

struct Demo<'a> {
    out: &'a mut dyn Write,
    store: &'a Path,
    credential: &'a Credential,
    options: Options,
    marker: &'a str,
    passed: usize,
}

impl Demo<'_> {
    fn ok(&mut self, line: String) -> anyhow::Result<()> {
        self.passed += 1;
        writeln!(self.out, " ok  {line}")?;
        self.out.flush()?;
        Ok(())
    }

    fn steps(&mut self, rng: &mut impl Rng) -> anyhow::Result<()> {
        let mut model = Model::new();

        let t = Instant::now();
        let db = Db::create(self.store, self.credential, self.options.clone()).context("create")?;
        let a = self.options.argon2;
        self.ok(format!(
            "created the store (master key wrapped by Argon2id m={} KiB t={}): {}",
            a.m_cost_kib,
            a.t_cost,
            ms(t.elapsed())
        ))?;

        // Durable single puts, in conversation order.
        let mut all: Vec<(u32, u32)> = Vec::new();
        for c in 0..CONVERSATIONS {
            for i in 0..MESSAGES_PER_CONVERSATION {
                all.push((c, i));
            }
        }
        let (singles, batched) = all.split_at(SINGLE_PUTS as usize);
        let t = Instant::now();
        for &(c, i) in singles {
            let (k, v) = (message_key(c, i), message_value(i, self.marker, rng, false));
            db.put(&k, &v).context("put")?;
            model.insert(k, v);
        }
        let e = t.elapsed();
        self.ok(format!(
            "{} messages, one durable put each: {} ({:.0} µs per put)",
            count(singles.len()),
            ms(e),
            e.as_secs_f64() * 1e6 / f64::from(SINGLE_PUTS.max(1))
        ))?;

        let t = Instant::now();
        let mut batches = 0;
        for chunk in batched.chunks(BATCH_SIZE) {
            let mut batch = WriteBatch::new();
            for &(c, i) in chunk {
                let (k, v) = (message_key(c, i), message_value(i, self.marker, rng, false));
                batch.put(&k, &v);
                model.insert(k, v);
            }
            db.write(batch).context("write batch")?;
            batches += 1;
        }
        self.ok(format!(
            "{} messages in {batches} atomic batches of {BATCH_SIZE}: {}",
            count(batched.len()),
            ms(t.elapsed())
        ))?;
        for (k, v) in model.iter().step_by(97) {
            ensure!(
                db.get(k)?.as_deref() == Some(v.as_slice()),
                "get {} returned something else",
                String::from_utf8_lossy(k)
            );
        }

        // A snapshot keeps the old text while the live store sees the edits. It is
        // released at the end of this block, so compaction may drop the old versions.
        {
            let snapshot = db.snapshot();
            let edited: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = (0..EDITED as u32)
                .map(|i| {
                    let k = message_key(1, i);
                    let old = model.get(&k).cloned().unwrap_or_default();
                    (k, old, message_value(i, self.marker, rng, true))
                })
                .collect();
            let mut batch = WriteBatch::new();
            for (k, _, new) in &edited {
                batch.put(k, new);
            }
            db.write(batch).context("write edits")?;
            for (k, old, new) in &edited {
                ensure!(db.get_at(k, &snapshot)?.as_deref() == Some(old.as_slice()), "the snapshot sees an edit");
                ensure!(db.get(k)?.as_deref() == Some(new.as_slice()), "an edit is missing");
                model.insert(k.clone(), new.clone());
            }
        }
        self.ok(format!("{EDITED} messages edited in one batch; a snapshot taken before still reads every old text"))?;

        // Scans: one conversation in time order, and its newest messages in reverse.
        let t = Instant::now();
        let prefix = prefix_of(SCANNED_CONVERSATION);
        let got = scan(&db, &prefix)?;
        let e = t.elapsed();
        ensure!(
            got == model_prefix(&model, &prefix),
            "scan of {} differs from what was written",
            String::from_utf8_lossy(&prefix)
        );
        let mut end = prefix.clone();
        end.push(0xff);
        let newest: Vec<_> = db
            .range(Bound::Included(prefix.as_slice()), Bound::Excluded(end.as_slice()), true, None)?
            .take(3)
            .collect::<Result<Vec<_>, _>>()?;
        let expected: Vec<_> = model_prefix(&model, &prefix).into_iter().rev().take(3).collect();
        ensure!(newest == expected, "reverse range does not return the newest messages");
        self.ok(format!(
            "scan of \"{}\": {} messages in time order in {}; reverse range gives the newest 3",
            String::from_utf8_lossy(&prefix),
            count(got.len()),
            ms(e)
        ))?;

        // Deleting a whole conversation atomically.
        let prefix = prefix_of(DELETED_CONVERSATION);
        let doomed: Vec<Vec<u8>> = model_prefix(&model, &prefix).into_iter().map(|(k, _)| k).collect();
        let mut batch = WriteBatch::new();
        for k in &doomed {
            batch.delete(k);
            model.remove(k);
        }
        db.write(batch).context("write deletes")?;
        ensure!(scan(&db, &prefix)?.is_empty(), "deleted messages still show in a scan");
        for k in doomed.iter().step_by(50) {
            ensure!(db.get(k)?.is_none(), "a deleted message is still readable");
        }
        self.ok(format!(
            "deleted conversation \"{}\" ({} messages) in one batch; get and scan see none of it",
            String::from_utf8_lossy(&prefix),
            count(doomed.len())
        ))?;

        // Flush and compact everything to the bottom level.
        let tables = |db: &Db| db.stats().files_per_level.iter().sum::<usize>();
        let before = tables(&db);
        let t = Instant::now();
        db.flush().context("flush")?;
        let flushed = tables(&db);
        db.compact_range(None, None).context("compact")?;
        let stats = db.stats();
        let disk = dir_files(self.store)?.iter().map(|f| f.bytes).sum::<u64>();
        self.ok(format!(
            "flush + full compaction in {}: tables {before} before, {flushed} after the flush, {} after compaction \
             ({} in total since open); {} on disk",
            ms(t.elapsed()),
            stats.files_per_level.iter().sum::<usize>(),
            plural(stats.flushes, "flush", "flushes")
                + " and "
                + &plural(stats.compactions, "compaction", "compactions"),
            human_bytes(disk)
        ))?;
        db.close().context("close")?;

        // Everything written is there after a reopen, and nothing else.
        let t = Instant::now();
        let db = Db::open(self.store, self.credential, self.options.clone()).context("reopen")?;
        let opened = t.elapsed();
        let everything = scan(&db, b"")?;
        let expected: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if everything != expected {
            bail!("after reopen the store holds {} messages, expected {}", everything.len(), expected.len());
        }
        db.close().context("close")?;
        self.ok(format!(
            "closed and reopened in {}: {} live messages, each identical to what was written",
            ms(opened),
            count(everything.len())
        ))?;

        let t = Instant::now();
        let options = self.options.clone().with_read_only(true);
        let report = Db::verify(self.store, self.credential, options).context("verify")?;
        if !report.is_ok() {
            let names: Vec<String> = report.damaged.iter().map(|(f, why)| format!("{f}: {why}")).collect();
            bail!("verify reports damage: {}", names.join("; "));
        }
        self.ok(format!(
            "verify: {} files and {} entries authenticated in {}",
            report.files_checked,
            count(usize::try_from(report.entries_checked).unwrap_or(usize::MAX)),
            ms(t.elapsed())
        ))?;

        // The privacy claim itself: no file holds the marker, a message text or a key.
        let files = dir_files(self.store)?;
        let raw_bytes: usize = model.iter().map(|(k, v)| k.len() + v.len()).sum();
        let mut scanned = 0u64;
        let needles: [&[u8]; 3] = [self.marker.as_bytes(), b"chat/0", b"the wifi password"];
        for f in &files {
            let bytes = std::fs::read(self.store.join(&f.name)).with_context(|| format!("cannot read {}", f.name))?;
            scanned += bytes.len() as u64;
            for needle in needles {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    return Err(anyhow!("{} contains {:?} in clear", f.name, String::from_utf8_lossy(needle)));
                }
            }
        }
        self.ok(format!(
            "searched all {} files ({}) for the marker, a key prefix and a message phrase: none found \
             ({} of keys and values stored)",
            files.len(),
            human_bytes(scanned),
            human_bytes(raw_bytes as u64)
        ))?;
        Ok(())
    }
}
