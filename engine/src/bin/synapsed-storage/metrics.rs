//! `--metrics ADDR` and `stats --prometheus`: the store's metrics in
//! Prometheus text format, through `metrics-exporter-prometheus`.
//!
//! The recorder is installed once per process; every store the command opens
//! registers its [`MetricsHandle`], whose gauges are published before each
//! render. The endpoint is a minimal HTTP/1.1 responder on a thread of its own:
//! `GET /metrics` gets the text, anything else a 404; one connection at a time,
//! each closed after its response, with read and write timeouts so a stuck
//! client cannot hold it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use parking_lot::Mutex;
use synapsed_storage::{Db, MetricsHandle};

/// Histogram buckets in seconds: 1 µs to about 16 s, doubling.
fn buckets() -> Vec<f64> {
    (0..25).map(|i| 1e-6 * f64::from(1u32 << i)).collect()
}

struct Exporter {
    handle: PrometheusHandle,
    stores: Mutex<Vec<MetricsHandle>>,
}

static EXPORTER: OnceLock<Exporter> = OnceLock::new();

/// Installs the process's Prometheus recorder (once).
pub(crate) fn install() -> anyhow::Result<()> {
    if EXPORTER.get().is_some() {
        return Ok(());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets(&buckets())
        .context("cannot configure the metrics recorder")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    synapsed_storage::describe_metrics();
    let _ = EXPORTER.set(Exporter { handle, stores: Mutex::new(Vec::new()) });
    Ok(())
}

/// Whether a recorder is installed (so stores record per-operation metrics).
pub(crate) fn installed() -> bool {
    EXPORTER.get().is_some()
}

/// Lets the exporter publish `db`'s gauges before each render.
pub(crate) fn register(db: &Db) {
    if let Some(exporter) = EXPORTER.get() {
        exporter.stores.lock().push(db.metrics_handle());
    }
}

/// Every metric in Prometheus text format, the stores' gauges refreshed first.
pub(crate) fn render() -> String {
    let Some(exporter) = EXPORTER.get() else { return String::new() };
    exporter.stores.lock().retain(MetricsHandle::publish);
    exporter.handle.render()
}

/// Serves `render()` at `http://ADDR/metrics` for as long as the process runs.
/// Binding happens here, so a bad or busy address fails the command at once.
pub(crate) fn serve(addr: &str) -> anyhow::Result<SocketAddr> {
    install()?;
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot serve metrics on {addr}"))?;
    let local = listener.local_addr().context("cannot serve metrics")?;
    std::thread::Builder::new()
        .name("synapsed-metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream);
            }
        })
        .context("cannot start the metrics thread")?;
    Ok(local)
}

/// Answers one request on `stream`.
fn answer(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut request = Vec::new();
    let mut chunk = [0u8; 1024];
    // Up to the end of the headers, at most 16 KiB.
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 << 10 {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    let (status, body) = if method == b"GET" && path == b"/metrics" {
        ("200 OK", render())
    } else {
        ("404 Not Found", "not found: the metrics are at /metrics\n".to_string())
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}
