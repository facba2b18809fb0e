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
            eprintln!("== {name} (round {} of {})", round + 1, args.rounds);
            let dir = args.dir.join(name);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
            }
            let result = results.join(format!("{name}.r{round}.jsonl"));
            remove_if_exists(&result)?;
            let status = child_command(&args, name, &dir, &result)?.status().context("starting the child process")?;
            if !status.success() {
                eprintln!("warning: {name} failed in round {} ({status}); its table cells are partial", round + 1);
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

    let medians = report::medians(&all);
    let mut table = report::markdown(&medians, &engines);
    table.push_str(&report::rounds_note(&all, args.rounds));
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

/// This same executable, told to run one engine.
fn child_command(args: &Args, engine: &str, dir: &Path, result: &Path) -> Result<Command> {
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
        .arg(args.cache_mb.to_string())
        .arg("--latency-secs")
        .arg(args.latency_secs.to_string())
        .arg("--seed")
        .arg(args.seed.to_string());
    if !args.workloads.is_empty() {
        cmd.arg("--workloads").arg(args.workloads.join(","));
    }
    Ok(cmd)
}

#[cfg(test)]
mod tests {
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
}
