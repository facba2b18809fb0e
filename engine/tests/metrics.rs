//! Metrics: counts that match what was done, a real Prometheus scraping the
//! command-line tool's `--metrics` endpoint, and no key, value or keyspace
//! name in any metric.

mod common;

use common::cli::BIN;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusBuilder;
use synapsed_storage::{Db, KeyspaceOptions};

const MARKER: &str = "zqxMETRICSCANARYqxz";

/// The value of the sample `name` (exact series text, labels included) in a
/// Prometheus text rendering.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}

#[test]
fn counts_match_the_operations_and_no_metric_names_a_key_value_or_keyspace() {
    let handle = PrometheusBuilder::new().install_recorder().unwrap();
    synapsed_storage::describe_metrics();
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &common::cred(), common::options().with_metrics(true)).unwrap();
    let keyspace = db.create_keyspace(&format!("ks-{MARKER}"), KeyspaceOptions::default()).unwrap();
    for i in 0..50 {
        db.put(format!("{MARKER}-key-{i}").as_bytes(), format!("{MARKER}-value-{i}").as_bytes()).unwrap();
        db.put_in(&keyspace, format!("{MARKER}-k{i}").as_bytes(), MARKER.as_bytes()).unwrap();
    }
    db.flush().unwrap();
    for i in 0..7 {
        assert!(db.get(format!("{MARKER}-key-{i}").as_bytes()).unwrap().is_some());
    }
    assert_eq!(db.get_in(&keyspace, b"absent").unwrap(), None);
    assert_eq!(db.scan_prefix(MARKER.as_bytes()).unwrap().count(), 50);
    db.compact_range(None, None).unwrap();
    let published = db.metrics_handle();
    assert!(published.publish());
    let text = handle.render();
    assert!(!text.contains(MARKER), "a metric carries a key, a value or a keyspace name:\n{text}");
    assert!(text.contains("# HELP synapsed_ops_total "), "{text}");
    assert_eq!(sample(&text, r#"synapsed_ops_total{op="write"}"#), Some(100.0), "{text}");
    assert_eq!(sample(&text, r#"synapsed_ops_total{op="get"}"#), Some(8.0), "{text}");
    assert_eq!(sample(&text, r#"synapsed_ops_total{op="scan"}"#), Some(1.0), "{text}");
    assert_eq!(sample(&text, "synapsed_write_batch_ops_total"), Some(100.0), "{text}");
    assert!(sample(&text, "synapsed_flushes_total").unwrap_or(0.0) >= 1.0, "{text}");
    assert!(sample(&text, "synapsed_compactions_total").unwrap_or(0.0) >= 1.0, "{text}");
    assert!(sample(&text, "synapsed_wal_syncs_total").unwrap_or(0.0) >= 1.0, "{text}");
    let stats = db.stats();
    assert_eq!(sample(&text, "synapsed_last_seqno"), Some(stats.last_seqno as f64), "{text}");
    assert_eq!(sample(&text, "synapsed_block_cache_hits_total"), Some(stats.block_cache_hits as f64), "{text}");
    db.close().unwrap();
    // The handle does not keep a closed store alive.
    assert!(!published.publish());
}

/// A free TCP port on loopback.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The body of `GET http://127.0.0.1:port{path}`, or `None` if nothing answers.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Kills the child when dropped, so a failed assertion leaves no process behind.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cli(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("SYNAPSED_PASSPHRASE", common::PASSPHRASE).arg("--db").arg(dir);
    c
}

/// Debian's `prometheus` (installed by scripts/test.sh) scrapes `--metrics`
/// of a running `batch` and answers a query for its write counter.
#[test]
fn a_real_prometheus_scrapes_the_endpoint_and_answers_a_query() {
    let prometheus = which("prometheus").expect("prometheus is not installed: scripts/test.sh installs Debian's package");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let init = cli(&dir)
        .args(["--insecure-kdf-for-tests", "--argon2-memory-kib", "64", "--argon2-iterations", "1", "init"])
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");

    let metrics_port = free_port();
    let mut batch = Reaper(
        cli(&dir)
            .args(["--metrics", &format!("127.0.0.1:{metrics_port}"), "batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdin = batch.0.stdin.take().unwrap();
    let mut stdout = BufReader::new(batch.0.stdout.take().unwrap());
    const COMMITS: usize = 5;
    for i in 1..=COMMITS {
        writeln!(stdin, "put {MARKER}-{i} {MARKER}-value\nput other-{i} x\ncommit").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), format!("committed {i}"));
    }
    let own = http_get(metrics_port, "/metrics").expect("the --metrics endpoint answers");
    assert_eq!(sample(&own, r#"synapsed_ops_total{op="write"}"#), Some(COMMITS as f64), "{own}");
    assert!(!own.contains(MARKER), "{own}");

    let web_port = free_port();
    let config = tmp.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: synapsed\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
        ),
    )
    .unwrap();
    let _prometheus = Reaper(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", tmp.path().join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let query = "/api/v1/query?query=synapsed_ops_total%7Bop%3D%22write%22%2Cjob%3D%22synapsed%22%7D";
    let deadline = Instant::now() + Duration::from_secs(90);
    let answer = loop {
        if let Some(body) = http_get(web_port, query) {
            if body.contains("\"value\"") {
                break body;
            }
        }
        assert!(Instant::now() < deadline, "Prometheus never reported the write counter");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(answer.contains("\"status\":\"success\""), "{answer}");
    assert!(answer.contains(&format!("\"{COMMITS}\"]")), "Prometheus's value of the write counter: {answer}");
    drop(stdin);
    assert!(batch.0.wait().unwrap().success());
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}
