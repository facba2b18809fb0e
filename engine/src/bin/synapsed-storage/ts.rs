//! The `ts` commands: time series of float values at millisecond timestamps.
//!
//! ```text
//! ts append SERIES TS_MS VALUE [--label K=V]...
//! ts import SERIES [FILE|-] [--label K=V]...   "TS_MS VALUE" lines; prints "imported N"
//! ts query SERIES --from MS --to MS [--step MS --agg avg|min|max|sum|count|first|last]
//!                                              "TS_MS<TAB>VALUE" lines, [from, to)
//! ts latest SERIES                             "TS_MS<TAB>VALUE", exit 1 if none
//! ts retention SERIES --keep MS
//! ts ls                                        "SERIES<TAB>POINTS" lines
//! ```
//! Values print in shortest round-trip form (Rust's `Display` of f64), so
//! reading them back gives the same bits; NaN prints as `NaN`, infinities as
//! `inf` / `-inf`, and those forms are read back too.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;
use synapsed_storage::{Aggregate, Point};

use crate::{Exit, GlobalArgs, EXIT_FAILURE, EXIT_USAGE};

/// Lines handed to the store per import call (each call commits atomically in
/// chunks of its own).
const IMPORT_BATCH_POINTS: usize = 1 << 16;
/// Longest accepted import line.
const MAX_LINE_BYTES: u64 = 4096;

/// `ts` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TsCommand {
    /// Appends one point (in order, or within the series' out-of-order window).
    Append {
        /// Series name.
        series: String,
        /// Timestamp in milliseconds.
        #[arg(allow_hyphen_values = true)]
        ts_ms: String,
        /// Value (a float; NaN, inf and -inf are accepted).
        #[arg(allow_hyphen_values = true)]
        value: String,
        /// Sets the series' labels (replacing any it had).
        #[arg(long = "label", value_name = "K=V")]
        labels: Vec<String>,
    },
    /// Imports "TS_MS VALUE" lines from FILE or stdin; prints "imported N".
    Import {
        /// Series name.
        series: String,
        /// Input file ("-" or absent: stdin).
        file: Option<PathBuf>,
        /// Sets the series' labels (replacing any it had).
        #[arg(long = "label", value_name = "K=V")]
        labels: Vec<String>,
    },
    /// Prints "TS_MS<TAB>VALUE" lines of [--from, --to), or one aggregate per
    /// --step (buckets start at --from).
    Query {
        /// Series name.
        series: String,
        /// Start (inclusive), ms.
        #[arg(long, allow_hyphen_values = true)]
        from: i64,
        /// End (exclusive), ms.
        #[arg(long, allow_hyphen_values = true)]
        to: i64,
        /// Bucket width in ms (with --agg).
        #[arg(long, requires = "agg")]
        step: Option<i64>,
        /// Aggregate per bucket: avg, min, max, sum, count, first, last.
        #[arg(long, requires = "step")]
        agg: Option<String>,
    },
    /// Prints the newest point as "TS_MS<TAB>VALUE"; exits 1 if the series has none.
    Latest {
        /// Series name.
        series: String,
    },
    /// Keeps only points newer than the series' newest minus --keep ms.
    Retention {
        /// Series name.
        series: String,
        /// Window in ms.
        #[arg(long)]
        keep: i64,
    },
    /// Prints "SERIES<TAB>POINTS" lines.
    Ls,
}

fn parse_labels(labels: &[String]) -> anyhow::Result<Vec<(&str, &str)>> {
    labels
        .iter()
        .map(|l| l.split_once('=').ok_or_else(|| Exit::new(EXIT_USAGE, format!("label {l:?} is not K=V")).into()))
        .collect()
}

fn parse_point(ts: &str, value: &str) -> Result<Point, String> {
    let ts_ms = ts.parse::<i64>().map_err(|_| format!("bad timestamp {ts:?} (integer milliseconds)"))?;
    let value = value.parse::<f64>().map_err(|_| format!("bad value {value:?} (a float)"))?;
    Ok(Point { ts_ms, value })
}

fn print_points(out: &mut impl Write, points: &[Point]) -> anyhow::Result<()> {
    for p in points {
        writeln!(out, "{}\t{}", p.ts_ms, p.value)?;
    }
    Ok(())
}

/// Runs one `ts` command.
pub(crate) fn run(g: &GlobalArgs, command: &TsCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        TsCommand::Append { series, ts_ms, value, labels } => {
            let point = parse_point(ts_ms, value).map_err(|e| Exit::new(EXIT_USAGE, e))?;
            let labels = parse_labels(labels)?;
            let db = g.open(false)?;
            let ts = db.time_series();
            ts.append(series, point.ts_ms, point.value)?;
            if !labels.is_empty() {
                ts.set_labels(series, &labels)?;
            }
            db.close()?;
        }
        TsCommand::Import { series, file, labels } => {
            let labels = parse_labels(labels)?;
            let input: Box<dyn BufRead> = match file.as_deref() {
                None => Box::new(std::io::BufReader::new(std::io::stdin())),
                Some(p) if p.as_os_str() == "-" => Box::new(std::io::BufReader::new(std::io::stdin())),
                Some(p) => Box::new(std::io::BufReader::new(std::fs::File::open(p).with_context(|| format!("cannot read {}", p.display()))?)),
            };
            let db = g.open(false)?;
            let result = import(&db, series, &labels, input);
            let closed = db.close();
            let n = result?;
            closed?;
            writeln!(out, "imported {n}")?;
        }
        TsCommand::Query { series, from, to, step, agg } => {
            let db = g.open(true)?;
            let ts = db.time_series();
            match (step, agg) {
                (Some(step), Some(agg)) => {
                    let agg: Aggregate = agg.parse().map_err(|e: synapsed_storage::Error| Exit::new(EXIT_USAGE, e.to_string()))?;
                    print_points(out, &ts.downsample(series, *from, *to, *step, agg)?.points)?;
                }
                _ => print_points(out, &ts.query(series, *from, *to)?)?,
            }
        }
        TsCommand::Latest { series } => {
            let db = g.open(true)?;
            match db.time_series().latest(series)? {
                Some(p) => print_points(out, &[p])?,
                None => return Err(Exit::new(EXIT_FAILURE, format!("series {series:?} has no points")).into()),
            }
        }
        TsCommand::Retention { series, keep } => {
            let db = g.open(false)?;
            db.time_series().set_retention(series, Some(*keep))?;
            db.close()?;
        }
        TsCommand::Ls => {
            let db = g.open(true)?;
            for info in db.time_series().series()? {
                writeln!(out, "{}\t{}", info.name, info.points)?;
            }
        }
    }
    Ok(())
}

/// Reads "TS_MS VALUE" lines (blank lines skipped) and imports them in
/// batches; a bad line stops the import with its line number, after the
/// batches before it were stored.
fn import(db: &synapsed_storage::Db, series: &str, labels: &[(&str, &str)], mut input: Box<dyn BufRead>) -> anyhow::Result<u64> {
    let ts = db.time_series();
    if !labels.is_empty() {
        ts.set_labels(series, labels)?;
    }
    let progress = crate::progress::Count::start("points imported");
    let mut total = 0u64;
    let mut batch = Vec::with_capacity(IMPORT_BATCH_POINTS);
    let mut line = String::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = std::io::Read::take(&mut *input, MAX_LINE_BYTES + 1).read_line(&mut line)?;
        let done = read == 0;
        if !done {
            number += 1;
            if line.len() as u64 > MAX_LINE_BYTES {
                bail!("line {number}: longer than {MAX_LINE_BYTES} bytes");
            }
            let text = line.trim();
            if !text.is_empty() {
                let mut fields = text.split_whitespace();
                let (Some(t), Some(v), None) = (fields.next(), fields.next(), fields.next()) else {
                    bail!("line {number}: expected \"TS_MS VALUE\"");
                };
                batch.push(parse_point(t, v).map_err(|e| anyhow::anyhow!("line {number}: {e}"))?);
            }
        }
        if batch.len() >= IMPORT_BATCH_POINTS || (done && !batch.is_empty()) {
            let stored = ts.import(series, batch.drain(..)).with_context(|| format!("import stopped before line {number}; {total} points stored"))?;
            total += stored;
            progress.add(stored);
        }
        if done {
            break;
        }
    }
    Ok(total)
}
