//! Exporting a store's metrics to Prometheus from an application.
//!
//! The application installs a recorder (here `metrics-exporter-prometheus`),
//! opens the store with `Options::metrics` on, and before each scrape calls
//! `MetricsHandle::publish` so the store's gauges are current. This example
//! renders the text once and checks the figures against what it did.
//!
//! Run with `cargo run -p synapsed-storage --example metrics`.

mod common;

use metrics_exporter_prometheus::PrometheusBuilder;
use synapsed_storage::{Credential, Db, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let recorder = PrometheusBuilder::new().install_recorder()?;
    synapsed_storage::describe_metrics();

    let dir = tempfile::tempdir()?;
    let options = Options::default().with_metrics(true);
    let db = Db::create(dir.path(), &Credential::passphrase("example passphrase"), options)?;
    let exporter_hook = db.metrics_handle();

    for i in 0..1000 {
        db.put(format!("order:{i:04}").as_bytes(), b"{\"amount\": 12.5}")?;
    }
    db.flush()?;
    let mut found = 0;
    for i in (0..1000).step_by(10) {
        found += usize::from(db.get(format!("order:{i:04}").as_bytes())?.is_some());
    }

    // What an HTTP handler for /metrics would do on each scrape:
    exporter_hook.publish();
    let text = recorder.render();

    let value = |series: &str| -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
    };
    let checks = [
        ("writes counted", value(r#"synapsed_ops_total{op="write"}"#) == Some(1000.0)),
        ("gets counted", value(r#"synapsed_ops_total{op="get"}"#) == Some(found as f64)),
        ("one flush", value("synapsed_flushes_total") == Some(1.0)),
        ("a table on level 0", value(r#"synapsed_level_files{level="0"}"#) == Some(1.0)),
        ("no key in the text", !text.contains("order:")),
    ];
    for line in text.lines().filter(|l| l.starts_with("synapsed_ops_total") || l.starts_with("synapsed_flushes_total")) {
        println!("{line}");
    }
    db.close()?;
    common::report("metrics", &checks)
}
