//! Figures of the device transport on loopback (ignored by default; run with
//! `cargo test --release -p synapsed-storage --test sync_transport_throughput
//! -- --ignored --nocapture`): time to connect (TCP, hybrid TLS 1.3 handshake
//! with both certificates, prefaces), round trips of small frames, and the
//! rate of 1 MiB frames one way.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::thread;
use std::time::{Duration, Instant};

use sync::transport::{Transport, TransportOptions, TrustedPeers};
use sync::{DeviceIdentity, FrameChannel};

#[test]
#[ignore = "a measurement, not a check"]
fn transport_figures_on_loopback() {
    let a = DeviceIdentity::generate().unwrap();
    let b = DeviceIdentity::generate().unwrap();
    let ta = Transport::new(&a, TrustedPeers::new([b.device_id()]), TransportOptions::default()).unwrap();
    let tb = Transport::new(&b, TrustedPeers::new([a.device_id()]), TransportOptions::default()).unwrap();
    let listener = tb.listen("127.0.0.1:0").unwrap();
    let addr = listener.local_addr();
    const CONNECTS: usize = 50;
    const PINGS: usize = 2000;
    const BULK: usize = 256;
    let server = thread::spawn(move || {
        let _keep = tb;
        for _ in 0..CONNECTS {
            let ch = listener.accept().unwrap();
            drop(ch);
        }
        let mut ch = listener.accept().unwrap();
        for _ in 0..PINGS {
            let f = ch.recv().unwrap().unwrap();
            ch.send(&f).unwrap();
        }
        let mut bytes = 0usize;
        while let Some(f) = ch.recv().unwrap() {
            bytes += f.len();
        }
        bytes
    });
    let started = Instant::now();
    for _ in 0..CONNECTS {
        let ch = ta.connect(addr).unwrap();
        drop(ch);
    }
    let connect = started.elapsed() / CONNECTS as u32;
    let mut ch = ta.connect(addr).unwrap();
    let started = Instant::now();
    for _ in 0..PINGS {
        ch.send(b"ping").unwrap();
        ch.recv().unwrap().unwrap();
    }
    let rtt = started.elapsed() / PINGS as u32;
    let frame = vec![0x5a; 1 << 20];
    let started = Instant::now();
    for _ in 0..BULK {
        ch.send(&frame).unwrap();
    }
    ch.close().unwrap();
    let got = server.join().unwrap();
    let took = started.elapsed().max(Duration::from_micros(1));
    assert_eq!(got, BULK << 20);
    println!(
        "connect + handshake: {connect:?}; small-frame round trip: {rtt:?}; 1 MiB frames: {:.0} MiB/s",
        BULK as f64 / took.as_secs_f64()
    );
}
