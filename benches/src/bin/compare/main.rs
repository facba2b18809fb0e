//! `compare`: runs one workload against synapsed-storage and the peer engines
//! compiled in (RocksDB, fjall, redb, sled, SQLite, LMDB), each in a child
//! process of its own so that peak RSS is per engine, and prints a markdown
//! table of the times with each peer's ratio to synapsed-storage. See
//! `benches/README.md` for how to build and run it.

mod device;
mod engine;
mod engines;
mod report;
mod rows;
mod run;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Side-by-side comparison of synapsed-storage with other embedded engines")]
struct Args {
    /// Pairs loaded (24-byte keys, 150-byte values).
    #[arg(long, default_value_t = 1_000_000)]
    n: u64,
    /// Comma-separated engines (default: every engine compiled in).
    #[arg(long, value_delimiter = ',')]
    engines: Vec<String>,
    /// Comma-separated workload groups: writes, reads, ranges, threads, latency,
    /// removals, compaction (default: all; the bulk load always runs).
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Directory for the engines' data (one subdirectory each, removed afterwards
    /// unless --keep). Put it on the device you want to measure, not on tmpfs.
    #[arg(long, default_value = "compare-data")]
    dir: PathBuf,
    /// Also write the rows as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Cache budget every engine gets, in MiB.
    #[arg(long, default_value_t = 256)]
    cache_mb: usize,
    /// Length of the latency run, in seconds.
    #[arg(long, default_value_t = 10)]
    latency_secs: u64,
    /// Workload seed.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// Rounds: every engine runs the workload once per round, in an order
    /// rotated by one each round (so no engine always runs first, on a cooler
    /// device), and the table reports each cell's median over the rounds.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Keep each engine's directory after its run.
    #[arg(long)]
    keep: bool,
    /// Also load the pairs through each engine's other bulk path (synapsed-storage:
    /// through the WAL, its ingest path off; fjall: ingest; LMDB: MDB_APPEND; see
    /// the notes under the table), in a child process of its own per engine and
    /// round, so that its time and peak RSS stand beside the "bulk load" row's.
    #[arg(long)]
    bulk_paths: bool,
    /// Also run the read rows (reads, ranges, threads) with every engine's cache
    /// set to this many MiB, smaller than the data (16 at n = 1M), in a child
    /// process of its own per engine and round; those rows end in ", M MiB cache".
    #[arg(long)]
    small_cache_mb: Option<usize>,
    /// Internal: load through the engine's other bulk path and stop.
    #[arg(long, hide = true)]
    other_bulk_load: bool,
    /// Internal: appended to every row's workload name.
    #[arg(long, hide = true, default_value = "")]
    row_suffix: String,
    /// Internal: run the workload against this one engine (the parent re-executes
    /// itself with this flag for each engine).
    #[arg(long, hide = true)]
    engine_child: Option<String>,
    /// Internal: where the child appends its rows.
    #[arg(long, hide = true)]
    result: Option<PathBuf>,
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let args = Args::parse();
    let groups: Vec<String> = if args.workloads.is_empty() {
        run::GROUPS.iter().map(|g| g.to_string()).collect()
    } else {
        for g in &args.workloads {
            if !run::GROUPS.contains(&g.as_str()) {
                bail!("unknown workload group {g:?}; known: {}", run::GROUPS.join(", "));
            }
        }
        args.workloads.clone()
    };
    let cache_bytes = args.cache_mb.checked_mul(1 << 20).context("--cache-mb too large")?;

    if let Some(engine) = &args.engine_child {
        let result = args.result.as_deref().context("--engine-child needs --result")?;
        let cfg = run::ChildConfig {
            engine: engine.clone(),
            n: args.n,
            groups,
            dir: args.dir.clone(),
            cache_bytes,
            latency: Duration::from_secs(args.latency_secs),
            seed: args.seed,
            other_bulk_load: args.other_bulk_load,
            row_suffix: args.row_suffix.clone(),
        };
        return run::run_child(&cfg, result);
    }

    let engines: Vec<String> = if args.engines.is_empty() {
        engine::ALL.iter().filter(|e| engine::compiled(e)).map(|e| e.to_string()).collect()
    } else {
        for e in &args.engines {
            if !engine::ALL.contains(&e.as_str()) {
                bail!("unknown engine {e:?}; known: {}", engine::ALL.join(", "));
            }
            if !engine::compiled(e) {
                bail!("engine {e} is not compiled into this build; build with --features compare");
            }
        }
        args.engines.clone()
    };

    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    if report::fs_type(&args.dir).as_deref() == Some("tmpfs") {
        eprintln!("warning: {} is on tmpfs; fsync costs nothing there and durable rows mean little", args.dir.display());
    }
    let machine = report::machine(&args.dir);
    eprintln!("machine: {machine}");
    eprintln!("n = {}, cache = {} MiB, engines: {}", args.n, args.cache_mb, engines.join(", "));

    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    if args.small_cache_mb == Some(0) {
        bail!("--small-cache-mb must be at least 1");
    }
    let results = args.dir.join("rows");
    std::fs::create_dir_all(&results)?;
    let mut all = Vec::new();
    let mut failed = Vec::new();
    for round in 0..args.rounds {
        let device_rows = results.join(format!("device.r{round}.jsonl"));
        remove_if_exists(&device_rows)?;
        let mut recorder = rows::Recorder::create("device", &device_rows)?;
        device::fsync_floor(&args.dir, 2_000, Duration::from_secs(5), &mut recorder)?;
        all.extend(rows::read_rows(&device_rows)?.into_iter().map(|r| r.in_round(round)));
        for name in rotated(&engines, round) {
            for variant in variants(&args, name) {
                eprintln!("== {name}{} (round {} of {})", variant.suffix, round + 1, args.rounds);
                let dir = args.dir.join(name);
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
                }
                let result = results.join(format!("{name}{}.r{round}.jsonl", variant.file_tag()));
                remove_if_exists(&result)?;
                let status =
                    child_command(&args, name, &dir, &result, &variant)?.status().context("starting the child process")?;
                if !status.success() {
                    eprintln!("warning: {name}{} failed in round {} ({status}); its table cells are partial", variant.suffix, round + 1);
                    if !failed.contains(name) {
                        failed.push(name.clone());
                    }
                }
                all.extend(rows::read_rows(&result)?.into_iter().map(|r| r.in_round(round)));
                if !args.keep && dir.exists() {
                    std::fs::remove_dir_all(&dir)?;
                }
            }
        }
    }

    let medians = report::medians(&all);
    let mut table = report::markdown(&medians, &engines);
    table.push_str(&report::rounds_note(&all, args.rounds));
    if args.bulk_paths {
        table.push_str(&format!("\nRows ending in \"{OTHER_BULK}\": the same pairs loaded into a fresh store through\n"));
        for e in &engines {
            match engine::bulk_path(e) {
                Some(how) => table.push_str(&format!("- {e}: {how};\n")),
                None => table.push_str(&format!("- {e}: none here (n/a);\n")),
            }
        }
        table.push_str("each in a process of its own, so its peak RSS is the load's alone; \"peak RSS after the bulk load\" is the main run's at the same point.\n");
    }
    if let Some(mb) = args.small_cache_mb {
        table.push_str(&format!(
            "\nRows ending in \", {mb} MiB cache\": the read rows again in a fresh store whose cache (every engine's) is {mb} MiB, smaller than the data.\n"
        ));
    }
    println!("n = {}, cache = {} MiB per engine; {machine}\n", args.n, args.cache_mb);
    println!("{table}");
    if let Some(path) = &args.json {
        report::write_json(path, args.n, &machine, &all)?;
        eprintln!("wrote {}", path.display());
    }
    if !failed.is_empty() {
        bail!("engines that failed: {}", failed.join(", "));
    }
    Ok(())
}

/// `engines` in the order round `round` runs them: rotated left by `round`.
fn rotated(engines: &[String], round: u32) -> impl Iterator<Item = &String> {
    let shift = if engines.is_empty() { 0 } else { round as usize % engines.len() };
    engines.iter().skip(shift).chain(engines.iter().take(shift))
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Row-name suffix of the runs through the other bulk paths.
const OTHER_BULK: &str = ", other bulk path";

/// One child run of an engine within a round: the main workload, or a variant.
struct Variant {
    /// Appended to its rows' names ("" for the main run).
    suffix: String,
    /// Cache budget, when not `--cache-mb`.
    cache_mb: Option<usize>,
    /// Workload groups, when not `--workloads`.
    workloads: Option<Vec<String>>,
    /// Load through the engine's other bulk path and stop.
    other_bulk_load: bool,
}

impl Variant {
    /// A file-name-safe tag for its result file.
    fn file_tag(&self) -> String {
        self.suffix.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect()
    }
}

/// The runs of `engine` in each round: the main one, then those the flags ask for.
fn variants(args: &Args, engine: &str) -> Vec<Variant> {
    let mut v = vec![Variant { suffix: String::new(), cache_mb: None, workloads: None, other_bulk_load: false }];
    if args.bulk_paths && engine::bulk_path(engine).is_some() {
        v.push(Variant { suffix: OTHER_BULK.into(), cache_mb: None, workloads: None, other_bulk_load: true });
    }
    if let Some(mb) = args.small_cache_mb {
        let reads = ["reads", "ranges", "threads"];
        let groups: Vec<String> = if args.workloads.is_empty() {
            reads.iter().map(|g| g.to_string()).collect()
        } else {
            args.workloads.iter().filter(|g| reads.contains(&g.as_str())).cloned().collect()
        };
        if !groups.is_empty() {
            v.push(Variant { suffix: format!(", {mb} MiB cache"), cache_mb: Some(mb), workloads: Some(groups), other_bulk_load: false });
        }
    }
    v
}

/// This same executable, told to run one engine.
fn child_command(args: &Args, engine: &str, dir: &Path, result: &Path, variant: &Variant) -> Result<Command> {
    let mut cmd = Command::new(std::env::current_exe().context("locating the harness executable")?);
    cmd.arg("--engine-child")
        .arg(engine)
        .arg("--result")
        .arg(result)
        .arg("--dir")
        .arg(dir)
        .arg("--n")
        .arg(args.n.to_string())
        .arg("--cache-mb")
        .arg(variant.cache_mb.unwrap_or(args.cache_mb).to_string())
        .arg("--latency-secs")
        .arg(args.latency_secs.to_string())
        .arg("--seed")
        .arg(args.seed.to_string());
    match &variant.workloads {
        Some(groups) => {
            cmd.arg("--workloads").arg(groups.join(","));
        }
        None if !args.workloads.is_empty() => {
            cmd.arg("--workloads").arg(args.workloads.join(","));
        }
        None => {}
    }
    if variant.other_bulk_load {
        cmd.arg("--other-bulk-load");
    }
    if !variant.suffix.is_empty() {
        cmd.arg(format!("--row-suffix={}", variant.suffix));
    }
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn each_round_starts_with_the_next_engine() {
        let engines: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let order = |round| rotated(&engines, round).map(String::as_str).collect::<Vec<_>>();
        assert_eq!(order(0), ["a", "b", "c"]);
        assert_eq!(order(1), ["b", "c", "a"]);
        assert_eq!(order(2), ["c", "a", "b"]);
        assert_eq!(order(3), ["a", "b", "c"]);
        assert_eq!(rotated(&[], 5).count(), 0);
    }

    #[test]
    fn flags_add_the_variant_runs() {
        let args = Args::parse_from(["compare", "--bulk-paths", "--small-cache-mb", "16"]);
        let suffixes = |e| variants(&args, e).into_iter().map(|v| v.suffix).collect::<Vec<_>>();
        assert_eq!(suffixes("synapsed-storage"), ["", ", other bulk path", ", 16 MiB cache"]);
        assert_eq!(suffixes("redb"), ["", ", 16 MiB cache"]);
        let small = variants(&args, "redb").pop().unwrap();
        assert_eq!(small.cache_mb, Some(16));
        assert_eq!(small.workloads.unwrap(), ["reads", "ranges", "threads"]);
        let plain = Args::parse_from(["compare"]);
        assert_eq!(variants(&plain, "synapsed-storage").len(), 1);
        let writes_only = Args::parse_from(["compare", "--small-cache-mb", "16", "--workloads", "writes"]);
        assert_eq!(variants(&writes_only, "fjall").len(), 1, "no read rows asked for, no small-cache run");
    }
}
