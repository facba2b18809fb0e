//! Result rows, as the child processes write them (one JSON object per line, so
//! the rows of a run that dies halfway are still there) and as the final JSON
//! file and markdown table present them.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

/// What a row measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    /// Elapsed milliseconds.
    Ms(f64),
    /// Bytes on disk.
    Bytes(u64),
    /// Peak resident set size of the engine's process.
    PeakRssBytes(u64),
}

/// One measurement of one engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Engine name (or "device" for the harness's own fsync probe).
    pub engine: String,
    /// Workload name.
    pub workload: String,
    /// The measurement.
    pub measure: Measure,
    /// The round it was measured in (0-based; `--rounds`).
    pub round: u32,
}

impl Row {
    /// The JSON object of this row.
    pub fn to_json(&self) -> Value {
        let (e, w, r) = (&self.engine, &self.workload, self.round);
        match self.measure {
            Measure::Ms(ms) => json!({"engine": e, "workload": w, "round": r, "ms": ms}),
            Measure::Bytes(b) => json!({"engine": e, "workload": w, "round": r, "bytes": b}),
            Measure::PeakRssBytes(b) => json!({"engine": e, "workload": w, "round": r, "peak_rss_bytes": b}),
        }
    }

    /// This row, as measured in round `round`.
    pub fn in_round(self, round: u32) -> Row {
        Row { round, ..self }
    }

    /// Parses a row written by [`Row::to_json`].
    pub fn from_json(v: &Value) -> Option<Row> {
        let engine = v.get("engine")?.as_str()?.to_string();
        let workload = v.get("workload")?.as_str()?.to_string();
        let measure = if let Some(ms) = v.get("ms").and_then(Value::as_f64) {
            Measure::Ms(ms)
        } else if let Some(b) = v.get("bytes").and_then(Value::as_u64) {
            Measure::Bytes(b)
        } else {
            Measure::PeakRssBytes(v.get("peak_rss_bytes")?.as_u64()?)
        };
        let round = v.get("round").and_then(Value::as_u64).map_or(Some(0), |r| u32::try_from(r).ok())?;
        Some(Row { engine, workload, measure, round })
    }

    /// The number compared across engines.
    pub fn value(&self) -> f64 {
        match self.measure {
            Measure::Ms(ms) => ms,
            Measure::Bytes(b) | Measure::PeakRssBytes(b) => b as f64,
        }
    }
}

/// Appends rows of one engine to a file as they are measured, echoing them on stderr.
pub struct Recorder {
    engine: String,
    file: std::fs::File,
    suffix: String,
}

impl Recorder {
    /// Rows of `engine`, appended to `path`.
    pub fn create(engine: &str, path: &Path) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening result file {}", path.display()))?;
        Ok(Recorder { engine: engine.to_string(), file, suffix: String::new() })
    }

    /// These rows with `suffix` appended to every workload name (the rows of a
    /// variant run: another cache size, another bulk path).
    pub fn with_suffix(mut self, suffix: &str) -> Self {
        self.suffix = suffix.to_string();
        self
    }

    fn push(&mut self, workload: &str, measure: Measure) -> Result<()> {
        let row = Row { engine: self.engine.clone(), workload: format!("{workload}{}", self.suffix), measure, round: 0 };
        eprintln!("  {:<16} {:<40} {}", self.engine, workload, crate::report::cell(&row));
        writeln!(self.file, "{}", row.to_json())?;
        self.file.flush()?;
        Ok(())
    }

    /// Records an elapsed time.
    pub fn time(&mut self, workload: &str, d: Duration) -> Result<()> {
        self.push(workload, Measure::Ms(d.as_secs_f64() * 1e3))
    }

    /// Records a time given in nanoseconds.
    pub fn nanos(&mut self, workload: &str, ns: u64) -> Result<()> {
        self.push(workload, Measure::Ms(ns as f64 / 1e6))
    }

    /// Records a size on disk.
    pub fn bytes(&mut self, workload: &str, bytes: u64) -> Result<()> {
        self.push(workload, Measure::Bytes(bytes))
    }

    /// Records the peak RSS.
    pub fn peak_rss(&mut self, workload: &str, bytes: u64) -> Result<()> {
        self.push(workload, Measure::PeakRssBytes(bytes))
    }
}

/// Reads the rows a child wrote; a torn last line (the child died mid-write) is skipped.
pub fn read_rows(path: &Path) -> Result<Vec<Row>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter_map(|v| Row::from_json(&v)).collect())
}
